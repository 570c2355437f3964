"""Staging names, orphan clean-up and safe names (benchmark/fsutil.py)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmark.errors import TedbenchError
from benchmark.fsutil import atomic_dir, clean_orphans, safe_name, write_json


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    return int(proc.stdout)


def test_orphans_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    dead = _dead_pid()
    (tmp_path / f".a.json.pid{dead}.x1.tmp").write_text("half")
    (tmp_path / f".d.pid{dead}.x2.tmp").mkdir()
    live = tmp_path / f".b.json.pid{os.getppid()}.x3.tmp"
    live.write_text("in progress")
    write_json(tmp_path / "c.json", {"k": 1})
    removed = clean_orphans(tmp_path)
    assert sorted(p.name for p in removed) == sorted([f".a.json.pid{dead}.x1.tmp", f".d.pid{dead}.x2.tmp"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, "c.json"])


def test_a_replacement_killed_between_its_renames_is_rolled_back(tmp_path):
    final = tmp_path / "dataset"
    final.mkdir()
    (final / "data.txt").write_text("published")
    parked = tmp_path / f".dataset.pid{_dead_pid()}.old.tmp"
    os.replace(final, parked)  # the state a kill leaves between `final -> old` and `staging -> final`
    clean_orphans(tmp_path)
    assert (final / "data.txt").read_text() == "published"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dataset"]


def test_atomic_dir_replaces_a_folder_whole(tmp_path):
    final = tmp_path / "out"
    with atomic_dir(final) as staging:
        (staging / "a").write_text("1")
    with atomic_dir(final) as staging:
        (staging / "b").write_text("2")
    assert sorted(p.name for p in final.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.mark.parametrize("name", ["..", ".", "../x", "a/b", ".hidden", "", "a..b", "x" * 129, "a b", "a\\b"])
def test_unsafe_names_are_refused(name):
    with pytest.raises(TedbenchError, match="use 1-128 letters"):
        safe_name(name, "dataset")


@pytest.mark.parametrize("name", ["ml-1m", "OR-sample", "UniSRec+TedRec", "Office_2018", "S3-Rec"])
def test_safe_names_pass(name):
    assert safe_name(name, "dataset") == name


def test_clean_orphans_of_one_name_leaves_the_rest(tmp_path):
    dead = _dead_pid()
    mine, other = tmp_path / f".out.csv.gz.pid{dead}.a1.tmp", tmp_path / f".notes.txt.pid{dead}.b2.tmp"
    mine.write_text("half")
    other.write_text("someone else's")
    assert clean_orphans(tmp_path, "out.csv.gz") == [mine]
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name]
