"""SASRec as in RecBole 1.2 (post-LN Transformer, full-softmax CE), TedRec's 300-d setting.

Presets (`--set preset=NAME`): `official` = RecBole 1.2.0's SASRec, the code the TedRec authors ran
every RecBole baseline with (the original TensorFlow SASRec is not what Table 3 ran).
"""

from __future__ import annotations

import torch
from torch import nn

from baselines.layers import SequenceEmbedding, TransformerEncoder, causal_padding_mask, recbole_init_
from benchmark.model import DatasetInfo, SequentialModel
from benchmark.registry import SearchParam, register_model

DROPOUTS = SearchParam("categorical", choices=(0.1, 0.2, 0.5))

SASREC_DEFAULTS = {
    "hidden_size": 300,
    "inner_size": 256,
    "n_layers": 2,
    "n_heads": 2,
    "hidden_dropout_prob": 0.5,
    "attn_dropout_prob": 0.5,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "initializer_range": 0.02,
    "learning_rate": 1e-3,
}


# Sources of the presets of the RecBole-family models (each value cites file:line below).
RECBOLE = "RUCAIBox/RecBole@v1.2.0 recbole/properties/"  # the RecBole release the TedRec authors ran
UNISREC = "RUCAIBox/UniSRec@05aa5cb props/"  # the same lab's text versions of FDSA/S3-Rec, and UniSRec
RECBOLE_LR = (1e-3, RECBOLE + "overall.yaml:23")


def yaml_backbone(yaml: str, hidden_size: int) -> dict:
    """The Transformer options of a RecBole-style model yaml, each with its line (RecBole's SASRec, SASRecF,
    FDSA, S3Rec, FEARec yamls and UniSRec's props share the layout of lines 1-6), and RecBole's learning rate
    (none of these yamls sets one)."""
    return {
        "n_layers": (2, f"{yaml}:1"),
        "n_heads": (2, f"{yaml}:2"),
        "hidden_size": (hidden_size, f"{yaml}:3"),
        "inner_size": (256, f"{yaml}:4"),
        "hidden_dropout_prob": (0.5, f"{yaml}:5"),
        "attn_dropout_prob": (0.5, f"{yaml}:6"),
        "learning_rate": RECBOLE_LR,
    }


def recbole_backbone(model: str) -> dict:
    """RecBole 1.2.0's `model/<model>.yaml` Transformer options (hidden size 64)."""
    return yaml_backbone(f"{RECBOLE}model/{model}.yaml", 64)


@register_model(
    "SASRec",
    defaults=SASREC_DEFAULTS,
    presets={"official": recbole_backbone("SASRec")},
    search_space={
        "hidden_dropout_prob": DROPOUTS,
        "attn_dropout_prob": DROPOUTS,
        "n_layers": SearchParam("categorical", choices=(1, 2, 3)),
        "n_heads": SearchParam("categorical", choices=(1, 2)),
    },
)
class SASRec(SequentialModel):
    """SASRec: causal self-attention over ID + position embeddings, dot-product scoring."""

    prefix_only = True  # causal attention, per-position inputs: the read-out sees only seq[:, :length]

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        hidden = config["hidden_size"]
        self.item_embedding = nn.Embedding(info.n_items, hidden, padding_idx=0)
        self.embedding = SequenceEmbedding(info.max_len, hidden, config["hidden_dropout_prob"], config["layer_norm_eps"])
        self.encoder = TransformerEncoder.from_config(config)
        recbole_init_(self, config["initializer_range"])

    def sequence_input(self, seq: torch.Tensor) -> torch.Tensor:
        """Per-position input before position embedding/LayerNorm/dropout [B, L, d]; hook for variants."""
        return self.item_embedding(seq)

    def encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        read_index = (length - 1).clamp(min=0)  # as gather_last
        return self.encoder(self.embedding(self.sequence_input(seq)), causal_padding_mask(seq), read_index)

    def item_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight
