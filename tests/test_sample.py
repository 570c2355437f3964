"""The bundled Online Retail sample: its builder, its pinned file, and preparing it offline."""

from __future__ import annotations

import gzip
import json
import shlex
from pathlib import Path

import pytest

from benchmark.cli import build_parser, main
from benchmark.data.prepare import prepare
from benchmark.data.readers.online_retail import COLUMNS
from benchmark.data.sample import build_sample, sample_csv, select
from benchmark.data.sources import BUNDLED_DIR, OR_ATTRIBUTION, OR_SAMPLE_COMMAND, get_source
from benchmark.errors import TedbenchError
from benchmark.fsutil import file_digest

BUNDLED = BUNDLED_DIR / "OR-sample.csv.gz"
# `tedbench stats --dataset OR-sample` (5-core, the default tie order and seed).
EXPECTED_STATS = {
    "users": 1600,
    "items": 1373,
    "interactions": 31125,
    "raw_interactions": 32725,
    "sparsity": 98.5851,
    "avg_length": 20.4531,
}
HEADER = ",".join(COLUMNS) + "\n"


@pytest.fixture(autouse=True)
def no_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing found through the environment: no mirror, no raw folder, no data root."""
    for name in ("TEDBENCH_MIRROR", "TEDBENCH_RAW", "TEDBENCH_DATA"):
        monkeypatch.delenv(name, raising=False)


def lines(path: Path) -> list[bytes]:
    return gzip.decompress(path.read_bytes()).splitlines(keepends=True)


def is_subsequence(part: list[bytes], whole: list[bytes]) -> bool:
    rest = iter(whole)
    return all(any(line == other for other in rest) for line in part)


def test_bundled_file_matches_its_pinned_checksum():
    source = get_source("OR-sample")
    (spec,) = source.forms[0].files
    assert spec.bundled and BUNDLED.exists()
    assert spec.digest == f"sha256:{file_digest(BUNDLED)}"
    assert source.redistributable and source.licence == get_source("OR").licence
    assert source.attribution.startswith(OR_ATTRIBUTION) and OR_SAMPLE_COMMAND in source.attribution
    assert BUNDLED.stat().st_size < 1_500_000


def test_bundled_file_is_gzip_without_name_or_time():
    head = BUNDLED.read_bytes()[:10]
    assert head[:3] == b"\x1f\x8b\x08" and head[3] == 0  # deflate, no FNAME/FEXTRA/FCOMMENT
    assert head[4:8] == b"\0\0\0\0"  # mtime 0


def test_prepare_needs_no_mirror(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)  # the bundled file is found in the package, not the working directory
    counts = prepare("OR-sample", data_root=tmp_path / "data", mirror=None, raw_root=tmp_path / "raw", download=False)
    assert counts == EXPECTED_STATS
    manifest = json.loads((tmp_path / "data" / "processed" / "OR-sample" / "manifest.json").read_text())
    assert manifest["form"] == "bundled" and manifest["k_core"] == 5 and manifest["text_coverage"] == 1.0
    assert not (tmp_path / "raw").exists()


def test_stats_command_offline(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert (
        main(
            [
                "stats",
                "--dataset",
                "OR-sample",
                "--data-root",
                str(tmp_path / "data"),
                "--raw-root",
                str(tmp_path / "raw"),
                "--json",
            ]
        )
        == 0
    )
    stats = json.loads(capsys.readouterr().out)
    assert {k: stats[k] for k in EXPECTED_STATS} == EXPECTED_STATS


def test_builder_is_deterministic(tmp_path: Path):
    first = build_sample(
        "OR-sample", invoices=40, items=500, seed=7, out=tmp_path / "a.csv.gz", mirror=None, raw_root=tmp_path
    )
    second = build_sample(
        "OR-sample", invoices=40, items=500, seed=7, out=tmp_path / "b" / "b.csv.gz", mirror=None, raw_root=tmp_path
    )
    assert (tmp_path / "a.csv.gz").read_bytes() == (tmp_path / "b" / "b.csv.gz").read_bytes()
    assert first["sha256"] == second["sha256"] and first["invoices_written"] <= 40
    other = build_sample(
        "OR-sample", invoices=40, items=500, seed=8, out=tmp_path / "c.csv.gz", mirror=None, raw_root=tmp_path
    )
    assert other["sha256"] != first["sha256"]
    written = lines(tmp_path / "a.csv.gz")
    assert written[0].decode() == HEADER and len(written) == first["rows"] + 1
    assert is_subsequence(written, lines(BUNDLED))  # rows unchanged, original order
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically, nothing left behind


def test_invoices_are_whole_without_items(tmp_path: Path):
    result = build_sample("OR-sample", invoices=25, seed=3, out=tmp_path / "s.csv.gz", mirror=None, raw_root=tmp_path)
    chosen = {line.split(b",", 1)[0] for line in lines(tmp_path / "s.csv.gz")[1:]}
    assert len(chosen) == result["invoices_written"] == 25
    assert sum(1 for line in lines(BUNDLED)[1:] if line.split(b",", 1)[0] in chosen) == result["rows"]


def test_sample_keeps_quoted_fields_byte_for_byte():
    rows = [
        '1,A,"PLAIN, WITH COMMA",1,12/1/2010 8:26,1,1,UK\n',
        '2,B,"TWO\nLINES",1,12/1/2010 8:26,1,1,UK\n',
        '3,C,"QUOTE "" INSIDE",1,12/1/2010 8:26,1,1,UK\n',
        "1,D,LAST,1,12/1/2010 8:26,1,1,UK",  # no final line end
    ]
    payload, counts = sample_csv((HEADER + "".join(rows)).encode(), invoices=3, seed=0)
    assert payload.decode() == HEADER + "".join(rows) + "\n"
    assert counts["source_rows"] == counts["rows"] == 4 and counts["source_invoices"] == 3
    (chosen,) = select({"1", "2", "3"}, 1, 5, "invoice")
    one, _ = sample_csv((HEADER + "".join(rows)).encode(), invoices=1, seed=5)
    kept = [row if row.endswith("\n") else row + "\n" for row in rows if row.startswith(chosen + ",")]
    assert one.decode() == HEADER + "".join(kept)


def test_recorded_command_rebuilds_the_bundled_rows(mirror: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    argv = shlex.split(OR_SAMPLE_COMMAND)[1:]
    args = build_parser().parse_args(argv)
    assert (args.dataset, Path(args.out)) == ("OR", Path("benchmark/data/bundled/OR-sample.csv.gz"))
    out = tmp_path / "OR-sample.csv.gz"
    argv[argv.index("--out") + 1] = str(out)
    assert main([*argv, "--mirror", str(mirror), "--raw-root", str(tmp_path / "raw")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["sha256"] == file_digest(out)
    # The same rows; the compressed bytes match too where zlib is the same.
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(BUNDLED.read_bytes())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"invoices": 0}, "--invoices must be a positive whole number"),
        ({"invoices": -3}, "--invoices must be a positive whole number"),
        ({"invoices": 2.5}, "--invoices must be a positive whole number"),
        ({"invoices": 10, "items": 0}, "--items must be a positive whole number"),
        ({"invoices": 10**6}, r"exceeds the 2,675 invoices"),
        ({"invoices": 10, "items": 10**6}, r"exceeds the 1,994 stock codes"),
        ({"invoices": 10, "seed": "x"}, "--seed must be a whole number"),
        ({"invoices": 10, "out": "sample.csv"}, "give a path ending in .csv.gz"),
        ({"invoices": 10, "dataset": "ml-1m"}, "cannot be sampled"),
        ({"invoices": 10, "out": str(BUNDLED)}, "is the file being sampled"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict, message: str):
    options = {
        "dataset": "OR-sample",
        "seed": 1,
        "out": tmp_path / "s.csv.gz",
        "mirror": None,
        "raw_root": tmp_path,
    } | kwargs
    with pytest.raises(TedbenchError, match=message):
        build_sample(options.pop("dataset"), **options)
    assert not (tmp_path / "s.csv.gz").exists()


def test_bad_csv_names_the_line():
    with pytest.raises(TedbenchError, match="line 1: expected the header"):
        sample_csv(b"a,b\n1,2\n", invoices=1, seed=0)
    with pytest.raises(TedbenchError, match="line 3: expected 8 fields, found 2"):
        sample_csv((HEADER + "1,A,X,1,12/1/2010 8:26,1,1,UK\n1,2\n").encode(), invoices=1, seed=0)
    with pytest.raises(TedbenchError, match="line 2: not valid utf-8"):
        sample_csv(HEADER.encode() + b"\xff\n", invoices=1, seed=0)
    with pytest.raises(TedbenchError, match="would hold no rows"):
        sample_csv(HEADER.encode(), invoices=0, seed=0)


def test_missing_source_is_a_clear_error(tmp_path: Path):
    with pytest.raises(TedbenchError, match="no complete form found"):
        build_sample(
            "OR", invoices=10, seed=1, out=tmp_path / "s.csv.gz", mirror=tmp_path / "no-mirror", raw_root=tmp_path
        )


def test_cli_reports_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["sample", "--dataset", "OR-sample", "--invoices", "0", "--out", str(tmp_path / "s.csv.gz")]) == 2
    assert "tedbench: error: argument --invoices: expected an integer >= 1, got '0'" in capsys.readouterr().err
