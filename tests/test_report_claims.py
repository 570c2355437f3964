"""The claims table: verdicts, p-values against scipy and Holm by hand, and agreement with the tests tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.metrics import per_user_metrics
from benchmark.report.claims import CLAIMS, FAILS, HOLDS, UNSURE, claims_table, verdict
from benchmark.report.runs import RunIndex
from benchmark.report.stats import ALPHA
from benchmark.report.tables import table3, table4
from tests.test_report import USERS, holm_by_definition, make_workspace, set_test_ranks


def claims(runs: Path) -> pd.DataFrame:
    return claims_table(RunIndex.load(runs), encoder="minilm", tag=None).data


def ranks(runs: Path, dataset: str, model: str, encoder: str, tag: str, seed: int) -> np.ndarray:
    return np.load(runs / dataset / model / encoder / tag / f"seed{seed}" / "test_ranks.npy")


@pytest.mark.parametrize(
    ("diff", "p_holm", "expected"),
    [(0.01, ALPHA / 2, HOLDS), (-0.01, ALPHA / 2, FAILS), (0.01, ALPHA, UNSURE), (-0.01, 0.5, UNSURE)],
)
def test_verdict_rule(diff, p_holm, expected):
    assert verdict(diff, p_holm) == expected


def test_rows_repeat_the_tests_tables(tmp_path):
    runs = make_workspace(tmp_path)
    index = RunIndex.load(runs)
    data = claims(runs).set_index(["claim", "dataset", "metric", "model", "versus"])
    for claim, tests in (
        (CLAIMS["best"], table3(index, encoder="minilm", tag=None)[1].data),
        (CLAIMS["plugin"], table4(index, encoder="minilm", tag=None)[1].data),
    ):
        assert len(tests) and len(data.loc[claim]) == len(tests)
        for row in tests.itertuples():
            mine = data.loc[(claim, row.dataset, row.metric, row.model, row.baseline)]
            assert (mine["p"], mine["p_holm"], mine["diff"]) == (row.p, row.p_holm, row.diff)


def test_ablation_and_text_rows_against_scipy_and_holm_by_hand(tmp_path):
    runs = make_workspace(tmp_path)
    data = claims(runs)
    for claim, versus in (
        (CLAIMS["ablation"], {"TedRec wo-MM", "TedRec wo-TF"}),
        (CLAIMS["text"], {"TedRec (random)"}),
    ):
        rows = data[data["claim"] == claim]
        assert set(rows["versus"]) == versus and set(rows["dataset"]) == set(USERS)
        expected_p = []
        for row in rows.itertuples():
            if claim == CLAIMS["ablation"]:  # full TedRec has seeds 1 (and 2); the ablation seed 1 only
                ours = ranks(runs, row.dataset, "TedRec", "minilm", "main", 1)
                theirs = ranks(runs, row.dataset, "TedRec", "minilm", row.versus.split()[1], 1)
            else:
                ours = ranks(runs, row.dataset, "TedRec", "minilm", "main", 1)
                theirs = ranks(runs, row.dataset, "TedRec", "random", "main", 1)
            a, b = per_user_metrics(ours)[row.metric], per_user_metrics(theirs)[row.metric]
            assert row.seeds == "1"
            assert row.diff == pytest.approx((a - b).mean(), abs=1e-12)
            expected_p.append(stats.ttest_rel(a, b).pvalue)
        assert rows["p"].to_numpy() == pytest.approx(expected_p, rel=1e-9)
        assert rows["p_holm"].to_numpy() == pytest.approx(holm_by_definition(expected_p), rel=1e-9)


def test_verdicts_follow_the_runs(tmp_path):
    runs = make_workspace(tmp_path)
    assert set(claims(runs)["verdict"]) == {HOLDS}
    ours = runs / "OR" / "TedRec" / "minilm" / "main" / "seed1"
    set_test_ranks(ours, ranks(runs, "OR", "SASRec", "id", "main", 1) + 30)  # far worse than everything
    data = claims(runs)
    on_or = data[(data["dataset"] == "OR") & data["claim"].isin([CLAIMS["best"], CLAIMS["ablation"], CLAIMS["text"]])]
    assert len(on_or) and set(on_or["verdict"]) == {FAILS}
    set_test_ranks(ours, ranks(runs, "OR", "TedRec", "random", "main", 1))  # the random-text run's ranks exactly
    text = claims(runs).query("claim == @CLAIMS['text'] and dataset == 'OR'")
    assert (text["diff"] == 0).all() and set(text["verdict"]) == {UNSURE}


def test_claims_table_is_in_the_report(tmp_path):
    from benchmark.report.build import build_report

    runs = make_workspace(tmp_path / "w")
    summary = build_report(runs, tmp_path / "out", html=True)
    assert str(tmp_path / "out" / "tables" / "claims.md") in summary["files"]
    page = (tmp_path / "out" / "report.html").read_text()
    assert 'id="claims"' in page and "What holds at this scale" in page
