"""Negative sampling shared by the baselines that train with sampled negatives (S3-Rec, DLFS-Rec)."""

from __future__ import annotations

import torch


def sample_absent_items(present: torch.Tensor, count: int, n_items: int, max_rounds: int = 100) -> torch.Tensor:
    """[B, count] ids drawn uniformly from 1..n_items−1, each absent from its row of `present` [B, M].

    Vectorised rejection: clashing draws are redrawn until none is left (after `max_rounds` rounds a row that
    holds almost every id may keep a clash).
    """
    draws = torch.randint(1, n_items, (present.size(0), count), device=present.device)
    for _ in range(max_rounds):
        clash = (draws.unsqueeze(-1) == present.unsqueeze(1)).any(-1)
        if not bool(clash.any()):
            break
        draws = torch.where(clash, torch.randint_like(draws, 1, n_items), draws)
    return draws
