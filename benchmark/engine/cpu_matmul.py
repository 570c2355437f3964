"""Float32 matrix products on the CPU: oneDNN's kernels where they compute in float32, else MKL's (torch's default).

On CPUs that are not Intel's, MKL's float32 GEMM takes a narrower code path: on an AMD Zen 5 core it runs a
training step's shapes at 55-60 GFLOP/s, where oneDNN's float32 kernels run them 2-3x faster. torch sends
float32 products to oneDNN only when oneDNN's float32 matmul precision is "bf16", which also lets oneDNN round
the operands to bfloat16 on CPUs with a bfloat16 matrix unit (AMX): a change of numerics, not made by default.
So the route is taken only after a probe finds oneDNN's products as exact as float32 ones, for the shapes and
transpositions of a training step (forward and both backward products of a linear layer, batched attention);
where any probe rounds like bfloat16, or where no probe product changes (torch keeps MKL), products stay with
MKL. CUDA's settings are untouched.
`TEDBENCH_CPU_MATMUL=mkl` keeps MKL.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import torch

OPT_OUT = "TEDBENCH_CPU_MATMUL"
ONEDNN, MKL = "onednn-float32", "mkl"
# Largest error of a probe product relative to its largest entry. Float32 products of these shapes: about 1e-6;
# products of bfloat16-rounded operands: about 4e-3.
TOLERANCE = 1e-5
# (rows, inner, columns) of the probe products: the item-text projection (384), hidden-size layers (64), and a
# feed-forward layer's backward product over the batch's positions (inner dimension 2048).
SHAPES = ((2048, 384, 64), (2048, 64, 256), (256, 2048, 64))
_route = MKL
_probed = False

Product = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def route() -> str:
    """The route of this process's float32 CPU products: "onednn-float32" after `use_onednn_float32`, else "mkl"."""
    return _route


def probe_operands() -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The probe products' operands: each shape of `SHAPES`, also with its operands transposed in memory (as
    backward passes hand them over), and one batched product (attention's)."""
    generator = torch.Generator().manual_seed(0)  # leaves the global random stream alone

    def operand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    pairs = []
    for rows, inner, columns in SHAPES:
        pairs.append((operand(rows, inner), operand(inner, columns)))
        pairs.append((operand(inner, rows).t(), operand(columns, inner).t()))
    pairs.append((operand(64, 50, 32), operand(64, 32, 50)))
    return pairs


def probe_error(product: Product = torch.matmul) -> float:
    """Largest error of `product` over the probe operands against float64, relative to the largest entry."""
    worst = 0.0
    for a, b in probe_operands():
        exact = a.double() @ b.double()
        error = (product(a, b).double() - exact).abs().max() / exact.abs().max()
        worst = max(worst, float(error))
    return worst


def _onednn_matmul():
    """torch's oneDNN matmul settings (torch >= 2.9), or None where this torch has none or no oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return None
    settings = getattr(torch.backends.mkldnn, "matmul", None)
    return settings if hasattr(settings, "fp32_precision") else None


def use_onednn_float32() -> str:
    """Route float32 CPU products to oneDNN if the probe finds them float32-exact there; returns the route.

    Where torch keeps float32 products with MKL whatever the setting (a CPU it does not send them to oneDNN
    on), the probe's products do not change and the route stays "mkl". The probe runs once per process."""
    global _route, _probed
    settings = _onednn_matmul()
    if _probed or os.environ.get(OPT_OUT, ONEDNN) == MKL or settings is None:
        return _route
    _probed = True
    operands = probe_operands()
    default = [a @ b for a, b in operands]
    previous = settings.fp32_precision
    settings.fp32_precision = "bf16"
    rerouted = any(not torch.equal(a @ b, product) for (a, b), product in zip(operands, default))
    if rerouted and probe_error() <= TOLERANCE:
        _route = ONEDNN
    else:
        settings.fp32_precision = previous
    return _route


@contextlib.contextmanager
def torch_default() -> Iterator[None]:
    """Within: float32 CPU products as torch routes them by default (MKL), e.g. for reference code timed as
    its users run it."""
    settings = _onednn_matmul()
    if settings is None:
        yield
        return
    previous = settings.fp32_precision
    settings.fp32_precision = "none"
    try:
        yield
    finally:
        settings.fp32_precision = previous
