"""DIF-SR (official `AIM-SE/DIF-SR: SASRecD`) with the item text as its one side-information stream.

Forward pass (digest §8.c):
1. `X0 = Dropout(LN(ItemEmb[seq]))` — no position embedding on the input. The raw position table
   `P = PosEmb[0..L-1]` and the raw text stream `A = Adapter(Text[seq])` (size `attribute_hidden_size`,
   no LN, no dropout) go to every layer.
2. Each layer: decoupled attention, then RecBole's FFN. Scores per head h (item head size e = d/H,
   attribute head size e_a = d_a/H): `S_item = Q K ᵀ` (from X), `S_pos = Qp Kpᵀ` (from P), `S_attr = Qa Kaᵀ`
   (from A), fused by `fusion_type`:
   - "gate" (default, the official dataset configs): a VanillaAttention(L, L) over the F + 2 = 3 score maps
     (energy of each row = Linear(L->L) -> ReLU -> Linear(L->1), softmax over the maps, weighted sum);
   - "sum": `S_attr + S_item + S_pos`;
   - "concat": Linear(3L -> L) over the maps concatenated along the key axis in the order [attr, item, pos].
   Then `S / sqrt(e)` (item head size, after the fusion) + causal/padding mask, softmax, attention dropout,
   `· V` (values from the item stream only), dense, `LN(Dropout(·) + X)`.
   As in the official code the gate/concat fusions see unmasked scores (the fusion of row i reads every
   key's score, padding and later slots included); with right-padded prefixes the read-out row len−1 only
   has padding after it, so no target information leaks.
3. `s = X_last[b, len−1]`, logits `s · ItemEmbᵀ`.

Choices (digest §8.h/§8.k):
- `attribute_hidden_size` d_a = 300 (must be divisible by `n_heads`): the text stream gets the same adapter
  width as the other text baselines (the official 64, sized for category tags, comes with the preset).
- attribute predictor (official sasrecd.py:183-199), `lambda_attr` = 10 (SASRecD.yaml:16, the Beauty/Yelp
  configs): `L = CE + λ · mean_{b, a} BCEWithLogits(Linear_{d->A}(s)[b, a], y[b, a])`, y the multi-hot attributes
  of the target item (ml-1m: its genres; Amazon: its categories; `DatasetInfo.item_attributes`), the mean over
  the real attributes (the official drops the padding column 0). The predictor exists only where the dataset
  has attributes. Online Retail has none (only a free-text description), so there λ has no effect: no labels
  are invented (pseudo-labels such as clusters of the text vectors would be a model of our own). A run's
  config.json records the dataset's number of attributes (`item_attributes`) when it has any.
- dropouts 0.5/0.5 and 2 layers / 2 heads / d 300 / inner 256: TedRec's setting for attention models.
- preset `official`: the official Amazon_Beauty config (4 layers, 8 heads, d 256, attribute d 64, dropouts
  0.5/0.3, gate fusion, λ 10, lr 1e-4). Its 8 heads do not divide d 300, so `n_heads` and
  `attribute_hidden_size` are searched only through the `preset` dimension.

The batch-independent position scores are computed once per layer ([H, L, L]) and broadcast; the top
layer evaluates only the read-out rows.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from baselines.fusion_layers import VanillaAttention, item_features
from baselines.text_adapter import TextAdapter
from benchmark.errors import TedbenchError
from benchmark.layers.blocks import FeedForward, causal_padding_mask, recbole_init_
from benchmark.layers.kernels import Dropout, dropout
from benchmark.layers.sasrec import DROPOUTS, SASREC_DEFAULTS
from benchmark.model import Batch, DatasetInfo, SequentialModel
from benchmark.registry import OFFICIAL_LR_GRID, SearchParam, register_model

FUSION_TYPES = ("gate", "sum", "concat")

DIFSR_DEFAULTS = {
    **SASREC_DEFAULTS,
    "attribute_hidden_size": 300,
    "fusion_type": "gate",
    "lambda_attr": 10.0,  # AIM-SE/DIF-SR@b600052 recbole/properties/model/SASRecD.yaml:16
}
DIFSR_CONFIG = "AIM-SE/DIF-SR@b600052 configs/Amazon_Beauty.yaml:"
DIFSR_OFFICIAL = {
    "n_layers": (4, DIFSR_CONFIG + "30"),
    "n_heads": (8, DIFSR_CONFIG + "31"),
    "hidden_size": (256, DIFSR_CONFIG + "32"),
    "attribute_hidden_size": (64, DIFSR_CONFIG + "33"),
    "inner_size": (256, DIFSR_CONFIG + "34"),
    "hidden_dropout_prob": (0.5, DIFSR_CONFIG + "35"),
    "attn_dropout_prob": (0.3, DIFSR_CONFIG + "36"),
    "fusion_type": ("gate", DIFSR_CONFIG + "43"),
    "lambda_attr": (10.0, DIFSR_CONFIG + "44"),
    "learning_rate": (1e-4, DIFSR_CONFIG + "51"),
}


def _gather_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x[b, rows[b]] as [B, 1, ..]; x is [B, L, ..]."""
    return x.gather(1, rows.view(-1, 1, *([1] * (x.dim() - 2))).expand(-1, 1, *x.shape[2:]))


class DIFAttention(nn.Module):
    """DIF-SR's decoupled multi-head self-attention sublayer for one side-information stream."""

    def __init__(
        self,
        hidden_size: int,
        attribute_size: int,
        n_heads: int,
        max_len: int,
        fusion_type: str,
        hidden_dropout_prob: float,
        attn_dropout_prob: float,
        layer_norm_eps: float,
    ):
        super().__init__()
        if hidden_size % n_heads or attribute_size % n_heads:
            raise TedbenchError(
                f"hidden_size {hidden_size} and attribute_hidden_size {attribute_size} must be multiples of "
                f"n_heads {n_heads}"
            )
        if fusion_type not in FUSION_TYPES:
            raise TedbenchError(f"DIF-SR fusion_type must be one of {', '.join(FUSION_TYPES)}, not {fusion_type!r}")
        self.n_heads = n_heads
        self.fusion_type = fusion_type
        self.attn_dropout_prob = attn_dropout_prob
        self.scale = 1.0 / math.sqrt(hidden_size // n_heads)
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.query_p = nn.Linear(hidden_size, hidden_size)
        self.key_p = nn.Linear(hidden_size, hidden_size)
        self.query_a = nn.Linear(attribute_size, attribute_size)
        self.key_a = nn.Linear(attribute_size, attribute_size)
        if fusion_type == "gate":
            self.fusion = VanillaAttention(max_len, max_len)
        elif fusion_type == "concat":
            self.fusion = nn.Linear(3 * max_len, max_len)
        self.dense = nn.Linear(hidden_size, hidden_size)
        self.out_dropout = Dropout(hidden_dropout_prob)
        self.layer_norm = nn.LayerNorm(hidden_size, eps=layer_norm_eps)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[.., n, H·e] -> [.., H, n, e]."""
        return x.unflatten(-1, (self.n_heads, -1)).transpose(-3, -2)

    def forward(
        self,
        x: torch.Tensor,
        attr: torch.Tensor,
        pos: torch.Tensor,
        mask: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x [B, L, d], attr [B, L, d_a], pos [L, d], mask [B, 1, L, L] -> [B, L, d]; with `rows` [B] only
        the query rows x[b, rows[b]] are computed and the result is [B, 1, d] (keys use every position)."""
        if rows is None:
            x_q, attr_q, pos_q = x, attr, pos
        else:
            x_q, attr_q, pos_q = _gather_rows(x, rows), _gather_rows(attr, rows), pos[rows].unsqueeze(1)
            mask = mask.expand(x.size(0), -1, -1, -1).gather(
                2, rows.view(-1, 1, 1, 1).expand(-1, mask.size(1), 1, mask.size(-1))
            )
        kv = F.linear(x, torch.cat([self.key.weight, self.value.weight]), torch.cat([self.key.bias, self.value.bias]))
        k, v = (self._heads(t) for t in kv.chunk(2, dim=-1))  # [B, H, L, e] each
        q = self._heads(self.query(x_q))
        q_a, k_a = self._heads(self.query_a(attr_q)), self._heads(self.key_a(attr))
        q_p, k_p = self._heads(self.query_p(pos_q)), self._heads(self.key_p(pos))  # [(B,) H, Lq, e], [H, L, e]
        p = self.attn_dropout_prob if self.training else 0.0
        if self.fusion_type == "sum":  # one attention over the concatenated head features: Σ of the three maps
            batch = x.size(0)
            q_all = torch.cat([q, q_a, q_p.expand(batch, *q_p.shape[-3:])], dim=-1)
            k_all = torch.cat([k, k_a, k_p.expand(batch, -1, -1, -1)], dim=-1)
            context = F.scaled_dot_product_attention(
                q_all, k_all, v, attn_mask=mask.to(q.dtype), dropout_p=p, scale=self.scale
            )
        else:
            maps = [
                q_a @ k_a.transpose(-1, -2),
                q @ k.transpose(-1, -2),
                q_p @ k_p.transpose(-1, -2),
            ]  # attr, item, pos
            if self.fusion_type == "gate":
                scores = self.fusion(maps)
            else:
                blocks = self.fusion.weight.chunk(3, dim=1)
                scores = sum(F.linear(m, w) for m, w in zip(maps, blocks)) + self.fusion.bias
            probs = torch.softmax(scores * self.scale + mask, dim=-1)
            context = dropout(probs, p, self.training) @ v
        context = context.transpose(-3, -2).flatten(-2)  # [B, Lq, d]
        return self.layer_norm(self.out_dropout(self.dense(context)) + x_q)


class DIFLayer(nn.Module):
    """Decoupled attention sublayer then RecBole's FFN sublayer."""

    def __init__(self, config: dict, max_len: int):
        super().__init__()
        hidden = config["hidden_size"]
        self.attention = DIFAttention(
            hidden,
            config["attribute_hidden_size"],
            config["n_heads"],
            max_len,
            config["fusion_type"],
            config["hidden_dropout_prob"],
            config["attn_dropout_prob"],
            config["layer_norm_eps"],
        )
        self.feed_forward = FeedForward(
            hidden, config["inner_size"], config["hidden_dropout_prob"], config["hidden_act"], config["layer_norm_eps"]
        )

    def forward(
        self,
        x: torch.Tensor,
        attr: torch.Tensor,
        pos: torch.Tensor,
        mask: torch.Tensor,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.feed_forward(self.attention(x, attr, pos, mask, rows))


@register_model(
    "DIF-SR",
    defaults=DIFSR_DEFAULTS,
    presets={"official": DIFSR_OFFICIAL},
    search_space={
        "learning_rate": SearchParam("categorical", choices=OFFICIAL_LR_GRID),
        "hidden_dropout_prob": DROPOUTS,
        "attn_dropout_prob": SearchParam("categorical", choices=(0.1, 0.2, 0.3, 0.5)),
        "n_layers": SearchParam("categorical", choices=(1, 2, 3, 4)),
        "fusion_type": SearchParam("categorical", choices=FUSION_TYPES),
        "lambda_attr": SearchParam("categorical", choices=(0.0, 5.0, 10.0)),  # 5: the Sports/Toys configs
    },
    needs_text=True,
)
class DIFSR(SequentialModel):
    """DIF-SR: item self-attention whose scores fuse decoupled item, position and text-attribute maps."""

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        if config["lambda_attr"] < 0:
            raise TedbenchError(f"DIF-SR lambda_attr must be >= 0, not {config['lambda_attr']}")
        hidden = config["hidden_size"]
        self.item_embedding = nn.Embedding(info.n_items, hidden, padding_idx=0)
        self.position_embedding = nn.Embedding(info.max_len, hidden)
        self.text = TextAdapter(info.item_text, config["attribute_hidden_size"])
        self.layer_norm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        self.dropout = Dropout(config["hidden_dropout_prob"])
        self.layers = nn.ModuleList(DIFLayer(config, info.max_len) for _ in range(config["n_layers"]))
        self.attribute_predictor = None
        if config["lambda_attr"] > 0 and info.item_attributes is not None and info.item_attributes.numel():
            self.register_buffer("item_attributes", info.item_attributes.long(), persistent=False)
            self.attribute_predictor = nn.Linear(hidden, int(info.item_attributes.max()))
        recbole_init_(self, config["initializer_range"])

    def sequence_input(self, seq: torch.Tensor) -> torch.Tensor:
        """The item stream's input [B, L, d] (the hook TedRec's plug-in fuses with the text)."""
        return self.item_embedding(seq)

    def _encode(self, seq: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
        x = self.dropout(self.layer_norm(self.sequence_input(seq)))
        attr = item_features(seq, self.info.n_items, self.text.all_items, self.text)
        pos = self.position_embedding.weight[: seq.size(1)]
        mask = causal_padding_mask(seq)
        *lower, top = self.layers
        for layer in lower:
            x = layer(x, attr, pos, mask)
        return top(x, attr, pos, mask, rows)

    def hidden_states(self, seq: torch.Tensor) -> torch.Tensor:
        """Last-layer output at every position [B, L, d] (encode reads row len−1 of it)."""
        return self._encode(seq, None)

    def encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self._encode(seq, (length - 1).clamp(min=0)).squeeze(1)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight

    def attribute_labels(self, items: torch.Tensor) -> torch.Tensor:
        """Multi-hot attributes of `items` [B] -> [B, n_attributes] (attribute id a in column a − 1)."""
        ids = self.item_attributes[items]  # [B, k], 0 = none
        labels = torch.zeros(len(items), self.attribute_predictor.out_features + 1, device=ids.device)
        return labels.scatter_(1, ids, 1.0)[:, 1:]

    def loss(self, batch: Batch) -> torch.Tensor:
        """CE over all ids, plus λ · the attribute predictor's BCE on the target's attributes where it exists."""
        query = self.encode(batch.seq, batch.length)
        loss = F.cross_entropy(self.score_items(query, training=True).float(), batch.target)
        if self.attribute_predictor is None:
            return loss
        logits = self.attribute_predictor(query).float()
        attribute_loss = F.binary_cross_entropy_with_logits(logits, self.attribute_labels(batch.target))
        return loss + self.config["lambda_attr"] * attribute_loss
