"""One cross-process lock per study storage, for the few tuning steps that must not interleave.

Laying out a study's budget, and failing a trial together with queueing its retry, each take
several storage writes; two workers doing them at once could lay out a slot twice or queue two
retries of one trial. The lock is PostgreSQL's own advisory lock (held by a transaction of the
locking connection) or, for a SQLite file, an flock on `<database>.lock` beside it. The server or
the kernel releases either when its holder dies, so a killed worker never leaves it held; the
SQLite lock file itself may stay behind and means nothing without a holder.
"""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager

import optuna
import sqlalchemy


@contextmanager
def study_lock(storage: optuna.storages.RDBStorage, name: str) -> Iterator[None]:
    """Hold the lock of study `name` in `storage` while the block runs (waits for other holders)."""
    engine = storage.engine
    if engine.dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(f"tedbench-study:{name}".encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn, conn.begin():
            conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
            yield
        return
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # an in-memory database lives in this one process
        return
    with open(f"{database}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
