"""Processed datasets on disk: a folder of .npy arrays, token lists, item text and a manifest.

Layout of `<data_root>/processed/<name>/`:
    items.npy        int32   all users' sequences concatenated, time order, ids 1..n_items-1
    offsets.npy      int64   [n_users + 1] user boundaries into items.npy
    users.txt        source user token of internal user u on line u+1
    items.txt        source item token of internal item i on line i (item 1 on line 1)
    item_text.jsonl  JSON string per line: text of item 1, 2, ...
    item_attributes.jsonl  (only for sources with categorical attributes) JSON list of strings per line:
                     the attributes of item 1, 2, ... (ml-1m genres, Amazon categories)
    manifest.json    counts, source checksums, processing options, code version

`write_sequences` fills a staging folder; `benchmark.data.prepare` publishes it in one rename only
when complete. Nothing in it is time-dependent, so preparing twice gives byte-identical folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.data.process import Sequences
from benchmark.errors import TedbenchError
from benchmark.faults import pause_point

FORMAT_VERSION = 1
FILES = ("items.npy", "offsets.npy", "users.txt", "items.txt", "item_text.jsonl", "manifest.json")
ATTRIBUTES_FILE = "item_attributes.jsonl"  # optional: written only when the source has item attributes


def paper_counts(seqs: Sequences) -> dict[str, Any]:
    """Dataset statistics counted as the paper's Table 2 counts them.

    #Interactions is the number of rows of the RecBole benchmark files (train + valid + test),
    i.e. interactions minus one per user; sparsity is RecBole's, with the padding user and item
    included: 1 - rows / ((users + 1) * (items + 1)).
    """
    users, items = seqs.n_users, seqs.n_items - 1
    interactions = int(len(seqs.items))
    rows = interactions - users
    sparsity = 1.0 - rows / ((users + 1) * (items + 1))
    return {
        "users": users,
        "items": items,
        "interactions": rows,
        "raw_interactions": interactions,
        "sparsity": round(100 * sparsity, 4),
        "avg_length": round(interactions / users, 4),
    }


def write_sequences(folder: Path, seqs: Sequences, manifest: dict[str, Any], area: str) -> None:
    """Write `seqs` and its manifest (last) into the staging folder `folder`; `area` names the pause point."""
    np.save(folder / "items.npy", seqs.items.astype(np.int32))
    np.save(folder / "offsets.npy", seqs.offsets.astype(np.int64))
    pause_point(f"{area}.mid_write")
    (folder / "users.txt").write_text("".join(f"{t}\n" for t in seqs.user_tokens), encoding="utf-8")
    (folder / "items.txt").write_text("".join(f"{t}\n" for t in seqs.item_tokens), encoding="utf-8")
    (folder / "item_text.jsonl").write_text(
        "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in seqs.item_text), encoding="utf-8"
    )
    if seqs.item_attributes is not None:
        (folder / ATTRIBUTES_FILE).write_text(
            "".join(json.dumps(a, ensure_ascii=False) + "\n" for a in seqs.item_attributes), encoding="utf-8"
        )
    full = {"format_version": FORMAT_VERSION, **manifest, "counts": paper_counts(seqs)}
    (folder / "manifest.json").write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def load_manifest(directory: Path) -> dict[str, Any]:
    path = Path(directory) / "manifest.json"
    if not path.exists():
        raise TedbenchError(f"{path}: no processed dataset here; run `tedbench prepare` first")
    return json.loads(path.read_text(encoding="utf-8"))


def load_sequences(directory: Path) -> Sequences:
    """Read a processed dataset folder written by `write_sequences`."""
    directory = Path(directory)
    missing = [f for f in FILES if not (directory / f).exists()]
    if missing:
        raise TedbenchError(
            f"{directory}: incomplete processed dataset (missing {', '.join(missing)}); run `tedbench prepare`"
        )
    manifest = load_manifest(directory)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise TedbenchError(
            f"{directory / 'manifest.json'}: format version {manifest.get('format_version')} != {FORMAT_VERSION}; "
            "re-run `tedbench prepare`"
        )
    items = np.load(directory / "items.npy", allow_pickle=False)
    offsets = np.load(directory / "offsets.npy", allow_pickle=False)
    users = (directory / "users.txt").read_text(encoding="utf-8").splitlines()
    item_tokens = (directory / "items.txt").read_text(encoding="utf-8").splitlines()
    texts = [json.loads(line) for line in (directory / "item_text.jsonl").read_text(encoding="utf-8").splitlines()]
    attributes = None
    if (directory / ATTRIBUTES_FILE).exists():
        lines = (directory / ATTRIBUTES_FILE).read_text(encoding="utf-8").splitlines()
        attributes = [json.loads(line) for line in lines]
    seqs = Sequences(
        items=items,
        offsets=offsets,
        user_tokens=users,
        item_tokens=item_tokens,
        item_text=texts,
        item_attributes=attributes,
    )
    bad_attributes = attributes is not None and len(attributes) != len(item_tokens)
    bad_items = int(items.max(initial=0)) >= seqs.n_items
    if seqs.n_users != len(users) or len(texts) != len(item_tokens) or bad_attributes or bad_items:
        raise TedbenchError(f"{directory}: processed files disagree with each other; re-run `tedbench prepare`")
    return seqs
