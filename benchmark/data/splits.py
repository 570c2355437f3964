"""Leave-one-out splits as index tensors: a batch is a gather, never per-sample Python.

Every row (training prefix, valid or test case) is identified by the position of its target in
the concatenated item array and the start of its user's sequence. For a user with sequence
s_0..s_{n-1}: training rows have targets s_1..s_{n-3} (input: every prefix of the training part,
truncated to the last `max_len` items), the valid row has target s_{n-2} (input: the whole
training part) and the test row s_{n-1} (input: training part + valid item) — exactly the rows
of TedRec's RecBole benchmark files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from benchmark.data.process import Sequences


@dataclass
class Rows:
    """A set of rows: target positions and their users' start offsets (int64 tensors)."""

    target_pos: torch.Tensor
    user_start: torch.Tensor

    def __len__(self) -> int:
        return len(self.target_pos)

    def to(self, device: torch.device | str) -> "Rows":
        return Rows(self.target_pos.to(device), self.user_start.to(device))

    def subset(self, index: torch.Tensor) -> "Rows":
        return Rows(self.target_pos[index], self.user_start[index])


@dataclass
class Splits:
    items: torch.Tensor  # int64 [total interactions], the concatenated sequences
    train: Rows
    valid: Rows
    test: Rows
    max_len: int
    user_tokens: tuple[str, ...] = ()  # source user id of each user, in the order of valid/test rows

    def to(self, device: torch.device | str) -> "Splits":
        return Splits(
            self.items.to(device),
            self.train.to(device),
            self.valid.to(device),
            self.test.to(device),
            self.max_len,
            self.user_tokens,
        )

    def history_lengths(self) -> np.ndarray:
        """Each user's number of training interactions (the valid row's full input length, before truncation)."""
        return (self.valid.target_pos - self.valid.user_start).cpu().numpy()

    def batch(self, rows: Rows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(seq [B, max_len] right-padded, length [B], target [B]) for `rows`."""
        length = torch.clamp(rows.target_pos - rows.user_start, max=self.max_len)
        offsets = torch.arange(self.max_len, device=length.device)
        index = rows.target_pos.unsqueeze(1) - length.unsqueeze(1) + offsets
        valid = offsets < length.unsqueeze(1)
        seq = torch.where(valid, self.items[index.clamp(max=len(self.items) - 1)], 0)
        return seq, length, self.items[rows.target_pos]


def build_splits(seqs: Sequences, max_len: int) -> Splits:
    starts = seqs.offsets[:-1]
    lengths = seqs.lengths()
    if (lengths < 3).any():
        bad = int(np.flatnonzero(lengths < 3)[0])
        raise ValueError(
            f"user {seqs.user_tokens[bad]} has {lengths[bad]} interactions; leave-one-out needs at least 3"
        )
    n_train = lengths - 3
    train_user = np.repeat(np.arange(len(starts)), n_train)
    within = np.arange(n_train.sum()) - np.repeat(np.cumsum(n_train) - n_train, n_train)
    train = Rows(torch.from_numpy(starts[train_user] + 1 + within), torch.from_numpy(starts[train_user]))
    valid = Rows(torch.from_numpy(starts + lengths - 2), torch.from_numpy(starts.copy()))
    test = Rows(torch.from_numpy(starts + lengths - 1), torch.from_numpy(starts.copy()))
    return Splits(torch.from_numpy(seqs.items.astype(np.int64)), train, valid, test, max_len, tuple(seqs.user_tokens))
