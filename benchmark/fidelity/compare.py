"""`tedbench compare-runs`: two sets of finished runs of one setting, seeds apart, side by side.

For a change that must leave results the same in distribution (a kernel route, a numerics option, another
machine): each side is a folder searched for finished run folders (`DONE.json` matching the files, as
`tedbench train` and the pipeline write them). Every run of both sides must have the same settings
(`runstate.SETTINGS_KEYS`) but the seed. The report is `verify.write_report`'s (per-epoch loss and valid
NDCG@10 as mean ± std over seeds, per-seed test metrics, the verdict: test NDCG@10 means within two standard
errors), with each side's environment (`environment.json`: code commit, route of float32 CPU products,
allocator, torch) in its header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.engine.runstate import (
    CONFIG,
    ENVIRONMENT,
    differing_keys,
    is_finished,
    read_config,
    settings_of,
    stored_metrics,
)
from benchmark.errors import TedbenchError
from benchmark.fidelity.verify import ReportSide, SideRun, finished_side_run, write_report

ENVIRONMENT_KEYS = ("cpu_matmul", "allocator", "device", "host")
BEFORE_ROUTE = "mkl (not recorded: torch's default, before the route existed)"  # environments without it


@dataclass(frozen=True)
class Side:
    """One side of the comparison: its runs, their shared settings (seed left out) and environments."""

    name: ReportSide
    runs: list[SideRun]
    settings: dict[str, Any]
    environments: list[str]


def _without_seed(config: dict[str, Any]) -> dict[str, Any]:
    settings = settings_of(config)
    return {**settings, "train_config": {k: v for k, v in settings["train_config"].items() if k != "seed"}}


def _environment(folder: Path) -> str:
    path = folder / ENVIRONMENT
    if not path.exists():
        return "unrecorded"
    env = json.loads(path.read_text(encoding="utf-8"))
    commit = (env.get("git") or {}).get("commit", "?")[:7]
    parts = [f"commit {commit}", f"torch {env.get('packages', {}).get('torch', '?')}"]
    env.setdefault("cpu_matmul", BEFORE_ROUTE)
    parts += [f"{key} {env[key]}" for key in ENVIRONMENT_KEYS if key in env]
    return ", ".join(parts)


def load_side(folder: Path, name: ReportSide) -> Side:
    """The finished runs under `folder`; unfinished ones and runs of differing settings are refused."""
    folders = sorted(path.parent for path in Path(folder).rglob(CONFIG))
    if not folders:
        raise TedbenchError(f"{folder}: no run folders (config.json) under it")
    runs, settings, environments = [], None, []
    for run in folders:
        config = read_config(run)
        if not is_finished(run, settings_of(config)):
            raise TedbenchError(f"{run}: not a finished run (no DONE.json matching its files)")
        own = _without_seed(config)
        if settings is not None and own != settings:
            raise TedbenchError(f"{run}: other settings than {folders[0]} ({', '.join(differing_keys(settings, own))})")
        settings = own
        runs.append(finished_side_run(run, int(config["train_config"]["seed"]), stored_metrics(run)))
        environments.append(_environment(run))
    return Side(name, runs, settings, sorted(set(environments)))


def compare_runs(
    runs: Path, against: Path, labels: tuple[str, str], out: Path, stem: str, command: str
) -> dict[str, Any]:
    """`out/STEM.md` (+ CSVs) comparing the runs under `runs` with those under `against`; returns the verdict."""
    ours = load_side(runs, ReportSide("runs", labels[0]))
    theirs = load_side(against, ReportSide("against", labels[1]))
    changed = differing_keys(ours.settings, theirs.settings)
    if changed:
        raise TedbenchError(f"{runs} and {against} hold runs of different settings ({', '.join(changed)})")
    settings = ours.settings
    header = {
        "model": settings["model"],
        "dataset": settings["dataset"],
        "command": f"`{command}`",
        "profile": settings["profile"],
        "encoder": settings["encoder"],
        "model options": json.dumps(settings["model_config"], sort_keys=True),
        "training": json.dumps(settings["train_config"], sort_keys=True),
    }
    for side, folder in ((ours, runs), (theirs, against)):
        seeds = ", ".join(str(run.seed) for run in side.runs)
        header[f"{side.name.label}"] = f"`{folder}`, seeds {seeds}; " + " | ".join(side.environments)
    return write_report(out, stem, header, ours.runs, theirs.runs, theirs.name, ours.name, title="Same results")
