"""One path from params.yaml and the command line to a run's settings (benchmark.runconfig)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.cli import _resolved, build_parser
from benchmark.errors import TedbenchError
from benchmark.profiles import load_profile
from benchmark.runconfig import options_file, resolve, train_budget


def test_model_options_precedence_defaults_profile_file_set_lr(tmp_path: Path) -> None:
    tuned = tmp_path / "best.json"
    tuned.write_text(json.dumps({"params": {"learning_rate": 0.005, "n_exps": 2, "hidden_dropout_prob": 0.3}}))
    reduced = load_profile("reduced")
    run = resolve(
        "TedRec",
        profile=reduced,
        sources=[("tuned", options_file(tuned)), ("--set", {"n_exps": 6}), ("--lr", {"learning_rate": 1e-4})],
    )
    assert run.model_config["hidden_size"] == reduced.model["hidden_size"]  # the profile over the default (300)
    assert run.model_config["hidden_dropout_prob"] == 0.3  # the file over the default
    assert run.model_config["n_exps"] == 6  # --set over the file over the profile
    assert run.train_config.learning_rate == 1e-4  # --lr last, carried into the budget
    assert run.overrides["n_exps"] == 6 and "temperature" not in run.overrides  # only what differs is an override


def test_budget_paper_then_profile_then_flags() -> None:
    reduced = load_profile("reduced")
    assert train_budget().epochs == 300 and train_budget().patience == 10
    assert train_budget(reduced).epochs == reduced.train["epochs"]
    budget = train_budget(reduced, epochs=7, batch_size=None, seed=3)
    assert (budget.epochs, budget.batch_size, budget.seed) == (7, reduced.train["batch_size"], 3)


def test_profile_options_apply_only_to_models_that_have_them() -> None:
    reduced = load_profile("reduced")
    assert "n_exps" not in resolve("SASRec", profile=reduced).overrides
    assert resolve("TedRec", profile=reduced).overrides["n_exps"] == reduced.model["n_exps"]


def test_a_source_names_itself_in_errors(tmp_path: Path) -> None:
    with pytest.raises(TedbenchError, match=r"--set: model SASRec has no option 'n_exps'"):
        resolve("SASRec", sources=[("--set", {"n_exps": 2})])
    bad = tmp_path / "bad.json"
    bad.write_text("{\n  oops")
    with pytest.raises(TedbenchError, match=r"bad.json: malformed JSON at line 2 column 3"):
        options_file(bad)


def test_the_cli_resolves_through_the_same_path(tmp_path: Path) -> None:
    tuned = tmp_path / "best.json"
    tuned.write_text(json.dumps({"params": {"learning_rate": 0.005}}))
    args = build_parser().parse_args(
        [
            "train",
            "--model",
            "TedRec",
            "--dataset",
            "OR-sample",
            "--profile",
            "reduced",
            "--params",
            str(tuned),
            "--set",
            "n_exps=2",
            "--epochs",
            "4",
            "--seed",
            "9",
        ]
    )
    expected = resolve(
        "TedRec",
        profile=load_profile("reduced"),
        sources=[("file", {"learning_rate": 0.005}), ("set", {"n_exps": 2})],
        budget=train_budget(load_profile("reduced"), epochs=4, seed=9),
    )
    got = _resolved(args, "TedRec")
    assert (got.model_config, got.train_config) == (expected.model_config, expected.train_config)
