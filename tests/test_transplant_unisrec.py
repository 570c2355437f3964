"""UniSRec's weight transplant against the official code (RUCAIBox/UniSRec, `transductive_ft`), both ways.

Skipped without a checkout named by TEDBENCH_UNISREC_CODE (`git clone https://github.com/RUCAIBox/UniSRec &&
git -C UniSRec checkout 05aa5cb`); CI cannot fetch GitHub (see results/fidelity/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.recbolekit import (
    TINY_MOE,
    assert_name_map_round_trips,
    assert_transplant_scores_equal,
    official_checkout,
    official_setup,
    perturbed_states,
)

CODE, pytestmark = official_checkout("TEDBENCH_UNISREC_CODE", "unisrec.py", "RUCAIBox/UniSRec@05aa5cb")


@pytest.fixture(scope="module")
def setup(sample_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return official_setup("UniSRec", CODE, sample_root, tmp_path_factory.mktemp("transplant-unisrec"))


@pytest.fixture(scope="module")
def states(setup):
    return perturbed_states(setup)


def test_name_map_round_trips_exactly(setup, states) -> None:
    assert_name_map_round_trips(setup, states, TINY_MOE)


def test_each_side_scores_the_other_sides_weights_identically(setup, states) -> None:
    assert_transplant_scores_equal(setup, states)
