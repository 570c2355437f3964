"""CPU kernels behind the shared layers: faster dropout masks (`bernoulli_keep_`, `dropout`, `Dropout`), the
memory-lean MoE expert mixture (`ExpertMixture`), and the helpers they share (`masked_`, `nonzero_rows`,
`at_least_float32`).

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
    `torch.bernoulli`. `scratch` (a contiguous tensor of >= 2·mask.numel() + 8 bytes, overwritten) avoids
    allocating the random bytes. Other devices compare `torch.rand` draws with keep_prob.
    """
    if mask.device.type != "cpu":
        return torch.lt(torch.rand(mask.shape, device=mask.device), keep_prob, out=mask)
    level = keep_prob * 256
    if level >= 256:
        return mask.fill_(True)
    n = mask.numel()
    nbytes = -(-n // 8) * 8
    if scratch is None or scratch.numel() * scratch.element_size() < nbytes + n:
        scratch = torch.empty(nbytes + n, dtype=torch.uint8)
    buffer = scratch.view(-1).view(torch.uint8)
    buffer[:nbytes].view(torch.int64).random_(-(2**63), 2**63 - 1)
    random_bytes, threshold = buffer[:n], int(level)
    torch.lt(random_bytes, threshold, out=mask.view(-1))
    if level == threshold:  # keep_prob is a multiple of 1/256 (e.g. 0.5): the byte comparison is already exact
        return mask
    ties = torch.eq(random_bytes, threshold, out=buffer[nbytes : nbytes + n].view(torch.bool)).nonzero().squeeze(1)
    words = torch.empty((ties.numel() + 1) // 2, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    tie_threshold = min(-(2**31) + round((level - threshold) * 2**32), 2**31 - 1)
    mask.view(-1)[ties] = words.view(torch.int32)[: ties.numel()] < tie_threshold
    return mask


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


def nonzero_rows(x: torch.Tensor) -> torch.Tensor | None:
    """Indices of the rows of a 2-D x that are not all zero (None if that is every row, or if x needs a gradient)."""
    if x.requires_grad:
        return None
    rows = x.any(dim=-1).nonzero().squeeze(1)
    return None if rows.numel() == x.size(0) else rows


class ExpertMixture(torch.autograd.Function):
    """Σ_k gates[:, k] · (Dropout_k(x)·A_k − shift_k[row % P]) for x [N, in], gates [N, K], experts A [K, in, out],
    shift [K, P, out] or None (rows cycle through the P shift rows) and dropout probability p (0: no dropout).

    `rows`, if given, lists the rows of x that are not all zero (x must then not need a gradient): the other rows
    have Dropout_k(0)·A_k = 0, so the products are computed for `rows` only and padding costs nothing.
    Runs expert by expert on reused buffers; backward keeps only the bool dropout masks and the expert outputs
    (needed for the gate gradient), so no [K, N, in] float tensor is ever stored. The 1/(1−p) dropout scale
    is applied to A_k (and to its gradient) instead of to the inputs, and the products are computed into
    buffers padded to a multiple of 16 columns (MKL's GEMM is ~30% slower at e.g. 300).
    """

    @staticmethod
    def forward(
        ctx,
        x: torch.Tensor,
        gates: torch.Tensor,
        experts: torch.Tensor,
        shift: torch.Tensor | None,
        p: float,
        rows: torch.Tensor | None,
    ):
        n_exps, out_dim = experts.size(0), experts.size(-1)
        active = x if rows is None else x.index_select(0, rows)
        keep = active.new_empty((n_exps, *active.shape), dtype=torch.bool) if p > 0 else None
        dropped = torch.empty_like(active) if p > 0 else active
        weights = F.pad(experts / (1.0 - p), (0, -out_dim % 16))
        padded = x.new_empty(n_exps, x.size(0), weights.size(-1))
        outputs = padded[..., :out_dim]
        product = None if rows is None else active.new_empty(active.size(0), weights.size(-1))
        mixed = x.new_empty(x.size(0), out_dim)
        for k in range(n_exps):
            if keep is not None:
                masked_(dropped, bernoulli_keep_(keep[k], 1.0 - p, scratch=dropped), active)
            if rows is None:
                torch.mm(dropped, weights[k], out=padded[k])
            else:
                padded[k].zero_().index_copy_(0, rows, torch.mm(dropped, weights[k], out=product))
            if shift is not None:
                outputs[k].view(-1, *shift.shape[1:]).sub_(shift[k])
            if k == 0:
                torch.mul(outputs[k], gates[:, :1], out=mixed)
            else:
                mixed.addcmul_(outputs[k], gates[:, k : k + 1])
        ctx.save_for_backward(active, gates, experts, outputs, keep, rows)
        ctx.p = p
        ctx.positions = None if shift is None else shift.size(1)
        return mixed

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        active, gates, experts, outputs, keep, rows = ctx.saved_tensors
        grad = grad.contiguous()
        scale = 1.0 / (1.0 - ctx.p)
        dropped = torch.empty_like(active) if keep is not None else active
        grad_x = torch.zeros_like(active) if ctx.needs_input_grad[0] else None
        grad_gates = gates.new_empty(gates.size(1), gates.size(0))  # [K, N], transposed at the end
        grad_experts = torch.empty_like(experts)
        grad_shift = None if ctx.positions is None else grad.new_empty(experts.size(0), ctx.positions, grad.size(-1))
        grad_k = torch.empty_like(grad)
        grad_rows = None if rows is None else grad.new_empty(rows.numel(), grad.size(-1))
        for k in range(experts.size(0)):
            torch.sum(torch.mul(grad, outputs[k], out=grad_k), dim=-1, out=grad_gates[k])
            torch.mul(grad, gates[:, k : k + 1], out=grad_k)  # gradient of expert k's output
            if grad_shift is not None:
                torch.sum(grad_k.view(-1, ctx.positions, grad.size(-1)), dim=0, out=grad_shift[k]).neg_()
            grad_active = grad_k if rows is None else torch.index_select(grad_k, 0, rows, out=grad_rows)
            if keep is not None:
                masked_(dropped, keep[k], active)
            torch.mm(dropped.t(), grad_active, out=grad_experts[k]).mul_(scale)
            if grad_x is not None:
                grad_in = (grad_active @ experts[k].t()).mul_(scale)
                grad_x += grad_in if keep is None else masked_(dropped, keep[k], grad_in)
        return grad_x, grad_gates.t(), grad_experts, grad_shift, None, None
