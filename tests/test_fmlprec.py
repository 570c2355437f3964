"""FMLP-Rec (RecBole-port semantics) against the official `models.py`/`modules.py`."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from baselines.fmlprec import FMLPRec
from benchmark.data.process import build_sequences
from benchmark.data.raw import RawInteractions
from benchmark.data.splits import build_splits
from benchmark.engine.trainer import TrainConfig, Trainer
from benchmark.model import Batch, DatasetInfo, gather_last
from benchmark.registry import create_model, get_model

SMALL = {"hidden_size": 16, "inner_size": 24}


def small_fmlp(n_items: int = 40, max_len: int = 10, **overrides) -> FMLPRec:
    return create_model("FMLP-Rec", DatasetInfo(n_items=n_items, max_len=max_len), {**SMALL, **overrides})


def right_padded(lengths: list[int], max_len: int, n_items: int) -> tuple[torch.Tensor, torch.Tensor]:
    length = torch.tensor(lengths)
    seq = torch.randint(1, n_items, (len(lengths), max_len))
    seq[torch.arange(max_len)[None, :] >= length[:, None]] = 0
    return seq, length


def small_splits(seed: int = 0):
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(60), 12)
    items = (users * 7 + np.arange(len(users))) % 30  # a learnable next-item pattern
    items = np.where(rng.random(len(users)) < 0.1, rng.integers(0, 30, len(users)), items)
    raw = RawInteractions(users.astype(str).astype(object), items.astype(str).astype(object), None, {})
    seqs = build_sequences(raw)
    return build_splits(seqs, max_len=10), seqs.n_items


def test_registry_entry() -> None:
    entry = get_model("FMLP-Rec")
    assert not entry.needs_text
    d = entry.defaults
    assert (d["hidden_size"], d["inner_size"], d["n_layers"], d["hidden_dropout_prob"]) == (300, 256, 2, 0.5)
    assert d["learning_rate"] == 1e-3 and d["hidden_act"] == "gelu" and d["layer_norm_eps"] == 1e-12
    assert {"learning_rate", "hidden_dropout_prob", "n_layers"} <= set(entry.search_space)


def test_parameter_count_on_ml1m_shapes() -> None:
    n, L, d, inner, layers = 3417, 50, 300, 256, 2
    embeddings = n * d + L * d + 2 * d  # item and position tables, embedding LayerNorm
    per_layer = (L // 2 + 1) * d * 2 + 2 * d + (d * inner + inner) + (inner * d + d) + 2 * d  # filter, LN, FFN, LN
    expected = embeddings + layers * per_layer
    assert expected == 1_382_612
    model = create_model("FMLP-Rec", DatasetInfo(n_items=n, max_len=L))
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == expected
    assert create_model("FMLP-Rec", DatasetInfo(n_items=n, max_len=L), {"inner_size": 1200}).layers[0].feed_forward.dense_1.out_features == 1200


def test_layers_start_with_identical_filters_and_independent_linears() -> None:
    torch.manual_seed(0)
    model = small_fmlp(n_layers=3)
    first = model.layers[0]
    assert first.filter.complex_weight.shape == (1, 6, 16, 2)
    assert first.filter.complex_weight.std().item() == pytest.approx(0.02, rel=0.25)
    for layer in model.layers[1:]:  # deep copies of one layer (official): the same initial filter
        assert torch.equal(layer.filter.complex_weight, first.filter.complex_weight)
        assert layer.filter.complex_weight.data_ptr() != first.filter.complex_weight.data_ptr()
        assert not torch.equal(layer.feed_forward.dense_1.weight, first.feed_forward.dense_1.weight)  # re-drawn by the init
    assert not first.feed_forward.dense_1.bias.any() and torch.equal(first.layer_norm.weight, torch.ones(16))
    assert model.item_embedding.weight[0].abs().sum() > 0  # RecBole init draws the padding row too


def naive_forward(model: FMLPRec, seq: torch.Tensor) -> torch.Tensor:
    """Eval-mode transcription of the official FMLPRecModel/Encoder (filter layer, Intermediate), every position."""
    x = model.item_embedding(seq) + model.embedding.position_embedding.weight[: seq.size(1)]
    x = model.embedding.layer_norm(x)
    for layer in model.layers:
        spectrum = torch.fft.rfft(x, dim=1, norm="ortho") * torch.view_as_complex(layer.filter.complex_weight)
        x = layer.layer_norm(torch.fft.irfft(spectrum, n=seq.size(1), dim=1, norm="ortho") + x)
        ffn = layer.feed_forward
        hidden = ffn.dense_1(x)
        hidden = hidden * 0.5 * (1.0 + torch.erf(hidden / math.sqrt(2.0)))
        x = ffn.layer_norm(ffn.dense_2(hidden) + x)
    return x


def test_encode_equals_official_transcription_read_at_the_last_real_position() -> None:
    torch.manual_seed(0)
    model = small_fmlp(n_layers=3).double().eval()
    seq, length = right_padded([10, 6, 1, 3], 10, 40)
    full = naive_forward(model, seq)
    torch.testing.assert_close(model.all_positions(seq), full, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(model.encode(seq, length), gather_last(full, length), rtol=1e-10, atol=1e-10)
    scores = model.full_sort_scores(seq, length)
    torch.testing.assert_close(scores, gather_last(full, length) @ model.item_embedding.weight.t(), rtol=1e-10, atol=1e-10)


def test_eval_is_deterministic_training_is_not_and_initial_loss() -> None:
    torch.manual_seed(0)
    model = small_fmlp(n_items=400).eval()
    seq, length = right_padded([10, 4, 1], 10, 400)
    assert torch.equal(model.full_sort_scores(seq, length), model.full_sort_scores(seq, length))
    model.train()
    assert not torch.equal(model.encode(seq, length), model.encode(seq, length))
    loss = model.loss(Batch(seq, length, torch.tensor([1, 2, 3])))
    assert abs(loss.item() - math.log(400)) < 0.1


def test_adam_steps_decrease_the_loss() -> None:
    splits, n_items = small_splits()
    torch.manual_seed(0)
    model = small_fmlp(n_items=n_items, hidden_dropout_prob=0.1)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    batch = Batch(*splits.batch(splits.train.subset(torch.arange(256))))
    losses = []
    for _ in range(20):
        loss = model.loss(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_one_trainer_epoch(tmp_path) -> None:
    splits, n_items = small_splits()
    torch.manual_seed(0)
    model = small_fmlp(n_items=n_items)
    config = TrainConfig(learning_rate=5e-3, batch_size=128, epochs=1, patience=2, seed=1)
    metrics = Trainer(model, splits, config, tmp_path, torch.device("cpu"), progress=False).fit()
    assert metrics["users"] == 60 and metrics["best_epoch"] == 0
    assert 0 <= metrics["test"]["ndcg@10"] <= 1


def test_runs_under_bfloat16_autocast() -> None:
    torch.manual_seed(0)
    model = small_fmlp()
    seq, length = right_padded([10, 3], 10, 40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(Batch(seq, length, torch.tensor([1, 2])))
    loss.backward()
    assert torch.isfinite(loss)
