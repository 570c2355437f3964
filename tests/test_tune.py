"""Tuning: the embedded default, and real PostgreSQL with concurrent and killed workers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from benchmark.cli import main
from tests.modelkit import import_tiny_dataset

SMALL = ["--set", "hidden_size=16", "--set", "inner_size=32", "--set", "n_layers=1"]
GRID6 = ["--grid", "learning_rate=0.0005,0.001,0.005", "--grid", "hidden_dropout_prob=0.2,0.5"]


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    """A small imported dataset with a learnable next-item pattern."""
    root = tmp_path_factory.mktemp("tune")
    import_tiny_dataset(root, 80, 10, 30, lambda user, step: user * 3 + step, noise=0.1, seed=0)
    return root


def tune_args(root: Path, *extra: str) -> list[str]:
    return [
        "tune",
        "--model",
        "SASRec",
        "--dataset",
        "tiny",
        "--data-root",
        str(root / "data"),
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--batch-size",
        "128",
        "--results-dir",
        str(root / "results"),
        "--runs-dir",
        str(root / "runs"),
        *SMALL,
        *extra,
    ]


def test_default_storage_runs_the_paper_grid(tiny_root, capsys):
    assert main(tune_args(tiny_root)) == 0
    storage = f"sqlite:///{tiny_root / 'results' / 'tuning' / 'tiny' / 'SASRec.db'}"
    (name,) = optuna.get_all_study_names(storage)
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    assert sorted(t.params["learning_rate"] for t in trials) == [5e-4, 1e-3, 5e-3]
    assert all(t.state == TrialState.COMPLETE for t in trials)
    best = json.loads((tiny_root / "results" / "best_params" / "tiny" / "SASRec.json").read_text())
    top = max(trials, key=lambda t: (t.value, -t.number))
    assert best["params"]["learning_rate"] == top.params["learning_rate"] and best["value"] == top.value
    # Re-running the command does not re-tune: the study is complete.
    assert main(tune_args(tiny_root)) == 0
    assert len(optuna.load_study(study_name=name, storage=storage).get_trials()) == 3
    # The exported parameters are accepted by `tedbench train --params`.
    out = tiny_root / "from-best"
    assert (
        main(
            [
                "train",
                "--model",
                "SASRec",
                "--dataset",
                "tiny",
                "--data-root",
                str(tiny_root / "data"),
                "--device",
                "cpu",
                "--epochs",
                "1",
                "--params",
                str(tiny_root / "results" / "best_params" / "tiny" / "SASRec.json"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert json.loads((out / "config.json").read_text())["model_config"]["learning_rate"] == top.params["learning_rate"]


def test_protocol_from_params_yaml_searches_the_declared_dimensions(tiny_root):
    storage = f"sqlite:///{tiny_root / 'protocol.db'}"
    args = tune_args(tiny_root, "--protocol", "baselines", "--n-trials", "2", "--storage", storage, "--epochs", "1")
    assert main(args) == 0
    (name,) = optuna.get_all_study_names(storage)
    assert ".tpe." in name
    trials = optuna.load_study(study_name=name, storage=storage).get_trials()
    declared = yaml.safe_load(Path("params.yaml").read_text())["tuning"]["baselines"]["search"]["SASRec"]
    assert len(trials) == 2 and all(sorted(t.params) == sorted(declared) for t in trials)
    assert (
        main(["tune", "--model", "TedRec", "--protocol", "baselines", "--dataset", "tiny"]) == 2
    )  # no search declared


def spawn(root: Path, storage: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "benchmark.cli", *tune_args(root, "--storage", storage, *extra)]
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )


def only_study(storage: str) -> optuna.Study:
    (name,) = optuna.get_all_study_names(storage)
    return optuna.load_study(study_name=name, storage=storage)


def test_two_workers_share_one_postgres_study(tiny_root, postgres_url):
    workers = [spawn(tiny_root, postgres_url, *GRID6) for _ in range(2)]
    outputs = [w.communicate(timeout=600) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    trials = only_study(postgres_url).get_trials()
    assert len(trials) == 6 and all(t.state == TrialState.COMPLETE for t in trials)
    params = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(params)) == 6
    ran = [json.loads(out[out.index("{") :])["trials_run_by_this_worker"] for out, _ in outputs]
    assert sum(ran) == 6 and min(ran) >= 1
    best = json.loads((tiny_root / "results" / "best_params" / "tiny" / "SASRec.json").read_text())
    top = max(trials, key=lambda t: (t.value, -t.number))
    assert best["value"] == top.value and {k: best["params"][k] for k in top.params} == top.params


def test_killed_worker_leaves_a_study_that_resumes(tiny_root, postgres_url):
    grace = ["--grace-period", "3", "--epochs", "6"]
    worker = spawn(tiny_root, postgres_url, *grace)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        names = optuna.get_all_study_names(postgres_url)
        if names and any(t.state == TrialState.RUNNING for t in only_study(postgres_url).get_trials()):
            break
        time.sleep(0.2)
    time.sleep(1.0)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    time.sleep(4)  # past the grace period: the running trial is now stale
    rerun = spawn(tiny_root, postgres_url, *grace)
    out, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err
    trials = only_study(postgres_url).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 3  # the budget, not more
    assert sorted(t.params["learning_rate"] for t in complete) == [5e-4, 1e-3, 5e-3]
    assert [t.state for t in trials].count(TrialState.FAIL) == 1
    assert not [t for t in trials if t.state in (TrialState.WAITING, TrialState.RUNNING)]
