"""RecBole benchmark releases (UniSRec/TedRec ``<name>.{train,valid,test}.inter``) back to sequences.

UniSRec's ``convert_to_atomic_files`` writes, per user with sequence s (length n, m = n - 2):
train rows (target s[k], input s[:k][-50:]) for k = m-1 down to 1, a valid row (s[:m][-50:], s[m])
and a test row (s[:m+1][-50:], s[m+1]). Without the train file, valid + test give s[-52:].
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from benchmark.data.raw import RawInteractions
from benchmark.data.readers._common import (
    PathLike,
    item_texts_for,
    line_error,
    nonempty_tokens,
    read_bytes,
    read_lines,
    recbole_header,
    split_fields,
)
from benchmark.errors import TedbenchError

#: Histories in the benchmark files are cut to their last 50 items.
MAX_HISTORY = 50

#: EARec's instruction files for Office: (file, whether answers are "Title: … Category: … Brand: …").
EAREC_TEXT_FILES = (("IDs_Text_test.json", False), ("Images_Text_test.json", True))
_LABELLED = re.compile(r"Title: (.*?)(?:\. Category: (.*?))?\. Brand: (.*)", re.S)


class _Row(NamedTuple):
    history: list[str]
    target: str
    line: int


def read_recbole_benchmark(directory: PathLike, name: str, text_path: PathLike | None = None) -> RawInteractions:
    """Full per-user sequences (users in test-file order), timestamp None, ``prefiltered=True``.

    The train file is optional: without it, users whose earliest known window holds 50 items may
    have lost earlier items, which ``notes`` records. Item text comes from ``text_path`` or, if it
    exists, ``<name>.text`` (``item_id:token<TAB>text:token_seq``); otherwise it is "".
    """
    directory = Path(directory)
    test_path, valid_path, train_path = (directory / f"{name}.{split}.inter" for split in ("test", "valid", "train"))
    test, valid = _one_row_per_user(test_path), _one_row_per_user(valid_path)
    train = _rows_by_user(train_path) if train_path.exists() else None
    for user, row in valid.items():
        if user not in test:
            raise line_error(valid_path, row.line, f"user {user!r} has no row in {test_path.name}")

    users, items, lengths = [], [], []
    truncated = full_test_windows = 0
    for user, last in test.items():
        if user not in valid:
            raise line_error(test_path, last.line, f"user {user!r} has no row in {valid_path.name}")
        before = valid[user]
        if (before.history + [before.target])[-MAX_HISTORY:] != last.history:
            raise line_error(valid_path, before.line, f"user {user!r} disagrees with {test_path.name} line {last.line}")
        prefix, earliest = before.history, len(before.history)
        if train is not None:
            prefix, earliest = _train_prefix(train.pop(user, []), before, train_path, user)
        sequence = prefix + [before.target, last.target]
        users.append(user)
        lengths.append(len(sequence))
        items.extend(sequence)
        truncated += earliest == MAX_HISTORY
        full_test_windows += len(last.history) == MAX_HISTORY
    if train:
        user, rows = next(iter(train.items()))
        raise line_error(train_path, rows[0].line, f"user {user!r} has no row in {test_path.name}")

    item = np.asarray(items, dtype=object)
    text_file = directory / f"{name}.text" if text_path is None else Path(text_path)
    texts = _text_file(text_file) if text_path is not None or text_file.exists() else {}
    notes: dict[str, object] = {} if train is not None else {"train_file": "absent"}
    if truncated:
        notes.update(
            partial=True,
            partial_reason=f"{train_path.name} {'missing' if train is None else 'incomplete'}: "
            "users whose earliest known window holds 50 items may have lost earlier items",
            users_possibly_truncated=truncated,
            users_with_50_item_test_history=full_test_windows,
            interactions_recovered=len(item),
        )
    return RawInteractions(
        user=np.repeat(np.asarray(users, dtype=object), lengths),
        item=item,
        timestamp=None,
        item_text=item_texts_for(item, texts),
        prefiltered=True,
        notes=notes,
    )


def read_office_mirror(directory: PathLike) -> RawInteractions:
    """The staged Office form: valid/test files, id maps, and EARec item text for some items.

    Item tokens are the benchmark indices. Items without ``Office.text`` text (all, as staged) take
    EARec's instruction answers ("<title>. <category>. <brand>."), the IDs file first.
    """
    directory = Path(directory)
    raw = read_recbole_benchmark(directory, "Office")
    for column, map_name in ((raw.user, "Office.user2index"), (raw.item, "Office.item2index")):
        map_path = directory / map_name
        known = set(split_fields(read_lines(map_path), "\t", 2, map_path, 1)[:, 1])
        unknown = set(column) - known
        if unknown:
            raise TedbenchError(f"{map_path}: has no index {min(unknown, key=len)!r} used in the .inter files")
    texts: dict[str, str] = {}
    for file_name, labelled in EAREC_TEXT_FILES:
        for item, text in _earec_answers(directory / file_name, labelled):
            texts.setdefault(item, text)
    raw.item_text = {item: text or texts.get(item, "") for item, text in raw.item_text.items()}
    covered = sum(1 for text in raw.item_text.values() if text)
    raw.notes.update(
        partial=True,
        partial_reason="Office.train.inter and Office.text are not available: "
        "some early items and most item text are missing",
        text_items=covered,
        text_coverage=round(covered / len(raw.item_text), 4),
        text_source="EARec IDs_Text_test.json/Images_Text_test.json answers, not TedRec's item text",
    )
    return raw


def _read_rows(path: Path) -> list[tuple[str, _Row]]:
    lines = read_lines(path)
    names = recbole_header(lines, path, ("user_id", "item_id_list", "item_id"))
    fields = split_fields(lines[1:], "\t", len(names), path, 2)
    columns = [fields[:, names.index(name)] for name in ("user_id", "item_id_list", "item_id")]
    nonempty_tokens(columns[0], path, 2, "user_id")
    nonempty_tokens(columns[2], path, 2, "item_id")
    return [
        (user, _Row(history.split(), target, line))
        for line, (user, history, target) in enumerate(zip(*columns), start=2)
    ]


def _one_row_per_user(path: Path) -> dict[str, _Row]:
    rows: dict[str, _Row] = {}
    for user, row in _read_rows(path):
        if user in rows:
            raise line_error(path, row.line, f"second row for user {user!r} (first on line {rows[user].line})")
        rows[user] = row
    return rows


def _rows_by_user(path: Path) -> dict[str, list[_Row]]:
    rows: dict[str, list[_Row]] = {}
    for user, row in _read_rows(path):
        rows.setdefault(user, []).append(row)
    return rows


def _train_prefix(rows: list[_Row], valid: _Row, path: Path, user: str) -> tuple[list[str], int]:
    """A user's items before the valid target, from its train rows; also its first window's length.

    The row whose target is item k holds items k-50..k-1, so each row must continue the
    sequence built from the rows before it (taken from the shortest input on).
    """
    if not rows:
        if len(valid.history) > 1:
            raise TedbenchError(
                f"{path}: no rows for user {user!r}, whose valid history has {len(valid.history)} items"
            )
        return valid.history, len(valid.history)
    ordered = rows if len(rows[0].history) <= len(rows[-1].history) else rows[::-1]
    sequence = list(ordered[0].history)
    for row in ordered:
        if row.history != sequence[-MAX_HISTORY:]:
            raise line_error(path, row.line, f"user {user!r}: input does not continue the user's other train rows")
        sequence.append(row.target)
    if sequence[-MAX_HISTORY:] != valid.history:
        raise line_error(path, ordered[-1].line, f"user {user!r}: train rows disagree with the valid history")
    return sequence, len(ordered[0].history)


def _text_file(path: Path) -> dict[str, str]:
    """``item_id<TAB>text`` lines (the text may hold tabs); the first line per item wins."""
    lines = read_lines(path)
    if recbole_header(lines, path, ("item_id", "text"))[:2] != ["item_id", "text"]:
        raise line_error(path, 1, "expected the header item_id:token<TAB>text:token_seq")
    texts: dict[str, str] = {}
    for line, content in enumerate(lines[1:], start=2):
        item, tab, text = content.partition("\t")
        if not tab:
            raise line_error(path, line, "expected item_id<TAB>text")
        texts.setdefault(item, text)
    return texts


def _earec_answers(path: Path, labelled: bool) -> list[tuple[str, str]]:
    """(item index, text) from an EARec instruction file; [] when the file is absent."""
    if not path.exists():
        return []
    try:
        records = json.loads(read_bytes(path))
    except json.JSONDecodeError as exc:
        raise line_error(path, exc.lineno, f"not valid JSON ({exc.msg})") from None
    if not isinstance(records, list):
        raise TedbenchError(f"{path}: expected a JSON list of records")
    answers = []
    for number, record in enumerate(records, start=1):
        try:
            text = next(turn["value"] for turn in record["conversations"] if turn["from"] == "gpt")
            item = str(record["id"])
        except (KeyError, TypeError, StopIteration):
            raise TedbenchError(f"{path}: record {number} has no id or no gpt answer") from None
        if labelled:
            match = _LABELLED.fullmatch(text)
            if match is None:
                raise TedbenchError(f"{path}: record {number}: answer is not 'Title: … Brand: …'")
            text = ". ".join(part for part in match.groups() if part is not None)
        answers.append((item, text))
    return answers
