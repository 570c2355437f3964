"""The engine: RecBole's early stopping, determinism, resumable checkpoints, ranks on disk."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.engine.evaluate import full_sort_ranks, users_per_chunk
from benchmark.engine.trainer import EarlyStopping, TrainConfig, Trainer
from benchmark.metrics import summarize
from benchmark.model import DatasetInfo
from benchmark.registry import create_model
from tests import modelkit

SMALL = {"hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 2}


small_splits = partial(modelkit.small_splits, max_len=10, pattern_items=40)


def make_trainer(out: Path, epochs: int, seed: int = 1) -> Trainer:
    splits, n_items = small_splits()
    torch.manual_seed(seed)
    model = create_model("SASRec", DatasetInfo(n_items=n_items, max_len=10), SMALL)
    config = TrainConfig(learning_rate=5e-3, batch_size=64, epochs=epochs, patience=2, seed=seed)
    return Trainer(model, splits, config, out, torch.device("cpu"), progress=False)


def test_early_stopping_is_recboles_rule():
    stop = EarlyStopping(patience=2)
    outcomes = [stop.update(v) for v in (0.10001, 0.10004, 0.09, 0.1, 0.08, 0.07)]
    # 0.10004 rounds to 0.1000 == best -> counts as an improvement (>=); later 0.1 too.
    assert outcomes == [True, True, False, True, False, False]
    assert not stop.should_stop
    stop.update(0.05)
    assert stop.should_stop  # three consecutive misses > patience 2


def test_training_is_deterministic_and_writes_ranks(tmp_path):
    a = make_trainer(tmp_path / "a", epochs=3).fit()
    b = make_trainer(tmp_path / "b", epochs=3).fit()
    assert a == b
    ranks = np.load(tmp_path / "a" / "test_ranks.npy", allow_pickle=False)
    assert ranks.dtype == np.int32 and len(ranks) == 60 and ranks.min() >= 1
    assert summarize(ranks)["ndcg@10"] == pytest.approx(a["test"]["ndcg@10"], abs=5e-5)
    log = [json.loads(line) for line in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2]
    assert {"train_seconds", "eval_seconds", "loss", "valid"} <= set(log[0])


def test_killed_then_resumed_run_matches_uninterrupted(tmp_path):
    full = make_trainer(tmp_path / "full", epochs=4).fit()
    # Interrupted after two epochs (as a kill after the epoch-1 checkpoint would leave it) ...
    make_trainer(tmp_path / "cut", epochs=2).fit()
    # ... and resumed with the full budget.
    resumed = make_trainer(tmp_path / "cut", epochs=4).fit(resume=True)
    assert resumed == full
    assert np.array_equal(np.load(tmp_path / "cut" / "test_ranks.npy"), np.load(tmp_path / "full" / "test_ranks.npy"))
    log = [json.loads(line)["epoch"] for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert log == [0, 1, 2, 3]


def test_chunked_evaluation_equals_one_chunk():
    splits, n_items = small_splits()
    torch.manual_seed(0)
    model = create_model("SASRec", DatasetInfo(n_items=n_items, max_len=10), SMALL)
    whole = full_sort_ranks(model, splits, splits.test, memory_cap=1 << 30)
    tiny = full_sort_ranks(model, splits, splits.test, memory_cap=n_items * 16 * 7)
    assert users_per_chunk(n_items, n_items * 16 * 7) == 7
    assert np.array_equal(whole, tiny)
    assert np.array_equal(whole, full_sort_ranks(model, splits, splits.test))  # deterministic


def test_movies_size_evaluation_chunks_stay_small():
    # 281,700 users x 59,203 items never materialise: each chunk's scores fit the cap.
    rows = users_per_chunk(59_203, 1 << 30)
    assert rows * 59_203 * 4 < (1 << 30) and rows >= 512
