"""SASRec's weight transplant against RecBole 1.2.1's SASRec, both ways (stock RecBole: runs in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.engine.trainer import TrainConfig
from benchmark.fidelity.transplant import NAME_MAPS, to_reference, to_tedbench, transplant
from benchmark.fidelity.verify import prepare
from benchmark.registry import create_model
from tests.recbolekit import perturbed_states, recbole

pytestmark = pytest.mark.parity
TINY = {"hidden_size": 8, "inner_size": 16, "n_layers": 1}
NAMES = NAME_MAPS["SASRec"]


@pytest.fixture(scope="module")
def setup(sample_root: Path, tmp_path_factory: pytest.TempPathFactory):
    recbole()
    return prepare(
        "SASRec",
        "OR-sample",
        data_root=sample_root,
        overrides=TINY,
        train_config=TrainConfig(),
        against="recbole",
        reference_code=None,
        device="cpu",
        work=tmp_path_factory.mktemp("transplant-sasrec"),
    )


@pytest.fixture(scope="module")
def states(setup):
    return perturbed_states(setup, TINY)


def test_name_map_round_trips_exactly(setup, states) -> None:
    ours, theirs, order = states
    template_ours = create_model("SASRec", setup.info, TINY).state_dict()
    back = to_tedbench(NAMES, to_reference(NAMES, ours, theirs, order), template_ours, order)
    assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)
    there = to_reference(NAMES, to_tedbench(NAMES, theirs, template_ours, order), theirs, order)
    assert there.keys() == theirs.keys() and all(torch.equal(there[k], theirs[k]) for k in theirs)


def test_each_side_scores_the_other_sides_weights_identically(setup, states) -> None:
    ours, theirs, _ = states
    rows = transplant(setup, 2020, ours, theirs)
    assert len(rows) == 4
    for row in rows:
        assert row["equal"], row
        assert row["score_gap"] < 1e-5
        assert 0 < row["own"]["ndcg@20"] < 1
