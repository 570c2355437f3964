"""Top operators of one training step (forward + backward + optimiser) per model, by torch.profiler.

Used by `tedbench bench --profile-ops FILE`: after the timed rounds, each model's next `steps` training
steps run under the profiler and the operators with the most self time are written as a markdown table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.profiler import ProfilerActivity, profile


def top_operators(step: Callable[[], None], steps: int = 1, top: int = 12) -> tuple[float, list[dict[str, Any]]]:
    """(profiled ms per step, the `top` operators by self CPU time) over `steps` calls of `step()`."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return total / 1000 / steps, [
        {
            "operator": e.key,
            "calls": e.count // steps,
            "self_ms_per_step": round(e.self_cpu_time_total / 1000 / steps, 2),
            "share": round(e.self_cpu_time_total / total, 3),
        }
        for e in events[:top]
    ]


def markdown(title: str, per_model: dict[str, tuple[float, list[dict[str, Any]]]], note: str = "") -> str:
    """A markdown section with one table of top operators per model."""
    lines = [f"## {title}", ""] + ([note, ""] if note else [])
    for model, (step_ms, rows) in per_model.items():
        lines += [
            f"### {model} (profiled step ≈ {step_ms / 1000:.2f} s)",
            "",
            "| operator | calls/step | self ms/step | share |",
            "|---|---:|---:|---:|",
        ]
        lines += [f"| `{r['operator']}` | {r['calls']} | {r['self_ms_per_step']} | {r['share']:.1%} |" for r in rows]
        lines.append("")
    return "\n".join(lines)
