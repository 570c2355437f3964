"""Lockstep training against the reference: same start, batches and noise, dropout off, each side's own trainer.

SASRec against RecBole 1.2.1 runs in CI; TedRec against the official code needs its checkout
(TEDBENCH_TEDREC_CODE, see tests/test_transplant.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import benchmark.fidelity.lockstep as lockstep_module
import benchmark.fidelity.verify as verify_module
from benchmark.cli import main
from benchmark.engine.trainer import TrainConfig
from benchmark.fidelity.lockstep import LOSS_RTOL, WEIGHT_ATOL, lockstep, row_order, without_dropout
from benchmark.fidelity.verify import prepare
from tests.recbolekit import official_checkout, official_setup, recbole

TINY = {"hidden_size": 8, "inner_size": 16, "n_layers": 1}
STEPS = 6
TEDREC_CODE, tedrec_marks = official_checkout("TEDBENCH_TEDREC_CODE", "tedrec.py", "RUCAIBox/TedRec@e6b3cb9")


def recbole_setup(model: str, data_root: Path, work: Path, overrides: dict = TINY):
    """verify's setup of `model` at tiny sizes against RecBole 1.2.1's stock model."""
    recbole()
    return prepare(
        model,
        "OR-sample",
        data_root=data_root,
        overrides=overrides,
        train_config=TrainConfig(batch_size=64, learning_rate=1e-2),
        against="recbole",
        reference_code=None,
        device="cpu",
        work=work,
    )


@pytest.fixture(scope="module")
def sasrec_setup(sample_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return recbole_setup("SASRec", sample_root, tmp_path_factory.mktemp("lockstep-sasrec"))


def assert_in_lockstep(result: dict) -> None:
    assert len(result["steps"]) == STEPS
    assert result["loss_gap"] <= LOSS_RTOL and result["weight_gap"] <= WEIGHT_ATOL and result["agree"]
    for split in ("valid", "test"):
        ours, theirs = result["metrics"]["tedbench"][split], result["metrics"]["reference"][split]
        assert ours["ndcg@10"] == pytest.approx(theirs["ndcg@10"], abs=1e-4)


def test_without_dropout_zeroes_every_dropout_and_nothing_else() -> None:
    config = {"hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.2, "adaptor_dropout_prob": 0.1, "hidden_size": 8}
    assert without_dropout(config) == {**{k: 0.0 for k in config if k != "hidden_size"}, "hidden_size": 8}


def test_row_order_chains_seeded_shuffles() -> None:
    rows = row_order(5, 12, seed=3)
    assert len(rows) == 12
    assert sorted(rows[:5].tolist()) == sorted(rows[5:10].tolist()) == list(range(5))
    assert torch.equal(rows, row_order(5, 12, seed=3)) and not torch.equal(rows, row_order(5, 12, seed=4))


@pytest.mark.parity
def test_sasrec_trains_in_lockstep_with_recbole(sasrec_setup) -> None:
    assert_in_lockstep(lockstep(sasrec_setup, 2020, STEPS))


@pytest.mark.parity
def test_fearec_trains_in_lockstep_with_recbole(sample_root: Path, tmp_path: Path) -> None:
    """FEARec at its default (RecBole's yaml: CE only; RecBole still draws its same-target rows, unused)."""
    setup = recbole_setup("FEARec", sample_root, tmp_path, {**TINY, "n_layers": 2})  # RecBole's needs 2 or more
    assert_in_lockstep(lockstep(setup, 2020, STEPS))


@pytest.mark.parity
def test_lockstep_notices_a_different_start(sasrec_setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """A negative control: the reference starting from weights 1e-3 away no longer agrees."""
    transplanted = lockstep_module.to_reference

    def nudged(*args):
        state = transplanted(*args)
        return {k: v + 1e-3 if k.startswith("trm_encoder") else v for k, v in state.items()}

    monkeypatch.setattr(lockstep_module, "to_reference", nudged)
    result = lockstep(sasrec_setup, 2020, 2)
    assert not result["agree"] and result["weight_gap"] > WEIGHT_ATOL


@pytest.mark.parity
def test_lockstep_notices_a_different_learning_rate(sasrec_setup, monkeypatch: pytest.MonkeyPatch) -> None:
    """A negative control for the optimizer: the reference at a learning rate 2% below tedbench's drifts apart."""
    settings = verify_module.reference_settings
    monkeypatch.setattr(
        verify_module, "reference_settings", lambda *a, **k: {**settings(*a, **k), "learning_rate": 0.98e-2}
    )
    result = lockstep(sasrec_setup, 2020, STEPS)
    assert result["weight_gap"] > WEIGHT_ATOL and not result["agree"]


@tedrec_marks[0]
@tedrec_marks[1]
def test_tedrec_trains_in_lockstep_with_the_official_code(sample_root: Path, tmp_path: Path) -> None:
    """TedRec with its router noise on (drawn alike on both sides) and the official trainer's Adam."""
    setup = official_setup("TedRec", TEDREC_CODE, sample_root, tmp_path)
    setup = replace(setup, train_config=replace(setup.train_config, batch_size=64))
    assert_in_lockstep(lockstep(setup, 2020, STEPS))


def test_verify_refuses_transplant_and_lockstep_together(capsys: pytest.CaptureFixture) -> None:
    argv = ["verify", "--model", "SASRec", "--dataset", "OR-sample", "--against", "recbole", "--transplant"]
    assert main([*argv, "--lockstep", "3"]) == 2
    assert "give one of them" in capsys.readouterr().err


@pytest.mark.parity
def test_verify_lockstep_end_to_end_writes_the_table(
    sample_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recbole()
    sizes = [f"{key}={value}" for key, value in TINY.items()]
    args = ["verify", "--model", "SASRec", "--dataset", "OR-sample", "--data-root", str(sample_root)]
    args += ["--against", "recbole", "--seeds", "2", "--lockstep", "3", "--batch-size", "64", "--device", "cpu"]
    args += ["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    for size in sizes:
        args += ["--set", size]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["lockstep"] == "agree" and result["weight_gap"] <= WEIGHT_ATOL
    table = (tmp_path / "out" / "OR-sample.SASRec.paper.lockstep.md").read_text()
    assert "**AGREE" in table and "## Seed 2020" in table and "## Seed 2021" in table
    assert '"hidden_dropout_prob": 0.0' in table and "3 steps in lockstep" in table
    assert table.count("| 2 | ") == 2  # the last step of each seed
    assert not any((tmp_path / "work").glob("*-seed*/DONE.json"))  # no full run trained


def test_verify_speed_times_both_sides_on_the_same_batches(
    sample_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    recbole()
    args = ["verify", "--model", "SASRec", "--dataset", "OR-sample", "--data-root", str(sample_root)]
    args += ["--against", "recbole", "--seeds", "1", "--speed", "3", "--batch-size", "64", "--device", "cpu"]
    args += ["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    for key, value in TINY.items():
        args += ["--set", f"{key}={value}"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["speedup"] > 0 and set(result["rows_per_second"]) == {"tedbench", "reference"}
    table = (tmp_path / "out" / "OR-sample.SASRec.paper.speed.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| 2020 |")]
    assert len(rows) == 2 and all(len(row.split("|")[5].split(",")) == 3 for row in rows)  # 3 timed steps a side
    assert '"hidden_dropout_prob": 0.5' in table  # dropout kept, unlike --lockstep
    assert not any((tmp_path / "work").glob("*-seed*/DONE.json"))  # no full run trained


def test_verify_refuses_two_checks_at_once(sample_root: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["verify", "--model", "SASRec", "--dataset", "OR-sample", "--data-root", str(sample_root)]
    assert main([*args, "--against", "recbole", "--lockstep", "2", "--speed", "2"]) != 0
    assert "--transplant, --lockstep and --speed are different checks" in capsys.readouterr().err
