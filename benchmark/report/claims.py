"""The paper's claims against ours: each claim, per dataset x metric, holds / does not hold / not significant.

Four claims, each tested as one family (Holm over its tests, as the tables do):
- TedRec beats the best baseline (Table 3's tests, all four metrics);
- each plug-in improves its backbone (Table 4's tests);
- each ablation hurts: full TedRec against each 'wo-*' variant of Fig. 3;
- real text beats random text: TedRec with each real encoder against TedRec with random vectors (Table 5).
Verdict: 'holds' = the claimed direction with Holm-adjusted p < ALPHA; 'does not hold' = the opposite
direction with adjusted p < ALPHA; 'not significant' otherwise (the sign of Δ is in its column).
"""

from __future__ import annotations

import pandas as pd

from benchmark.report.runs import RunIndex, describe_profile
from benchmark.report.stats import ALPHA, holm
from benchmark.report.tables import (
    OURS,
    SHORT_METRICS,
    Comparison,
    Table,
    compare,
    metric_label,
    number_cell,
    table3_comparisons,
    table4_comparisons,
)

RANDOM_TEXT = "random"
ABLATION_TAGS = ("wo-MM", "wo-AG", "wo-IF", "wo-TF")
HOLDS, FAILS, UNSURE = "holds", "does not hold", "not significant"
CLAIMS = {
    "best": f"{OURS} beats the best baseline",
    "plugin": f"+{OURS} improves its backbone",
    "ablation": f"each part of {OURS} helps (ablation hurts)",
    "text": "real item text beats random vectors",
}


def verdict(diff: float, p_holm: float) -> str:
    """HOLDS / FAILS (significant either way) or UNSURE."""
    if p_holm < ALPHA:
        return HOLDS if diff > 0 else FAILS
    return UNSURE


def ablation_comparisons(index: RunIndex, *, encoder: str | None, tag: str | None) -> list[Comparison]:
    """Full TedRec (tag `tag`) against each ablated variant, per dataset x metric (R@10, N@10)."""
    comparisons = []
    for d in index.datasets():
        full = index.get(d, OURS, encoder, tag)
        for ablation in ABLATION_TAGS:
            ablated = index.get(d, OURS, encoder, ablation)
            if full is not None and ablated is not None:
                for metric in SHORT_METRICS:
                    comparisons += compare(d, metric, OURS, f"{OURS} {ablation}", full, ablated)
    return comparisons


def text_comparisons(index: RunIndex, *, tag: str | None) -> list[Comparison]:
    """TedRec with each real text encoder against TedRec with random vectors, per dataset x metric."""
    comparisons = []
    encoders = sorted({key[2] for key in index.cells if key[1] == OURS and key[3] == tag} - {None, RANDOM_TEXT})
    for d in index.datasets():
        random = index.cells.get((d, OURS, RANDOM_TEXT, tag))
        for encoder in encoders:
            real = index.cells.get((d, OURS, encoder, tag))
            if random is not None and real is not None:
                for metric in SHORT_METRICS:
                    comparisons += compare(d, metric, f"{OURS} ({encoder})", f"{OURS} ({RANDOM_TEXT})", real, random)
    return comparisons


def claims_table(index: RunIndex, *, encoder: str | None, tag: str | None) -> Table:
    """One row per claim x dataset x metric (x baseline, backbone, variant or encoder) that has runs on both sides."""
    families = {
        "best": table3_comparisons(index, encoder=encoder, tag=tag),
        "plugin": table4_comparisons(index, encoder=encoder, tag=tag),
        "ablation": ablation_comparisons(index, encoder=encoder, tag=tag),
        "text": text_comparisons(index, tag=tag),
    }
    records = [
        {
            "claim": CLAIMS[family],
            "dataset": c.dataset,
            "metric": c.metric,
            "model": c.model,
            "versus": c.baseline,
            "seeds": ";".join(map(str, c.seeds)),
            "mean_model": c.test.mean_a,
            "mean_versus": c.test.mean_b,
            "diff": c.test.diff,
            "rel_diff": c.test.diff / c.test.mean_b if c.test.mean_b else None,
            "d_z": c.test.d_z,
            "p": c.test.p,
            "p_holm": p,
            "verdict": verdict(c.test.diff, p),
        }
        for family, comparisons in families.items()
        for c, p in zip(comparisons, holm([c.test.p for c in comparisons]))
    ]
    data = pd.DataFrame(
        records,
        columns=[
            "claim",
            "dataset",
            "metric",
            "model",
            "versus",
            "seeds",
            "mean_model",
            "mean_versus",
            "diff",
            "rel_diff",
            "d_z",
            "p",
            "p_holm",
            "verdict",
        ],
    )
    frame = pd.DataFrame(
        {
            "Claim": data["claim"],
            "Dataset": data["dataset"],
            "Metric": data["metric"].map(metric_label),
            "Ours": data["model"],
            "vs": data["versus"],
            "Δ": data["diff"].map(lambda v: f"{v:+.4f}"),
            "Δ%": data["rel_diff"].map(lambda v: number_cell(v, "+.1%")),
            "d_z": data["d_z"].map(lambda v: number_cell(v, "+.3f")),
            "p (Holm)": data["p_holm"].map(lambda v: f"{v:.2e}"),
            "Verdict": data["verdict"],
        }
    )
    counts = data["verdict"].value_counts()
    caption = (
        "The paper's claims at this run profile, each tested per dataset x metric: "
        f"'{HOLDS}' = the claimed direction with Holm-adjusted p < {ALPHA}, '{FAILS}' = significantly the "
        f"opposite, '{UNSURE}' otherwise. Two-sided paired t-test on per-user test metrics (each user's "
        "metric averaged over the seeds both sides share), Holm over each claim's tests (the same p as the "
        "tests tables of Tables 3 and 4); d_z = paired Cohen's d. "
        f"Totals: {', '.join(f'{counts.get(v, 0)} {v}' for v in (HOLDS, FAILS, UNSURE))}. "
        f"Run profile: {describe_profile(index.cells.values())}."
    )
    return Table("claims", frame, data, caption)
