"""Table 4's plug-ins: each backbone with TedRec's fusion around its item-sequence input."""

from __future__ import annotations

import pytest
import torch

from benchmark.registry import get_model, list_models
from tedrec.plugin import BACKBONES, FUSION_DEFAULTS, SUFFIX, TextIdFusion
from tests.modelkit import SMALL, right_padded, small_model, trainable

PLUGINS = [name + SUFFIX for name in BACKBONES]


@pytest.mark.parametrize("backbone", BACKBONES)
def test_registered_with_backbone_and_fusion_options(backbone: str) -> None:
    entry, base = get_model(backbone + SUFFIX), get_model(backbone)
    assert entry.needs_text and issubclass(entry.cls, base.cls)
    assert entry.defaults == {**FUSION_DEFAULTS, **base.defaults}
    assert entry.search_space == base.search_space and entry.presets == base.presets


@pytest.mark.parametrize("backbone", BACKBONES)
def test_plugin_is_the_backbone_plus_the_fusion(backbone: str) -> None:
    name = backbone + SUFFIX
    plugin = small_model(name, seed=0)
    base = small_model(
        backbone, seed=0, **{k: v for k, v in SMALL[name].config.items() if k in get_model(backbone).defaults}
    )
    assert trainable(plugin) == trainable(base) + trainable(plugin.tedrec_fusion)
    assert trainable(plugin.tedrec_fusion) > 0 and isinstance(plugin.tedrec_fusion, TextIdFusion)
    # the backbone's own weights are created (and initialised) exactly as without the plug-in
    plugin_state = plugin.state_dict()
    for key, value in base.state_dict().items():
        assert torch.equal(plugin_state[key], value), key


@pytest.mark.parametrize("backbone", ["SASRecF", "DIF-SR"])
def test_sequence_input_is_the_fusion_of_the_backbones_input(backbone: str) -> None:
    name = backbone + SUFFIX
    small = SMALL[name]
    model = small_model(name, seed=0).eval()
    seq, _ = right_padded([small.max_len, 3], small.max_len, small.n_items, seed=1)
    own = get_model(backbone).cls.sequence_input(model, seq)
    fusion = model.tedrec_fusion
    expected = fusion.fusion(own, fusion.adaptor(fusion.text[seq]))
    torch.testing.assert_close(model.sequence_input(seq), expected)
    assert not torch.allclose(model.sequence_input(seq), own)


def test_dlfsrec_plugin_fuses_the_mean_stream() -> None:
    name = "DLFS-Rec" + SUFFIX
    small = SMALL[name]
    model = small_model(name, seed=0).eval()
    seq, length = right_padded([small.max_len, 3], small.max_len, small.n_items, seed=1)
    fused_model = model.encode(seq, length)
    model.tedrec_fusion.fusion.forward = lambda item, text: item  # fusion off: the backbone's own output
    torch.testing.assert_close(model.encode(seq, length), get_model("DLFS-Rec").cls.encode(model, seq, length))
    assert not torch.allclose(fused_model, model.encode(seq, length))


@pytest.mark.parametrize("name", PLUGINS)
def test_ablation_switches_reach_the_plugin(name: str) -> None:
    model = small_model(name, seed=0, use_id_filter=False, use_gates=False, modulation="global")
    fusion = model.tedrec_fusion.fusion
    assert fusion.id_filter is None and fusion.id_gate is None
    assert model.tedrec_fusion.adaptor.bias.shape[1] == 1  # one (text_dim,) vector per expert, not one per position


def _id_tables(model: torch.nn.Module, n_items: int) -> dict[str, torch.nn.Embedding]:
    """The model's ID tables (one row per item id; position tables have max_len rows)."""
    return {
        name: m
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Embedding) and m.num_embeddings == n_items
    }


@pytest.mark.parametrize("n_items", [12, 400])  # per-item tables gathered (12 ids < 40 slots) / computed per slot
@pytest.mark.parametrize("name", list_models("*" + SUFFIX))
def test_padding_never_reaches_an_id_table(name: str, n_items: int) -> None:
    """The sequence side's gradient leaves row 0 (padding) of every ID table exactly zero."""
    model = small_model(name, n_items=n_items, max_len=10, seed=0).train()
    tables = _id_tables(model, n_items)
    assert tables, name
    seq, length = right_padded([10, 6, 2, 1], 10, n_items, seed=1)
    out = model.encode(seq, length)
    (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(2))).sum().backward()
    for table_name, table in tables.items():
        assert table.weight.grad is not None and table.weight.grad[1:].abs().sum() > 0, table_name
        assert torch.equal(table.weight.grad[0], torch.zeros_like(table.weight.grad[0])), table_name


def test_unisrec_plugin_is_tedrec() -> None:
    """Table 4's "UniSRec w/ ours" row equals TedRec's Table-3 row: the same model, options and search space."""
    entry, tedrec = get_model("UniSRec" + SUFFIX), get_model("TedRec")
    assert issubclass(entry.cls, tedrec.cls) and entry.cls.__init__ is tedrec.cls.__init__
    assert entry.defaults == tedrec.defaults and entry.search_space == tedrec.search_space
    a, b = small_model("UniSRec" + SUFFIX, seed=0), small_model("TedRec", seed=0)
    seq, length = right_padded([8, 3], 8, SMALL["TedRec"].n_items, seed=1)
    torch.testing.assert_close(a.eval().encode(seq, length), b.eval().encode(seq, length), rtol=0, atol=0)
