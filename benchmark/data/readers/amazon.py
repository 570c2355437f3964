"""Amazon Reviews 2018 (ratings-only CSV + metadata), per TedRec/UniSRec ``process_amazon.py``."""

from __future__ import annotations

import csv
import html
import json
import re
import warnings

import numpy as np
import pandas as pd

from benchmark.data.raw import RawInteractions
from benchmark.data.readers._common import (
    GZIP_ERRORS,
    PathLike,
    item_texts_for,
    line_error,
    open_binary,
    parse_float,
    parse_int,
)
from benchmark.errors import TedbenchError

#: Metadata keys joined into the item text, in this order.
TEXT_KEYS = ("title", "category", "brand")
MAX_TEXT_CHARS = 2000

_DROPPED_CHARS = re.compile(r'["\n\r]')
_PARSER_LINE = re.compile(r"line (\d+)")


def clean_text(raw: object) -> str:
    """UniSRec's ``clean_text``: join lists, unescape HTML, drop ``"``/newlines, end in one ".".

    As in the reference, the first character is never stripped even when it is a dot ("." and
    "..." both become ".."), and a result of 2000 characters or more becomes "".
    """
    if isinstance(raw, list):
        text = " ".join(raw)
    elif isinstance(raw, dict):
        text = str(raw)
    else:
        text = raw
    text = _DROPPED_CHARS.sub("", html.unescape(text))
    text = text[:1] + text[1:].rstrip(".") + "."
    return "" if len(text) >= MAX_TEXT_CHARS else text


def read_amazon2018(ratings_csv: PathLike, meta_json_gz: PathLike) -> RawInteractions:
    """Ratings (``item,user,rating,time`` lines, no header) of items that have metadata.

    Repeated (user, item, rating, time) tuples keep their first occurrence; rows stay in file order.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # extra fields on line 1
            table = pd.read_csv(
                ratings_csv,
                sep=",",
                header=None,
                names=["item", "user", "rating", "time"],
                index_col=False,
                dtype=str,
                quoting=csv.QUOTE_NONE,
                na_filter=False,
                skip_blank_lines=False,
                encoding="utf-8",
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning) as exc:
        found = _PARSER_LINE.search(str(exc))  # the warning only ever concerns line 1
        if found is None and isinstance(exc, pd.errors.ParserError):
            raise TedbenchError(f"{ratings_csv}: unreadable ratings file ({exc})") from None
        line = int(found[1]) if found else 1
        raise line_error(ratings_csv, line, "expected 4 fields: item,user,rating,time") from None
    except UnicodeDecodeError:
        raise TedbenchError(f"{ratings_csv}: not valid utf-8 text") from None
    except GZIP_ERRORS as exc:
        raise TedbenchError(f"{ratings_csv}: unreadable, corrupt or truncated file ({exc})") from None
    rows = pd.DataFrame(
        {
            "user": table["user"].to_numpy(dtype=object),
            "item": table["item"].to_numpy(dtype=object),
            "rating": parse_float(table["rating"].to_numpy(dtype=object), ratings_csv, 1, "rating"),
            "time": parse_int(table["time"].to_numpy(dtype=object), ratings_csv, 1, "time"),
        }
    ).drop_duplicates()
    meta_items, texts, categories = _read_meta(meta_json_gz, set(rows["item"]))
    rows = rows[rows["item"].isin(meta_items)]
    item = rows["item"].to_numpy(dtype=object)
    return RawInteractions(
        user=rows["user"].to_numpy(dtype=object),
        item=item,
        timestamp=rows["time"].to_numpy(dtype=np.int64),
        item_text=item_texts_for(item, texts),
        item_attributes=categories,
    )


def _read_meta(path: PathLike, wanted: set[str]) -> tuple[set[str], dict[str, str], dict[str, list[str]]]:
    """All metadata ASINs, and the text and the categories (the `category` list, DIF-SR's attribute labels)
    of each wanted item from its first metadata record."""
    asins: set[str] = set()
    texts: dict[str, str] = {}
    categories: dict[str, list[str]] = {}
    with open_binary(path) as fh:
        try:
            for line, raw in enumerate(fh, start=1):
                try:
                    record = json.loads(raw)
                    asin = record["asin"]
                    if asin in wanted and asin not in texts:
                        texts[asin] = "".join(clean_text(record[key]) + " " for key in TEXT_KEYS if key in record)
                        listed = record.get("category")
                        categories[asin] = list(dict.fromkeys(map(str, listed))) if isinstance(listed, list) else []
                except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
                    reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid utf-8"
                    raise line_error(path, line, f"not a strict JSON object ({reason})") from None
                except (KeyError, TypeError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                    raise line_error(path, line, f"not an Amazon metadata record ({reason})") from None
                asins.add(asin)
        except GZIP_ERRORS as exc:
            raise TedbenchError(f"{path}: corrupt or truncated gzip file ({exc})") from None
    if not asins:
        raise TedbenchError(f"{path}: no metadata records")
    return asins, texts, categories
