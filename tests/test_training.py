"""Every model trains: Adam steps on one batch decrease the loss, one Trainer epoch runs, bfloat16 autocast works.

The model-specific checks (TedRec's and S3-Rec's training, DLFS-Rec's and FEARec's autocast) stay with the model.
"""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.model import Batch
from benchmark.registry import get_model, list_models
from tests.modelkit import SMALL, adam_losses, fit_one_epoch, right_padded, small_model, small_splits, training_batch

TEXT_FUSION = ("SASRecF", "FDSA", "DIF-SR", "SMLP4Rec")
MODELS = list_models()
ADAM_ROWS = {"FEARec": 128}  # default 256
ADAM_STEPS = {"SASRecF+TedRec": 40}  # default 20
EPOCH = {"FEARec": {"preset": "us_x"}}  # FEARec with its same-target contrast


def low_dropout(name: str) -> dict[str, float]:
    """Dropout 0.1 for the Adam runs (each model at its SMALL size, seed 0, splits of its SMALL max_len)."""
    return {key: 0.1 for key in ("hidden_dropout_prob", "attn_dropout_prob") if key in get_model(name).defaults}


@pytest.mark.parametrize("name", MODELS)
def test_adam_steps_decrease_the_loss(name: str) -> None:
    splits, n_items = small_splits(max_len=SMALL[name].max_len)
    model = small_model(name, n_items=n_items, seed=0, **low_dropout(name))
    losses = adam_losses(model, training_batch(model, splits, ADAM_ROWS.get(name, 256)), steps=ADAM_STEPS.get(name, 20))
    assert losses[-1] < 0.8 * losses[0]
    assert all(buffer.grad is None for buffer in model.buffers())  # the frozen text stays frozen
    if name in TEXT_FUSION:  # RecBole's init: near-uniform logits at first
        assert losses[0] == pytest.approx(math.log(n_items), abs=0.3)


@pytest.mark.parametrize("name", MODELS)
def test_one_trainer_epoch(name: str, tmp_path) -> None:
    splits, n_items = small_splits(max_len=SMALL[name].max_len)
    model = small_model(name, n_items=n_items, seed=0, **EPOCH.get(name, {}))
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
