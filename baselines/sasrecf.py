"""SASRecF (RecBole's feature-aware SASRec) with the item text as its one feature field.

Forward pass (digest §5.c): `Z = concat_layer([ItemEmb[seq] ; Adapter(Text[seq])])` (one Linear 2d -> d,
no activation, as RecBole's `concat_layer`), then SASRec's embedding stage `Dropout(LN(Z + PosEmb))`, the
RecBole Transformer (causal + padding mask), read-out at len−1 and dot-product logits against the ID
embeddings only. The text reaches the model through the shared `TextAdapter` (Linear text_dim -> d +
ReLU over the frozen matrix, digest §0.6).

Ambiguity (digest §5.k): the authors describe "an MLP adapter ... and finally fuse them through another
MLP"; RecBole's fusion is a single Linear. Config key `fusion_layers` (default 1 = RecBole's single
Linear); k > 1 adds (k − 1) ReLU + Linear(d -> d) layers after it.

Preset `official`: RecBole 1.2.0's SASRecF sizes (its one-Linear fusion is `fusion_layers` 1); RecBole's
attribute tables have no text counterpart, so the text path is the same in every preset.

Both the adapter and the fusion are per-item functions without dropout, so they are evaluated once per
item id and gathered (`fusion_layers.item_features`): the same values as per position, much cheaper.
"""

from __future__ import annotations

import torch

from baselines.fusion_layers import ConcatFusion, item_features
from baselines.presets import recbole_backbone
from baselines.text_adapter import TextAdapter
from benchmark.layers.blocks import causal_padding_mask, recbole_init_
from benchmark.layers.sasrec import DROPOUTS, SASREC_DEFAULTS, SASRecBackbone
from benchmark.model import DatasetInfo
from benchmark.registry import SearchParam, register_model

SASRECF_DEFAULTS = {**SASREC_DEFAULTS, "fusion_layers": 1}
SASRECF_OFFICIAL = {
    **recbole_backbone("SASRecF"),
    "fusion_layers": (1, "RUCAIBox/RecBole@v1.2.0 recbole/model/sequential_recommender/sasrecf.py:77 (one Linear)"),
}


@register_model(
    "SASRecF",
    defaults=SASRECF_DEFAULTS,
    presets={"official": SASRECF_OFFICIAL},
    search_space={
        "hidden_dropout_prob": DROPOUTS,
        "attn_dropout_prob": DROPOUTS,
        "n_layers": SearchParam("categorical", choices=(1, 2, 3)),
        "n_heads": SearchParam("categorical", choices=(1, 2)),
        "fusion_layers": SearchParam("categorical", choices=(1, 2)),
    },
    needs_text=True,
)
class SASRecF(SASRecBackbone):
    """SASRecF: SASRec over Linear([ID ; adapted text]) inputs, ID-only candidates."""

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        hidden = config["hidden_size"]
        self.text = TextAdapter(info.item_text, hidden)
        self.concat_layer = ConcatFusion(2, hidden, hidden, config["fusion_layers"])
        recbole_init_(self.concat_layer, config["initializer_range"])  # RecBole's init covers every module

    def sequence_input(self, seq: torch.Tensor) -> torch.Tensor:
        return item_features(
            seq,
            self.info.n_items,
            lambda: self.concat_layer(self.item_embedding.weight, self.text.all_items()),
            lambda ids: self.concat_layer(self.item_embedding(ids), self.text(ids)),
        )

    def hidden_states(self, seq: torch.Tensor) -> torch.Tensor:
        """Last-layer output at every position [B, L, d] (encode reads row len−1 of it)."""
        return self.encoder(self.embedding(self.sequence_input(seq)), causal_padding_mask(seq))
