"""FMLP-Rec (RecBole-port semantics) against the official `models.py`/`modules.py`."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from baselines.fmlprec import FMLPRec
from benchmark.model import Batch, DatasetInfo, gather_last
from benchmark.registry import create_model, get_model
from tests.modelkit import ml1m_model, right_padded, small_model, trainable

small_fmlp = partial(small_model, "FMLP-Rec")


def test_registry_entry() -> None:
    entry = get_model("FMLP-Rec")
    assert not entry.needs_text
    d = entry.defaults
    assert (d["hidden_size"], d["inner_factor"], d["n_layers"], d["hidden_dropout_prob"]) == (300, 4, 2, 0.5)
    assert d["learning_rate"] == 1e-3 and d["hidden_act"] == "gelu" and d["layer_norm_eps"] == 1e-12
    assert {"learning_rate", "hidden_dropout_prob", "n_layers"} <= set(entry.search_space)


def test_parameter_count_on_ml1m_shapes() -> None:
    n, L, d, inner, layers = 3417, 50, 300, 1200, 2  # inner 4·d (official modules.py:128,134)
    embeddings = n * d + L * d + 2 * d  # item and position tables, embedding LayerNorm
    per_layer = (L // 2 + 1) * d * 2 + 2 * d + (d * inner + inner) + (inner * d + d) + 2 * d  # filter, LN, FFN, LN
    expected = embeddings + layers * per_layer
    assert trainable(ml1m_model("FMLP-Rec")) == expected


@pytest.mark.parametrize("hidden", [16, 64, 300])
def test_inner_size_is_four_times_hidden_at_every_size(hidden: int) -> None:
    model = create_model("FMLP-Rec", DatasetInfo(n_items=20, max_len=10), {"hidden_size": hidden})
    for layer in model.layers:
        assert (layer.feed_forward.dense_1.out_features, layer.feed_forward.dense_2.in_features) == (
            4 * hidden,
            4 * hidden,
        )
    wide = create_model("FMLP-Rec", DatasetInfo(n_items=20, max_len=10), {"hidden_size": hidden, "inner_factor": 2})
    assert wide.layers[0].feed_forward.dense_1.out_features == 2 * hidden


def test_layers_start_with_identical_filters_and_independent_linears() -> None:
    torch.manual_seed(0)
    model = small_fmlp(n_layers=3)
    first = model.layers[0]
    assert first.filter.complex_weight.shape == (1, 6, 16, 2)
    assert first.filter.complex_weight.std().item() == pytest.approx(0.02, rel=0.25)
    for layer in model.layers[1:]:  # deep copies of one layer (official): the same initial filter
        assert torch.equal(layer.filter.complex_weight, first.filter.complex_weight)
        assert layer.filter.complex_weight.data_ptr() != first.filter.complex_weight.data_ptr()
        assert not torch.equal(
            layer.feed_forward.dense_1.weight, first.feed_forward.dense_1.weight
        )  # re-drawn by the init
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
    torch.testing.assert_close(
        scores, gather_last(full, length) @ model.item_embedding.weight.t(), rtol=1e-10, atol=1e-10
    )


def test_eval_is_deterministic_training_is_not_and_initial_loss() -> None:
    torch.manual_seed(0)
    model = small_fmlp(n_items=400).eval()
    seq, length = right_padded([10, 4, 1], 10, 400)
    assert torch.equal(model.full_sort_scores(seq, length), model.full_sort_scores(seq, length))
    model.train()
    assert not torch.equal(model.encode(seq, length), model.encode(seq, length))
    loss = model.loss(Batch(seq, length, torch.tensor([1, 2, 3])))
    assert abs(loss.item() - math.log(400)) < 0.1
