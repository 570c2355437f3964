"""Where every file lives: the one place that builds tedbench's paths (dvc.yaml follows the same layout).

datasets/<dataset>/...                     raw files, verified (`$TEDBENCH_RAW`)
data/processed/<dataset>/                  processed sequences and item text (`$TEDBENCH_DATA`)
data/embeddings/<dataset>/<encoder>/       cached item-text embeddings
<results>/best_params/<dataset>/<model>.json, <results>/tuning/<dataset>/<model>.db
<results>/runs/<dataset>/<model>[@<tag>][~<variant>]/seed<N>/   one training run
<results>/tables/, <results>/figures/, <results>/metrics.json     the report
runs/train/..., runs/verify/..., runs/<suite>/tune/               scratch run folders (git-ignored)
"""

from __future__ import annotations

import os
from pathlib import Path

from benchmark.fsutil import safe_name

DATA_ENV = "TEDBENCH_DATA"
RAW_ENV = "TEDBENCH_RAW"
RESULTS = Path("results")
SCRATCH = Path("runs")
BENCH_DIR = RESULTS / "bench"
FIDELITY_DIR = RESULTS / "fidelity"
TUNE_SCRATCH = SCRATCH / "tune"  # `tedbench tune`'s trial run folders when no --runs-dir is given
REGRESSION_REFERENCE = RESULTS / "regression" / "reference.json"


def data_root(given: str | Path | None = None) -> Path:
    """Processed data and embeddings: `given`, else $TEDBENCH_DATA, else ./data."""
    return Path(given or os.environ.get(DATA_ENV, "data"))


def raw_root(given: str | Path | None = None) -> Path:
    """Verified raw files: `given`, else $TEDBENCH_RAW, else ./datasets (what datasets.dvc tracks)."""
    return Path(given or os.environ.get(RAW_ENV, "datasets"))


def processed_root(root: Path) -> Path:
    return Path(root) / "processed"


def processed_dir(root: Path, dataset: str) -> Path:
    """`<data_root>/processed/<dataset>`, for a dataset name that is a safe slug."""
    return processed_root(root) / safe_name(dataset, "dataset name")


def embeddings_dir(root: Path, dataset: str) -> Path:
    """`<data_root>/embeddings/<dataset>`: one folder per encoder inside (the embedding cache)."""
    return Path(root) / "embeddings" / safe_name(dataset, "dataset name")


def run_name(model: str, tag: str | None = None, variant: str | None = None) -> str:
    """`<model>[@<tag>][~<variant>]`: a suite's run folder name (tag: an ablation; variant: a text encoder)."""
    return model + (f"@{tag}" if tag else "") + (f"~{variant}" if variant else "")


def run_folder(
    runs_root: Path, dataset: str, model: str, seed: int, tag: str | None = None, variant: str | None = None
) -> Path:
    return Path(runs_root) / dataset / run_name(model, tag, variant) / f"seed{seed}"


def suite_runs(results_root: Path) -> Path:
    return Path(results_root) / "runs"


def best_params_path(results_root: Path, dataset: str, model: str) -> Path:
    """Where a study's best parameters are exported (the pipeline's and dvc.yaml's `--params`)."""
    return Path(results_root) / "best_params" / dataset / f"{model}.json"


def tuning_db(results_root: Path, dataset: str, model: str) -> Path:
    """The SQLite study of (dataset, model) when no other storage is given."""
    return Path(results_root) / "tuning" / dataset / f"{model}.db"


def table_path(results_root: Path, name: str, suffix: str = "md") -> Path:
    return Path(results_root) / "tables" / f"{name}.{suffix}"


def train_scratch(dataset: str, model: str, seed: int) -> Path:
    """`tedbench train`'s folder when no --out is given."""
    return SCRATCH / "train" / dataset / model / f"seed{seed}"


def official_scratch(dataset: str, model: str) -> Path:
    """The subprocess-run official code's exports and outputs, and tedbench's side (standalone, difsr)."""
    return SCRATCH / "official" / dataset / model


def verify_scratch(dataset: str, model: str, profile: str | None, against: str = "recbole") -> Path:
    """`tedbench verify`'s run folders of both sides when no --work is given (`.../official` for official code)."""
    folder = SCRATCH / "verify" / dataset / model / (profile or "paper")
    return folder / "official" if against == "official" else folder


def suite_results(suite: str) -> Path:
    return RESULTS / suite


def suite_trials(suite: str) -> Path:
    """A suite's tuning trials (scratch; only their exported best parameters are results)."""
    return SCRATCH / suite / "tune"
