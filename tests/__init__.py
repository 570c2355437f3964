"""The test suite: a package, so that `from tests.modelkit import ...` works under `pytest` and `python -m pytest` alike."""
