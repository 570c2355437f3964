"""Does a fresh run of a suite reproduce a committed one? Table 3's cells compared as the table prints them."""

from __future__ import annotations

import csv
from pathlib import Path

from benchmark.errors import TedbenchError
from benchmark.layout import table_path

KEY = ("dataset", "model", "metric", "encoder")
DECIMALS = 4  # the precision the tables print


def _cells(path: Path) -> dict[tuple[str, ...], tuple[str, str]]:
    if not path.exists():
        raise TedbenchError(f"{path}: no Table 3 to compare with")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    try:
        return {tuple(row[k] for k in KEY): (f"{float(row['mean']):.{DECIMALS}f}", row["n_seeds"]) for row in rows}
    except (KeyError, ValueError) as exc:
        raise TedbenchError(f"{path}: not a Table 3 CSV ({type(exc).__name__}: {exc})") from None


def table3_differences(results_root: Path, reference_root: Path) -> tuple[int, list[str]]:
    """(cells compared, one line per cell that differs) between two results folders' Table 3 CSVs."""
    ours = _cells(table_path(results_root, "table3", "csv"))
    theirs = _cells(table_path(reference_root, "table3", "csv"))
    lines = []
    for key in sorted(ours.keys() | theirs.keys()):
        if ours.get(key) != theirs.get(key):
            mine, ref = (f"{v[0]} ({v[1]} seeds)" if v else "missing" for v in (ours.get(key), theirs.get(key)))
            lines.append(f"{' '.join(k for k in key if k)}: {mine} here, {ref} in {reference_root}")
    return len(ours.keys() | theirs.keys()), lines


def reproduced_message(results_root: Path, reference_root: Path) -> tuple[bool, str]:
    """("reproduced: yes" and the count) or ("reproduced: no" and the differing cells)."""
    compared, differences = table3_differences(results_root, reference_root)
    if not differences:
        return True, f"reproduced: yes (all {compared} Table 3 cells of {reference_root} equal to {DECIMALS} decimals)"
    return False, "\n".join([f"reproduced: no ({len(differences)} of {compared} Table 3 cells differ)", *differences])
