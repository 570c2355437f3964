"""Shared layers and kernels (benchmark/layers/) against explicit reference computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from benchmark.layers import blocks, kernels
from benchmark.layers.blocks import (
    MASK_VALUE,
    LearnableFilter,
    MoEAdaptor,
    MultiHeadAttention,
    SequenceEmbedding,
    TransformerEncoder,
    bidirectional_padding_mask,
    causal_padding_mask,
    recbole_init_,
)
from benchmark.layers.kernels import bernoulli_keep_, dropout, rfft_ortho
from tedrec.adaptor import PositionModulatedAdaptor, modulation_adaptor
from tests.modelkit import circular_convolution


def explicit_attention(layer: MultiHeadAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """RecBole's SelfAttention written out: softmax(QKᵀ/sqrt(h) + M)V, dense, residual, LayerNorm (eval)."""
    batch, length, hidden = x.shape
    head = hidden // layer.n_heads

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.view(batch, length, layer.n_heads, head).permute(0, 2, 1, 3)

    q, k, v = split(layer.query(x)), split(layer.key(x)), split(layer.value(x))
    probs = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(head) + mask, dim=-1)
    context = (probs @ v).permute(0, 2, 1, 3).reshape(batch, length, hidden)
    return layer.layer_norm(layer.dense(context) + x)


def test_recbole_init_draws_every_weight_and_leaves_buffers() -> None:
    torch.manual_seed(0)
    module = nn.Module()
    module.emb = nn.Embedding(2000, 64, padding_idx=0)
    module.lin = nn.Linear(64, 64)
    module.norm = nn.LayerNorm(64)
    module.register_buffer("frozen", torch.full((3, 3), 7.0))
    with torch.no_grad():
        module.norm.weight.fill_(3.0)
        module.norm.bias.fill_(3.0)
    recbole_init_(module, std=0.02)
    assert module.emb.weight.std().item() == pytest.approx(0.02, rel=0.05)
    assert module.emb.weight[0].abs().sum() > 0  # padding row drawn too, as RecBole
    assert module.lin.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert torch.equal(module.lin.bias, torch.zeros(64))
    assert torch.equal(module.norm.weight, torch.ones(64)) and torch.equal(module.norm.bias, torch.zeros(64))
    assert torch.equal(module.frozen, torch.full((3, 3), 7.0))


def test_masks() -> None:
    seq = torch.tensor([[5, 6, 7, 0], [3, 0, 0, 0]])
    causal = causal_padding_mask(seq)
    assert causal.shape == (2, 1, 4, 4)
    visible = torch.tensor(
        [
            [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 0]],
            [[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0]],
        ],
        dtype=torch.bool,
    )
    assert torch.equal(causal[:, 0], torch.where(visible, 0.0, MASK_VALUE))
    bidirectional = bidirectional_padding_mask(seq)
    assert bidirectional.shape == (2, 1, 4, 4)
    assert torch.equal(bidirectional[:, 0], torch.where((seq != 0)[:, None, :].expand(-1, 4, -1), 0.0, MASK_VALUE))


def test_sdpa_attention_equals_explicit_softmax() -> None:
    torch.manual_seed(0)
    layer = recbole_init_(MultiHeadAttention(48, 3, 0.5, 0.5, 1e-12).double(), std=0.2).eval()
    seq = torch.tensor([[4, 2, 9, 1, 0, 0], [7, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    x = torch.randn(3, 6, 48, dtype=torch.float64)
    for mask in (causal_padding_mask(seq), bidirectional_padding_mask(seq)):
        mask = mask.double()
        torch.testing.assert_close(layer(x, mask), explicit_attention(layer, x, mask), rtol=1e-12, atol=1e-12)


def test_cpu_training_path_equals_sdpa_without_dropout_draws(monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    layer = recbole_init_(MultiHeadAttention(48, 3, 0.5, 0.5, 1e-12).double(), std=0.2)
    seq = torch.tensor([[4, 2, 9, 1, 0, 0], [7, 0, 0, 0, 0, 0], [1, 2, 3, 4, 5, 6]])
    x = torch.randn(3, 6, 48, dtype=torch.float64)
    mask = causal_padding_mask(seq).double()
    expected = layer.eval()(x, mask)
    for module in (blocks, kernels):  # attention probabilities (blocks) and the Dropout modules (kernels)
        monkeypatch.setattr(module, "dropout", lambda t, p, training: t)  # keep everything
    torch.testing.assert_close(layer.train()(x, mask), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(layer(x, mask[:, :, 2:3], x[:, 2:3]), expected[:, 2:3], rtol=1e-12, atol=1e-12)


def test_attention_dropout_is_on_the_probabilities() -> None:
    torch.manual_seed(0)
    layer = MultiHeadAttention(8, 1, 0.0, 0.5, 1e-12).train()
    with torch.no_grad():  # q = k = 0 -> uniform probabilities; v = 1 -> context = row sum of dropped probs
        for lin in (layer.query, layer.key, layer.value):
            lin.weight.zero_()
            lin.bias.zero_()
        layer.value.bias.fill_(1.0)
    captured = {}
    layer.dense.register_forward_hook(lambda _m, inputs, _o: captured.setdefault("context", inputs[0]))
    layer(torch.randn(64, 10, 8), torch.zeros(64, 1, 10, 10))
    context = captured["context"][..., 0]  # each entry = (kept count) · (1/10) · 2
    assert torch.allclose(context * 5, (context * 5).round(), atol=1e-5)
    assert context.mean().item() == pytest.approx(1.0, abs=0.05)


def test_read_index_equals_gathering_full_output() -> None:
    torch.manual_seed(0)
    encoder = recbole_init_(TransformerEncoder(2, 32, 2, 40, 0.5, 0.5).double(), std=0.1).eval()
    seq = torch.tensor([[3, 1, 4, 1, 5], [9, 2, 0, 0, 0], [6, 0, 0, 0, 0]])
    length = torch.tensor([5, 2, 1])
    x = torch.randn(3, 5, 32, dtype=torch.float64)
    mask = causal_padding_mask(seq).double()
    full = encoder(x, mask)
    picked = encoder(x, mask, read_index=length - 1)
    torch.testing.assert_close(picked, full[torch.arange(3), length - 1], rtol=1e-12, atol=1e-12)


def test_sequence_embedding_stage() -> None:
    stage = SequenceEmbedding(7, 16, 0.5, 1e-12).eval()
    x = torch.randn(2, 7, 16)
    expected = F.layer_norm(
        x + stage.position_embedding.weight, (16,), stage.layer_norm.weight, stage.layer_norm.bias, 1e-12
    )
    torch.testing.assert_close(stage(x), expected)


@pytest.mark.parametrize("keep_prob", [0.8, 0.5, 0.1, 0.999])
def test_bernoulli_keep_rate(keep_prob: float) -> None:
    torch.manual_seed(1)
    mask = bernoulli_keep_(torch.empty(4_000_000, dtype=torch.bool), keep_prob)
    rate = mask.double().mean().item()
    assert abs(rate - keep_prob) < 5 * math.sqrt(keep_prob * (1 - keep_prob) / mask.numel())


def test_bernoulli_keep_resolves_threshold_ties() -> None:
    torch.manual_seed(2)
    scratch = torch.empty(4_000_008, dtype=torch.uint8)
    mask = bernoulli_keep_(torch.empty(2_000_000, dtype=torch.bool), 0.8, scratch=scratch)
    ties = scratch[:2_000_000] == int(0.8 * 256)  # the random bytes are left in scratch
    assert ties.sum() > 5000
    assert mask[ties].double().mean().item() == pytest.approx(0.8, abs=0.02)  # 0.8·256 − 204 = 0.8


def test_dropout_scales_kept_values_and_gradients() -> None:
    torch.manual_seed(0)
    x = torch.randn(1000, 300, requires_grad=True)
    y = dropout(x, 0.2, training=True)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.8)
    assert kept.double().mean().item() == pytest.approx(0.8, abs=0.005)
    y.backward(torch.ones_like(y))
    torch.testing.assert_close(x.grad, kept.float() / 0.8)
    assert dropout(x, 0.2, training=False) is x


@pytest.mark.parametrize(("shape", "dim"), [((3, 50, 4), 1), ((3, 49, 4), 1), ((2, 5, 8), -1), ((2, 5, 7), 2)])
def test_rfft_ortho_equals_torch_rfft_and_its_gradient(shape: tuple[int, ...], dim: int) -> None:
    torch.manual_seed(0)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    ours, reference = rfft_ortho(x, dim), torch.fft.rfft(x, dim=dim, norm="ortho")
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)
    upstream = torch.randn(reference.shape, dtype=torch.complex128)  # a generic (non-Hermitian) gradient
    (grad,) = torch.autograd.grad(ours, x, upstream)
    (want,) = torch.autograd.grad(reference, x, upstream)
    torch.testing.assert_close(grad, want, rtol=1e-12, atol=1e-12)
    assert not rfft_ortho(x.detach(), dim).requires_grad


@pytest.mark.parametrize("length", [9, 10])
def test_learnable_filter_at_equals_the_filtered_rows_and_their_gradients(length: int) -> None:
    torch.manual_seed(0)
    filt = LearnableFilter(length, 5).double()
    x = torch.randn(4, length, 5, dtype=torch.float64, requires_grad=True)
    index = torch.tensor([0, length - 1, 3, 3])
    upstream = torch.randn(4, 5, dtype=torch.float64)
    rows = filt.at(x, index)
    want = filt(x)[torch.arange(4), index]
    torch.testing.assert_close(rows, want, rtol=1e-12, atol=1e-12)
    grads = torch.autograd.grad(rows, (x, filt.complex_weight), upstream)
    wanted = torch.autograd.grad(want, (x, filt.complex_weight), upstream)
    for got, expected in zip(grads, wanted):
        torch.testing.assert_close(got, expected, rtol=1e-10, atol=1e-12)


def test_learnable_filter_is_circular_convolution_with_its_impulse_response() -> None:
    torch.manual_seed(0)
    length, hidden = 9, 5
    filt = LearnableFilter(length, hidden).double()
    x = torch.randn(3, length, hidden, dtype=torch.float64)
    impulse = torch.fft.irfft(torch.view_as_complex(filt.complex_weight), n=length, dim=1)  # [1, L, d]
    torch.testing.assert_close(filt(x), circular_convolution(x, impulse.expand(3, -1, -1)), rtol=1e-10, atol=1e-12)


def naive_moe(moe: MoEAdaptor, x: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
    """Official MoEAdaptorLayer: Σ_k softmax(x·Wg)_k · (Dropout_k(x) − b_k)·A_k, one expert at a time."""
    gates = torch.softmax(x @ moe.w_gate, dim=-1)
    out = 0.0
    for k in range(moe.n_exps):
        dropped = x if masks is None else x * masks[k] / (1 - moe.dropout_prob)
        if moe.bias is not None:
            dropped = dropped - (moe.bias[k] if moe.bias.size(1) > 1 else moe.bias[k, 0])
        out = out + gates[..., k : k + 1] * (dropped @ moe.experts[k])
    return out


def assert_same_output_and_gradients(fast: torch.Tensor, slow: torch.Tensor, inputs: list[torch.Tensor]) -> None:
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    fast_grads = torch.autograd.grad(fast.square().sum(), inputs, allow_unused=True)
    slow_grads = torch.autograd.grad(slow.square().sum(), inputs, allow_unused=True)
    for a, b in zip(fast_grads, slow_grads):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def randomised_moe(modulation: str, dropout_prob: float = 0.2) -> MoEAdaptor:
    moe = modulation_adaptor(12, 7, 4, dropout_prob, max_len=5, modulation=modulation).double()
    moe.noise = False
    with torch.no_grad():
        for p in moe.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    return moe


@pytest.mark.parametrize("modulation", ["position", "global", "none"])
def test_moe_efficient_path_equals_naive_loop_in_eval(modulation: str) -> None:
    torch.manual_seed(0)
    moe = randomised_moe(modulation).eval()
    x = torch.randn(3, 5, 12, dtype=torch.float64, requires_grad=True)
    assert_same_output_and_gradients(moe(x), naive_moe(moe, x), [x, *moe.parameters()])


@pytest.mark.parametrize("modulation", ["position", "global"])
def test_moe_efficient_path_equals_naive_loop_in_training(modulation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    moe = randomised_moe(modulation).train()
    x = torch.randn(3, 5, 12, dtype=torch.float64, requires_grad=True)
    masks = [torch.rand(3 * 5, 12) < 0.8 for _ in range(moe.n_exps)]
    draws = iter(masks)
    monkeypatch.setattr(kernels, "bernoulli_keep_", lambda mask, keep_prob, scratch=None: mask.copy_(next(draws)))
    fast = moe(x)
    slow = naive_moe(moe, x, [m.view(3, 5, 12) for m in masks])
    assert_same_output_and_gradients(fast, slow, [x, *moe.parameters()])


@pytest.mark.parametrize("training", [True, False])
def test_moe_skips_all_zero_rows_exactly(training: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    torch.manual_seed(0)
    moe = randomised_moe("position").train(training)
    x = torch.randn(4, 5, 12, dtype=torch.float64)
    x[1:, 3:] = 0  # right padding: rows (b, l) with l >= 3 are zero for b >= 1
    active = x.reshape(-1, 12).any(-1)
    masks = [torch.rand(4 * 5, 12) < 0.8 for _ in range(moe.n_exps)]
    draws = iter(masks)
    monkeypatch.setattr(
        kernels, "bernoulli_keep_", lambda mask, keep_prob, scratch=None: mask.copy_(next(draws)[active])
    )
    fast = moe(x)
    slow = naive_moe(moe, x, [m.view(4, 5, 12) for m in masks] if training else None)
    assert_same_output_and_gradients(fast, slow, list(moe.parameters()))


@pytest.mark.parametrize("modulation", ["position", "global", "none"])
@pytest.mark.parametrize("training", [True, False])
def test_moe_lookup_equals_forward_on_gathered_rows(modulation: str, training: bool) -> None:
    """Per-item gates (and, in evaluation, the per-item mixture) then gather == the adaptor on table[ids]."""
    moe = randomised_moe(modulation).train(training)
    moe.noise = True
    table = torch.randn(9, 12, dtype=torch.float64)
    table[0] = 0  # the padding row
    ids = torch.randint(0, 9, (4, 5))
    params = list(moe.parameters())
    torch.manual_seed(1)
    fast = moe.lookup(table, ids)
    torch.manual_seed(1)
    slow = moe(table[ids])
    assert_same_output_and_gradients(fast, slow, params)


def test_moe_each_expert_draws_its_own_mask() -> None:
    torch.manual_seed(0)
    moe = MoEAdaptor(16, 4, 3, 0.5, noise=False).train()
    with torch.no_grad():
        moe.experts.copy_(torch.eye(16)[None, :, :4].expand(3, -1, -1))  # each expert reads x[:4]
        moe.w_gate.zero_()
    x = torch.ones(2000, 16)
    out = moe(x)  # mean over 3 experts of independent {0, 2} draws -> values in {0, 2/3, 4/3, 2}
    values = torch.unique((out * 3 / 2).round())
    assert set(values.tolist()) == {0.0, 1.0, 2.0, 3.0}


def test_moe_gate_noise_only_in_training() -> None:
    torch.manual_seed(0)
    moe = PositionModulatedAdaptor(32, 8, 8, 0.2, max_len=10)
    x = torch.randn(64, 10, 32)
    moe.train()
    noisy_a, noisy_b = moe.gate_logits(x), moe.gate_logits(x)
    assert not torch.equal(noisy_a, noisy_b)
    # zero-initialised router and noise weights: logits = ε · (softplus(0) + 0.01)
    assert noisy_a.std().item() == pytest.approx(math.log(2) + 0.01, rel=0.03)
    moe.eval()
    assert torch.equal(moe.gate_logits(x), torch.zeros(64, 10, 8))
    assert torch.equal(moe(x), moe(x))


def test_moe_parameter_shapes() -> None:
    position = PositionModulatedAdaptor(768, 300, 8, 0.2, max_len=50)
    glob = MoEAdaptor(768, 300, 8, 0.2)
    none = MoEAdaptor(768, 300, 8, 0.2, whitening=False)
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(position) == 8 * (768 * 300 + 50 * 768) + 2 * 768 * 8
    assert count(glob) == 8 * (768 * 300 + 768) + 2 * 768 * 8
    assert count(none) == 8 * 768 * 300 + 2 * 768 * 8
    assert position.experts.std().item() == pytest.approx(0.02, rel=0.05)
    assert not position.bias.any() and not position.w_gate.any() and not position.w_noise.any()
    with pytest.raises(ValueError):
        position(torch.randn(2, 49, 768))


@pytest.mark.parametrize("modulation", ["position", "global", "none"])
def test_moe_per_item_dropout_shares_one_mask_per_item(modulation: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dropout_per_item`: the naive loop with each position's mask taken from its item's row of one per-item mask."""
    torch.manual_seed(0)
    moe = randomised_moe(modulation).train()
    moe.dropout_per_item = True
    table = torch.randn(9, 12, dtype=torch.float64)
    table[0] = 0  # the padding row
    ids = torch.tensor([[3, 5, 3, 0, 0], [5, 5, 8, 1, 0], [8, 3, 0, 0, 0]])
    items = torch.unique(ids[ids > 0])
    masks = [torch.rand(len(items), 12) < 0.8 for _ in range(moe.n_exps)]
    draws = iter(masks)
    monkeypatch.setattr(kernels, "bernoulli_keep_", lambda mask, keep_prob, scratch=None: mask.copy_(next(draws)))
    fast = moe.lookup(table, ids)
    position = torch.searchsorted(items, ids.clamp(min=1))  # each id's row among the distinct items
    per_position = [m[position] for m in masks]
    slow = naive_moe(moe, table[ids], per_position)
    assert_same_output_and_gradients(fast, slow, list(moe.parameters()))


def test_tedrec_rejects_an_unknown_adaptor_dropout() -> None:
    with pytest.raises(ValueError, match="adaptor_dropout must be one of position, item"):
        modulation_adaptor(12, 7, 4, 0.2, max_len=5, adaptor_dropout="expert")
