"""SASRec (RecBole 1.2) in the TedRec setting."""

from __future__ import annotations

import math

import torch

from baselines.sasrec import SASRec
from benchmark.layers.blocks import causal_padding_mask
from benchmark.model import Batch, DatasetInfo, gather_last
from benchmark.registry import create_model, get_model, list_models
from tests.modelkit import ml1m_model, right_padded, trainable

SMALL = {"hidden_size": 32, "inner_size": 48, "n_heads": 2}


def all_positions(model: SASRec, seq: torch.Tensor) -> torch.Tensor:
    """Last-layer output at every position [B, L, d]."""
    return model.encoder(model.embedding(model.sequence_input(seq)), causal_padding_mask(seq))


def test_registry_entry() -> None:
    assert "SASRec" in list_models()
    entry = get_model("SASRec")
    assert entry.defaults["hidden_size"] == 300 and entry.defaults["learning_rate"] == 1e-3
    assert entry.defaults["hidden_dropout_prob"] == entry.defaults["attn_dropout_prob"] == 0.5
    assert set(entry.search_space) == {
        "learning_rate",
        "preset",
        "hidden_dropout_prob",
        "attn_dropout_prob",
        "n_layers",
        "n_heads",
    }
    assert all(300 % h == 0 for h in entry.search_space["n_heads"].choices)
    assert not entry.needs_text


def test_parameter_count_on_ml1m_shapes() -> None:
    assert trainable(ml1m_model("SASRec")) == 2_073_812


def test_no_future_leakage() -> None:
    torch.manual_seed(0)
    model = create_model("SASRec", DatasetInfo(n_items=100, max_len=12), SMALL).eval()
    seq, _ = right_padded([12, 12, 9, 5], 12, 100)
    base = all_positions(model, seq)
    for i in range(11):
        changed = seq.clone()
        changed[:, i + 1 :] = torch.randint(1, 100, changed[:, i + 1 :].shape)
        torch.testing.assert_close(all_positions(model, changed)[:, : i + 1], base[:, : i + 1], rtol=0, atol=1e-6)


def test_padding_keys_are_ignored() -> None:
    torch.manual_seed(0)
    model = create_model("SASRec", DatasetInfo(n_items=100, max_len=10), SMALL).eval()
    lengths = [10, 7, 3, 1]
    seq, _ = right_padded(lengths, 10, 100)
    base = all_positions(model, seq)
    with torch.no_grad():
        model.item_embedding.weight[0].normal_(0, 5.0)
    after = all_positions(model, seq)
    for b, n in enumerate(lengths):
        torch.testing.assert_close(after[b, :n], base[b, :n], rtol=0, atol=1e-6)


def test_encode_reads_the_last_real_position_and_eval_is_deterministic() -> None:
    torch.manual_seed(0)
    model = create_model("SASRec", DatasetInfo(n_items=100, max_len=10), SMALL).eval()
    seq, length = right_padded([10, 4, 1], 10, 100)
    torch.testing.assert_close(
        model.encode(seq, length), gather_last(all_positions(model, seq), length), rtol=0, atol=1e-6
    )
    assert torch.equal(model.full_sort_scores(seq, length), model.full_sort_scores(seq, length))
    model.train()
    assert not torch.equal(model.encode(seq, length), model.encode(seq, length))


def test_dot_product_scores_and_initial_loss() -> None:
    torch.manual_seed(0)
    model = ml1m_model("SASRec")
    seq, _ = right_padded([50] * 8 + [20] * 8, 50, 3417)
    length = (seq != 0).sum(1)
    model.eval()
    scores = model.full_sort_scores(seq, length)
    torch.testing.assert_close(scores, model.encode(seq, length) @ model.item_embedding.weight.t())
    loss = model.loss(Batch(seq, length, torch.randint(1, 3417, (16,))))
    assert abs(loss.item() - math.log(3417)) < 0.1
