"""TedRec's MoE modulation adaptor: UniSRec's MoE adaptor with per-position modulation embeddings."""

from __future__ import annotations

from baselines.layers import MoEAdaptor

MODULATIONS = ("position", "global", "none")


def modulation_adaptor(text_dim: int, hidden_size: int, n_exps: int, dropout_prob: float, max_len: int,
                       modulation: str = "position") -> MoEAdaptor:
    """MoE adaptor text_dim -> hidden_size as TedRec builds it (official `MoEAdaptorLayer`/`DTRLayer`).

    modulation: "position" = TedRec (expert k computes (Dropout(t_j) − s_{j,k})·A_k with a zero-initialised
    (L, text_dim) table per expert); "global" = the w/o MM ablation (UniSRec's whitening bias, one (text_dim,)
    vector per expert); "none" = no bias at all.
    """
    return MoEAdaptor(text_dim, hidden_size, n_exps, dropout_prob, modulation=modulation, max_len=max_len)
