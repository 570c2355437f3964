"""`tedbench train` end to end: outputs on disk, and a SIGKILLed run resumed to the same result."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from tests.modelkit import import_tiny_dataset

# The SIGKILL test resumes in this process a run begun in a subprocess (torch's default thread count) and
# compares it with an uninterrupted run in this process: keep the default here too.
pytestmark = pytest.mark.all_threads

SMALL = ["--set", "hidden_size=16", "--set", "inner_size=32", "--set", "n_layers=1"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return import_tiny_dataset(
        tmp_path_factory.mktemp("train"), 150, 14, 40, lambda user, step: user + step * 2, noise=0.2, seed=1
    )


def train_args(data_root: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--model",
        "SASRec",
        "--dataset",
        "tiny",
        "--data-root",
        str(data_root),
        "--device",
        "cpu",
        "--epochs",
        "8",
        "--batch-size",
        "32",
        "--out",
        str(out),
        *SMALL,
        *extra,
    ]


def test_train_writes_config_log_metrics_and_ranks(data_root, tmp_path):
    out = tmp_path / "run"
    assert main(train_args(data_root, out, "--epochs", "2")) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "SASRec" and config["model_config"]["hidden_size"] == 16
    assert config["train_config"]["batch_size"] == 32 and config["trainable_parameters"] > 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["test"]) == {"recall@10", "recall@20", "ndcg@10", "ndcg@20"}
    for split in ("valid", "test"):
        ranks = np.load(out / f"{split}_ranks.npy", allow_pickle=False)
        assert ranks.shape == (150,) and ranks.min() >= 1


def test_sigkilled_run_resumes_to_the_uninterrupted_result(data_root, tmp_path):
    whole = tmp_path / "whole"
    assert main(train_args(data_root, whole)) == 0
    cut = tmp_path / "cut"
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmark.cli", *train_args(data_root, cut)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    log = cut / "log.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 3):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(log.read_text().splitlines())
    assert 3 <= done < 8, "the kill must land mid-run"
    assert main(train_args(data_root, cut, "--resume")) == 0
    assert json.loads((cut / "metrics.json").read_text()) == json.loads((whole / "metrics.json").read_text())
    assert np.array_equal(np.load(cut / "test_ranks.npy"), np.load(whole / "test_ranks.npy"))
    epochs = [json.loads(line)["epoch"] for line in log.read_text().splitlines()]
    assert epochs == sorted(set(epochs))


def test_resume_refuses_a_different_configuration(data_root, tmp_path):
    out = tmp_path / "run"
    assert main(train_args(data_root, out, "--epochs", "1")) == 0
    assert main(train_args(data_root, out, "--epochs", "1", "--lr", "0.01", "--resume")) == 2
