"""`tedbench sample`: a seeded subsample of UCI Online Retail, in the CSV form's own bytes.

The bundled `OR-sample` dataset is built by this module from the full table (the `csv` form of
`OR`, found through the usual raw folder / mirror lookup). An invoice is a user: the sample keeps
N seeded-random invoices and, optionally, only the rows of M seeded-random stock codes (items),
which shrinks the item catalogue that a sample of invoices alone leaves almost whole. Kept rows
are copied byte for byte, in the original row order, under the original header; nothing else
is changed.

The choices are reproducible without depending on a library's random generator: keys are ranked
by sha256("<seed>:<kind>:<key>") and the first N are kept. The output is gzip-compressed with no
file name and mtime 0 in its header, so equal inputs give equal bytes (with the same zlib); it is
written to a temporary file and renamed into place.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import re
from pathlib import Path
from typing import Any

from benchmark import layout
from benchmark.data.fetch import resolve
from benchmark.data.readers._common import decode_text, line_error, read_bytes
from benchmark.data.readers.online_retail import COLUMNS, check_csv_header
from benchmark.data.sources import get_source
from benchmark.errors import TedbenchError
from benchmark.faults import pause_point
from benchmark.fsutil import atomic_path, clean_orphans, file_digest

#: Datasets that can be sampled, and their form holding one CSV in the Online Retail layout.
SAMPLE_FORMS = {"OR": "csv", "OR-sample": "bundled"}
INVOICE_COLUMN = COLUMNS.index("InvoiceNo")
STOCK_COLUMN = COLUMNS.index("StockCode")


def select(keys: set[str], n: int, seed: int, kind: str) -> set[str]:
    """The `n` keys ranked first by sha256 of "<seed>:<kind>:<key>" (a seeded random choice)."""

    def rank(key: str) -> tuple[bytes, str]:
        return hashlib.sha256(f"{seed}:{kind}:{key}".encode()).digest(), key

    return set(sorted(keys, key=rank)[:n])


def _records(text: str, name: object) -> tuple[str, list[tuple[str, str, str]]]:
    """The header's physical lines and (InvoiceNo, StockCode, physical lines) of every record."""
    lines = re.split(r"(?<=\n)", text)
    if lines and lines[-1] == "":
        lines.pop()
    reader = csv.reader(iter(lines))
    records, start = [], 0
    for row in reader:
        chunk = "".join(lines[start : reader.line_num])
        if start == 0:
            check_csv_header(row, name)
            header = chunk
        elif len(row) != len(COLUMNS):
            raise line_error(name, start + 1, f"expected {len(COLUMNS)} fields, found {len(row)}")
        else:
            records.append((row[INVOICE_COLUMN], row[STOCK_COLUMN], chunk))
        start = reader.line_num
    if start == 0:
        raise line_error(name, 1, f"expected the header {','.join(COLUMNS)}")
    return header, records


def sample_csv(
    data: bytes, invoices: int, seed: int, items: int | None = None, name: object = "<csv>"
) -> tuple[bytes, dict[str, int]]:
    """The rows of `invoices` seeded-random invoices (and `items` stock codes) of an Online Retail
    CSV, unchanged and in file order, under the file's header."""
    text = decode_text(data, name)
    header, records = _records(text, name)
    all_invoices = {invoice for invoice, _, _ in records}
    all_items = {stock for _, stock, _ in records}
    if invoices > len(all_invoices):
        raise TedbenchError(f"{name}: --invoices {invoices} exceeds the {len(all_invoices):,} invoices in the file")
    if items is not None and items > len(all_items):
        raise TedbenchError(f"{name}: --items {items} exceeds the {len(all_items):,} stock codes in the file")
    chosen = select(all_invoices, invoices, seed, "invoice")
    stocks = all_items if items is None else select(all_items, items, seed, "stock")
    kept = [(invoice, stock, chunk) for invoice, stock, chunk in records if invoice in chosen and stock in stocks]
    if not kept:
        raise TedbenchError(f"{name}: the sample would hold no rows; ask for more invoices or items")
    lines = [chunk for _, _, chunk in kept]
    if not lines[-1].endswith("\n"):
        lines[-1] += "\n"  # the file's last record had no line end; the sample's last line has one
    payload = (header + "".join(lines)).encode("utf-8")
    counts = {
        "rows": len(kept),
        "invoices_written": len({invoice for invoice, _, _ in kept}),
        "items_written": len({stock for _, stock, _ in kept}),
        "source_rows": len(records),
        "source_invoices": len(all_invoices),
        "source_items": len(all_items),
    }
    return payload, counts


def write_gzip(payload: bytes, out: Path) -> None:
    """Gzip `payload` to `out` atomically, with a header free of file name and time."""
    clean_orphans(out.parent, out.name)
    with atomic_path(out) as tmp:
        with (
            open(tmp, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as packed,
        ):
            packed.write(payload)
        pause_point("sample.before_publish")


def build_sample(
    dataset: str,
    *,
    invoices: int,
    seed: int,
    out: Path,
    mirror: Path | None,
    raw_root: Path | None = None,
    items: int | None = None,
) -> dict[str, Any]:
    """Write a seeded invoice (and stock-code) sample of `dataset`'s CSV to `out` (.csv.gz)."""
    if dataset not in SAMPLE_FORMS:
        raise TedbenchError(f"dataset {dataset!r} cannot be sampled (sampleable: {', '.join(SAMPLE_FORMS)})")
    if isinstance(invoices, bool) or not isinstance(invoices, int) or invoices < 1:
        raise TedbenchError(f"--invoices must be a positive whole number, got {invoices!r}")
    if items is not None and (isinstance(items, bool) or not isinstance(items, int) or items < 1):
        raise TedbenchError(f"--items must be a positive whole number, got {items!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TedbenchError(f"--seed must be a whole number, got {seed!r}")
    out = Path(out)
    if not out.name.endswith(".csv.gz"):
        raise TedbenchError(f"{out}: the sample is a gzip-compressed CSV; give a path ending in .csv.gz")
    source = get_source(dataset)
    form, paths, digests = resolve(
        source, mirror, layout.raw_root(raw_root) / dataset, form=SAMPLE_FORMS[dataset], download=False
    )
    if paths[0].resolve() == out.resolve():
        raise TedbenchError(f"{out}: is the file being sampled; write the sample elsewhere")
    payload, counts = sample_csv(read_bytes(paths[0]), invoices, seed, items, paths[0])
    write_gzip(payload, out)
    return {
        "dataset": dataset,
        "form": form.name,
        "source_sha256": digests[form.files[0].path],
        "invoices": invoices,
        "items": items,
        "seed": seed,
        **counts,
        "out": str(out),
        "bytes": out.stat().st_size,
        "sha256": file_digest(out),
    }
