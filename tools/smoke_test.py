"""Smoke test of an installed lenet_fast (a wheel in a fresh environment: .ci/run's packaging step,
cibuildwheel's test-command): the pretrained classic model (lenet-fast's) recognizes all ten sample digits
shipped with the package (digit_<label>.png), the modern one at least nine (its 8 and 3 are close on the
enlarged sample 3), and it says which build runs. Run it outside the source tree, so that the installed package
is the one imported. Exit status 0 when every digit is right."""
import re
import sys
from pathlib import Path

import lenet_fast


def main():
    package = Path(lenet_fast.__file__).parent
    paths = lenet_fast.sample_paths()
    expected = [int(re.fullmatch(r"digit_(\d)\.png", p.name).group(1)) for p in paths]
    images, _ = lenet_fast.read_digits(paths)
    assert len(paths) == 10, paths
    for variant, least in (("classic", 10), ("modern", 9)):
        got = lenet_fast.pretrained(variant).predict(images).tolist()
        right = sum(g == e for g, e in zip(got, expected))
        assert right >= least, f"{variant}: predicted {got}, expected {expected}"
    print(f"smoke test ok: lenet_fast {lenet_fast.__version__} from {package}, {lenet_fast.build_info()}")


if __name__ == "__main__":
    sys.exit(main())
