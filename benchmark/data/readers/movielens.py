"""MovieLens 1M from the GroupLens zip (its RecBole atomic form is read by `recbole_atomic`)."""

from __future__ import annotations

import re
import zipfile
import zlib

import pandas as pd

from benchmark.data.raw import RawInteractions
from benchmark.data.readers._common import (
    PathLike,
    as_tokens,
    decode_lines,
    item_texts_for,
    join_fields,
    parse_int,
    split_fields,
)
from benchmark.errors import TedbenchError

#: TedRec's ml-1m item text: ``movie_title + " " + release_year + " " + genre + "."``.
ML1M_TEXT_FIELDS: tuple[str, ...] = ("movie_title", "release_year", "genre")

_TITLE_YEAR = re.compile(r"(.*) \((\d{4})\)")


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
