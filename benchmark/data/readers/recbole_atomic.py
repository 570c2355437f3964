"""RecBole atomic files: ``.inter`` (user, item, optional time) and ``.item`` (item text from chosen fields).

A header is one line of tab-separated ``name:type`` fields, type one of RecBole's ``token``, ``token_seq``,
``float``, ``float_seq``. The user, item and time columns are RecBole's ``user_id``, ``item_id`` and
``timestamp`` unless `Columns` names others. Item text is `join_fields` of the chosen ``.item`` fields.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.data.raw import RawInteractions
from benchmark.data.readers._common import (
    GZIP_ERRORS,
    PathLike,
    decode_lines,
    item_texts_for,
    join_fields,
    line_error,
    nonempty_tokens,
    open_binary,
    parse_float,
    read_lines,
    split_fields,
    unique_columns,
)
from benchmark.data.readers.movielens import ML1M_TEXT_FIELDS
from benchmark.errors import TedbenchError

#: The field types of RecBole atomic files.
FIELD_TYPES = ("token", "token_seq", "float", "float_seq")

#: The field types that make up an item's text unless the fields are chosen.
TEXT_TYPES = ("token", "token_seq", "float")

#: The ``.item`` field (token_seq) the item attributes come from, as DIF-SR's labels (RecBole's ml-1m genres).
ATTRIBUTE_FIELD = "genre"

#: Item text rule: ``.item`` field names for `join_fields`, or a callable mapping the ``.item`` table
#: (bare field names, str values) to one text per row.
TextRule = Sequence[str] | Callable[[pd.DataFrame], pd.Series]

#: A header's fields as (name, type) pairs, in file order.
Fields = list[tuple[str, str]]


@dataclass(frozen=True)
class Columns:
    """The user, item and time columns' names; time None: ``timestamp`` if the ``.inter`` file has one."""

    user: str = "user_id"
    item: str = "item_id"
    time: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Columns:
        """``user=COL,item=COL,time=COL`` (any of the three, each at most once), as ``--field-map`` takes it."""
        names: dict[str, str] = {}
        for pair in spec.split(","):
            role, equals, name = (part.strip() for part in pair.partition("="))
            if role not in ("user", "item", "time") or not equals or not name or role in names:
                raise TedbenchError(
                    f"--field-map {spec!r}: expected ROLE=FIELD pairs separated by commas, each ROLE (user, item, "
                    "time) at most once, e.g. user=reviewerID,item=asin,time=unixReviewTime"
                )
            names[role] = name
        return cls(**names)

    def as_dict(self) -> dict[str, str | None]:
        return {"user": self.user, "item": self.item, "time": self.time}


def field_list(spec: str) -> list[str]:
    """``A,B,...`` as ``--text-fields`` takes it: field names in order, none empty or repeated."""
    names = [name.strip() for name in spec.split(",")]
    if not all(names) or len(set(names)) != len(names):
        raise TedbenchError(f"--text-fields {spec!r}: expected .item field names separated by commas, each once")
    return names


def typed_fields(lines: list[str], path: PathLike) -> Fields:
    """The (name, type) fields of the header ``lines[0]``; a malformed header is an error naming its line."""
    if not lines:
        raise TedbenchError(f"{path}: empty file, expected a RecBole header line")
    fields = []
    for number, field in enumerate(lines[0].split("\t"), start=1):
        name, _, kind = field.partition(":")
        if not name.strip() or kind not in FIELD_TYPES:
            raise line_error(
                path, 1, f"header field {number} {field!r} is not NAME:TYPE with TYPE one of {', '.join(FIELD_TYPES)}"
            )
        fields.append((name, kind))
    unique_columns([name for name, _ in fields], path)
    return fields


def read_header(path: PathLike) -> Fields:
    """The typed fields of a RecBole atomic file's header, reading its first line only."""
    with open_binary(path) as fh:
        try:
            first = fh.readline()
        except GZIP_ERRORS as exc:
            raise TedbenchError(f"{path}: corrupt or truncated gzip file ({exc})") from None
    return typed_fields(decode_lines(first, path), path)


def describe(fields: Fields) -> str:
    """``name:type, name:type, ...``, for errors."""
    return ", ".join(f"{name}:{kind}" for name, kind in fields)


def field_index(fields: Fields, name: str, role: str, path: PathLike) -> int:
    """Position of the field `name`, which holds the `role` (user, item or time) column."""
    names = [field for field, _ in fields]
    if name not in names:
        raise line_error(
            path,
            1,
            f"header has no {name!r} field for the {role} (fields found: {describe(fields)}); "
            f"name the {role} field with --field-map {role}=FIELD",
        )
    return names.index(name)


def text_fields_for(fields: Fields, requested: Sequence[str] | None, item_column: str, path: PathLike) -> list[str]:
    """The ``.item`` fields the item text is made of: `requested` (all must exist) or, when None, every field
    other than the item column whose type is token, token_seq or float, in file order."""
    if requested is None:
        return [name for name, kind in fields if name != item_column and kind in TEXT_TYPES]
    names = {name for name, _ in fields}
    for name in requested:
        if name not in names:
            raise line_error(path, 1, f"no field {name!r} for the item text (fields found: {describe(fields)})")
    return list(requested)


def read_recbole_atomic(
    inter_path: PathLike,
    item_path: PathLike | None = None,
    text_fields: TextRule = ML1M_TEXT_FIELDS,
    columns: Columns = Columns(),
) -> RawInteractions:
    """A RecBole ``.inter`` file and, optionally, its ``.item`` file.

    Without a time column the timestamp is None (file order within a user is the time order). Item text comes
    from ``item_path`` by ``text_fields`` (by default ml-1m's); without it every item's text is "". The item
    attributes are the tokens of the ``.item`` file's ``genre`` field (RecBole's ml-1m), if it has one.
    """
    lines = read_lines(inter_path)
    fields = typed_fields(lines, inter_path)
    rows = split_fields(lines[1:], "\t", len(fields), inter_path, 2)
    user = rows[:, field_index(fields, columns.user, "user", inter_path)].copy()
    item = rows[:, field_index(fields, columns.item, "item", inter_path)].copy()
    nonempty_tokens(user, inter_path, 2, columns.user)
    nonempty_tokens(item, inter_path, 2, columns.item)
    timestamp = None
    if columns.time is not None or "timestamp" in (name for name, _ in fields):
        time = columns.time or "timestamp"
        seconds = parse_float(rows[:, field_index(fields, time, "time", inter_path)], inter_path, 2, time)
        fractional = np.flatnonzero(seconds != np.floor(seconds))
        if fractional.size:
            i = int(fractional[0])
            raise line_error(inter_path, i + 2, f"{time} {float(seconds[i])!r} is not a whole number of seconds")
        timestamp = seconds.astype(np.int64)
    texts, attributes = ({}, None) if item_path is None else read_item_file(item_path, text_fields, columns.item)
    return RawInteractions(
        user=user, item=item, timestamp=timestamp, item_text=item_texts_for(item, texts), item_attributes=attributes
    )


def read_item_file(
    item_path: PathLike, text_fields: TextRule, item_column: str = "item_id"
) -> tuple[dict[str, str], dict[str, list[str]] | None]:
    """Item text by `text_fields`, and the item attributes (the `ATTRIBUTE_FIELD` tokens) if that field exists.

    The first row of a repeated item id wins.
    """
    lines = read_lines(item_path)
    fields = typed_fields(lines, item_path)
    field_index(fields, item_column, "item", item_path)
    names = [name for name, _ in fields]
    frame = pd.DataFrame(split_fields(lines[1:], "\t", len(names), item_path, 2), columns=names)
    ids = frame[item_column].to_numpy(dtype=object)
    nonempty_tokens(ids, item_path, 2, item_column)
    if callable(text_fields):
        texts = text_fields(frame)
    else:
        texts = join_fields(frame, text_fields_for(fields, text_fields, item_column, item_path))
    texts = np.asarray(texts, dtype=object)
    attributes = None
    if ATTRIBUTE_FIELD in names:
        values = frame[ATTRIBUTE_FIELD].to_numpy(dtype=object)
        attributes = dict(zip(ids[::-1], (value.split() for value in values[::-1])))
    return dict(zip(ids[::-1], texts[::-1])), attributes
