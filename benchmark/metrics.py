"""Full-sort ranks and the metrics computed from them.

Rank rule: the target's rank is its position in a stable descending sort of all item scores,
with the padding id 0 excluded and history items NOT excluded (RecBole's sequential protocol):

    rank = 1 + #{j : s_j > s_t} + #{j < t : s_j == s_t}

i.e. ties go to the lower item id. With one target per user, Recall@K = Hit@K = [rank <= K] and
NDCG@K = 1 / log2(rank + 1) if rank <= K else 0.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

DEFAULT_KS = (10, 20)


def target_ranks(scores: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1-based rank of each row's target among all ids except 0: [B, N], [B] -> [B] int64."""
    scores = scores.float()
    scores[:, 0] = float("-inf")
    target_score = scores.gather(1, target.view(-1, 1))
    higher = (scores > target_score).sum(1)
    ids = torch.arange(scores.size(1), device=scores.device)
    tied_before = ((scores == target_score) & (ids < target.view(-1, 1))).sum(1)
    return higher + tied_before + 1


def recall_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user Recall@k (= Hit@k with one target)."""
    return (np.asarray(ranks) <= k).astype(np.float64)


def ndcg_at(ranks: np.ndarray, k: int) -> np.ndarray:
    """Per-user NDCG@k with one relevant item."""
    ranks = np.asarray(ranks, dtype=np.float64)
    return np.where(ranks <= k, 1.0 / np.log2(ranks + 1.0), 0.0)


def per_user_metrics(ranks: np.ndarray, ks: Iterable[int] = DEFAULT_KS) -> dict[str, np.ndarray]:
    out = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at(ranks, k)
        out[f"ndcg@{k}"] = ndcg_at(ranks, k)
    return out


def summarize(ranks: np.ndarray, ks: Iterable[int] = DEFAULT_KS) -> dict[str, float]:
    """Mean metrics over users (full precision; round for display or model selection)."""
    return {name: float(values.mean()) for name, values in per_user_metrics(ranks, ks).items()}
