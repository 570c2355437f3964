"""`build_report`: stored runs -> tables, figures and headline metrics (a pure function of the files)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import TedbenchError
from benchmark.fsutil import write_text
from benchmark.report.claims import claims_table
from benchmark.report.figures import build_figures
from benchmark.report.html import render_report
from benchmark.report.publish import HTML, staged_report
from benchmark.report.runs import RunIndex
from benchmark.report.tables import OURS, SHORT_METRICS, table3, table4, table5, timings, write_table


def build_report(
    runs_root: Path,
    out: Path,
    *,
    tag: str | None = None,
    encoder: str | None = None,
    allow_mixed: bool = False,
    html: bool = False,
    skip_running: bool = False,
) -> dict[str, Any]:
    """Write out/tables/*.{md,tex,csv} (Tables 3-5, their tests, timings and the claims table),
    out/figures/*.{png,svg}, out/metrics.json and, with `html`, out/report.html (one page of the same tables
    and figures, `benchmark.report.html`); return a summary.

    `tag` selects the runs of Tables 3-5 and Figs. 4-5 (None = untagged runs); Fig. 3 uses TedRec
    runs tagged with the ablation names. `encoder` is the text encoder of the text models in
    Tables 3-4 and the figures (None = 'bert-cls' if such runs exist, else 'minilm', else the
    alphabetically first encoder used). Every run is checked first (`Run.load`); a cell whose runs
    differ in more than the seed is an error unless `allow_mixed` (the captions then say so). With
    `skip_running`, runs still being trained by a live process are left out (listed in the summary's `running`).
    The outputs are built in a staging folder and published together (`publish.staged_report`):
    on any error the previous ones stay as they were; without `html` a previous report.html is removed.
    """
    out, runs_root = Path(out), Path(runs_root)
    with staged_report(out) as staging:
        if not runs_root.is_dir():
            raise TedbenchError(f"{runs_root}: no such folder of runs")
        index = RunIndex.load(runs_root, allow_mixed=allow_mixed, skip_running=skip_running)
        encoder = encoder or index.default_encoder(tag)
        tables = [
            *table3(index, encoder=encoder, tag=tag),
            *table4(index, encoder=encoder, tag=tag),
            *table5(index, tag=tag),
            timings(index, encoder=encoder, tag=tag),
            claims_table(index, encoder=encoder, tag=tag),
        ]
        written = [path for table in tables for path in write_table(table, staging / "tables")]
        written += build_figures(index, staging / "figures", encoder=encoder, tag=tag)
        metrics = headline(tables[0].data)
        write_text(staging / "metrics.json", finite_json(metrics, out / "metrics.json"))
        written.append(staging / "metrics.json")
        if html:
            pngs = [path for path in written if path.parent.name == "figures" and path.suffix == ".png"]
            page = render_report(tables, pngs, index, runs_root=runs_root, encoder=encoder, tag=tag)
            write_text(staging / HTML, page)
            written.append(staging / HTML)
    return {
        "runs": sum(len(cell.runs) for cell in index.cells.values()),
        "cells": len(index.cells),
        "encoder": encoder,
        "tag": tag,
        "files": [str(out / path.relative_to(staging)) for path in written],
        "running": [str(folder) for folder in index.running],
        "metrics": metrics,
    }


def finite_json(payload: Any, path: Path) -> str:
    """JSON text as `fsutil.write_json` writes it (sorted keys); a NaN or infinity is an error naming `path`."""
    try:
        return json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n"
    except ValueError:
        raise TedbenchError(f"{path}: refusing to write a headline metric that is NaN or infinite") from None


def headline(table3_data: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per dataset: TedRec's and the best baseline's test R@10 / N@10 (mean over seeds) and its name."""
    metrics: dict[str, dict[str, Any]] = {}
    for (dataset, metric), group in table3_data[table3_data["metric"].isin(SHORT_METRICS)].groupby(
        ["dataset", "metric"], sort=False
    ):
        entry = metrics.setdefault(dataset, {})
        ours = group[group["model"] == OURS]
        if not ours.empty:
            entry.setdefault(OURS, {})[metric] = round(float(ours["mean"].iloc[0]), 6)
        baselines = group[group["model"] != OURS]
        if not baselines.empty:
            best = baselines.loc[baselines["mean"].idxmax()]
            entry.setdefault("best_baseline", {})[metric] = round(float(best["mean"]), 6)
            entry.setdefault("best_baseline_model", {})[metric] = best["model"]
    return metrics
