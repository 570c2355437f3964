"""The paper's layers, shared by the baselines and TedRec: RecBole's Transformer (attention, FFN, encoder),
the SASRec-family sequence embedding, FMLP-Rec's learnable filter, UniSRec's MoE adaptor, cosine scoring,
attention masks and RecBole's init.

Everything follows RecBole 1.2 (`recbole/model/layers.py`, `SequentialRecommender`) unless a
docstring says otherwise; see the research digest §0.3/§0.4 for the conventions. The CPU kernels these
layers run on are in `benchmark.layers.kernels`.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from benchmark.layers.kernels import (
    Dropout,
    ExpertMixture,
    at_least_float32,
    dropout,
    nonzero_ids,
    nonzero_rows,
    rfft_ortho,
)
from benchmark.model import rows_at

MASK_VALUE = -10000.0  # RecBole's additive value for hidden attention keys

ACTIVATIONS = {
    "gelu": F.gelu,  # exact erf form, x * 0.5 * (1 + erf(x / sqrt(2)))
    "relu": F.relu,
    "swish": F.silu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


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

    def __init__(
        self,
        hidden_size: int,
        n_heads: int,
        hidden_dropout_prob: float,
        attn_dropout_prob: float,
        layer_norm_eps: float,
    ):
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
        """x [B, L, d] keys/values; `query` [B, Lq, d] (default x), `mask` [B, 1 or H, Lq, L]; returns [B, Lq, d]."""
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

    def __init__(
        self, hidden_size: int, inner_size: int, hidden_dropout_prob: float, hidden_act: str, layer_norm_eps: float
    ):
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

    def __init__(
        self,
        hidden_size: int,
        n_heads: int,
        inner_size: int,
        hidden_dropout_prob: float,
        attn_dropout_prob: float,
        hidden_act: str,
        layer_norm_eps: float,
    ):
        super().__init__()
        self.attention = MultiHeadAttention(
            hidden_size, n_heads, hidden_dropout_prob, attn_dropout_prob, layer_norm_eps
        )
        self.feed_forward = FeedForward(hidden_size, inner_size, hidden_dropout_prob, hidden_act, layer_norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, query: torch.Tensor | None = None) -> torch.Tensor:
        return self.feed_forward(self.attention(x, mask, query))


class TransformerEncoder(nn.Module):
    """RecBole `TransformerEncoder`: `n_layers` post-LN blocks."""

    def __init__(
        self,
        n_layers: int,
        hidden_size: int,
        n_heads: int,
        inner_size: int,
        hidden_dropout_prob: float,
        attn_dropout_prob: float,
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-12,
    ):
        super().__init__()
        self.layers = nn.ModuleList(
            TransformerLayer(
                hidden_size, n_heads, inner_size, hidden_dropout_prob, attn_dropout_prob, hidden_act, layer_norm_eps
            )
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
        row_mask = mask.expand(x.size(0), -1, -1, -1).gather(
            2, read_index.view(-1, 1, 1, 1).expand(-1, mask.size(1), 1, mask.size(-1))
        )
        return top(x, row_mask, rows_at(x, read_index).unsqueeze(1)).squeeze(1)


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
        positions = torch.arange(max_len)
        # lags[t, j] = (t − j) mod L, the impulse response's index for output row t and input row j (`at`)
        self.register_buffer("lags", (positions.view(-1, 1) - positions) % max_len, persistent=False)

    def filter_spectrum(self, spectrum: torch.Tensor, length: int) -> torch.Tensor:
        """Time-domain output from an already computed `rfft(x, dim=1, norm='ortho')` (`rfft_ortho`)."""
        return torch.fft.irfft(spectrum * torch.view_as_complex(self.complex_weight), n=length, dim=1, norm="ortho")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.filter_spectrum(rfft_ortho(at_least_float32(x), dim=1), x.size(1))

    def at(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """`forward(x)[b, index[b]]` for every b, [B, d], without filtering the other positions.

        The filter is the circular convolution of x with its impulse response h = irfft(W) (default norm), so
        row t of the output is Σ_j x[j]·h[(t − j) mod L]: one weighted sum per read row.
        """
        x = at_least_float32(x)
        impulse = torch.fft.irfft(torch.view_as_complex(self.complex_weight)[0], n=x.size(1), dim=0)  # [L, d]
        return (x * impulse[self.lags.index_select(0, index)]).sum(1)  # [B, L, d]: h[(index[b] − j) mod L]


class MoEAdaptor(nn.Module):
    """UniSRec's MoE adaptor (official `MoEAdaptorLayer`).

    gates = softmax(x·Wg + ε·(softplus(x·Wn) + 0.01)), ε ~ N(0, 1) only in training (dense, no top-k);
    expert k: (Dropout_p(x) − b_k)·A_k, one dropout mask per expert; output Σ_k gates_k · expert_k.
    b_k: UniSRec's whitening bias, one (in,) vector per expert, stored as `bias` (K, 1, in); `whitening=False`:
    no bias. Wg, Wn and b are zero-initialised, A_k ~ N(0, 0.02²).

    Computed as Σ_k gates_k·(Dropout_k(x)·A_k − b_k·A_k), which is the same function: the bias enters
    through the small products b_k·A_k, never through an [.., in]-sized tensor, and all-zero input rows
    (padding positions, whose text row is 0) skip the expert products, which are 0 for them. The products
    (`shift`, [K, R, out]) are subtracted from the input rows in turn along the second-to-last axis, so a
    subclass may hold R > 1 bias rows per expert (with `check_length` for its inputs) and reuse the rest.

    `dropout_per_item` (a declared change of dropout granularity, not UniSRec's or TedRec's code): in `lookup`
    during training, every occurrence of an item in the batch shares one dropout mask per expert instead of one
    per position, so the expert products are computed once per distinct item of the batch and gathered.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        n_exps: int,
        dropout_prob: float,
        whitening: bool = True,
        noise: bool = True,
        dropout_per_item: bool = False,
    ):
        super().__init__()
        self.n_exps = n_exps
        self.dropout_prob = dropout_prob
        self.noise = noise
        self.dropout_per_item = dropout_per_item
        self.w_gate = nn.Parameter(torch.zeros(in_dim, n_exps))
        self.w_noise = nn.Parameter(torch.zeros(in_dim, n_exps))
        self.experts = nn.Parameter(torch.randn(n_exps, in_dim, out_dim) * 0.02)
        self.bias = nn.Parameter(torch.zeros(n_exps, 1, in_dim)) if whitening else None

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
        """b_k·A_k [K, R, out] in (at least) float32, or None without a bias."""
        return None if self.bias is None else torch.bmm(at_least_float32(self.bias), at_least_float32(self.experts))

    def shift_mixture(self, gates: torch.Tensor) -> torch.Tensor | None:
        """Σ_k g_k·s_k for gates [.., R', K] (R' = R, or any length if R = 1) -> [.., R', out]: row j of the
        second-to-last axis takes bias row j; None without a bias."""
        shift = self.shift()
        if shift is None:
            return None
        rows = gates.reshape(-1, gates.size(-2), self.n_exps).transpose(0, 1)  # [R', B', K]
        return torch.matmul(rows, shift.transpose(0, 1)).transpose(0, 1).reshape(*gates.shape[:-1], -1)

    def lookup(self, table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """`forward(table[ids])` for a [N, in] table whose row 0 (the padding id) is zero, and ids [.., L], with
        less work: the gate logits are computed per table row and gathered; in training the expert products are
        computed for the non-padding ids only (padding rows give Dropout(0)·A_k = 0); without dropout
        (evaluation) the whole mixture but the shift is computed per table row, since
        Σ_k g_k·(t·A_k − s_k) = (Σ_k g_k·t·A_k)[ids] − Σ_k g_k·s_k when the gates depend on the item only."""
        self.check_length(ids.size(-1))
        if self.training:
            gates = F.softmax(self.gate_logits(table, ids), dim=-1)
            rows = nonzero_ids(ids)
            active = ids.reshape(-1) if rows is None else ids.reshape(-1)[rows]
            if self.dropout_per_item:
                return self.per_item_mixture(table, active, gates, rows)
            return self.mixture(table[active], gates, rows)
        with torch.autocast(table.device.type, enabled=False):
            gates = F.softmax(at_least_float32(self.gate_logits(table)), dim=-1)  # [N, K]
            text, experts = at_least_float32(table), at_least_float32(self.experts)
            mixed = torch.zeros(table.size(0), experts.size(-1), dtype=text.dtype, device=text.device)
            for k in range(self.n_exps):
                mixed.addmm_(text * gates[:, k : k + 1], experts[k])
            out = mixed[ids]
            shift = self.shift_mixture(gates[ids])
        return out if shift is None else out - shift

    def check_length(self, length: int) -> None:
        """Hook for subclasses whose bias rows need inputs of a given length along the second-to-last axis."""

    def forward(self, x: torch.Tensor, gate_logits: torch.Tensor | None = None) -> torch.Tensor:
        """The adaptor on x [.., in]; `gate_logits` [.., K] if already computed."""
        gates = F.softmax(self.gate_logits(x) if gate_logits is None else gate_logits, dim=-1)
        self.check_length(x.size(-2))
        flat = x.reshape(-1, x.size(-1))
        rows = nonzero_rows(flat)
        return self.mixture(flat if rows is None else flat.index_select(0, rows), gates, rows)

    def mixture(self, x: torch.Tensor, gates: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """Σ_k g_k·(Dropout_k(x)·A_k − s_k) [.., out] from the gates [.., K] of every input row and the rows x
        [n, in] of the flattened input listed by `rows` (None: all); the unlisted rows are zero."""
        p = self.dropout_prob if self.training else 0.0
        with torch.autocast(x.device.type, enabled=False):  # the mixture runs in (at least) float32
            flat_gates = at_least_float32(gates).reshape(-1, self.n_exps)
            products = ExpertMixture.apply(
                at_least_float32(x),
                flat_gates if rows is None else flat_gates.index_select(0, rows),
                at_least_float32(self.experts),
                p,
            )
            return self.assemble(products, gates, rows)

    def per_item_mixture(
        self, table: torch.Tensor, active: torch.Tensor, gates: torch.Tensor, rows: torch.Tensor | None
    ) -> torch.Tensor:
        """`mixture` of table[active] with one dropout mask per expert and distinct item (`dropout_per_item`)."""
        with torch.autocast(table.device.type, enabled=False):
            items, inverse = torch.unique(active, return_inverse=True)
            text = at_least_float32(table[items])
            dropped = torch.stack([dropout(text, self.dropout_prob, True) for _ in range(self.n_exps)])
            products = torch.bmm(dropped, at_least_float32(self.experts))  # [K, U, out]
            flat_gates = at_least_float32(gates).reshape(-1, self.n_exps)
            row_gates = flat_gates if rows is None else flat_gates.index_select(0, rows)  # [n, K]
            mixed = torch.bmm(row_gates.unsqueeze(1), products.transpose(0, 1)[inverse]).squeeze(1)  # [n, out]
            return self.assemble(mixed, gates, rows)

    def assemble(self, mixed: torch.Tensor, gates: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        """The adaptor output [.., out]: the expert mixture `mixed` [n, out] of the rows listed by `rows` (None:
        all; the others are zero) minus the gated shift Σ_k g_k·s_k of every row."""
        out = mixed
        if rows is not None:
            out = mixed.new_zeros(gates.numel() // self.n_exps, mixed.size(-1)).index_put((rows,), mixed)
        out = out.view(*gates.shape[:-1], -1)
        shift = self.shift_mixture(at_least_float32(gates))
        return out if shift is None else out - shift
