"""`tedbench prepare/stats` on the real mirror: the paper's Table 2, determinism, bad input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.data.prepare import prepare
from benchmark.data.store import load_sequences

TABLE2 = {
    "ml-1m": {"users": 6040, "items": 3416, "interactions": 993571, "sparsity": 95.1867},
    "OR": {"users": 16520, "items": 3469, "interactions": 503386, "sparsity": 99.1219},
}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("name", ["ml-1m", "OR"])
def test_stats_equal_paper_table2(name, mirror, tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        "stats",
        "--dataset",
        name,
        "--json",
        "--mirror",
        str(mirror),
        "--data-root",
        str(tmp_path / "data"),
        "--raw-root",
        str(tmp_path / "raw"),
    )
    assert code == 0
    stats = json.loads(out)
    assert {k: stats[k] for k in TABLE2[name]} == TABLE2[name]
    assert stats["partial"] is False


def test_prepare_twice_is_byte_identical(mirror, tmp_path, capsys):
    digests = []
    for attempt in range(2):
        root = tmp_path / f"data{attempt}"
        code, _, _ = run_cli(
            capsys,
            "prepare",
            "--dataset",
            "OR",
            "--offline",
            "--mirror",
            str(mirror),
            "--data-root",
            str(root),
            "--raw-root",
            str(tmp_path / "raw"),
        )
        assert code == 0
        digests.append(tree_digest(root / "processed" / "OR"))
    assert digests[0] == digests[1]
    manifest = json.loads((tmp_path / "data0" / "processed" / "OR" / "manifest.json").read_text())
    assert manifest["tie_order"] == "random" and manifest["tie_seed"] == 2020
    assert manifest["source_files"]


def test_tie_order_changes_or_sequences(prepared_root, mirror, tmp_path):
    prepare("OR", data_root=tmp_path, mirror=mirror, raw_root=tmp_path / "raw", tie_order="file", download=False)
    randomised, file_order = (
        load_sequences(prepared_root / "processed" / "OR"),
        load_sequences(tmp_path / "processed" / "OR"),
    )
    assert randomised.n_users == file_order.n_users and len(randomised.items) == len(file_order.items)

    def decode(s):
        return [s.item_tokens[i - 1] for i in s.items]

    assert decode(randomised) != decode(file_order)
    assert sorted(decode(randomised)) == sorted(decode(file_order))
    # The first invoice in file order keeps the CSV's line order.
    first = file_order.item_tokens[:3]
    assert first == ["85123A", "71053", "84406B"]


def test_item_text_as_the_paper(prepared_root):
    ml = load_sequences(prepared_root / "processed" / "ml-1m")
    assert ml.item_text[ml.item_tokens.index("1")] == "Toy Story 1995 Animation Children's Comedy."
    retail = load_sequences(prepared_root / "processed" / "OR")
    assert retail.item_text[retail.item_tokens.index("85123A")] == "white hanging heart t-light holder."


def test_corrupt_mirror_file_fails_cleanly(mirror, tmp_path, capsys):
    bad = tmp_path / "mirror" / "derived" / "OR"
    bad.mkdir(parents=True)
    data = bytearray((mirror / "derived" / "OR" / "data-utf8.csv.gz").read_bytes())
    data[1000] ^= 0xFF
    (bad / "data-utf8.csv.gz").write_bytes(bytes(data))
    code, out, err = run_cli(
        capsys,
        "prepare",
        "--dataset",
        "OR",
        "--form",
        "csv",
        "--offline",
        "--mirror",
        str(tmp_path / "mirror"),
        "--data-root",
        str(tmp_path / "data"),
        "--raw-root",
        str(tmp_path / "raw"),
    )
    assert code != 0
    assert err.count("\n") == 1 and "data-utf8.csv.gz" in err and "checksum mismatch" in err
    assert not (tmp_path / "data").exists() or not any((tmp_path / "data").rglob("*"))


def test_missing_mirror_file_and_unknown_names(tmp_path, capsys):
    code, _, err = run_cli(
        capsys,
        "prepare",
        "--dataset",
        "ml-1m",
        "--offline",
        "--mirror",
        str(tmp_path),
        "--data-root",
        str(tmp_path / "d"),
        "--raw-root",
        str(tmp_path / "raw"),
    )
    assert code != 0 and "ml-1m" in err and "atomic/ml-1m/ml-1m.inter" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "prepare", "--dataset", "ml-2m", "--offline")
    assert code != 0 and "unknown dataset 'ml-2m'" in err
    assert not (tmp_path / "d").exists()


def test_fetch_copies_verified_files(mirror, tmp_path, capsys):
    code, out, _ = run_cli(
        capsys, "fetch", "--dataset", "ml-1m", "--offline", "--mirror", str(mirror), "--raw-root", str(tmp_path / "raw")
    )
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "raw" / "ml-1m").iterdir()) == ["ml-1m.inter", "ml-1m.item"]
    # Prepared from the local copies alone, with no mirror.
    counts = prepare("ml-1m", data_root=tmp_path / "d", mirror=None, raw_root=tmp_path / "raw", download=False)
    assert counts["interactions"] == TABLE2["ml-1m"]["interactions"]


@pytest.mark.slow
def test_office_partial_release(mirror, tmp_path, capsys):
    code, out, _ = run_cli(
        capsys,
        "stats",
        "--dataset",
        "Office",
        "--json",
        "--mirror",
        str(mirror),
        "--data-root",
        str(tmp_path / "data"),
        "--raw-root",
        str(tmp_path / "raw"),
    )
    assert code == 0
    stats = json.loads(out)
    assert (stats["users"], stats["items"]) == (87346, 25986)
    assert stats["partial"] is True
    assert 0.15 < stats["text_coverage"] < 0.2
