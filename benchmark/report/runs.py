"""Run folders -> cells: discovery, per-user metrics, epoch timings and the run profile.

A cell is (dataset, model, encoder, tag); its runs differ by seed. The encoder is None for
ID-only models (their config.json has no "encoder"), and an empty tag counts as no tag.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import TedbenchError
from benchmark.metrics import per_user_metrics

CellKey = tuple[str, str, str | None, str | None]

PAPER_DATASETS = ("ml-1m", "OR", "Office", "Food", "Movies")
PAPER_BUDGET = {"epochs": 300, "patience": 10, "batch_size": 2048, "max_steps_per_epoch": None, "user_subsample": None}
# Used for Tables 3-4 and the figures when no encoder is named: the paper's, then the offline default.
PREFERRED_ENCODERS = ("bert-cls", "minilm")


@dataclass
class Run:
    path: Path
    config: dict[str, Any]

    @property
    def key(self) -> CellKey:
        c = self.config
        return c["dataset"], c["model"], c.get("encoder"), c.get("tag") or None

    @property
    def seed(self) -> int:
        return int(self.config["train_config"]["seed"])

    @cached_property
    def per_user(self) -> dict[str, np.ndarray]:
        """Per-user test metrics from test_ranks.npy (users in the dataset's internal order)."""
        return per_user_metrics(np.load(self.path / "test_ranks.npy", allow_pickle=False))

    @cached_property
    def epoch_seconds(self) -> float | None:
        """Mean training seconds of the fine-tuning epochs (epoch >= 0; pre-training excluded)."""
        log = self.path / "log.jsonl"
        if not log.exists():
            return None
        records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        seconds = [r["train_seconds"] for r in records if r["epoch"] >= 0 and r.get("stage") != "pretrain"]
        return float(np.mean(seconds)) if seconds else None


@dataclass
class Cell:
    key: CellKey
    runs: list[Run] = field(default_factory=list)  # sorted by seed, one run per seed

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(run.seed for run in self.runs)

    @property
    def n_users(self) -> int:
        return len(next(iter(self.runs[0].per_user.values())))

    def values(self, metric: str) -> np.ndarray:
        """One test mean per seed."""
        return np.array([run.per_user[metric].mean() for run in self.runs])

    def mean(self, metric: str) -> float:
        return float(self.values(metric).mean())

    def std(self, metric: str) -> float | None:
        """Sample std (ddof=1) across seeds; None with one seed."""
        values = self.values(metric)
        return float(values.std(ddof=1)) if len(values) > 1 else None

    def per_user(self, metric: str, seeds: Iterable[int] | None = None) -> np.ndarray:
        """Each user's metric averaged over `seeds` (default: all of this cell's seeds)."""
        chosen = set(self.seeds if seeds is None else seeds)
        return np.mean([run.per_user[metric] for run in self.runs if run.seed in chosen], axis=0)

    def epoch_seconds(self) -> float | None:
        seconds = [s for s in (run.epoch_seconds for run in self.runs) if s is not None]
        return float(np.mean(seconds)) if seconds else None


class RunIndex:
    """All runs under a root, grouped into cells."""

    def __init__(self, runs: Iterable[Run]):
        self.cells: dict[CellKey, Cell] = {}
        for run in sorted(runs, key=lambda r: (str(r.key), r.seed, str(r.path))):
            cell = self.cells.setdefault(run.key, Cell(run.key))
            if cell.runs and cell.runs[-1].seed == run.seed:
                raise TedbenchError(f"two runs of {run.key} with seed {run.seed}: {cell.runs[-1].path} and {run.path}; point the report at one set of runs")
            cell.runs.append(run)

    @classmethod
    def load(cls, root: Path) -> RunIndex:
        """Every folder under `root` holding a finished run (its metrics.json)."""
        return cls(Run(m.parent, json.loads((m.parent / "config.json").read_text())) for m in sorted(Path(root).glob("**/metrics.json")))

    def get(self, dataset: str, model: str, encoder: str | None, tag: str | None) -> Cell | None:
        """The cell; ID-only models (no encoder in their config) match any `encoder`."""
        return self.cells.get((dataset, model, encoder, tag)) or self.cells.get((dataset, model, None, tag))

    def datasets(self) -> list[str]:
        """Paper datasets first, then any other dataset with runs."""
        extra = sorted({key[0] for key in self.cells} - set(PAPER_DATASETS))
        return [*PAPER_DATASETS, *extra]

    def default_encoder(self, tag: str | None) -> str | None:
        """The first of PREFERRED_ENCODERS that a run with `tag` used, else the alphabetically first."""
        used = {key[2] for key in self.cells if key[3] == tag and key[2] is not None}
        return next((e for e in PREFERRED_ENCODERS if e in used), min(used, default=None))


def describe_profile(cells: Iterable[Cell]) -> str:
    """The run budget, tags and devices of these cells, e.g. "NOT the paper's budget: epochs=5 (paper 300); tag: smoke; device: x86_64"."""
    runs = [run for cell in cells for run in cell.runs]
    if not runs:
        return "no runs"
    differing = []
    for key, paper in PAPER_BUDGET.items():
        values = sorted({run.config["train_config"].get(key) for run in runs}, key=str)
        if values != [paper]:
            differing.append(f"{key}={'/'.join(map(str, values))} (paper {paper})")
    budget = f"NOT the paper's budget: {', '.join(differing)}" if differing else "paper budget (up to 300 epochs, patience 10, batch 2048)"
    tags = sorted({run.key[3] for run in runs if run.key[3]})
    devices = sorted({_device(run.config) for run in runs})
    return "; ".join([budget, *([f"tag: {', '.join(tags)}"] if tags else []), f"device: {', '.join(devices)}"])


def _device(config: dict[str, Any]) -> str:
    env = config.get("environment", {})
    return env.get("gpu") or env.get("cpu") or str(config.get("device", "unknown"))
