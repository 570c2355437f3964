"""`tedbench export --format recbole`: the files by hand for a small case, the round trip through
`tedbench import --benchmark`, and RecBole 1.2.1 reading the files as tedbench's split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch

from benchmark.cli import main
from benchmark.data.prepare import import_recbole
from benchmark.data.splits import build_splits
from benchmark.data.store import load_sequences
from benchmark.layout import processed_dir
from benchmark.recbole_compat import recbole_config
from tests.recbolekit import BASE_CONFIG, recbole

SPLITS = ("train", "valid", "test")

# user -> items in time order: a 60-item user (histories cut to 50), a 3-item user (no train rows).
SEQUENCES = {
    "long": [f"i{step % 7}" for step in range(60)],
    "u1": ["i1", "i2", "i3", "i4"],
    "short": ["i3", "i1", "i2"],
    "u2": ["i6", "i5", "i4", "i3", "i2"],
}
TEXTS = {"i1": "one.", "i2": "two words.", "i3": "three", "i5": "five  spaced."}  # i4, i6, i0: no text


def processed(root: Path, name: str = "small") -> Path:
    """`name` imported (no k-core) from an atomic file of `SEQUENCES` and an .item file of `TEXTS`; the data root."""
    root.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    lines += [f"{user}\t{item}\t{step}" for user, items in SEQUENCES.items() for step, item in enumerate(items)]
    (root / "small.inter").write_text("\n".join(lines) + "\n", encoding="utf-8")
    item_lines = ["item_id:token\ttitle:token_seq"] + [f"{item}\t{text}" for item, text in TEXTS.items()]
    (root / "small.item").write_text("\n".join(item_lines) + "\n", encoding="utf-8")
    import_recbole(name, data_root=root / "data", atomic=root / "small.inter", item_file=root / "small.item", k=1)
    return root / "data"


def export(data: Path, out: Path, capsys, *extra: str, name: str = "small") -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(
        ["export", "--format", "recbole", "--dataset", name, "--out", str(out), "--data-root", str(data), *extra]
    )
    stdout, stderr = capsys.readouterr()
    return code, stdout, stderr


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_export_writes_the_leave_one_out_rows(tmp_path: Path, capsys) -> None:
    data = processed(tmp_path)
    out = tmp_path / "out" / "small"
    code, stdout, err = export(data, out, capsys)

    assert code == 0, err
    header = "user_id:token\titem_id_list:token_seq\titem_id:token"
    train, valid, test = (lines(out / f"small.{split}.inter") for split in SPLITS)
    assert train[0] == valid[0] == test[0] == header
    assert [row for row in train if row.startswith("u1\t")] == ["u1\ti1\ti2"]
    assert [row for row in train if row.startswith("u2\t")] == ["u2\ti6\ti5", "u2\ti6 i5\ti4"]
    assert not any(row.startswith("short\t") for row in train)
    assert valid[1:] == [
        "long\t" + " ".join(SEQUENCES["long"][8:58]) + "\ti2",
        "u1\ti1 i2\ti3",
        "short\ti3\ti1",
        "u2\ti6 i5 i4\ti3",
    ]
    assert test[1:] == [
        "long\t" + " ".join(SEQUENCES["long"][9:59]) + "\ti3",
        "u1\ti1 i2 i3\ti4",
        "short\ti3 i1\ti2",
        "u2\ti6 i5 i4 i3\ti2",
    ]
    long_rows = [row.split("\t") for row in train if row.startswith("long\t")]
    assert len(long_rows) == 57 and long_rows[-1][1].split() == SEQUENCES["long"][7:57] and long_rows[-1][2] == "i1"
    # texts as the import made them ("three" gained its "."), only for items that have one, in id order
    assert lines(out / "small.item") == [
        "item_id:token\ttext:token_seq",
        "i1\tone.",
        "i2\ttwo words.",
        "i3\tthree.",
        "i5\tfive  spaced.",
    ]
    assert json.loads(stdout)["rows"] == {
        "small.train.inter": 57 + 1 + 2,
        "small.valid.inter": 4,
        "small.test.inter": 4,
        "small.item": 4,
    }


def test_round_trip_through_import_benchmark(tmp_path: Path, capsys) -> None:
    data = processed(tmp_path)
    out = tmp_path / "out"
    assert export(data, out, capsys)[0] == 0
    other = tmp_path / "other"
    other.mkdir()
    for path in out.iterdir():
        shutil.copy(path, other / path.name.replace("small.", "copy.", 1))
    capsys.readouterr()
    assert main(["import", "--name", "copy", "--benchmark", str(other), "--data-root", str(data)]) == 0, (
        capsys.readouterr()
    )

    first, second = (load_sequences(processed_dir(data, name)) for name in ("small", "copy"))
    for field in ("items", "offsets"):
        assert np.array_equal(getattr(first, field), getattr(second, field)), field
    for field in ("user_tokens", "item_tokens", "item_text"):
        assert getattr(first, field) == getattr(second, field), field
    a, b = build_splits(first, 50), build_splits(second, 50)
    assert torch.equal(a.items, b.items) and a.user_tokens == b.user_tokens
    for split in SPLITS:
        assert torch.equal(getattr(a, split).target_pos, getattr(b, split).target_pos), split
        assert torch.equal(getattr(a, split).user_start, getattr(b, split).user_start), split


def test_refuses_a_non_empty_folder_and_force_replaces_only_an_export(tmp_path: Path, capsys) -> None:
    data = processed(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "small.item").write_text("stale\n")
    (out / "small.test.inter").write_text("stale\n")
    code, _, err = export(data, out, capsys)
    assert code == 2 and "not empty (small.item, small.test.inter); pass --force" in err and err.count("\n") == 1
    assert lines(out / "small.item") == ["stale"]

    assert export(data, out, capsys, "--force")[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [
        f"small.{s}" for s in ("item", "test.inter", "train.inter", "valid.inter")
    ]
    assert lines(out / "small.item")[1] == "i1\tone."

    (out / "notes.txt").write_text("mine\n")
    code, _, err = export(data, out, capsys, "--force")
    assert code == 2 and "holds more than RecBole benchmark files (notes.txt)" in err
    assert (out / "notes.txt").read_text() == "mine\n" and lines(out / "small.item")[1] == "i1\tone."

    (tmp_path / "file").write_text("x\n")
    code, _, err = export(data, tmp_path / "file", capsys, "--force")
    assert code == 2 and "is a link or a file" in err
    code, _, err = export(data, tmp_path / "new", capsys, name="absent")
    assert code == 2 and "run `tedbench prepare`" in err and not (tmp_path / "new").exists()


def test_refuses_tokens_the_files_cannot_hold(tmp_path: Path, capsys) -> None:
    data = processed(tmp_path)
    folder = processed_dir(data, "small")
    tokens = lines(folder / "items.txt")
    (folder / "items.txt").write_text("\n".join(["i 1", *tokens[1:]]) + "\n", encoding="utf-8")
    code, _, err = export(data, tmp_path / "out", capsys)
    assert code == 2 and "items.txt: line 1: item token 'i 1' holds whitespace" in err
    assert not (tmp_path / "out").exists()


def test_recbole_reads_the_export_as_tedbench_splits_it(tmp_path: Path, capsys) -> None:
    """RecBole 1.2.1 with `benchmark_filename: [train, valid, test]` reads the same rows and item sequences."""
    recbole()
    from recbole.data import create_dataset

    data = processed(tmp_path)
    assert export(data, tmp_path / "recbole" / "small", capsys)[0] == 0
    settings = {
        **BASE_CONFIG,
        "data_path": str(tmp_path / "recbole"),
        "benchmark_filename": list(SPLITS),
        "alias_of_item_id": ["item_id_list"],
        "MAX_ITEM_LIST_LENGTH": 50,
    }
    dataset = create_dataset(recbole_config("SASRec", "small", settings))
    parts = dataset.build()

    seqs = load_sequences(processed_dir(data, "small"))
    splits = build_splits(seqs, 50)
    tokens = np.asarray(["[PAD]", *seqs.item_tokens], dtype=object)
    item_names = dataset.field2id_token["item_id"]
    user_names = dataset.field2id_token["user_id"]
    for split, part in zip(SPLITS, parts):
        seq, length, target = splits.batch(getattr(splits, split))
        users = np.searchsorted(seqs.offsets[:-1], getattr(splits, split).user_start.numpy())
        ours = [
            (seqs.user_tokens[u], list(tokens[s[:n]]), tokens[t])
            for u, s, n, t in zip(users, seq.numpy(), length.numpy(), target.numpy())
        ]
        feat = part.inter_feat
        theirs = [
            (user_names[u], list(item_names[s[:n]]), item_names[t])
            for u, s, n, t in zip(
                feat["user_id"].numpy(),
                feat["item_id_list"].numpy(),
                feat["item_length"].numpy(),
                feat["item_id"].numpy(),
            )
        ]
        assert len(part) == len(ours), split
        assert theirs == ours, split
