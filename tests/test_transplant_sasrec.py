"""SASRec's weight transplant against RecBole 1.2.1's SASRec, both ways (stock RecBole: runs in CI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.engine.trainer import TrainConfig
from benchmark.fidelity.verify import prepare
from tests.recbolekit import assert_name_map_round_trips, assert_transplant_scores_equal, perturbed_states, recbole

pytestmark = pytest.mark.parity
TINY = {"hidden_size": 8, "inner_size": 16, "n_layers": 1}


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
    assert_name_map_round_trips(setup, states, TINY)


def test_each_side_scores_the_other_sides_weights_identically(setup, states) -> None:
    assert_transplant_scores_equal(setup, states)
