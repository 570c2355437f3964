"""Every model trains: Adam steps on one batch decrease the loss, one Trainer epoch runs, bfloat16 autocast works.

The model-specific checks (TedRec's and S3-Rec's training, DLFS-Rec's and FEARec's autocast) stay with the model.
"""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.model import Batch
from tests.modelkit import SMALL, adam_losses, fit_one_epoch, right_padded, small_model, small_splits, training_batch

TEXT_FUSION = ("SASRecF", "FDSA", "DIF-SR", "SMLP4Rec")
LOW_DROPOUT = {"hidden_dropout_prob": 0.1, "attn_dropout_prob": 0.1}
# the dropout of the Adam runs; each model is built (seed 0) at its SMALL size for splits of its SMALL max_len
ADAM = {
    "DLFS-Rec": {"hidden_dropout_prob": 0.1},
    "UniSRec": LOW_DROPOUT,
    "FMLP-Rec": {"hidden_dropout_prob": 0.1},
    "FEARec": LOW_DROPOUT,
    "SASRecF": LOW_DROPOUT,
    "FDSA": LOW_DROPOUT,
    "DIF-SR": LOW_DROPOUT,
    "SMLP4Rec": {"hidden_dropout_prob": 0.1},
    "UniSRec+TedRec": LOW_DROPOUT,
    "DLFS-Rec+TedRec": {"hidden_dropout_prob": 0.1},
    "SASRecF+TedRec": LOW_DROPOUT,
    "DIF-SR+TedRec": LOW_DROPOUT,
}
ADAM_ROWS = {"FEARec": 128}  # default 256
ADAM_STEPS = {"SASRecF+TedRec": 40}  # default 20
EPOCH = {name: {} for name in ADAM} | {"FEARec": {"preset": "us_x"}}  # FEARec with its same-target contrast


@pytest.mark.parametrize("name", list(ADAM))
def test_adam_steps_decrease_the_loss(name: str) -> None:
    splits, n_items = small_splits(max_len=SMALL[name].max_len)
    model = small_model(name, n_items=n_items, seed=0, **ADAM[name])
    losses = adam_losses(model, training_batch(model, splits, ADAM_ROWS.get(name, 256)), steps=ADAM_STEPS.get(name, 20))
    assert losses[-1] < 0.8 * losses[0]
    assert all(buffer.grad is None for buffer in model.buffers())  # the frozen text stays frozen
    if name in TEXT_FUSION:  # RecBole's init: near-uniform logits at first
        assert losses[0] == pytest.approx(math.log(n_items), abs=0.3)


@pytest.mark.parametrize("name", list(EPOCH))
def test_one_trainer_epoch(name: str, tmp_path) -> None:
    splits, n_items = small_splits(max_len=SMALL[name].max_len)
    model = small_model(name, n_items=n_items, seed=0, **EPOCH[name])
    metrics = fit_one_epoch(model, splits, tmp_path)
    assert metrics["users"] == 60 and metrics["best_epoch"] == 0
    assert 0 <= metrics["test"]["ndcg@10"] <= 1
    if name == "FEARec":  # the same-target index was built for the training rows
        assert model.same_target is not None and len(model.same_target.order) == len(splits.train)


@pytest.mark.parametrize("name", ["UniSRec", "FMLP-Rec", "TedRec"])
def test_runs_under_bfloat16_autocast(name: str) -> None:
    small = SMALL[name]
    model = small_model(name, seed=0)
    seq, length = right_padded([small.max_len, 3], small.max_len, small.n_items)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(Batch(seq, length, torch.tensor([1, 2])))
    loss.backward()
    assert torch.isfinite(loss)
