"""The metric-regression gate: committed references hold for every model; a broken model fails it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from baselines.sasrec import SASRec
from benchmark.profiles import load_profile
from benchmark.regression import REFERENCE, compare, load_reference, run_gate

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.all_threads  # measured as `tedbench regress` measures the references


@pytest.fixture(scope="module")
def gate_profile():
    return load_profile("gate", REPO / "params.yaml")


def test_compare_applies_both_tolerances() -> None:
    reference = {"A": {"recall@10": 0.1, "ndcg@10": 0.05}, "B": {"recall@10": 0.01, "ndcg@10": 0.005}}
    now = {
        "A": {"recall@10": 0.088, "ndcg@10": 0.0470},  # -12% and -0.012: fails; -0.003 (-6%): holds
        "B": {"recall@10": 0.0085, "ndcg@10": 0.006},  # -15% but only -0.0015 absolute: holds
        "C": {"recall@10": 0.2, "ndcg@10": 0.1},
    }
    result = compare(reference, now)
    assert result.failed == ["A recall@10"]
    statuses = dict(zip(result.table["model"] + " " + result.table["metric"], result.table["status"]))
    assert statuses["A ndcg@10"] == "ok" and statuses["B recall@10"] == "ok" and statuses["C ndcg@10"].startswith("new")
    assert "| A       | recall@10 |" in result.markdown()


def test_every_registered_model_holds_its_reference(gate_profile, sample_root: Path) -> None:
    reference = load_reference(REPO / REFERENCE)
    result = run_gate(gate_profile, data_root=sample_root, reference_path=REPO / REFERENCE)
    assert set(result.table["model"]) == set(reference["metrics"]), (
        "models without references: run `tedbench regress --update`"
    )
    assert not result.failed, "metric regression beyond tolerance:\n" + result.markdown()


def test_a_broken_forward_pass_fails_the_gate(gate_profile, sample_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = SASRec.encode

    def broken_encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return original(self, seq, length) * 0  # a forward pass that has lost its query

    monkeypatch.setattr(SASRec, "encode", broken_encode)
    result = run_gate(gate_profile, data_root=sample_root, models=["SASRec"], reference_path=REPO / REFERENCE)
    assert result.failed, "a broken SASRec passed the gate:\n" + result.markdown()
    assert "FAIL" in result.markdown()
