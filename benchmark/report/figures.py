"""Figures 3-5 (ablation, efficiency, user groups) as byte-reproducible PNG and SVG.

Figures are drawn on bare `matplotlib.figure.Figure` objects (no pyplot state; PNG via Agg).
Missing inputs never raise: the panel or figure title says what is missing.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from benchmark.fsutil import atomic_path
from benchmark.report.runs import Cell, RunIndex, describe_profile
from benchmark.report.tables import OURS, SHORT_METRICS, main_models, metric_label

# Fig. 3 variants: run tag -> the paper's label ("full" = tagged 'full', else the main TedRec runs).
ABLATIONS = {"full": "TedRec", "wo-MM": "w/o MM", "wo-AG": "w/o AG", "wo-IF": "w/o IF", "wo-TF": "w/o TF"}
# Fig. 5 user groups: training-history length (sequence length - 2) in [lo, hi); the last is open.
GROUP_EDGES = (0, 5, 10, 20, 50, 100, 200)
RC = {"svg.hashsalt": "tedbench", "svg.fonttype": "path", "font.size": 8, "axes.titlesize": 8, "legend.fontsize": 7}
_SAVE = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


def build_figures(index: RunIndex, folder: Path, *, encoder: str | None, tag: str | None) -> list[Path]:
    """fig3_ablation, fig4_efficiency and fig5_user_groups, each as .png and .svg."""
    with matplotlib.rc_context(RC):
        figures = {
            "fig3_ablation": fig3_ablation(index, encoder=encoder, tag=tag),
            "fig4_efficiency": fig4_efficiency(index, encoder=encoder, tag=tag),
            "fig5_user_groups": fig5_user_groups(index, encoder=encoder, tag=tag),
        }
        return [path for name, fig in figures.items() for path in save(fig, folder / name)]


def save(fig: Figure, base: Path) -> list[Path]:
    """<base>.png and <base>.svg, atomically, without date or software-version stamps."""
    paths = []
    for ext, metadata in _SAVE.items():
        path = base.with_name(f"{base.name}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, metadata=metadata, dpi=150)
        paths.append(path)
    return paths


def fig3_ablation(index: RunIndex, *, encoder: str | None, tag: str | None) -> Figure:
    """TedRec variants (runs tagged 'wo-MM' ...; 'full' = tagged 'full', else the main TedRec runs)."""
    variants = {d: {v: _variant(index, d, v, encoder, tag) for v in ABLATIONS} for d in index.datasets()}
    datasets = [d for d, cells in variants.items() if any(cells[v] for v in list(ABLATIONS)[1:])]
    fig, axes = _panels(len(datasets))
    width = 0.8 / len(ABLATIONS)
    for ax, d in zip(axes, datasets):
        cells = variants[d]
        for i, v in enumerate(ABLATIONS):
            if cells[v] is not None:
                x = np.arange(len(SHORT_METRICS)) + (i - (len(ABLATIONS) - 1) / 2) * width
                ax.bar(
                    x,
                    [cells[v].mean(m) for m in SHORT_METRICS],
                    width,
                    yerr=[cells[v].std(m) or 0 for m in SHORT_METRICS],
                    label=ABLATIONS[v],
                )
        missing = [ABLATIONS[v] for v in ABLATIONS if cells[v] is None]
        ax.set_title(d + (f" (missing: {', '.join(missing)})" if missing else ""))
        ax.set_xticks(np.arange(len(SHORT_METRICS)), [metric_label(m) for m in SHORT_METRICS])
        ax.set_ylabel("test metric (mean over seeds)")
        ax.legend()
    used = [c for cells in variants.values() for c in cells.values() if c is not None]
    _title(
        fig,
        "Fig. 3: ablation of TedRec (test set)",
        datasets,
        f"no ablation runs (TedRec tagged {', '.join(list(ABLATIONS)[1:])})",
        used,
    )
    return fig


def fig4_efficiency(index: RunIndex, *, encoder: str | None, tag: str | None) -> Figure:
    """x = mean seconds per training epoch, y = test Recall@10, one point per model."""
    models = main_models(index, tag)
    cells = {
        d: {m: c for m in models if (c := index.get(d, m, encoder, tag)) is not None and c.epoch_seconds() is not None}
        for d in index.datasets()
    }
    datasets = [d for d in cells if cells[d]]
    fig, axes = _panels(len(datasets))
    for ax, d in zip(axes, datasets):
        for m, cell in cells[d].items():
            x, y = cell.epoch_seconds(), cell.mean("recall@10")
            ax.scatter([x], [y], marker="*" if m == OURS else "o")
            ax.annotate(m, (x, y), textcoords="offset points", xytext=(3, 3))
        ax.margins(0.2)
        ax.set_title(d)
        ax.set_xlabel("seconds per training epoch")
        ax.set_ylabel("test Recall@10")
    _title(
        fig,
        "Fig. 4: test Recall@10 vs training time per epoch",
        datasets,
        "no runs with a training log",
        [c for per in cells.values() for c in per.values()],
    )
    return fig


def fig5_user_groups(index: RunIndex, *, encoder: str | None, tag: str | None) -> Figure:
    """Users bucketed by training-history length: bars = users, lines = Recall@10 gain over SASRec."""
    models = main_models(index, tag)
    datasets = [d for d in index.datasets() if index.get(d, OURS, encoder, tag) is not None]
    fig, axes = _panels(len(datasets))
    used: list[Cell] = []
    for ax, d in zip(axes, datasets):
        text_cells = {m: c for m in models if (c := index.get(d, m, encoder, tag)) is not None and c.key[2] is not None}
        base = index.get(d, "SASRec", encoder, tag)
        if base is None:
            ax.set_title(f"{d}: no SASRec runs")
            continue
        lengths = base.runs[0].history_lengths
        used += [base, *text_cells.values()]
        _user_groups(ax, d, lengths, base, text_cells)
    _title(fig, "Fig. 5: test Recall@10 improvement over SASRec by user group", datasets, "no TedRec runs", used)
    return fig


def _user_groups(ax: Axes, dataset: str, lengths: np.ndarray, base: Cell, cells: dict[str, Cell]) -> None:
    groups = np.digitize(lengths, GROUP_EDGES[1:])
    labels = [f"[{lo},{hi})" for lo, hi in zip(GROUP_EDGES, GROUP_EDGES[1:])] + [f"≥{GROUP_EDGES[-1]}"]
    present = [g for g in range(len(labels)) if (groups == g).any()]
    x = np.arange(len(present))
    ax.bar(x, [(groups == g).sum() for g in present], color="0.85", label="users")
    ax.set_xticks(x, [labels[g] for g in present], rotation=30)
    ax.set_xlabel("training interactions per user")
    ax.set_ylabel("users")
    ax.set_title(dataset)
    gain_ax = ax.twinx()
    reference = base.per_user("recall@10")
    for m, cell in cells.items():
        values = cell.per_user("recall@10")
        gains = []
        for g in present:
            mask = groups == g
            ref = reference[mask].mean()
            gains.append(100 * (values[mask].mean() / ref - 1) if ref > 0 else np.nan)
        gain_ax.plot(x, gains, marker="*" if m == OURS else "o", label=m)
    gain_ax.axhline(0, color="0.5", linewidth=0.5)
    gain_ax.set_ylabel("Recall@10 vs SASRec (%)")
    gain_ax.legend()


def _panels(n: int) -> tuple[Figure, Iterator[Axes]]:
    """One panel per dataset (a single empty one when there are none)."""
    fig = Figure(figsize=(4.2 * max(1, n), 3.6), layout="constrained")
    return fig, iter(fig.subplots(1, max(1, n), squeeze=False)[0])


def _title(fig: Figure, title: str, datasets: list[str], empty: str, cells: list[Cell]) -> None:
    """The figure title, or what is missing; the run profile below it."""
    profile = textwrap.fill(f"Run profile: {describe_profile(cells)}", width=55 + 40 * max(0, len(datasets) - 1))
    fig.suptitle(f"{title if datasets else f'{title}: {empty}'}\n{profile}")


def _variant(index: RunIndex, dataset: str, variant: str, encoder: str | None, tag: str | None) -> Cell | None:
    cell = index.get(dataset, OURS, encoder, variant)
    return index.get(dataset, OURS, encoder, tag) if cell is None and variant == "full" else cell
