"""The metric-regression gate: every registered model, a short fixed-seed run on the bundled sample.

`tedbench regress` trains each model with profile `gate` (params.yaml) on `OR-sample` and compares its
test metrics with the committed references (`results/regression/reference.json`). A metric that falls
more than the tolerance below its reference fails the gate; the table of reference vs. now is printed
either way. `tedbench regress --update` rewrites the references on purpose.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.prepare import prepare_if_missing
from benchmark.engine.run import environment, train
from benchmark.errors import TedbenchError
from benchmark.fsutil import write_json
from benchmark.layout import REGRESSION_REFERENCE
from benchmark.metrics import per_user_metrics
from benchmark.profiles import Profile
from benchmark.registry import list_models
from benchmark.runconfig import resolve, train_budget

REFERENCE = REGRESSION_REFERENCE
DATASET = "OR-sample"
ENCODER = "minilm"
SEED = 2020
METRICS = ("recall@10", "ndcg@10")
# A metric fails when it drops by more than both: a few of the sample's 1,600 users flipping across the top-10
# boundary (float differences between CPUs) passes, a real loss does not.
ABSOLUTE_TOLERANCE = 0.005
RELATIVE_TOLERANCE = 0.10


@dataclass(frozen=True)
class GateResult:
    table: pd.DataFrame  # model, metric, reference, now, change, status
    failed: list[str]

    def markdown(self) -> str:
        return self.table.to_markdown(index=False, floatfmt=".4f")


def measure(model: str, profile: Profile, *, data_root: Path, device: str = "cpu") -> dict[str, float]:
    """Test metrics of one short fixed-seed run (full precision, from the per-user ranks)."""
    run = resolve(model, profile=profile, budget=train_budget(profile, seed=SEED))
    with tempfile.TemporaryDirectory() as tmp:
        train(
            model,
            DATASET,
            data_root=data_root,
            out=Path(tmp),
            encoder=ENCODER if run.entry.needs_text else None,
            device=device,
            overrides=run.overrides,
            train_config=run.train_config,
            progress=False,
        )
        per_user = per_user_metrics(np.load(Path(tmp) / "test_ranks.npy", allow_pickle=False))
    return {metric: float(per_user[metric].mean()) for metric in METRICS}


def compare(reference: dict[str, dict[str, float]], now: dict[str, dict[str, float]]) -> GateResult:
    """Reference vs. now for every model measured now; models without a reference are 'new'."""
    rows, failed = [], []
    for model, metrics in now.items():
        for metric in METRICS:
            value = metrics[metric]
            ref = reference.get(model, {}).get(metric)
            if ref is None:
                status = "new (no reference)"
            elif ref - value > ABSOLUTE_TOLERANCE and ref - value > RELATIVE_TOLERANCE * ref:
                status = "FAIL"
                failed.append(f"{model} {metric}")
            else:
                status = "ok"
            change = None if ref is None else value - ref
            rows.append(
                {"model": model, "metric": metric, "reference": ref, "now": value, "change": change, "status": status}
            )
    return GateResult(pd.DataFrame(rows), failed)


def load_reference(path: Path = REFERENCE) -> dict[str, Any]:
    if not Path(path).exists():
        raise TedbenchError(f"{path}: no reference metrics; create them with `tedbench regress --update`")
    return json.loads(Path(path).read_text())


def run_gate(
    profile: Profile,
    *,
    data_root: Path,
    models: list[str] | None = None,
    reference_path: Path = REFERENCE,
    update: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> GateResult:
    """Measure `models` (default: every registered one) and compare, or with `update` store them as the references."""
    models = models or list_models()
    prepare_if_missing(DATASET, data_root=data_root)
    now = {}
    for name in models:
        started = time.monotonic()
        now[name] = measure(name, profile, data_root=data_root)
        log(f"{name}: {', '.join(f'{m} {v:.4f}' for m, v in now[name].items())} ({time.monotonic() - started:.0f} s)")
    stored = {} if update and not Path(reference_path).exists() else load_reference(reference_path)
    if update:
        write_json(
            reference_path,
            {
                "dataset": DATASET,
                "encoder": ENCODER,
                "seed": SEED,
                "profile": profile.name,
                "tolerance": {"absolute": ABSOLUTE_TOLERANCE, "relative": RELATIVE_TOLERANCE},
                "environment": environment(),
                "metrics": {**stored.get("metrics", {}), **now},
            },
        )
        stored = load_reference(reference_path)
    return compare(stored["metrics"], now)
