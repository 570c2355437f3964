"""Processing and splits against a plain re-statement of the official pipeline."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from benchmark.data.process import build_sequences, k_core
from benchmark.data.raw import RawInteractions
from benchmark.data.splits import build_splits
from benchmark.data.store import paper_counts


def random_raw(seed: int, n: int = 3000, users: int = 120, items: int = 60, with_time: bool = True) -> RawInteractions:
    rng = np.random.default_rng(seed)
    u = rng.integers(0, users, n)
    i = rng.zipf(1.3, n) % items
    ts = rng.integers(0, 40, n) if with_time else None  # many equal timestamps
    return RawInteractions(
        user=np.array([f"u{x}" for x in u], dtype=object),
        item=np.array([f"i{x}" for x in i], dtype=object),
        timestamp=ts,
        item_text={f"i{x}": f"text {x}." for x in range(items)},
    )


def reference_rows(raw: RawInteractions, k: int = 5, max_len: int = 50):
    """TedRec's process_amazon.py logic, restated with loops, ties broken by file order."""
    inters = [(raw.user[j], raw.item[j], j) for j in range(len(raw))]
    while True:
        uc = collections.Counter(u for u, _, _ in inters)
        ic = collections.Counter(i for _, i, _ in inters)
        kept = [x for x in inters if uc[x[0]] >= k and ic[x[1]] >= k]
        if len(kept) == len(inters):
            break
        inters = kept
    per_user = collections.defaultdict(list)
    for u, i, j in inters:
        per_user[u].append((raw.timestamp[j] if raw.timestamp is not None else 0, j, i))
    rows = {"train": [], "valid": [], "test": []}
    for u in per_user:  # dict order = first appearance
        seq = [i for _, _, i in sorted(per_user[u])]
        train = seq[:-2]
        for t in range(1, len(train)):
            rows["train"].append((u, tuple(train[:t][-max_len:]), train[t]))
        rows["valid"].append((u, tuple(train[-max_len:]), seq[-2]))
        rows["test"].append((u, tuple((train + [seq[-2]])[-max_len:]), seq[-1]))
    return rows


def our_rows(raw: RawInteractions, max_len: int = 50, **kw):
    seqs = build_sequences(raw, **kw)
    splits = build_splits(seqs, max_len=max_len)
    users = np.searchsorted(seqs.offsets, np.arange(len(seqs.items)), side="right") - 1
    out = {}
    for name in ("train", "valid", "test"):
        rows = getattr(splits, name)
        seq, length, target = splits.batch(rows)
        assert (seq[torch_arange(max_len) >= length[:, None]] == 0).all()
        out[name] = [
            (
                seqs.user_tokens[users[p]],
                tuple(seqs.item_tokens[x - 1] for x in s[:n].tolist()),
                seqs.item_tokens[t - 1],
            )
            for p, s, n, t in zip(rows.target_pos.tolist(), seq, length.tolist(), target.tolist())
        ]
    return out


def torch_arange(n):
    import torch

    return torch.arange(n)


@pytest.mark.parametrize("with_time", [True, False])
@pytest.mark.parametrize("max_len", [50, 4])
def test_rows_equal_official_pipeline(with_time, max_len):
    raw = random_raw(7, with_time=with_time)
    expected = reference_rows(raw, max_len=max_len)
    ours = our_rows(raw, max_len=max_len, tie_order="file")
    for name in ("train", "valid", "test"):
        assert sorted(ours[name]) == sorted(expected[name]), name
    assert len(ours["valid"]) == len({u for u, _, _ in expected["test"]})


def test_k_core_equals_reference_loop():
    raw = random_raw(3, users=700, items=400)
    codes_u = np.unique(raw.user, return_inverse=True)[1]
    codes_i = np.unique(raw.item, return_inverse=True)[1]
    keep = k_core(codes_u, codes_i, 5)
    rows = list(range(len(raw)))
    while True:
        uc = collections.Counter(raw.user[j] for j in rows)
        ic = collections.Counter(raw.item[j] for j in rows)
        kept = [j for j in rows if uc[raw.user[j]] >= 5 and ic[raw.item[j]] >= 5]
        if kept == rows:
            break
        rows = kept
    assert np.flatnonzero(keep).tolist() == rows
    assert 0 < len(rows) < len(raw)


def test_random_ties_are_seeded_and_only_reorder_ties():
    raw = random_raw(11)
    a = build_sequences(raw, tie_order="random", tie_seed=1)
    b = build_sequences(raw, tie_order="random", tie_seed=1)
    c = build_sequences(raw, tie_order="random", tie_seed=2)
    f = build_sequences(raw, tie_order="file")
    assert np.array_equal(a.items, b.items) and a.item_tokens == b.item_tokens

    def decode(s):
        return [s.item_tokens[x - 1] for x in s.items]

    assert decode(a) != decode(c)
    # Same multiset per user and same timestamps order: only equal-time items move.
    for s in (a, c):
        assert s.user_tokens == f.user_tokens
        for u in range(s.n_users):
            lo, hi = s.offsets[u], s.offsets[u + 1]
            assert sorted(decode(s)[lo:hi]) == sorted(decode(f)[lo:hi])


def test_ids_in_first_appearance_order_and_counts():
    raw = random_raw(5)
    seqs = build_sequences(raw, tie_order="file")
    first = []
    for x in seqs.items.tolist():
        if x not in first:
            first.append(x)
    assert first == list(range(1, seqs.n_items))
    counts = paper_counts(seqs)
    assert counts["interactions"] == len(seqs.items) - seqs.n_users
    assert seqs.item_text[0] == raw.item_text[seqs.item_tokens[0]]
