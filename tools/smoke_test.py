"""Smoke test of an installed lenet_fast (a wheel in a fresh environment: .ci/run's packaging step,
cibuildwheel's test-command): both pretrained models recognize the ten sample digits shipped with the package
(digit_<label>.png), and say which build runs. Run it outside the source tree, so that the installed package
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
    for variant in ("classic", "modern"):
        got = lenet_fast.pretrained(variant).predict(images).tolist()
        assert got == expected, f"{variant}: predicted {got}, expected {expected}"
    print(f"smoke test ok: lenet_fast {lenet_fast.__version__} from {package}, {lenet_fast.build_info()}")


if __name__ == "__main__":
    sys.exit(main())
