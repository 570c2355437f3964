"""Figures 3-5 (ablation, efficiency, user groups) as byte-reproducible PNG and SVG.

Figures are drawn on bare `matplotlib.figure.Figure` objects (no pyplot state; PNG via Agg). Every
model keeps one colour and marker in all figures, TedRec a highlighted one; one legend per figure
sits beside the panels; a footnote says what bars, lines and error bars show and gives the run profile.
Missing inputs never raise: the panel or figure title says what is missing.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from benchmark.fsutil import atomic_path
from benchmark.report.runs import Cell, RunIndex, describe_profile
from benchmark.report.stats import BOOTSTRAP_RESAMPLES, CONFIDENCE, bootstrap_ci
from benchmark.report.tables import OURS, SHORT_METRICS, main_models, metric_label

# Fig. 3 variants: run tag -> the paper's label ("full" = tagged 'full', else the main TedRec runs).
ABLATIONS = {"full": "TedRec", "wo-MM": "w/o MM", "wo-AG": "w/o AG", "wo-IF": "w/o IF", "wo-TF": "w/o TF"}
# Fig. 5 user groups: training-history length (sequence length - 2) in [lo, hi); the last is open.
GROUP_EDGES = (0, 5, 10, 20, 50, 100, 200)
RC = {"svg.hashsalt": "tedbench", "svg.fonttype": "path", "font.size": 8, "axes.titlesize": 8, "legend.fontsize": 7}
FOOTNOTE_SIZE = 6
_SAVE = {"png": {"Software": None}, "svg": {"Date": None, "Creator": None}}


@dataclass(frozen=True)
class Style:
    colour: str
    marker: str


HIGHLIGHT = Style("#d62728", "*")  # TedRec: red star, drawn larger and on top
MODEL_STYLES = {
    "SASRec": Style("#1f77b4", "o"),
    "FMLP-Rec": Style("#ff7f0e", "s"),
    "FEARec": Style("#2ca02c", "^"),
    "SASRecF": Style("#9467bd", "v"),
    "FDSA": Style("#8c564b", "D"),
    "S3-Rec": Style("#e377c2", "P"),
    "DIF-SR": Style("#7f7f7f", "X"),
    "UniSRec": Style("#bcbd22", "<"),
    "DLFS-Rec": Style("#17becf", ">"),
    "SMLP4Rec": Style("#393b79", "h"),
    OURS: HIGHLIGHT,
}
# Models outside the paper (e.g. from plug-in packages): a fixed style chosen by a digest of the name.
_OTHER_STYLES = tuple(
    Style(colour, marker)
    for colour, marker in zip(("#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#000000"), "pd8Hx+")
)
# Fig. 3: TedRec highlighted, its variants in light tints.
VARIANT_COLOURS = {
    "full": HIGHLIGHT.colour,
    "wo-MM": "#9ecae1",
    "wo-AG": "#a1d99b",
    "wo-IF": "#bcbddc",
    "wo-TF": "#bdbdbd",
}


def model_style(model: str) -> Style:
    """The model's colour and marker, the same in every figure and report."""
    if model in MODEL_STYLES:
        return MODEL_STYLES[model]
    return _OTHER_STYLES[hashlib.sha256(model.encode()).digest()[0] % len(_OTHER_STYLES)]


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
                    color=VARIANT_COLOURS[v],
                    edgecolor="black" if v == "full" else "none",
                    linewidth=0.6,
                    error_kw={"elinewidth": 0.8, "capsize": 2},
                    label=ABLATIONS[v],
                )
        missing = [ABLATIONS[v] for v in ABLATIONS if cells[v] is None]
        ax.set_title(d + (f" (missing: {', '.join(missing)})" if missing else ""))
        ax.set_xticks(np.arange(len(SHORT_METRICS)), [metric_label(m) for m in SHORT_METRICS])
        ax.set_ylabel("test metric (mean over seeds)")
    used = [c for d in datasets for c in variants[d].values() if c is not None]
    _frame(
        fig,
        "Fig. 3: ablation of TedRec (test set)",
        datasets,
        f"no ablation runs (TedRec tagged {', '.join(list(ABLATIONS)[1:])})",
        used,
        f"Bars: mean over seeds; error bars: ± sample std over seeds ({_seed_counts(used)} per bar"
        + ("; none for a one-seed bar)." if any(len(cell.seeds) == 1 for cell in used) else ")."),
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
            style, ours = model_style(m), m == OURS
            ax.scatter(
                [cell.epoch_seconds()],
                [cell.mean("recall@10")],
                s=110 if ours else 36,
                color=style.colour,
                marker=style.marker,
                edgecolors="black" if ours else "white",
                linewidths=0.5,
                zorder=3 if ours else 2,
                label=m,
            )
        ax.margins(0.15)
        ax.set_title(d)
        ax.set_xlabel("seconds per training epoch")
        ax.set_ylabel("test Recall@10")
    used = [c for per in cells.values() for c in per.values()]
    _frame(
        fig,
        "Fig. 4: test Recall@10 vs training time per epoch",
        datasets,
        "no runs with a training log",
        used,
        f"Points: mean over seeds ({_seed_counts(used)} per point) of test Recall@10 and of the mean seconds per "
        "fine-tuning epoch (pre-training excluded); no error bars.",
    )
    return fig


def fig5_user_groups(index: RunIndex, *, encoder: str | None, tag: str | None) -> Figure:
    """Users bucketed by training-history length: bars = users, lines = Recall@10 difference to SASRec."""
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
        used += [base, *text_cells.values()]
        _user_groups(ax, d, base.runs[0].history_lengths, base, text_cells)
    _frame(
        fig,
        "Fig. 5: test Recall@10 minus SASRec's by user group",
        datasets,
        "no TedRec runs",
        used,
        "Bars (left axis): test users per group of training-history length, n under each interval. "
        "Lines (right axis): mean over the group's users of the model's Recall@10 minus SASRec's, each user's "
        "Recall@10 averaged over the model's seeds; an absolute difference, so defined where SASRec's Recall@10 is 0 "
        f"(the paper plots % improvement). Error bars: {CONFIDENCE:.0%} percentile-bootstrap CI over the group's "
        f"users ({BOOTSTRAP_RESAMPLES:,} resamples).",
    )
    return fig


def _user_groups(ax: Axes, dataset: str, lengths: np.ndarray, base: Cell, cells: dict[str, Cell]) -> None:
    groups = np.digitize(lengths, GROUP_EDGES[1:])
    labels = [f"[{lo},{hi})" for lo, hi in zip(GROUP_EDGES, GROUP_EDGES[1:])] + [f"≥{GROUP_EDGES[-1]}"]
    present = [g for g in range(len(labels)) if (groups == g).any()]
    sizes = [int((groups == g).sum()) for g in present]
    x = np.arange(len(present))
    ax.bar(x, sizes, width=0.7, color="0.88")
    ax.set_xticks(x, [f"{labels[g]}\nn={n:,}" for g, n in zip(present, sizes)], fontsize=FOOTNOTE_SIZE)
    ax.set_xlabel("training interactions per user")
    ax.set_ylabel("test users")
    ax.set_title(dataset)
    diff_ax = ax.twinx()
    reference = base.per_user("recall@10")
    offsets = np.linspace(-0.2, 0.2, len(cells)) if len(cells) > 1 else np.zeros(len(cells))
    for offset, (m, cell) in zip(offsets, cells.items()):
        values = cell.per_user("recall@10")
        diffs = [values[groups == g] - reference[groups == g] for g in present]
        means = np.array([diff.mean() for diff in diffs])
        low, high = np.array([bootstrap_ci(diff) for diff in diffs]).T
        style, ours = model_style(m), m == OURS
        diff_ax.errorbar(
            x + offset,
            means,
            yerr=[means - low, high - means],
            color=style.colour,
            marker=style.marker,
            markersize=8 if ours else 4,
            linewidth=1.6 if ours else 0.9,
            elinewidth=0.6,
            capsize=1.5,
            zorder=3 if ours else 2,
            label=m,
        )
    diff_ax.axhline(0, color="0.4", linewidth=0.6, linestyle="--")
    diff_ax.set_ylabel("Recall@10 minus SASRec's (absolute)")


def _panels(n: int) -> tuple[Figure, Iterator[Axes]]:
    """One panel per dataset (a single empty one when there are none)."""
    fig = Figure(figsize=(4.4 * max(1, n) + 1.2, 4.2), layout="constrained")
    return fig, iter(fig.subplots(1, max(1, n), squeeze=False)[0])


def _frame(fig: Figure, title: str, datasets: list[str], empty: str, cells: list[Cell], note: str) -> None:
    """The title (or what is missing), one legend for all panels, and a footnote: what is drawn, the run profile."""
    fig.suptitle(title if datasets else f"{title}: {empty}", fontsize=9)
    entries = dict(pair for ax in fig.axes for pair in zip(*reversed(ax.get_legend_handles_labels())))
    if entries:
        fig.legend(entries.values(), entries.keys(), loc="outside right center")
    width = int(fig.get_figwidth() * 19)  # characters of the footnote font per line
    parts = (note, f"Run profile: {describe_profile(cells)}")
    text = "\n".join(textwrap.fill(part, width, break_on_hyphens=False) for part in parts)
    fig.supxlabel(text, fontsize=FOOTNOTE_SIZE, color="0.3", ha="left", x=0.01, multialignment="left")


def _seed_counts(cells: Iterable[Cell]) -> str:
    counts = sorted({len(cell.seeds) for cell in cells})
    if not counts:
        return "no seeds"
    return f"{counts[0]} seed{'s' if counts[0] > 1 else ''}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]} seeds"


def _variant(index: RunIndex, dataset: str, variant: str, encoder: str | None, tag: str | None) -> Cell | None:
    cell = index.get(dataset, OURS, encoder, variant)
    return index.get(dataset, OURS, encoder, tag) if cell is None and variant == "full" else cell
