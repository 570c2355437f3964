"""Where a processed dataset lives, and publishing one: staged, compared with what is there, renamed in.

A dataset's folder is `<data_root>/processed/<name>` for a safe slug `name`. A new folder is written
in full into a staging folder beside it and renamed into place; a folder that already exists is
left alone when the new one is byte-identical, and replaced only with `force` otherwise (the error
names what differs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmark.data.process import Sequences
from benchmark.data.store import write_sequences
from benchmark.errors import TedbenchError
from benchmark.faults import pause_point
from benchmark.fsutil import atomic_dir, clean_orphans
from benchmark.layout import processed_dir, processed_root

#: Manifest keys derived from the others; named in a difference only when nothing else differs.
DERIVED_KEYS = ("counts", "notes", "partial", "text_coverage")


def target_dir(data_root: Path, name: str) -> Path:
    """The folder a dataset `name` may be written to; refuses links and names aliasing another folder.

    Also removes the staging leftovers of killed writers under `<data_root>/processed`.
    """
    folder = processed_dir(data_root, name)
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise TedbenchError(f"{folder}: is a link or a file, not a dataset folder; refusing to write through it")
    if folder.exists() and folder.resolve().name != name:  # a case-insensitive file system
        raise TedbenchError(f"dataset name {name!r} resolves onto the existing dataset {folder.resolve().name!r}")
    clean_orphans(processed_root(data_root))
    return folder


class _Unchanged(Exception):
    """The staged folder equals the published one: discard the staging folder."""


def publish_sequences(folder: Path, seqs: Sequences, manifest: dict[str, Any], *, area: str, force: bool) -> None:
    """Write `seqs` into a staging folder and publish it as `folder` (see the module docstring)."""
    try:
        with atomic_dir(folder) as staging:
            write_sequences(staging, seqs, manifest, area)
            pause_point(f"{area}.before_publish")
            if folder.exists():
                changes = differences(folder, staging)
                if not changes:
                    raise _Unchanged
                if not force:
                    raise TedbenchError(
                        f"{folder}: already holds a dataset built from other inputs ({'; '.join(changes)}); "
                        "pass --force to replace it"
                    )
    except _Unchanged:
        pass


def differences(old: Path, new: Path) -> list[str]:
    """What differs between two dataset folders: manifest keys (inputs first), else file names."""
    try:
        before = json.loads((old / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ["the existing folder has no readable manifest.json"]
    after = json.loads((new / "manifest.json").read_text(encoding="utf-8"))
    keys = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    inputs = [key for key in keys if key not in DERIVED_KEYS] or keys
    if inputs:
        return [f"{key}: {_brief(before.get(key))} -> {_brief(after.get(key))}" for key in inputs]
    names = sorted({p.name for p in old.iterdir()} | {p.name for p in new.iterdir()})
    return [f"{name} differs" for name in names if not _same_file(old / name, new / name)]


def _brief(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _same_file(a: Path, b: Path) -> bool:
    return a.is_file() and b.is_file() and a.read_bytes() == b.read_bytes()
