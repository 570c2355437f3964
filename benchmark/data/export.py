"""`tedbench export --format recbole`: a processed dataset as RecBole benchmark files.

RecBole's pre-split form for sequential data (`benchmark_filename: [train, valid, test]`, read with
`alias_of_item_id: [item_id_list]`): one `NAME.<split>.inter` per split, header
`user_id:token  item_id_list:token_seq  item_id:token`, one line per row of tedbench's leave-one-out split
(`benchmark.data.splits`): the target, and its history cut to the last 50 items as space-separated tokens. Users
come in the dataset's order, a user's train rows in time order; ids are the source's tokens. `NAME.item`
(`item_id:token  text:token_seq`) holds the text of every item that has one. The files are written into a staging
folder that replaces the output folder as a whole, so a failed export leaves nothing half-written.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.process import Sequences
from benchmark.data.readers.recbole_benchmark import MAX_HISTORY
from benchmark.data.splits import Rows, build_splits
from benchmark.data.store import load_sequences
from benchmark.errors import TedbenchError
from benchmark.fsutil import atomic_dir, clean_orphans
from benchmark.layout import processed_dir
from benchmark.log import logger

SPLITS = ("train", "valid", "test")
INTER_HEADER = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
ITEM_HEADER = "item_id:token\ttext:token_seq\n"
#: The names an export writes (after `NAME`): all that `--force` may replace.
EXPORT_SUFFIXES = tuple(f".{split}.inter" for split in SPLITS) + (".item",)

_BREAKS_LINE = re.compile(r"[\t\n\r]")
_BREAKS_TOKEN_SEQ = re.compile(r"\s")


def export_recbole(name: str, *, data_root: Path, out: Path, force: bool = False) -> dict[str, Any]:
    """Write dataset `name` as RecBole benchmark files into the folder `out`; returns the rows per file.

    A non-empty `out` is refused, and with `force` replaced only when it holds nothing but exported files.
    """
    folder = processed_dir(data_root, name)
    seqs = load_sequences(folder)
    out = Path(out)
    _check_out(out, force)
    _check_tokens(seqs, folder)
    try:
        splits = build_splits(seqs, MAX_HISTORY)
    except ValueError as exc:
        raise TedbenchError(f"{folder}: {exc}") from None
    interaction_tokens = np.asarray(["[PAD]", *seqs.item_tokens], dtype=object)[seqs.items].tolist()
    rows: dict[str, int] = {}
    clean_orphans(out.parent, out.name)
    with atomic_dir(out) as staging:
        for split in SPLITS:
            path = staging / f"{name}.{split}.inter"
            rows[path.name] = _write_rows(path, getattr(splits, split), seqs, interaction_tokens)
        texts = [(item, text) for item, text in zip(seqs.item_tokens, seqs.item_text) if text]
        if texts:
            with open(staging / f"{name}.item", "w", encoding="utf-8", newline="\n") as fh:
                fh.write(ITEM_HEADER)
                fh.writelines(f"{item}\t{text}\n" for item, text in texts)
            rows[f"{name}.item"] = len(texts)
    logger.info(
        f"RecBole reads {out} as dataset {name!r} from data_path {out.parent}"
        f"{'' if out.name == name else f' once the folder is named {name}'}, with "
        "benchmark_filename: [train, valid, test] and alias_of_item_id: [item_id_list]"
    )
    return {"dataset": name, "format": "recbole", "out": str(out), "rows": rows}


def _write_rows(path: Path, rows: Rows, seqs: Sequences, tokens: list[str]) -> int:
    """One line per row: user token, the target's history (at most `MAX_HISTORY` tokens), the target token;
    `tokens` holds the item token of every interaction, indexed as `seqs.items`."""
    targets = rows.target_pos.numpy()
    starts = rows.user_start.numpy()
    users = np.searchsorted(seqs.offsets[:-1], starts)
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(INTER_HEADER)
        for user, start, target in zip(users.tolist(), starts.tolist(), targets.tolist()):
            history = " ".join(tokens[max(start, target - MAX_HISTORY) : target])
            fh.write(f"{seqs.user_tokens[user]}\t{history}\t{tokens[target]}\n")
    return len(targets)


def _check_out(out: Path, force: bool) -> None:
    """Refuse an output path that is a link or a file, or a non-empty folder (with `force`: one holding other files)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise TedbenchError(f"--out {out}: is a link or a file, not a folder; refusing to write through it")
    entries = sorted(p.name for p in out.iterdir()) if out.exists() else []
    if entries and not force:
        raise TedbenchError(
            f"--out {out}: not empty ({', '.join(entries[:5])}{', ...' if len(entries) > 5 else ''}); "
            "pass --force to replace an earlier export"
        )
    others = [e for e in entries if not (e.endswith(EXPORT_SUFFIXES) and (out / e).is_file())]
    if others:
        raise TedbenchError(
            f"--out {out}: holds more than RecBole benchmark files ({', '.join(others[:5])}); "
            "--force replaces only an earlier export: choose an empty folder"
        )


def _check_tokens(seqs: Sequences, folder: Path) -> None:
    """Refuse what the files cannot hold: whitespace in item tokens (token_seq lists), tabs or line breaks elsewhere."""
    checks = (
        ("items.txt", "item token", seqs.item_tokens, _BREAKS_TOKEN_SEQ, "whitespace (item lists are space-separated)"),
        ("users.txt", "user token", seqs.user_tokens, _BREAKS_LINE, "a tab or line break"),
        ("item_text.jsonl", "item text", seqs.item_text, _BREAKS_LINE, "a tab or line break"),
    )
    for file_name, what, values, pattern, problem in checks:
        for line, value in enumerate(values, start=1):
            if pattern.search(value):
                raise TedbenchError(
                    f"{folder / file_name}: line {line}: {what} {value[:60]!r} holds {problem}, "
                    "which RecBole's tab-separated files cannot hold"
                )
