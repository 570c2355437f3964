"""The text-side-information baselines SASRecF, FDSA, DIF-SR and SMLP4Rec (digest §5, §6, §8, §11)."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from baselines.difsr import DIFAttention
from baselines.fusion_layers import ConcatFusion, VanillaAttention, item_features
from baselines.smlp4rec import SMLPBlock
from benchmark.errors import TedbenchError
from benchmark.layers.blocks import causal_padding_mask
from benchmark.model import DatasetInfo, gather_last
from benchmark.registry import create_model, get_model
from tests import modelkit
from tests.modelkit import SMALL, ml1m_model, text_matrix, trainable

MODELS = ("SASRecF", "FDSA", "DIF-SR", "SMLP4Rec")
# (model, overrides) for the per-variant invariants
VARIANTS = [
    ("SASRecF", {}),
    ("SASRecF", {"fusion_layers": 2}),
    ("FDSA", {}),
    ("FDSA", {"random_text": True}),
    ("DIF-SR", {"fusion_type": "gate"}),
    ("DIF-SR", {"fusion_type": "sum"}),
    ("DIF-SR", {"fusion_type": "concat"}),
    ("SMLP4Rec", {}),
    ("SMLP4Rec", {"n_layers": 1}),
    ("SMLP4Rec", {"n_layers": 3}),
]
CAUSAL = [("SASRecF", {}), ("FDSA", {}), ("DIF-SR", {"fusion_type": "sum"})]
N_ITEMS, MAX_LEN, TEXT_DIM = 40, 10, 12


small_model = partial(modelkit.small_model, seed=0)
right_padded = partial(modelkit.right_padded, max_len=MAX_LEN, n_items=N_ITEMS, seed=1)


# -- registry, parameters, errors ------------------------------------------------------------------


def test_registry_entries() -> None:
    for name in MODELS:
        entry = get_model(name)
        assert entry.needs_text and entry.defaults["learning_rate"] == 1e-3
        assert entry.defaults["hidden_size"] == 300
    assert get_model("SASRecF").defaults["fusion_layers"] == 1
    assert get_model("FDSA").defaults["random_text"] is False
    difsr = get_model("DIF-SR").defaults
    assert (difsr["fusion_type"], difsr["attribute_hidden_size"], difsr["lambda_attr"]) == ("gate", 300, 10.0)
    backbone = ("n_layers", "n_heads", "inner_size", "hidden_dropout_prob", "attn_dropout_prob")
    assert tuple(difsr[key] for key in backbone) == (2, 2, 256, 0.5, 0.5)
    smlp = get_model("SMLP4Rec").defaults
    assert (smlp["n_layers"], smlp["expansion_factor"], smlp["hidden_dropout_prob"]) == (2, 3, 0.5)
    entry = get_model("DIF-SR")  # head counts and widths vary only together, through the `preset` dimension
    assert not {"n_heads", "attribute_hidden_size", "hidden_size"} & set(entry.search_space)
    for preset in entry.search_space["preset"].choices:
        config = entry.config({"preset": preset})
        assert config["hidden_size"] % config["n_heads"] == config["attribute_hidden_size"] % config["n_heads"] == 0


def expected_parameters(name: str, text_dim: int, n_items: int = 3417, length: int = 50, d: int = 300) -> int:
    """Trainable parameters at the defaults, counted from the architecture by hand."""
    linear = lambda i, o, bias=True: i * o + (o if bias else 0)  # noqa: E731
    layer_norm = 2 * d
    ffn = linear(d, 256) + linear(256, d) + layer_norm
    transformer_layer = 4 * linear(d, d) + layer_norm + ffn  # 516,556 (digest §0.4)
    adapter = linear(text_dim, d)
    sasrec = n_items * d + length * d + layer_norm + 2 * transformer_layer
    if name == "SASRecF":
        return sasrec + adapter + linear(2 * d, d)
    if name == "FDSA":
        return sasrec + adapter + 2 * transformer_layer + linear(2 * d, d)
    if name == "DIF-SR":
        d_a = 300
        gate = linear(length, length) + linear(length, 1)
        dif_layer = 6 * linear(d, d) + 2 * linear(d_a, d_a) + gate + layer_norm + ffn
        return n_items * d + length * d + linear(text_dim, d_a) + layer_norm + 2 * dif_layer
    if name == "SMLP4Rec":
        block = sum(2 * n * 3 * n for n in (2, length, d)) + layer_norm  # three bias-free MLPs + LN
        return n_items * d + adapter + block + layer_norm
    raise KeyError(name)


@pytest.mark.parametrize("text_dim", [384, 768])
@pytest.mark.parametrize("name", MODELS)
def test_parameter_count_on_ml1m_shapes(name: str, text_dim: int) -> None:
    model = ml1m_model(name, text_dim)
    assert trainable(model) == expected_parameters(name, text_dim)
    assert "text.table" not in model.state_dict() and not model.text.table.requires_grad


def test_parameter_counts_pinned() -> None:
    pinned = {"SASRecF": 2_369_612, "FDSA": 3_402_724, "DIF-SR": 2_916_914, "SMLP4Rec": 1_696_824}
    assert {name: expected_parameters(name, 384) for name in MODELS} == pinned


@pytest.mark.parametrize("name", MODELS)
def test_text_is_required(name: str) -> None:
    with pytest.raises(ValueError, match="item-text"):
        create_model(name, DatasetInfo(n_items=N_ITEMS, max_len=MAX_LEN), SMALL[name].config)


def test_difsr_rejects_unsupported_options() -> None:
    with pytest.raises(TedbenchError, match="lambda_attr"):
        small_model("DIF-SR", lambda_attr=-1.0)
    with pytest.raises(TedbenchError, match="fusion_type"):
        small_model("DIF-SR", fusion_type="max")
    with pytest.raises(TedbenchError, match="attribute_hidden_size 9 is not a multiple of n_heads"):
        small_model("DIF-SR", attribute_hidden_size=9)


def test_smlp_shares_one_block_across_layers() -> None:
    one, three = small_model("SMLP4Rec", n_layers=1), small_model("SMLP4Rec", n_layers=3)
    assert trainable(one) == trainable(three)
    seq, length = right_padded([10, 6, 1])
    torch.manual_seed(0)
    twice = small_model("SMLP4Rec", n_layers=2).eval()
    x = twice.channels(seq)
    by_hand = twice.layer_norm(twice.block(twice.block(x))[:, 0])
    torch.testing.assert_close(twice.hidden_states(seq), by_hand)


# -- invariants ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "overrides"), VARIANTS)
def test_encode_reads_last_real_position_and_eval_is_deterministic(name: str, overrides: dict) -> None:
    model = small_model(name, **overrides).eval()
    seq, length = right_padded([10, 7, 3, 1])
    torch.testing.assert_close(
        model.encode(seq, length), gather_last(model.hidden_states(seq), length), rtol=1e-5, atol=1e-6
    )
    scores = model.full_sort_scores(seq, length)
    assert scores.shape == (4, N_ITEMS) and torch.equal(scores, model.full_sort_scores(seq, length))
    torch.testing.assert_close(scores, model.encode(seq, length) @ model.item_embedding.weight.t())
    model.train()
    assert not torch.equal(model.encode(seq, length), model.encode(seq, length))  # dropout is active


@pytest.mark.parametrize(("name", "overrides"), CAUSAL)
def test_no_future_leakage(name: str, overrides: dict) -> None:
    model = small_model(name, **overrides).eval()
    seq, _ = right_padded([10, 10, 8, 5])
    base = model.hidden_states(seq)
    for i in range(MAX_LEN - 1):
        changed = seq.clone()
        changed[:, i + 1 :] = torch.randint(1, N_ITEMS, changed[:, i + 1 :].shape)
        torch.testing.assert_close(model.hidden_states(changed)[:, : i + 1], base[:, : i + 1], rtol=0, atol=1e-5)


@pytest.mark.parametrize(("name", "overrides"), CAUSAL)
def test_padding_does_not_reach_valid_positions(name: str, overrides: dict) -> None:
    model = small_model(name, **overrides).eval()
    lengths = [10, 7, 3, 1]
    seq, _ = right_padded(lengths)
    base = model.hidden_states(seq)
    with torch.no_grad():
        model.item_embedding.weight[0].normal_(0, 5.0)  # the padding slots' ID vector ...
        model.text.table[0].normal_(0, 5.0)  # ... and their text
    after = model.hidden_states(seq)
    for b, n in enumerate(lengths):
        torch.testing.assert_close(after[b, :n], base[b, :n], rtol=0, atol=1e-5)
    assert not torch.allclose(after[1, 7:], base[1, 7:])


@pytest.mark.parametrize("fusion_type", ["gate", "concat"])
def test_difsr_gate_and_concat_fuse_unmasked_scores(fusion_type: str) -> None:
    """As the official code: the fusion reads every key's score (padding included) before the mask."""
    model = small_model("DIF-SR", fusion_type=fusion_type).eval()
    with torch.no_grad():  # weights large enough for the fusion's dependence on the scores to show
        for parameter in model.layers.parameters():
            parameter.normal_(0, 0.3)
    seq, length = right_padded([7, 3])
    base = model.encode(seq, length)
    with torch.no_grad():
        model.item_embedding.weight[0].normal_(0, 5.0)
    assert not torch.allclose(model.encode(seq, length), base, atol=1e-6)


# -- against direct transcriptions of the references -----------------------------------------------


def test_sasrecf_is_concat_linear_then_sasrec_embedding() -> None:
    model = small_model("SASRecF").eval()
    seq, length = right_padded([10, 4])
    text = torch.relu(model.text.linear(text_matrix(N_ITEMS, TEXT_DIM)[seq]))
    layer = model.concat_layer.layers[0]
    fused = torch.cat([model.item_embedding.weight[seq], text], dim=-1) @ layer.weight.t() + layer.bias
    h0 = F.layer_norm(
        fused + model.embedding.position_embedding.weight,
        (16,),
        model.embedding.layer_norm.weight,
        model.embedding.layer_norm.bias,
        eps=1e-12,
    )
    expected = model.encoder(h0, causal_padding_mask(seq))
    torch.testing.assert_close(model.hidden_states(seq), expected, rtol=1e-5, atol=1e-6)
    assert len(small_model("SASRecF", fusion_layers=3).concat_layer.layers) == 3


def test_fdsa_matches_unisrec_forward() -> None:
    model = small_model("FDSA").eval()
    seq, length = right_padded([10, 6, 2])
    emb = model.embedding
    ln = lambda x: F.layer_norm(x, (16,), emb.layer_norm.weight, emb.layer_norm.bias, eps=1e-12)  # noqa: E731
    pos = emb.position_embedding.weight
    mask = causal_padding_mask(seq)
    item = model.encoder(ln(model.item_embedding.weight[seq] + pos), mask)
    text = model.text_encoder(ln(torch.relu(model.text.linear(text_matrix(N_ITEMS, TEXT_DIM)[seq])) + pos), mask)
    both = torch.cat([gather_last(item, length), gather_last(text, length)], dim=-1)
    expected = ln(model.concat_layer.layers[0](both))
    torch.testing.assert_close(model.encode(seq, length), expected, rtol=1e-5, atol=1e-6)


def test_fdsa_random_text_replaces_the_table() -> None:
    real, noisy = small_model("FDSA"), small_model("FDSA", random_text=True)
    assert torch.equal(real.text.table, text_matrix(N_ITEMS, TEXT_DIM))
    assert not torch.allclose(noisy.text.table, real.text.table)
    assert noisy.text.table[1:].std().item() == pytest.approx(0.02, rel=0.2) and not noisy.text.table[0].any()


def official_dif_attention(layer: DIFAttention, x, attr, pos, mask) -> torch.Tensor:
    """Transcription of the official DIFMultiHeadAttention.forward (eval mode, one attribute field)."""
    heads = layer.n_heads
    split = lambda t: t.view(*t.shape[:-1], heads, -1).transpose(-3, -2)  # noqa: E731
    item = split(layer.query(x)) @ split(layer.key(x)).transpose(-1, -2)
    position = split(layer.query_p(pos)) @ split(layer.key_p(pos)).transpose(-1, -2)
    attribute = split(layer.query_a(attr)) @ split(layer.key_a(attr)).transpose(-1, -2)
    table = attribute.unsqueeze(-2)  # [B, H, L, 1, L]
    position = position.expand_as(item)
    if layer.fusion_type == "sum":
        scores = table.sum(-2) + item + position
    elif layer.fusion_type == "concat":
        scores = layer.fusion(torch.cat([table.flatten(-2), item, position], dim=-1))
    else:
        stacked = torch.cat([table, item.unsqueeze(-2), position.unsqueeze(-2)], dim=-2)  # [B, H, L, 3, L]
        weights = torch.softmax(layer.fusion.projection(stacked).squeeze(-1), dim=-1)
        scores = (stacked * weights.unsqueeze(-1)).sum(-2)
    scores = scores / math.sqrt(x.size(-1) // heads) + mask
    context = (torch.softmax(scores, dim=-1) @ split(layer.value(x))).transpose(-3, -2).flatten(-2)
    return layer.layer_norm(layer.dense(context) + x)


@pytest.mark.parametrize("fusion_type", ["gate", "sum", "concat"])
def test_dif_attention_matches_official_transcription(fusion_type: str) -> None:
    torch.manual_seed(0)
    layer = DIFAttention(16, 8, 2, MAX_LEN, fusion_type, 0.5, 0.5, 1e-12).eval()
    for parameter in layer.parameters():
        nn.init.normal_(parameter, std=0.3)
    seq, length = right_padded([10, 7, 3])
    x, attr, pos = torch.randn(3, MAX_LEN, 16), torch.randn(3, MAX_LEN, 8), torch.randn(MAX_LEN, 16)
    mask = causal_padding_mask(seq)
    expected = official_dif_attention(layer, x, attr, pos, mask)
    torch.testing.assert_close(layer(x, attr, pos, mask), expected, rtol=1e-5, atol=1e-5)
    rows = length - 1
    torch.testing.assert_close(
        layer(x, attr, pos, mask, rows).squeeze(1), gather_last(expected, length), rtol=1e-5, atol=1e-5
    )


def test_difsr_input_has_no_position_embedding_and_raw_streams() -> None:
    model = small_model("DIF-SR", n_layers=1).eval()
    seq, _ = right_padded([10, 5])
    layer = model.layers[0]
    x = F.layer_norm(model.item_embedding.weight[seq], (16,), model.layer_norm.weight, model.layer_norm.bias, eps=1e-12)
    attr = torch.relu(model.text.linear(text_matrix(N_ITEMS, TEXT_DIM)[seq]))
    expected = layer.feed_forward(
        official_dif_attention(layer.attention, x, attr, model.position_embedding.weight, causal_padding_mask(seq))
    )
    torch.testing.assert_close(model.hidden_states(seq), expected, rtol=1e-5, atol=1e-5)


def official_smlp(block: SMLPBlock, x: torch.Tensor) -> torch.Tensor:
    """Transcription of the released SMLP.forward (eval mode): mixers along transposed axes."""

    def mlp(axis_mlp, t):
        return F.linear(F.gelu(F.linear(t, axis_mlp.fc1.weight)), axis_mlp.fc2.weight)

    xn = block.norm(x)
    x0 = mlp(block.channel, xn.transpose(1, 3)).transpose(3, 1)
    x1 = mlp(block.sequence, xn.transpose(2, 3)).transpose(3, 2)
    return x0 + x1 + mlp(block.hidden, xn)


def test_smlp_block_matches_released_code_and_read_path() -> None:
    torch.manual_seed(0)
    block = SMLPBlock(2, MAX_LEN, 16, 3, 0.5).eval()
    for parameter in block.parameters():
        nn.init.normal_(parameter, std=0.3)
    x = torch.randn(4, 2, MAX_LEN, 16)
    expected = official_smlp(block, x)
    torch.testing.assert_close(block(x), expected, rtol=1e-5, atol=1e-5)
    rows, batch = torch.tensor([9, 0, 4, 6]), torch.arange(4)
    torch.testing.assert_close(
        block.read(x[:, 0], x[batch, :, rows], rows), expected[batch, 0, rows], rtol=1e-5, atol=1e-5
    )
    x_0, x_rows = block.partial(x, rows)
    torch.testing.assert_close(x_0, expected[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x_rows, expected[batch, :, rows], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        block.read(x_0, x_rows, rows), official_smlp(block, expected)[batch, 0, rows], rtol=1e-5, atol=1e-5
    )
    assert block.norm.eps == 1e-5 and all(m.bias is None for m in block.modules() if isinstance(m, nn.Linear))


# -- shared blocks ---------------------------------------------------------------------------------


def test_item_features_table_path_equals_per_position() -> None:
    model = small_model("SMLP4Rec")
    seq, _ = right_padded([10, 4, 1])
    grads = []
    for n_items in (1, 10**9):  # table path, per-position path
        model.zero_grad()
        out = item_features(seq, n_items, model.text.all_items, model.text)
        (out * torch.arange(out.numel()).view_as(out)).sum().backward()
        grads.append((out.detach(), model.text.linear.weight.grad.clone(), model.text.linear.bias.grad.clone()))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


def test_concat_fusion_and_vanilla_attention() -> None:
    torch.manual_seed(0)
    a, b = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    fusion = ConcatFusion(2, 4, 6, n_layers=2)
    first, second = fusion.layers
    torch.testing.assert_close(fusion(a, b), second(torch.relu(first(torch.cat([a, b], -1)))))
    gate = VanillaAttention(4, 4)
    shared = torch.randn(5, 4)  # broadcast input, projected at its own size
    stacked = torch.stack([a, shared.expand_as(a)], dim=-2)
    weights = torch.softmax(gate.projection(stacked).squeeze(-1), dim=-1)
    torch.testing.assert_close(gate([a, shared]), (stacked * weights.unsqueeze(-1)).sum(-2))
