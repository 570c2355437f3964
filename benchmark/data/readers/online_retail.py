"""UCI Online Retail (TedRec's ``process_or.py`` rules) from its CSV, xlsx or R data form.

InvoiceNo is the user, StockCode the item. Rows with an empty Description are dropped, repeated
(InvoiceNo, StockCode, Quantity, minute timestamp) tuples keep their first occurrence, and an
item's text is its first non-empty Description, stripped and lower-cased, plus ".".
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
import zlib
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pandas as pd
import pyreadr
from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException

from benchmark.data.raw import RawInteractions
from benchmark.data.readers._common import PathLike, decode_text, line_error, parse_float, read_bytes, unique_columns
from benchmark.errors import TedbenchError

COLUMNS = ("InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country")
CSV_DATE_FORMAT = "%m/%d/%Y %H:%M"
RDA_OBJECT = "onlineretail"


def read_or_csv(path: PathLike) -> RawInteractions:
    """The CSV form (``data-utf8.csv``, plain or .gz), dates as ``M/D/YYYY H:MM``."""
    data = read_bytes(path)
    text = decode_text(data, path)
    reader = csv.reader(io.StringIO(text, newline=None))
    check_csv_header(next(reader, []), path)
    rows, lines = [], []
    for row in reader:
        if len(row) != len(COLUMNS):
            raise line_error(path, reader.line_num, f"expected {len(COLUMNS)} fields, found {len(row)}")
        rows.append(row)
        lines.append(reader.line_num)
    table = pd.DataFrame(rows, columns=list(COLUMNS), dtype=object)
    kept = (table["Description"] != "").to_numpy()
    line = np.asarray(lines, dtype=np.int64)[kept]
    raw_dates = table["InvoiceDate"].to_numpy(dtype=object)[kept]
    dates = pd.to_datetime(pd.Series(raw_dates), format=CSV_DATE_FORMAT, errors="coerce").to_numpy()
    bad = np.flatnonzero(np.isnat(dates))
    if bad.size:
        i = int(bad[0])
        raise line_error(path, int(line[i]), f"InvoiceDate {raw_dates[i]!r} is not M/D/YYYY H:MM")
    quantity = parse_float(table["Quantity"].to_numpy(dtype=object)[kept], path, line, "Quantity")
    return _interactions(table, kept, quantity, _epoch_seconds(dates))


def check_csv_header(names: list[str], path: object) -> None:
    """The CSV form's header must be exactly COLUMNS (a repeated column is named as such)."""
    unique_columns(names, path)
    if tuple(names) != COLUMNS:
        raise line_error(path, 1, f"expected the header {','.join(COLUMNS)}")


def read_or_xlsx(path: PathLike) -> RawInteractions:
    """The upstream UCI ``Online Retail.xlsx`` (first sheet, header row with the column names)."""
    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
        try:
            records = list(_xlsx_records(workbook.worksheets[0].iter_rows(values_only=True), path))
        finally:
            workbook.close()
    except (zipfile.BadZipFile, InvalidFileException, KeyError, EOFError, zlib.error, OSError) as exc:
        raise TedbenchError(f"{path}: corrupt or truncated xlsx workbook ({exc})") from None
    table = pd.DataFrame(records, columns=["line", *COLUMNS[:5]], dtype=object)
    kept = (table["Description"] != "").to_numpy()
    quantity, dates = [], []
    for line, value, date in table[["line", "Quantity", "InvoiceDate"]].to_numpy()[kept]:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise line_error(path, line, f"Quantity {value!r} is not a number")
        if not isinstance(date, datetime):
            raise line_error(path, line, f"InvoiceDate {date!r} is not a date")
        quantity.append(value)
        dates.append(date)
    timestamp = _epoch_seconds(np.asarray(dates, dtype="datetime64[us]"))
    return _interactions(table, kept, np.asarray(quantity, dtype=np.float64), timestamp)


def read_or_rda(path: PathLike) -> RawInteractions:
    """The R data file of the CRAN package ``onlineretail`` (data frame ``onlineretail``)."""
    try:
        frame = pyreadr.read_r(os.fspath(path))[RDA_OBJECT]
    except KeyError:
        raise TedbenchError(f"{path}: holds no data frame {RDA_OBJECT!r}") from None
    except (pyreadr.custom_errors.PyreadrError, pyreadr.custom_errors.LibrdataError, OSError, ValueError) as exc:
        raise TedbenchError(f"{path}: corrupt or unreadable R data file ({exc})") from None
    missing = [name for name in COLUMNS[:5] if name not in frame.columns]
    if missing:
        raise TedbenchError(f"{path}: data frame {RDA_OBJECT!r} has no column {missing[0]!r}")
    table = pd.DataFrame({name: frame[name].to_numpy(dtype=object) for name in COLUMNS[:3]})
    table["Description"] = table["Description"].where(frame["Description"].notna().to_numpy(), "")
    kept = (table["Description"] != "").to_numpy()
    quantity = frame["Quantity"].to_numpy(dtype=np.float64)[kept]
    dates = pd.to_datetime(frame["InvoiceDate"], errors="coerce").to_numpy(dtype="datetime64[us]")[kept]
    ids_missing = table[["InvoiceNo", "StockCode"]].isna().any(axis=1).to_numpy()[kept]
    bad = np.flatnonzero(~np.isfinite(quantity) | np.isnat(dates) | ids_missing)
    if bad.size:
        row = int(np.flatnonzero(kept)[bad[0]]) + 1
        raise TedbenchError(f"{path}: row {row}: InvoiceNo, StockCode, Quantity or InvoiceDate missing or invalid")
    return _interactions(table, kept, quantity, _epoch_seconds(dates))


def _xlsx_records(rows: Iterator[tuple], path: PathLike) -> Iterator[tuple]:
    """(line, InvoiceNo, StockCode, Description, Quantity, InvoiceDate) per non-empty sheet row."""
    names = ["" if value is None else str(value).strip() for value in next(rows, ())]
    unique_columns([name for name in names if name], path)
    missing = [name for name in COLUMNS[:5] if name not in names]
    if missing:
        raise line_error(path, 1, f"header has no column {missing[0]!r}")
    index = [names.index(name) for name in COLUMNS[:5]]
    for line, row in enumerate(rows, start=2):
        if all(value is None for value in row):
            continue
        invoice, stock, description, quantity, date = (row[i] if i < len(row) else None for i in index)
        yield line, _cell_text(invoice), _cell_text(stock), _cell_text(description), quantity, date


def _cell_text(value: object) -> str:
    """A cell as the CSV form shows it: numbers without a spurious ".0", empty for no value."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _epoch_seconds(dates: np.ndarray) -> np.ndarray:
    """Naive datetimes (read as UTC) to int64 epoch seconds at the CSV's minute resolution."""
    minutes = pd.DatetimeIndex(dates).round("s").floor("min")
    return minutes.to_numpy(dtype="datetime64[s]").astype(np.int64)


def _interactions(
    table: pd.DataFrame, kept: np.ndarray, quantity: np.ndarray, timestamp: np.ndarray
) -> RawInteractions:
    """De-duplicate the rows with a Description and build each item's text."""
    user = table["InvoiceNo"].to_numpy(dtype=object)[kept]
    item = table["StockCode"].to_numpy(dtype=object)[kept]
    rows = pd.DataFrame({"user": user, "item": item, "quantity": quantity, "timestamp": timestamp})
    rows = rows.drop_duplicates()
    first = pd.Series(table["Description"].to_numpy(dtype=object)[kept]).groupby(item, sort=False).first()
    return RawInteractions(
        user=rows["user"].to_numpy(dtype=object),
        item=rows["item"].to_numpy(dtype=object),
        timestamp=rows["timestamp"].to_numpy(dtype=np.int64),
        item_text={stock: text.strip().lower() + "." for stock, text in first.items()},
    )
