"""Run folders under faults: one state per folder, one writer, no mixed attempts, divergence as failure.

Every kill is a real SIGKILL at a named pause point (`benchmark.faults`); a rerun must give outputs
byte-identical to an uninterrupted run's and leave no staging files behind.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.engine import runstate
from benchmark.engine.evaluate import full_sort_ranks
from benchmark.errors import TedbenchError
from benchmark.faults import PAUSE_DIR_ENV, PAUSE_ENV
from benchmark.model import DatasetInfo
from benchmark.registry import create_model, get_model
from tests import modelkit
from tests.faultkit import kill_at, orphans, run_cli, tedbench_env

OUTPUTS = ("metrics.json", "valid_ranks.npy", "test_ranks.npy")
POINTS = (
    "train.after_config",
    "train.mid_epoch",
    "train.after_checkpoint",
    "train.before_metrics",
    "train.before_done",
)
SMALL = ["--set", "hidden_size=16", "--set", "inner_size=32", "--set", "n_layers=1"]


def train_args(data_root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--model",
        "SASRec",
        "--dataset",
        "OR-sample",
        "--data-root",
        str(data_root),
        "--device",
        "cpu",
        "--epochs",
        "3",
        "--batch-size",
        "256",
        "--max-steps",
        "3",
        "--lr",
        "0.005",
        "--out",
        str(out),
        *SMALL,
        *extra,
    ]


def dead_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_same_outputs(out: Path, reference: Path) -> None:
    for name in OUTPUTS:
        assert (out / name).read_bytes() == (reference / name).read_bytes(), name
    assert runstate.is_finished(out, runstate.settings_of(json.loads((out / "config.json").read_text())))
    assert not (out / runstate.LOCK).exists() and not (out / runstate.FAILED).exists()
    assert orphans(out) == []


@pytest.fixture(scope="module")
def reference(sample_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run (in a subprocess, as the interrupted ones)."""
    out = tmp_path_factory.mktemp("reference") / "run"
    done = run_cli(train_args(sample_root, out))
    assert done.returncode == 0, done.stderr[-2000:]
    return out


# -- kills at every pause point, then --resume ------------------------------------------------------
@pytest.mark.parametrize("point", POINTS)
def test_sigkill_then_resume_equals_the_uninterrupted_run(point, sample_root, reference, tmp_path):
    out = tmp_path / "run"
    kill_at(train_args(sample_root, out), point, tmp_path / "pause")
    assert (out / runstate.LOCK).exists() and not (out / runstate.DONE).exists()
    assert runstate.state(out) == "interrupted"
    staging = out / f".metrics.json.pid{dead_pid()}.x.tmp"  # what a kill inside an atomic write leaves
    staging.write_text("{")
    if point == "train.after_checkpoint":  # a kill mid-write of a log line leaves it torn
        with open(out / "log.jsonl", "a") as log:
            log.write('{"epoch": 1, "train_sec')
    resumed = run_cli(train_args(sample_root, out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    if point == "train.after_checkpoint":
        assert "torn last line" in resumed.stderr
    assert_same_outputs(out, reference)
    epochs = [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()]
    assert epochs == [0, 1, 2]


def test_pipeline_killed_mid_suite_reruns_to_the_same_outputs(sample_root, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("""
profiles:
  tiny:
    description: TINY
    train: {epochs: 2, patience: 1, batch_size: 256, max_steps_per_epoch: 2}
    model: {hidden_size: 16, inner_size: 32, n_layers: 1}
suites:
  tiny:
    profile: tiny
    datasets: [OR-sample]
    models: [SASRec]
    tuned: []
    seeds: [1, 2]
""")

    def args(name: str) -> list[str]:
        return [
            "pipeline",
            "--suite",
            "tiny",
            "--params-file",
            str(params),
            "--data-root",
            str(sample_root),
            "--device",
            "cpu",
            "--results-dir",
            str(tmp_path / name),
            "--trials-dir",
            str(tmp_path / f"{name}-trials"),
        ]

    whole = run_cli(args("whole"))
    assert whole.returncode == 0, whole.stderr[-2000:]
    kill_at(args("cut"), "train.after_checkpoint", tmp_path / "pause")
    again = run_cli(args("cut"))
    assert again.returncode == 0, again.stderr[-2000:]
    assert "tedbench: train [1/2]: SASRec on OR-sample, seed 1 (resumed)" in again.stderr
    assert "resumed" not in again.stdout  # messages on stderr, the table on stdout
    for seed in (1, 2):
        assert_same_outputs(
            tmp_path / "cut" / "runs" / "OR-sample" / "SASRec" / f"seed{seed}",
            tmp_path / "whole" / "runs" / "OR-sample" / "SASRec" / f"seed{seed}",
        )
    assert (tmp_path / "cut" / "metrics.json").read_bytes() == (tmp_path / "whole" / "metrics.json").read_bytes()
    assert orphans(tmp_path / "cut") == []


def test_pipeline_reruns_a_run_whose_settings_changed_as_a_fresh_attempt(sample_root, tmp_path, monkeypatch):
    from benchmark import pipeline
    from benchmark.profiles import load_suite

    params = tmp_path / "params.yaml"
    text = """
profiles:
  tiny:
    description: TINY
    train: {epochs: EPOCHS, patience: 5, batch_size: 256, max_steps_per_epoch: 2}
    model: {hidden_size: 16, inner_size: 32, n_layers: 1}
suites:
  tiny: {profile: tiny, datasets: [OR-sample], models: [SASRec], tuned: [], seeds: [1]}
"""
    kwargs = dict(
        data_root=sample_root,
        mirror=None,
        raw_root=tmp_path / "raw",
        results_root=tmp_path / "results",
        trials_root=tmp_path / "trials",
        device="cpu",
    )
    out = tmp_path / "results" / "runs" / "OR-sample" / "SASRec" / "seed1"
    for epochs in (1, 2):
        params.write_text(text.replace("EPOCHS", str(epochs)))
        lines: list[str] = []
        pipeline.run_suite(load_suite("tiny", params), log=lines.append, **kwargs)
        epochs_logged = [json.loads(line)["epoch"] for line in (out / "log.jsonl").read_text().splitlines()]
        assert epochs_logged == list(range(epochs))  # the old attempt's log is gone, not extended
    assert any("settings changed: train_config.epochs; fresh attempt" in line for line in lines)
    assert json.loads((out / "config.json").read_text())["train_config"]["epochs"] == 2
    assert runstate.state(out) == "finished"


# -- one writer per folder ---------------------------------------------------------------------------
def test_a_second_process_is_refused_while_the_first_holds_the_folder(sample_root, tmp_path):
    out, pause = tmp_path / "run", tmp_path / "pause"
    env = tedbench_env(**{PAUSE_ENV: "train.after_config", PAUSE_DIR_ENV: str(pause)})
    first = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", *train_args(sample_root, out)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        marker = pause / f"train.after_config.{first.pid}"
        while not marker.exists():
            assert first.poll() is None, "the first run ended before its pause point"
            time.sleep(0.05)  # polling for the marker file, as faultkit does
        before = snapshot(out)
        second = run_cli(train_args(sample_root, out))
        assert second.returncode == 2
        error = second.stderr.strip()
        assert len(error.splitlines()) == 1 and error.startswith("tedbench: error:")
        assert str(out) in error and f"pid {first.pid}" in error and socket.gethostname() in error
        assert snapshot(out) == before  # the refused process wrote nothing
    finally:
        first.kill()
        first.wait()
    # The first holder is gone: its lock is stale and the next run takes the folder over.
    third = run_cli(train_args(sample_root, out))
    assert third.returncode == 0, third.stderr[-2000:]
    assert runstate.state(out) == "finished" and not (out / runstate.LOCK).exists()


def _write_lock(folder: Path, **holder) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / runstate.LOCK).write_text(json.dumps(holder))


def test_lock_refuses_live_holders_and_takes_over_stale_ones(tmp_path):
    live = {"pid": os.getpid(), "host": socket.gethostname(), "started": runstate._process_start(os.getpid())}
    _write_lock(tmp_path / "live", **live)
    with pytest.raises(TedbenchError, match=f"in use by pid {os.getpid()} on host"):
        with runstate.run_lock(tmp_path / "live"):
            pass
    _write_lock(tmp_path / "remote", pid=dead_pid(), host="another-host")
    with pytest.raises(TedbenchError, match="on host another-host"):  # a pid on another host cannot be checked
        with runstate.run_lock(tmp_path / "remote"):
            pass
    stale = [
        ("dead", {"pid": dead_pid(), "host": socket.gethostname()}),
        ("reused", {**live, "started": -1}),  # our pid, but another process start: the pid was reused
        ("torn", None),
    ]  # created but never written
    for name, holder in stale:
        folder = tmp_path / name
        folder.mkdir()
        (folder / runstate.LOCK).write_text("" if holder is None else json.dumps(holder))
        with runstate.run_lock(folder):
            assert json.loads((folder / runstate.LOCK).read_text())["pid"] == os.getpid()
        assert not (folder / runstate.LOCK).exists()


# -- reruns never mix attempts -------------------------------------------------------------------------
def test_reruns_refuse_other_settings_keep_finished_runs_and_overwrite_on_request(sample_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(sample_root, out, "--epochs", "2")) == 0
    before = snapshot(out)
    capsys.readouterr()

    assert main(train_args(sample_root, out, "--epochs", "2")) == 0  # same settings: nothing to do
    printed = capsys.readouterr()
    assert (
        "nothing to do" in printed.err
        and json.loads(printed.out)["test"] == json.loads((out / "metrics.json").read_text())["test"]
    )
    assert snapshot(out) == before

    for extra in (["--lr", "0.01"], ["--lr", "0.01", "--resume"]):
        assert main(train_args(sample_root, out, "--epochs", "2", *extra)) == 2
        error = capsys.readouterr().err.strip()
        assert (
            len(error.splitlines()) == 1
            and "model_config.learning_rate" in error
            and "--overwrite" in error
            and str(out) in error
        )
        assert snapshot(out) == before

    assert main(train_args(sample_root, out, "--epochs", "1", "--overwrite")) == 0
    assert len((out / "log.jsonl").read_text().splitlines()) == 1
    assert json.loads((out / "config.json").read_text())["train_config"]["epochs"] == 1
    assert runstate.state(out) == "finished"


def test_resume_validates_everything_before_writing(sample_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(train_args(sample_root, tmp_path / "missing", "--resume")) == 2
    assert "nothing to resume" in capsys.readouterr().err and not (tmp_path / "missing").exists()

    kill_at(train_args(sample_root, out), "train.after_checkpoint", tmp_path / "pause")
    (out / runstate.LOCK).unlink()
    checkpoint = out / "checkpoints" / "last.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:100])  # truncated
    before = snapshot(out)
    assert main(train_args(sample_root, out, "--resume")) == 2
    assert str(checkpoint) in capsys.readouterr().err
    assert snapshot(out) == before


def test_a_torn_middle_log_line_is_an_error_naming_the_line(sample_root, tmp_path, capsys):
    out = tmp_path / "run"
    kill_at(train_args(sample_root, out), "train.after_checkpoint", tmp_path / "pause")
    (out / runstate.LOCK).unlink()
    log = out / "log.jsonl"
    log.write_text("{torn\n" + log.read_text())
    before = snapshot(out)
    assert main(train_args(sample_root, out, "--resume")) == 2
    assert f"{log}:1:" in capsys.readouterr().err
    assert snapshot(out) == before


# -- divergence is a failure ----------------------------------------------------------------------------
def _assert_failed(out: Path, capsys, words: str) -> None:
    err = capsys.readouterr().err  # progress bars, then the error
    error = err.strip().splitlines()[-1]
    assert err.count("tedbench: error:") == 1 and error.startswith("tedbench: error:") and words in error
    assert json.loads((out / runstate.FAILED).read_text())["error"] in error
    assert not (out / "metrics.json").exists() and not (out / runstate.DONE).exists()
    assert runstate.state(out) == "failed"


def test_nan_scores_fail_the_run(sample_root, tmp_path, capsys, monkeypatch):
    cls = get_model("SASRec").cls
    scores = cls.full_sort_scores
    monkeypatch.setattr(cls, "full_sort_scores", lambda self, seq, length: scores(self, seq, length) * float("nan"))
    out = tmp_path / "run"
    assert main(train_args(sample_root, out, "--epochs", "1")) == 2
    _assert_failed(out, capsys, "non-finite (NaN/inf) evaluation scores")


def test_a_nan_loss_at_one_step_fails_the_run(sample_root, tmp_path, capsys, monkeypatch):
    cls = get_model("SASRec").cls
    loss, calls = cls.loss, []

    def nan_once(self, batch):
        calls.append(1)
        value = loss(self, batch)
        return value * float("nan") if len(calls) == 2 else value  # one step of the first epoch

    monkeypatch.setattr(cls, "loss", nan_once)
    out = tmp_path / "run"
    assert main(train_args(sample_root, out, "--epochs", "1")) == 2
    _assert_failed(out, capsys, "training diverged in epoch 0")
    # A failed run can be overwritten (or resumed); a plain rerun replaces the failed attempt.
    monkeypatch.setattr(cls, "loss", loss)
    assert main(train_args(sample_root, out, "--epochs", "1")) == 0
    assert runstate.state(out) == "finished"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_full_sort_ranks_never_ranks_non_finite_scores(bad, monkeypatch):
    splits, n_items = modelkit.small_splits()
    torch.manual_seed(0)
    model = create_model(
        "SASRec",
        DatasetInfo(n_items=n_items, max_len=8),
        {"hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 2},
    )
    assert full_sort_ranks(model, splits, splits.test).min() >= 1
    scores = model.full_sort_scores

    def poisoned(seq, length):
        out = scores(seq, length)
        out[-1, n_items - 1] = bad
        return out

    monkeypatch.setattr(model, "full_sort_scores", poisoned)
    with pytest.raises(TedbenchError, match=r"non-finite \(NaN/inf\) evaluation scores for 1 of"):
        full_sort_ranks(model, splits, splits.test)
    monkeypatch.setattr(
        model,
        "full_sort_scores",
        lambda seq, length: torch.nan_to_num(poisoned(seq, length)).index_fill(1, torch.tensor([0]), bad),
    )
    assert full_sort_ranks(model, splits, splits.test).min() >= 1  # id 0 (padding) is masked, not ranked
