"""Export to the FMLP-Rec / DLFS-Rec input formats, the official log parser, and (with a checkout) the official
loaders' reading of the export."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmark.errors import TedbenchError
from benchmark.fidelity.standalone import (
    CONTEXT_DIM,
    DLFSREC_SIDE_FEATURES,
    OFFICIAL_CODE,
    OFFICIAL_DATA_NAME,
    SAMPLED_NEGATIVES,
    export_dlfsrec,
    export_fmlprec,
    finished_official,
    official_command,
    official_train_rows,
    parse_official_log,
    sampled_negatives,
    user_sequences,
)
from benchmark.fidelity.verify import ReportSide, SideRun, write_report
from tests.modelkit import splits_of

MAX_LEN = 5


@pytest.fixture(scope="module")
def data() -> tuple:
    """Users of 3..12 interactions (some longer than MAX_LEN + 2) over 150 items."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(3, 13, size=40)
    users = np.repeat(np.arange(len(lengths)), lengths)
    items = rng.integers(0, 150, size=len(users))
    splits, n_items = splits_of(users, items, MAX_LEN, prefiltered=True)
    return splits, n_items, user_sequences(splits)


def read_id_lines(path: Path) -> list[list[int]]:
    """The official loaders' reading (utils.get_user_seqs_and_sample): `user, items = line.split(' ', 1)`."""
    return [[int(item) for item in line.strip().split(" ", 1)[1].split(" ")] for line in path.read_text().splitlines()]


def left_padded_rows(sequences: list[list[int]], max_len: int) -> dict[str, list[tuple[int, tuple[int, ...], int]]]:
    """(user, input cut to max_len, target) of the official datasets.py: train = every prefix of
    `seq[-(max_len + 2):-2]` (the first one empty), valid = seq[:-1], test = seq (input = all but the last)."""

    def row(user: int, items: list[int]) -> tuple[int, tuple[int, ...], int]:
        return user, tuple(items[:-1][-max_len:]), items[-1]

    rows: dict[str, list] = {"train": [], "valid": [], "test": []}
    for user, sequence in enumerate(sequences):
        window = sequence[-(max_len + 2) : -2]
        rows["train"] += [row(user, window[: i + 1]) for i in range(len(window))]
        rows["valid"].append(row(user, sequence[:-1]))
        rows["test"].append(row(user, sequence))
    return rows


def tedbench_rows(splits, name: str) -> list[tuple[int, tuple[int, ...], int]]:
    rows = getattr(splits, name)
    seq, length, target = splits.batch(rows)
    users = np.searchsorted(splits.valid.user_start.numpy(), rows.user_start.numpy())
    return [(int(u), tuple(s[:n].tolist()), int(t)) for u, s, n, t in zip(users, seq, length.tolist(), target)]


def test_export_keeps_users_items_and_the_leave_one_out_split(data, tmp_path: Path) -> None:
    splits, n_items, sequences = data
    export_fmlprec(sequences, None, n_items, tmp_path, seed=1)
    assert read_id_lines(tmp_path / f"{OFFICIAL_DATA_NAME}.txt") == sequences
    official = left_padded_rows(read_id_lines(tmp_path / f"{OFFICIAL_DATA_NAME}.txt"), MAX_LEN)
    for name in ("valid", "test"):
        assert official[name] == tedbench_rows(splits, name)
    ours = tedbench_rows(splits, "train")
    assert len(official["train"]) == official_train_rows(sequences, MAX_LEN)
    short = {user for user, sequence in enumerate(sequences) if len(sequence) - 2 <= MAX_LEN}
    assert short and len(short) < len(sequences)  # both kinds of users are exercised
    # a short user's official rows are tedbench's plus one with an empty input (the first item as target)
    assert sorted(r for r in official["train"] if r[0] in short and r[1]) == sorted(r for r in ours if r[0] in short)
    assert sum(1 for r in official["train"] if not r[1]) == len(sequences)


def test_sampled_negatives_are_distinct_absent_ids(data, tmp_path: Path) -> None:
    _, n_items, sequences = data
    export_fmlprec(sequences, None, n_items, tmp_path, seed=1)
    negatives = read_id_lines(tmp_path / f"{OFFICIAL_DATA_NAME}_sample.txt")
    assert len(negatives) == len(sequences)
    for sequence, row in zip(sequences, negatives):
        assert len(set(row)) == SAMPLED_NEGATIVES and not set(row) & set(sequence)
        assert all(1 <= item < n_items for item in row)
    with pytest.raises(TedbenchError, match="fewer than 99"):
        sampled_negatives([[1, 2, 3]], 50, seed=0)


class ExportUnpickler(pickle.Unpickler):
    """Reads back the export (a pickle, the official loader's format) allowing only numpy's array types."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"the export may hold only numpy arrays, not {module}.{name}")
        return super().find_class(module, name)


def test_dlfsrec_export_carries_the_text_and_the_official_feature_size(data, tmp_path: Path) -> None:
    _, n_items, sequences = data
    text = np.random.default_rng(1).normal(size=(n_items, 12)).astype(np.float32)
    text[0] = 0
    export_dlfsrec(sequences, text, n_items, tmp_path, seed=1)
    with open(tmp_path / f"{OFFICIAL_DATA_NAME}_all_multi_word.dat", "rb") as handle:
        dat = ExportUnpickler(handle).load()
    # utils.get_data_dic's reading
    users = list(dat["user_seq_token"].values())
    assert [[item for item, _ in user] for user in users] == sequences
    assert all(context == [0.0] * CONTEXT_DIM for user in users for _, context in user)
    assert len(dat["item2id"]) == n_items and len(dat["user2id"]) - 1 == len(sequences)
    feature_size = 6 + 1 + len(dat["category2id"]) + len(dat["brand2id"]) - 2
    assert feature_size == CONTEXT_DIM + text.shape[1]
    np.testing.assert_array_equal(dat["items_feat"], text)
    with pytest.raises(TedbenchError, match="item text"):
        export_dlfsrec(sequences, None, n_items, tmp_path, seed=1)


FMLP_LOG = """Namespace(data_dir='d/', data_name='Beauty')
Total Parameters: 164480
{'epoch': 0, 'rec_loss': '1.3003'}
{'Epoch': 0, 'HIT@5': '0.0400', 'NDCG@5': '0.0250', 'HIT@10': '0.0650', 'NDCG@10': '0.0331', 'HIT@20': '0.1000', 'NDCG@20': '0.0420'}
Validation score increased.  Saving model ...
{'epoch': 1, 'rec_loss': '1.2166'}
{'Epoch': 1, 'HIT@5': '0.0300', 'NDCG@5': '0.0200', 'HIT@10': '0.0600', 'NDCG@10': '0.0276', 'HIT@20': '0.0900', 'NDCG@20': '0.0390'}
EarlyStopping counter: 1 out of 10
---------------Sample 99 results---------------
{'Epoch': 0, 'HIT@5': '0.0456', 'NDCG@5': '0.0265', 'HIT@10': '0.0706', 'NDCG@10': '0.0345', 'HIT@20': '0.1138', 'NDCG@20': '0.0452'}
FMLPRec-Beauty-Dec-01-2026_13-04-20
{'Epoch': 0, 'HIT@5': '0.0456', 'NDCG@5': '0.0265', 'HIT@10': '0.0706', 'NDCG@10': '0.0345', 'HIT@20': '0.1138', 'NDCG@20': '0.0452'}
"""


def test_official_log_parses_into_a_side_run() -> None:
    run = parse_official_log(FMLP_LOG, "rec_loss", seed=2020)
    assert run.loss == [1.3003, 1.2166] and run.valid == [0.0331, 0.0276] and run.best_epoch == 0
    assert run.test == {"recall@10": 0.0706, "ndcg@10": 0.0345, "recall@20": 0.1138, "ndcg@20": 0.0452}
    dlfs = FMLP_LOG.replace("'rec_loss': '1.3003'", "'rec_loss': '3.0', 'rec_avg_loss': '2.3022'").replace(
        "'rec_loss': '1.2166'", "'rec_loss': '2.0', 'rec_avg_loss': '1.9'"
    )
    assert parse_official_log(dlfs, "rec_avg_loss", seed=2020).loss == [2.3022, 1.9]


def test_an_unfinished_official_log_is_an_error() -> None:
    unfinished = FMLP_LOG.split("---------------Sample")[0]
    with pytest.raises(TedbenchError, match="test missing"):
        parse_official_log(unfinished, "rec_loss", seed=2020)
    with pytest.raises(TedbenchError, match="line 3"):
        parse_official_log(FMLP_LOG.replace("'rec_loss': '1.3003'}", "'rec_loss': x}"), "rec_loss", seed=2020)


# -- with an official checkout ---------------------------------------------------------------------------
def checkout(variable: str) -> Path:
    path = os.environ.get(variable)
    if not path:
        pytest.skip(f"{variable} does not name an official checkout")
    return Path(path)


def run_in_checkout(path: Path, code: str, *args: str) -> object:
    """Run `code` with the checkout's modules importable (its own process: its `datasets`, `utils` modules)."""
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=path, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


READ_FMLP = """
import argparse, json, sys
from utils import get_seq_dic
from datasets import FMLPRecDataset
args = argparse.Namespace(data_dir=sys.argv[1], data_name=sys.argv[2], max_seq_length=int(sys.argv[3]))
seq_dic, max_item = get_seq_dic(args)
rows = {kind: FMLPRecDataset(args, seq_dic['user_seq'], data_type=kind).user_seq for kind in ('train', 'valid', 'test')}
print(json.dumps({'user_seq': seq_dic['user_seq'], 'sample_seq': seq_dic['sample_seq'], 'rows': rows}))
"""


@pytest.mark.parity
def test_official_fmlprec_loader_reads_our_export(data, tmp_path: Path) -> None:
    path = checkout("TEDBENCH_FMLP_CHECKOUT")
    _, n_items, sequences = data
    export_fmlprec(sequences, None, n_items, tmp_path, seed=1)
    read = run_in_checkout(path, READ_FMLP, f"{tmp_path}/", OFFICIAL_DATA_NAME, str(MAX_LEN))
    assert read["user_seq"] == sequences
    assert read["sample_seq"] == read_id_lines(tmp_path / f"{OFFICIAL_DATA_NAME}_sample.txt")
    expected = left_padded_rows(sequences, MAX_LEN)
    for kind, rows in read["rows"].items():  # the official rows hold input + target; inputs are cut at use
        users = [u for u, s in enumerate(sequences) for _ in range(min(len(s) - 2, MAX_LEN) if kind == "train" else 1)]
        assert [(u, tuple(r[:-1][-MAX_LEN:]), r[-1]) for u, r in zip(users, rows)] == expected[kind]


READ_DLFS = f"""
import argparse, json, sys, torch, utils
{DLFSREC_SIDE_FEATURES}
args = argparse.Namespace(data_dir=sys.argv[1], data_name=sys.argv[2])
data = utils.get_data_dic(args)
print(json.dumps({{'user_seq': data['user_seq'], 'n_items': data['n_items'], 'n_users': data['n_users'],
                  'feature_size': data['feature_size'],
                  'features': utils.get_feats_vec(data['items_feat'], data).tolist()}}))
"""


@pytest.mark.parity
def test_official_dlfsrec_loader_reads_our_export(data, tmp_path: Path) -> None:
    path = checkout("TEDBENCH_DLFS_CHECKOUT")
    _, n_items, sequences = data
    text = np.random.default_rng(2).normal(size=(n_items, 8)).astype(np.float32)
    export_dlfsrec(sequences, text, n_items, tmp_path, seed=1)
    read = run_in_checkout(path, READ_DLFS, f"{tmp_path}/", OFFICIAL_DATA_NAME)
    assert read["user_seq"] == sequences
    assert (read["n_items"], read["n_users"]) == (n_items, len(sequences))
    assert read["feature_size"] == CONTEXT_DIM + text.shape[1]
    np.testing.assert_allclose(np.array(read["features"]), text)


def test_report_names_the_reference_side(tmp_path: Path) -> None:
    ours = [SideRun(2020, [7.0, 6.5], [0.03, 0.04], 1, {"ndcg@10": 0.04})]
    theirs = [SideRun(2020, [1.3, 1.2, 1.1], [0.02, 0.03, 0.035], 2, {"ndcg@10": 0.035})]
    write_report(tmp_path, "a", {"model": "M", "dataset": "D"}, ours, theirs, ReportSide("official", "official O/R"))
    markdown = (tmp_path / "a.md").read_text()
    assert "tedbench vs official O/R" in markdown and "RecBole" not in markdown
    assert "| 2 | – | 1.1000 | – | 0.0350 | 0 / 1 |" in markdown
    header = (tmp_path / "a.epochs.csv").read_text().splitlines()[0]
    assert "official_loss_mean" in header and "recbole" not in header
    assert "official,2020,2," in (tmp_path / "a.test.csv").read_text()
    write_report(tmp_path, "b", {"model": "M", "dataset": "D"}, ours, theirs)  # the default: RecBole
    assert (
        "recbole_seeds" in (tmp_path / "b.epochs.csv").read_text()
        and "| loss RecBole 1.2.1 |" in (tmp_path / "b.md").read_text()
    )


def test_a_finished_official_run_of_the_same_command_is_read_back(tmp_path: Path) -> None:
    code, log = OFFICIAL_CODE["FMLP-Rec"], tmp_path / "stdout.log"
    command = official_command(code, tmp_path / "data", tmp_path, seed=2020, epochs=2, patience=10)
    log.write_text(FMLP_LOG)
    assert finished_official(code, command, "abc", log, 2020) is None  # no record of a finished run
    (tmp_path / "command.json").write_text(json.dumps({"command": command, "commit": "abc"}))
    assert finished_official(code, command, "abc", log, 2020).test["ndcg@10"] == 0.0345
    assert finished_official(code, command, "def", log, 2020) is None  # another commit
    other = official_command(code, tmp_path / "data", tmp_path, seed=2020, epochs=3, patience=10)
    assert finished_official(code, other, "abc", log, 2020) is None
