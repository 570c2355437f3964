"""Shared fixtures: one torch thread, the offline mirror of real data, and prepared real datasets.

The session routes float32 CPU products as every `tedbench` command does (`benchmark.engine.cpu_matmul`), so
that runs in this process and in `tedbench` subprocesses compute alike."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from benchmark.engine.cpu_matmul import use_onednn_float32

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MIRROR = REPO.parent / "shared" / "datasets"


def pytest_configure(config: pytest.Config) -> None:
    use_onednn_float32()
    config.addinivalue_line("markers", "all_threads: keep torch's default thread count for the module (see one_thread)")


@pytest.fixture(autouse=True, scope="module")
def one_thread(request: pytest.FixtureRequest) -> Iterator[None]:
    """The test tensors are tiny: one intra-op thread is faster, and immune to OpenMP spinning on a busy shared CPU.

    Modules marked `all_threads` (in-process runs compared with the same run in a subprocess, which has the
    default thread count) keep the default.
    """
    if request.node.get_closest_marker("all_threads"):
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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


@pytest.fixture(scope="session")
def sample_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root with the bundled Online Retail sample prepared (no mirror needed); embeddings cache there."""
    from benchmark.data.prepare import prepare

    root = tmp_path_factory.mktemp("sample-data")
    prepare("OR-sample", data_root=root, mirror=None, raw_root=tmp_path_factory.mktemp("sample-raw"), download=False)
    return root


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the PostgreSQL server named by TEDBENCH_TEST_POSTGRES."""
    base = os.environ.get("TEDBENCH_TEST_POSTGRES")
    if not base:
        if os.environ.get("TEDBENCH_REQUIRE_POSTGRES") == "1":
            pytest.fail("TEDBENCH_TEST_POSTGRES is required (CI starts a PostgreSQL server) but unset")
        pytest.skip(
            "no PostgreSQL server (set TEDBENCH_TEST_POSTGRES=postgresql://USER@/postgres?host=/var/run/postgresql)"
        )
    import sqlalchemy

    name = f"tedbench_{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f"CREATE DATABASE {name}"))
    url = sqlalchemy.engine.make_url(base).set(database=name).render_as_string(hide_password=False)
    yield url
    with engine.connect() as conn:
        conn.execute(sqlalchemy.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    engine.dispose()
