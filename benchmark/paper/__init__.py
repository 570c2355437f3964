"""The paper's published numbers, transcribed: Tables 3-5 and the authors' per-epoch timings (CSV files here).

Read by the report (its "paper" columns) and by `tedbench bench` (the authors' epoch seconds).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

PAPER_DIR = Path(__file__).parent


def paper_data(name: str) -> pd.DataFrame:
    """benchmark/paper/<name>.csv: table3, table4, table5 or timings."""
    return pd.read_csv(PAPER_DIR / f"{name}.csv", keep_default_na=False, na_values=[""])
