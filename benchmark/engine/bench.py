"""`tedbench bench`: seconds per training step and per full-sort evaluation for one or more models.

Several models are timed in interleaved rounds on the same machine in one process (round r times every
model before round r+1 starts), so a noisy neighbour slows all of them alike and the ratios hold. Each
row is appended to `results/bench/<device>.csv`, with the epoch time the paper's authors measured on
an A100 (their Table 6 / research digest §0.5) beside ours.
"""

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

from benchmark.engine import allocator, cpu_matmul
from benchmark.engine.opprofile import markdown, top_operators
from benchmark.engine.run import ResolvedRun, environment, load_dataset, pick_device
from benchmark.engine.trainer import Trainer, seed_everything
from benchmark.errors import TedbenchError
from benchmark.fsutil import write_text
from benchmark.layout import BENCH_DIR
from benchmark.paper import paper_data

WARMUP_STEPS = 2
EVAL_REPEATS = 3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_memory_mib(device: torch.device) -> float:
    """GPU: peak allocated since the last reset. CPU: the process's peak RSS so far (it cannot be reset,
    so with several models it is the largest of them and those timed before)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def device_slug(device: torch.device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def authors_epoch_seconds() -> dict[tuple[str, str], float]:
    """(dataset, model) -> the authors' A100 training seconds per epoch (the report's transcription)."""
    return paper_data("timings").set_index(["dataset", "model"])["train_seconds_per_epoch"].to_dict()


class _Timed:
    """One model's trainer and the seconds measured for it so far."""

    def __init__(
        self, run: ResolvedRun, dataset: str, data_root: Path, encoder: str | None, device: torch.device, out: Path
    ):
        self.entry, self.train_config = run.entry, run.train_config
        self.splits, info, self.provenance = load_dataset(
            data_root,
            dataset,
            encoder,
            needs_text=self.entry.needs_text,
            device=str(device),
            users=self.train_config.user_subsample,
        )
        seed_everything(self.train_config.seed)
        self.model = self.entry.cls(run.model_config, info)
        self.trainer = Trainer(self.model, self.splits, self.train_config, out, device, progress=False)
        self.order = torch.randperm(
            len(self.trainer.splits.train), generator=torch.Generator().manual_seed(self.train_config.seed)
        ).to(device)
        self.device = device
        self.done = 0
        self.peak_mib = 0.0
        self.step_times: list[float] = []
        self.eval_times: list[float] = []

    def steps(self, count: int, *, record: bool = True) -> None:
        batch = self.train_config.batch_size
        self.model.train()
        _reset_peak_memory(self.device)
        for _ in range(count):
            index = self.order[(self.done * batch) % len(self.order) :][:batch]
            self.done += 1
            _sync(self.device)
            start = time.perf_counter()
            self.trainer.step(index)
            _sync(self.device)
            if record:
                self.step_times.append(time.perf_counter() - start)
        self.peak_mib = max(self.peak_mib, _peak_memory_mib(self.device))

    def evaluate(self) -> None:
        _reset_peak_memory(self.device)
        start = time.perf_counter()
        self.trainer.evaluate("valid")
        _sync(self.device)
        self.eval_times.append(time.perf_counter() - start)
        self.peak_mib = max(self.peak_mib, _peak_memory_mib(self.device))


def bench(
    runs: list[ResolvedRun],
    dataset: str,
    *,
    data_root: Path,
    encoder: str | None = None,
    device: str | None = None,
    steps: int = 5,
    rounds: int = 1,
    results_dir: Path | None = BENCH_DIR,
    profile_ops: Path | None = None,
    setting: str = "the models' own sizes",
) -> list[dict[str, Any]]:
    """Median seconds per training step (over `rounds` x `steps` timed steps) and per full-sort eval.

    `runs`: each model's resolved settings (`benchmark.runconfig.resolve`). `ratio_to_first` is each model's
    epoch time over the first model's, measured in the same rounds. `profile_ops`: a markdown file to which a
    section with each model's top operators (torch.profiler over one more training step) is appended, titled
    with `setting` (the sizes and options used).
    """
    if not runs:
        raise TedbenchError("bench: no model given")
    torch_device = pick_device(device)
    authors = authors_epoch_seconds()
    with tempfile.TemporaryDirectory() as tmp:
        timed = [_Timed(run, dataset, data_root, encoder, torch_device, Path(tmp) / run.entry.name) for run in runs]
        for item in timed:
            item.steps(WARMUP_STEPS, record=False)
        for _ in range(rounds):
            for item in timed:
                item.steps(steps)
        for _ in range(EVAL_REPEATS):
            for item in timed:
                item.evaluate()
        rows = [_row(item, dataset, torch_device, steps, rounds, authors) for item in timed]
        if profile_ops is not None:
            _append_profile(Path(profile_ops), timed, dataset, setting)
    for row in rows:
        row["ratio_to_first"] = round(row["epoch_seconds"] / rows[0]["epoch_seconds"], 3)
        if results_dir is not None:
            _append_csv(Path(results_dir) / f"{row['device']}.csv", row)
    return rows


def _row(
    item: _Timed, dataset: str, device: torch.device, steps: int, rounds: int, authors: dict[tuple[str, str], float]
) -> dict[str, Any]:
    step_seconds = statistics.median(item.step_times)
    batch = item.train_config.batch_size
    steps_per_epoch = -(-len(item.splits.train) // batch)
    epoch_seconds = step_seconds * steps_per_epoch
    paper = authors.get((dataset, item.entry.name))
    return {
        "model": item.entry.name,
        "dataset": dataset,
        "encoder": item.provenance.get("encoder"),
        "device": device_slug(device),
        "amp": item.train_config.amp,
        "tf32": item.train_config.tf32,
        "compile": item.train_config.compile,
        "batch_size": batch,
        "timed_steps": steps * rounds,
        "step_seconds": round(step_seconds, 4),
        "sequences_per_second": round(batch / step_seconds, 1),
        "steps_per_epoch": steps_per_epoch,
        "epoch_seconds": round(epoch_seconds, 2),
        "authors_a100_epoch_seconds": paper,
        "speedup_vs_authors": round(paper / epoch_seconds, 2) if paper else None,
        "eval_seconds": round(statistics.median(item.eval_times), 4),
        "eval_users": len(item.splits.valid),
        "peak_memory_mib": round(item.peak_mib, 1),
        "trainable_parameters": sum(p.numel() for p in item.model.parameters() if p.requires_grad),
        **environment(),
        "allocator": allocator.policy(),
        "cpu_matmul": cpu_matmul.route(),
    }


def _append_profile(path: Path, timed: list[_Timed], dataset: str, setting: str) -> None:
    per_model = {item.entry.name: top_operators(lambda item=item: item.steps(1, record=False)) for item in timed}
    env = environment()
    budget = timed[0].train_config
    title = f"{dataset}, {setting}, batch {budget.batch_size}, amp {budget.amp}"
    note = (
        f"torch {env.get('torch')}, {torch.get_num_threads()} thread(s), {env.get('cpu', '')}; "
        "self CPU time of one training step (forward, backward, Adam) after the timed rounds."
    )
    previous = path.read_text() if path.exists() else "# Top operators of one CPU training step per model\n\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, previous + markdown(title, per_model, note) + "\n")


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
