"""CPU kernels behind the shared layers: faster dropout masks (`bernoulli_keep_`, `dropout`, `Dropout`), the
memory-lean MoE expert mixture (`ExpertMixture`), a real FFT with a cheaper backward (`rfft_ortho`), and the
helpers they share (`masked_`, `nonzero_rows`, `at_least_float32`).

Each computes exactly what its plain PyTorch counterpart does (same function, same distribution of the random
draws); they exist for speed and memory on CPU, not for any modelling choice. The paper's layers that use them
are in `benchmark.layers.blocks`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """x upcast to float32 if it is half/bfloat16 (FFTs and the MoE mixture run in full precision)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def bernoulli_keep_(mask: torch.Tensor, keep_prob: float, scratch: torch.Tensor | None = None) -> torch.Tensor:
    """Fill the contiguous bool tensor `mask` with iid Bernoulli(keep_prob) draws and return it.

    On CPU each draw compares a uniform random byte with keep_prob·256; draws that tie with the threshold
    byte (1 in 256) are decided by a fresh 32-bit uniform, so the probability is exact to 2⁻⁴⁰ (torch's own
    CPU draws have 31 bits) at a quarter of the random bits of a 32-bit draw: ~5x faster than
    `torch.bernoulli`. `scratch` (a contiguous tensor of >= 2·mask.numel() + 16 bytes, overwritten) avoids
    allocating the random bytes. Other devices compare `torch.rand` draws with keep_prob.
    """
    if mask.device.type != "cpu":
        return torch.lt(torch.rand(mask.shape, device=mask.device), keep_prob, out=mask)
    level = keep_prob * 256
    if level >= 256:
        return mask.fill_(True)
    n = mask.numel()
    nbytes = -(-n // 8) * 8
    if scratch is None or scratch.numel() * scratch.element_size() < 2 * nbytes:
        scratch = torch.empty(2 * nbytes, dtype=torch.uint8)
    buffer = scratch.view(-1).view(torch.uint8)
    buffer[:nbytes].view(torch.int64).random_(-(2**63), 2**63 - 1)
    random_bytes, threshold = buffer[:n], int(level)
    torch.lt(random_bytes, threshold, out=mask.view(-1))
    if level == threshold:  # keep_prob is a multiple of 1/256 (e.g. 0.5): the byte comparison is already exact
        return mask
    ties = tie_positions(random_bytes, threshold, buffer[nbytes : 2 * nbytes])
    words = torch.empty((ties.numel() + 1) // 2, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    tie_threshold = min(-(2**31) + round((level - threshold) * 2**32), 2**31 - 1)
    mask.view(-1)[ties] = words.view(torch.int32)[: ties.numel()] < tie_threshold
    return mask


def tie_positions(random_bytes: torch.Tensor, threshold: int, scratch: torch.Tensor) -> torch.Tensor:
    """Ascending positions of the bytes equal to `threshold` (`(random_bytes == threshold).nonzero()`), found word by
    word: only the 8-byte words holding a tie (1 in 32 at a 1/256 tie rate) are searched byte by byte.
    `scratch`: uint8, at least len(random_bytes) rounded up to 8 bytes, overwritten."""
    n = random_bytes.numel()
    flags = scratch[: -(-n // 8) * 8]
    flags[n:].zero_()
    torch.eq(random_bytes, threshold, out=flags[:n].view(torch.bool))
    words = flags.view(torch.int64).nonzero().squeeze(1)
    hits = flags.view(-1, 8).index_select(0, words).view(torch.bool).nonzero()  # [ties, 2]: (word row, byte)
    return words[hits[:, 0]] * 8 + hits[:, 1]


def masked_(out: torch.Tensor, keep: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """out = x where keep else 0, written into `out` (faster than `torch.where` with a bool mask on CPU)."""
    return out.copy_(keep).mul_(x)


class _Dropout(torch.autograd.Function):
    """Inverted dropout that keeps only its bool mask for backward."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, p: float) -> torch.Tensor:
        out = torch.empty_like(x, memory_format=torch.contiguous_format)
        keep = bernoulli_keep_(torch.empty(x.shape, dtype=torch.bool, device=x.device), 1.0 - p, scratch=out)
        ctx.save_for_backward(keep)
        ctx.scale = 1.0 / (1.0 - p)
        return masked_(out, keep, x).mul_(ctx.scale)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (keep,) = ctx.saved_tensors
        return masked_(torch.empty_like(grad, memory_format=torch.contiguous_format), keep, grad).mul_(ctx.scale), None


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """`F.dropout(x, p, training)`; on CPU computed with the faster masks of `bernoulli_keep_`."""
    if not training or p == 0.0:
        return x
    if p == 1.0 or x.device.type != "cpu":
        return F.dropout(x, p, training)
    return _Dropout.apply(x, p)


class Dropout(nn.Dropout):
    """`nn.Dropout` computed by `dropout` (same distribution, faster masks on CPU)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


class _RfftOrtho(torch.autograd.Function):
    """`torch.fft.rfft(x, dim=dim, norm="ortho")` whose backward is one inverse real FFT.

    For y = rfft_ortho(x) of length n, ∂ℓ/∂x = irfft_ortho(g ⊙ w, n) with w = 1 at frequency 0 (and n/2 for even
    n) and 1/2 elsewhere (irfft counts the other bins twice, once for their conjugates). PyTorch's own backward
    pads the gradient to the full spectrum and runs a complex FFT of it, about three times the work.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int) -> torch.Tensor:
        ctx.dim, ctx.length = dim, x.size(dim)
        return torch.fft.rfft(x, dim=dim, norm="ortho")

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        bins = grad.size(ctx.dim)
        weights = torch.full((bins,), 0.5, dtype=grad.real.dtype, device=grad.device)
        weights[0] = 1.0
        if ctx.length % 2 == 0:
            weights[-1] = 1.0
        shape = [1] * grad.dim()
        shape[ctx.dim] = bins
        return torch.fft.irfft(grad * weights.view(shape), n=ctx.length, dim=ctx.dim, norm="ortho"), None


def rfft_ortho(x: torch.Tensor, dim: int) -> torch.Tensor:
    """`torch.fft.rfft(x, dim=dim, norm="ortho")` of a real x, with the cheaper backward of `_RfftOrtho`."""
    return _RfftOrtho.apply(x, dim % x.dim()) if x.requires_grad else torch.fft.rfft(x, dim=dim, norm="ortho")


def nonzero_rows(x: torch.Tensor) -> torch.Tensor | None:
    """Indices of the rows of a 2-D x that are not all zero (None if that is every row, or if x needs a gradient)."""
    if x.requires_grad:
        return None
    return _rows_or_none(x.any(dim=-1))


def nonzero_ids(ids: torch.Tensor) -> torch.Tensor | None:
    """Indices of the non-padding entries of the flattened `ids` (None if that is every entry)."""
    return _rows_or_none(ids.reshape(-1) != 0)


def _rows_or_none(keep: torch.Tensor) -> torch.Tensor | None:
    rows = keep.nonzero().squeeze(1)
    return None if rows.numel() == keep.numel() else rows


class ExpertMixture(torch.autograd.Function):
    """Σ_k gates[:, k] · Dropout_k(x)·A_k for x [N, in], gates [N, K], experts A [K, in, out] and dropout
    probability p (0: no dropout), one dropout mask per expert.

    Runs expert by expert on reused buffers; backward keeps only the bool dropout masks and the expert outputs
    (needed for the gate gradient), so no [K, N, in] float tensor is ever stored. The 1/(1−p) dropout scale
    is applied to A_k (and to its gradient) instead of to the inputs, and the products are computed into
    buffers padded to a multiple of 16 columns (MKL's GEMM is ~30% slower at e.g. 300).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gates: torch.Tensor, experts: torch.Tensor, p: float):
        n_exps, out_dim = experts.size(0), experts.size(-1)
        keep = x.new_empty((n_exps, *x.shape), dtype=torch.bool) if p > 0 else None
        dropped = torch.empty_like(x) if p > 0 else x
        weights = F.pad(experts / (1.0 - p), (0, -out_dim % 16))
        padded = x.new_empty(n_exps, x.size(0), weights.size(-1))
        outputs = padded[..., :out_dim]
        mixed = x.new_empty(x.size(0), out_dim)
        for k in range(n_exps):
            if keep is not None:
                masked_(dropped, bernoulli_keep_(keep[k], 1.0 - p, scratch=dropped), x)
            torch.mm(dropped, weights[k], out=padded[k])
            if k == 0:
                torch.mul(outputs[k], gates[:, :1], out=mixed)
            else:
                mixed.addcmul_(outputs[k], gates[:, k : k + 1])
        ctx.save_for_backward(x, gates, experts, outputs, keep)
        ctx.p = p
        return mixed

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x, gates, experts, outputs, keep = ctx.saved_tensors
        grad = grad.contiguous()
        scale = 1.0 / (1.0 - ctx.p)
        dropped = torch.empty_like(x) if keep is not None else x
        grad_x = torch.zeros_like(x) if ctx.needs_input_grad[0] else None
        grad_gates = gates.new_empty(gates.size(1), gates.size(0))  # [K, N], transposed at the end
        grad_experts = torch.empty_like(experts)
        grad_k = torch.empty_like(grad)
        for k in range(experts.size(0)):
            torch.sum(torch.mul(grad, outputs[k], out=grad_k), dim=-1, out=grad_gates[k])
            torch.mul(grad, gates[:, k : k + 1], out=grad_k)  # gradient of expert k's output
            if keep is not None:
                masked_(dropped, keep[k], x)
            torch.mm(dropped.t(), grad_k, out=grad_experts[k]).mul_(scale)
            if grad_x is not None:
                grad_in = (grad_k @ experts[k].t()).mul_(scale)
                grad_x += grad_in if keep is None else masked_(dropped, keep[k], grad_in)
        return grad_x, grad_gates.t(), grad_experts, None
