"""Shared test settings.

Hypothesis runs derandomized by default, so that the suite is the same on every run and on every machine
(every NumPy generator in the tests is seeded, by a fixed seed or one drawn by hypothesis), and keeps no
example database (nothing is written outside tests/). HYPOTHESIS_PROFILE=explore draws fresh examples.
"""
import os

from hypothesis import settings

settings.register_profile("default", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
