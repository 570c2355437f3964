"""The test suite: a package, so `from tests.modelkit import ...` works under `pytest` and `python -m pytest` alike."""
