"""Training speed against a RecBole-based reference on the same core, the same batches and the same options.

`verify --speed STEPS` builds both sides as `--lockstep` does (tedbench's initial weights transplanted, the same
training rows in the same order) but keeps every option, dropout included, and times each side's training step:
forward, backward and optimiser step, each with its own trainer (tedbench's `Trainer.step`, which also gathers its
batch from the stored rows; RecBole's `_train_epoch` over a one-batch list of an already built `Interaction`).
The sides alternate step by step (the first side switches every step), so load on the machine falls on both.
After `WARMUP_STEPS` per side, the median seconds per step give rows per second and the ratio.
Writes `STEM.speed.md`.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from benchmark.engine.cpu_matmul import route, torch_default
from benchmark.engine.run import environment
from benchmark.fidelity.lockstep import pair, row_order
from benchmark.fsutil import write_text
from benchmark.log import logger

if TYPE_CHECKING:
    from benchmark.fidelity.verify import Setup

WARMUP_STEPS = 2
SIDES = ("tedbench", "reference")


def cpu_description() -> str:
    """The CPU's model name and the vector extensions that decide float32/bf16 matrix speed (Linux; else '')."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""
    fields: dict[str, str] = {}
    for line in info.splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields.setdefault(key.strip(), value.strip())  # the first processor's
    name = " ".join(fields.get("model name", "").split())
    flags = set(fields.get("flags", "").split())
    shown = [flag for flag in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if flag in flags]
    return f"{name} ({', '.join(shown)})" if name else ""


def _timed(step, device: torch.device) -> float:
    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def speed(setup: Setup, seed: int, steps: int) -> dict[str, Any]:
    """Median seconds per training step of each side over `steps` alternating steps (after the warm-up).

    The reference's float32 CPU products go where torch sends them by default (MKL), as its users run it;
    tedbench's take this process's route (`benchmark.engine.cpu_matmul`)."""
    sides = pair(setup, seed, "speed")

    def reference_step(batch, step: int) -> torch.Tensor:
        with torch_default():
            return sides.reference._train_epoch([batch], step)

    batch_size = setup.train_config.batch_size
    total = WARMUP_STEPS + steps
    rows = row_order(len(setup.splits.train), total * batch_size, seed).to(setup.device)
    sides.ours.train()
    seconds: dict[str, list[float]] = {"tedbench": [], "reference": []}
    for step in range(total):
        index = rows[step * batch_size : (step + 1) * batch_size]
        batch = sides.batch(index)
        runs = [
            ("tedbench", lambda: float(sides.trainer.step(index))),
            ("reference", lambda: float(reference_step(batch, step))),
        ]
        for side, run in runs if step % 2 == 0 else runs[::-1]:
            elapsed = _timed(run, setup.device)
            if step >= WARMUP_STEPS:
                seconds[side].append(elapsed)
        logger.info(f"speed seed {seed} step {step + 1}/{total}")
    median = {side: statistics.median(values) for side, values in seconds.items()}
    return {
        "seed": seed,
        "steps": steps,
        "seconds": seconds,
        "step_seconds": median,
        "rows_per_second": {side: batch_size / value for side, value in median.items()},
        "speedup": median["reference"] / median["tedbench"],
    }


def speed_markdown(header: dict[str, Any], results: list[dict[str, Any]], label: str) -> str:
    env = environment()
    lines = [f"# Training speed: {header['model']} on {header['dataset']}, tedbench and {label}", ""]
    lines += [f"- {name}: {value}" for name, value in header.items()]
    lines += [
        f"- threads: {torch.get_num_threads()}; torch {env['torch']}; "
        f"{env.get('gpu') or cpu_description() or env.get('cpu')}",
        f"- float32 CPU products: tedbench {route()}, {label} mkl (torch's default)",
        "",
        f"**tedbench is {min(r['speedup'] for r in results):.2f}x to {max(r['speedup'] for r in results):.2f}x "
        f"as fast as {label}** (median seconds per training step, {results[0]['steps']} timed steps per side "
        f"after {WARMUP_STEPS} warm-up steps).",
        "",
        "Both sides start from the same weights and take the same batches with every option as given (dropout "
        "included), each with its own trainer, alternating step by step (see `benchmark/fidelity/speed.py`).",
        "",
        "| seed | side | s / step (median) | rows / s | every timed step (s) |",
        "|---:|---|---:|---:|---|",
    ]
    for result in results:
        for side, name in (("tedbench", "tedbench"), ("reference", label)):
            times = ", ".join(f"{t:.3f}" for t in result["seconds"][side])
            lines.append(
                f"| {result['seed']} | {name} | {result['step_seconds'][side]:.3f} | "
                f"{result['rows_per_second'][side]:,.0f} | {times} |"
            )
    return "\n".join(lines) + "\n"


def write_speed(out: Path, stem: str, header: dict[str, Any], results: list[dict[str, Any]], label: str) -> dict:
    path = out / f"{stem}.speed.md"
    write_text(path, speed_markdown(header, results, label))
    return {
        "speedup": min(r["speedup"] for r in results),
        "rows_per_second": {side: min(r["rows_per_second"][side] for r in results) for side in SIDES},
        "markdown": str(path),
    }
