"""The official DIF-SR comparison without the official checkout: the atomic export and the log parser."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.data.process import Sequences
from benchmark.data.splits import build_splits
from benchmark.engine.trainer import TrainConfig
from benchmark.errors import TedbenchError
from benchmark.fidelity.difsr import (
    check_counts,
    export,
    item_file,
    official_command,
    overlay,
    parse_log,
    run_official,
)
from benchmark.fidelity.verify import DATASET_NAME
from benchmark.registry import get_model

ATTRIBUTES = [["Drama"], ["Comedy", "Romance"], [], ["Action", "Sci-Fi", "Thriller"], ["Children's"], ["Drama"]]


def sequences() -> Sequences:
    rng = np.random.default_rng(7)
    lengths = [3, 5, 8, 4, 60]  # one user longer than max_len: the export keeps every interaction
    items = rng.integers(1, len(ATTRIBUTES) + 1, sum(lengths)).astype(np.int32)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Sequences(
        items,
        offsets,
        [f"u{u}" for u in range(len(lengths))],
        [f"m{i}" for i in range(1, len(ATTRIBUTES) + 1)],
        ["text"] * len(ATTRIBUTES),
        ATTRIBUTES,
    )


def read_table(path: Path) -> tuple[list[str], list[list[str]]]:
    header, *rows = path.read_text().splitlines()
    return header.split("\t"), [line.split("\t") for line in rows]


def test_export_round_trip(tmp_path: Path) -> None:
    seqs = sequences()
    export(build_splits(seqs, max_len=50), ATTRIBUTES, tmp_path)
    header, rows = read_table(tmp_path / f"{DATASET_NAME}.inter")
    assert header == ["user_id:token", "item_id:token", "timestamp:float"]
    by_user: dict[int, list[tuple[float, int]]] = {}
    for user, item, time in rows:
        by_user.setdefault(int(user), []).append((float(time), int(item)))
    assert sorted(by_user) == list(range(seqs.n_users))
    for user, events in by_user.items():  # the official order (TO) is the timestamp: the sequence comes back
        assert [item for _, item in sorted(events)] == seqs.items[seqs.offsets[user] : seqs.offsets[user + 1]].tolist()
    header, rows = read_table(tmp_path / f"{DATASET_NAME}.item")
    assert header == ["item_id:token", "genre:token_seq"]
    assert [int(item) for item, _ in rows] == list(range(1, seqs.n_items))  # every id, unused ones included
    assert [tokens.split() for _, tokens in rows] == ATTRIBUTES


def test_attribute_tokens_with_whitespace_are_refused() -> None:
    with pytest.raises(TedbenchError, match="item 2: attribute 'Film Noir'"):
        item_file([["Drama"], ["Film Noir"]])


def test_overlay_sets_our_options_after_the_official_config(tmp_path: Path) -> None:
    config = get_model("DIF-SR").config({"hidden_size": 64, "attribute_hidden_size": 32, "lambda_attr": 5.0})
    settings = overlay(config, TrainConfig(epochs=7, patience=3, batch_size=256), tmp_path, 50, 11, tmp_path)
    assert (settings["hidden_size"], settings["attribute_hidden_size"], settings["lamdas"]) == (64, [32], [5.0])
    budget = (settings["epochs"], settings["stopping_step"], settings["train_batch_size"], settings["seed"])
    assert budget == (7, 3, 256, 11)
    assert settings["selected_features"] == ["genre"] and "genre" in settings["load_col"]["item"]
    command = official_command("py", Path("/x/DIF-SR"), tmp_path / "overlay.yaml")
    assert command[:2] == ["py", "/x/DIF-SR/run_recbole.py"]
    assert command[-1] == f"--config_files=/x/DIF-SR/configs/Amazon_Beauty.yaml {tmp_path / 'overlay.yaml'}"


# Recorded from AIM-SE/DIF-SR@b600052 run_recbole.py (its log file), shortened.
LOG = """\
Tue 01 Dec 2026 13:09:57 INFO  
General Hyper Parameters:
gpu_id = 0
use_gpu = False
seed = 2020
state = INFO
Tue 01 Dec 2026 13:10:02 INFO  tedbench
The number of users: 21
Average actions of users: 253.15
The number of items: 3417
Average actions of items: 1.6089005235602094
The number of inters: 5063
Tue 01 Dec 2026 13:10:26 INFO  epoch 0 training [time: 23.17s, train loss: 150.4826]
Tue 01 Dec 2026 13:10:26 INFO  epoch 0 evaluating [time: 0.03s, valid_score: 0.012300]
Tue 01 Dec 2026 13:10:26 INFO  valid result: 
recall@10 : 0.05    recall@20 : 0.1    ndcg@10 : 0.0123    ndcg@20 : 0.0245    
Tue 01 Dec 2026 13:10:26 INFO  Saving current best: /work/official/smoke/saved/SASRecD-Dec-01-2026_13-09-58.pth
Tue 01 Dec 2026 13:10:47 INFO  \x1b[32mepoch 1 training\x1b[0m [\x1b[34mtime\x1b[0m: 21.42s, \x1b[34mtrain loss\x1b[0m: 148.5752]
Tue 01 Dec 2026 13:10:47 INFO  epoch 1 evaluating [time: 0.03s, valid_score: 0.010000]
Tue 01 Dec 2026 13:10:47 INFO  valid result: 
recall@10 : 0.05    recall@20 : 0.05    ndcg@10 : 0.01    ndcg@20 : 0.0155    
Tue 01 Dec 2026 13:10:48 INFO  best valid : {'recall@10': 0.05, 'recall@20': 0.1, 'ndcg@10': 0.0123, 'ndcg@20': 0.0245}
Tue 01 Dec 2026 13:10:48 INFO  test result: {'recall@10': 0.1, 'recall@20': 0.15, 'ndcg@10': 0.0431, 'ndcg@20': 0.0555}
"""


def test_parse_log_reads_the_recorded_official_log() -> None:
    run, counts = parse_log(LOG, batches_per_epoch=10)
    assert run.seed == 2020
    assert run.loss == pytest.approx([15.04826, 14.85752])  # the logged epoch sums over 10 batches
    assert run.valid == [0.0123, 0.01]
    assert run.best_epoch == 0  # the last "Saving current best"
    assert run.test == {"recall@10": 0.1, "recall@20": 0.15, "ndcg@10": 0.0431, "ndcg@20": 0.0555}
    assert counts == {"users": 21, "items": 3417, "inters": 5063}
    check_counts(counts, users=20, items=3416, inters=5063)
    with pytest.raises(TedbenchError, match="official code loaded"):
        check_counts(counts, users=20, items=3416, inters=5064)


def test_parse_log_refuses_an_unfinished_run() -> None:
    unfinished = LOG.rsplit("Tue 01 Dec 2026 13:10:48", 1)[0]
    with pytest.raises(TedbenchError, match="no `test result` line"):
        parse_log(unfinished, batches_per_epoch=10)
    with pytest.raises(TedbenchError, match="2 training epochs but 1 evaluations"):
        parse_log(LOG.replace("epoch 1 evaluating", "epoch 1 skipped"), batches_per_epoch=10)


def test_a_finished_official_run_of_the_same_overlay_is_reused(tmp_path: Path) -> None:
    (tmp_path / "log").mkdir()
    (tmp_path / "log" / "SASRecD-Dec-01-2026_13-09-57.log").write_text(LOG)
    overlay_file = tmp_path / "overlay.yaml"
    overlay_file.write_text("seed: 2020\n")
    failing = ["false"]  # stands in for the official script: reaching it fails
    run, _ = run_official(failing, tmp_path, overlay_file, "seed: 2020\n", batches_per_epoch=10)
    assert run.test["ndcg@10"] == 0.0431
    with pytest.raises(TedbenchError, match="the official run failed"):
        run_official(failing, tmp_path, overlay_file, "seed: 2021\n", batches_per_epoch=10)
    assert overlay_file.read_text() == "seed: 2021\n"
