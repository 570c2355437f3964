"""Tables 3-5, their significance tests, paper-vs-ours comparisons and timings (Markdown, LaTeX, CSV).

Display frames hold strings and `Entry` cells; pandas/tabulate do all the layout. CSV files hold
the tidy numbers behind each table. A cell without runs is shown as MISSING, never filled in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.errors import TedbenchError
from benchmark.fsutil import write_text
from benchmark.paper import paper_data
from benchmark.report.runs import Cell, RunIndex, describe_profile
from benchmark.report.stats import ALPHA, BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED, PairedTest, holm, paired_test

OURS = "TedRec"
PLUGIN_BACKBONES = ("UniSRec", "DLFS-Rec", "SASRecF", "DIF-SR")
PLUGIN_SUFFIX = "+TedRec"
ENCODERS = ("random", "bert-cls", "bert-mean", "t5-mean", "flan-t5-mean", "llama2-mean", "minilm", "minilm-cls")
ALL_METRICS = ("recall@10", "recall@20", "ndcg@10", "ndcg@20")
SHORT_METRICS = ("recall@10", "ndcg@10")
SMALL_TABLE_DATASETS = ("ml-1m", "OR")  # the datasets of the paper's Tables 4 and 5
MISSING = "–"

_STYLE = {
    "md": {"bold": "**{}**", "underline": "<u>{}</u>"},
    "tex": {"bold": r"\textbf{{{}}}", "underline": r"\underline{{{}}}"},
    "html": {"bold": "<strong>{}</strong>", "underline": "<u>{}</u>"},
}
_PM = {"md": " ± ", "tex": r" $\pm$ ", "html": " ± "}
_STAR = {"md": r"\*", "tex": r"$^{*}$", "html": "<sup>*</sup>"}
_TEX = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"$<$",
    ">": r"$>$",
    "–": "--",
    "±": r"$\pm$",
    "×": r"$\times$",
    "Δ": r"$\Delta$",
}


@dataclass(frozen=True)
class Entry:
    """A metric cell: mean (± std over seeds), optionally bold/underlined and starred."""

    mean: float
    std: float | None = None
    style: str = ""
    star: bool = False

    def render(self, fmt: str) -> str:
        text = f"{self.mean:.4f}" + (f"{_PM[fmt]}{self.std:.4f}" if self.std is not None else "")
        text = _STYLE[fmt][self.style].format(text) if self.style else text
        return text + (_STAR[fmt] if self.star else "")


@dataclass(frozen=True)
class Table:
    name: str
    frame: pd.DataFrame  # display: str or Entry cells
    data: pd.DataFrame  # tidy numbers, written as CSV
    caption: str


@dataclass(frozen=True)
class Comparison:
    dataset: str
    metric: str
    model: str
    baseline: str
    seeds: tuple[int, ...]
    test: PairedTest


def metric_label(metric: str) -> str:
    """'recall@10' -> 'R@10', 'ndcg@20' -> 'N@20'."""
    name, k = metric.split("@")
    return f"{name[0].upper()}@{k}"


def render(table: Table, fmt: str) -> str:
    """The table as Markdown ('md', caption below) or LaTeX ('tex', a table float with caption)."""
    text = (lambda v: v) if fmt == "md" else _tex_escape
    frame = table.frame.map(lambda v: v.render(fmt) if isinstance(v, Entry) else text(str(v)))
    if fmt == "md":
        return frame.to_markdown(index=False, disable_numparse=True) + f"\n\n{table.caption}\n"
    frame.columns = [_tex_escape(str(c)) for c in frame.columns]
    return frame.to_latex(
        index=False,
        escape=False,
        caption=_tex_escape(table.caption),
        label=f"tab:{table.name}",
        column_format="l" * frame.shape[1],
    )


def write_table(table: Table, folder: Path) -> list[Path]:
    """<name>.md, <name>.tex and <name>.csv, each written atomically."""
    paths = [folder / f"{table.name}.{ext}" for ext in ("md", "tex", "csv")]
    write_text(paths[0], render(table, "md"))
    write_text(paths[1], render(table, "tex"))
    write_text(paths[2], table.data.to_csv(index=False, lineterminator="\n"))
    return paths


# -- Table 3 --------------------------------------------------------------------------------------


def table3(index: RunIndex, *, encoder: str | None, tag: str | None) -> list[Table]:
    """Table 3, its tests (TedRec vs the best baseline per dataset x metric) and paper | ours | delta."""
    datasets = index.datasets()
    models = main_models(index, tag)
    cells = {(d, m): index.get(d, m, encoder, tag) for d in datasets for m in models}
    comparisons = table3_comparisons(index, encoder=encoder, tag=tag)
    significant = _significant(comparisons)
    rows = []
    for d in datasets:
        for metric in ALL_METRICS:
            present = {m: cells[d, m] for m in models if cells[d, m] is not None}
            styles = _styles({m: c.mean(metric) for m, c in present.items()})
            best = _best(metric, {m: c for m, c in present.items() if m != OURS})
            row = {"Dataset": d, "Metric": metric_label(metric)}
            for m in models:
                cell = cells[d, m]
                row[m] = (
                    MISSING
                    if cell is None
                    else Entry(cell.mean(metric), cell.std(metric), styles[m], (d, metric, m) in significant)
                )
            row["Impr."] = _impr(present.get(OURS), present.get(best), metric)
            rows.append(row)
    data = _tidy(cells, ALL_METRICS, ("dataset", "model"))
    profile = describe_profile(c for c in cells.values() if c is not None)
    family = f"the {len(comparisons)} {OURS}-vs-best-baseline tests of this table (one per dataset × metric)"
    caption = (
        "Table 3: overall performance on the test set (full-sort ranking). Values: mean ± sample std over seeds; "
        "best bold, runner-up underlined; "
        f"Impr. = relative improvement of {OURS} over the best baseline (highest mean). "
        f"{_stats_note(comparisons, family)} "
        f"{_context(cells.values(), encoder, profile)}"
    )
    paper = paper_data("table3")
    return [
        Table("table3", pd.DataFrame(rows), data, caption),
        _tests_table("table3_tests", comparisons, f"Tests behind Table 3. {caption}"),
        _versus(
            "table3_vs_paper",
            paper,
            data,
            ["dataset", "metric", "model"],
            f"Table 3, paper vs ours (test, mean over seeds; paper text encoder bert-cls, ours {encoder}). "
            f"Run profile: {profile}.",
        ),
    ]


def table3_comparisons(index: RunIndex, *, encoder: str | None, tag: str | None) -> list[Comparison]:
    """TedRec against the best baseline (highest mean) of each dataset x metric."""
    models = main_models(index, tag)
    comparisons: list[Comparison] = []
    for d in index.datasets():
        cells = {m: index.get(d, m, encoder, tag) for m in models}
        for metric in ALL_METRICS:
            best = _best(metric, {m: c for m, c in cells.items() if m != OURS})
            if best is not None and cells[OURS] is not None:
                comparisons += compare(d, metric, OURS, best, cells[OURS], cells[best])
    return comparisons


# -- Table 4 --------------------------------------------------------------------------------------


def table4(index: RunIndex, *, encoder: str | None, tag: str | None) -> list[Table]:
    """Each backbone with and without TedRec's fusion (registered as '<backbone>+TedRec')."""
    datasets = _small_datasets(index, [m for b in PLUGIN_BACKBONES for m in (b, b + PLUGIN_SUFFIX)], tag)
    cells = {
        (d, m): index.get(d, m, encoder, tag)
        for d in datasets
        for b in PLUGIN_BACKBONES
        for m in (b, b + PLUGIN_SUFFIX)
    }
    comparisons = table4_comparisons(index, encoder=encoder, tag=tag)
    significant = _significant(comparisons)
    rows = []
    for b in PLUGIN_BACKBONES:
        for m in (b, b + PLUGIN_SUFFIX):
            row: dict[str, object] = {"Model": m}
            for d in datasets:
                for metric in SHORT_METRICS:
                    cell = cells[d, m]
                    row[f"{d} {metric_label(metric)}"] = (
                        MISSING
                        if cell is None
                        else Entry(cell.mean(metric), cell.std(metric), star=(d, metric, m) in significant)
                    )
            rows.append(row)
    data = _tidy(cells, SHORT_METRICS, ("dataset", "model"))
    data.insert(2, "with_ours", data["model"].str.endswith(PLUGIN_SUFFIX))
    data["model"] = data["model"].str.removesuffix(PLUGIN_SUFFIX)
    profile = describe_profile(c for c in cells.values() if c is not None)
    family = f"the {len(comparisons)} with-vs-without tests of this table (one per backbone × dataset × metric)"
    caption = (
        f"Table 4: backbones without and with {OURS}'s fusion ('+{OURS}'), test set. "
        "Values: mean ± sample std over seeds. "
        f"{_stats_note(comparisons, family)} "
        f"{_context(cells.values(), encoder, profile)}"
    )
    return [
        Table("table4", pd.DataFrame(rows), data, caption),
        _tests_table("table4_tests", comparisons, f"Tests behind Table 4. {caption}"),
        _versus(
            "table4_vs_paper",
            paper_data("table4"),
            data,
            ["dataset", "metric", "model", "with_ours"],
            f"Table 4, paper vs ours (test, mean over seeds; paper text encoder bert-cls, ours {encoder}). "
            f"Run profile: {profile}.",
        ),
    ]


def table4_comparisons(index: RunIndex, *, encoder: str | None, tag: str | None) -> list[Comparison]:
    """Each '<backbone>+TedRec' against its backbone, per dataset x metric (R@10, N@10)."""
    datasets = _small_datasets(index, [m for b in PLUGIN_BACKBONES for m in (b, b + PLUGIN_SUFFIX)], tag)
    comparisons = []
    for b in PLUGIN_BACKBONES:
        for d in datasets:
            plain, fused = index.get(d, b, encoder, tag), index.get(d, b + PLUGIN_SUFFIX, encoder, tag)
            if plain is not None and fused is not None:
                for metric in SHORT_METRICS:
                    comparisons += compare(d, metric, b + PLUGIN_SUFFIX, b, fused, plain)
    return comparisons


# -- Table 5 --------------------------------------------------------------------------------------


def table5(index: RunIndex, *, tag: str | None) -> list[Table]:
    """TedRec with each text encoder."""
    datasets = _small_datasets(index, [OURS], tag)
    extra = sorted({k[2] for k in index.cells if k[1] == OURS and k[3] == tag and k[2] is not None} - set(ENCODERS))
    encoders = [*ENCODERS, *extra]
    cells = {(d, e): index.cells.get((d, OURS, e, tag)) for d in datasets for e in encoders}
    columns = {}
    for d in datasets:
        for metric in SHORT_METRICS:
            present = {e: cells[d, e] for e in encoders if cells[d, e] is not None}
            styles = _styles({e: c.mean(metric) for e, c in present.items()})
            columns[f"{d} {metric_label(metric)}"] = [
                MISSING if cells[d, e] is None else Entry(cells[d, e].mean(metric), cells[d, e].std(metric), styles[e])
                for e in encoders
            ]
    data = _tidy(cells, SHORT_METRICS, ("dataset", "encoder"))
    profile = describe_profile(c for c in cells.values() if c is not None)
    caption = (
        f"Table 5: {OURS} with different item-text encoders, test set. "
        "Values: mean ± sample std over seeds; best bold, runner-up underlined; "
        f"no significance test. {_context(cells.values(), None, profile)}"
    )
    return [
        Table("table5", pd.DataFrame({"Encoder": encoders, **columns}), data, caption),
        _versus(
            "table5_vs_paper",
            paper_data("table5"),
            data,
            ["dataset", "metric", "encoder"],
            f"Table 5, paper vs ours (test, mean over seeds). Run profile: {profile}.",
        ),
    ]


# -- Timings --------------------------------------------------------------------------------------


def timings(index: RunIndex, *, encoder: str | None, tag: str | None) -> Table:
    """Mean training seconds per epoch, ours vs the authors' (A100), also relative to SASRec."""
    paper = paper_data("timings").set_index(["dataset", "model"])
    models = main_models(index, tag)
    ours = {(d, m): index.get(d, m, encoder, tag) for d in index.datasets() for m in models}
    seconds = {key: cell.epoch_seconds() for key, cell in ours.items() if cell is not None}
    keys = [key for key in ours if key in seconds or key in paper.index]
    records = []
    for d, m in keys:
        own, base = seconds.get((d, m)), seconds.get((d, "SASRec"))
        p = paper.loc[(d, m)] if (d, m) in paper.index else None
        p_base = paper.loc[(d, "SASRec")]["train_seconds_per_epoch"] if (d, "SASRec") in paper.index else None
        records.append(
            {
                "dataset": d,
                "model": m,
                "ours_train_seconds_per_epoch": own,
                "ours_vs_sasrec": own / base if own is not None and base else None,
                "paper_train_seconds_per_epoch": None if p is None else p["train_seconds_per_epoch"],
                "paper_vs_sasrec": None if p is None or not p_base else p["train_seconds_per_epoch"] / p_base,
                "paper_inference_seconds": None
                if p is None or pd.isna(p["inference_seconds"])
                else p["inference_seconds"],
            }
        )
    data = pd.DataFrame(
        records,
        columns=[
            "dataset",
            "model",
            "ours_train_seconds_per_epoch",
            "ours_vs_sasrec",
            "paper_train_seconds_per_epoch",
            "paper_vs_sasrec",
            "paper_inference_seconds",
        ],
    )
    frame = pd.DataFrame(
        {
            "Dataset": data["dataset"],
            "Model": data["model"],
            "Ours s/epoch": data["ours_train_seconds_per_epoch"].map(lambda v: number_cell(v, ".1f")),
            "Ours × SASRec": data["ours_vs_sasrec"].map(lambda v: number_cell(v, ".2f")),
            "Paper s/epoch (A100)": data["paper_train_seconds_per_epoch"].map(lambda v: number_cell(v, ".1f")),
            "Paper × SASRec": data["paper_vs_sasrec"].map(lambda v: number_cell(v, ".2f")),
            "Paper inference s": data["paper_inference_seconds"].map(lambda v: number_cell(v, ".2f")),
        }
    )
    caption = (
        "Training time per epoch: ours = mean train_seconds over the fine-tuning epochs of log.jsonl "
        "(pre-training excluded), "
        "averaged over seeds; paper = the authors' per-epoch times on an A100 (rebuttal; S3-Rec not reported); "
        "× SASRec = ratio to SASRec on the same dataset and hardware. "
        f"Run profile: {describe_profile(c for c in ours.values() if c is not None)}."
    )
    return Table("timings", frame, data, caption)


# -- shared helpers -------------------------------------------------------------------------------


def main_models(index: RunIndex, tag: str | None) -> list[str]:
    """The paper's baselines (its Table 3's order), then other models with runs (not '+TedRec' plug-ins) as extra
    baselines, then TedRec."""
    baselines = paper_baselines()
    known = {*baselines, OURS}
    extra = sorted(
        {k[1] for k in index.cells if k[3] == tag and k[1] not in known and not k[1].endswith(PLUGIN_SUFFIX)}
    )
    return [*baselines, *extra, OURS]


def paper_baselines() -> list[str]:
    """The models of the paper's Table 3 but TedRec, in the paper's column order."""
    return [model for model in dict.fromkeys(paper_data("table3")["model"]) if model != OURS]


def _small_datasets(index: RunIndex, models: Iterable[str], tag: str | None) -> list[str]:
    models = set(models)
    extra = {k[0] for k in index.cells if k[1] in models and k[3] == tag} - set(SMALL_TABLE_DATASETS)
    return [d for d in index.datasets() if d in SMALL_TABLE_DATASETS or d in extra]


def _best(metric: str, cells: dict[str, Cell | None]) -> str | None:
    """The model with the highest mean (first in order on ties), or None without runs."""
    present = {m: c.mean(metric) for m, c in cells.items() if c is not None}
    return max(present, key=present.__getitem__) if present else None


def _styles(means: dict[str, float]) -> dict[str, str]:
    """'bold' for the best mean, 'underline' for the runner-up value (ties share the mark)."""
    ranked = sorted(set(means.values()), reverse=True)
    marks = dict(zip(ranked, ("bold", "underline")))
    return {m: marks.get(v, "") for m, v in means.items()}


def compare(dataset: str, metric: str, model: str, baseline: str, a: Cell, b: Cell) -> list[Comparison]:
    """Per-user paired test on the seeds both cells share (each user's metric averaged over them)."""
    if a.n_users != b.n_users:
        raise TedbenchError(
            f"{a.runs[0].path} and {b.runs[0].path}: {a.n_users} vs {b.n_users} test users; "
            "runs of one dataset must share its users"
        )
    seeds = tuple(sorted(set(a.seeds) & set(b.seeds)))
    if not seeds:
        return []
    return [
        Comparison(
            dataset, metric, model, baseline, seeds, paired_test(a.per_user(metric, seeds), b.per_user(metric, seeds))
        )
    ]


def _significant(comparisons: list[Comparison]) -> set[tuple[str, str, str]]:
    """(dataset, metric, model) that are better with Holm-adjusted p (over all comparisons) < ALPHA: the '*' cells."""
    adjusted = holm([c.test.p for c in comparisons])
    return {(c.dataset, c.metric, c.model) for c, p in zip(comparisons, adjusted) if p < ALPHA and c.test.diff > 0}


def _impr(ours: Cell | None, best: Cell | None, metric: str) -> str:
    if ours is None or best is None or best.mean(metric) == 0:
        return MISSING
    return f"{100 * (ours.mean(metric) / best.mean(metric) - 1):+.2f}%"


def _tidy(cells: dict[tuple[str, str], Cell | None], metrics: Iterable[str], names: tuple[str, str]) -> pd.DataFrame:
    """One row per (cell with runs, metric): the two key names, metric, [encoder], mean, std, n_seeds, seeds."""
    extra = () if "encoder" in names else ("encoder",)
    rows = [
        {
            **dict(zip(names, key)),
            "metric": metric,
            **{e: cell.key[2] for e in extra},
            "mean": cell.mean(metric),
            "std": cell.std(metric),
            "n_seeds": len(cell.seeds),
            "seeds": ";".join(map(str, cell.seeds)),
        }
        for key, cell in cells.items()
        if cell is not None
        for metric in metrics
    ]
    return pd.DataFrame(rows, columns=[*names, "metric", *extra, "mean", "std", "n_seeds", "seeds"])


def _tests_table(name: str, comparisons: list[Comparison], caption: str) -> Table:
    adjusted = holm([c.test.p for c in comparisons])
    data = pd.DataFrame(
        [
            {
                "dataset": c.dataset,
                "metric": c.metric,
                "model": c.model,
                "baseline": c.baseline,
                "seeds": ";".join(map(str, c.seeds)),
                "n_users": c.test.n_users,
                "mean_model": c.test.mean_a,
                "mean_baseline": c.test.mean_b,
                "diff": c.test.diff,
                "rel_impr": c.test.diff / c.test.mean_b if c.test.mean_b else None,
                "ci_low": c.test.ci_low,
                "ci_high": c.test.ci_high,
                "d_z": c.test.d_z,
                "t": c.test.t,
                "p": c.test.p,
                "p_holm": p,
                "significant": bool(p < ALPHA),
            }
            for c, p in zip(comparisons, adjusted)
        ],
        columns=[
            "dataset",
            "metric",
            "model",
            "baseline",
            "seeds",
            "n_users",
            "mean_model",
            "mean_baseline",
            "diff",
            "rel_impr",
            "ci_low",
            "ci_high",
            "d_z",
            "t",
            "p",
            "p_holm",
            "significant",
        ],
    )
    frame = pd.DataFrame(
        {
            "Dataset": data["dataset"],
            "Metric": data["metric"].map(metric_label),
            "Model": data["model"],
            "vs": data["baseline"],
            "Seeds": data["seeds"].str.replace(";", ", "),
            "Users": data["n_users"].map(lambda v: f"{v:,}"),
            "Δ": data["diff"].map(lambda v: f"{v:+.4f}"),
            "95% CI": [f"[{lo:+.4f}, {hi:+.4f}]" for lo, hi in zip(data["ci_low"], data["ci_high"])],
            "Impr.": data["rel_impr"].map(lambda v: number_cell(v, "+.2%")),
            "d_z": data["d_z"].map(lambda v: number_cell(v, "+.3f")),
            "p": data["p"].map(lambda v: f"{v:.2e}"),
            "p (Holm)": data["p_holm"].map(lambda v: f"{v:.2e}"),
            "Sig.": [
                "" if not sig else "*" if diff > 0 else "worse" for sig, diff in zip(data["significant"], data["diff"])
            ],
        }
    )
    return Table(name, frame, data, caption)


def _versus(name: str, paper: pd.DataFrame, ours: pd.DataFrame, keys: list[str], caption: str) -> Table:
    """paper | ours | delta for every number the paper reports (ours missing -> MISSING)."""
    merged = paper.merge(ours[[*keys, "mean"]].rename(columns={"mean": "ours"}), on=keys, how="left").rename(
        columns={"value": "paper"}
    )
    merged["delta"] = merged["ours"] - merged["paper"]
    merged["rel_delta"] = merged["delta"] / merged["paper"]
    frame = merged[keys].astype(str).copy()
    frame.columns = [k.replace("_", " ").capitalize() for k in keys]
    frame["Metric"] = merged["metric"].map(metric_label)
    frame["Paper"] = merged["paper"].map(lambda v: f"{v:.4f}")
    frame["Ours"] = merged["ours"].map(lambda v: number_cell(v, ".4f"))
    frame["Δ"] = merged["delta"].map(lambda v: number_cell(v, "+.4f"))
    frame["Δ%"] = merged["rel_delta"].map(lambda v: number_cell(v, "+.1%"))
    return Table(name, frame, merged, f"{caption} Δ = ours - paper; Δ% relative to the paper; '{MISSING}' = no runs.")


def _stats_note(comparisons: list[Comparison], family: str) -> str:
    seeds = sorted({s for c in comparisons for s in c.seeds})
    return (
        f"* = better and Holm-adjusted p < {ALPHA} (a significantly worse result is marked 'worse' in the tests "
        "table): two-sided paired t-test (scipy.stats.ttest_rel), unit of pairing = test user, "
        "each user's metric averaged over the seeds both compared cells share "
        f"(seeds used: {', '.join(map(str, seeds)) or 'none'}); Holm correction (statsmodels multipletests) "
        f"over {family}. Effect size d_z and 95% percentile-bootstrap CIs of the mean difference "
        f"(scipy.stats.bootstrap, {BOOTSTRAP_RESAMPLES:,} resamples of users, "
        f"numpy.random.default_rng({BOOTSTRAP_SEED})) in the tests table."
    )


def _context(cells: Iterable[Cell | None], encoder: str | None, profile: str) -> str:
    present = [c for c in cells if c is not None]
    users = {}
    for cell in present:
        users.setdefault(cell.key[0], cell.n_users)
    seeds = sorted({s for c in present for s in c.seeds})
    parts = [
        f"Users: {'; '.join(f'{d} {n:,}' for d, n in users.items()) or 'none'}.",
        f"Seeds: {', '.join(map(str, seeds)) or 'none'} (per cell: see the CSV).",
        *([f"Text encoder of the text models: {encoder}."] if encoder else []),
        f"Run profile: {profile}.",
        f"'{MISSING}' = no runs.",
    ]
    return " ".join(parts)


def number_cell(value: object, spec: str) -> str:
    """`value` formatted by `spec`, or MISSING for None or NaN."""
    return MISSING if value is None or pd.isna(value) else format(value, spec)


def _tex_escape(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in text)
