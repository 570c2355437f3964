"""`tedbench prepare`: source files -> verified raw interactions -> processed sequences on disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmark import __version__, layout
from benchmark.data import readers
from benchmark.data.fetch import report_unpinned, resolve
from benchmark.data.process import build_sequences
from benchmark.data.publish import publish_sequences, target_dir
from benchmark.data.raw import RawInteractions
from benchmark.data.readers._common import item_texts_for
from benchmark.data.sources import SOURCES, get_source
from benchmark.data.store import paper_counts
from benchmark.errors import TedbenchError
from benchmark.fsutil import clean_orphans, file_digest, safe_name
from benchmark.log import logger

__all__ = ["import_recbole", "prepare", "prepare_if_missing"]

# Bumped whenever processing changes what a prepared folder contains.
PROCESSING_VERSION = 2  # v2: item attributes (ml-1m genres, Amazon categories)


def check_k_core(k: int) -> None:
    """The k-core option, checked before anything is read or written."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise TedbenchError(f"--k-core must be a whole number >= 1 (1 keeps every interaction), got {k!r}")


def _write(
    raw: RawInteractions,
    out: Path,
    manifest: dict[str, Any],
    *,
    k: int,
    tie_order: str,
    tie_seed: int,
    area: str,
    force: bool,
) -> dict[str, Any]:
    seqs = build_sequences(raw, k=k, tie_order=tie_order, tie_seed=tie_seed)
    has_ties = raw.timestamp is not None and not raw.prefiltered
    manifest = {
        **manifest,
        "k_core": None if raw.prefiltered else k,
        "tie_order": tie_order if has_ties else "file (no timestamps)",
        "tie_seed": tie_seed if has_ties and tie_order == "random" else None,
        "notes": raw.notes,
        "partial": bool(raw.notes.get("partial", False)),
        "text_coverage": round(sum(1 for t in seqs.item_text if t) / max(1, len(seqs.item_text)), 4),
        "code_version": f"tedbench {__version__}, processing v{PROCESSING_VERSION}",
    }
    publish_sequences(out, seqs, manifest, area=area, force=force)
    return paper_counts(seqs)


def prepare_if_missing(
    name: str,
    *,
    data_root: Path,
    mirror: Path | None = None,
    raw_root: Path | None = None,
    k: int = 5,
    tie_order: str = "random",
    tie_seed: int = 2020,
) -> None:
    """Prepare `name` with these settings unless it is already prepared (never downloads)."""
    if not (layout.processed_dir(data_root, name) / "manifest.json").exists():
        prepare(
            name,
            data_root=data_root,
            mirror=mirror,
            raw_root=raw_root,
            k=k,
            tie_order=tie_order,
            tie_seed=tie_seed,
            download=False,
        )


def prepare(
    name: str,
    *,
    data_root: Path,
    mirror: Path | None,
    raw_root: Path | None = None,
    form: str | None = None,
    k: int = 5,
    tie_order: str = "random",
    tie_seed: int = 2020,
    download: bool = True,
    allow_unpinned: bool = False,
    force: bool = False,
) -> dict[str, Any]:
    """Prepare one of the paper's datasets; returns its Table 2 counts.

    An existing folder prepared from identical inputs is left as it is; other inputs need `force`.
    """
    source = get_source(name)
    check_k_core(k)
    out = target_dir(data_root, name)
    clean_orphans(layout.raw_root(raw_root) / name)
    chosen, paths, digests = resolve(
        source, mirror, layout.raw_root(raw_root) / name, form=form, download=download, allow_unpinned=allow_unpinned
    )
    raw = chosen.read(paths)
    manifest = {
        "dataset": source.name,
        "title": source.title,
        "licence": source.licence,
        "form": chosen.name,
        "source_files": digests,
        "paper_counts": source.paper_counts,
    }
    counts = _write(raw, out, manifest, k=k, tie_order=tie_order, tie_seed=tie_seed, area="prepare", force=force)
    report_unpinned(chosen, digests)
    return counts


def import_recbole(
    name: str,
    *,
    data_root: Path,
    atomic: Path | None = None,
    item_file: Path | None = None,
    benchmark_dir: Path | None = None,
    text_fields: Sequence[str] | None = None,
    columns: readers.Columns | None = None,
    k: int = 5,
    tie_order: str = "random",
    tie_seed: int = 2020,
    force: bool = False,
) -> dict[str, Any]:
    """Import any RecBole dataset: atomic `.inter` (+ `.item`) files, or benchmark files (+ `NAME.text` or `NAME.item`).

    The item text is the `.item` file's `text_fields` joined by `join_fields` (default: every field but the item id
    of type token, token_seq or float); `columns` names the user/item/time fields of atomic files. Both are recorded
    in the manifest. The name must not be one of the built-in datasets; an existing import of the same name is left
    as it is when the inputs are identical and replaced only with `force` otherwise.
    """
    safe_name(name, "--name")
    builtin = {source.casefold(): source for source in SOURCES}.get(name.casefold())
    if builtin:
        raise TedbenchError(
            f"--name {name!r} is the built-in dataset {builtin!r} (use `tedbench prepare`); choose another name"
        )
    if (atomic is None) == (benchmark_dir is None):
        raise TedbenchError("give exactly one of --atomic FILE.inter or --benchmark DIR")
    if item_file is not None and atomic is None:
        raise TedbenchError("--item goes with --atomic (benchmark files take their text from NAME.text or NAME.item)")
    if columns is not None and atomic is None:
        raise TedbenchError("--field-map goes with --atomic (benchmark files name their fields as RecBole does)")
    check_k_core(k)
    out = target_dir(data_root, name)
    fields = columns or readers.Columns()
    if benchmark_dir is not None:
        item_file = _benchmark_item_file(Path(benchmark_dir), name)
    if text_fields is not None and item_file is None:
        raise TedbenchError(
            "--text-fields chooses fields of an .item file: give --item with --atomic, "
            "or a --benchmark folder with NAME.item (and no NAME.text)"
        )
    rule = None
    if item_file is not None:
        rule = readers.text_fields_for(readers.read_header(item_file), text_fields, fields.item, item_file)
    if atomic is not None:
        raw = readers.read_recbole_atomic(atomic, item_file, rule or [], fields)
        files = [atomic] + ([item_file] if item_file else [])
    else:
        raw = readers.read_recbole_benchmark(benchmark_dir, name)
        if item_file is not None:
            texts, raw.item_attributes = readers.read_item_file(item_file, rule)
            raw.item_text = item_texts_for(raw.item, texts)
        files = sorted(Path(benchmark_dir).glob(f"{name}.*"))
    manifest = {
        "dataset": name,
        "title": f"RecBole import of {name}",
        "licence": "as the imported files'",
        "form": "recbole-atomic" if atomic is not None else "recbole-benchmark",
        "source_files": {Path(f).name: file_digest(Path(f)) for f in files},
        "paper_counts": {},
        **({"text_fields": rule} if rule is not None else {}),
        **({"field_map": columns.as_dict()} if columns is not None else {}),
    }
    counts = _write(raw, out, manifest, k=k, tie_order=tie_order, tie_seed=tie_seed, area="import", force=force)
    if rule is not None:
        how = "as chosen" if text_fields is not None else "default: the fields of type token, token_seq or float"
        logger.info(
            f"{name}: item text = {item_file.name} fields {', '.join(rule) or '(none: empty texts)'} ({how}), "
            "values joined by spaces, '.' at the end"
        )
    return counts


def _benchmark_item_file(directory: Path, name: str) -> Path | None:
    """A benchmark folder's `.item` file for the item text: `NAME.item` when there is no `NAME.text`."""
    item_file = directory / f"{name}.item"
    return item_file if item_file.exists() and not (directory / f"{name}.text").exists() else None
