"""Helpers the readers share: reading files, splitting delimited lines, parsing numbers."""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Mapping, Sequence
from typing import IO

import numpy as np
import pandas as pd

from benchmark.errors import TedbenchError

PathLike = str | os.PathLike[str]

#: What reading a corrupt or truncated gzip stream can raise.
GZIP_ERRORS = (OSError, EOFError, zlib.error)


def line_error(name: object, line: int, message: str) -> TedbenchError:
    """A one-line error naming the file and its 1-based line."""
    return TedbenchError(f"{name}: line {line}: {message}")


def open_binary(path: PathLike) -> IO[bytes]:
    """Open a file for reading, transparently un-gzipping names ending in .gz."""
    try:
        return gzip.open(path, "rb") if os.fspath(path).endswith(".gz") else open(path, "rb")
    except OSError as exc:
        raise TedbenchError(f"{path}: cannot open ({exc.strerror or exc})") from None


def read_bytes(path: PathLike) -> bytes:
    """The whole (un-gzipped) content of a file."""
    with open_binary(path) as fh:
        try:
            return fh.read()
        except GZIP_ERRORS as exc:
            raise TedbenchError(f"{path}: corrupt or truncated gzip file ({exc})") from None


def decode_text(data: bytes, name: object, encoding: str = "utf-8") -> str:
    """`data` decoded; an undecodable byte is an error naming its line."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise line_error(name, line, f"not valid {encoding} text") from None


def decode_lines(data: bytes, name: object, encoding: str = "utf-8") -> list[str]:
    """Split bytes into text lines (no line ends); a final newline adds no empty line."""
    lines = decode_text(data, name, encoding).replace("\r\n", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()
    return lines


def read_lines(path: PathLike, encoding: str = "utf-8") -> list[str]:
    """The text lines of a (possibly gzipped) file."""
    return decode_lines(read_bytes(path), path, encoding)


def split_fields(lines: list[str], sep: str, ncols: int, name: object, first_line: int) -> np.ndarray:
    """Split every line into exactly ``ncols`` fields: an (n, ncols) object array of str.

    ``first_line`` is the 1-based line number of ``lines[0]`` in the file, for errors.
    """
    counts = np.fromiter((line.count(sep) for line in lines), dtype=np.int64, count=len(lines))
    bad = np.flatnonzero(counts != ncols - 1)
    if bad.size:
        i = int(bad[0])
        raise line_error(name, first_line + i, f"expected {ncols} fields separated by {sep!r}, found {counts[i] + 1}")
    if not lines:
        return np.empty((0, ncols), dtype=object)
    return np.array(sep.join(lines).split(sep), dtype=object).reshape(len(lines), ncols)


def parse_int(values: np.ndarray, name: object, lines: np.ndarray | int, what: str) -> np.ndarray:
    """Parse decimal integer strings to int64; ``lines`` maps rows to file lines (or is the first line)."""
    series = pd.Series(values, dtype=object)
    parsed = pd.to_numeric(series, errors="coerce")
    if parsed.dtype.kind == "i":
        return parsed.to_numpy(dtype=np.int64)
    syntax_ok = series.str.fullmatch(r"\s*[+-]?\d+\s*").fillna(False).to_numpy(dtype=bool)
    i = int(np.flatnonzero(~(syntax_ok & (parsed.astype(float).abs() < 2.0**62).to_numpy()))[0])
    raise line_error(name, _line_of(lines, i), f"{what} {values[i]!r} is not an integer")


def parse_float(values: np.ndarray, name: object, lines: np.ndarray | int, what: str) -> np.ndarray:
    """Parse number strings to float64, refusing anything that is not a finite number."""
    parsed = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(parsed))
    if bad.size:
        i = int(bad[0])
        raise line_error(name, _line_of(lines, i), f"{what} {values[i]!r} is not a number")
    return parsed


def _line_of(lines: np.ndarray | int, i: int) -> int:
    return lines + i if isinstance(lines, int) else int(lines[i])


def as_tokens(values: object) -> np.ndarray:
    """A 1-d object array of str (the form ``RawInteractions`` holds ids in)."""
    return np.asarray(values, dtype=object)


def item_texts_for(items: np.ndarray, texts: Mapping[str, str]) -> dict[str, str]:
    """Text of every distinct item in ``items``; "" where there is none."""
    return {item: texts.get(item, "") for item in pd.unique(items)}


def unique_columns(names: Sequence[str], path: object, line: int = 1) -> None:
    """Refuse a header that names one column twice (which copy is meant would be a guess)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise line_error(path, line, f"column {name!r} appears twice in the header; each column must be named once")
        seen.add(name)


def nonempty_tokens(values: np.ndarray, path: object, first_line: int, what: str) -> None:
    """Refuse empty (or blank) id fields; ``first_line`` is the file line of ``values[0]``."""
    blank = np.flatnonzero(pd.Series(values, dtype=object).str.strip().eq("").to_numpy(dtype=bool))
    if blank.size:
        raise line_error(path, first_line + int(blank[0]), f"empty {what}")


def recbole_header(lines: list[str], path: PathLike, required: Sequence[str]) -> list[str]:
    """Bare field names of a RecBole atomic header (``name:type``), checking the required ones."""
    if not lines:
        raise TedbenchError(f"{path}: empty file, expected a RecBole header line")
    names = [field.split(":", 1)[0] for field in lines[0].split("\t")]
    unique_columns(names, path)
    for name in required:
        if name not in names:
            raise line_error(path, 1, f"header has no {name!r} field: {lines[0]!r}")
    return names


def join_fields(frame: pd.DataFrame, fields: Sequence[str]) -> pd.Series:
    """Item text per row of `frame` (str columns): the values of `fields` in order joined by single spaces (an empty
    value leaves two), then "." after the text less its trailing whitespace, unless it already ends with "." (then
    it is kept as it is); "" when every value is blank.

    TedRec's ml-1m rule (``"<title> <year> <genres>."``), and the rule for any RecBole ``.item`` file.
    """
    if not fields:
        return pd.Series("", index=frame.index, dtype=object)
    text = frame[fields[0]].astype(object)
    for name in fields[1:]:
        text = text + " " + frame[name]
    stripped = text.str.rstrip()
    text = text.where(stripped.str.endswith("."), stripped + ".")
    return text.where(stripped.ne(""), "")
