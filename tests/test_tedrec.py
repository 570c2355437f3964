"""TedRec against the official code's structure, the paper's lemmas and a direct transcription."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch.nn import functional as F

from benchmark.layers.blocks import causal_padding_mask
from benchmark.model import Batch, DatasetInfo
from benchmark.registry import create_model, get_model
from tedrec import FrequencyFusion, TedRec
from tests.modelkit import (
    SMALL,
    adam_losses,
    circular_convolution,
    ml1m_model,
    right_padded,
    small_model,
    text_matrix,
    trainable,
)

small_tedrec = partial(small_model, "TedRec")


def test_registry_entry() -> None:
    entry = get_model("TedRec")
    assert entry.needs_text
    assert entry.defaults["n_exps"] == 8 and entry.defaults["temperature"] == 0.07
    assert entry.defaults["adaptor_dropout_prob"] == 0.2 and entry.defaults["learning_rate"] == 1e-3
    assert entry.defaults["modulation"] == "position"
    assert entry.defaults["use_id_filter"] and entry.defaults["use_text_fusion"] and entry.defaults["use_gates"]
    assert {"n_exps", "temperature", "hidden_dropout_prob", "attn_dropout_prob", "adaptor_dropout_prob"} <= set(
        entry.search_space
    )


@pytest.mark.parametrize(("text_dim", "expected"), [(768, 4_252_702), (384, 3_171_358)])
def test_parameter_count_on_ml1m_shapes(text_dim: int, expected: int) -> None:
    assert trainable(ml1m_model("TedRec", text_dim)) == expected


def test_frozen_text_is_a_buffer_outside_init_and_state_dict() -> None:
    text = text_matrix(60, 24)
    model = create_model("TedRec", DatasetInfo(n_items=60, max_len=8, item_text=text), SMALL["TedRec"].config)
    assert torch.equal(model.item_text, text)
    assert all(p.data_ptr() != model.item_text.data_ptr() for p in model.parameters())
    assert "item_text" not in model.state_dict()


def test_initialisation_matches_official_order() -> None:
    torch.manual_seed(0)
    model = ml1m_model("TedRec", 768)
    bound = 1 / math.sqrt(300)
    for gate in (model.fusion.id_gate, model.fusion.fusion_gate):  # created after RecBole's init: default bias
        assert gate.weight.std().item() == pytest.approx(0.02, rel=0.25)
        assert gate.bias.item() != 0 and abs(gate.bias.item()) <= bound
    assert model.fusion.id_filter.complex_weight.shape == (1, 26, 300, 2)
    assert model.fusion.id_filter.complex_weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert model.adaptor.bias.shape == (8, 50, 768) and not model.adaptor.bias.any()
    assert not model.adaptor.w_gate.any() and not model.adaptor.w_noise.any()
    assert model.item_embedding.weight[0].abs().sum() > 0  # RecBole draws the padding row too


def test_lemma_3_1_text_id_fusion_is_scaled_circular_convolution() -> None:
    torch.manual_seed(0)
    fusion = FrequencyFusion(6, 11).double()
    item, text = torch.randn(3, 11, 6, dtype=torch.float64), torch.randn(3, 11, 6, dtype=torch.float64)
    _, c_fu = fusion.branches(item, text)
    torch.testing.assert_close(c_fu, circular_convolution(item, text) / math.sqrt(11), rtol=1e-10, atol=1e-12)
    # Lemma 3.2: position j mixes past (k <= j) and future (k > j) items alike
    assert not torch.allclose(c_fu[:, 0], item[:, 0] * text[:, 0] / math.sqrt(11))


def test_filter_branch_is_circular_convolution_with_impulse_response() -> None:
    torch.manual_seed(0)
    fusion = FrequencyFusion(6, 10).double()
    item, text = torch.randn(3, 10, 6, dtype=torch.float64), torch.randn(3, 10, 6, dtype=torch.float64)
    c_id, _ = fusion.branches(item, text)
    impulse = torch.fft.irfft(torch.view_as_complex(fusion.id_filter.complex_weight), n=10, dim=1)
    torch.testing.assert_close(c_id, circular_convolution(item, impulse.expand(3, -1, -1)), rtol=1e-10, atol=1e-12)


def test_fusion_output_and_ablations() -> None:
    torch.manual_seed(0)
    item, text = torch.randn(2, 8, 5, dtype=torch.float64), torch.randn(2, 8, 5, dtype=torch.float64)
    full = FrequencyFusion(5, 8).double()
    c_id, c_fu = full.branches(item, text)
    expected = 2 * (c_id * torch.sigmoid(full.id_gate(c_id)) + c_fu * torch.sigmoid(full.fusion_gate(c_fu)))
    torch.testing.assert_close(full(item, text), expected)
    no_filter = FrequencyFusion(5, 8, use_id_filter=False).double()
    assert torch.equal(no_filter.branches(item, text)[0], item) and no_filter.id_filter is None
    no_text_fusion = FrequencyFusion(5, 8, use_text_fusion=False).double()
    torch.testing.assert_close(no_text_fusion.branches(item, text)[1], item * text)
    no_gates = FrequencyFusion(5, 8, use_gates=False).double()
    with torch.no_grad():
        no_gates.id_filter.complex_weight.copy_(full.id_filter.complex_weight)
    torch.testing.assert_close(no_gates(item, text), c_id + c_fu)
    assert no_gates.id_gate is None and no_gates.fusion_gate is None


@pytest.mark.parametrize(
    ("overrides", "missing"),
    [
        ({"modulation": "global"}, 4 * (8 - 1) * 24),
        ({"modulation": "none"}, 4 * 8 * 24),
        ({"use_id_filter": False}, 5 * 32 * 2),
        ({"use_gates": False}, 2 * 33),
    ],
)
def test_ablation_parameter_counts(overrides: dict, missing: int) -> None:
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(small_tedrec()) - count(small_tedrec(**overrides)) == missing
    model = small_tedrec(**overrides)
    seq, length = right_padded([8, 3], 8, 60)
    assert torch.isfinite(model.loss(Batch(seq, length, torch.tensor([1, 2])))).all()


def naive_tedrec_scores(model: TedRec, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Eval-mode transcription of the official forward: MoEAdaptorLayer, contextual_convolution, SASRec."""
    moe, fusion = model.adaptor, model.fusion
    x = model.item_text[seq]
    gates = torch.softmax(x @ moe.w_gate, dim=-1)
    text = sum(gates[..., k : k + 1] * ((x - moe.bias[k]) @ moe.experts[k]) for k in range(moe.n_exps))
    item = model.item_embedding(seq)
    item_fft, text_fft = torch.fft.rfft(item, dim=1, norm="ortho"), torch.fft.rfft(text, dim=1, norm="ortho")
    weight = torch.view_as_complex(fusion.id_filter.complex_weight)
    item_conv = torch.fft.irfft(item_fft * weight, n=seq.size(1), dim=1, norm="ortho")
    fusion_conv = torch.fft.irfft(text_fft * item_fft, n=seq.size(1), dim=1, norm="ortho")
    fused = 2 * (
        item_conv * torch.sigmoid(fusion.id_gate(item_conv))
        + fusion_conv * torch.sigmoid(fusion.fusion_gate(fusion_conv))
    )
    stage = model.embedding
    hidden = stage.layer_norm(fused + stage.position_embedding.weight)
    mask = causal_padding_mask(seq).to(hidden.dtype)
    for layer in model.encoder.layers:
        att = layer.attention
        b, n, d = hidden.shape
        split = lambda t: t.view(b, n, att.n_heads, d // att.n_heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(att.query(hidden)), split(att.key(hidden)), split(att.value(hidden))
        probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d // att.n_heads) + mask, dim=-1)
        hidden = att.layer_norm(att.dense((probs @ v).transpose(1, 2).reshape(b, n, d)) + hidden)
        ff = layer.feed_forward
        inner = ff.dense_1(hidden)
        hidden = ff.layer_norm(ff.dense_2(inner * 0.5 * (1.0 + torch.erf(inner / math.sqrt(2.0)))) + hidden)
    last = hidden[torch.arange(seq.size(0)), length - 1]
    return F.normalize(last, dim=-1) @ F.normalize(model.item_embedding.weight, dim=-1).t()


def test_eval_forward_equals_official_transcription() -> None:
    torch.manual_seed(0)
    model = small_tedrec().double().eval()
    with torch.no_grad():  # move the zero-initialised router and modulation off zero
        for p in (model.adaptor.w_gate, model.adaptor.bias):
            p.normal_(0, 0.1)
    seq, length = right_padded([8, 5, 1, 2], 8, 60)
    torch.testing.assert_close(
        model.full_sort_scores(seq, length), naive_tedrec_scores(model, seq, length), rtol=1e-10, atol=1e-12
    )
    training_scores = model.score_items(model.encode(seq, length), training=True)
    torch.testing.assert_close(training_scores, model.full_sort_scores(seq, length) / 0.07)


def test_eval_is_deterministic_and_training_is_noisy() -> None:
    torch.manual_seed(0)
    model = small_tedrec(hidden_dropout_prob=0.0, attn_dropout_prob=0.0, adaptor_dropout_prob=0.0)
    seq, length = right_padded([8, 4], 8, 60)
    model.eval()
    assert torch.equal(model.encode(seq, length), model.encode(seq, length))
    model.train()  # with every dropout off, only the router noise remains
    assert not torch.equal(model.encode(seq, length), model.encode(seq, length))
    x = model.item_text[seq]
    assert not torch.equal(model.adaptor.gate_logits(x), model.adaptor.gate_logits(x))


def test_initial_loss_is_near_uniform() -> None:
    torch.manual_seed(0)
    model = ml1m_model("TedRec", 768)
    seq, length = right_padded([50] * 12 + [17] * 12, 50, 3417)
    loss = model.loss(Batch(seq, length, torch.randint(1, 3417, (24,)))).item()
    # cosine/0.07 logits of random 300-d vectors have std ~ 1/(0.07·sqrt(300)) ≈ 0.82
    assert abs(loss - math.log(3417)) < 0.6


def test_adam_steps_decrease_the_loss() -> None:
    torch.manual_seed(0)
    model = small_tedrec(hidden_dropout_prob=0.1, attn_dropout_prob=0.1)
    seq, length = right_padded([8, 6, 5, 3, 7, 2, 8, 4] * 4, 8, 60)
    target = (seq[torch.arange(32), length - 1] * 7) % 59 + 1  # next item is a function of the last one
    batch = Batch(seq, length, target)
    model.eval()
    before = model.loss(batch).item()
    model.train()
    adam_losses(model, batch, steps=30, lr=1e-3)
    model.eval()
    assert model.loss(batch).item() < before - 0.5
    assert model.item_text.grad is None
