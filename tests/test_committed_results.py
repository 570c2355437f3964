"""The committed reduced-budget results: the report rebuilds them byte for byte from the committed runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark.report.build import build_report

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "results"


def test_report_rebuilds_the_committed_tables(tmp_path: Path) -> None:
    if not (RESULTS / "runs").is_dir():
        pytest.fail("results/runs is missing: the reduced-budget runs must be committed")
    build_report(RESULTS / "runs", tmp_path)
    committed = sorted(p.relative_to(RESULTS) for p in (RESULTS / "tables").iterdir())
    rebuilt = sorted(p.relative_to(tmp_path) for p in (tmp_path / "tables").iterdir())
    assert rebuilt == committed
    for name in [*committed, Path("metrics.json")]:
        assert (tmp_path / name).read_bytes() == (RESULTS / name).read_bytes(), name
    figures = {p.name for p in (RESULTS / "figures").iterdir()}
    assert figures == {p.name for p in (tmp_path / "figures").iterdir()}
    assert {"fig3_ablation.png", "fig4_efficiency.svg", "fig5_user_groups.png"} <= figures
