"""Item attributes (ml-1m genres, Amazon categories): processed, stored, loaded, and DIF-SR's attribute predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from benchmark.data.process import build_sequences
from benchmark.data.publish import publish_sequences
from benchmark.data.raw import RawInteractions
from benchmark.data.store import ATTRIBUTES_FILE, load_sequences
from benchmark.engine.run import load_dataset
from benchmark.model import Batch, DatasetInfo
from benchmark.registry import create_model
from tests.modelkit import SMALL, right_padded, text_matrix

GENRES = {"a": ["Drama"], "b": ["Comedy", "Drama"], "c": []}


def raw_with_attributes(attributes: dict[str, list[str]] | None) -> RawInteractions:
    users = np.array(["u1"] * 3 + ["u2"] * 3, dtype=object)
    items = np.array(["a", "b", "c", "b", "a", "c"], dtype=object)
    return RawInteractions(
        users, items, None, {"a": "A.", "b": "B.", "c": "C."}, item_attributes=attributes, prefiltered=True
    )


def test_attributes_are_processed_stored_and_indexed(tmp_path) -> None:
    seqs = build_sequences(raw_with_attributes(GENRES))
    assert seqs.item_tokens == ["a", "b", "c"] and seqs.item_attributes == [["Drama"], ["Comedy", "Drama"], []]
    index = seqs.attribute_index()  # ids in sorted token order: Comedy 1, Drama 2; row 0 = padding item
    assert index.tolist() == [[0, 0], [2, 0], [1, 2], [0, 0]]
    publish_sequences(tmp_path / "processed" / "x", seqs, {"source_files": {}}, area="prepare", force=False)
    loaded = load_sequences(tmp_path / "processed" / "x")
    assert loaded.item_attributes == seqs.item_attributes
    assert loaded.subset(np.array([1])).item_attributes == seqs.item_attributes
    _, info, provenance = load_dataset(tmp_path, "x", None, needs_text=False, max_len=4)
    assert torch.equal(info.item_attributes, torch.from_numpy(index)) and provenance["item_attributes"] == 2


def test_sources_without_attributes_store_none(tmp_path) -> None:
    seqs = build_sequences(raw_with_attributes(None))
    assert seqs.item_attributes is None and seqs.attribute_index() is None
    publish_sequences(tmp_path / "processed" / "y", seqs, {"source_files": {}}, area="prepare", force=False)
    assert not (tmp_path / "processed" / "y" / ATTRIBUTES_FILE).exists()
    _, info, provenance = load_dataset(tmp_path, "y", None, needs_text=False, max_len=4)
    assert info.item_attributes is None and "item_attributes" not in provenance


N_ITEMS, MAX_LEN, N_ATTRIBUTES = 40, 10, 5


def difsr(lambda_attr: float, attributes: torch.Tensor | None, seed: int = 0):
    torch.manual_seed(seed)
    info = DatasetInfo(N_ITEMS, MAX_LEN, text_matrix(N_ITEMS, 12), attributes)
    config = {
        **SMALL["DIF-SR"].config,
        "hidden_dropout_prob": 0.0,
        "attn_dropout_prob": 0.0,
        "lambda_attr": lambda_attr,
    }
    return create_model("DIF-SR", info, config)


def attribute_table(seed: int = 0) -> torch.Tensor:
    """Up to 3 attribute ids (1..N_ATTRIBUTES) per item, 0-padded; row 0 (padding item) empty."""
    generator = torch.Generator().manual_seed(seed)
    table = torch.randint(0, N_ATTRIBUTES + 1, (N_ITEMS, 3), generator=generator)
    table[:, 0] = torch.where(table[:, 0] == 0, 1, table[:, 0])  # every real item has at least one
    table[0] = 0
    return table


def test_difsr_attribute_loss_is_ce_plus_lambda_bce_on_the_targets_attributes() -> None:
    attributes = attribute_table()
    model = difsr(10.0, attributes).train()
    assert model.attribute_predictor.out_features == N_ATTRIBUTES
    seq, length = right_padded([10, 4, 1], MAX_LEN, N_ITEMS, seed=1)
    target = torch.tensor([3, 7, 11])
    query = model.encode(seq, length)
    labels = torch.zeros(3, N_ATTRIBUTES)
    for row, item in enumerate(target.tolist()):
        for attribute in attributes[item].tolist():
            if attribute:
                labels[row, attribute - 1] = 1.0
    assert torch.equal(model.attribute_labels(target), labels)
    ce = F.cross_entropy(query @ model.item_embedding.weight.t(), target)
    bce = F.binary_cross_entropy_with_logits(model.attribute_predictor(query), labels)  # mean over rows and attributes
    loss = model.loss(Batch(seq, length, target))
    torch.testing.assert_close(loss, ce + 10.0 * bce)
    loss.backward()
    assert model.attribute_predictor.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("lambda_attr, attributes", [(0.0, attribute_table()), (10.0, None)])
def test_difsr_without_lambda_or_attributes_is_plain_ce(lambda_attr: float, attributes) -> None:
    model = difsr(lambda_attr, attributes).train()
    assert model.attribute_predictor is None
    seq, length = right_padded([10, 4], MAX_LEN, N_ITEMS, seed=1)
    target = torch.tensor([3, 7])
    expected = F.cross_entropy(model.encode(seq, length) @ model.item_embedding.weight.t(), target)
    torch.testing.assert_close(model.loss(Batch(seq, length, target)), expected)
