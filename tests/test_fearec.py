"""FEARec against the official `layers.py` (HybridAttention), `fearec.py` (losses) and `fearec_aug` (positives)."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from baselines.fearec import HybridAttention, band_projection, delay_aggregate, frequency_band, nt_xent
from benchmark.engine.trainer import training_rows
from benchmark.errors import TedbenchError
from benchmark.layers.blocks import causal_padding_mask
from benchmark.model import Batch, DatasetInfo, gather_last
from benchmark.registry import create_model, get_model
from tests.modelkit import SMALL, ml1m_model, right_padded, small_model, small_splits, splits_of, trainable

small_fearec = partial(small_model, "FEARec", preset="us_x")  # the official loss/band settings, small sizes
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attn_dropout_prob": 0.0}


def splits_from(sequences: list[list[int]], max_len: int = 10, prefiltered: bool = False):
    users = np.concatenate([np.full(len(s), u) for u, s in enumerate(sequences)])
    items = np.concatenate([np.asarray(s) for s in sequences])
    return splits_of(users, items, max_len, prefiltered)


# -- configuration ---------------------------------------------------------------------------------
def test_defaults_are_recboles_stock_yaml_and_us_x_is_the_official_script() -> None:
    entry = get_model("FEARec")
    d = entry.defaults
    assert (d["hidden_size"], d["inner_size"], d["n_layers"], d["n_heads"]) == (300, 256, 2, 2)
    assert (d["contrast"], d["lmd_sem"], d["lmd"]) == ("none", 0.1, 0.1)
    assert (d["global_ratio"], d["dual_domain"], d["spatial_ratio"], d["std"], d["topk_factor"], d["fredom"]) == (
        1.0,
        False,
        0.0,
        False,
        1,
        False,
    )
    assert d["hidden_dropout_prob"] == d["attn_dropout_prob"] == 0.5 and d["learning_rate"] == 1e-3
    c = entry.config({"preset": "us_x"})
    assert (c["contrast"], c["sim"], c["tau"], c["lmd_sem"], c["lmd"]) == ("us_x", "dot", 1.0, 0.1, 0.1)
    assert (c["global_ratio"], c["dual_domain"], c["spatial_ratio"], c["std"], c["hidden_size"]) == (
        0.6,
        True,
        0.1,
        True,
        300,
    )
    assert entry.config({"preset": "official"}) == {**c, "hidden_size": 64, "preset": "official"}
    assert {"learning_rate", "preset", "global_ratio", "topk_factor"} <= set(entry.search_space)
    for bad in (
        {"contrast": "cl4srec"},
        {"sim": "l2"},
        {"fredom": True, "contrast": "us"},
        {"global_ratio": 0.0},
        {"tau": 0.0},
    ):
        with pytest.raises(TedbenchError):
            small_fearec(**bad)


def test_frequency_bands_follow_the_official_arithmetic() -> None:
    assert [frequency_band(i, 2, 50, 0.6) for i in range(2)] == [(10, 26), (0, 16)]  # 10.4 // 1 = 10.0
    assert [frequency_band(i, 2, 50, 1.0) for i in range(2)] == [(0, 26), (0, 26)]  # RecBole default: all 26 bins
    assert [frequency_band(i, 3, 50, 0.6) for i in range(3)] == [(10, 26), (5, 21), (0, 16)]  # 10.4 // 2 = 5.0
    assert [frequency_band(i, 2, 50, 0.5) for i in range(2)] == [(13, 26), (0, 13)]  # "L" mixer: disjoint halves
    assert frequency_band(0, 1, 50, 1.0) == (0, 26)  # one layer: no division by n_layers − 1 = 0
    model = create_model("FEARec", DatasetInfo(n_items=50, max_len=50), {**SMALL["FEARec"].config, "preset": "us_x"})
    assert [layer.attention.band for layer in model.layers] == [(10, 26), (0, 16)]
    assert all(layer.attention.top_k == 3 for layer in model.layers)  # int(1 · ln 50)


def test_band_projection_is_the_fft_round_trip() -> None:
    P = band_projection(50, (10, 26), torch.float64)
    torch.testing.assert_close(P, P.t(), rtol=0, atol=1e-14)  # symmetric ...
    torch.testing.assert_close(P @ P, P, rtol=0, atol=1e-12)  # ... projection
    x = torch.randn(3, 50, 4, dtype=torch.float64)
    spectrum = torch.fft.rfft(x, dim=1)
    spectrum[:, :10] = 0
    spectrum[:, 26:] = 0
    torch.testing.assert_close(torch.matmul(P, x), torch.fft.irfft(spectrum, n=50, dim=1), rtol=0, atol=1e-12)
    torch.testing.assert_close(
        band_projection(50, (0, 26), torch.float64), torch.eye(50, dtype=torch.float64), rtol=0, atol=1e-12
    )


def test_parameter_count_on_ml1m_shapes() -> None:
    n, L, d, inner, layers = 3417, 50, 300, 256, 2
    embeddings = n * d + L * d + 2 * d  # item and position tables, embedding LayerNorm
    attention = 4 * (d * d + d) + 2 * d  # Q, K, V, output projection, LayerNorm (no frequency parameters)
    feed_forward = (d * inner + inner) + (inner * d + d) + 2 * d
    expected = embeddings + layers * (attention + feed_forward)
    assert expected == 2_073_812  # = SASRec's count
    assert trainable(ml1m_model("FEARec")) == expected


# -- HybridAttention against an official transcription ---------------------------------------------
def naive_hybrid(attn: HybridAttention, x: torch.Tensor, mask: torch.Tensor, training: bool) -> torch.Tensor:
    """Dropout-free transcription of the official HybridAttention.forward with its per-sample/per-delay loops."""
    B, L, d = x.shape
    H = attn.n_heads
    E = d // H
    heads = lambda t: t.view(B, L, H, E).permute(0, 2, 3, 1)  # noqa: E731  [B, H, E, L]
    q, k, v = heads(attn.query(x)), heads(attn.key(x)), heads(attn.value(x))
    q_fft, k_fft = torch.fft.rfft(q, dim=-1), torch.fft.rfft(k, dim=-1)
    band = list(range(*attn.band))
    box = torch.zeros(B, H, E, L // 2 + 1, dtype=q_fft.dtype)
    for j in band:
        box[..., j] = q_fft[..., j] * torch.conj(k_fft[..., j])
    corr = torch.fft.irfft(box, dim=-1)
    mean_value = corr.mean(1).mean(1)  # [B, L]
    top_k = int(1 * math.log(L))
    agg = torch.zeros_like(v)
    if training:
        index = torch.topk(mean_value.mean(0), top_k)[1]
        weights = torch.softmax(torch.stack([mean_value[:, index[i]] for i in range(top_k)], -1), -1)
        for i in range(top_k):
            agg = agg + torch.roll(v, -int(index[i]), -1) * weights[:, i].view(B, 1, 1, 1)
    else:
        for b in range(B):  # per sample, gather on the doubled sequence
            values, delay = torch.topk(mean_value[b], top_k)
            weights = torch.softmax(values, -1)
            doubled = torch.cat([v[b], v[b]], dim=-1)
            for i in range(top_k):
                agg[b] = agg[b] + doubled[..., int(delay[i]) : int(delay[i]) + L] * weights[i]
    context = agg.permute(0, 3, 1, 2).reshape(B, L, d)
    if attn.dual_domain:

        def limited(t_fft: torch.Tensor) -> torch.Tensor:
            spectrum = torch.zeros_like(t_fft)
            for j in range(*attn.time_band):
                spectrum[..., j] = t_fft[..., j]
            return torch.fft.irfft(spectrum, dim=-1).permute(0, 1, 3, 2)  # [B, H, L, E]

        qs, ks, vs = limited(q_fft), limited(k_fft), limited(torch.fft.rfft(v, dim=-1))
        probs = torch.softmax(qs @ ks.transpose(-1, -2) / math.sqrt(E) + mask, dim=-1)
        spatial = (probs @ vs).permute(0, 2, 1, 3).reshape(B, L, d)
        context = (1 - attn.spatial_ratio) * context + attn.spatial_ratio * spatial
    return attn.layer_norm(attn.dense(context) + x)


@pytest.mark.parametrize("overrides", [{}, {"std": False}, {"dual_domain": False}, {"global_ratio": 1.0}])
@pytest.mark.parametrize("training", [False, True])
def test_hybrid_attention_equals_the_official_loops(overrides: dict, training: bool) -> None:
    torch.manual_seed(0)
    model = small_fearec(**NO_DROPOUT, **overrides).double().train(training)
    seq, length = right_padded([10, 7, 3, 1, 10], 10, 40)
    x = torch.randn(5, 10, 16, dtype=torch.float64)
    mask = causal_padding_mask(seq).double()
    for attn in (layer.attention for layer in model.layers):
        full = attn(x, mask)
        torch.testing.assert_close(full, naive_hybrid(attn, x, mask, training), rtol=1e-10, atol=1e-10)
        rows = attn(x, mask, read_index=length - 1)  # the last layer's read-out-only path
        torch.testing.assert_close(rows.squeeze(1), gather_last(full, length), rtol=1e-10, atol=1e-10)


def test_inference_aggregation_equals_a_per_sample_loop() -> None:
    generator = torch.Generator().manual_seed(0)
    B, L, d, k = 6, 12, 5, 3
    values = torch.randn(B, L, d, dtype=torch.float64, generator=generator)
    corr = torch.randn(B, L, dtype=torch.float64, generator=generator)
    top, delays = corr.topk(k, dim=-1)
    weights = torch.softmax(top, dim=-1)
    expected = torch.zeros_like(values)
    for b in range(B):  # the official inference loop, one sample at a time: gather on the doubled sequence
        doubled = torch.cat([values[b], values[b]], dim=0)
        for j in range(k):
            expected[b] += weights[b, j] * doubled[int(delays[b, j]) : int(delays[b, j]) + L]
    torch.testing.assert_close(delay_aggregate(values, delays, weights), expected, rtol=1e-12, atol=1e-12)
    positions = torch.randint(0, L, (B, 2), generator=generator)
    torch.testing.assert_close(
        delay_aggregate(values, delays, weights, positions),
        expected.gather(1, positions[..., None].expand(-1, -1, d)),
        rtol=1e-12,
        atol=1e-12,
    )


def test_stacked_views_choose_their_training_delays_separately() -> None:
    torch.manual_seed(0)
    model = small_fearec(**NO_DROPOUT).double().train()
    seq_a, len_a = right_padded([10, 6, 2, 9], 10, 40)
    seq_b, len_b = right_padded([4, 10, 10, 1], 10, 40)
    stacked = model.encode(torch.cat([seq_a, seq_b]), torch.cat([len_a, len_b]), groups=2)
    separate = torch.cat([model.encode(seq_a, len_a), model.encode(seq_b, len_b)])
    torch.testing.assert_close(stacked, separate, rtol=1e-10, atol=1e-10)
    assert not torch.allclose(
        model.encode(torch.cat([seq_a, seq_b]), torch.cat([len_a, len_b])), separate
    )  # one shared choice differs


# -- losses ----------------------------------------------------------------------------------------
def official_info_nce(z_i: torch.Tensor, z_j: torch.Tensor, temp: float, sim: str) -> torch.Tensor:
    """Transcription of the official `info_nce` + `nn.CrossEntropyLoss`."""
    batch = len(z_i)
    n = 2 * batch
    z = torch.cat((z_i, z_j), dim=0)
    if sim == "cos":
        similarity = nn.functional.cosine_similarity(z.unsqueeze(1), z.unsqueeze(0), dim=2) / temp
    else:
        similarity = torch.mm(z, z.T) / temp
    positives = torch.cat((torch.diag(similarity, batch), torch.diag(similarity, -batch)), dim=0).reshape(n, 1)
    mask = torch.ones((n, n), dtype=bool).fill_diagonal_(0)
    for i in range(batch):
        mask[i, batch + i] = 0
        mask[batch + i, i] = 0
    logits = torch.cat((positives, similarity[mask].reshape(n, -1)), dim=1)
    return nn.CrossEntropyLoss()(logits, torch.zeros(n, dtype=torch.long))


@pytest.mark.parametrize("sim", ["dot", "cos"])
def test_nt_xent_equals_the_official_info_nce(sim: str) -> None:
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(7, 5, generator=generator), torch.randn(7, 5, generator=generator)
    for tau in (1.0, 0.3):
        torch.testing.assert_close(nt_xent(a, b, tau, sim), official_info_nce(a, b, tau, sim), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("contrast", ["none", "un", "su", "us", "us_x", "fredom"])
def test_loss_terms_per_contrast(contrast: str) -> None:
    fredom = contrast == "fredom"
    torch.manual_seed(0)
    model = small_fearec(
        **NO_DROPOUT,
        contrast="us_x" if fredom else contrast,
        fredom=fredom,
        fredom_type="us",
        lmd=0.3,
        lmd_sem=0.2,
        sim="cos",
        tau=0.5,
    ).train()
    seq, length = right_padded([10, 6, 2, 9], 10, 40)
    other, other_length = right_padded([3, 10, 5, 8], 10, 40)
    target = torch.tensor([1, 2, 3, 4])
    extra = {} if contrast in ("none", "un") else {"same_target_seq": other, "same_target_length": other_length}
    loss = model.loss(Batch(seq, length, target, extra))
    s1 = model.encode(seq, length)  # without dropout the second view of seq equals the first
    s3 = model.encode(other, other_length)
    ce = F.cross_entropy(s1 @ model.item_embedding.weight.t(), target)
    un, su = nt_xent(s1, s1, 0.5, "cos"), nt_xent(s1, s3, 0.5, "cos")
    fred = lambda a, b: (torch.fft.rfft(a, dim=1, norm="ortho") - torch.fft.rfft(b, dim=1, norm="ortho")).abs().mean()  # noqa: E731
    expected = {
        "none": ce,
        "un": ce + 0.3 * un,
        "su": ce + 0.2 * su,
        "us": ce + 0.3 * un + 0.2 * su,
        "us_x": ce + 0.2 * su,
        "fredom": ce + 0.2 * su + 0.1 * fred(s1, s1) + 0.1 * fred(s1, s3),
    }[contrast]
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    if contrast in ("su", "us", "us_x"):
        with pytest.raises(TedbenchError):
            model.loss(Batch(seq, length, target))


# -- same-target positives -------------------------------------------------------------------------
def sampling_splits():
    """Item 99 is the training target of exactly one row; item 50 of nine rows (s_1 of nine users)."""
    sequences = (
        [[7, 99, 3, 4, 5, 6]]
        + [[10 + u, 50, 20 + u, 30 + u, 40 + u] for u in range(9)]
        + [[61, 62, 63, 64, 65, 66, 67]]
    )
    return splits_from(sequences, prefiltered=True)  # no 5-core filter


def attached_fearec():
    """The training rows of the sampling splits and a small FEARec (seed 0) attached to them."""
    splits, n_items = sampling_splits()
    train = training_rows(splits)
    torch.manual_seed(0)
    model = small_fearec(n_items=n_items)
    model.attach(train)
    return train, model


def test_same_target_rows_share_the_target_and_exclude_themselves() -> None:
    train, model = attached_fearec()
    index = torch.arange(len(train)).repeat(50)
    sampled = model.same_target.sample(index)
    target = train.target[index]
    assert ((sampled >= 0) & (sampled < len(train))).all()
    assert torch.equal(train.target[sampled], target)
    group_size = torch.bincount(train.target)[target]
    itself = sampled == index
    assert not itself[group_size > 1].any() and itself[group_size == 1].all()
    assert (itself & (group_size == 1)).any()  # the lone row (target 99) falls back to itself


def test_same_target_draws_are_uniform_over_the_group() -> None:
    train, model = attached_fearec()
    target_50 = int(torch.bincount(train.target).argmax())  # the nine-row group
    group = torch.nonzero(train.target == target_50).flatten()
    assert len(group) == 9
    draws = 9000
    sampled = model.same_target.sample(group[3].repeat(draws))
    counts = torch.bincount(sampled, minlength=len(train))[group]
    assert counts[3] == 0 and counts.sum() == draws
    expected = draws / 8
    others = torch.cat([counts[:3], counts[4:]]).double()
    chi_square = float(((others - expected) ** 2 / expected).sum())
    assert chi_square < 26.1  # 7 degrees of freedom, p = 0.0005


def test_batch_extras_gives_the_sampled_rows_sequences() -> None:
    splits, n_items = small_splits(max_len=10)
    train = training_rows(splits)
    model = small_fearec(n_items=n_items)
    index = torch.arange(64)
    torch.manual_seed(3)
    extra = model.batch_extras(train, index)  # attaches lazily
    torch.manual_seed(3)
    sampled = model.same_target.sample(index)
    seq, length, target = splits.batch(splits.train.subset(sampled))
    assert torch.equal(extra["same_target_seq"], seq) and torch.equal(extra["same_target_length"], length)
    assert torch.equal(target, train.target[index])
    assert small_fearec(n_items=n_items, contrast="un").batch_extras(train, index) == {}


# -- training and evaluation -----------------------------------------------------------------------
def test_eval_is_deterministic_and_uses_dot_products() -> None:
    torch.manual_seed(0)
    model = small_fearec(n_items=400).eval()
    seq, length = right_padded([10, 4, 1], 10, 400)
    scores = model.full_sort_scores(seq, length)
    assert torch.equal(model.full_sort_scores(seq, length), scores)
    torch.testing.assert_close(scores, gather_last(model.all_positions(seq), length) @ model.item_embedding.weight.t())
    model.train()
    assert not torch.equal(model.encode(seq, length), model.encode(seq, length))
    loss = model.loss(
        Batch(seq, length, torch.tensor([1, 2, 3]), {"same_target_seq": seq, "same_target_length": length})
    )
    assert torch.isfinite(loss)


def test_runs_under_bfloat16_autocast() -> None:
    torch.manual_seed(0)
    model = small_fearec()
    seq, length = right_padded([10, 3], 10, 40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = model.loss(
            Batch(seq, length, torch.tensor([1, 2]), {"same_target_seq": seq, "same_target_length": length})
        )
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.layers[0].attention.parameters())
