"""`prefix_only` models encode rows by length groups: the same values as encoding the full padded batch."""

from __future__ import annotations

import pytest
import torch

from benchmark.model import DatasetInfo, SequentialModel, encode_by_length
from benchmark.registry import create_model, list_models
from tests.modelkit import SMALL, right_padded, small_model

PREFIX_ONLY = ["SASRec", "SASRecF", "UniSRec", "FDSA", "S3-Rec"]


def small(name: str) -> SequentialModel:
    if name in SMALL:
        return small_model(name, seed=0)
    torch.manual_seed(0)
    return create_model(name, DatasetInfo(n_items=40, max_len=10), {"hidden_size": 16, "inner_size": 24, "n_heads": 2})


@pytest.mark.parametrize("name", PREFIX_ONLY)
def test_length_groups_equal_the_full_batch(name: str) -> None:
    model = small(name).double().eval()
    assert model.prefix_only
    lengths = [min(n, model.info.max_len) for n in (1, 2, 3, 3, 5, 7, 8, 10, 10, 4, 6, 2, 9)]
    seq, length = right_padded(lengths, model.info.max_len, model.info.n_items, seed=1)
    with torch.no_grad():
        full = model.encode(seq, length)
        grouped = encode_by_length(model.encode, seq, length, groups=4)
    torch.testing.assert_close(grouped, full, rtol=1e-9, atol=1e-10)


def test_length_groups_pass_gradients_to_every_row() -> None:
    model = small("SASRec").double().eval()
    seq, length = right_padded([1, 3, 5, 8, 10, 2], model.info.max_len, model.info.n_items, seed=2)
    targets = torch.randn(len(seq), 16, dtype=torch.float64)
    grads = []
    for encode in (model.encode, lambda s, n: encode_by_length(model.encode, s, n, groups=3)):
        model.zero_grad()
        (encode(seq, length) * targets).sum().backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize(
    "name", [n for n in list_models() if "TedRec" in n or n in ("FMLP-Rec", "FEARec", "DIF-SR", "SMLP4Rec", "DLFS-Rec")]
)
def test_models_that_mix_positions_are_not_prefix_only(name: str) -> None:
    assert not small(name).prefix_only


INPUT_MIXES = ["TedRec", "UniSRec+TedRec", "SASRecF+TedRec"]


@pytest.mark.parametrize("name", INPUT_MIXES)
def test_an_encoder_after_a_position_mixing_input_runs_by_length_groups(name: str) -> None:
    model = small(name).double().eval()
    assert model.input_mixes_positions and not model.prefix_only
    lengths = [min(n, model.info.max_len) for n in (1, 2, 3, 3, 5, 7, 8, 10, 10, 4, 6, 2, 9)]
    seq, length = right_padded(lengths, model.info.max_len, model.info.n_items, seed=3)
    targets = torch.randn(len(seq), model.config["hidden_size"], dtype=torch.float64)
    values, grads = [], []
    for encode in (model.encode, model.encode_rows):
        model.zero_grad()
        out = encode(seq, length)
        (out * targets).sum().backward()
        values.append(out.detach())
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    torch.testing.assert_close(values[1], values[0], rtol=1e-9, atol=1e-10)
    assert len(grads[0]) == len(grads[1]) > 0
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_only_the_fused_sasrec_family_groups_after_its_input() -> None:
    mixing = {n for n in list_models() if getattr(small(n), "input_mixes_positions", False)}
    assert mixing == set(INPUT_MIXES)
