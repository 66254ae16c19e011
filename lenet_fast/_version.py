"""The package's version, in one place: pyproject.toml reads it from here, lenet_fast exports it."""
__version__ = "0.1.0"
