"""Checksums and atomic writes: nothing half-written is ever left at a final path."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside `final`; rename it onto `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_staging_prefix(final), suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except OSError as exc:
        _name_final(exc, final)
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary directory beside `final`; it replaces `final` only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_staging_prefix(final), suffix=".tmp", dir=final.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f"{_staging_prefix(final)}old.tmp")
            _rmtree(old)
            os.replace(final, old)
            os.replace(tmp, final)
            _rmtree(old)
        else:
            os.replace(tmp, final)
    except OSError as exc:
        _name_final(exc, final)
        raise
    finally:
        _rmtree(tmp)


def _name_final(exc: OSError, final: Path) -> None:
    """An error raised while writing without naming a path (a full disk) names the final path."""
    if exc.filename is None:
        exc.filename = str(final)


_STAGING = re.compile(r"^\.(?P<name>.+)\.pid(?P<pid>\d+)\.(?P<rest>.*)\.tmp$")
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


def published_path(path: str | Path) -> Path:
    """`path` with every staging name in it replaced by the name it is published under."""
    return Path(*(match.group("name") if (match := _STAGING.match(part)) else part for part in Path(path).parts))


def _staging_prefix(final: Path) -> str:
    """Hidden staging names carry the writer's pid, so a later run can tell an orphan from live work."""
    return f".{final.name}.pid{os.getpid()}."


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_orphans(folder: Path, name: str | None = None) -> list[Path]:
    """Clear staging files and folders under `folder` whose writing process is gone; returns them.

    A killed `atomic_dir` replacement can leave the previous folder parked as `.NAME.pidN.old.tmp` with
    no `NAME` beside it: that one is put back rather than deleted, so a kill never loses published data.
    With `name`, only the staging paths of that one file or folder directly in `folder` are considered.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    candidates = folder.glob(f".{glob.escape(name)}.pid*.tmp") if name else folder.rglob(".*.tmp")
    for path in sorted(candidates, key=lambda p: len(p.parts)):
        match = _STAGING.match(path.name)
        if (
            match
            and (name is None or match["name"] == name)
            and int(match["pid"]) != os.getpid()
            and not pid_alive(int(match["pid"]))
            and (path.exists() or path.is_symlink())
        ):
            final = path.with_name(match["name"])
            if match["rest"] == "old" and not (final.exists() or final.is_symlink()):
                os.replace(path, final)
            else:
                _rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            removed.append(path)
    return removed


def safe_name(name: str, what: str) -> str:
    """`name` if it is a safe slug for a folder name (letters, digits, `._+-`, not starting with a dot).

    Raises TedbenchError otherwise, so no name can resolve outside its root or onto the root itself.
    """
    from benchmark.errors import TedbenchError

    if not isinstance(name, str) or not SAFE_NAME.match(name) or name in {".", ".."} or ".." in name:
        raise TedbenchError(
            f"{what} {name!r}: use 1-128 letters, digits, '.', '_', '+' or '-', "
            "not starting with '.' or containing '..'"
        )
    return name


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _rmtree(path: Path) -> None:
    if not path.exists():
        return
    for child in sorted(path.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if child.is_dir() and not child.is_symlink():
            child.rmdir()
        else:
            child.unlink()
    path.rmdir()


def write_json(path: Path, payload: Any) -> None:
    """Write JSON atomically, keys sorted, so equal content gives equal bytes."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
