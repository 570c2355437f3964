"""FEARec (SIGIR 2023) in the TedRec setting: hybrid frequency/time attention + contrastive terms, full-softmax CE.

Follows the official `sudaada/FEARec` (`recbole/model/layers.py` HybridAttention/FEAEncoder,
`recbole/model/sequential_recommender/fearec.py`, `recbole/data/dataloader/sequential_dataloader.py`; digest §4):

- embedding stage as SASRec: `Dropout(LN(ItemEmb[seq] + PosEmb))`; `n_layers` FEA blocks = HybridAttention + the
  RecBole FFN; read-out at len−1 (right padding); logits = dot with the ID table; CE over all ids.
- HybridAttention of layer i (Q, K, V = the usual projections, RecBole init, post-LN `LN(Dropout(ctx·Wo+bo) + X)`):
  * frequency band [left, right) of the F = L//2+1 rfft bins, with the official arithmetic (`frequency_band`):
    "G" mixer if global_ratio > 1/n_layers (w = global_ratio, step s = (F·(1−w)) // (n_layers−1), a Python
    float floor division), else "L" mixer (w = 1/n_layers, s = w·F); left = int(F·(1−w) − i·s),
    right = int(F − i·s). (0.6, 2 layers, L 50): layer 0 [10, 26), layer 1 [0, 16); global_ratio 1: all bins.
  * band limiting (the official rfft -> keep the band's bins -> irfft round trip, default norms) is linear along
    time: one fixed real symmetric [L, L] projection P per layer (`band_projection`), applied to all channels by
    one batched product (at L = 50 cheaper than the FFT round trip on CPU; backward keeps nothing but P).
  * auto-correlation: the official averages irfft(band(rfft(Q)·conj(rfft(K)))) over heads and channels, m [B, L].
    That is the circular cross-correlation of the band-limited Q̃ = P·Q, K̃ = P·K, so
    m[b, τ] = mean_c Σ_t Q̃[b, (t + τ) mod L, c]·K̃[b, t, c]: the diagonal sums of Q̃·K̃ᵀ ([B, L, L]) / d
    (`HybridAttention.correlation`; limiting one factor suffices, so K is not projected when the time branch
    does not need K̃).
    top_k = int(topk_factor·ln L) delays τ: in training the top-k of the batch mean of m, shared by the whole
    batch ("batch-normalisation style"), weights softmax_j(m[b, τ_j]); at inference each row's own top-k with
    the softmax of its values. ctx_freq[t] = Σ_j w_j·V[(t + τ_j) mod L] (the official roll / gather on the
    doubled sequence, V not band-limited), computed as one batched product with a [B, Lq, L] mixing matrix
    holding the k weights of each row at (t + τ_j) mod L (`delay_aggregate`): training, inference and the
    read-out-row-only last layer share one vectorised path, with no per-sample loop. No mask: padding and later
    positions enter through the circular roll (as the official).
  * `dual_domain`: Q, K, V band-limited (the layer's band if `std`, else every bin, i.e. unchanged) and ordinary
    scaled dot-product attention with the causal + padding mask and attention dropout;
    ctx = (1 − spatial_ratio)·ctx_freq + spatial_ratio·ctx_time.
  * the frequency part (projections, correlation, delays, aggregation) runs in float32 even under autocast.
  * the official `use_filter` (which references an undefined weight) and its unused Dropout(0.1) are left out.
- loss (`contrast`): s1 = f(seq) feeds the CE. `un`: + lmd·NCE(s1, s2), s2 = f(seq) again (another dropout
  draw); `su`: + lmd_sem·NCE(s1, s3), s3 = f(seq′) with seq′ a training row with the same target; `us`: both;
  `us_x` (the official script): + lmd_sem·NCE(s2, s3) (s1 only in the CE); `none`: CE only (what the stock
  RecBole yaml, which lacks the `contrast` key, trains). NCE = NT-Xent over the 2B rows [a; b] (`nt_xent`):
  similarity `sim` (dot, or cos) / tau, the paired row the positive, the other 2B − 2 rows negatives, no
  false-negative masking. `fredom` (only with `us_x`, as the official): + 0.1·mean|rfft(a) − rfft(b)| (ortho,
  over the hidden dimension of the read-out vectors) for the pairs of `fredom_type` (un: s1/s2, su: s1/s3, us:
  both, us_x: s2/s3).
- the 2 or 3 passes of a step run as ONE forward over the stacked batch [seq; seq; seq′]: dropout draws are
  independent per row and every op is per row except the training-time delay choice, which is made per view
  (`groups`): the same function as separate passes, with better device utilisation.
- same-target positives (`attach`, `batch_extras`, from the engine's `TrainingRows`): the training rows are grouped
  by target once, on the device (stable argsort by target, group offsets and sizes, each row's rank in its group);
  for every batch row another training row with the same target is drawn uniformly with torch ops (an int64
  draw modulo the number of others, skipping the row's own rank), or the row itself when it is alone in its
  group — the official FEARec rule (which excludes the row itself, by index). RecBole's port instead draws with
  a per-sample Python loop and re-draws until the sampled *input sequence* differs from the current one (v1.2.0
  loops forever when every candidate has the same sequence); here a positive with an identical sequence (another
  user with the same prefix) is kept, as in the official code, and nothing loops.

Choices for the digest's ambiguities (§4.k, §12.2 #3), all config keys. Defaults: RecBole 1.2.0's stock
`FEARec.yaml` at the TedRec sizes, what the authors most likely ran (TedRec requires recbole >= 1.2.0 and ran every
baseline in RecBole; that yaml has no `contrast` key, so RecBole trains CE only): `contrast` none, `global_ratio` 1,
`dual_domain` False, `spatial_ratio` 0, `std` False, `topk_factor` 1, `lmd`/`lmd_sem` 0.1, `fredom` False (`sim`
dot, `tau` 1 matter only with a contrast). Presets: `us_x` = the official script's loss and band settings
(`fearec.sh:1`: contrast us_x, sim dot, tau 1, lmd_sem 0.1, global_ratio 0.6, dual_domain, spatial_ratio 0.1, std)
at the TedRec sizes; `official` = the same plus the official sizes (hidden 64, inner 256, 2 layers, 2 heads,
dropout 0.5/0.5) and learning rate (seq.yaml:37, 1e-3). The last FEA block evaluates its output projection,
LayerNorm and FFN (and the time-domain query) only at the read-out row; Q, K, V still use every position.

Cost: `us_x`/`us` need three full passes (the CE view, a second dropout view, the positive), so a step does
≈3.7x the FLOPs of a SASRec step of the same size (one FEARec pass ≈ 1.26x SASRec's: Q for every position in the
last layer, the band projections, the correlation and the aggregation); `su`/`un` need two passes (≈2.5x),
`none` one (≈1.26x). The authors' FEARec took 13x SASRec per epoch, mostly its per-sample sampling loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from baselines.presets import yaml_backbone
from benchmark.errors import TedbenchError
from benchmark.layers.blocks import (
    FeedForward,
    MultiHeadAttention,
    SequenceEmbedding,
    causal_padding_mask,
    recbole_init_,
)
from benchmark.layers.kernels import at_least_float32, rfft_ortho
from benchmark.layers.sasrec import DROPOUTS, SASREC_DEFAULTS
from benchmark.model import Batch, DatasetInfo, SequentialModel, TrainingRows, rows_at
from benchmark.registry import SearchParam, register_model

CONTRASTS = ("none", "un", "su", "us", "us_x")
SIMILARITIES = ("dot", "cos")
FREDOM_WEIGHT = 0.1  # the official constant

FEAREC_DEFAULTS = {
    **SASREC_DEFAULTS,  # the SASRec backbone's sizes, dropouts and learning rate
    # RecBole@v1.2.0 recbole/properties/model/FEARec.yaml (no contrast/sim/tau keys: CE only)
    "contrast": "none",
    "sim": "dot",
    "tau": 1.0,
    "lmd": 0.1,  # FEARec.yaml:11
    "lmd_sem": 0.1,  # FEARec.yaml:12
    "global_ratio": 1.0,  # FEARec.yaml:14
    "dual_domain": False,  # FEARec.yaml:15
    "spatial_ratio": 0.0,  # FEARec.yaml:17
    "std": False,  # FEARec.yaml:16
    "topk_factor": 1,  # FEARec.yaml:20
    "fredom": False,  # FEARec.yaml:18
    "fredom_type": "us_x",
}
FEAREC = "sudaada/FEARec@5e98f45 "
FEAREC_SCRIPT = FEAREC + "fearec.sh:1"
FEAREC_US_X = {
    "contrast": ("us_x", FEAREC_SCRIPT),
    "sim": ("dot", FEAREC_SCRIPT),
    "tau": (1.0, FEAREC_SCRIPT),
    "lmd_sem": (0.1, FEAREC_SCRIPT),
    "lmd": (0.1, FEAREC + "recbole/properties/model/FEARec.yaml:11 (fearec.sh passes lmd without --)"),
    "global_ratio": (0.6, FEAREC_SCRIPT),
    "dual_domain": (True, FEAREC_SCRIPT),
    "spatial_ratio": (0.1, FEAREC_SCRIPT),
    "std": (True, FEAREC_SCRIPT),
}
FEAREC_OFFICIAL = {
    **yaml_backbone(FEAREC + "recbole/properties/model/FEARec.yaml", 64),
    "learning_rate": (1e-3, FEAREC + "seq.yaml:37"),
    "topk_factor": (1, FEAREC + "recbole/properties/model/FEARec.yaml:21"),
    **FEAREC_US_X,
}


def frequency_band(layer: int, n_layers: int, max_len: int, global_ratio: float) -> tuple[int, int]:
    """The rfft bins [left, right) layer `layer` (0-based) keeps, with the official float arithmetic."""
    bins = max_len // 2 + 1
    if global_ratio > 1 / n_layers:  # "G" mixer: a window of global_ratio·F bins sliding down by whole steps
        width = global_ratio
        step = (bins * (1 - global_ratio)) // (n_layers - 1)  # Python float floor division, e.g. 10.4 // 1 = 10.0
    else:  # "L" mixer: n_layers disjoint windows of F/n_layers bins
        width = 1 / n_layers
        step = width * bins
    left, right = int(bins * (1 - width) - layer * step), int(bins - layer * step)
    if not 0 <= left < right <= bins:
        raise TedbenchError(f"FEARec layer {layer}: empty or invalid frequency band [{left}, {right}) of {bins} bins")
    return left, right


def delay_aggregate(
    values: torch.Tensor, delays: torch.Tensor, weights: torch.Tensor, positions: torch.Tensor | None = None
) -> torch.Tensor:
    """Σ_j weights[b, j] · values[b, (t + delays[b, j]) mod L] for each query position t -> [B, Lq, d].

    values [B, L, d]; delays (int64) and weights [B, k]; positions [B, Lq] (default every position 0..L−1).
    One batched matrix product with the [B, Lq, L] mixing matrix that holds the k weights of each query row.
    """
    batch, length, _ = values.shape
    if positions is None:
        positions = torch.arange(length, device=values.device).expand(batch, length)
    index = (positions.unsqueeze(-1) + delays.unsqueeze(1)) % length  # [B, Lq, k]
    mixing = values.new_zeros(batch, positions.size(1), length).scatter_add(
        2, index, weights.to(values.dtype).unsqueeze(1).expand(index.shape)
    )
    return torch.bmm(mixing, values)


def nt_xent(a: torch.Tensor, b: torch.Tensor, tau: float, sim: str = "dot") -> torch.Tensor:
    """SimCLR NT-Xent over the 2B rows z = [a; b]: row i's positive is its pair, the other 2B − 2 rows its negatives.

    Equal to the official `info_nce` + CE (positive logit first, then the masked negatives): the softmax runs over
    every row but itself, so the self-similarity is masked out and the pair's column is the label.
    """
    z = torch.cat([a, b]).float()
    if sim == "cos":
        z = F.normalize(z, dim=-1, eps=1e-8)
    logits = (z @ z.t()) / tau
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    half = torch.arange(len(a), device=z.device)
    return F.cross_entropy(logits.masked_fill(eye, float("-inf")), torch.cat([half + len(a), half]))


def band_projection(max_len: int, band: tuple[int, int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The [L, L] matrix P with P·x = irfft(rfft(x) with the bins outside [left, right) zeroed) along time.

    The official round trip (default norms) is linear along time, so it is one fixed matrix, applied to every
    channel by one batched product; nothing but P is kept for backward.
    P is real and symmetric (bin f goes with its mirror L − f): a projection.
    """
    spectrum = torch.fft.rfft(torch.eye(max_len, dtype=torch.float64), dim=0)  # column t: the impulse at t
    spectrum[: band[0]] = 0
    spectrum[band[1] :] = 0
    return torch.fft.irfft(spectrum, n=max_len, dim=0).to(dtype)


class HybridAttention(MultiHeadAttention):
    """FEARec's HybridAttention for one layer: auto-correlation over a frequency band (+ band-limited attention).

    Same parameters as RecBole's attention sublayer (Q, K, V, output projection, LayerNorm), so it subclasses it
    and reuses its `attend` for the time-domain branch.
    """

    def __init__(
        self,
        hidden_size: int,
        n_heads: int,
        hidden_dropout_prob: float,
        attn_dropout_prob: float,
        layer_norm_eps: float,
        max_len: int,
        band: tuple[int, int],
        top_k: int,
        dual_domain: bool,
        spatial_ratio: float,
        std: bool,
    ):
        super().__init__(hidden_size, n_heads, hidden_dropout_prob, attn_dropout_prob, layer_norm_eps)
        self.max_len = max_len
        self.band = band
        self.top_k = top_k
        self.dual_domain = dual_domain
        self.spatial_ratio = spatial_ratio
        self.time_band = band if std else (0, max_len // 2 + 1)
        self._projections: dict[tuple[torch.device, torch.dtype], torch.Tensor] = {}  # P per device and dtype

    def correlation(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        """m [B, L]: m[b, τ] = mean_c Σ_t q[b, (t + τ) mod L, c]·k[b, t, c] for band-limited q (and raw or
        band-limited k).

        The official computes irfft(band(rfft(Q)·conj(rfft(K)))) per head and channel and averages; that is the
        circular cross-correlation of the band-limited Q and K, and limiting one factor to the band limits the
        product, so it equals the channel mean of the diagonal sums of q·kᵀ (a [B, L, L] batched product).
        """
        length = q.size(1)
        lags = torch.arange(length, device=q.device)
        rows = ((lags[:, None] + lags[None, :]) % length).expand(q.size(0), -1, -1)  # [τ, t] -> (t + τ) mod L
        return torch.bmm(q, k.transpose(1, 2)).gather(1, rows).sum(-1) / q.size(-1)

    def delays(self, corr: torch.Tensor, groups: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(delays [B, k], weights [B, k]): per view in training (shared by its rows), per row at inference."""
        if self.training:
            shared = corr.view(groups, -1, corr.size(1)).mean(1).topk(self.top_k, dim=-1).indices  # [G, k]
            delays = shared.repeat_interleave(corr.size(0) // groups, dim=0)
            return delays, torch.softmax(corr.gather(1, delays), dim=-1)
        top, delays = corr.topk(self.top_k, dim=-1)
        return delays, torch.softmax(top, dim=-1)

    def band_limited(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, L, c] with every rfft bin outside the layer's band removed, in (at least) float32."""
        x = at_least_float32(x)
        if self.band == (0, self.max_len // 2 + 1):
            return x
        key = (x.device, x.dtype)
        if key not in self._projections:
            self._projections[key] = band_projection(self.max_len, self.band, x.dtype).to(x.device)
        return torch.matmul(self._projections[key], x)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, groups: int = 1, read_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        """x [B, L, d] -> [B, L, d], or with `read_index` [B] only the rows at read_index as [B, 1, d].

        `groups`: the batch is that many equal blocks (views) whose training-time delays are chosen separately.
        """
        batch, length, hidden = x.shape
        if length != self.max_len:
            raise TedbenchError(f"FEARec needs sequences of length {self.max_len}, got {length}")
        qk = F.linear(x, torch.cat([self.query.weight, self.key.weight]), torch.cat([self.query.bias, self.key.bias]))
        v = self.value(x)  # separate, so that only V (not Q, K) is kept for the aggregation's backward
        positions = None if read_index is None else read_index.view(-1, 1)
        same_band = self.dual_domain and self.time_band == self.band
        with torch.autocast(x.device.type, enabled=False):
            if same_band:  # Q̃, K̃ serve the correlation and the time branch
                q_corr, k_corr = self.band_limited(qk).chunk(2, dim=-1)
                v_time = self.band_limited(v)
            else:  # the correlation needs only one band-limited factor
                q_corr, k_corr = self.band_limited(qk[..., :hidden]), at_least_float32(qk[..., hidden:])
            delays, weights = self.delays(self.correlation(q_corr, k_corr), groups)
            context = delay_aggregate(at_least_float32(v), delays, weights, positions)
        if self.dual_domain:
            q, k = (q_corr, k_corr) if same_band else qk.chunk(2, dim=-1)
            v = v_time if same_band else v
            if read_index is not None:
                q = rows_at(q, read_index).unsqueeze(1)
                mask = mask.expand(batch, -1, -1, -1).gather(
                    2, positions[:, None, :, None].expand(-1, mask.size(1), 1, length)
                )
            timed = self.attend(q, k, v, mask.to(q.dtype))
            context = (1 - self.spatial_ratio) * context + self.spatial_ratio * timed
        residual = x if read_index is None else rows_at(x, read_index).unsqueeze(1)
        return self.layer_norm(self.out_dropout(self.dense(context)) + residual)


class FEALayer(nn.Module):
    """One FEA block: HybridAttention sublayer then the RecBole FFN."""

    def __init__(self, attention: HybridAttention, feed_forward: FeedForward):
        super().__init__()
        self.attention = attention
        self.feed_forward = feed_forward

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None, groups: int = 1, read_index: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.feed_forward(self.attention(x, mask, groups, read_index))


@dataclass
class SameTargetIndex:
    """The training rows grouped by target, on the device.

    target:     each training row's target;
    order:      training-row indices sorted (stably) by target;
    start/size: each item id's group offset in `order` and group size;
    rank:       each training row's position in `order`.
    """

    target: torch.Tensor
    order: torch.Tensor
    start: torch.Tensor
    size: torch.Tensor
    rank: torch.Tensor

    @classmethod
    def build(cls, target: torch.Tensor, n_items: int) -> "SameTargetIndex":
        rows = torch.arange(len(target), device=target.device)
        order = torch.argsort(target, stable=True)
        size = torch.bincount(target, minlength=n_items)
        rank = torch.empty_like(order).scatter_(0, order, rows)
        return cls(target, order, torch.cumsum(size, 0) - size, size, rank)

    def sample(self, index: torch.Tensor) -> torch.Tensor:
        """For each training row in `index`, another training row with the same target drawn uniformly (the row
        itself when there is none)."""
        target = self.target[index]
        start, size = self.start[target], self.size[target]
        others = size - 1
        draw = torch.randint(0, 2**62, target.shape, device=target.device) % others.clamp(min=1)
        draw = draw + (draw >= self.rank[index] - start).long()  # skip the row itself
        chosen = self.order[(start + draw).clamp(max=len(self.order) - 1)]
        return torch.where(others > 0, chosen, index)


@register_model(
    "FEARec",
    defaults=FEAREC_DEFAULTS,
    presets={"official": FEAREC_OFFICIAL, "us_x": FEAREC_US_X},
    search_space={  # global_ratio/topk_factor: RecBole's docs grid (docs/source/user_guide/model/sequential/fearec.rst)
        "hidden_dropout_prob": DROPOUTS,
        "attn_dropout_prob": DROPOUTS,
        "global_ratio": SearchParam("categorical", choices=(0.6, 0.8, 1.0)),
        "topk_factor": SearchParam("categorical", choices=(1, 3, 5)),
    },
)
class FEARec(SequentialModel):
    """FEARec: frequency-band auto-correlation (+ band-limited attention), contrastive terms, dot-product scoring."""

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        if config["contrast"] not in CONTRASTS:
            raise TedbenchError(f"FEARec contrast must be one of {', '.join(CONTRASTS)}, not {config['contrast']!r}")
        if config["sim"] not in SIMILARITIES:
            raise TedbenchError(f"FEARec sim must be one of {', '.join(SIMILARITIES)}, not {config['sim']!r}")
        if config["fredom"] and (
            config["contrast"] != "us_x" or config["fredom_type"] not in ("un", "su", "us", "us_x")
        ):
            raise TedbenchError(
                "FEARec fredom needs contrast us_x and fredom_type in un, su, us, us_x (as the official code)"
            )
        if not 0 < config["global_ratio"] <= 1 or config["tau"] <= 0:
            raise TedbenchError("FEARec needs 0 < global_ratio <= 1 and tau > 0")
        hidden, n_layers, max_len = config["hidden_size"], config["n_layers"], info.max_len
        top_k = int(config["topk_factor"] * math.log(max_len))
        if not 1 <= top_k <= max_len:
            raise TedbenchError(f"FEARec top_k = int(topk_factor·ln L) = {top_k} is outside [1, {max_len}]")
        self.contrast = config["contrast"]
        self.dual_domain = config["dual_domain"]
        self.item_embedding = nn.Embedding(info.n_items, hidden, padding_idx=0)
        self.embedding = SequenceEmbedding(max_len, hidden, config["hidden_dropout_prob"], config["layer_norm_eps"])
        self.layers = nn.ModuleList(
            FEALayer(
                HybridAttention(
                    hidden,
                    config["n_heads"],
                    config["hidden_dropout_prob"],
                    config["attn_dropout_prob"],
                    config["layer_norm_eps"],
                    max_len,
                    frequency_band(i, n_layers, max_len, config["global_ratio"]),
                    top_k,
                    config["dual_domain"],
                    config["spatial_ratio"],
                    config["std"],
                ),
                FeedForward(
                    hidden,
                    config["inner_size"],
                    config["hidden_dropout_prob"],
                    config["hidden_act"],
                    config["layer_norm_eps"],
                ),
            )
            for i in range(n_layers)
        )
        recbole_init_(self, config["initializer_range"])
        self.same_target: SameTargetIndex | None = None

    # -- encoder ---------------------------------------------------------------------------------
    def all_positions(self, seq: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """Last layer's output at every position [B, L, d]."""
        x, mask = self.embedding(self.item_embedding(seq)), causal_padding_mask(seq) if self.dual_domain else None
        for layer in self.layers:
            x = layer(x, mask, groups)
        return x

    def encode(self, seq: torch.Tensor, length: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """Read-out [B, d]; `groups` > 1: the batch stacks that many views (training delays chosen per view)."""
        x, mask = self.embedding(self.item_embedding(seq)), causal_padding_mask(seq) if self.dual_domain else None
        *lower, top = self.layers
        for layer in lower:
            x = layer(x, mask, groups)
        return top(x, mask, groups, (length - 1).clamp(min=0)).squeeze(1)  # as gather_last

    def item_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight

    # -- same-target positives -------------------------------------------------------------------
    @property
    def needs_positives(self) -> bool:
        return self.contrast in ("su", "us", "us_x")

    def attach(self, train: TrainingRows) -> None:
        self.same_target = SameTargetIndex.build(train.target, self.info.n_items) if self.needs_positives else None

    def batch_extras(self, train: TrainingRows, index: torch.Tensor) -> dict[str, torch.Tensor]:
        if not self.needs_positives:
            return {}
        if self.same_target is None:
            self.attach(train)
        seq, length = train.inputs(self.same_target.sample(index))
        return {"same_target_seq": seq, "same_target_length": length}

    # -- loss ------------------------------------------------------------------------------------
    def loss(self, batch: Batch) -> torch.Tensor:
        seqs, lengths = [batch.seq], [batch.length]
        if self.contrast in ("un", "us", "us_x"):  # a second dropout view of the same rows
            seqs.append(batch.seq)
            lengths.append(batch.length)
        if self.needs_positives:
            if "same_target_seq" not in batch.extra:
                raise TedbenchError(f"FEARec contrast {self.contrast} needs the same-target sequences of batch_extras")
            seqs.append(batch.extra["same_target_seq"])
            lengths.append(batch.extra["same_target_length"])
        views = self.encode(torch.cat(seqs), torch.cat(lengths), groups=len(seqs)).chunk(len(seqs))
        first = views[0]
        loss = F.cross_entropy(self.score_items(first, training=True).float(), batch.target)
        tau, sim, lmd, lmd_sem = self.config["tau"], self.config["sim"], self.config["lmd"], self.config["lmd_sem"]
        if self.contrast == "un":
            loss = loss + lmd * nt_xent(first, views[1], tau, sim)
        elif self.contrast == "su":
            loss = loss + lmd_sem * nt_xent(first, views[1], tau, sim)
        elif self.contrast == "us":
            loss = loss + lmd * nt_xent(first, views[1], tau, sim) + lmd_sem * nt_xent(first, views[2], tau, sim)
        elif self.contrast == "us_x":
            loss = loss + lmd_sem * nt_xent(views[1], views[2], tau, sim)
            if self.config["fredom"]:
                pairs = {"un": [(0, 1)], "su": [(0, 2)], "us": [(0, 1), (0, 2)], "us_x": [(1, 2)]}[
                    self.config["fredom_type"]
                ]
                for i, j in pairs:
                    loss = loss + FREDOM_WEIGHT * frequency_distance(views[i], views[j])
        return loss


def frequency_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """mean |rfft(a) − rfft(b)| over the hidden dimension of read-out vectors [B, d] (ortho norm; official `fredom`)."""
    a, b = at_least_float32(a), at_least_float32(b)
    return (rfft_ortho(a, dim=1) - rfft_ortho(b, dim=1)).abs().mean()
