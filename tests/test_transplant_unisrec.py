"""UniSRec's weight transplant against the official code (RUCAIBox/UniSRec, `transductive_ft`), both ways.

Skipped without a checkout named by TEDBENCH_UNISREC_CODE (`git clone https://github.com/RUCAIBox/UniSRec &&
git -C UniSRec checkout 05aa5cb`); CI cannot fetch GitHub (see results/fidelity/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.fidelity.transplant import NAME_MAPS, to_reference, to_tedbench, transplant
from benchmark.registry import create_model
from tests.recbolekit import TINY_MOE, official_checkout, official_setup, perturbed_states

CODE, pytestmark = official_checkout("TEDBENCH_UNISREC_CODE", "unisrec.py", "RUCAIBox/UniSRec@05aa5cb")
NAMES = NAME_MAPS["UniSRec"]


@pytest.fixture(scope="module")
def setup(sample_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return official_setup("UniSRec", CODE, sample_root, tmp_path_factory.mktemp("transplant-unisrec"))


@pytest.fixture(scope="module")
def states(setup):
    return perturbed_states(setup)


def test_name_map_round_trips_exactly(setup, states) -> None:
    ours, theirs, order = states
    template_ours = create_model("UniSRec", setup.info, TINY_MOE).state_dict()
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
