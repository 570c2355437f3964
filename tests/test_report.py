"""The report: synthetic run folders -> tables, tests, figures; statistics against hand-worked cases."""

from __future__ import annotations

import hashlib
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex
from matplotlib.container import ErrorbarContainer
from scipy import stats

from benchmark.engine import runstate
from benchmark.errors import TedbenchError
from benchmark.metrics import per_user_metrics, summarize
from benchmark.report.build import build_report
from benchmark.report.figures import (
    HIGHLIGHT,
    MODEL_STYLES,
    fig3_ablation,
    fig4_efficiency,
    fig5_user_groups,
    model_style,
)
from benchmark.report.runs import RunIndex
from benchmark.report.stats import BOOTSTRAP_SEED, bootstrap_ci, holm, paired_test
from benchmark.report.tables import metric_label, table3

USERS = {"ml-1m": 500, "OR": 400}
# model -> (encoder, rank shift: lower is better)
MODELS = {
    "SASRec": (None, 0),
    "FEARec": (None, -1),
    "UniSRec": ("minilm", -2),
    "TedRec": ("minilm", -9),
    "UniSRec+TedRec": ("minilm", -6),
}


def make_run(
    root: Path,
    dataset: str,
    model: str,
    seed: int,
    ranks: np.ndarray,
    *,
    history: np.ndarray,
    encoder: str | None = None,
    tag: str | None = None,
    epochs: int = 5,
) -> Path:
    folder = root / dataset / model / (encoder or "id") / (tag or "main").replace("/", "-") / f"seed{seed}"
    folder.mkdir(parents=True)
    config = {
        "model": model,
        "dataset": dataset,
        "tag": tag,
        "profile": "reduced",
        "model_config": {},
        "device": "cpu",
        "environment": {"cpu": "x86_64"},
        "trainable_parameters": 1,
        "train_config": {
            "seed": seed,
            "epochs": epochs,
            "patience": 10,
            "batch_size": 2048,
            "max_steps_per_epoch": None,
        },
    }
    if encoder is not None:
        config["encoder"] = encoder
    (folder / "config.json").write_text(json.dumps(config))
    np.save(folder / "valid_ranks.npy", np.asarray(ranks, dtype=np.int32))
    (folder / runstate.USERS).write_text(
        "user\ttrain_history\n" + "".join(f"u{i}\t{n}\n" for i, n in enumerate(history))
    )
    set_test_ranks(folder, ranks)
    seconds = 10.0 + len(model) + seed
    log = [{"epoch": -1, "stage": "pretrain", "train_seconds": 999.0}] + [
        {"epoch": e, "train_seconds": seconds, "eval_seconds": 1.0, "loss": 1.0, "valid": {}} for e in range(3)
    ]
    (folder / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    return folder


def set_test_ranks(folder: Path, ranks: np.ndarray) -> None:
    """Store `ranks` as the run's test ranks, with the metrics and completion marker the engine would write."""
    ranks = np.asarray(ranks, dtype=np.int32)
    np.save(folder / "test_ranks.npy", ranks)
    valid = np.load(folder / "valid_ranks.npy")
    summary = {
        split: {k: round(v, 4) for k, v in summarize(r).items()} for split, r in (("test", ranks), ("valid", valid))
    }
    (folder / "metrics.json").write_text(json.dumps({"best_epoch": 0, "users": len(ranks), **summary}))
    runstate.mark_done(folder, runstate.settings_of(json.loads((folder / "config.json").read_text())))


def make_workspace(root: Path) -> Path:
    """Two datasets, five models (two seeds; TedRec on OR one seed), ablations, a second encoder."""
    runs = root / "runs"
    rng = np.random.default_rng(0)
    for dataset, n in USERS.items():
        difficulty = rng.integers(1, 40, n)
        history = rng.integers(3, 118, n)
        for model, (encoder, shift) in MODELS.items():
            for seed in (1,) if (dataset, model) == ("OR", "TedRec") else (1, 2):
                make_run(
                    runs,
                    dataset,
                    model,
                    seed,
                    np.maximum(1, difficulty + shift + rng.integers(-3, 4, n)),
                    history=history,
                    encoder=encoder,
                )
        for tag, shift in (("wo-TF", -4), ("wo-MM", -7)):
            make_run(
                runs,
                dataset,
                "TedRec",
                1,
                np.maximum(1, difficulty + shift),
                history=history,
                encoder="minilm",
                tag=tag,
            )
        make_run(runs, dataset, "TedRec", 1, np.maximum(1, difficulty - 3), history=history, encoder="random")
    return runs


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    """The synthetic workspace and its report, built once for the read-only tests."""
    runs = make_workspace(tmp_path_factory.mktemp("workspace"))
    out = tmp_path_factory.mktemp("report")
    return runs, out, build_report(runs, out)


def md_rows(path: Path) -> list[list[str]]:
    """The cells of a Markdown table's body rows."""
    lines = [line for line in path.read_text().splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]


def digests(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def seed_vector(
    runs: Path, dataset: str, model: str, encoder: str | None, seeds: tuple[int, ...], metric: str
) -> np.ndarray:
    folders = [runs / dataset / model / (encoder or "id") / "main" / f"seed{s}" for s in seeds]
    return np.mean([per_user_metrics(np.load(f / "test_ranks.npy"))[metric] for f in folders], axis=0)


def test_report_rebuilds_byte_identical(built):
    runs, out, summary = built
    assert summary["encoder"] == "minilm" and summary["runs"] == 2 * 2 * len(MODELS) - 1 + 2 * 3
    first = digests(out)
    for name in (
        "table3",
        "table3_tests",
        "table3_vs_paper",
        "table4",
        "table4_tests",
        "table4_vs_paper",
        "table5",
        "table5_vs_paper",
        "timings",
    ):
        assert {f"tables/{name}.{ext}" for ext in ("md", "tex", "csv")} <= set(first)
    for name in ("fig3_ablation", "fig4_efficiency", "fig5_user_groups"):
        assert {f"figures/{name}.png", f"figures/{name}.svg"} <= set(first)
    assert build_report(runs, out) == summary
    assert digests(out) == first


def test_headline_metrics_and_caption(built):
    runs, out, _ = built
    headline = json.loads((out / "metrics.json").read_text())
    assert headline["ml-1m"]["best_baseline_model"] == {"recall@10": "UniSRec", "ndcg@10": "UniSRec"}
    assert headline["ml-1m"]["TedRec"]["recall@10"] == pytest.approx(
        seed_vector(runs, "ml-1m", "TedRec", "minilm", (1, 2), "recall@10").mean(), abs=1e-6
    )
    caption = (out / "tables" / "table3.md").read_text()
    phrases = (
        "better and Holm-adjusted p < 0.01",
        "two-sided paired t-test",
        "unit of pairing = test user",
        "Holm correction (statsmodels multipletests) over the 8",
        "ml-1m 500; OR 400",
        "Seeds: 1, 2",
        "scipy.stats.bootstrap, 2,000 resamples of users, numpy.random.default_rng(2024)",
        "Run profile: profile reduced (params.yaml); NOT the paper's budget: epochs=5 (paper 300)",
    )
    for phrase in phrases:
        assert phrase in caption


def test_star_follows_tedrecs_advantage(tmp_path):
    runs = make_workspace(tmp_path)

    def starred() -> dict[tuple[str, str], bool]:
        tables = table3(RunIndex.load(runs), encoder="minilm", tag=None)
        tests = tables[1].data.set_index(["dataset", "metric"])["significant"].to_dict()
        marks = {
            (row["Dataset"], row["Metric"]): row["TedRec"].star
            for _, row in tables[0].frame.iterrows()
            if row["Dataset"] in USERS
        }
        assert marks == {(d, metric_label(m)): v for (d, m), v in tests.items()}  # no significantly-worse cases here
        return tests

    assert all(starred().values())
    ours = runs / "OR" / "TedRec" / "minilm" / "main" / "seed1"
    original = np.load(ours / "test_ranks.npy")
    set_test_ranks(ours, np.load(runs / "OR" / "UniSRec" / "minilm" / "main" / "seed1" / "test_ranks.npy"))
    result = starred()
    assert not any(v for (d, _), v in result.items() if d == "OR") and all(
        v for (d, _), v in result.items() if d == "ml-1m"
    )
    set_test_ranks(ours, np.load(runs / "OR" / "SASRec" / "id" / "main" / "seed1" / "test_ranks.npy") + 30)
    tables = table3(RunIndex.load(runs), encoder="minilm", tag=None)
    worse = tables[1].data.set_index(["dataset", "metric"]).loc["OR"]
    assert worse["significant"].all() and (worse["diff"] < 0).all()
    assert not any(row["TedRec"].star for _, row in tables[0].frame.iterrows() if row["Dataset"] == "OR")
    assert set(tables[1].frame.loc[tables[1].frame["Dataset"] == "OR", "Sig."]) == {"worse"}
    set_test_ranks(ours, original)
    assert all(starred().values())


def test_pvalues_equal_scipy_on_the_same_vectors(built):
    runs, out, _ = built
    result = pd.read_csv(out / "tables" / "table3_tests.csv")
    assert len(result) == 8
    for row in result.itertuples():
        seeds = tuple(int(s) for s in str(row.seeds).split(";"))
        assert seeds == ((1,) if row.dataset == "OR" else (1, 2))
        a = seed_vector(runs, row.dataset, "TedRec", "minilm", seeds, row.metric)
        b = seed_vector(runs, row.dataset, row.baseline, MODELS[row.baseline][0], seeds, row.metric)
        assert row.p == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-9)
        assert row.d_z == pytest.approx((a - b).mean() / (a - b).std(ddof=1), rel=1e-9)
    assert np.allclose(result["p_holm"], holm_by_definition(list(result["p"])), rtol=1e-12, atol=0)
    assert list(result["significant"]) == list(result["p_holm"] < 0.01)


def holm_by_definition(p: list[float]) -> list[float]:
    """Holm's adjusted p of the i-th smallest: max over j <= i of min(1, (m - j) * p_(j)), j from 0."""
    order = sorted(range(len(p)), key=p.__getitem__)
    adjusted, running = [0.0] * len(p), 0.0
    for j, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - j) * p[i]))
        adjusted[i] = running
    return adjusted


@pytest.mark.parametrize(
    ("pvalues", "expected"),
    [
        ([0.01, 0.04, 0.03, 0.005], [0.03, 0.06, 0.06, 0.02]),  # 4*0.005, 3*0.01, 2*0.03, max(0.06, 1*0.04)
        ([0.01, 0.01, 0.04, 0.5], [0.04, 0.04, 0.08, 0.5]),  # ties: 4*0.01, max(0.04, 3*0.01), 2*0.04, 0.5
        ([0.4, 0.6], [0.8, 0.8]),  # 2*0.4, max(0.8, 0.6)
        ([0.6, 0.7], [1.0, 1.0]),  # capped at 1
        ([0.02], [0.02]),
        ([0.01, float("nan"), 0.02], [0.03, float("nan"), 0.04]),  # NaN stays NaN and counts in m = 3
        ([], []),
    ],
)
def test_holm_hand_worked(pvalues, expected):
    assert np.allclose(holm(pvalues), expected, rtol=1e-12, atol=0, equal_nan=True)
    assert holm(pvalues).shape == (len(pvalues),)


@pytest.mark.parametrize("n", [2000, 10000])  # 10,000 users: resampled in several batches
def test_bootstrap_ci_of_a_binary_mean_matches_the_binomial(n):
    # Resampling n values of which k are ones gives means Binomial(n, k/n) / n: its 2.5% and 97.5% quantiles are
    # the exact percentile interval, up to the Monte-Carlo error of 2,000 resamples (about 0.06 standard errors).
    k = int(0.3 * n)
    x = np.random.default_rng(3).permutation(np.r_[np.ones(k), np.zeros(n - k)])
    se = np.sqrt(0.3 * 0.7 / n)
    exact = stats.binom.ppf([0.025, 0.975], n, k / n) / n
    assert np.allclose(bootstrap_ci(x), exact, rtol=0, atol=0.3 * se)
    assert np.allclose(bootstrap_ci(x, confidence=0.5), stats.binom.ppf([0.25, 0.75], n, k / n) / n, atol=0.3 * se)


def test_bootstrap_ci_hand_worked_cases():
    # [0, 1]: resampled means 0, 0.5, 1 with probability 1/4, 1/2, 1/4, so the 2.5% and 97.5% points are 0 and 1.
    assert bootstrap_ci(np.array([0.0, 1.0])) == (0.0, 1.0)
    assert bootstrap_ci(np.full(50, 0.25)) == pytest.approx((0.25, 0.25))
    assert bootstrap_ci(np.array([0.7])) == (0.7, 0.7)  # one user is its own interval
    x = np.random.default_rng(4).normal(0.02, 0.3, 300)
    assert bootstrap_ci(x) == bootstrap_ci(x) != bootstrap_ci(x, seed=BOOTSTRAP_SEED + 1)  # seeded
    test = paired_test(x + 1, np.ones_like(x))
    assert (test.ci_low, test.ci_high) == pytest.approx(bootstrap_ci(x)) and test.diff == pytest.approx(x.mean())


def test_missing_cells_render_as_dash(built):
    out = built[1] / "tables"
    rows = md_rows(out / "table3.md")
    header = [cell.strip() for cell in (out / "table3.md").read_text().splitlines()[0].strip("|").split("|")]
    assert len(rows) == 20 and all(set(row[2:]) == {"–"} for row in rows if row[0] in ("Office", "Food", "Movies"))
    assert all(row[header.index("FMLP-Rec")] == "–" for row in rows)
    table5 = {row[0]: row[1:] for row in md_rows(out / "table5.md")}
    assert table5["bert-cls"] == ["–"] * 4 and table5["minilm"][0].startswith("**0.")
    assert r"\textbf{" in (out / "table3.tex").read_text() and "<u>" in (out / "table3.md").read_text()


def test_paper_vs_ours_delta_hand_made(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "ml-1m", "SASRec", 1, [1, 5, 20, 30], history=np.array([3, 4, 5, 6]))  # recall@10 = 0.5
    make_run(runs, "ml-1m", "SASRec", 2, [1, 50, 20, 30], history=np.array([3, 4, 5, 6]))  # recall@10 = 0.25
    versus = table3(RunIndex.load(runs), encoder=None, tag=None)[2]
    data = versus.data.set_index(["dataset", "metric", "model"])
    row = data.loc[("ml-1m", "recall@10", "SASRec")]
    assert (
        row["paper"] == 0.23
        and row["ours"] == pytest.approx(0.375)
        and row["delta"] == pytest.approx(0.145)
        and row["rel_delta"] == pytest.approx(0.145 / 0.23)
    )
    ndcg = ((1 + 1 / np.log2(6)) / 4 + 1 / 4) / 2
    assert data.loc[("ml-1m", "ndcg@10", "SASRec"), "delta"] == pytest.approx(ndcg - 0.1146)
    assert data.loc[("OR", "recall@10", "TedRec"), ["ours", "delta"]].isna().all()
    shown = versus.frame.set_index(["Dataset", "Metric", "Model"])
    assert list(shown.loc[("ml-1m", "R@10", "SASRec")]) == ["0.2300", "0.3750", "+0.1450", "+63.0%"]
    assert list(shown.loc[("OR", "R@10", "TedRec")]) == ["0.2234", "–", "–", "–"]
    assert len(versus.frame) == 220


def test_figures_are_valid_and_say_what_is_missing(built, tmp_path):
    runs, out, _ = built
    for name in ("fig3_ablation", "fig4_efficiency", "fig5_user_groups"):
        assert (out / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert ET.parse(out / "figures" / f"{name}.svg").getroot().tag == "{http://www.w3.org/2000/svg}svg"
    fig = fig5_user_groups(RunIndex.load(runs), encoder="minilm", tag=None)
    assert [title for ax in fig.axes if (title := ax.get_title())] == list(USERS)  # one panel per dataset, drawn
    with pytest.raises(TedbenchError, match="no such folder"):
        build_report(tmp_path / "no-runs", tmp_path / "empty")
    (tmp_path / "no-runs").mkdir()
    empty = build_report(tmp_path / "no-runs", tmp_path / "empty")
    assert empty["runs"] == 0 and all(Path(p).exists() for p in empty["files"])
    assert set(json.loads((tmp_path / "empty" / "metrics.json").read_text())) == set()


def test_fig5_draws_differences_to_sasrec_where_its_recall_is_zero(tmp_path):
    runs = tmp_path / "runs"
    history = np.array([2, 3, 7, 8, 30])  # groups [0,5): 2 users, [5,10): 2 users, [20,50): 1 user
    make_run(runs, "OR", "SASRec", 1, [1, 50, 50, 50, 50], history=history)  # recall@10 1,0 | 0,0 | 0
    make_run(runs, "OR", "TedRec", 1, [1, 1, 1, 50, 1], history=history, encoder="minilm")  # 1,1 | 1,0 | 1
    fig = fig5_user_groups(RunIndex.load(runs), encoder="minilm", tag=None)
    bars = next(ax for ax in fig.axes if ax.get_title() == "OR")
    assert [t.get_text() for t in bars.get_xticklabels()] == ["[0,5)\nn=2", "[5,10)\nn=2", "[20,50)\nn=1"]
    assert [patch.get_height() for patch in bars.patches] == [2, 2, 1]
    (line,) = [c for ax in fig.axes for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert line.get_label() == "TedRec" and line.lines[0].get_color() == HIGHLIGHT.colour
    assert list(line.lines[0].get_ydata()) == [0.5, 0.5, 1.0]  # mean differences; SASRec's [5,10) recall is 0
    # Differences [0, 1] resample to means 0, 0.5, 1 (1/4, 1/2, 1/4): the 95% interval is [0, 1]; one user: [1, 1].
    assert [tuple(seg[:, 1]) for seg in line.lines[2][0].get_segments()] == [(0, 1), (0, 1), (1, 1)]
    assert "Error bars: 95% percentile-bootstrap CI over the group's users" in fig.get_supxlabel()


def test_figures_keep_one_style_per_model_and_the_profile_in_a_footnote(built):
    runs, _, _ = built
    index = RunIndex.load(runs)
    fig = fig4_efficiency(index, encoder="minilm", tag=None)
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["SASRec", "FEARec", "UniSRec", "TedRec"]  # once each
    for ax in fig.axes:
        for points in ax.collections:
            assert to_hex(points.get_facecolor()[0]) == model_style(points.get_label()).colour
    styles = [*MODEL_STYLES.values(), model_style("SomeNewModel")]  # a model outside the paper gets its own too
    assert len({s.colour for s in styles}) == len({s.marker for s in styles}) == len(styles)
    assert model_style("TedRec") == HIGHLIGHT == MODEL_STYLES["TedRec"] and model_style("x") == model_style("x")
    ablation = fig3_ablation(index, encoder="minilm", tag=None)
    assert "Run profile" not in ablation.get_suptitle() and "NOT the paper's budget" in ablation.get_supxlabel()
    assert (
        "error bars: ± sample std over seeds (1-2 seeds per bar; none for a one-seed bar)" in ablation.get_supxlabel()
    )
    red = [p for ax in ablation.axes for p in ax.patches if to_hex(p.get_facecolor()) == HIGHLIGHT.colour]
    assert len(red) == 2 * len(USERS)  # TedRec's two metric bars per dataset, no other bar in its colour


@pytest.mark.parametrize("damage", ["no-marker", "failed", "edited-after-finish"])
def test_unfinished_runs_are_refused_naming_the_folder(tmp_path, damage):
    runs = make_workspace(tmp_path)
    folder = runs / "OR" / "SASRec" / "id" / "main" / "seed1"
    if damage == "no-marker":
        (folder / "DONE.json").unlink()  # killed after metrics.json, before the completion marker
    elif damage == "failed":
        (folder / "FAILED.json").write_text(json.dumps({"error": "diverged", "type": "TedbenchError"}))
    else:
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "device": "cuda"}))
    with pytest.raises(TedbenchError, match=f"{folder}: (a failed run|not a finished run)"):
        RunIndex.load(runs)


def test_a_run_still_training_is_left_out_only_when_asked(tmp_path):
    runs = make_workspace(tmp_path)
    folder = runs / "OR" / "SASRec" / "id" / "main" / "seed2"
    (folder / "DONE.json").unlink()  # mid-training: no completion marker yet
    with runstate.run_lock(folder):  # held by this (live) process, as by a training worker
        with pytest.raises(TedbenchError, match=f"{folder}: not a finished run"):
            RunIndex.load(runs)
        index = RunIndex.load(runs, skip_running=True)
        summary = build_report(runs, tmp_path / "out", skip_running=True)
    assert index.running == (folder,) and summary["running"] == [str(folder)]
    assert index.cells["OR", "SASRec", None, None].seeds == (1,)
    with pytest.raises(TedbenchError, match=f"{folder}: not a finished run"):  # the worker died: refused again
        RunIndex.load(runs, skip_running=True)


def test_a_fresh_run_is_compared_with_a_committed_table3_cell_by_cell(tmp_path: Path) -> None:
    from benchmark.report.compare import reproduced_message

    header = "dataset,model,metric,encoder,mean,std,n_seeds,seeds\n"
    rows = (
        "OR-sample,SASRec,ndcg@10,,0.02520887,0.006,2,2020;2021\n"
        "OR-sample,TedRec,ndcg@10,minilm,0.0204,0.001,2,2020;2021\n"
    )
    for name, text in (("committed", rows), ("same", rows.replace("0.02520887", "0.025209"))):
        (tmp_path / name / "tables").mkdir(parents=True)
        (tmp_path / name / "tables" / "table3.csv").write_text(header + text)
    ok, message = reproduced_message(tmp_path / "same", tmp_path / "committed")
    assert ok and message.startswith("reproduced: yes (all 2 Table 3 cells")  # equal as printed, to 4 decimals
    (tmp_path / "same" / "tables" / "table3.csv").write_text(header + rows.replace("0.0204,", "0.0207,").split("\n")[1])
    ok, message = reproduced_message(tmp_path / "same", tmp_path / "committed")
    assert not ok and message.splitlines()[0] == "reproduced: no (2 of 2 Table 3 cells differ)"
    assert "OR-sample SASRec ndcg@10: missing here, 0.0252 (2 seeds)" in message
    assert "OR-sample TedRec ndcg@10 minilm: 0.0207 (2 seeds) here, 0.0204 (2 seeds)" in message
    with pytest.raises(TedbenchError, match="no Table 3 to compare with"):
        reproduced_message(tmp_path / "same", tmp_path / "nowhere")
