"""Full-sort evaluation, chunked by users under a memory cap."""

from __future__ import annotations

import numpy as np
import torch

from benchmark.data.splits import Rows, Splits
from benchmark.errors import TedbenchError
from benchmark.metrics import target_ranks
from benchmark.model import SequentialModel

DEFAULT_MEMORY_CAP = 1 << 30  # bytes of score matrix (plus temporaries) per chunk


def users_per_chunk(n_items: int, memory_cap: int, bytes_per_score: int = 16) -> int:
    """Rows scored at once so that scores and their comparison temporaries stay under the cap."""
    return max(1, min(8192, memory_cap // (n_items * bytes_per_score)))


@torch.no_grad()
def full_sort_ranks(
    model: SequentialModel,
    splits: Splits,
    rows: Rows,
    *,
    memory_cap: int = DEFAULT_MEMORY_CAP,
    autocast_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Rank of the target of every row among all items (see `benchmark.metrics`), as int32.

    Raises TedbenchError when a model scores any real item (ids >= 1) NaN or infinite: a diverged
    model has no ranking, and comparisons with NaN would silently give one.
    """
    was_training = model.training
    model.eval()
    device = splits.items.device
    chunk = users_per_chunk(model.info.n_items, memory_cap)
    ranks = []
    for start in range(0, len(rows), chunk):
        part = rows.subset(torch.arange(start, min(start + chunk, len(rows)), device=rows.target_pos.device))
        seq, length, target = splits.batch(part)
        with torch.autocast(device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None):
            scores = model.full_sort_scores(seq, length)
        finite = torch.isfinite(scores[:, 1:]).all(dim=1)
        if not bool(finite.all()):
            raise TedbenchError(
                f"{type(model).__name__} diverged: non-finite (NaN/inf) evaluation scores for "
                f"{int((~finite).sum())} of {len(part)} users; lower the learning rate"
            )
        ranks.append(target_ranks(scores, target))
    model.train(was_training)
    return torch.cat(ranks).cpu().numpy().astype(np.int32)
