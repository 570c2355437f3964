"""Faults and bad inputs for `tedbench report`, on copies of committed run folders (no training).

A SIGKILL at each publish point, then a rerun, gives the outputs of an uninterrupted report byte for
byte (PNG and SVG included: the figures are deterministic) and leaves no staging files. Every bad
input is one `tedbench: error:` line naming the file, exit 2, with the previous outputs untouched.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.engine import runstate
from benchmark.metrics import summarize
from benchmark.report import publish
from benchmark.report.build import build_report
from tests.faultkit import kill_at, orphans

COMMITTED = Path(__file__).resolve().parents[1] / "results" / "runs"
SUBSET = ("ml-1m/SASRec", "ml-1m/UniSRec", "ml-1m/TedRec", "ml-1m/TedRec@wo-AG", "OR/SASRec", "OR/TedRec")
OUTPUTS = ("tables", "figures", "metrics.json")
SASREC = "ml-1m/SASRec/seed2020"  # the run the bad-input rows corrupt


def copy_runs(root: Path, folders: tuple[str, ...] = SUBSET) -> Path:
    for folder in folders:
        shutil.copytree(COMMITTED / folder, root / folder)
    return root


def digests(out: Path) -> dict[str, str]:
    """Every published output file (hidden staging names would show up here too)."""
    files = [out / "metrics.json", *sorted((out / "tables").rglob("*")), *sorted((out / "figures").rglob("*"))]
    files = [p for p in files if p.is_file()]
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def report_args(runs: Path, out: Path, *extra: str) -> list[str]:
    return ["report", "--runs", str(runs), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path, dict[str, str]]:
    """The runs, an uninterrupted report of them, and an older report (fewer runs) to publish over."""
    root = tmp_path_factory.mktemp("reference")
    runs = copy_runs(root / "runs")
    build_report(runs, root / "out")
    older = copy_runs(root / "older-runs", SUBSET[:2])
    build_report(older, root / "previous")
    return runs, root / "out", root / "previous", digests(root / "out")


def previous_outputs(reference, folder: Path) -> Path:
    """`folder` holding the older report, as a user's results folder would before a new report."""
    shutil.copytree(reference[2], folder)
    return folder


def cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, list[str]]:
    code = main(args)
    return code, capsys.readouterr().err.splitlines()


# -- kills ----------------------------------------------------------------------------------------


def test_kill_before_publish_then_rerun(reference, tmp_path, capsys):
    runs, _, previous, expected = reference
    out = previous_outputs(reference, tmp_path / "out")
    kill_at(report_args(runs, out), "report.before_publish", tmp_path / "pause")
    assert digests(out) == digests(previous) and orphans(out)  # nothing published; a dead attempt's staging folder
    code, err = cli(report_args(runs, out), capsys)
    assert code == 0, err
    assert digests(out) == expected and orphans(out) == []


def test_kill_mid_publish_is_completed_by_the_next_report(reference, tmp_path, capsys):
    """Killed between renames: the next report completes that publication before reading any input, even if it
    then fails."""
    source, _, previous, expected = reference
    runs = shutil.copytree(source, tmp_path / "runs")
    out = previous_outputs(reference, tmp_path / "out")
    kill_at(report_args(runs, out), "report.mid_publish", tmp_path / "pause")

    def tables(found: dict[str, str]) -> dict[str, str]:
        return {k: v for k, v in found.items() if k.startswith("tables/")}

    assert tables(digests(out)) == tables(expected) != tables(digests(previous))
    assert (out / "metrics.json").read_bytes() == (previous / "metrics.json").read_bytes()  # a mix, for now
    assert orphans(out)
    ranks = runs / SASREC / "test_ranks.npy"
    ranks.rename(ranks.with_name("aside.npy"))
    code, err = cli(report_args(runs, out), capsys)
    assert code == 2 and len(err) == 1 and "test_ranks.npy: missing" in err[0]
    assert digests(out) == expected and orphans(out) == []  # the killed attempt, complete
    ranks.with_name("aside.npy").rename(ranks)
    code, err = cli(report_args(runs, out), capsys)
    assert code == 0, err
    assert digests(out) == expected and orphans(out) == []


# -- bad inputs -----------------------------------------------------------------------------------


def edit_npy(name: str, change: Callable[[np.ndarray], object]) -> Callable[[Path], None]:
    def corrupt(runs: Path) -> None:
        path = runs / SASREC / name
        np.save(path, change(np.load(path)), allow_pickle=True)

    return corrupt


def edit_json(folder: str, name: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    def corrupt(runs: Path) -> None:
        path = runs / folder / name
        data = json.loads(path.read_text())
        result = change(data)
        path.write_text(json.dumps(data if result is None else result, allow_nan=True))

    return corrupt


def other_settings(folder: str, change: Callable[[dict], object]) -> Callable[[Path], None]:
    """A finished run of other settings: its config.json changed and its completion marker rewritten."""

    def rerun(runs: Path) -> None:
        edit_json(folder, "config.json", change)(runs)
        config = json.loads((runs / folder / "config.json").read_text())
        runstate.mark_done(runs / folder, runstate.settings_of(config))

    return rerun


def write_bytes(name: str, payload: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def corrupt(runs: Path) -> None:
        path = runs / SASREC / name
        path.write_bytes(payload(path.read_bytes()))

    return corrupt


def shorter_run(runs: Path) -> None:
    """Ranks, user count and recorded means agree with each other, but not with the other ml-1m runs."""
    folder = runs / SASREC
    ranks = np.load(folder / "test_ranks.npy")[:-1]
    np.save(folder / "test_ranks.npy", ranks)
    np.save(folder / "valid_ranks.npy", np.load(folder / "valid_ranks.npy")[:-1])
    metrics = json.loads((folder / "metrics.json").read_text())
    valid = np.load(folder / "valid_ranks.npy")
    metrics.update(
        users=len(ranks),
        test={k: round(v, 4) for k, v in summarize(ranks).items()},
        valid={k: round(v, 4) for k, v in summarize(valid).items()},
    )
    (folder / "metrics.json").write_text(json.dumps(metrics))
    users = (folder / runstate.USERS).read_text().splitlines()[:-1]
    (folder / runstate.USERS).write_text("".join(f"{line}\n" for line in users))
    runstate.mark_done(folder, runstate.settings_of(json.loads((folder / "config.json").read_text())))


def other_runs_ranks(runs: Path) -> None:
    shutil.copy(runs / "ml-1m/TedRec/seed2020/test_ranks.npy", runs / SASREC / "test_ranks.npy")


def save_npz(runs: Path) -> None:
    path = runs / SASREC / "test_ranks.npy"
    ranks = np.load(path)
    with open(path, "wb") as handle:
        np.savez(handle, ranks=ranks)


def set_key(section: str, key: str, value: object) -> Callable[[dict], None]:
    return lambda config: config[section].update({key: value})


def drop(section: str, key: str) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        del (config[section] if section else config)[key]

    return change


BAD_INPUTS = [
    # (id, corrupt a copy of the runs, expected part of the error line)
    ("ranks-short", edit_npy("test_ranks.npy", lambda r: r[:-1]), f"{SASREC}/test_ranks.npy: 999 ranks, but"),
    ("ranks-long", edit_npy("test_ranks.npy", lambda r: np.concatenate([r, r[:5]])), "test_ranks.npy: 1,005 ranks"),
    ("ranks-other-length-than-dataset", shorter_run, "runs of one dataset must rank the same users"),
    ("ranks-2d", edit_npy("test_ranks.npy", lambda r: r.reshape(-1, 1)), "test_ranks.npy: ranks must be 1-D"),
    (
        "ranks-float",
        edit_npy("test_ranks.npy", lambda r: r.astype(np.float64)),
        "test_ranks.npy: ranks must be integers",
    ),
    ("ranks-bool", edit_npy("test_ranks.npy", lambda r: r > 5), "got dtype bool"),
    (
        "ranks-zero",
        edit_npy("test_ranks.npy", lambda r: np.where(np.arange(len(r)) == 3, 0, r)),
        "test_ranks.npy: ranks must be >= 1",
    ),
    ("ranks-negative", edit_npy("test_ranks.npy", lambda r: -r), "ranks must be >= 1"),
    ("ranks-empty", edit_npy("test_ranks.npy", lambda r: r[:0]), "test_ranks.npy: no ranks"),
    (
        "ranks-object",
        edit_npy("test_ranks.npy", lambda r: np.array([1, "x"], dtype=object)),
        "test_ranks.npy: not a readable .npy array",
    ),
    ("ranks-npz", save_npz, "test_ranks.npy: not a .npy array"),
    (
        "ranks-garbage",
        write_bytes("test_ranks.npy", lambda b: b"not numpy at all"),
        "test_ranks.npy: not a readable .npy array",
    ),
    (
        "ranks-truncated",
        write_bytes("test_ranks.npy", lambda b: b[: len(b) // 2]),
        "test_ranks.npy: not a readable .npy array",
    ),
    ("ranks-missing", lambda runs: (runs / SASREC / "test_ranks.npy").unlink(), f"{SASREC}/test_ranks.npy: missing"),
    ("ranks-of-another-run", other_runs_ranks, "the files are from different runs"),
    ("valid-ranks-short", edit_npy("valid_ranks.npy", lambda r: r[:-1]), "valid_ranks.npy: 999 ranks"),
    ("config-torn", write_bytes("config.json", lambda b: b[: len(b) // 2]), f"{SASREC}/config.json: malformed JSON"),
    ("config-not-utf8", write_bytes("config.json", lambda b: b"\xff\xfe" + b), "config.json: cannot read"),
    ("config-list", edit_json(SASREC, "config.json", lambda c: [c]), "config.json: expected a JSON object, got list"),
    ("config-no-seed", edit_json(SASREC, "config.json", drop("train_config", "seed")), "integer 'seed'"),
    ("config-no-model", edit_json(SASREC, "config.json", drop("", "model")), "config.json: 'model' must be"),
    (
        "config-nan",
        edit_json(SASREC, "config.json", set_key("model_config", "learning_rate", float("nan"))),
        "NaN is not a finite number",
    ),
    ("metrics-torn", write_bytes("metrics.json", lambda b: b[:-3]), f"{SASREC}/metrics.json: malformed JSON"),
    (
        "metrics-infinity",
        edit_json(SASREC, "metrics.json", set_key("test", "recall@10", float("inf"))),
        "metrics.json: malformed JSON (Infinity",
    ),
    (
        "metrics-users-zero",
        edit_json(SASREC, "metrics.json", lambda m: m.update(users=0)),
        "'users' must be a positive integer",
    ),
    ("log-torn", write_bytes("log.jsonl", lambda b: b[:-9]), f"{SASREC}/log.jsonl:"),
    (
        "mixed-epochs",
        other_settings(SASREC, set_key("train_config", "epochs", 7)),
        "differ in train_config.epochs; report one",
    ),
    (
        "mixed-model-config",
        other_settings(SASREC, set_key("model_config", "hidden_size", 32)),
        "differ in model_config.hidden_size",
    ),
    ("mixed-manifest", other_settings(SASREC, lambda c: c.update(dataset_manifest={})), "differ in dataset_manifest"),
    ("mixed-profile", other_settings(SASREC, lambda c: c.update(profile="paper")), "differ in profile"),
    (
        "mixed-embedding",
        other_settings("ml-1m/TedRec/seed2021", lambda c: c.update(embedding_key="0" * 64)),
        "differ in embedding_key",
    ),
    (
        "same-seed-twice",
        lambda runs: shutil.copytree(runs / SASREC, runs / "ml-1m/SASRec/again"),
        "cell ml-1m/SASRec with seed 2020",
    ),
]


@pytest.mark.parametrize(("corrupt", "expected"), [row[1:] for row in BAD_INPUTS], ids=[row[0] for row in BAD_INPUTS])
def test_bad_input_is_one_line_error_and_outputs_stay(corrupt, expected, reference, tmp_path, capsys):
    runs = shutil.copytree(reference[0], tmp_path / "runs")
    out = previous_outputs(reference, tmp_path / "out")
    corrupt(runs)
    code, err = cli(report_args(runs, out), capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("tedbench: error: ") and expected in err[0], err[0]
    assert digests(out) == digests(reference[2]) and orphans(out) == []


def test_allow_mixed_reports_and_says_so(reference, tmp_path, capsys):
    runs = shutil.copytree(reference[0], tmp_path / "runs")
    other_settings(SASREC, set_key("train_config", "epochs", 7))(runs)
    out = tmp_path / "out"
    code, err = cli(report_args(runs, out, "--allow-mixed"), capsys)
    assert code == 0, err
    note = "MIXED configurations allowed by --allow-mixed: cell ml-1m/SASRec in train_config.epochs"
    assert all(
        note in (out / "tables" / f"{name}.md").read_text()
        for name in ("table3", "table3_tests", "table3_vs_paper", "timings")
    )
    assert "MIXED configurations allowed" in (out / "tables" / "table3.tex").read_text()
    assert "epochs=5/7" in (out / "tables" / "table3.md").read_text()
    assert "MIXED" not in (reference[1] / "tables" / "table3.md").read_text()
    shutil.copytree(runs / SASREC, runs / "ml-1m/SASRec/again")
    code, err = cli(report_args(runs, out, "--allow-mixed"), capsys)
    assert code == 2 and "with seed 2020" in err[0]  # the flag never allows one seed twice


# -- output faults --------------------------------------------------------------------------------


def test_write_error_while_building_leaves_previous_outputs(reference, tmp_path, capsys, monkeypatch):
    out = previous_outputs(reference, tmp_path / "out")

    def disk_full(fig, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr("matplotlib.figure.Figure.savefig", disk_full)
    code, err = cli(report_args(reference[0], out), capsys)
    assert code == 2 and len(err) == 1 and "No space left on device" in err[0] and "fig3_ablation" in err[0]
    assert digests(out) == digests(reference[2]) and orphans(out) == []


def test_rename_error_while_publishing_rolls_back(reference, tmp_path, capsys, monkeypatch):
    out = previous_outputs(reference, tmp_path / "out")
    rename, refused = os.rename, []

    def refuse_figures(src, dst):
        if Path(dst) == out / "figures" and not refused:  # the new figures' rename, once
            refused.append(src)
            raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))
        rename(src, dst)

    monkeypatch.setattr(publish.os, "rename", refuse_figures)
    code, err = cli(report_args(reference[0], out), capsys)
    assert code == 2 and len(err) == 1
    assert "Permission denied" in err[0] and "figures" in err[0] and "unchanged" in err[0]
    assert refused and digests(out) == digests(reference[2]) and orphans(out) == []
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)


def test_failed_roll_back_is_completed_by_the_next_report(reference, tmp_path, capsys, monkeypatch):
    source, _, _, expected = reference
    runs = shutil.copytree(source, tmp_path / "runs")
    out = previous_outputs(reference, tmp_path / "out")
    rename = os.rename

    def refuse_figures(src, dst):  # both the publish and its roll-back fail
        if Path(dst) == out / "figures":
            raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))
        rename(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(publish.os, "rename", refuse_figures)
        code, err = cli(report_args(runs, out), capsys)
    assert code == 2 and len(err) == 1 and "mixes two reports until the next report" in err[0]
    (runs / SASREC / "config.json").write_text("{")
    code, err = cli(report_args(runs, out), capsys)
    assert code == 2 and "config.json: malformed JSON" in err[0]
    assert digests(out) == expected and orphans(out) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_figures_folder(reference, tmp_path, capsys):
    out = previous_outputs(reference, tmp_path / "out")
    (out / "figures").chmod(0o555)
    try:
        code, err = cli(report_args(reference[0], out), capsys)
    finally:
        (out / "figures").chmod(0o755)
    assert code == 2 and len(err) == 1 and f"{out / 'figures'}: not writable" in err[0]
    assert digests(out) == digests(reference[2]) and orphans(out) == []


def test_output_path_of_the_wrong_kind(reference, tmp_path, capsys):
    out = previous_outputs(reference, tmp_path / "out")
    shutil.rmtree(out / "figures")
    (out / "figures").write_text("not a folder")
    before = (out / "metrics.json").read_bytes()
    code, err = cli(report_args(reference[0], out), capsys)
    assert code == 2 and len(err) == 1 and f"{out / 'figures'}: expected a folder, not a file" in err[0]
    assert (out / "metrics.json").read_bytes() == before and orphans(out) == []
