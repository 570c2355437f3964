"""The state of a run folder: running, finished or failed — never a mix of two attempts.

- running: `LOCK` holds the writer's pid, host and process start time. It is created with
  O_CREAT|O_EXCL while holding an flock on the folder itself, so two processes can never both hold
  it; a lock whose process is gone (same host, pid dead or reused) is stale and taken over, a live
  one is refused.
- finished: `DONE.json`, written last, holds the sha256 of config.json, metrics.json and the rank
  files once they agree (same settings, metrics recomputed from the ranks, one rank per user).
- failed: `FAILED.json` holds the error; a failed folder never keeps a metrics.json.
- interrupted: a config.json without either marker (a killed process).

A rerun decides from this state what to do (`plan_attempt`): nothing (finished, same settings), resume,
a fresh attempt (its predecessor's files cleared first), or a refusal naming the settings that differ.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmark.errors import TedbenchError
from benchmark.fsutil import atomic_dir, clean_orphans, file_digest, pid_alive, write_json
from benchmark.log import logger
from benchmark.metrics import summarize

LOCK = "LOCK"
DONE = "DONE.json"
FAILED = "FAILED.json"
CONFIG = "config.json"
METRICS = "metrics.json"
RANKS = ("valid_ranks.npy", "test_ranks.npy")
USERS = "users.tsv"  # the users the ranks belong to, in rank order: source id and training-history length
ENVIRONMENT = "environment.json"  # where and when it ran (git commit, host, date, versions): not a result
SEALED = (CONFIG, METRICS, *RANKS, USERS)  # the files DONE.json's digest covers
ATTEMPT = (*SEALED, ENVIRONMENT, "log.jsonl", DONE, FAILED, "checkpoints")  # everything one attempt writes
# What makes two attempts the same run (config.json's other keys describe where and how it ran).
SETTINGS_KEYS = ("model", "dataset", "encoder", "tag", "profile", "model_config", "train_config")

Plan = Literal["done", "resume", "fresh"]


# -- settings -----------------------------------------------------------------------------------
def settings_of(config: dict[str, Any]) -> dict[str, Any]:
    """The settings part of a run's config.json."""
    return {key: config.get(key) for key in SETTINGS_KEYS}


def differing_keys(stored: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    """Keys whose values differ, one level deep into dicts (`train_config.epochs`)."""
    keys = []
    for key in sorted(set(stored) | set(wanted)):
        old, new = stored.get(key), wanted.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            keys += [f"{key}.{sub}" for sub in sorted(set(old) | set(new)) if old.get(sub) != new.get(sub)]
        elif old != new:
            keys.append(key)
    return keys


def read_config(folder: Path) -> dict[str, Any] | None:
    """The folder's config.json, or None when there is none."""
    path = Path(folder) / CONFIG
    if not path.exists():
        return None
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise TedbenchError(f"{path}: not valid JSON ({exc}); start again with --overwrite") from exc
    if not isinstance(config, dict):
        raise TedbenchError(f"{path}: expected a JSON object; start again with --overwrite")
    return config


# -- markers ------------------------------------------------------------------------------------
def _sealed_digests(folder: Path) -> dict[str, str]:
    return {name: file_digest(folder / name) for name in SEALED}


def is_finished(folder: Path, settings: dict[str, Any]) -> bool:
    """`folder` holds a finished run of exactly these settings: its DONE.json matches the files on disk."""
    folder = Path(folder)
    config = read_config(folder)
    if not (folder / DONE).exists() or config is None or settings_of(config) != settings:
        return False
    if any(not (folder / name).exists() for name in SEALED):
        return False
    try:
        return json.loads((folder / DONE).read_text(encoding="utf-8")).get("sha256") == _sealed_digests(folder)
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return False


def stored_metrics(folder: Path) -> dict[str, Any]:
    return json.loads((Path(folder) / METRICS).read_text(encoding="utf-8"))


def mark_done(folder: Path, settings: dict[str, Any]) -> None:
    """Write DONE.json once config, metrics and ranks agree; raise TedbenchError if they do not."""
    folder = Path(folder)
    config, metrics = read_config(folder), stored_metrics(folder)
    if config is None or settings_of(config) != settings:
        raise TedbenchError(f"{folder / CONFIG}: does not record this run's settings")
    for split, name in zip(("valid", "test"), RANKS):
        ranks = np.load(folder / name, allow_pickle=False)
        recomputed = {k: round(v, 4) for k, v in summarize(ranks).items()}
        if recomputed != metrics[split] or len(ranks) != metrics["users"]:
            raise TedbenchError(f"{folder / METRICS}: {split} metrics do not match {folder / name}")
    listed = len((folder / USERS).read_text(encoding="utf-8").splitlines()) - 1
    if listed != metrics["users"]:
        raise TedbenchError(f"{folder / USERS}: lists {listed} users, the ranks have {metrics['users']}")
    write_json(folder / DONE, {"sha256": _sealed_digests(folder)})


def mark_failed(folder: Path, error: BaseException) -> None:
    """Record the error in FAILED.json; a failed folder keeps no metrics and no completion marker."""
    folder = Path(folder)
    for name in (DONE, METRICS):
        (folder / name).unlink(missing_ok=True)
    message = " ".join(str(error).split()) or type(error).__name__
    write_json(folder / FAILED, {"error": message, "type": type(error).__name__})


def state(folder: Path) -> str:
    """'finished', 'failed' or 'interrupted' for a folder holding an attempt (a config.json)."""
    folder = Path(folder)
    if (folder / FAILED).exists():
        return "failed"
    config = read_config(folder)
    return "finished" if config is not None and is_finished(folder, settings_of(config)) else "interrupted"


def clear_attempt(folder: Path) -> None:
    """Remove every file an attempt writes (and nothing else) so a fresh attempt starts clean."""
    folder = Path(folder)
    for name in ATTEMPT:
        path = folder / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def copy_finished(source: Path, folder: Path, settings: dict[str, Any]) -> None:
    """Publish the finished run `source` of exactly `settings` as `folder` (atomically, without its checkpoints)."""
    if not is_finished(source, settings):
        raise TedbenchError(f"{source}: not a finished run of these settings")
    with atomic_dir(Path(folder)) as staging:
        for name in (*SEALED, ENVIRONMENT, "log.jsonl", DONE):
            if (Path(source) / name).exists():
                shutil.copy2(Path(source) / name, staging / name)
    if not is_finished(folder, settings):
        raise TedbenchError(f"{folder}: the copy of {source} does not match its DONE.json")


def require_attempt(folder: Path) -> None:
    """Raise unless `folder` holds an attempt to resume."""
    if not (Path(folder) / CONFIG).exists():
        raise TedbenchError(f"{folder}: nothing to resume (no {CONFIG}); run without --resume")


def plan_attempt(folder: Path, settings: dict[str, Any], *, resume: bool, overwrite: bool) -> Plan:
    """What a run of `settings` into `folder` does; raises TedbenchError rather than mix two attempts.

    Writes nothing. `resume` continues an unfinished attempt of the same settings; `overwrite`
    discards whatever the folder holds. Without either, a finished run of the same settings is
    kept ('done'), an unfinished one of the same settings is restarted, other settings are refused.
    """
    folder = Path(folder)
    if resume and overwrite:
        raise TedbenchError("--resume and --overwrite exclude each other")
    if overwrite:
        return "fresh"
    if resume:
        require_attempt(folder)
    stored = read_config(folder)
    if stored is None:
        return "fresh"
    changed = differing_keys(settings_of(stored), settings)
    if changed:
        raise TedbenchError(
            f"{'--resume: ' if resume else ''}{folder} holds a {state(folder)} run with other settings "
            f"({', '.join(changed)}); choose another --out, or --overwrite to discard it"
        )
    if is_finished(folder, settings):
        return "done"
    if not resume:
        logger.info(f"{folder}: discarding an unfinished attempt (--resume continues it)")
        return "fresh"
    return "resume"


# -- the lock -----------------------------------------------------------------------------------
def _process_start(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot (Linux), to tell a reused pid from the lock's owner."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def is_running(folder: Path) -> bool:
    """True while a live process (or one on another host) holds the folder's LOCK."""
    return (Path(folder) / LOCK).exists() and _holder_alive(_read_lock(Path(folder) / LOCK))


def _holder_alive(holder: dict[str, Any] | None) -> bool:
    """False when the lock's process is provably gone; locks of other hosts count as alive."""
    if holder is None:  # created but never written: its writer died inside the flock'd section
        return False
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    started = _process_start(pid)
    return started is None or holder.get("started") in (None, started)


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, FileNotFoundError):
        return None
    return holder if isinstance(holder, dict) else None


@contextlib.contextmanager
def _folder_flock(folder: Path) -> Iterator[None]:
    """Serialise lock checks on this host: an flock on the folder, released by the kernel on death."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _create_lock(path: Path, holder: dict[str, Any]) -> None:
    """Create `path` atomically (O_CREAT|O_EXCL) holding `holder`; FileExistsError if it exists."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    try:
        os.write(fd, json.dumps(holder).encode())
    finally:
        os.close(fd)


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold `folder`'s LOCK for the block; refuse if a live process holds it, take over a stale one.

    Also removes staging files left in the folder by killed writers.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TedbenchError(f"{folder}: cannot create the run folder ({exc.strerror})") from exc
    path = folder / LOCK
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": _process_start(os.getpid())}
    with _folder_flock(folder):
        try:
            _create_lock(path, me)
        except FileExistsError:
            holder = _read_lock(path)
            if _holder_alive(holder):
                raise TedbenchError(
                    f"{folder}: in use by pid {holder.get('pid')} on host {holder.get('host')} "
                    f"(lock {path}); wait for it, or delete the lock if that process is gone"
                ) from None
            path.unlink()
            _create_lock(path, me)
        except PermissionError as exc:
            raise TedbenchError(
                f"{folder}: cannot write the lock ({exc.strerror}); the run folder must be writable"
            ) from exc
    try:
        clean_orphans(folder)
        yield
    finally:
        if _read_lock(path) == me:
            path.unlink(missing_ok=True)
