"""TedRec's weight transplant against the official code (RUCAIBox/TedRec), both ways, on the bundled OR-sample.

The official code is never part of tedbench: these tests load it from a checkout named by TEDBENCH_TEDREC_CODE
(`git clone https://github.com/RUCAIBox/TedRec && git -C TedRec checkout e6b3cb9`) and are skipped without one
(CI cannot fetch GitHub; see results/fidelity/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.errors import TedbenchError
from benchmark.fidelity.transplant import (
    NAME_MAPS,
    to_reference,
    to_tedbench,
    transplant,
)
from benchmark.registry import create_model
from tests.recbolekit import TINY_MOE, official_checkout, official_setup, perturbed_states

CODE, pytestmark = official_checkout("TEDBENCH_TEDREC_CODE", "tedrec.py", "RUCAIBox/TedRec@e6b3cb9")
NAMES = NAME_MAPS["TedRec"]


@pytest.fixture(scope="module")
def setup(sample_root: Path, tmp_path_factory: pytest.TempPathFactory):
    return official_setup("TedRec", CODE, sample_root, tmp_path_factory.mktemp("transplant"))


@pytest.fixture(scope="module")
def states(setup):
    return perturbed_states(setup)


def test_the_official_code_pads_to_tedbench_length(setup) -> None:
    """The official benchmark files cut lists at 50 and RecBole pads to the longest: on OR-sample that is 50 too
    (the official model accepts no other width: its modulation table and filter are built for max_seq_length)."""
    longest = int((setup.splits.test.target_pos - setup.splits.test.user_start).max())
    assert min(longest, 50) == setup.splits.max_len == 50


def test_name_map_round_trips_exactly(setup, states) -> None:
    ours, theirs, order = states
    template_ours = create_model("TedRec", setup.info, TINY_MOE).state_dict()
    back = to_tedbench(NAMES, to_reference(NAMES, ours, theirs, order), template_ours, order)
    assert back.keys() == ours.keys()
    assert all(torch.equal(back[k], ours[k]) for k in ours)
    there = to_reference(NAMES, to_tedbench(NAMES, theirs, template_ours, order), theirs, order)
    assert all(torch.equal(there[k], theirs[k]) for k in theirs)


def test_unmapped_or_misshapen_weights_are_refused(states) -> None:
    ours, theirs, order = states
    with pytest.raises(TedbenchError, match=r"unmapped names: reference \[\], tedbench \['fusion.id_gate.bias'\]"):
        to_reference(NAMES, ours, {k: v for k, v in theirs.items() if k != "item_gating.bias"}, order)
    with pytest.raises(TedbenchError, match="unmapped names: reference \\['extra.weight'\\]"):
        to_tedbench(NAMES, {**theirs, "extra.weight": torch.zeros(1)}, ours, order)
    with pytest.raises(TedbenchError, match="complex_weight: shape"):
        to_tedbench(NAMES, {**theirs, "complex_weight": theirs["complex_weight"][:, :3]}, ours, order)


def test_each_side_scores_the_other_sides_weights_identically(setup, states) -> None:
    ours, theirs, _ = states
    rows = transplant(setup, 2020, ours, theirs)
    assert [(r["weights"], r["split"]) for r in rows] == [
        ("tedbench", "valid"),
        ("tedbench", "test"),
        ("official", "valid"),
        ("official", "test"),
    ]
    for row in rows:
        assert row["equal"], row
        assert row["score_gap"] < 1e-5
        assert 0 < row["own"]["ndcg@20"] < 1


def test_verify_transplant_end_to_end_and_reuses_finished_sides(
    sample_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    args = [
        "verify",
        "--model",
        "TedRec",
        "--dataset",
        "OR-sample",
        "--data-root",
        str(sample_root),
        "--encoder",
        "random",
        "--against",
        "official",
        "--reference-code",
        CODE,
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "4096",
        "--set",
        "hidden_size=8",
        "--set",
        "inner_size=16",
        "--set",
        "n_layers=1",
        "--set",
        "n_exps=2",
        "--out",
        str(tmp_path / "out"),
        "--work",
        str(tmp_path / "work"),
        "--device",
        "cpu",
        "--transplant",
    ]
    assert main(args) == 0
    table = (tmp_path / "out" / "OR-sample.TedRec.paper.official.transplant.md").read_text()
    assert "**EXACT" in table and "| NO |" not in table
    stored = tmp_path / "work" / "official-seed2020" / "siderun.json"
    before = stored.stat().st_mtime_ns
    assert main(args) == 0  # both sides reused
    assert stored.stat().st_mtime_ns == before
    assert main([*args, "--set", "temperature=0.1"]) == 2
    assert (
        "tedbench-seed2020/siderun.json: finished with other settings (model_config.temperature)"
        in capsys.readouterr().err
    )
