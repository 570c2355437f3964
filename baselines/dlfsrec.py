"""DLFS-Rec (RecSys 2023) in the TedRec setting: Gaussian (mean, covariance) items, dual learnable filters, −W2 CE.

Follows the official `zxiang30/DLFS-Rec` (`models.py`, `modules.py`, `trainers.py`; digest §10):

- every id has a mean and a covariance embedding (two N×d tables) and a side vector; two side Linears map the
  side vector to d (`Linear_m`, `Linear_c`) and are fused with the ID tables (`fusion_type`: add (default) /
  concat (a Linear(2d -> d) per stream) / gate (a vanilla attention over the two vectors per stream));
- sequence: fused (mean, cov) of each slot, zeroed at padded slots, `mean = Dropout(LN_m(mean))`,
  `cov = ELU(Dropout(LN_c(cov))) + 1`; then `n_layers` dual filter layers, each
  `x <- LN(Dropout(irfft(rfft(x)·W_x)) + x)` for x = mean and x = cov (one LN shared by both streams within a
  layer, `benchmark.layers.blocks.LearnableFilter`), then `cov <- ELU(cov) + 1`; no position embedding and no
  feed-forward sublayer. The layers are deep copies of one layer, so they start with identical filters (official).
  The last layer evaluates only the read-out row (`LearnableFilter.at`): the same values, and in training the
  same distribution of dropout masks, drawn for the rows that are read;
- read-out at the last real position. The filters are circular convolutions along the sequence, which commute
  with the circular shift that turns the official left padding into the engine's right padding, and every other
  op is per position: reading position n−1 of the right-padded rows is exactly the official function (in training
  up to which iid dropout mask falls on which slot);
- candidate i: `mean_i = fuse(MeanEmb_i, Linear_m(side_i))`, `cov_i = ELU(fuse(CovEmb_i, Linear_c(side_i))) + 1`
  (no LN, no dropout; `side_info_fused` False uses the bare ID tables, as the official switch);
- score = −W2²(u, i) = −(||μu − μi||² + ||√σu − √σi||²) for diagonal Gaussians (σ = the covariance vector,
  clamped at 1e-24 before the square root), computed for all candidates by the inner-product expansion
  ||μu||² + ||μi||² − 2μu·μi + Σσu + Σσi − 2√σu·√σi as one [B, 2d]×[2d, N] matrix product (in float32 even under
  autocast: the expansion cancels large terms), never as a [B, N, d] tensor.

Choices for the digest's ambiguities (§10.k, §12.2 #6/#7), all config keys:
- side input: the frozen item text vector (the only side information in TedRec's data; there are no
  timestamps, so the official 6-d interaction context does not exist). The official side path already is a
  Linear from the raw side vector (price + multi-hot attributes) to d, so the text vector takes the side
  vector's place directly: `Linear_m(text)`, `Linear_c(text)`, text_dim -> d, with no extra adapter (the shared
  `TextAdapter`'s Linear+ReLU would add a second projection and a ReLU the model never had). Without context
  the candidates are query-independent, so their (mean, √cov) are computed once per scoring call; the side
  Linears act per item, so the sequence side gathers the same fused [N, d] tables instead of projecting every
  slot's text (same function, B·L/N times less work).
- loss: list-wise CE over all ids with logits −W2 / `temperature` (default 1.0 = no temperature, as the
  original has none). `pvn_weight` (default 0.005, the official main.py:47) adds the official
  `pvn_weight · mean(relu(W2(u, pos) − W2(pos, neg)))` with one negative per row drawn uniformly from the ids
  absent from the row's sequence and target (`batch_extras`). At init the −W2 logits are widely spread (OR with
  MiniLM text: logit std ≈ 9.5 per row, CE ≈ 47 against ln N = 8.1); the CE falls below ln N within ~60 Adam
  steps of 512 rows at lr 1e-3. `temperature` > 1 softens the start if a dataset needs it.
- size: d = 300 (TedRec's setting; the official default is 128), `n_layers` 2, dropout 0.5; the digest's grid
  (d {128, 300}, layers {2, 3, 4}, dropout {0.3, 0.5}) and lr {1e-4, 5e-4, 1e-3, 5e-3} are the search space.
- preset `official`: the official `main.py` defaults (d 128 = attribute d 128, 4 layers, dropout 0.5, lr 1e-4,
  pvn 0.005, fusion add, side information fused into the candidates).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from baselines.negatives import sample_absent_items
from benchmark.errors import TedbenchError
from benchmark.layers.blocks import LearnableFilter, recbole_init_
from benchmark.layers.kernels import Dropout, at_least_float32
from benchmark.model import Batch, DatasetInfo, SequentialModel, TrainingRows, rows_at
from benchmark.registry import OFFICIAL_LR_GRID, SearchParam, register_model

FUSION_TYPES = ("add", "concat", "gate")
MIN_VARIANCE = 1e-24  # the official clamp before square roots

DLFSREC_DEFAULTS = {
    "hidden_size": 300,
    "n_layers": 2,
    "hidden_dropout_prob": 0.5,
    "layer_norm_eps": 1e-12,
    "initializer_range": 0.02,
    "fusion_type": "add",
    "side_info_fused": True,
    "temperature": 1.0,
    "pvn_weight": 0.005,  # zxiang30/DLFS-Rec@9259e57 main.py:47
    "learning_rate": 1e-3,
}
DLFS = "zxiang30/DLFS-Rec@9259e57 main.py:"
DLFSREC_OFFICIAL = {
    "hidden_size": (128, DLFS + "22,25 (hidden_size = attribute_hidden_size, as fusion add needs)"),
    "n_layers": (4, DLFS + "23"),
    "hidden_dropout_prob": (0.5, DLFS + "24"),
    "initializer_range": (0.02, DLFS + "26"),
    "learning_rate": (1e-4, DLFS + "32"),
    "pvn_weight": (0.005, DLFS + "47"),
    "fusion_type": ("add", DLFS + "48"),
    "side_info_fused": (True, DLFS + "49 (store_false: True unless the flag is given)"),
}


def wasserstein_pairs(
    mean_a: torch.Tensor, var_a: torch.Tensor, mean_b: torch.Tensor, var_b: torch.Tensor
) -> torch.Tensor:
    """Squared 2-Wasserstein distance between row-aligned diagonal Gaussians [..., d] -> [...] (official form)."""
    sqrt_a, sqrt_b = var_a.clamp(min=MIN_VARIANCE).sqrt(), var_b.clamp(min=MIN_VARIANCE).sqrt()
    return (mean_a - mean_b).pow(2).sum(-1) + (sqrt_a - sqrt_b).pow(2).sum(-1)


def wasserstein_matrix(
    mean_u: torch.Tensor, var_u: torch.Tensor, mean_i: torch.Tensor, var_i: torch.Tensor
) -> torch.Tensor:
    """Squared 2-Wasserstein distance of every query [B, d] to every candidate [N, d] -> [B, N].

    ||μu||² + ||μi||² − 2μu·μi + Σσu + Σσi − 2√σu·√σi, with σ clamped at 1e-24 (so Σσ = ||√σ||² exactly):
    one matrix product of the concatenations [μ, √σ], plus row and column norms.
    """
    var_u, var_i = var_u.clamp(min=MIN_VARIANCE), var_i.clamp(min=MIN_VARIANCE)
    query = torch.cat([mean_u, var_u.sqrt()], dim=-1)
    items = torch.cat([mean_i, var_i.sqrt()], dim=-1)
    row = mean_u.pow(2).sum(-1) + var_u.sum(-1)
    column = mean_i.pow(2).sum(-1) + var_i.sum(-1)
    return torch.addmm(column.unsqueeze(0), query, items.t(), alpha=-2.0) + row.unsqueeze(1)


class VanillaAttention(nn.Module):
    """Attention pooling over a stack of vectors [..., K, d] -> [..., d] (the official `gate` fusion)."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.projection = nn.Sequential(nn.Linear(hidden_size, hidden_size), nn.ReLU(), nn.Linear(hidden_size, 1))

    def forward(self, stack: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(self.projection(stack).squeeze(-1), dim=-1)
        return (stack * weights.unsqueeze(-1)).sum(-2)


class DualFilterLayer(nn.Module):
    """One DLFS-Rec layer: x <- LN(Dropout(filter_x(x)) + x) for mean and cov (one shared LN), then
    cov <- ELU(cov) + 1."""

    def __init__(self, max_len: int, hidden_size: int, dropout_prob: float, layer_norm_eps: float):
        super().__init__()
        self.mean_filter = LearnableFilter(max_len, hidden_size)
        self.cov_filter = LearnableFilter(max_len, hidden_size)
        self.dropout = Dropout(dropout_prob)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def forward(
        self, mean: torch.Tensor, cov: torch.Tensor, read_index: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """[B, L, d] each -> [B, L, d] each, or with `read_index` [B] only the rows at read_index[b], [B, d] each."""
        if read_index is None:
            mean_filtered, cov_filtered = self.mean_filter(mean), self.cov_filter(cov)
        else:
            mean_filtered, cov_filtered = self.mean_filter.at(mean, read_index), self.cov_filter.at(cov, read_index)
            mean, cov = rows_at(mean, read_index), rows_at(cov, read_index)
        mean = self.layer_norm(self.dropout(mean_filtered) + mean)
        cov = self.layer_norm(self.dropout(cov_filtered) + cov)
        return mean, F.elu(cov) + 1


@register_model(
    "DLFS-Rec",
    defaults=DLFSREC_DEFAULTS,
    presets={"official": DLFSREC_OFFICIAL},
    search_space={
        "learning_rate": SearchParam("categorical", choices=OFFICIAL_LR_GRID),
        "hidden_size": SearchParam("categorical", choices=(128, 300)),
        "n_layers": SearchParam("categorical", choices=(2, 3, 4)),
        "hidden_dropout_prob": SearchParam("categorical", choices=(0.3, 0.5)),
    },
    needs_text=True,
)
class DLFSRec(SequentialModel):
    """DLFS-Rec: (mean, covariance) item distributions with text side information, dual filters, −W2 scores."""

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        if info.item_text is None:
            raise TedbenchError("DLFS-Rec needs item text embeddings (DatasetInfo.item_text is None)")
        if config["fusion_type"] not in FUSION_TYPES:
            raise TedbenchError(
                f"DLFS-Rec fusion_type must be one of {', '.join(FUSION_TYPES)}, not {config['fusion_type']!r}"
            )
        if config["temperature"] <= 0 or config["pvn_weight"] < 0:
            raise TedbenchError("DLFS-Rec needs temperature > 0 and pvn_weight >= 0")
        hidden, fusion = config["hidden_size"], config["fusion_type"]
        self.temperature = config["temperature"]
        self.pvn_weight = config["pvn_weight"]
        self.register_buffer("item_text", info.item_text.detach().float().clone(), persistent=False)
        self.mean_embedding = nn.Embedding(info.n_items, hidden, padding_idx=0)
        self.cov_embedding = nn.Embedding(info.n_items, hidden, padding_idx=0)
        self.side_mean = nn.Linear(info.item_text.size(1), hidden)
        self.side_cov = nn.Linear(info.item_text.size(1), hidden)
        if fusion == "concat":
            self.mean_fusion, self.cov_fusion = nn.Linear(2 * hidden, hidden), nn.Linear(2 * hidden, hidden)
        elif fusion == "gate":
            self.mean_fusion, self.cov_fusion = VanillaAttention(hidden), VanillaAttention(hidden)
        self.mean_norm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.cov_norm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = Dropout(config["hidden_dropout_prob"])
        layer = DualFilterLayer(info.max_len, hidden, config["hidden_dropout_prob"], config["layer_norm_eps"])
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(config["n_layers"]))
        recbole_init_(self, config["initializer_range"])  # the filters are plain parameters: untouched

    # -- item distributions ------------------------------------------------------------------
    def _fuse(self, id_part: torch.Tensor, side_part: torch.Tensor, stream: str) -> torch.Tensor:
        fusion = self.config["fusion_type"]
        if fusion == "add":
            return id_part + side_part
        layer = self.mean_fusion if stream == "mean" else self.cov_fusion
        if fusion == "concat":
            return layer(torch.cat([id_part, side_part], dim=-1))
        return layer(torch.stack([id_part, side_part], dim=-2))

    def fused_items(self) -> tuple[torch.Tensor, torch.Tensor]:
        """ID tables fused with the side Linears of every item's text: (mean, cov before ELU+1), [N, d] each."""
        mean = self._fuse(self.mean_embedding.weight, self.side_mean(self.item_text), "mean")
        cov = self._fuse(self.cov_embedding.weight, self.side_cov(self.item_text), "cov")
        return mean, cov

    def candidates(self, fused: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """Candidate distributions [N, 2d] = [mean, cov] (cov = ELU(.) + 1 > 0)."""
        if self.config["side_info_fused"]:
            mean, cov = self.fused_items() if fused is None else fused
        else:
            mean, cov = self.mean_embedding.weight, self.cov_embedding.weight
        return torch.cat([mean, F.elu(cov) + 1], dim=-1)

    # -- sequence ----------------------------------------------------------------------------
    def sequence_input(self, seq: torch.Tensor, mean_table: torch.Tensor) -> torch.Tensor:
        """The mean stream's input [B, L, d] (the hook TedRec's plug-in fuses with the text)."""
        return F.embedding(seq, mean_table)

    def hidden_states(
        self,
        seq: torch.Tensor,
        fused: tuple[torch.Tensor, torch.Tensor] | None = None,
        read_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Last layer's (mean, cov) at every position, [B, L, d] each; with `read_index` [B] the last layer
        evaluates only the rows at read_index[b], [B, d] each (the same values, without the other rows' work)."""
        mean_table, cov_table = self.fused_items() if fused is None else fused
        keep = (seq > 0).unsqueeze(-1)
        mean = self.sequence_input(seq, mean_table) * keep
        cov = F.embedding(seq, cov_table) * keep
        mean = self.dropout(self.mean_norm(mean))
        cov = F.elu(self.dropout(self.cov_norm(cov))) + 1
        *lower, top = self.layers
        for layer in lower:
            mean, cov = layer(mean, cov)
        return top(mean, cov, read_index)

    def encode(
        self, seq: torch.Tensor, length: torch.Tensor, fused: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> torch.Tensor:
        """Sequence distribution [B, 2d] = [mean, cov] at the last real position."""
        return torch.cat(self.hidden_states(seq, fused, (length - 1).clamp(min=0)), dim=-1)  # as gather_last

    def item_embeddings(self) -> torch.Tensor:
        return self.candidates()

    # -- scores and loss ---------------------------------------------------------------------
    def distances(self, query: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """W2² of every query distribution [B, 2d] to every item distribution [N, 2d] -> [B, N], in >= float32."""
        with torch.autocast(query.device.type, enabled=False):
            query, items = at_least_float32(query), at_least_float32(items)
            mean_u, var_u = query.chunk(2, dim=-1)
            mean_i, var_i = items.chunk(2, dim=-1)
            return wasserstein_matrix(mean_u, var_u, mean_i, var_i)

    def score_items(self, query: torch.Tensor, training: bool, items: torch.Tensor | None = None) -> torch.Tensor:
        scores = -self.distances(query, self.item_embeddings() if items is None else items)
        return scores / self.temperature if training and self.temperature != 1.0 else scores

    @torch.no_grad()
    def full_sort_scores(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        fused = self.fused_items()  # the candidates' (mean, cov) once per call, shared with the sequence side
        return self.score_items(self.encode(seq, length, fused), training=False, items=self.candidates(fused))

    def batch_extras(self, train: TrainingRows, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """With `pvn_weight` > 0: one negative per row, uniform over the ids absent from its sequence and target."""
        if self.pvn_weight == 0:
            return {}
        seq, _ = train.inputs(index)
        present = torch.cat([seq, train.target[index].unsqueeze(1)], dim=1)
        return {"negative": sample_absent_items(present, 1, self.info.n_items).squeeze(1)}

    def loss(self, batch: Batch) -> torch.Tensor:
        fused = self.fused_items()  # shared by the sequence and the candidate side
        query = self.encode(batch.seq, batch.length, fused)
        items = self.candidates(fused)
        logits = self.score_items(query, training=True, items=items)
        loss = F.cross_entropy(logits, batch.target)
        if self.pvn_weight == 0:
            return loss
        if "negative" not in batch.extra:
            raise TedbenchError("DLFS-Rec with pvn_weight > 0 needs the sampled negatives of its batch_extras hook")
        positive, negative = at_least_float32(items[batch.target]), at_least_float32(items[batch.extra["negative"]])
        user_to_positive = -logits.gather(1, batch.target.unsqueeze(1)).squeeze(1) * self.temperature
        positive_to_negative = wasserstein_pairs(*positive.chunk(2, dim=-1), *negative.chunk(2, dim=-1))
        return loss + self.pvn_weight * F.relu(user_to_positive - positive_to_negative).mean()
