"""MovieLens 1M, from the GroupLens zip or from RecBole atomic files (``.inter`` + ``.item``)."""

from __future__ import annotations

import re
import zipfile
import zlib
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from benchmark.data.raw import RawInteractions
from benchmark.data.readers._common import (
    PathLike,
    as_tokens,
    decode_lines,
    item_texts_for,
    line_error,
    nonempty_tokens,
    parse_float,
    parse_int,
    read_lines,
    recbole_header,
    split_fields,
)
from benchmark.errors import TedbenchError

#: TedRec's ml-1m item text: ``movie_title + " " + release_year + " " + genre + "."``.
ML1M_TEXT_FIELDS: tuple[str, ...] = ("movie_title", "release_year", "genre")

#: The ``.item`` field (token_seq) ``read_recbole_atomic`` takes the item attributes from, as DIF-SR's labels.
ATTRIBUTE_FIELD = "genre"

#: Item text rule for ``read_recbole_atomic``: field names joined by single spaces plus ".",
#: or a callable mapping the ``.item`` table (bare field names, str values) to one text per row.
TextRule = Sequence[str] | Callable[[pd.DataFrame], pd.Series]

_TITLE_YEAR = re.compile(r"(.*) \((\d{4})\)")


def join_fields(frame: pd.DataFrame, fields: Sequence[str]) -> pd.Series:
    """``frame[f1] + " " + frame[f2] + ... + "."`` per row (TedRec's rule for ml-1m)."""
    text = frame[fields[0]]
    for name in fields[1:]:
        text = text + " " + frame[name]
    return text + "."


def read_ml1m_zip(zip_path: PathLike) -> RawInteractions:
    """GroupLens ``ml-1m.zip``: ratings.dat rows in file order, timestamps, TedRec item text."""
    ratings_name, movies_name = "ml-1m/ratings.dat", "ml-1m/movies.dat"
    try:
        with zipfile.ZipFile(zip_path) as archive:
            ratings, movies = archive.read(ratings_name), archive.read(movies_name)
    except KeyError as exc:
        raise TedbenchError(f"{zip_path}: not the GroupLens ml-1m archive ({exc.args[0]})") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError) as exc:
        raise TedbenchError(f"{zip_path}: corrupt or truncated zip archive ({exc})") from None

    where = f"{zip_path} ({ratings_name})"
    rows = split_fields(decode_lines(ratings, where, "latin-1"), "::", 4, where, 1)
    timestamp = parse_int(rows[:, 3], where, 1, "timestamp")

    where = f"{zip_path} ({movies_name})"
    movie_rows = split_fields(decode_lines(movies, where, "latin-1"), "::", 3, where, 1)
    titles, years = [], []
    for title in movie_rows[:, 1]:
        match = _TITLE_YEAR.fullmatch(title)  # without " (YYYY)" (1 movie): whole title, empty year
        titles.append(match[1] if match else title)
        years.append(match[2] if match else "")
    frame = pd.DataFrame(
        {
            "movie_title": as_tokens(titles),
            "release_year": as_tokens(years),
            "genre": as_tokens([genres.replace("|", " ") for genres in movie_rows[:, 2]]),
        }
    )
    texts = dict(zip(movie_rows[:, 0], join_fields(frame, ML1M_TEXT_FIELDS)))
    return RawInteractions(
        user=rows[:, 0].copy(),
        item=rows[:, 1].copy(),
        timestamp=timestamp,
        item_text=item_texts_for(rows[:, 1], texts),
        item_attributes={movie: genres.split("|") for movie, genres in zip(movie_rows[:, 0], movie_rows[:, 2])},
    )


def read_recbole_atomic(
    inter_path: PathLike, item_path: PathLike | None = None, text_fields: TextRule = ML1M_TEXT_FIELDS
) -> RawInteractions:
    """RecBole atomic ``.inter`` (fields ``user_id``, ``item_id``, optional ``timestamp``) and ``.item``.

    Without a ``timestamp`` field the timestamp is None (file order within a user is the time order).
    Item text comes from ``item_path`` by ``text_fields``; without it every item's text is "". The item
    attributes are the tokens of the ``.item`` file's ``genre`` field (RecBole's ml-1m), if it has one.
    """
    lines = read_lines(inter_path)
    names = recbole_header(lines, inter_path, ("user_id", "item_id"))
    rows = split_fields(lines[1:], "\t", len(names), inter_path, 2)
    user, item = rows[:, names.index("user_id")].copy(), rows[:, names.index("item_id")].copy()
    nonempty_tokens(user, inter_path, 2, "user_id")
    nonempty_tokens(item, inter_path, 2, "item_id")
    timestamp = None
    if "timestamp" in names:
        seconds = parse_float(rows[:, names.index("timestamp")], inter_path, 2, "timestamp")
        fractional = np.flatnonzero(seconds != np.floor(seconds))
        if fractional.size:
            i = int(fractional[0])
            raise line_error(inter_path, i + 2, f"timestamp {float(seconds[i])!r} is not a whole number of seconds")
        timestamp = seconds.astype(np.int64)
    texts, attributes = ({}, None) if item_path is None else _atomic_item_texts(item_path, text_fields)
    return RawInteractions(
        user=user, item=item, timestamp=timestamp, item_text=item_texts_for(item, texts), item_attributes=attributes
    )


def _atomic_item_texts(
    item_path: PathLike, text_fields: TextRule
) -> tuple[dict[str, str], dict[str, list[str]] | None]:
    """Item text by `text_fields`, and the item attributes (the `ATTRIBUTE_FIELD` tokens) if that field exists."""
    lines = read_lines(item_path)
    names = recbole_header(lines, item_path, ("item_id",))
    frame = pd.DataFrame(split_fields(lines[1:], "\t", len(names), item_path, 2), columns=names)
    nonempty_tokens(frame["item_id"].to_numpy(dtype=object), item_path, 2, "item_id")
    if callable(text_fields):
        texts = text_fields(frame)
    else:
        missing = [name for name in text_fields if name not in names]
        if missing:
            raise TedbenchError(f"{item_path}: no field {missing[0]!r} for the item text (fields: {', '.join(names)})")
        texts = join_fields(frame, text_fields)
    ids, texts = frame["item_id"].to_numpy(dtype=object), np.asarray(texts, dtype=object)
    attributes = None
    if ATTRIBUTE_FIELD in names:
        values = frame[ATTRIBUTE_FIELD].to_numpy(dtype=object)
        attributes = dict(zip(ids[::-1], (value.split() for value in values[::-1])))
    return dict(zip(ids[::-1], texts[::-1])), attributes  # reversed, so the first row of a repeated id wins
