"""The route of float32 CPU products: oneDNN only where its products are float32-exact, MKL on opt-out."""

from __future__ import annotations

import os
import subprocess
import sys

import torch

from benchmark.engine import cpu_matmul

PROBE = """
import torch
from benchmark.engine import cpu_matmul
route = cpu_matmul.use_onednn_float32()
cuda = torch.backends.cuda.matmul.fp32_precision
onednn = getattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision", "absent")
print(route, onednn, cuda)
"""


def _probe(**env: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return done.stdout.split()


def test_the_probe_separates_float32_products_from_bfloat16_rounded_ones() -> None:
    with cpu_matmul.torch_default():
        assert cpu_matmul.probe_error() < 2e-6  # MKL's float32 products
    rounded = cpu_matmul.probe_error(lambda a, b: (a.bfloat16() @ b.bfloat16()).float())
    assert rounded > 100 * cpu_matmul.TOLERANCE  # measured: 4.3e-3


def test_the_route_keeps_products_float32_exact_and_leaves_cuda_alone() -> None:
    route, onednn, cuda = _probe(TEDBENCH_CPU_MATMUL="onednn")
    assert route in (cpu_matmul.ONEDNN, cpu_matmul.MKL)
    assert cuda == "none"
    assert onednn == "bf16" if route == cpu_matmul.ONEDNN else onednn in ("none", "absent")
    generator = torch.Generator().manual_seed(1)
    a, b = torch.randn(777, 300, generator=generator), torch.randn(300, 129, generator=generator)
    exact = a.double() @ b.double()
    # this session took the same route (conftest); an independent shape is float32-exact too
    assert float((torch.matmul(a, b).double() - exact).abs().max() / exact.abs().max()) < cpu_matmul.TOLERANCE


def test_opting_out_keeps_torchs_default() -> None:
    route, onednn, _ = _probe(TEDBENCH_CPU_MATMUL="mkl")
    assert route == cpu_matmul.MKL
    assert onednn in ("none", "absent")


def test_torch_default_restores_the_route_afterwards() -> None:
    settings = getattr(torch.backends.mkldnn, "matmul", None)
    before = getattr(settings, "fp32_precision", None)
    with cpu_matmul.torch_default():
        assert getattr(settings, "fp32_precision", None) in (None, "none")
    assert getattr(settings, "fp32_precision", None) == before
