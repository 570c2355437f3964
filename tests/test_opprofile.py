"""`benchmark.engine.opprofile`: the profiled step's top operators and their markdown table."""

from __future__ import annotations

import torch

from benchmark.engine.opprofile import markdown, top_operators


def test_top_operators_name_the_step_s_operators_and_render_as_markdown() -> None:
    a = torch.randn(64, 64)
    step_ms, rows = top_operators(lambda: torch.mm(a, a).sum(), steps=2, top=3)
    assert step_ms > 0 and 1 <= len(rows) <= 3
    assert "aten::mm" in {r["operator"] for r in rows}
    assert all(r["calls"] >= 1 for r in rows) and sum(r["share"] for r in rows) <= 1.0 + 1e-9
    text = markdown("title", {"Model": (step_ms, rows)})
    assert text.startswith("## title") and "### Model" in text and "`aten::mm`" in text
