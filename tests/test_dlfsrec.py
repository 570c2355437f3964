"""DLFS-Rec with text side information and −W2 cross-entropy, against the official `models.py`/`trainers.py`."""

from __future__ import annotations

from functools import partial

import pytest
import torch
from torch.nn import functional as F

from baselines.dlfsrec import DLFSRec, wasserstein_matrix, wasserstein_pairs
from benchmark.engine.trainer import training_rows
from benchmark.errors import TedbenchError
from benchmark.model import Batch
from benchmark.registry import get_model
from tests.modelkit import ml1m_model, right_padded, small_model, small_splits, trainable

small_dlfs = partial(small_model, "DLFS-Rec", pvn_weight=0.0)  # CE alone unless a test asks for the pvn term


def test_registry_entry() -> None:
    entry = get_model("DLFS-Rec")
    assert entry.needs_text
    defaults = entry.defaults
    assert defaults["fusion_type"] == "add" and defaults["side_info_fused"]
    assert defaults["temperature"] == 1.0 and defaults["pvn_weight"] == 0.005 and defaults["learning_rate"] == 1e-3
    assert {"learning_rate", "hidden_size", "n_layers", "hidden_dropout_prob"} <= set(entry.search_space)
    assert 1e-4 in entry.search_space["learning_rate"].choices  # the official learning rate


def test_pvn_term_is_on_by_default_with_the_official_weight() -> None:
    splits, n_items = small_splits()
    model = small_model("DLFS-Rec", n_items=n_items, seed=0).eval()
    assert model.pvn_weight == 0.005
    index = torch.arange(16)
    extra = model.batch_extras(training_rows(splits), index)
    assert set(extra) == {"negative"}
    seq, length, target = splits.batch(splits.train.subset(index))
    with_pvn = model.loss(Batch(seq, length, target, extra))
    model.pvn_weight = 0.0
    assert with_pvn > model.loss(Batch(seq, length, target, extra))  # the hinge is positive at init


@pytest.mark.parametrize("text_dim", [768, 384])
def test_parameter_count_on_ml1m_shapes(text_dim: int) -> None:
    d, n, layers = 300, 3417, 2
    tables = 2 * n * d  # mean and covariance ID embeddings
    side = 2 * (text_dim * d + d)  # Linear_m, Linear_c over the text vector
    norms = 2 * 2 * d  # LN_mean, LN_cov
    per_layer = 2 * (50 // 2 + 1) * d * 2 + 2 * d  # two complex filters + the shared LN
    expected = tables + side + norms + layers * per_layer
    assert expected == {768: 2_576_400, 384: 2_346_000}[text_dim]
    assert trainable(ml1m_model("DLFS-Rec", text_dim)) == expected


def test_initialisation_follows_the_official_code() -> None:
    torch.manual_seed(0)
    model = small_dlfs(n_items=400, n_layers=3)
    first = model.layers[0]
    assert first.mean_filter.complex_weight.shape == (1, 5, 16, 2)
    for layer in model.layers[1:]:  # deep copies of one layer: identical initial filters
        assert torch.equal(layer.mean_filter.complex_weight, first.mean_filter.complex_weight)
        assert torch.equal(layer.cov_filter.complex_weight, first.cov_filter.complex_weight)
    assert not torch.equal(first.mean_filter.complex_weight, first.cov_filter.complex_weight)
    assert model.mean_embedding.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert model.mean_embedding.weight[0].abs().sum() > 0  # RecBole-style init draws row 0 too
    assert not model.side_mean.bias.any() and "item_text" not in model.state_dict()
    with pytest.raises(TedbenchError):
        small_dlfs(fusion_type="sum")


def test_expansion_equals_explicit_distance() -> None:
    generator = torch.Generator().manual_seed(0)
    mean_u, mean_i = (
        torch.randn(7, 5, dtype=torch.float64, generator=generator),
        torch.randn(11, 5, dtype=torch.float64, generator=generator),
    )
    var_u = torch.rand(7, 5, dtype=torch.float64, generator=generator) * 3
    var_i = torch.rand(11, 5, dtype=torch.float64, generator=generator) * 3
    var_i[0, 0] = 0.0  # clamped at 1e-24 in both forms
    explicit = wasserstein_pairs(mean_u[:, None], var_u[:, None], mean_i[None], var_i[None])
    torch.testing.assert_close(wasserstein_matrix(mean_u, var_u, mean_i, var_i), explicit, rtol=1e-12, atol=1e-12)
    # the closed form of W2² between diagonal Gaussians, element by element
    direct = ((mean_u[:, None] - mean_i[None]) ** 2).sum(-1) + (
        (var_u[:, None].sqrt() - var_i[None].clamp(min=1e-24).sqrt()) ** 2
    ).sum(-1)
    torch.testing.assert_close(explicit, direct, rtol=1e-12, atol=1e-12)


def naive_distances(model: DLFSRec, seq: torch.Tensor) -> torch.Tensor:
    """Eval-mode transcription of the official forward on LEFT-padded input, read at the last slot."""
    text = model.item_text
    mean = (model.mean_embedding(seq) + model.side_mean(text[seq])) * (seq > 0).unsqueeze(-1)
    cov = (model.cov_embedding(seq) + model.side_cov(text[seq])) * (seq > 0).unsqueeze(-1)
    mean, cov = model.mean_norm(mean), F.elu(model.cov_norm(cov)) + 1
    for layer in model.layers:
        outputs = []
        for x, weight in ((mean, layer.mean_filter.complex_weight), (cov, layer.cov_filter.complex_weight)):
            filtered = torch.fft.irfft(
                torch.fft.rfft(x, dim=1, norm="ortho") * torch.view_as_complex(weight),
                n=seq.size(1),
                dim=1,
                norm="ortho",
            )
            outputs.append(layer.layer_norm(filtered + x))
        mean, cov = outputs[0], F.elu(outputs[1]) + 1
    mean_u, cov_u = mean[:, -1], cov[:, -1]
    mean_i = model.mean_embedding.weight + model.side_mean(text)
    cov_i = F.elu(model.cov_embedding.weight + model.side_cov(text)) + 1
    return wasserstein_pairs(mean_u[:, None], cov_u[:, None], mean_i[None], cov_i[None])


def test_eval_scores_equal_official_left_padded_transcription() -> None:
    torch.manual_seed(0)
    model = small_dlfs(max_len=10, n_layers=3).double().eval()
    seq, length = right_padded([10, 6, 1, 3], 10, 40)
    left = torch.stack([torch.roll(row, int(10 - n)) for row, n in zip(seq, length)])  # official left padding
    scores = model.full_sort_scores(seq, length)
    assert scores.shape == (4, 40)
    torch.testing.assert_close(scores, -naive_distances(model, left), rtol=1e-10, atol=1e-10)
    assert torch.equal(model.full_sort_scores(seq, length), scores)  # deterministic


def test_padding_rows_do_not_matter_and_training_temperature() -> None:
    torch.manual_seed(0)
    model = small_dlfs(temperature=0.5).eval()
    seq, length = right_padded([8, 5, 2], 8, 40)
    query = model.encode(seq, length)
    with torch.no_grad():  # padded slots are zeroed before the first LayerNorm
        model.mean_embedding.weight[0].normal_(0, 3.0)
        model.cov_embedding.weight[0].normal_(0, 3.0)
        model.item_text[0].normal_(0, 3.0)
    torch.testing.assert_close(model.encode(seq, length), query, rtol=0, atol=1e-6)
    evaluation = model.score_items(query, training=False)
    torch.testing.assert_close(model.score_items(query, training=True), evaluation / 0.5)
    assert (evaluation <= 0).all()  # scores are negative distances


def test_candidates_without_side_information() -> None:
    model = small_dlfs(side_info_fused=False)
    items = model.item_embeddings()
    torch.testing.assert_close(items[:, :16], model.mean_embedding.weight)
    torch.testing.assert_close(items[:, 16:], F.elu(model.cov_embedding.weight) + 1)


@pytest.mark.parametrize("fusion_type", ["concat", "gate"])
def test_other_fusions(fusion_type: str) -> None:
    torch.manual_seed(0)
    model = small_dlfs(fusion_type=fusion_type)
    seq, length = right_padded([8, 3], 8, 40)
    loss = model.loss(Batch(seq, length, torch.tensor([1, 2])))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in [*model.mean_fusion.parameters(), *model.cov_fusion.parameters()])


def test_pvn_term_and_its_negatives() -> None:
    splits, n_items = small_splits()
    torch.manual_seed(0)
    model = small_dlfs(n_items=n_items, pvn_weight=0.5).eval()
    index, train = torch.arange(64), training_rows(splits)
    extra = model.batch_extras(train, index)
    seq, length, target = splits.batch(splits.train.subset(index))
    negative = extra["negative"]
    assert negative.shape == (64,) and (negative >= 1).all() and (negative < n_items).all()
    assert not (negative.unsqueeze(1) == torch.cat([seq, target.unsqueeze(1)], 1)).any()
    fused = model.fused_items()
    query, items = model.encode(seq, length, fused), model.candidates(fused)
    mean_u, var_u = query.chunk(2, -1)
    mean_p, var_p = items[target].chunk(2, -1)
    mean_n, var_n = items[negative].chunk(2, -1)
    pvn = F.relu(
        wasserstein_pairs(mean_u, var_u, mean_p, var_p) - wasserstein_pairs(mean_p, var_p, mean_n, var_n)
    ).mean()
    ce = F.cross_entropy(-wasserstein_matrix(mean_u, var_u, *items.chunk(2, -1)), target)
    torch.testing.assert_close(model.loss(Batch(seq, length, target, extra)), ce + 0.5 * pvn, rtol=1e-5, atol=1e-5)
    assert small_dlfs().batch_extras(train, index) == {}


def test_runs_under_bfloat16_autocast_with_float32_distances() -> None:
    torch.manual_seed(0)
    model = small_dlfs()
    seq, length = right_padded([8, 3], 8, 40)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        query = model.encode(seq, length)
        assert model.score_items(query, training=False).dtype == torch.float32
        loss = model.loss(Batch(seq, length, torch.tensor([1, 2])))
    loss.backward()
    assert torch.isfinite(loss)
