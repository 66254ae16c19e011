"""read_digit on photos: how often it reads them right, and how fast.

- accuracy: digit_photos(N, seed) (lenet_fast.handwriting: seeded photos of handwritten digits, not from
  MNIST) through read_digit and each pretrained model, every refusal counted wrong, for each seed;
- one thread: milliseconds per 160x160 photo in read_digit, and in its parts (the gray levels; steps 2-8,
  csrc/read_digit.c, one call for all the photos; predict in one batch), medians over rounds;
- throughput: 1,000 photos, as RGB arrays and as JPEG files (quality 90), read by read_digits (on as many
  threads as the kernels use: 1, then 2) and predicted in one batch, per second, with the process's CPU
  time over the wall time (how many cores it kept busy);
- a 4032x3024 photo: read_digit on the RGB array and on a JPEG file of it (Pillow decodes it at a reduced
  scale), median seconds.

    python benchmarks/photos.py [--n 1000] [--seeds 101 102 103] [--rounds 5]
"""
import argparse
import os
import tempfile
import time

import numpy as np

import lenet_fast
from lenet_fast import handwriting, images, timing


def error_rate(model, photos, labels):
    """(wrong share, refused share): every refusal counted wrong."""
    wrong = refused = 0
    for photo, label in zip(photos, labels):
        try:
            wrong += int(model.predict(images.read_digit(photo))[0] != label)
        except ValueError:
            wrong += 1
            refused += 1
    return wrong / len(labels), refused / len(labels)


def read_or_blank(photo):
    """read_digit's digit, or a blank one where it refuses (as a batch that reports failures goes on)."""
    try:
        return images.read_digit(photo)
    except ValueError:
        return np.zeros((images.SIZE, images.SIZE), np.uint8)


def steps(model, photos, rounds):
    """Median milliseconds per photo: read_digit, and its parts, on the photos it reads: the gray levels
    (Python and NumPy), steps 2-8 (one C call for all the photos), and predict (one batch)."""
    photos = [p for p in photos if read_or_blank(p).any()]
    grays = [images._gray(p) for p in photos]
    digits = np.stack([images.read_digit(p) for p in photos])
    measures = {
        "read_digit": lambda: [images.read_digit(p) for p in photos],
        "gray": lambda: [images._gray(p) for p in photos],
        "steps 2-8 (one C call)": lambda: images._read_grays(grays, ["x"] * len(grays)),
        "predict (one batch)": lambda: model.predict(digits),
    }
    times = timing.interleaved({k: (lambda f=f: timing.elapsed(f)) for k, f in measures.items()}, rounds)
    return {k: timing.median(t) / len(photos) * 1e3 for k, t in times.items()}


def throughput(model, sources, threads, rounds):
    """(photos per second, CPU share), medians over rounds: reading sources by read_digits (on as many
    threads as the kernels use) and predicting them in one batch (a photo it refuses is skipped, as a batch
    that reports failures goes on), and the process's CPU time over that round's wall time (os.times): up to
    the thread count when the threads run side by side, 1 when they queue for the GIL, less when the machine
    has no free core to give."""
    def run():
        digits, _ = images.read_digits(sources, errors="skip")
        model.predict(digits)

    def cpu():
        t = os.times()
        return t.user + t.system

    walls, shares = [], []
    with timing.kernel_threads(threads):
        for _ in range(rounds):
            before = cpu()
            walls.append(timing.elapsed(run))
            shares.append((cpu() - before) / walls[-1])
    return len(sources) / timing.median(walls), timing.median(shares)


def big_photo(rounds):
    """Median seconds of read_digit on a 4032x3024 photo: the RGB array, and a JPEG file (quality 90)."""
    from PIL import Image
    ink = handwriting.draw(handwriting.digit_strokes(4, np.random.default_rng(0)), (3024 // 4, 4032 // 4),
                           (380, 500), 500, 50)
    small = handwriting.photograph(ink, np.random.default_rng(1), jpeg=False)
    photo = np.asarray(Image.fromarray(small).resize((4032, 3024), Image.BILINEAR))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "photo.jpg")
        Image.fromarray(photo).save(path, quality=90)
        array = timing.median([timing.elapsed(lambda: images.read_digit(photo)) for _ in range(rounds)])
        jpeg = timing.median([timing.elapsed(lambda: images.read_digit(path)) for _ in range(rounds)])
    return array, jpeg


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[101, 102, 103])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    m = timing.machine()
    print(f"{time.strftime('%Y-%m-%d')}  {m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), "
          f"load {timing.load_average()}  {timing.build_line()}, numpy {np.__version__}")
    models = {v: lenet_fast.pretrained(v) for v in ("classic", "modern")}
    print(f"\naccuracy on digit_photos({args.n}, seed), refusals counted wrong")
    for seed in args.seeds:
        photos, labels = handwriting.digit_photos(args.n, seed)
        for variant, model in models.items():
            wrong, refused = error_rate(model, photos, labels)
            print(f"  seed {seed}  {variant:8s} wrong {wrong:6.2%}  (refused {refused:.2%})")
    photos, _ = handwriting.digit_photos(args.n, args.seeds[0])
    print("\none thread, ms per 160x160 photo (median of rounds)")
    for step, ms in steps(models["classic"], photos[:200], args.rounds).items():
        print(f"  {step:32s} {ms:7.3f}")
    print(f"\n{args.n} photos read and predicted, photos/s (median of rounds)")
    with tempfile.TemporaryDirectory() as folder:
        from PIL import Image
        files = []
        for i, photo in enumerate(photos):
            files.append(os.path.join(folder, f"{i:04d}.jpg"))
            Image.fromarray(photo).save(files[-1], quality=90)
        for threads in (1, 2):
            arrays, arrays_cpu = throughput(models["classic"], list(photos), threads, args.rounds)
            jpegs, jpegs_cpu = throughput(models["classic"], files, threads, args.rounds)
            print(f"  {threads} thread{'s' if threads > 1 else ' '}  RGB arrays {arrays:8.0f} (CPU {arrays_cpu:4.0%})"
                  f"   JPEG files {jpegs:8.0f} (CPU {jpegs_cpu:4.0%})")
    array, jpeg = big_photo(args.rounds)
    print(f"\n4032x3024 photo: read_digit on the array {array:.3f} s, on a JPEG file {jpeg:.3f} s")


if __name__ == "__main__":
    main()
