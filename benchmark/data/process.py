"""From raw interactions to per-user chronological sequences, as the paper's pipeline does.

Steps (TedRec/UniSRec `process_amazon.py` and RecBole's benchmark-file loading):
iterative k-core filter on users and items -> per-user chronological order -> users and items
re-indexed in order of first appearance (item ids start at 1; 0 is padding).

Equal timestamps: the official pipeline sorts items coming out of a Python set, so the order of
items sharing a timestamp is arbitrary. On Online Retail (one invoice = one timestamp) that
order decides the task, so ties are broken by a seeded random permutation by default;
`tie_order="file"` keeps the file's line order instead. Without a timestamp column the file
order is the time order and there are no ties to break.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.data.raw import RawInteractions
from benchmark.errors import TedbenchError

TIE_ORDERS = ("random", "file")


@dataclass
class Sequences:
    """Per-user item sequences in time order, ids remapped.

    items:   int32, all users' sequences concatenated (ids 1..n_items-1).
    offsets: int64 [n_users + 1]; user u owns items[offsets[u]:offsets[u+1]].
    user_tokens, item_tokens: source tokens of internal users 0.. and items 1.. (index 0 = item 1).
    item_text: text of items 1.. in id order.
    item_attributes: categorical attributes of items 1.. in id order, or None when the source has none.
    """

    items: np.ndarray
    offsets: np.ndarray
    user_tokens: list[str]
    item_tokens: list[str]
    item_text: list[str]
    item_attributes: list[list[str]] | None = None

    @property
    def n_users(self) -> int:
        return len(self.offsets) - 1

    @property
    def n_items(self) -> int:
        """Item ids including padding (RecBole's n_items)."""
        return len(self.item_tokens) + 1

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def subset(self, users: np.ndarray) -> Sequences:
        """These users' sequences, in the given order; item ids and texts unchanged (all items stay candidates)."""
        lengths = self.lengths()[users]
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        source = np.repeat(self.offsets[users] - offsets[:-1], lengths) + np.arange(offsets[-1])
        return Sequences(
            self.items[source],
            offsets,
            [self.user_tokens[u] for u in users],
            self.item_tokens,
            self.item_text,
            self.item_attributes,
        )

    def attribute_index(self) -> np.ndarray | None:
        """Attributes as ids [n_items, most attributes of one item], int64: attribute ids 1.. in sorted token order,
        0 = none (padding slots, and the padding item's row 0); None when the dataset has no attributes."""
        if self.item_attributes is None:
            return None
        tokens = sorted({a for item in self.item_attributes for a in item})
        vocabulary = {token: i for i, token in enumerate(tokens, start=1)}
        index = np.zeros((self.n_items, max(map(len, self.item_attributes), default=0)), dtype=np.int64)
        for item, tokens in enumerate(self.item_attributes, start=1):
            index[item, : len(tokens)] = [vocabulary[t] for t in tokens]
        return index


USER_SUBSAMPLE_SEED = 2020  # one fixed subsample for every training seed, so runs stay paired by user


def user_subsample(n_users: int, size: int | None) -> np.ndarray:
    """Sorted indices of a fixed seeded subsample of `size` users (all users when size is None or >= n_users)."""
    if size is None or size >= n_users:
        return np.arange(n_users)
    if size < 1:
        raise ValueError(f"user subsample size must be positive, got {size}")
    return np.sort(np.random.default_rng(USER_SUBSAMPLE_SEED).choice(n_users, size, replace=False))


def k_core(users: np.ndarray, items: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of rows surviving the iterative k-core filter (users and items >= k rows)."""
    keep = np.ones(len(users), dtype=bool)
    if k <= 1:
        return keep
    while True:
        u_counts = np.bincount(users[keep], minlength=users.max(initial=-1) + 1)
        i_counts = np.bincount(items[keep], minlength=items.max(initial=-1) + 1)
        bad = keep & ((u_counts[users] < k) | (i_counts[items] < k))
        if not bad.any():
            return keep
        keep &= ~bad


def build_sequences(raw: RawInteractions, *, k: int = 5, tie_order: str = "random", tie_seed: int = 2020) -> Sequences:
    """Filter, order and re-index `raw` into per-user sequences."""
    if tie_order not in TIE_ORDERS:
        raise TedbenchError(f"unknown tie order {tie_order!r} (known: {', '.join(TIE_ORDERS)})")
    user_codes, user_uniques = pd.factorize(pd.Series(raw.user, dtype=object))
    item_codes, item_uniques = pd.factorize(pd.Series(raw.item, dtype=object))
    keep = np.ones(len(raw), dtype=bool) if raw.prefiltered else k_core(user_codes, item_codes, k)
    rows = np.flatnonzero(keep)
    if len(rows) == 0:
        raise TedbenchError(f"no interactions survive the {k}-core filter")
    users, items = user_codes[rows], item_codes[rows]

    # Users in order of first appearance (file order); within a user by time, then tie key.
    surviving = np.unique(users)
    first_seen = np.full(len(user_uniques), len(rows), dtype=np.int64)
    np.minimum.at(first_seen, users, np.arange(len(rows)))
    by_first = surviving[np.argsort(first_seen[surviving], kind="stable")]
    dense_user = np.empty(len(user_uniques), dtype=np.int64)
    dense_user[by_first] = np.arange(len(by_first))
    user_key = dense_user[users]
    if raw.timestamp is None or raw.prefiltered:
        order = np.lexsort((np.arange(len(rows)), user_key))
    else:
        ts = np.asarray(raw.timestamp)[rows]
        tie = np.random.default_rng(tie_seed).permutation(len(rows)) if tie_order == "random" else np.arange(len(rows))
        order = np.lexsort((tie, ts, user_key))
    users, items = user_key[order], items[order]

    item_ids, item_first = pd.factorize(pd.Series(items))
    item_first = np.asarray(item_first)
    offsets = np.zeros(users.max() + 2, dtype=np.int64)
    np.add.at(offsets, users + 1, 1)
    offsets = np.cumsum(offsets)
    user_list = [str(user_uniques[c]) for c in by_first]
    item_list = [str(item_uniques[c]) for c in item_first]
    return Sequences(
        items=(item_ids + 1).astype(np.int32),
        offsets=offsets,
        user_tokens=user_list,
        item_tokens=item_list,
        item_text=[raw.item_text.get(t, "") for t in item_list],
        item_attributes=None if raw.item_attributes is None else [raw.item_attributes.get(t, []) for t in item_list],
    )
