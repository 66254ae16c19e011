"""How many whole numbers read_number reads exactly: photos of rows of handwritten digits (handwriting's
number_photo: uneven light, shadows, noise, JPEG), lengths 3 to 6, separate digits and touching ones.

Number i of a set is made from the seed (seed, i): its length 3 + i % 4, its digits drawn from that seed,
its photo number_photo(text, (seed, i), touching=...). Prints the exact-read rate of each set, its errors
by kind (refused: no ink found; a wrong digit count; a wrong digit at the right count), the exact rate of the
numbers not refused, and read_number's time per number; --show lists the numbers read wrong.

    python benchmarks/number_reading.py [--count 300] [--seed 1] [--show]
"""
import argparse
import time

import numpy as np

from lenet_fast import handwriting, timing
from lenet_fast.numbers import read_number


def number_text(seed):
    """The digits of the number made from seed: 3 to 6 of them, chosen by the seed alone."""
    rng = np.random.default_rng(seed)
    return "".join(str(d) for d in rng.integers(0, 10, 3 + seed[1] % 4))


def measure(count, seed, touching):
    """(exact, refused, wrong_count, wrong_digit, seconds per number, misreads) over count numbers: refused
    are the ValueErrors (no ink found), wrong_count the reads with too many or too few digits, wrong_digit
    those of the right length with a digit wrong."""
    misreads, refused, wrong_count, seconds = [], 0, 0, 0.0
    for i in range(count):
        text = number_text((seed, i))
        photo = handwriting.number_photo(text, (seed, i), touching=touching)
        start = time.perf_counter()
        try:
            read = read_number(photo)
        except ValueError as exc:
            read, refused = f"<{exc}>", refused + 1
        else:
            wrong_count += len(read) != len(text)
        seconds += time.perf_counter() - start
        if read != text:
            misreads.append((i, text, read))
    wrong_digit = len(misreads) - refused - wrong_count
    return count - len(misreads), refused, wrong_count, wrong_digit, seconds / count, misreads


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help="numbers per set (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="the sets' seed (default 1)")
    parser.add_argument("--show", action="store_true", help="list the numbers read wrong")
    args = parser.parse_args()
    print(f"{timing.build_line()}; CPU {timing.cpu_model()}")
    for touching in (False, True):
        exact, refused, count_errors, digit_errors, seconds, misreads = measure(args.count, args.seed, touching)
        kind = "touching" if touching else "separate"
        print(f"{kind} digits: {exact}/{args.count} read exactly ({exact / args.count:.1%}); refused {refused}, "
              f"wrong digit count {count_errors}, wrong digit {digit_errors}; of those not refused "
              f"{exact / max(args.count - refused, 1):.1%} exact; {seconds * 1e3:.1f} ms per number")
        if args.show:
            for i, text, read in misreads:
                print(f"  ({args.seed}, {i}) {text} read {read}")


if __name__ == "__main__":
    main()
