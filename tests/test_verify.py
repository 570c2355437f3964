"""`tedbench verify --against recbole` end to end on a tiny dataset, its row check and its verdict."""

from __future__ import annotations

import csv
import json
import math
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.engine.run import load_dataset
from benchmark.engine.trainer import TrainConfig
from benchmark.errors import TedbenchError
from benchmark.fidelity.reference import resolve
from benchmark.fidelity.verify import (
    DATASET_NAME,
    SideRun,
    check_same_rows,
    recbole_config,
    reference_settings,
    side_run,
    verdict,
    write_atomic,
)
from benchmark.registry import get_model
from tests.modelkit import import_tiny_dataset
from tests.recbolekit import recbole

pytestmark = pytest.mark.parity


@pytest.fixture(scope="module")
def data_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return import_tiny_dataset(
        tmp_path_factory.mktemp("verify"),
        n_users=40,
        n_steps=9,
        n_items=25,
        next_item=lambda user, step: user + 3 * step,
        noise=0.2,
        seed=0,
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_verify_trains_both_sides_and_writes_the_tables(data_root: Path, tmp_path: Path) -> None:
    recbole()
    out = tmp_path / "fidelity"
    args = [
        "verify",
        "--model",
        "SASRec",
        "--dataset",
        "tiny",
        "--data-root",
        str(data_root),
        "--seeds",
        "2",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--set",
        "hidden_size=8",
        "--set",
        "inner_size=16",
        "--set",
        "n_layers=1",
        "--against",
        "recbole",
        "--out",
        str(out),
        "--work",
        str(tmp_path / "work"),
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    stem = "tiny.SASRec.paper"
    markdown = (out / f"{stem}.md").read_text()
    assert "**Verdict: PASS" in markdown or "**Verdict: FAIL" in markdown
    assert "tedbench verify --model SASRec" in markdown
    epochs = read_csv(out / f"{stem}.epochs.csv")
    assert [row["epoch"] for row in epochs] == ["0", "1"]
    for row in epochs:
        assert row["tedbench_seeds"] == row["recbole_seeds"] == "2"
        ours, theirs = float(row["tedbench_loss_mean"]), float(row["recbole_loss_mean"])
        assert abs(ours - theirs) < 0.05 * theirs  # the same data and model size: CE near ln(26) on both sides
    tests = read_csv(out / f"{stem}.test.csv")
    assert sorted((row["side"], row["seed"]) for row in tests) == [
        ("recbole", "2020"),
        ("recbole", "2021"),
        ("tedbench", "2020"),
        ("tedbench", "2021"),
    ]
    assert all(0 <= float(row["ndcg@10"]) <= 1 for row in tests)


def test_the_row_check_detects_different_rows(data_root: Path, tmp_path: Path) -> None:
    recbole()
    from recbole.data import create_dataset, data_preparation

    splits, info, _ = load_dataset(data_root, "tiny", None, needs_text=False)
    write_atomic(splits, info.n_items, tmp_path / "tedbench")
    model_config = get_model("SASRec").config({"hidden_size": 8, "inner_size": 16})
    settings = reference_settings(
        resolve("recbole", "SASRec", model_config, None),
        model_config,
        TrainConfig(),
        tmp_path,
        splits.max_len,
        2020,
        torch.device("cpu"),
        tmp_path / "work",
    )
    config = recbole_config("SASRec", DATASET_NAME, settings)
    train, valid, test = data_preparation(config, create_dataset(config))
    assert train.dataset.item_num == info.n_items  # every id, also those no user touches
    check_same_rows(splits, {"train": train.dataset, "valid": valid.dataset, "test": test.dataset})
    with pytest.raises(TedbenchError, match="RecBole's valid rows differ"):
        check_same_rows(splits, {"valid": test.dataset})


def runs(values: list[float]) -> list[SideRun]:
    return [SideRun(seed, test={"ndcg@10": value}) for seed, value in enumerate(values)]


def test_verdict_is_two_standard_errors() -> None:
    result, difference, se = verdict(runs([0.040, 0.042, 0.044]), runs([0.041, 0.043, 0.045]))
    assert result.startswith("PASS") and difference == pytest.approx(-0.001)
    assert se == pytest.approx(math.sqrt(2 * 0.002**2 / 3))
    assert verdict(runs([0.040, 0.041, 0.042]), runs([0.050, 0.051, 0.052]))[0].startswith("FAIL")
    assert verdict(runs([0.04]), runs([0.05]))[0].startswith("undetermined")


def test_unsupported_model_is_a_clear_error(data_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recbole()
    code = main(
        [
            "verify",
            "--model",
            "TedRec",
            "--dataset",
            "tiny",
            "--data-root",
            str(data_root),
            "--against",
            "recbole",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 2
    assert "verify --against recbole supports SASRec, FEARec" in capsys.readouterr().err


def test_a_finished_side_is_reused_and_other_settings_are_refused(tmp_path: Path) -> None:
    calls = []

    def compute() -> SideRun:
        calls.append(1)
        return SideRun(2020, loss=[1.5], valid=[0.1], best_epoch=0, test={"ndcg@10": 0.25})

    settings = {"model": "SASRec", "train_config": {"epochs": 2, "seed": 2020}, "data": "abc"}
    first = side_run(tmp_path, settings, compute)
    again = side_run(tmp_path, json.loads(json.dumps(settings)), compute)
    assert again == first and len(calls) == 1
    with pytest.raises(TedbenchError, match=r"siderun.json: finished with other settings \(train_config.epochs\)"):
        side_run(tmp_path, {**settings, "train_config": {"epochs": 3, "seed": 2020}}, compute)
    assert len(calls) == 1


def test_a_side_being_computed_elsewhere_is_refused_not_recomputed(tmp_path: Path) -> None:
    """With `lock`, a second verify of the same side fails naming the holder instead of training it again."""
    calls = []

    def compute() -> SideRun:
        calls.append(1)
        return SideRun(2020, loss=[1.5], valid=[0.1], best_epoch=0, test={"ndcg@10": 0.25})

    settings = {"model": "SASRec", "train_config": {"epochs": 2, "seed": 2020}, "data": "abc"}
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / "LOCK").write_text(json.dumps({"pid": holder.pid, "host": socket.gethostname()}))
        with pytest.raises(TedbenchError, match=rf"in use by pid {holder.pid}"):
            side_run(tmp_path, settings, compute, lock=True)
        assert not calls and not (tmp_path / "siderun.json").exists()
    finally:
        holder.kill()
        holder.wait()
    first = side_run(tmp_path, settings, compute, lock=True)  # the holder is gone: its stale lock is taken over
    assert calls == [1] and side_run(tmp_path, settings, compute, lock=True) == first
    assert not (tmp_path / "LOCK").exists()
