"""Locating a dataset's files: the local raw folder, then the offline mirror, then upstream.

The local raw folder (`datasets/<dataset>/<file name>`, tracked by DVC through `datasets.dvc`)
holds verified copies; the mirror keeps its own layout (`SourceFile.path`). A bundled file is
looked up in the package (`sources.BUNDLED_DIR`) in place of the mirror. Every file is checked
against its pinned digest before it is read; downloads and copies are written to a temporary file
and renamed only after the digest matches.
"""

from __future__ import annotations

import os
import shutil
import urllib.request
from pathlib import Path

from tqdm import tqdm

from benchmark.data.sources import BUNDLED_DIR, DatasetSource, Form, SourceFile
from benchmark.errors import TedbenchError
from benchmark.faults import pause_point
from benchmark.fsutil import atomic_path, clean_orphans, file_digest
from benchmark.log import logger

MIRROR_ENV = "TEDBENCH_MIRROR"


def default_mirror() -> Path | None:
    value = os.environ.get(MIRROR_ENV)
    return Path(value) if value else None


def verify(path: Path, digest: str | None) -> str:
    """Check `path` against "algo:hex"; return the file's sha256 (computed once)."""
    sha256 = file_digest(path, "sha256")
    if digest is None:
        return sha256
    algorithm, expected = digest.split(":", 1)
    actual = sha256 if algorithm == "sha256" else file_digest(path, algorithm)
    if actual != expected:
        raise TedbenchError(
            f"{path}: {algorithm} checksum mismatch (expected {expected}, got {actual}); "
            "the file is corrupt or a different release"
        )
    return sha256


def _download(spec: SourceFile, target: Path, allow_unpinned: bool) -> None:
    if spec.url is None:
        raise TedbenchError(f"{target}: missing, and this form has no upstream URL (place the file in the mirror)")
    if spec.digest is None and not allow_unpinned:
        raise TedbenchError(
            f"{spec.url}: upstream file has no pinned checksum; "
            "pass --allow-unpinned to fetch it and pin the printed sha256"
        )
    try:
        with urllib.request.urlopen(spec.url, timeout=60) as response, atomic_path(target) as tmp:
            total = int(response.headers.get("Content-Length") or 0) or None
            with open(tmp, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=target.name) as bar:
                for block in iter(lambda: response.read(1 << 20), b""):
                    out.write(block)
                    bar.update(len(block))
            verify(tmp, spec.digest)
    except OSError as exc:
        raise TedbenchError(
            f"{spec.url}: download failed ({exc}); without internet, place the file at {target} or in the mirror"
        ) from None


def local_path(raw_dir: Path, spec: SourceFile) -> Path:
    return raw_dir / Path(spec.path).name


def candidates(spec: SourceFile, mirror: Path | None, raw_dir: Path) -> list[Path]:
    """Where `spec` may already be: the raw folder, then the package (bundled) or the mirror."""
    if spec.bundled:
        return [local_path(raw_dir, spec), BUNDLED_DIR / spec.path]
    return [local_path(raw_dir, spec)] + ([mirror / spec.path] if mirror else [])


def locate_form(
    form: Form, mirror: Path | None, raw_dir: Path, *, download: bool, allow_unpinned: bool = False
) -> list[Path] | None:
    """Paths of all files of `form`, or None if some file is absent and cannot be fetched."""
    paths = []
    for spec in form.files:
        found = next((p for p in candidates(spec, mirror, raw_dir) if p.exists()), None)
        if found is None:
            if not download or spec.url is None:
                return None
            found = local_path(raw_dir, spec)
            _download(spec, found, allow_unpinned)
        paths.append(found)
    return paths


def resolve(
    source: DatasetSource,
    mirror: Path | None,
    raw_dir: Path,
    *,
    form: str | None = None,
    download: bool = True,
    allow_unpinned: bool = False,
) -> tuple[Form, list[Path], dict[str, str]]:
    """The first complete form (or the named one), its verified paths and their sha256 digests."""
    forms = [f for f in source.forms if form in (None, f.name)]
    if not forms:
        raise TedbenchError(
            f"dataset {source.name} has no form {form!r} (known: {', '.join(f.name for f in source.forms)})"
        )
    for candidate in forms:
        paths = locate_form(candidate, mirror, raw_dir, download=False)
        if paths is not None:
            break
    else:
        candidate = forms[0]
        paths = (
            locate_form(candidate, mirror, raw_dir, download=True, allow_unpinned=allow_unpinned) if download else None
        )
        if paths is None:
            where = f"mirror {mirror}" if mirror else f"no mirror (set {MIRROR_ENV} or --mirror)"

            def listed(s) -> str:
                return str(BUNDLED_DIR / s.path) + " (bundled)" if s.bundled else s.path

            wanted = "; ".join(f"{f.name}: {', '.join(listed(s) for s in f.files)}" for f in forms)
            raise TedbenchError(
                f"dataset {source.name}: no complete form found in {raw_dir} or {where}; expected one of {wanted}"
            )
    _refuse_unpinned(source, candidate, paths, allow_unpinned)
    digests = {spec.path: verify(path, spec.digest) for spec, path in zip(candidate.files, paths)}
    return candidate, paths, digests


def report_unpinned(form: Form, digests: dict[str, str]) -> None:
    """After a successful run, the sha256 of each unpinned file read (to pin it in `sources`), on stderr."""
    for spec in form.files:
        if spec.digest is None:
            logger.info(f"unpinned file {spec.path}: sha256:{digests[spec.path]}")


def _refuse_unpinned(source: DatasetSource, form: Form, paths: list[Path], allow_unpinned: bool) -> None:
    """Files without a pinned checksum are read only with --allow-unpinned, wherever they were found."""
    unpinned = [str(path) for spec, path in zip(form.files, paths) if spec.digest is None]
    if unpinned and not allow_unpinned:
        pinned = [f.name for f in source.forms if all(spec.digest for spec in f.files)]
        choose = f", or --form {'/'.join(pinned)} for a pinned form" if pinned else ""
        raise TedbenchError(
            f"dataset {source.name}, form {form.name}: {', '.join(unpinned)} has no pinned checksum; "
            f"pass --allow-unpinned to read it{choose}"
        )


def fetch(source: DatasetSource, mirror: Path | None, raw_dir: Path, **kwargs) -> list[Path]:
    """Verified copies of a form's files in `raw_dir` (from the mirror, or downloaded)."""
    clean_orphans(raw_dir)
    chosen, paths, digests = resolve(source, mirror, raw_dir, **kwargs)
    local = []
    for spec, path in zip(chosen.files, paths):
        target = local_path(raw_dir, spec)
        if path != target:
            with atomic_path(target) as tmp:
                shutil.copyfile(path, tmp)
                verify(tmp, spec.digest)
                pause_point("fetch.before_publish")
        local.append(target)
    report_unpinned(chosen, digests)
    return local
