"""Metrics from ranks, checked by hand and against trec_eval (pytrec-eval-terrier)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from benchmark.metrics import ndcg_at, recall_at, summarize, target_ranks


def test_hand_computed_ranks_and_metrics():
    # ids: 0 is padding (its huge score must be ignored); targets 2 and 4.
    scores = torch.tensor([[9.0, 0.1, 0.5, 0.7, 0.2], [9.0, 0.3, 0.3, 0.1, 0.3]])
    ranks = target_ranks(scores.clone(), torch.tensor([2, 4])).numpy()
    # row 0: only id 3 (0.7) beats 0.5 -> rank 2; row 1: ties 0.3 at ids 1, 2 come before id 4 -> rank 3.
    assert ranks.tolist() == [2, 3]
    assert recall_at(ranks, 2).tolist() == [1.0, 0.0]
    assert ndcg_at(ranks, 3).tolist() == pytest.approx([1 / math.log2(3), 1 / math.log2(4)])
    assert summarize(ranks, ks=(1, 3)) == pytest.approx(
        {"recall@1": 0.0, "ndcg@1": 0.0, "recall@3": 1.0, "ndcg@3": (1 / math.log2(3) + 0.5) / 2}
    )


def test_history_items_are_not_masked():
    scores = torch.tensor([[0.0, 5.0, 1.0]])  # item 1 could be in the history: it still ranks first
    assert target_ranks(scores, torch.tensor([2])).tolist() == [2]


def test_rank_equals_position_in_stable_descending_sort():
    rng = np.random.default_rng(0)
    scores = torch.from_numpy(rng.integers(0, 5, size=(50, 30)).astype(np.float32))
    target = torch.from_numpy(rng.integers(1, 30, size=50))
    ranks = target_ranks(scores.clone(), target).numpy()
    for row, t, r in zip(scores.numpy(), target.numpy(), ranks):
        order = [j for j in np.argsort(-row[1:], kind="stable") + 1]
        assert order.index(t) + 1 == r


def test_metrics_equal_trec_eval_on_random_scores():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = np.random.default_rng(1)
    n_users, n_items = 300, 500
    scores = torch.from_numpy(rng.standard_normal((n_users, n_items)).astype(np.float64))  # tie-free
    target = torch.from_numpy(rng.integers(1, n_items, n_users))
    ranks = target_ranks(scores.clone(), target).numpy()
    qrels = {f"u{u}": {f"d{int(target[u])}": 1} for u in range(n_users)}
    for k in (10, 20):
        run = {}
        for u in range(n_users):
            top = np.argsort(-scores[u, 1:].numpy())[:k] + 1  # padding id 0 excluded
            run[f"u{u}"] = {f"d{j}": float(k - pos) for pos, j in enumerate(top)}
        evaluator = pytrec_eval.RelevanceEvaluator(qrels, {f"ndcg_cut.{k}", f"recall.{k}"})
        res = evaluator.evaluate(run)
        ref_ndcg = np.array([res[f"u{u}"][f"ndcg_cut_{k}"] for u in range(n_users)])
        ref_recall = np.array([res[f"u{u}"][f"recall_{k}"] for u in range(n_users)])
        np.testing.assert_allclose(ndcg_at(ranks, k), ref_ndcg, atol=1e-9)
        np.testing.assert_allclose(recall_at(ranks, k), ref_recall, atol=1e-9)
