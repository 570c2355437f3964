"""`tedbench bench`: seconds per training step and per full-sort evaluation, appended to a CSV."""

from __future__ import annotations

import csv
import re
import resource
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmark.engine.run import environment, load_dataset, pick_device
from benchmark.engine.trainer import TrainConfig, Trainer, seed_everything
from benchmark.errors import TedbenchError
from benchmark.registry import get_model

WARMUP_STEPS = 2
EVAL_REPEATS = 3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_slug(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def bench(model_name: str, dataset: str, *, data_root: Path, encoder: str | None = None, device: str | None = None, steps: int = 5, overrides: dict[str, Any] | None = None, train_config: TrainConfig | None = None, results_dir: Path = Path("results/bench")) -> dict[str, Any]:
    """Median seconds per training step over `steps` timed steps, and full-sort eval seconds."""
    entry = get_model(model_name)
    config = entry.config(overrides)
    train_config = train_config or TrainConfig()
    train_config.learning_rate = float(config["learning_rate"])
    torch_device = pick_device(device)
    splits, info, provenance = load_dataset(data_root, dataset, encoder, needs_text=entry.needs_text, device=str(torch_device))
    seed_everything(train_config.seed)
    model = entry.cls(config, info)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(model, splits, train_config, Path(tmp), torch_device, progress=False)
        if torch_device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(torch_device)
        order = torch.randperm(len(trainer.splits.train), generator=torch.Generator().manual_seed(train_config.seed)).to(torch_device)
        batch = train_config.batch_size
        times = []
        for i in range(WARMUP_STEPS + steps):
            index = order[(i * batch) % len(order) :][:batch]
            _sync(torch_device)
            start = time.perf_counter()
            trainer.step(index)
            _sync(torch_device)
            if i >= WARMUP_STEPS:
                times.append(time.perf_counter() - start)
        eval_times = []
        for _ in range(EVAL_REPEATS):
            start = time.perf_counter()
            trainer.evaluate("valid")
            _sync(torch_device)
            eval_times.append(time.perf_counter() - start)
    step_seconds = statistics.median(times)
    steps_per_epoch = -(-len(splits.train) // batch)
    result = {
        "model": entry.name,
        "dataset": dataset,
        "encoder": provenance.get("encoder"),
        "device": device_slug(torch_device),
        "amp": train_config.amp,
        "tf32": train_config.tf32,
        "compile": train_config.compile,
        "batch_size": batch,
        "timed_steps": steps,
        "step_seconds": round(step_seconds, 4),
        "sequences_per_second": round(batch / step_seconds, 1),
        "steps_per_epoch": steps_per_epoch,
        "epoch_seconds": round(step_seconds * steps_per_epoch, 2),
        "eval_seconds": round(statistics.median(eval_times), 4),
        "eval_users": len(splits.valid),
        "peak_memory_mib": round(_peak_memory_mib(torch_device), 1),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        **environment(),
    }
    _append_csv(Path(results_dir) / f"{result['device']}.csv", result)
    return result


def _append_csv(path: Path, row: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    if not new:
        with open(path, newline="") as handle:
            header = next(csv.reader(handle), [])
        if header != list(row):
            raise TedbenchError(f"{path}: columns differ from this bench's; move the old file aside")
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)
