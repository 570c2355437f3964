"""UniSRec (transductive, from scratch) against the official `unisrec.py` structure."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch.nn import functional as F

from baselines.unisrec import UniSRec
from benchmark.layers.blocks import causal_padding_mask
from benchmark.model import Batch, DatasetInfo
from benchmark.registry import create_model, get_model
from tests.modelkit import ml1m_model, right_padded, small_model, text_matrix, trainable

small_unisrec = partial(small_model, "UniSRec")


def all_positions(model: UniSRec, seq: torch.Tensor) -> torch.Tensor:
    return model.encoder(model.embedding(model.sequence_input(seq)), causal_padding_mask(seq))


def test_registry_entry() -> None:
    entry = get_model("UniSRec")
    assert entry.needs_text
    assert entry.defaults["n_exps"] == 8 and entry.defaults["adaptor_dropout_prob"] == 0.2
    assert entry.defaults["temperature"] == 0.07 and entry.defaults["hidden_size"] == 300
    assert entry.defaults["hidden_dropout_prob"] == entry.defaults["attn_dropout_prob"] == 0.5
    assert {"learning_rate", "n_exps", "temperature", "adaptor_dropout_prob"} <= set(entry.search_space)


@pytest.mark.parametrize(("text_dim", "expected"), [(768, 3_935_444), (384, 3_004_628)])
def test_parameter_count_on_ml1m_shapes(text_dim: int, expected: int) -> None:
    # SASRec 2,073,812 + MoE: router and noise (2·D·8) + experts (8·D·300) + global whitening biases (8·D)
    assert expected == 2_073_812 + 2 * text_dim * 8 + 8 * text_dim * 300 + 8 * text_dim
    model = ml1m_model("UniSRec", text_dim)
    assert trainable(model) == expected
    assert model.adaptor.bias.shape == (8, 1, text_dim) and not model.adaptor.bias.any()  # global, not per position
    assert not model.adaptor.w_gate.any() and model.adaptor.experts.std().item() == pytest.approx(0.02, rel=0.05)
    assert "item_text" not in model.state_dict()


def naive_scores(model: UniSRec, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Eval-mode transcription of the official forward: MoEAdaptorLayer, SASRec with text + ID, cosine."""
    moe = model.adaptor

    def adaptor(x: torch.Tensor) -> torch.Tensor:
        gates = torch.softmax(x @ moe.w_gate, dim=-1)
        return sum(gates[..., k : k + 1] * ((x - moe.bias[k, 0]) @ moe.experts[k]) for k in range(moe.n_exps))

    stage = model.embedding
    x = adaptor(model.item_text[seq]) + stage.position_embedding.weight[: seq.size(1)] + model.item_embedding(seq)
    hidden = model.encoder(stage.layer_norm(x), causal_padding_mask(seq))
    out = hidden[torch.arange(seq.size(0)), length - 1]
    items = adaptor(model.item_text) + model.item_embedding.weight
    return F.normalize(out, dim=-1) @ F.normalize(items, dim=-1).t()


def test_eval_scores_equal_official_transcription() -> None:
    torch.manual_seed(0)
    model = small_unisrec().double().eval()
    with torch.no_grad():  # move the zero-initialised router and whitening biases off zero
        model.adaptor.w_gate.normal_(0, 0.3)
        model.adaptor.bias.normal_(0, 0.3)
    seq, length = right_padded([8, 5, 1, 3], 8, 40)
    scores = model.full_sort_scores(seq, length)
    torch.testing.assert_close(scores, naive_scores(model, seq, length), rtol=1e-10, atol=1e-12)
    assert scores.shape == (4, 40) and scores.abs().max() <= 1 + 1e-12  # cosine at evaluation
    torch.testing.assert_close(model.score_items(model.encode(seq, length), training=True), scores / 0.07)
    assert torch.equal(model.full_sort_scores(seq, length), scores)  # deterministic


def test_candidates_are_noisy_in_training_only() -> None:
    torch.manual_seed(0)
    model = small_unisrec()
    model.train()
    assert not torch.equal(model.item_embeddings(), model.item_embeddings())  # adaptor dropout + router noise
    no_dropout = small_unisrec(adaptor_dropout_prob=0.0).train()
    assert not torch.equal(no_dropout.item_embeddings(), no_dropout.item_embeddings())  # router noise alone
    model.eval()
    assert torch.equal(model.item_embeddings(), model.item_embeddings())


def test_no_future_leakage_and_padding_keys_ignored() -> None:
    torch.manual_seed(0)
    model = small_unisrec(max_len=10).eval()
    lengths = [10, 10, 7, 3]
    seq, _ = right_padded(lengths, 10, 40)
    base = all_positions(model, seq)
    for i in range(9):
        changed = seq.clone()
        changed[:, i + 1 :] = torch.randint(1, 40, changed[:, i + 1 :].shape)
        torch.testing.assert_close(all_positions(model, changed)[:, : i + 1], base[:, : i + 1], rtol=0, atol=1e-5)
    with torch.no_grad():  # padded slots only: their ID row and their text row (MoE(text_0))
        model.item_embedding.weight[0].normal_(0, 5.0)
        model.item_text[0].normal_(0, 5.0)
    after = all_positions(model, seq)
    for b, n in enumerate(lengths):
        torch.testing.assert_close(after[b, :n], base[b, :n], rtol=0, atol=1e-5)


def test_initial_loss_is_near_uniform() -> None:
    torch.manual_seed(0)
    model = create_model("UniSRec", DatasetInfo(n_items=500, max_len=20, item_text=text_matrix(500, 64)))
    seq, length = right_padded([20] * 6 + [7] * 6, 20, 500)
    loss = model.loss(Batch(seq, length, torch.randint(1, 500, (12,)))).item()
    # cosine/0.07 logits have std ~ 1/(0.07·sqrt(d)) ≈ 0.8: CE ≈ ln N + σ²/2, not much above
    assert 0 < loss - math.log(500) < 1.0
