"""TedRec's MoE modulation adaptor: UniSRec's MoE adaptor with per-position modulation embeddings."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.layers.blocks import MoEAdaptor

MODULATIONS = ("position", "global", "none")
# adaptor dropout: one mask per sequence position and expert (the official code), or per distinct item of the
# batch and expert (a declared, faster change of granularity: the expert products are computed per item)
ADAPTOR_DROPOUTS = ("position", "item")


class PositionModulatedAdaptor(MoEAdaptor):
    """UniSRec's MoE adaptor whose bias is TedRec's modulation embedding (official `DTRLayer`): expert k computes
    (Dropout(t_j) − s_{j,k})·A_k at sequence position j, with a zero-initialised (L, in) table s_k per expert.

    The table is stored as `bias` (K, L, in) in place of UniSRec's (K, 1, in) whitening bias, so its shift
    b_k·A_k is [K, L, out] and the shared mixture subtracts row j at position j; inputs must be [.., L, in].
    """

    def __init__(
        self, in_dim: int, out_dim: int, n_exps: int, dropout_prob: float, max_len: int, dropout_per_item: bool = False
    ):
        super().__init__(in_dim, out_dim, n_exps, dropout_prob, whitening=False, dropout_per_item=dropout_per_item)
        self.bias = nn.Parameter(torch.zeros(n_exps, max_len, in_dim))

    def check_length(self, length: int) -> None:
        if length != self.bias.size(1):
            raise ValueError(f"per-position modulation needs inputs of length {self.bias.size(1)}, got {length}")


def modulation_adaptor(
    text_dim: int,
    hidden_size: int,
    n_exps: int,
    dropout_prob: float,
    max_len: int,
    modulation: str = "position",
    adaptor_dropout: str = "position",
) -> MoEAdaptor:
    """MoE adaptor text_dim -> hidden_size as TedRec builds it (official `MoEAdaptorLayer`/`DTRLayer`).

    modulation: "position" = TedRec (`PositionModulatedAdaptor`); "global" = the w/o MM ablation (UniSRec's
    whitening bias, one (text_dim,) vector per expert); "none" = no bias at all. adaptor_dropout: "position" (the
    official code) or "item" (`ADAPTOR_DROPOUTS`).
    """
    if adaptor_dropout not in ADAPTOR_DROPOUTS:
        raise ValueError(f"adaptor_dropout must be one of {', '.join(ADAPTOR_DROPOUTS)}, not {adaptor_dropout!r}")
    per_item = adaptor_dropout == "item"
    if modulation == "position":
        return PositionModulatedAdaptor(text_dim, hidden_size, n_exps, dropout_prob, max_len, per_item)
    if modulation not in MODULATIONS:
        raise ValueError(f"modulation must be one of {', '.join(MODULATIONS)}, not {modulation!r}")
    return MoEAdaptor(
        text_dim, hidden_size, n_exps, dropout_prob, whitening=modulation == "global", dropout_per_item=per_item
    )
