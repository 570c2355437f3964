"""`benchmark.engine.versus.merge`: this checkout's medians beside the base's, with the speed-ups."""

from __future__ import annotations

from benchmark.engine.versus import merge


def row(model: str, step: float, evaluation: float) -> dict[str, str]:
    return {
        "model": model,
        "batch_size": "2048",
        "step_seconds": str(step),
        "eval_seconds": str(evaluation),
        "ratio_to_first": "1.0",
    }


def test_merge_takes_medians_and_skips_models_missing_on_the_base_side() -> None:
    new = [row("A", 1.0, 0.5), row("A", 3.0, 0.5), row("A", 2.0, 0.5), row("B", 1.0, 1.0)]
    base = [row("A", 6.0, 1.0), row("A", 4.0, 2.0)]
    (merged,) = merge(new, base)
    assert merged["model"] == "A" and "ratio_to_first" not in merged
    assert merged["step_seconds"] == 2.0 and merged["base_step_seconds"] == 5.0
    assert merged["step_speedup_vs_base"] == 2.5 and merged["eval_speedup_vs_base"] == 3.0
    assert merged["sequences_per_second"] == 1024.0
