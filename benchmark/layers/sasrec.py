"""The SASRec backbone as in RecBole 1.2 (post-LN Transformer, full-softmax CE) at TedRec's 300-d setting, with
the defaults and dropout grid of the models built on it. Registered as SASRec by `baselines.sasrec`; TedRec,
UniSRec, SASRecF, FDSA and S3-Rec extend it.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.layers.blocks import SequenceEmbedding, TransformerEncoder, causal_padding_mask, recbole_init_
from benchmark.model import DatasetInfo, SequentialModel, encode_by_length
from benchmark.registry import SearchParam

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


class SASRecBackbone(SequentialModel):
    """Causal self-attention over ID + position embeddings, dot-product scoring; variants change the per-position
    input through `sequence_input` (and the scoring through `score_items`)."""

    prefix_only = True  # causal attention, per-position inputs: the read-out sees only seq[:, :length]
    # True for a `sequence_input` that mixes positions (TedRec's fusion): the encoder after it is still causal, so
    # the input is computed for the whole padded batch and the encoder runs by length groups on it (`encode_rows`)
    input_mixes_positions = False

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        hidden = config["hidden_size"]
        self.item_embedding = nn.Embedding(info.n_items, hidden, padding_idx=0)
        self.embedding = SequenceEmbedding(
            info.max_len, hidden, config["hidden_dropout_prob"], config["layer_norm_eps"]
        )
        self.encoder = TransformerEncoder.from_config(config)
        recbole_init_(self, config["initializer_range"])

    def sequence_input(self, seq: torch.Tensor) -> torch.Tensor:
        """Per-position input before position embedding/LayerNorm/dropout [B, L, d]; hook for variants."""
        return self.item_embedding(seq)

    def encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self.encode_input(seq, length, self.sequence_input(seq))

    def encode_input(self, seq: torch.Tensor, length: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The encoder's read-out [B, d] from the per-position input x = `sequence_input(seq)` [B, L', d], L' <= L."""
        read_index = (length - 1).clamp(min=0)  # as gather_last
        return self.encoder(self.embedding(x), causal_padding_mask(seq), read_index)

    def encode_rows(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        if not self.input_mixes_positions:
            return super().encode_rows(seq, length)
        return encode_by_length(self.encode_input, seq, length, self.sequence_input(seq))

    def item_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight
