"""The committed results (the reduced-budget `results/` and the `small` suite's `results/small/`): the report rebuilds
their tables and headline metrics byte for byte from the committed runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.report.build import build_report

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"


@pytest.mark.parametrize("results", [RESULTS, RESULTS / "small"], ids=["reduced", "small"])
def test_report_rebuilds_the_committed_tables(results: Path, tmp_path: Path) -> None:
    if not (results / "runs").is_dir():
        pytest.fail(f"{results / 'runs'} is missing: the runs behind the committed tables must be committed")
    build_report(results / "runs", tmp_path)
    committed = sorted(p.relative_to(results) for p in (results / "tables").iterdir())
    rebuilt = sorted(p.relative_to(tmp_path) for p in (tmp_path / "tables").iterdir())
    assert rebuilt == committed
    for name in [*committed, Path("metrics.json")]:
        assert (tmp_path / name).read_bytes() == (results / name).read_bytes(), name
    figures = {p.name for p in (results / "figures").iterdir()}
    assert figures == {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"fig3_ablation.png", "fig4_efficiency.svg", "fig5_user_groups.png"} <= figures
