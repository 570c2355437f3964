"""Profiles and suites from params.yaml, the fixed user subsample, and the resumable in-process pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmark import pipeline
from benchmark.data.process import Sequences, user_subsample
from benchmark.errors import TedbenchError
from benchmark.pipeline import Countdown, format_duration
from benchmark.profiles import load_profile, load_suite
from benchmark.registry import get_model

REPO = Path(__file__).resolve().parents[1]

SUITE = """
profiles:
  tiny:
    description: TINY
    train: {epochs: 1, patience: 1, batch_size: 512}
    model: {hidden_size: 16, inner_size: 32, n_exps: 2, attribute_hidden_size: 16}
suites:
  tiny:
    profile: tiny
    datasets: [OR-sample]
    models: [SASRec, TedRec]
    tuned: [SASRec]
    seeds: [1, 2]
    ablations:
      - {tag: wo-IF, set: use_id_filter=false}
    encoders: [random]
"""


def test_committed_profiles_and_suites_load() -> None:
    for name in ("paper", "reduced", "demo", "gate"):
        assert load_profile(name, REPO / "params.yaml").name == name
    reduced = load_suite("reduced", REPO / "params.yaml")
    assert reduced.datasets == ("ml-1m", "OR") and "TedRec" in reduced.models and len(reduced.ablations) == 4
    assert all(get_model(m) for m in reduced.models)  # every model of the suite is registered
    small = load_suite("small", REPO / "params.yaml")
    # the paper's budget but the batch size: early stopping (patience >= 5) only, no step caps, every user
    assert small.profile.train == {"batch_size": 512}
    assert len(small.models) == 15 and small.tuned == small.models and small.seeds == (2020, 2021, 2022)
    paper = load_suite("paper", REPO / "params.yaml")  # the paper's setup: one command on a GPU machine
    assert paper.profile.name == "paper" and paper.profile.train == {} and paper.encoder == "bert-cls"
    assert paper.datasets == ("ml-1m", "OR", "Office", "Food", "Movies") and set(paper.models) == set(small.models)
    assert {"bert-mean", "t5-mean", "flan-t5-mean", "llama2-mean", "random"} == set(paper.encoders)


def test_a_suite_restricted_to_models_keeps_ablations_with_tedrec() -> None:
    small = load_suite("small", REPO / "params.yaml")
    baselines = small.only(("FMLP-Rec", "SASRec"))
    assert baselines.models == baselines.tuned == ("SASRec", "FMLP-Rec")  # the suite's order
    assert baselines.ablations == () and baselines.encoders == ()
    tedrec = small.only(("TedRec",))
    assert tedrec.ablations == small.ablations and tedrec.encoders == ("minilm-cls", "random")
    with pytest.raises(TedbenchError, match="has no model GRU4Rec"):
        small.only(("GRU4Rec",))


def test_profile_options_apply_where_the_model_has_them(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(SUITE)
    profile = load_profile("tiny", path)
    assert profile.model_overrides(get_model("SASRec")) == {"hidden_size": 16, "inner_size": 32}
    assert profile.model_overrides(get_model("TedRec"), {"hidden_size": 8})["hidden_size"] == 8
    assert profile.model_overrides(get_model("TedRec"))["n_exps"] == 2


def test_bad_profiles_are_named(tmp_path: Path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("profiles:\n  x:\n    train: {epoch: 3}\n")
    with pytest.raises(TedbenchError, match="unknown training options epoch"):
        load_profile("x", path)
    with pytest.raises(TedbenchError, match="no profile 'y'"):
        load_profile("y", path)
    with pytest.raises(TedbenchError, match="no params file"):
        load_profile("x", tmp_path / "missing.yaml")


def test_user_subsample_is_fixed_sorted_and_keeps_items() -> None:
    picked = user_subsample(100, 10)
    assert np.array_equal(picked, user_subsample(100, 10)) and np.all(np.diff(picked) > 0) and len(picked) == 10
    assert np.array_equal(user_subsample(5, None), np.arange(5)) and np.array_equal(user_subsample(5, 9), np.arange(5))
    seqs = Sequences(
        np.array([1, 2, 3, 4, 5, 6, 7], dtype=np.int32),
        np.array([0, 3, 5, 7]),
        ["a", "b", "c"],
        ["i1", "i2", "i3", "i4", "i5", "i6", "i7"],
        ["t"] * 7,
    )
    part = seqs.subset(np.array([0, 2]))
    assert part.items.tolist() == [1, 2, 3, 6, 7] and part.offsets.tolist() == [0, 3, 5]
    assert part.user_tokens == ["a", "c"] and part.n_items == seqs.n_items


def _places(tmp_path: Path, sample_root: Path) -> dict:
    """run_suite's keyword arguments: the bundled sample, every output under tmp_path, quiet."""
    return dict(
        data_root=sample_root,
        mirror=None,
        raw_root=tmp_path / "raw",
        results_root=tmp_path / "results",
        trials_root=tmp_path / "trials",
        device="cpu",
        log=lambda _: None,
    )


def test_suite_runs_end_to_end_and_resumes_without_retraining(
    tmp_path: Path, sample_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(SUITE)
    suite = load_suite("tiny", path)
    kwargs = _places(tmp_path, sample_root)
    summary = pipeline.run_suite(suite, **kwargs)
    runs = sorted(
        str(p.parent.relative_to(tmp_path / "results" / "runs"))
        for p in (tmp_path / "results" / "runs").rglob("metrics.json")
    )
    assert runs == [
        f"OR-sample/{m}/seed{s}" for m in ("SASRec", "TedRec", "TedRec@wo-IF", "TedRec~random") for s in (1, 2)
    ]
    tuned = json.loads((tmp_path / "results" / "best_params" / "OR-sample" / "SASRec.json").read_text())
    assert tuned["complete_trials"] == 3 and tuned["params"]["hidden_size"] == 16
    config = json.loads((tmp_path / "results" / "runs" / "OR-sample" / "SASRec" / "seed1" / "config.json").read_text())
    assert config["model_config"]["learning_rate"] == tuned["params"]["learning_rate"]
    assert (tmp_path / "results" / "tables" / "table3.md").exists() and summary["seconds"]["train"] > 0

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(pipeline, "train", no_training)
    monkeypatch.setattr(pipeline, "tune", no_training)
    again = pipeline.run_suite(suite, **kwargs)
    assert again["metrics"] == summary["metrics"]


def test_the_best_tuning_trial_is_reused_as_the_run_of_its_seed(
    tmp_path: Path, sample_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(SUITE.replace("seeds: [1, 2]", "seeds: [2020]"))
    suite = load_suite("tiny", path).only(("SASRec",))

    def no_training(*args, **kwargs):
        raise AssertionError("the seed-2020 run was trained again although its tuning trial had the same settings")

    monkeypatch.setattr(pipeline, "train", no_training)  # tuning trains through benchmark.tune.train
    pipeline.run_suite(suite, **_places(tmp_path, sample_root))
    tuned = json.loads((tmp_path / "results" / "best_params" / "OR-sample" / "SASRec.json").read_text())
    run = tmp_path / "results" / "runs" / "OR-sample" / "SASRec" / "seed2020"
    trial = tmp_path / "trials" / tuned["study"] / f"trial-{tuned['slot']:04d}"
    assert json.loads((run / "metrics.json").read_text())["valid"]["ndcg@10"] == tuned["value"]
    for name in ("config.json", "metrics.json", "test_ranks.npy", "DONE.json"):
        assert (run / name).read_bytes() == (trial / name).read_bytes()
    assert json.loads((run / "config.json").read_text())["profile"] == "tiny"
    assert not (run / "checkpoints").exists()


def test_countdown_counts_steps_and_extrapolates_only_steps_that_worked():
    countdown = Countdown(4)
    assert countdown.prefix() == "[1/4]"  # nothing timed yet: no ETA
    countdown.step_done(None)  # already complete: no time, no ETA
    assert countdown.prefix() == "[2/4]"
    countdown.step_done(90.0)
    assert countdown.prefix() == "[3/4] ETA 3m00s"  # 2 steps left x 90 s
    countdown.step_done(3690.0)  # mean 1890 s
    assert countdown.prefix() == "[4/4] ETA 31m30s"
    assert format_duration(3725) == "1h02m" and format_duration(12.4) == "12s"
