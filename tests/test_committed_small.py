"""The committed `small` suite: every run is the declared profile, on every user, and ended by early stopping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.profiles import load_suite

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "results" / "small" / "runs"


def committed_runs() -> list[Path]:
    return sorted(config.parent for config in RUNS.glob("**/config.json"))


def test_small_runs_are_committed() -> None:
    assert committed_runs(), f"{RUNS}: no committed run of the small suite"


@pytest.mark.parametrize("folder", committed_runs(), ids=lambda p: str(p.relative_to(RUNS)))
def test_run_ended_by_early_stopping(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    budget = load_suite("small").profile
    train = config["train_config"]
    assert config["profile"] == budget.name == "small"
    assert train["max_steps_per_epoch"] is None and train["user_subsample"] is None  # whole epochs, every user
    assert train["patience"] >= 5 and train["batch_size"] == budget.train["batch_size"]
    epochs = [row["epoch"] for row in map(json.loads, (folder / "log.jsonl").read_text().splitlines())]
    fine_tuning = [e for e in epochs if e >= 0]  # negative epochs: S3-Rec's pre-training
    assert fine_tuning == list(range(len(fine_tuning)))
    best = json.loads((folder / "metrics.json").read_text())["best_epoch"]
    # RecBole's rule: stop after patience + 1 epochs without improvement, well before the epoch budget
    assert fine_tuning[-1] == best + train["patience"] + 1
    assert len(fine_tuning) < train["epochs"]
