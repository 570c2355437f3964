"""UniSRec's weight transplant against the official code (RUCAIBox/UniSRec, `transductive_ft`), both ways.

Skipped without a checkout named by TEDBENCH_UNISREC_CODE (`git clone https://github.com/RUCAIBox/UniSRec &&
git -C UniSRec checkout 05aa5cb`); CI cannot fetch GitHub (see results/fidelity/README.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from benchmark.engine.trainer import TrainConfig
from benchmark.fidelity.transplant import NAME_MAPS, item_order, to_reference, to_tedbench, transplant
from benchmark.fidelity.verify import prepare, reference_data
from benchmark.registry import create_model
from tests.recbolekit import perturbed, recbole

CODE = os.environ.get("TEDBENCH_UNISREC_CODE")
pytestmark = [
    pytest.mark.parity,
    pytest.mark.skipif(
        not CODE or not (Path(CODE) / "unisrec.py").is_file(),
        reason="no official UniSRec checkout: set TEDBENCH_UNISREC_CODE to a checkout of "
        "RUCAIBox/UniSRec@05aa5cb (CI cannot fetch it)",
    ),
]
TINY = {"hidden_size": 8, "inner_size": 16, "n_layers": 1, "n_exps": 2}
NAMES = NAME_MAPS["UniSRec"]


@pytest.fixture(scope="module")
def setup(sample_root: Path, tmp_path_factory: pytest.TempPathFactory):
    recbole()
    return prepare(
        "UniSRec",
        "OR-sample",
        data_root=sample_root,
        overrides=TINY,
        train_config=TrainConfig(),
        against="official",
        reference_code=Path(CODE),
        device="cpu",
        work=tmp_path_factory.mktemp("transplant-unisrec"),
        encoder="random",
    )


@pytest.fixture(scope="module")
def states(setup):
    """(tedbench weights, official weights), each from its own model's initialisation, then perturbed."""
    config, train, _, _ = reference_data(setup.reference, setup.settings(2020), setup.splits)
    torch.manual_seed(0)
    theirs = setup.reference.model_class(config, train.dataset).state_dict()
    ours = create_model("UniSRec", setup.info, TINY).state_dict()
    return perturbed(ours, 1), perturbed(theirs, 2, keep=NAMES.inputs), item_order(train.dataset)


def test_name_map_round_trips_exactly(setup, states) -> None:
    ours, theirs, order = states
    template_ours = create_model("UniSRec", setup.info, TINY).state_dict()
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
