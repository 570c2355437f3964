"""Dataset readers: tiny fixtures written in the upstream formats, bad input, and the real mirror."""

from __future__ import annotations

import gzip
import json
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from openpyxl import Workbook

from benchmark.data.raw import RawInteractions
from benchmark.data.readers import (
    clean_text,
    read_amazon2018,
    read_ml1m_zip,
    read_office_mirror,
    read_or_csv,
    read_or_rda,
    read_or_xlsx,
    read_recbole_atomic,
    read_recbole_benchmark,
)
from benchmark.errors import TedbenchError


def utc(*args: int) -> int:
    return int(datetime(*args, tzinfo=timezone.utc).timestamp())


def rows(raw: RawInteractions) -> list[tuple]:
    """(user, item[, timestamp]) per row, checking the contract's array types on the way."""
    assert raw.user.dtype == object and raw.item.dtype == object
    assert all(isinstance(v, str) for v in raw.user) and all(isinstance(v, str) for v in raw.item)
    if raw.timestamp is None:
        return list(zip(raw.user, raw.item))
    assert raw.timestamp.dtype == np.int64
    return list(zip(raw.user, raw.item, raw.timestamp.tolist()))


def assert_error(call, *fragments: str) -> None:
    with pytest.raises(TedbenchError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def truncated_copy(path: Path, keep: float = 0.6) -> Path:
    data = path.read_bytes()
    out = path.with_name("cut-" + path.name)
    out.write_bytes(data[: int(len(data) * keep)])
    return out


# --------------------------------------------------------------------------- MovieLens 1M (zip)

ML_RATINGS = (
    "1::1193::5::978300760\n1::661::3::978302109\n2::3::4::978298413\n1::914::3::978301968\n2::1193::5::978298000\n"
)
ML_MOVIES = (
    "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
    "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
    "3::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n"
    "914::My Fair Lady (1964)::Musical|Romance\n"
    "5::Never Rated (2000)::Comedy\n"
)


def write_ml1m_zip(path: Path, ratings: str = ML_RATINGS, movies: str = ML_MOVIES) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("ml-1m/ratings.dat", ratings.encode("latin-1"))
        archive.writestr("ml-1m/movies.dat", movies.encode("latin-1"))
        archive.writestr("ml-1m/users.dat", "1::F::1::10::48067\n")
    return path


def test_ml1m_zip(tmp_path: Path) -> None:
    raw = read_ml1m_zip(write_ml1m_zip(tmp_path / "ml-1m.zip"))
    assert rows(raw) == [
        ("1", "1193", 978300760),
        ("1", "661", 978302109),
        ("2", "3", 978298413),
        ("1", "914", 978301968),
        ("2", "1193", 978298000),
    ]
    assert raw.item_text == {
        "1193": "One Flew Over the Cuckoo's Nest 1975 Drama.",
        "661": "James and the Giant Peach 1996 Animation Children's Musical.",
        "3": "Cité des enfants perdus, La 1995 Adventure Sci-Fi.",
        "914": "My Fair Lady 1964 Musical Romance.",
    }
    assert raw.item_attributes["661"] == ["Animation", "Children's", "Musical"] and raw.item_attributes["1193"] == [
        "Drama"
    ]
    assert not raw.prefiltered


def test_ml1m_zip_bad_input(tmp_path: Path) -> None:
    bad_row = write_ml1m_zip(tmp_path / "a.zip", ratings=ML_RATINGS.replace("2::3::4::978298413", "2::3::4"))
    assert_error(lambda: read_ml1m_zip(bad_row), "a.zip", "ratings.dat", "line 3")
    bad_time = write_ml1m_zip(tmp_path / "b.zip", ratings=ML_RATINGS.replace("978301968", "97830x968"))
    assert_error(lambda: read_ml1m_zip(bad_time), "ratings.dat", "line 4", "timestamp")
    bad_movie = write_ml1m_zip(tmp_path / "c.zip", movies=ML_MOVIES.replace("::Drama", ""))
    assert_error(lambda: read_ml1m_zip(bad_movie), "movies.dat", "line 1")
    whole = write_ml1m_zip(tmp_path / "ml-1m.zip")
    assert_error(lambda: read_ml1m_zip(truncated_copy(whole)), "cut-ml-1m.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("ratings.dat", ML_RATINGS)
    assert_error(lambda: read_ml1m_zip(tmp_path / "other.zip"), "other.zip", "ml-1m/ratings.dat")


# --------------------------------------------------------------------------- RecBole atomic

ATOMIC_ITEM = (
    "item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq\n"
    "1\tToy Story\t1995\tAnimation Children's Comedy\n"
    "2\tJumanji\t1995\tAdventure Children's Fantasy\n"
    "3\tCité des enfants perdus, La\t1995\tAdventure Sci-Fi\n"
    "1\tDuplicate Row\t2000\tDrama\n"
)


def test_recbole_atomic_with_timestamp(tmp_path: Path) -> None:
    inter = tmp_path / "ml-1m.inter"
    inter.write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "1\t3\t5\t978300760.0\n1\t1\t3\t978302109\n2\t2\t4\t978298413\n2\t9\t4\t978298414\n"
    )
    (tmp_path / "ml-1m.item").write_text(ATOMIC_ITEM)
    raw = read_recbole_atomic(inter, tmp_path / "ml-1m.item")
    assert rows(raw) == [("1", "3", 978300760), ("1", "1", 978302109), ("2", "2", 978298413), ("2", "9", 978298414)]
    assert raw.item_text == {
        "3": "Cité des enfants perdus, La 1995 Adventure Sci-Fi.",
        "1": "Toy Story 1995 Animation Children's Comedy.",
        "2": "Jumanji 1995 Adventure Children's Fantasy.",
        "9": "",
    }
    assert raw.item_attributes["1"] == ["Animation", "Children's", "Comedy"]  # the first row of a repeated id
    assert raw.item_attributes["3"] == ["Adventure", "Sci-Fi"] and "9" not in raw.item_attributes


def test_recbole_atomic_without_timestamp_and_text_rules(tmp_path: Path) -> None:
    inter = tmp_path / "x.inter"
    inter.write_text("item_id:token\tuser_id:token\n2\tb\n1\ta\n3\tb\n")
    (tmp_path / "x.item").write_text(ATOMIC_ITEM)
    raw = read_recbole_atomic(inter)
    assert raw.timestamp is None
    assert rows(raw) == [("b", "2"), ("a", "1"), ("b", "3")]
    assert raw.item_text == {"2": "", "1": "", "3": ""} and raw.item_attributes is None
    assert read_recbole_atomic(inter, tmp_path / "x.item", ["movie_title", "genre"]).item_text["1"] == (
        "Toy Story Animation Children's Comedy."
    )
    custom = read_recbole_atomic(inter, tmp_path / "x.item", lambda t: t["movie_title"].str.lower())
    assert custom.item_text["2"] == "jumanji"


def test_recbole_atomic_bad_input(tmp_path: Path) -> None:
    inter = tmp_path / "bad.inter"
    inter.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t5\n1\t3\n")
    assert_error(lambda: read_recbole_atomic(inter), "bad.inter", "line 3", "expected 3 fields")
    inter.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\t5\n1\t3\t5.5\n")
    assert_error(lambda: read_recbole_atomic(inter), "bad.inter", "line 3", "timestamp")
    inter.write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\tsoon\n")
    assert_error(lambda: read_recbole_atomic(inter), "bad.inter", "line 2", "timestamp")
    inter.write_text("user:token\titem_id:token\n1\t2\n")
    assert_error(lambda: read_recbole_atomic(inter), "bad.inter", "line 1", "user_id")
    inter.write_text("user_id:token\titem_id:token\n1\t2\n")
    (tmp_path / "bad.item").write_text("item_id:token\ttitle:token_seq\n2\tA\n")
    assert_error(lambda: read_recbole_atomic(inter, tmp_path / "bad.item"), "bad.item", "movie_title")
    gz = tmp_path / "big.inter.gz"
    gz.write_bytes(gzip.compress(("user_id:token\titem_id:token\n" + "1\t2\n" * 5000).encode()))
    assert len(read_recbole_atomic(gz)) == 5000
    assert_error(lambda: read_recbole_atomic(truncated_copy(gz)), "cut-big.inter.gz")


# --------------------------------------------------------------------------- Online Retail

OR_HEADER = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
# (InvoiceNo, StockCode, Description, Quantity, InvoiceDate) as the xlsx holds them.
OR_ROWS = [
    (536365, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6, datetime(2010, 12, 1, 8, 26)),
    (536365, 71053, "WHITE METAL LANTERN", 6, datetime(2010, 12, 1, 8, 26)),
    (536365.0, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 6.0, datetime(2010, 12, 1, 8, 26)),  # duplicate
    (536366, 22633, None, 6, datetime(2010, 12, 1, 8, 28)),  # no Description: dropped
    (536366, 22633, " HAND WARMER Union Jack ", 6, datetime(2010, 12, 1, 8, 28)),
    ("C536379", "D", "Discount", -1, datetime(2010, 12, 1, 9, 41)),  # cancelled invoice: still a user
    (536367, "85123A", "CREAM HANGING HEART", 8, datetime(2010, 12, 1, 8, 33, 59, 999999)),  # Excel float noise
    (536365, "85123A", "WHITE HANGING HEART T-LIGHT HOLDER", 12, datetime(2010, 12, 1, 8, 26)),  # new quantity
]
OR_EXPECTED_ROWS = [
    ("536365", "85123A", utc(2010, 12, 1, 8, 26)),
    ("536365", "71053", utc(2010, 12, 1, 8, 26)),
    ("536366", "22633", utc(2010, 12, 1, 8, 28)),
    ("C536379", "D", utc(2010, 12, 1, 9, 41)),
    ("536367", "85123A", utc(2010, 12, 1, 8, 34)),
    ("536365", "85123A", utc(2010, 12, 1, 8, 26)),
]
OR_EXPECTED_TEXT = {
    "85123A": "white hanging heart t-light holder.",
    "71053": "white metal lantern.",
    "22633": "hand warmer union jack.",
    "D": "discount.",
}
OR_CSV = (
    "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country\n"
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850,United Kingdom\n"
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850,United Kingdom\n"
    "536366,22633,,6,12/1/2010 8:28,0,,United Kingdom\n"
    '536366,22633," HAND WARMER Union Jack ",6,12/1/2010 8:28,1.85,17850,United Kingdom\n'
    "C536379,D,Discount,-1,12/1/2010 9:41,27.5,14527,United Kingdom\n"
    "536367,85123A,CREAM HANGING HEART,8,12/1/2010 8:34,2.55,13047,United Kingdom\n"
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,12,12/1/2010 8:26,2.55,17850,United Kingdom\n"
)


def write_or_xlsx(path: Path, records: list[tuple] = OR_ROWS) -> Path:
    book = Workbook()
    sheet = book.active
    sheet.title = "Online Retail"
    sheet.append(OR_HEADER)
    for invoice, stock, description, quantity, date in records:
        sheet.append([invoice, stock, description, quantity, date, 2.55, 17850, "United Kingdom"])
    book.save(path)
    return path


def test_or_csv_plain_and_gzip(tmp_path: Path) -> None:
    plain = tmp_path / "data-utf8.csv"
    plain.write_text(OR_CSV)
    packed = tmp_path / "data-utf8.csv.gz"
    packed.write_bytes(gzip.compress(OR_CSV.encode()))
    for path in (plain, packed):
        raw = read_or_csv(path)
        assert rows(raw) == OR_EXPECTED_ROWS
        assert raw.item_text == OR_EXPECTED_TEXT


def test_or_xlsx(tmp_path: Path) -> None:
    raw = read_or_xlsx(write_or_xlsx(tmp_path / "Online Retail.xlsx"))
    assert rows(raw) == OR_EXPECTED_ROWS
    assert raw.item_text == OR_EXPECTED_TEXT


def test_or_rda(tmp_path: Path) -> None:
    pyreadr = pytest.importorskip("pyreadr")
    dates = [r[4] for r in OR_ROWS]
    dates[6] = datetime(2010, 12, 1, 8, 34)  # pyreadr writes datetimes as text, to the second
    frame = pd.DataFrame(
        {
            "InvoiceNo": [str(r[0]).removesuffix(".0") for r in OR_ROWS],
            "StockCode": [str(r[1]) for r in OR_ROWS],
            "Description": [r[2] for r in OR_ROWS],
            "Quantity": [float(r[3]) for r in OR_ROWS],
            "InvoiceDate": pd.to_datetime(dates).astype("datetime64[ns]"),
            "UnitPrice": 2.55,
            "CustomerID": 17850.0,
            "Country": "United Kingdom",
        }
    )
    path = tmp_path / "onlineretail.rda"
    pyreadr.write_rdata(str(path), frame, df_name="onlineretail", compress="gzip")
    raw = read_or_rda(path)
    assert rows(raw) == OR_EXPECTED_ROWS
    assert raw.item_text == OR_EXPECTED_TEXT
    pyreadr.write_rdata(str(tmp_path / "other.rda"), frame, df_name="retail")
    assert_error(lambda: read_or_rda(tmp_path / "other.rda"), "other.rda", "onlineretail")
    (tmp_path / "junk.rda").write_bytes(b"RDX2\n" + b"\x00junk" * 50)
    assert_error(lambda: read_or_rda(tmp_path / "junk.rda"), "junk.rda")
    assert_error(lambda: read_or_rda(truncated_copy(path, 0.3)), "cut-onlineretail.rda")


def test_or_bad_input(tmp_path: Path) -> None:
    csv_path = tmp_path / "or.csv"
    lines = OR_CSV.splitlines(keepends=True)
    csv_path.write_text("".join(lines[:3] + ["536365,85123A,X,6,12/1/2010 8:26,2.55,17850\n"] + lines[3:]))
    assert_error(lambda: read_or_csv(csv_path), "or.csv", "line 4", "expected 8 fields")
    csv_path.write_text(OR_CSV.replace("12/1/2010 9:41", "2010-12-01 09:41"))
    assert_error(lambda: read_or_csv(csv_path), "or.csv", "line 7", "InvoiceDate")
    csv_path.write_text(OR_CSV.replace(",-1,", ",minus one,"))
    assert_error(lambda: read_or_csv(csv_path), "or.csv", "line 7", "Quantity")
    # A row without Description is skipped before its fields are parsed, as in process_or.py.
    csv_path.write_text(OR_CSV.replace("536366,22633,,6,12/1/2010 8:28", "536366,22633,,six,yesterday"))
    assert rows(read_or_csv(csv_path)) == OR_EXPECTED_ROWS
    packed = tmp_path / "or.csv.gz"
    packed.write_bytes(gzip.compress(OR_CSV.encode() * 50))
    assert_error(lambda: read_or_csv(truncated_copy(packed)), "cut-or.csv.gz")

    bad_quantity = [r if i != 4 else (*r[:3], "six", r[4]) for i, r in enumerate(OR_ROWS)]
    assert_error(lambda: read_or_xlsx(write_or_xlsx(tmp_path / "q.xlsx", bad_quantity)), "q.xlsx", "line 6", "Quantity")
    workbook = write_or_xlsx(tmp_path / "Online Retail.xlsx")
    assert_error(lambda: read_or_xlsx(truncated_copy(workbook)), "cut-Online Retail.xlsx")
    (tmp_path / "fake.xlsx").write_text("not a workbook")
    assert_error(lambda: read_or_xlsx(tmp_path / "fake.xlsx"), "fake.xlsx")


# --------------------------------------------------------------------------- Amazon 2018

LONG_TITLE = "T" * 1999  # + "." = 2000 characters: dropped to ""
AMAZON_RATINGS = (
    "B001,U1,5.0,1400000000\n"
    "B002,U1,4.0,1400000100\n"
    "B001,U1,5.0,1400000000\n"  # duplicate tuple
    "B003,U2,3.0,1300000000\n"  # item without metadata
    "B001,U2,5.0,1300000050\n"
    "B004,U2,1.0,1300000060\n"
    "B001,U1,4.0,1400000000\n"  # same user/item/time, another rating: a new tuple
)
AMAZON_META = [
    {
        "asin": "B001",
        "title": "Pen &amp; Pencil &quot;Set&quot;...",
        "category": ["Office\nProducts", "Pens"],
        "brand": "Acme.",
    },
    {"asin": "B002", "title": LONG_TITLE, "description": ["ignored"], "brand": "Big"},
    {"asin": "B001", "title": "a later record is ignored"},
    {"asin": "B004", "category": [], "title": {"name": "X"}, "brand": "..."},
    {"asin": "B005", "title": "not rated"},
]


def write_amazon(
    tmp_path: Path, ratings: str = AMAZON_RATINGS, meta_lines: list[str] | None = None
) -> tuple[Path, Path]:
    ratings_path = tmp_path / "Office_Products.csv"
    ratings_path.write_text(ratings)
    meta_path = tmp_path / "meta_Office_Products.json.gz"
    lines = meta_lines if meta_lines is not None else [json.dumps(record) for record in AMAZON_META]
    meta_path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    return ratings_path, meta_path


def test_clean_text_matches_reference_edge_cases() -> None:
    assert clean_text("Pen &amp; Pencil &quot;Set&quot;...") == "Pen & Pencil Set."
    assert clean_text(["Office\nProducts", "Pens\r"]) == "OfficeProducts Pens."
    assert clean_text({"a": 1}) == "{'a': 1}."
    assert clean_text("") == "."
    assert clean_text(".") == ".."
    assert clean_text("...") == ".."
    assert clean_text("a..") == "a."
    assert clean_text("x" * 1998) == "x" * 1998 + "."
    assert clean_text("x" * 1999) == ""
    assert clean_text("x" * 1999 + "....") == ""


def test_amazon2018(tmp_path: Path) -> None:
    raw = read_amazon2018(*write_amazon(tmp_path))
    assert rows(raw) == [
        ("U1", "B001", 1400000000),
        ("U1", "B002", 1400000100),
        ("U2", "B001", 1300000050),
        ("U2", "B004", 1300000060),
        ("U1", "B001", 1400000000),
    ]
    assert raw.item_text == {
        "B001": "Pen & Pencil Set. OfficeProducts Pens. Acme. ",
        "B002": " Big. ",
        "B004": "{'name': 'X'}. . .. ",
    }
    assert raw.item_attributes == {"B001": ["Office\nProducts", "Pens"], "B002": [], "B004": []}


def test_amazon2018_bad_input(tmp_path: Path) -> None:
    ratings, meta = write_amazon(tmp_path, AMAZON_RATINGS.replace("B004,U2,1.0,1300000060", "B004,U2,1.0,13000,00060"))
    assert_error(lambda: read_amazon2018(ratings, meta), "Office_Products.csv", "line 6")
    ratings, meta = write_amazon(tmp_path, "B001,U1,5.0,1400000000,extra\n" + AMAZON_RATINGS)
    assert_error(lambda: read_amazon2018(ratings, meta), "Office_Products.csv", "line 1")
    ratings, meta = write_amazon(tmp_path, AMAZON_RATINGS.replace("B004,U2,1.0,1300000060", "B004,U2,1.0"))
    assert_error(lambda: read_amazon2018(ratings, meta), "Office_Products.csv", "line 6")
    ratings, meta = write_amazon(tmp_path, AMAZON_RATINGS.replace("1300000050", "1.3e9"))
    assert_error(lambda: read_amazon2018(ratings, meta), "Office_Products.csv", "line 5", "time")
    ratings, meta = write_amazon(tmp_path, AMAZON_RATINGS.replace("3.0", "three"))
    assert_error(lambda: read_amazon2018(ratings, meta), "Office_Products.csv", "line 4", "rating")
    python_literal = [json.dumps(AMAZON_META[0]), json.dumps(AMAZON_META[1]), str(AMAZON_META[3])]
    ratings, meta = write_amazon(tmp_path, meta_lines=python_literal)
    assert_error(lambda: read_amazon2018(ratings, meta), "meta_Office_Products.json.gz", "line 3", "JSON")
    ratings, meta = write_amazon(tmp_path, meta_lines=[json.dumps({"title": "no asin"})])
    assert_error(lambda: read_amazon2018(ratings, meta), "meta_Office_Products.json.gz", "line 1")
    ratings, meta = write_amazon(tmp_path, meta_lines=[json.dumps(AMAZON_META[0])] * 400)
    assert_error(lambda: read_amazon2018(ratings, truncated_copy(meta, 0.5)), "cut-meta_Office_Products.json.gz")
    packed = tmp_path / "ratings.csv.gz"
    packed.write_bytes(gzip.compress(AMAZON_RATINGS.encode() * 200))
    assert_error(lambda: read_amazon2018(truncated_copy(packed), meta), "cut-ratings.csv.gz")


# --------------------------------------------------------------------------- RecBole benchmark files


def write_benchmark(directory: Path, name: str, sequences: dict[str, list[str]], train: bool = True) -> None:
    """The three files exactly as UniSRec/TedRec ``convert_to_atomic_files`` writes them."""
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    users = sorted(sequences, key=int)
    train_lines, valid_lines, test_lines = [header], [header], [header]
    for user in users:
        sequence = sequences[user]
        before = sequence[:-2]
        for target_idx in range(1, len(before)):
            train_lines.append(f"{user}\t{' '.join(before[:-target_idx][-50:])}\t{before[-target_idx]}\n")
        valid_lines.append(f"{user}\t{' '.join(before[-50:])}\t{sequence[-2]}\n")
        test_lines.append(f"{user}\t{' '.join(sequence[:-1][-50:])}\t{sequence[-1]}\n")
    directory.mkdir(parents=True, exist_ok=True)
    if train:
        (directory / f"{name}.train.inter").write_text("".join(train_lines))
    (directory / f"{name}.valid.inter").write_text("".join(valid_lines))
    (directory / f"{name}.test.inter").write_text("".join(test_lines))


SEQUENCES = {
    "0": ["0", "1", "2", "3", "4"],
    "1": [str(i % 70) for i in range(60)],  # 60 items: histories cut to 50
    "2": ["7", "8", "9"],  # no train rows
    "3": [str(100 + i) for i in range(52)],  # valid history exactly 50: complete, but cannot be told
    "4": [str(200 + i) for i in range(51)],  # test history 50, valid history 49: complete
    "10": ["1", "1", "2", "1", "2"],  # repeats
}


def flatten(sequences: dict[str, list[str]]) -> list[tuple[str, str]]:
    return [(user, item) for user in sorted(sequences, key=int) for item in sequences[user]]


def test_recbole_benchmark_with_train(tmp_path: Path) -> None:
    write_benchmark(tmp_path, "Toy", SEQUENCES)
    (tmp_path / "Toy.text").write_text("item_id:token\ttext:token_seq\n0\tfirst item. \n1\ta\tb.\n0\tignored\n")
    raw = read_recbole_benchmark(tmp_path, "Toy")
    assert rows(raw) == flatten(SEQUENCES)
    assert raw.prefiltered and raw.timestamp is None and raw.notes == {}
    assert raw.item_text["0"] == "first item. " and raw.item_text["1"] == "a\tb." and raw.item_text["2"] == ""
    assert set(raw.item_text) == {item for sequence in SEQUENCES.values() for item in sequence}


def test_recbole_benchmark_without_train(tmp_path: Path) -> None:
    write_benchmark(tmp_path, "Toy", SEQUENCES, train=False)
    raw = read_recbole_benchmark(tmp_path, "Toy", text_path=None)
    expected = dict(SEQUENCES, **{"1": SEQUENCES["1"][-52:]})
    assert rows(raw) == flatten(expected)
    assert raw.notes["partial"] is True and "Toy.train.inter" in raw.notes["partial_reason"]
    assert raw.notes["users_possibly_truncated"] == 2
    assert raw.notes["users_with_50_item_test_history"] == 3
    assert raw.notes["interactions_recovered"] == len(flatten(expected))
    short = {user: seq for user, seq in SEQUENCES.items() if len(seq) < 52}
    write_benchmark(tmp_path / "short", "Toy", short, train=False)
    assert read_recbole_benchmark(tmp_path / "short", "Toy").notes == {"train_file": "absent"}


def test_recbole_benchmark_train_rows_in_ascending_order(tmp_path: Path) -> None:
    write_benchmark(tmp_path, "Toy", SEQUENCES)
    path = tmp_path / "Toy.train.inter"
    header, *lines = path.read_text().splitlines(keepends=True)
    by_user: dict[str, list[str]] = {}
    for line in lines:
        by_user.setdefault(line.split("\t")[0], []).append(line)
    path.write_text(header + "".join(line for user in by_user for line in reversed(by_user[user])))
    assert rows(read_recbole_benchmark(tmp_path, "Toy")) == flatten(SEQUENCES)


def test_recbole_benchmark_bad_input(tmp_path: Path) -> None:
    write_benchmark(tmp_path, "Toy", SEQUENCES)
    valid = tmp_path / "Toy.valid.inter"
    lines = valid.read_text().splitlines(keepends=True)
    user, history, _ = lines[1].rstrip("\n").split("\t")
    valid.write_text("".join([lines[0], f"{user}\t{history}\t99\n", *lines[2:]]))
    assert_error(lambda: read_recbole_benchmark(tmp_path, "Toy"), "Toy.valid.inter", "line 2", "Toy.test.inter line 2")
    valid.write_text("".join(lines[:3] + ["1\t2\n"] + lines[3:]))
    assert_error(lambda: read_recbole_benchmark(tmp_path, "Toy"), "Toy.valid.inter", "line 4", "expected 3 fields")
    valid.write_text("".join(lines + lines[1:2]))
    assert_error(
        lambda: read_recbole_benchmark(tmp_path, "Toy"), "Toy.valid.inter", f"line {len(lines) + 1}", "second row"
    )
    valid.write_text("".join(lines))

    train = tmp_path / "Toy.train.inter"
    train_lines = train.read_text().splitlines(keepends=True)
    broken = train_lines[5].split("\t")
    train.write_text("".join(train_lines[:5] + [f"{broken[0]}\t{broken[1]} 999\t{broken[2]}"] + train_lines[6:]))
    assert_error(lambda: read_recbole_benchmark(tmp_path, "Toy"), "Toy.train.inter", "line 6")
    train.write_text("".join(line for line in train_lines if not line.startswith("1\t")))
    assert_error(lambda: read_recbole_benchmark(tmp_path, "Toy"), "Toy.train.inter", "'1'")
    train.write_text("".join(train_lines))
    assert_error(lambda: read_recbole_benchmark(tmp_path, "Toy", text_path=tmp_path / "missing.text"), "missing.text")
    (tmp_path / "Toy.test.inter").unlink()
    assert_error(lambda: read_recbole_benchmark(tmp_path, "Toy"), "Toy.test.inter")


def write_office(directory: Path) -> dict[str, list[str]]:
    sequences = {"0": ["0", "1", "2", "3", "4", "5"], "1": ["6", "1", "7"], "2": [str(i % 9) for i in range(55)]}
    write_benchmark(directory, "Office", sequences, train=False)
    (directory / "Office.item2index").write_text("".join(f"ASIN{i}\t{i}\n" for i in range(9)))
    (directory / "Office.user2index").write_text("".join(f"REV{u}\t{u}\n" for u in sequences))
    gpt = lambda text: [{"from": "human", "value": "<item> describe"}, {"from": "gpt", "value": text}]  # noqa: E731
    ids = [
        {"id": "1", "item": "1", "also_buy": "[6]", "conversations": gpt("Pen, blue. Pens. Acme.")},
        {"id": "7", "item": "7", "conversations": gpt("Print.Save.Repeat. Toner. Print.Save.Repeat..")},
    ]
    images = [
        {"id": "7", "image": "7.jpg", "conversations": gpt("Title: other text. Category: X. Brand: Y.")},
        {
            "id": "3",
            "image": "3.jpg",
            "conversations": gpt("Title: Pad. A4. Category: Paper. Brand: Brand: Moleskine."),
        },
        {"id": "4", "image": "4.jpg", "conversations": gpt("Title: Notebook. Brand: Muji.")},
    ]
    (directory / "IDs_Text_test.json").write_text(json.dumps(ids))
    (directory / "Images_Text_test.json").write_text(json.dumps(images))
    return sequences


def test_office_mirror(tmp_path: Path) -> None:
    sequences = write_office(tmp_path)
    raw = read_office_mirror(tmp_path)
    assert rows(raw) == flatten(dict(sequences, **{"2": sequences["2"][-52:]}))
    assert raw.item_text == {
        "0": "",
        "1": "Pen, blue. Pens. Acme.",
        "2": "",
        "3": "Pad. A4. Paper. Brand: Moleskine.",
        "4": "Notebook. Muji.",
        "5": "",
        "6": "",
        "7": "Print.Save.Repeat. Toner. Print.Save.Repeat..",
        "8": "",
    }
    assert raw.notes["partial"] is True
    assert raw.notes["users_possibly_truncated"] == 1 and raw.notes["interactions_recovered"] == 6 + 3 + 52
    assert raw.notes["text_items"] == 4 and raw.notes["text_coverage"] == round(4 / 9, 4)


def test_office_mirror_bad_input(tmp_path: Path) -> None:
    write_office(tmp_path)
    (tmp_path / "Office.item2index").write_text("".join(f"ASIN{i}\t{i}\n" for i in range(8)))
    assert_error(lambda: read_office_mirror(tmp_path), "Office.item2index", "'8'")
    write_office(tmp_path)
    (tmp_path / "IDs_Text_test.json").write_text('[{"id": "1",\n "conversations": [}]')
    assert_error(lambda: read_office_mirror(tmp_path), "IDs_Text_test.json", "line 2")
    (tmp_path / "IDs_Text_test.json").write_text('[{"id": "1", "conversations": []}]')
    assert_error(lambda: read_office_mirror(tmp_path), "IDs_Text_test.json", "record 1")


# --------------------------------------------------------------------------- the real mirror
# (conftest's ``mirror`` fixture: $TEDBENCH_MIRROR or ../shared/datasets; skips only when absent)


def test_real_ml1m_atomic(mirror: Path) -> None:
    folder = mirror / "atomic" / "ml-1m"
    raw = read_recbole_atomic(folder / "ml-1m.inter", folder / "ml-1m.item")
    assert len(raw) == 1_000_209 and raw.timestamp is None
    assert len(pd.unique(raw.user)) == 6_040 and len(pd.unique(raw.item)) == 3_706
    assert raw.item_text["1"] == "Toy Story 1995 Animation Children's Comedy."
    assert len(raw.item_text) == 3_706 and all(raw.item_text.values())


def test_real_movies_dat_text_matches_atomic_item_file(mirror: Path, tmp_path: Path) -> None:
    """The zip reader's text rule equals the ml-1m.item text for all 3,883 GroupLens movies."""
    movies = (mirror / "raw" / "ml-1m" / "movies.dat").read_bytes()
    ids = [line.split(b"::")[0].decode() for line in movies.splitlines()]
    ratings = "".join(f"1::{movie}::5::{978300000 + n}\n" for n, movie in enumerate(ids))
    zipped = write_ml1m_zip(tmp_path / "ml-1m.zip", ratings, movies.decode("latin-1"))
    from_zip = read_ml1m_zip(zipped).item_text
    inter = tmp_path / "all.inter"
    inter.write_text("user_id:token\titem_id:token\n" + "".join(f"1\t{movie}\n" for movie in ids))
    from_atomic = read_recbole_atomic(inter, mirror / "atomic" / "ml-1m" / "ml-1m.item").item_text
    assert len(from_zip) == 3_883 and from_zip == from_atomic


def test_real_online_retail_csv_and_rda_agree(mirror: Path) -> None:
    csv_raw = read_or_csv(mirror / "derived" / "OR" / "data-utf8.csv.gz")
    assert len(csv_raw) == 535_026
    rda_raw = read_or_rda(mirror / "raw" / "OR" / "onlineretail.rda")
    for name in ("user", "item", "timestamp"):
        assert np.array_equal(getattr(csv_raw, name), getattr(rda_raw, name)), name
    assert csv_raw.item_text == rda_raw.item_text
    assert csv_raw.item_text["85123A"] == "white hanging heart t-light holder."


def test_real_office_mirror(mirror: Path) -> None:
    raw = read_office_mirror(mirror / "raw" / "Office")
    assert len(pd.unique(raw.user)) == 87_346 and len(pd.unique(raw.item)) == 25_986
    notes = raw.notes
    assert notes["partial"] is True
    assert notes["users_with_50_item_test_history"] == 180
    assert notes["users_possibly_truncated"] == 172  # 8 of the 180 have a 49-item valid history: complete
    assert notes["interactions_recovered"] == len(raw) == 680_304 + 172  # valid rows add 1 item per such user
    assert notes["text_items"] == 4_325 and notes["text_coverage"] == pytest.approx(0.166, abs=1e-3)
