"""`tedbench compare-runs`: finished runs of one setting side by side, checked against the runs' own metrics."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark.cli import main

RUNS = Path(__file__).resolve().parents[1] / "results" / "small" / "runs" / "OR-sample"


def _copy(tmp_path: Path, side: str, model: str, seeds: tuple[int, ...]) -> Path:
    for seed in seeds:
        shutil.copytree(RUNS / model / f"seed{seed}", tmp_path / side / f"seed{seed}")
    return tmp_path / side


def _test_ndcg(model: str, seeds: tuple[int, ...]) -> list[float]:
    return [json.loads((RUNS / model / f"seed{s}" / "metrics.json").read_text())["test"]["ndcg@10"] for s in seeds]


def test_the_verdict_and_curves_follow_the_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = (2020, 2021), (2022,)
    runs, against = _copy(tmp_path, "a", "TedRec", a), _copy(tmp_path, "b", "TedRec", b)
    assert (
        main(
            [
                "compare-runs",
                *map(str, (runs, against)),
                "--stem",
                "t",
                "--out",
                str(tmp_path / "out"),
                "--labels",
                "A",
                "B",
            ]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["ndcg@10_difference"] == pytest.approx(np.mean(_test_ndcg("TedRec", a)) - _test_ndcg("TedRec", b)[0])
    assert result["standard_error"] is None  # one seed on a side: no standard error, no verdict
    assert result["verdict"].startswith("undetermined")
    epochs = (tmp_path / "out" / "t.epochs.csv").read_text().splitlines()
    first = dict(zip(epochs[0].split(","), epochs[1].split(",")))
    logs = [json.loads((RUNS / "TedRec" / f"seed{s}" / "log.jsonl").read_text().splitlines()[0]) for s in a]
    assert float(first["runs_valid_ndcg@10_mean"]) == pytest.approx(np.mean([r["valid"]["ndcg@10"] for r in logs]))
    assert "commit" in (tmp_path / "out" / "t.md").read_text()


def test_runs_of_other_settings_or_unfinished_runs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs, against = _copy(tmp_path, "a", "TedRec", (2020,)), _copy(tmp_path, "b", "TedRec@wo-MM", (2020,))
    assert main(["compare-runs", str(runs), str(against), "--stem", "t", "--out", str(tmp_path / "out")]) == 2
    assert "model_config.modulation" in capsys.readouterr().err
    (against / "seed2020" / "DONE.json").unlink()
    assert main(["compare-runs", str(runs), str(against), "--stem", "t", "--out", str(tmp_path / "out")]) == 2
    assert "not a finished run" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
