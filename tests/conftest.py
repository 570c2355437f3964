"""Shared fixtures: the offline mirror of real data, and prepared real datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The real-data mirror; its absence fails the test when TEDBENCH_REQUIRE_MIRROR=1 (CI)."""
    path = Path(os.environ.get("TEDBENCH_MIRROR", DEFAULT_MIRROR))
    if not path.is_dir():
        if os.environ.get("TEDBENCH_REQUIRE_MIRROR") == "1":
            pytest.fail(f"mirror {path} is required (TEDBENCH_REQUIRE_MIRROR=1) but missing")
        pytest.skip(f"no real-data mirror at {path}")
    return path


@pytest.fixture(scope="session")
def prepared_root(mirror: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with ml-1m and OR prepared from the mirror (shared by all tests of a session)."""
    from benchmark.data.prepare import prepare

    root = tmp_path_factory.mktemp("data")
    raw = tmp_path_factory.mktemp("raw")
    for name in ("ml-1m", "OR"):
        prepare(name, data_root=root, mirror=mirror, raw_root=raw, download=False)
    return root
