"""Building blocks shared by the RecBole-style baselines and TedRec.

Everything follows RecBole 1.2 (`recbole/model/layers.py`, `SequentialRecommender`) unless a
docstring says otherwise; see the research digest §0.3/§0.4 for the conventions.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

MASK_VALUE = -10000.0  # RecBole's additive value for hidden attention keys

ACTIVATIONS = {
    "gelu": F.gelu,  # exact erf form, x * 0.5 * (1 + erf(x / sqrt(2)))
    "relu": F.relu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """x upcast to float32 if it is half/bfloat16 (FFTs and the MoE mixture run in full precision)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def recbole_init_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """RecBole's `_init_weights` over every submodule: Linear/Embedding weights N(0, std²)
    (padding rows included), Linear biases 0, LayerNorm 1/0. Buffers are untouched."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=std)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm) and m.elementwise_affine:
            nn.init.ones_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


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


def causal_padding_mask(seq: torch.Tensor) -> torch.Tensor:
    """Additive attention mask [B, 1, L, L]: key j is visible to query i iff seq[b, j] != 0 and j <= i
    (0 visible, -10000 hidden), RecBole's `get_attention_mask(bidirectional=False)`."""
    length = seq.size(1)
    causal = torch.ones(length, length, dtype=torch.bool, device=seq.device).tril()
    visible = (seq != 0)[:, None, None, :] & causal
    return torch.zeros(visible.shape, device=seq.device).masked_fill_(~visible, MASK_VALUE)


def cosine_logits(query: torch.Tensor, items: torch.Tensor, temperature: float, training: bool) -> torch.Tensor:
    """Cosine similarities of the query rows [B, d] with the item rows [N, d] -> [B, N], divided by `temperature`
    in training (UniSRec's and TedRec's scoring: the evaluation ranking is the same either way)."""
    scores = F.normalize(query, dim=-1) @ F.normalize(items, dim=-1).t()
    return scores / temperature if training else scores


def bidirectional_padding_mask(seq: torch.Tensor) -> torch.Tensor:
    """Additive attention mask [B, 1, L, L] hiding only padding keys (RecBole's bidirectional mask)."""
    length = seq.size(1)
    hidden = (seq == 0)[:, None, None, :].expand(-1, 1, length, -1)
    return torch.zeros(hidden.shape, device=seq.device).masked_fill_(hidden, MASK_VALUE)


class MultiHeadAttention(nn.Module):
    """RecBole self-attention sublayer: LayerNorm(Dropout(Attn(X)·Wo + bo) + X), post-LN.

    Attention is softmax(QKᵀ/sqrt(d/H) + M)·V with dropout on the probabilities and the additive mask M,
    computed by `F.scaled_dot_product_attention`; for CPU training with attention dropout (where SDPA runs
    its unfused fallback) an explicit per-head version with `dropout`'s faster masks is used instead.
    """

    def __init__(self, hidden_size: int, n_heads: int, hidden_dropout_prob: float, attn_dropout_prob: float, layer_norm_eps: float):
        super().__init__()
        if hidden_size % n_heads:
            raise ValueError(f"hidden_size {hidden_size} is not a multiple of n_heads {n_heads}")
        self.n_heads = n_heads
        self.attn_dropout_prob = attn_dropout_prob
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out_dropout = Dropout(hidden_dropout_prob)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, query: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, d] keys/values; `query` [B, Lq, d] (default x) with `mask` [B, 1 or H, Lq, L]; returns [B, Lq, d]."""
        query = x if query is None else query
        k, v = self.key(x), self.value(x)
        context = self.attend(self.query(query), k, v, mask.to(k.dtype))
        return self.layer_norm(self.out_dropout(self.dense(context)) + query)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Multi-head attention of q [B, Lq, d] over k, v [B, L, d] (heads concatenated) -> [B, Lq, d]."""
        p = self.attn_dropout_prob if self.training else 0.0
        scale = 1.0 / math.sqrt(q.size(-1) // self.n_heads)
        if p > 0 and q.device.type == "cpu":
            mask, heads = mask.expand(-1, self.n_heads, -1, -1), []
            for h, (qh, kh, vh) in enumerate(zip(*(t.chunk(self.n_heads, dim=-1) for t in (q, k, v)))):
                probs = torch.softmax(torch.baddbmm(mask[:, h], qh, kh.transpose(1, 2), alpha=scale), dim=-1)
                heads.append(torch.bmm(dropout(probs, p, True), vh))
            return torch.cat(heads, dim=-1)
        q, k, v = (t.unflatten(-1, (self.n_heads, -1)).transpose(1, 2) for t in (q, k, v))  # [B, H, L, d/H]
        context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p, scale=scale)
        return context.transpose(1, 2).flatten(2)


class FeedForward(nn.Module):
    """RecBole point-wise FFN sublayer: LayerNorm(Dropout(act(X·W1 + b1)·W2 + b2) + X)."""

    def __init__(self, hidden_size: int, inner_size: int, hidden_dropout_prob: float, hidden_act: str, layer_norm_eps: float):
        super().__init__()
        self.dense_1 = nn.Linear(hidden_size, inner_size)
        self.act = ACTIVATIONS[hidden_act]
        self.dense_2 = nn.Linear(inner_size, hidden_size)
        self.dropout = Dropout(hidden_dropout_prob)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(self.dropout(self.dense_2(self.act(self.dense_1(x)))) + x)


class TransformerLayer(nn.Module):
    """One RecBole Transformer block: attention sublayer then FFN sublayer."""

    def __init__(self, hidden_size: int, n_heads: int, inner_size: int, hidden_dropout_prob: float,
                 attn_dropout_prob: float, hidden_act: str, layer_norm_eps: float):
        super().__init__()
        self.attention = MultiHeadAttention(hidden_size, n_heads, hidden_dropout_prob, attn_dropout_prob, layer_norm_eps)
        self.feed_forward = FeedForward(hidden_size, inner_size, hidden_dropout_prob, hidden_act, layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, query: torch.Tensor | None = None) -> torch.Tensor:
        return self.feed_forward(self.attention(x, mask, query))


class TransformerEncoder(nn.Module):
    """RecBole `TransformerEncoder`: `n_layers` post-LN blocks."""

    def __init__(self, n_layers: int, hidden_size: int, n_heads: int, inner_size: int, hidden_dropout_prob: float,
                 attn_dropout_prob: float, hidden_act: str = "gelu", layer_norm_eps: float = 1e-12):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(hidden_size, n_heads, inner_size, hidden_dropout_prob, attn_dropout_prob, hidden_act, layer_norm_eps)
            for _ in range(n_layers)
        )

    @classmethod
    def from_config(cls, config: dict) -> TransformerEncoder:
        """The encoder of a SASRec-style model config (n_layers, hidden_size, n_heads, inner_size, the two
        dropout probabilities, hidden_act, layer_norm_eps)."""
        return cls(
            n_layers=config["n_layers"],
            hidden_size=config["hidden_size"],
            n_heads=config["n_heads"],
            inner_size=config["inner_size"],
            hidden_dropout_prob=config["hidden_dropout_prob"],
            attn_dropout_prob=config["attn_dropout_prob"],
            hidden_act=config["hidden_act"],
            layer_norm_eps=config["layer_norm_eps"],
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor, read_index: torch.Tensor | None = None) -> torch.Tensor:
        """Last layer's output [B, L, d], or with `read_index` [B] only its rows x[b, read_index[b]] as [B, d].

        With `read_index` the last layer evaluates just those query rows (keys/values still use every
        position): the same values, without the work for rows nobody reads.
        """
        *lower, top = self.layers
        for layer in lower if read_index is not None else self.layers:
            x = layer(x, mask)
        if read_index is None:
            return x
        rows = read_index.view(-1, 1, 1)
        query = x.gather(1, rows.expand(-1, 1, x.size(-1)))  # [B, 1, d]
        row_mask = mask.expand(x.size(0), -1, -1, -1).gather(2, rows[..., None].expand(-1, mask.size(1), 1, mask.size(-1)))
        return top(x, row_mask, query).squeeze(1)


class SequenceEmbedding(nn.Module):
    """SASRec-family embedding stage: Dropout(LayerNorm(x + PosEmb[0..L-1]))."""

    def __init__(self, max_len: int, hidden_size: int, dropout_prob: float, layer_norm_eps: float):
        super().__init__()
        self.position_embedding = nn.Embedding(max_len, hidden_size)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)
        self.dropout = Dropout(dropout_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.layer_norm(x + self.position_embedding.weight[: x.size(1)]))


class LearnableFilter(nn.Module):
    """FMLP-Rec's global filter along the sequence axis: irfft(rfft(x) ⊙ W), both with norm='ortho'.

    W is complex, stored as a real parameter (1, L//2+1, d, 2) drawn 0.02·N(0, 1); the sequence
    length must equal `max_len`.
    """

    def __init__(self, max_len: int, hidden_size: int):
        super().__init__()
        self.complex_weight = nn.Parameter(torch.randn(1, max_len // 2 + 1, hidden_size, 2) * 0.02)

    def filter_spectrum(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        """Time-domain output from an already computed `rfft(x, dim=1, norm='ortho')`."""
        return torch.fft.irfft(spectrum * torch.view_as_complex(self.complex_weight), n=length, dim=1, norm="ortho")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.filter_spectrum(torch.fft.rfft(at_least_float32(x), dim=1, norm="ortho"), x.size(1))


def nonzero_rows(x: torch.Tensor) -> torch.Tensor | None:
    """Indices of the rows of a 2-D x that are not all zero (None if that is every row, or if x needs a gradient)."""
    if x.requires_grad:
        return None
    rows = x.any(dim=-1).nonzero().squeeze(1)
    return None if rows.numel() == x.size(0) else rows


class _ExpertMixture(torch.autograd.Function):
    """Σ_k gates[:, k] · (Dropout_k(x)·A_k − shift_k[row % P]) for x [N, in], gates [N, K], experts A [K, in, out],
    shift [K, P, out] or None (rows cycle through P positions) and dropout probability p (0: no dropout).

    `rows`, if given, lists the rows of x that are not all zero (x must then not need a gradient): the other rows
    have Dropout_k(0)·A_k = 0, so the products are computed for `rows` only and padding costs nothing.
    Runs expert by expert on reused buffers; backward keeps only the bool dropout masks and the expert outputs
    (needed for the gate gradient), so no [K, N, in] float tensor is ever stored. The 1/(1−p) dropout scale
    is applied to A_k (and to its gradient) instead of to the inputs, and the products are computed into
    buffers padded to a multiple of 16 columns (MKL's GEMM is ~30% slower at e.g. 300).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, gates: torch.Tensor, experts: torch.Tensor, shift: torch.Tensor | None,
                p: float, rows: torch.Tensor | None):
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


class MoEAdaptor(nn.Module):
    """UniSRec's MoE adaptor with optional per-position modulation (TedRec).

    gates = softmax(x·Wg + ε·(softplus(x·Wn) + 0.01)), ε ~ N(0, 1) only in training (dense, no top-k);
    expert k: (Dropout_p(x) − b_k)·A_k, one dropout mask per expert; output Σ_k gates_k · expert_k.
    `modulation`: "global" (b_k of shape (in,), UniSRec's whitening bias), "position" (b_k of shape
    (L, in), TedRec's modulation embedding; inputs must be [.., L, in]) or "none" (no bias).
    Wg, Wn and b are zero-initialised, A_k ~ N(0, 0.02²).

    Computed as Σ_k gates_k·(Dropout_k(x)·A_k − b_k·A_k), which is the same function: the bias enters
    through the small products b_k·A_k, never through an [.., in]-sized tensor, and all-zero input rows
    (padding positions, whose text row is 0) skip the expert products, which are 0 for them.
    """

    def __init__(self, in_dim: int, out_dim: int, n_exps: int, dropout_prob: float,
                 modulation: str = "global", max_len: int | None = None, noise: bool = True):
        super().__init__()
        shapes = {"global": (n_exps, 1, in_dim), "position": (n_exps, max_len, in_dim), "none": None}
        if modulation not in shapes or (modulation == "position" and max_len is None):
            raise ValueError(f"modulation must be global, position (with max_len) or none, not {modulation!r}")
        self.n_exps = n_exps
        self.dropout_prob = dropout_prob
        self.noise = noise
        self.w_gate = nn.Parameter(torch.zeros(in_dim, n_exps))
        self.w_noise = nn.Parameter(torch.zeros(in_dim, n_exps))
        self.experts = nn.Parameter(torch.randn(n_exps, in_dim, out_dim) * 0.02)
        self.bias = nn.Parameter(torch.zeros(shapes[modulation])) if shapes[modulation] else None

    def gate_logits(self, x: torch.Tensor, ids: torch.Tensor | None = None) -> torch.Tensor:
        """Router logits [.., K] of x (or, with `ids`, of the rows x[ids]); noisy in training mode.

        The logits are linear in x, so with `ids` they are computed once per row of x and then gathered.
        """
        # F.linear with the transposed weight gets the fast (gradᵀ·x) layout for the weight gradient
        if not (self.noise and self.training):
            logits = F.linear(x, self.w_gate.t())
            return logits if ids is None else logits[ids]
        both = F.linear(x, torch.cat([self.w_gate, self.w_noise], dim=1).t())
        clean, raw_noise = (both if ids is None else both[ids]).chunk(2, dim=-1)
        return clean + torch.randn_like(clean) * (F.softplus(raw_noise) + 0.01)

    def shift(self) -> torch.Tensor | None:
        """b_k·A_k [K, 1 or L, out] in (at least) float32, or None without modulation."""
        return None if self.bias is None else torch.bmm(at_least_float32(self.bias), at_least_float32(self.experts))

    def lookup(self, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """`forward(table[ids])` for a [N, in] table and ids [.., L], with less work: the gate logits are computed
        per table row; without dropout (evaluation) so is the whole mixture except the per-position shift,
        Σ_k g_k·(t·A_k − s_k) = (Σ_k g_k·t·A_k)[ids] − Σ_k g_k·s_k, since the gates then depend on the item only."""
        if self.training:
            return self.forward(table[ids], self.gate_logits(table, ids))
        self._check_length(ids.size(-1))
        with torch.autocast(table.device.type, enabled=False):
            gates = F.softmax(at_least_float32(self.gate_logits(table)), dim=-1)  # [N, K]
            text, experts = at_least_float32(table), at_least_float32(self.experts)
            mixed = torch.zeros(table.size(0), experts.size(-1), dtype=text.dtype, device=text.device)
            for k in range(self.n_exps):
                mixed.addmm_(text * gates[:, k : k + 1], experts[k])
            out = mixed[ids]
            shift = self.shift()
            if shift is not None:  # Σ_k g_k·s_k[j]: position by position, [L, B', K] @ [L or 1, K, out]
                item_gates = gates[ids].reshape(-1, ids.size(-1), self.n_exps).transpose(0, 1)
                out -= torch.matmul(item_gates, shift.transpose(0, 1)).transpose(0, 1).reshape(out.shape)
        return out

    def _check_length(self, length: int) -> None:
        if self.bias is not None and self.bias.size(1) != 1 and length != self.bias.size(1):
            raise ValueError(f"per-position modulation needs inputs of length {self.bias.size(1)}, got {length}")

    def forward(self, x: torch.Tensor, gate_logits: torch.Tensor | None = None) -> torch.Tensor:
        """The adaptor on x [.., in]; `gate_logits` [.., K] if already computed (see `lookup`)."""
        gates = F.softmax(self.gate_logits(x) if gate_logits is None else gate_logits, dim=-1)
        self._check_length(x.size(-2))
        p = self.dropout_prob if self.training else 0.0
        with torch.autocast(x.device.type, enabled=False):  # the mixture runs in (at least) float32
            experts, shift = at_least_float32(self.experts), self.shift()
            flat, gates = at_least_float32(x).reshape(-1, x.size(-1)), at_least_float32(gates).reshape(-1, self.n_exps)
            out = _ExpertMixture.apply(flat, gates, experts, shift, p, nonzero_rows(flat))
        return out.view(*x.shape[:-1], -1)


def sample_absent_items(present: torch.Tensor, count: int, n_items: int, max_rounds: int = 100) -> torch.Tensor:
    """[B, count] ids drawn uniformly from 1..n_items−1, each absent from its row of `present` [B, M].

    Vectorised rejection: clashing draws are redrawn until none is left (after `max_rounds` rounds a row that
    holds almost every id may keep a clash).
    """
    draws = torch.randint(1, n_items, (present.size(0), count), device=present.device)
    for _ in range(max_rounds):
        clash = (draws.unsqueeze(-1) == present.unsqueeze(1)).any(-1)
        if not bool(clash.any()):
            break
        draws = torch.where(clash, torch.randint_like(draws, 1, n_items), draws)
    return draws
