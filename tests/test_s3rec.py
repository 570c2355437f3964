"""S3-Rec (text attributes): pre-training inputs and losses against RecBole's `S3Rec`, fine-tuning, engine stages."""

from __future__ import annotations

import json
from functools import partial

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from baselines.negatives import sample_absent_items
from baselines.s3rec import S3Rec, attribute_nll, right_to_left_padding
from benchmark.layers.blocks import bidirectional_padding_mask, causal_padding_mask
from benchmark.model import Batch
from benchmark.registry import get_model
from tests.modelkit import (
    adam_losses,
    fit_one_epoch,
    ml1m_model,
    right_padded,
    small_model,
    small_splits,
    trainable,
    training_batch,
)

small_s3rec = partial(small_model, "S3-Rec")


def test_registry_entry() -> None:
    entry = get_model("S3-Rec")
    assert entry.needs_text
    d = entry.defaults
    assert (d["aap_weight"], d["mip_weight"], d["map_weight"], d["sp_weight"]) == (1.0, 0.2, 1.0, 0.5)  # RecBole 1.2.0
    assert d["mask_ratio"] == 0.2 and d["pretrain_epochs"] == 300 and d["pretrain_left_padding"]
    assert d["hidden_size"] == 300 and d["n_layers"] == 2 and not d["random_text"] and not d["mask_last_item"]


@pytest.mark.parametrize("text_dim", [768, 384])
def test_parameter_count_on_ml1m_shapes(text_dim: int) -> None:
    sasrec_with_mask_row = 2_073_812 + 300  # SASRec on ML-1M plus the [MASK] row
    expected = sasrec_with_mask_row + (text_dim * 300 + 300) + 4 * (300 * 300 + 300)  # text adapter, 4 heads
    model = ml1m_model("S3-Rec", text_dim)
    assert trainable(model) == expected
    assert model.item_embedding.weight.shape == (3418, 300) and model.mask_token == 3417
    assert "attributes.table" not in model.state_dict()


def test_left_padding_conversion_is_exact() -> None:
    torch.manual_seed(0)
    seq, length = right_padded([7, 1, 4, 7, 2], 7, 30)
    left = right_to_left_padding(seq, length)
    for row, out, n in zip(seq, left, length.tolist()):
        assert torch.equal(out, torch.cat([torch.zeros(7 - n, dtype=row.dtype), row[:n]]))
    stacked = right_to_left_padding(torch.stack([seq, seq + 100 * (seq > 0)]), length)
    assert torch.equal(stacked[0], left) and torch.equal(stacked[1], left + 100 * (left > 0))


def test_absent_item_sampling() -> None:
    torch.manual_seed(0)
    present, _ = right_padded([6, 6, 3], 6, 9)  # rows cover most of the 8 real ids
    draws = sample_absent_items(present, 50, 9)
    assert draws.shape == (3, 50) and (draws >= 1).all() and (draws <= 8).all()
    assert not (draws.unsqueeze(-1) == present.unsqueeze(1)).any()


def test_pretrain_inputs_invariants() -> None:
    torch.manual_seed(0)
    model = small_s3rec(n_items=200, max_len=12)
    lengths = [12, 12, 9, 5, 2, 1, 12, 7] * 40
    seq, length = right_padded(lengths, 12, 200)
    inputs = model.pretrain_inputs(seq, length)
    mask = model.mask_token
    left = right_to_left_padding(seq, length)
    real = left != 0
    assert torch.equal(inputs.positive, left)
    for rows in (
        inputs.masked,
        inputs.negative,
        inputs.segment_masked,
        inputs.segment_positive,
        inputs.segment_negative,
    ):
        assert torch.equal(rows != 0, real)  # same left padding everywhere
    is_masked = inputs.masked == mask
    assert not (is_masked & ~real).any()  # masked positions exclude padding
    assert torch.equal(inputs.masked[~is_masked], left[~is_masked])
    assert 0.15 < is_masked.sum() / real.sum() < 0.25  # mask_ratio 0.2
    negatives = inputs.negative[is_masked]
    assert (negatives >= 1).all() and (negatives < 200).all()
    row_of = torch.arange(len(lengths)).unsqueeze(1).expand_as(left)[is_masked]
    assert not (negatives.unsqueeze(1) == left[row_of]).any()  # absent from the row's sequence
    assert torch.equal(inputs.negative[~is_masked], left[~is_masked])
    pool = seq[seq != 0]
    for b, n in enumerate(lengths):
        masked_segment, pos, neg = (
            inputs.segment_masked[b, -n:],
            inputs.segment_positive[b, -n:],
            inputs.segment_negative[b, -n:],
        )
        if n < 2:
            assert (
                torch.equal(masked_segment, left[b, -n:])
                and torch.equal(pos, left[b, -n:])
                and torch.equal(neg, left[b, -n:])
            )
            continue
        span = (masked_segment == mask).nonzero().squeeze(1)
        assert 1 <= len(span) <= n // 2 and torch.equal(
            span, torch.arange(span[0], span[-1] + 1)
        )  # one contiguous span
        outside = masked_segment != mask
        assert torch.equal(masked_segment[outside], left[b, -n:][outside])
        assert (pos[outside] == mask).all() and torch.equal(pos[~outside], left[b, -n:][~outside])
        assert (neg[outside] == mask).all()
        windows = pool.unfold(0, len(span), 1)
        assert (windows == neg[~outside]).all(1).any()  # copied from the batch's concatenated sequences


def test_mask_last_item_and_right_padded_pretraining() -> None:
    torch.manual_seed(0)
    seq, length = right_padded([10, 6, 3, 1], 10, 40)
    inputs = small_s3rec(mask_last_item=True).pretrain_inputs(seq, length)
    assert (inputs.masked[:, -1] == 40).all()
    right = small_s3rec(pretrain_left_padding=False).pretrain_inputs(seq, length)
    assert torch.equal(right.positive, seq)


def naive_losses(model: S3Rec, inputs) -> dict[str, torch.Tensor]:
    """RecBole's `S3Rec.pretrain` with the text attribute table, on full [B, L, N] scores."""
    mask, n_items = model.mask_token, model.info.n_items

    def forward(seq: torch.Tensor) -> torch.Tensor:
        return model.encoder(model.embedding(model.item_embedding(seq)), bidirectional_padding_mask(seq))

    out = forward(inputs.masked)
    features = F.one_hot(inputs.positive, n_items).to(out.dtype)
    table = model.attributes.all_items()
    bce = lambda p, y: F.binary_cross_entropy(p, y, reduction="none")  # noqa: E731
    is_masked = (inputs.masked == mask).to(out.dtype)
    aap_mask = (inputs.masked != mask).to(out.dtype) * (inputs.masked != 0).to(out.dtype)
    aap = (bce(torch.sigmoid(model.aap_head(out) @ table.t()), features) * aap_mask.unsqueeze(-1)).sum()
    map_ = (bce(torch.sigmoid(model.map_head(out) @ table.t()), features) * is_masked.unsqueeze(-1)).sum()
    mip_out = model.mip_head(out)
    pos = torch.sigmoid((mip_out * model.item_embedding(inputs.positive)).sum(-1))
    neg = torch.sigmoid((mip_out * model.item_embedding(inputs.negative)).sum(-1))
    mip = (bce(torch.sigmoid(pos - neg), torch.ones_like(pos)) * is_masked).sum()
    context = forward(inputs.segment_masked)[:, -1]
    pos_seg, neg_seg = forward(inputs.segment_positive)[:, -1], forward(inputs.segment_negative)[:, -1]
    pos = torch.sigmoid((model.sp_head(context) * pos_seg).sum(-1))
    neg = torch.sigmoid((model.sp_head(context) * neg_seg).sum(-1))
    sp = bce(torch.sigmoid(pos - neg), torch.ones_like(pos)).sum()
    return {"aap": aap, "mip": mip, "map": map_, "sp": sp}


def test_pretrain_losses_equal_recbole_transcription() -> None:
    torch.manual_seed(0)
    model = small_s3rec(mask_ratio=0.3).double().eval()
    seq, length = right_padded([10, 8, 5, 2, 1, 10], 10, 40)
    inputs = model.pretrain_inputs(seq, length)
    ours, reference = model.losses_of(inputs), naive_losses(model, inputs)
    for name in ("aap", "mip", "map", "sp"):
        torch.testing.assert_close(ours[name], reference[name], rtol=1e-9, atol=1e-9)
    assert ours["map"] > 0 and ours["mip"] > 0


def test_chunked_attribute_loss_equals_one_chunk() -> None:
    torch.manual_seed(0)
    query = torch.randn(37, 8, dtype=torch.float64, requires_grad=True)
    table = torch.randn(23, 8, dtype=torch.float64, requires_grad=True)
    label = torch.randint(0, 23, (37,))
    whole = attribute_nll(query, table, label)
    (grad_query, grad_table) = torch.autograd.grad(whole.sum(), (query, table))
    chunked = attribute_nll(query, table, label, chunk_elements=5 * 23)
    torch.testing.assert_close(chunked, whole)
    for got, want in zip(torch.autograd.grad(chunked.sum(), (query, table)), (grad_query, grad_table)):
        torch.testing.assert_close(got, want)
    direct = F.binary_cross_entropy_with_logits(query @ table.t(), F.one_hot(label, 23).double(), reduction="none").sum(
        -1
    )
    torch.testing.assert_close(whole, direct)


def test_pretrain_losses_are_finite_and_decrease() -> None:
    splits, n_items = small_splits()
    torch.manual_seed(0)
    model = small_s3rec(n_items=n_items, max_len=8, hidden_dropout_prob=0.1, attn_dropout_prob=0.1)
    batch = training_batch(model, splits, 128)

    def checked_pretrain_loss(batch: Batch) -> torch.Tensor:
        assert all(torch.isfinite(v) for v in model.pretrain_losses(batch).values())
        return model.pretrain_loss(batch)

    totals = adam_losses(model, batch, steps=12, loss=checked_pretrain_loss)
    assert np.mean(totals[-3:]) < 0.7 * np.mean(totals[:3])


def test_finetuning_scores_and_loss_columns() -> None:
    torch.manual_seed(0)
    model = small_s3rec().eval()
    seq, length = right_padded([10, 4, 1], 10, 40)
    scores = model.full_sort_scores(seq, length)
    assert scores.shape == (3, 40)  # info.n_items columns: the [MASK] row is not a candidate
    assert torch.equal(model.full_sort_scores(seq, length), scores)
    query = model.encode(seq, length)
    training = model.score_items(query, training=True)
    assert training.shape == (3, 41)
    # the same products, but a 41- and a 40-column GEMM may block (and so round) differently on AVX-512
    torch.testing.assert_close(training[:, :40], scores, rtol=1e-6, atol=1e-7)
    target = torch.tensor([3, 5, 40 - 1])
    torch.testing.assert_close(model.loss(Batch(seq, length, target)), F.cross_entropy(training, target))
    # fine-tuning is causal: later items do not change earlier positions
    hidden = model.encoder(model.embedding(model.item_embedding(seq)), causal_padding_mask(seq))
    changed = seq.clone()
    changed[0, 5:] = torch.randint(1, 40, (5,))
    hidden_changed = model.encoder(model.embedding(model.item_embedding(changed)), causal_padding_mask(changed))
    torch.testing.assert_close(hidden_changed[0, :5], hidden[0, :5], rtol=0, atol=1e-5)


def test_engine_runs_pretraining_then_finetuning(tmp_path) -> None:
    splits, n_items = small_splits()
    torch.manual_seed(0)
    model = small_s3rec(n_items=n_items, max_len=8, pretrain_epochs=1)
    metrics = fit_one_epoch(model, splits, tmp_path)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [-1, 0] and log[0]["stage"] == "pretrain"
    assert np.isfinite(log[0]["loss"]) and log[0]["loss"] > 0
    assert metrics["users"] == 60 and 0 <= metrics["test"]["ndcg@10"] <= 1


def test_pretraining_runs_under_bfloat16_autocast_with_chunks(monkeypatch) -> None:
    import baselines.s3rec as s3rec

    monkeypatch.setattr(s3rec, "ATTRIBUTE_CHUNK_ELEMENTS", 7 * 40)  # force several recomputed chunks
    torch.manual_seed(0)
    model = small_s3rec()
    seq, length = right_padded([10, 8, 5, 2], 10, 40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.pretrain_loss(Batch(seq, length, torch.tensor([1, 2, 3, 4])))
    loss.backward()
    assert torch.isfinite(loss) and model.attributes.linear.weight.grad is not None
