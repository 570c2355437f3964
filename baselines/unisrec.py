"""UniSRec (KDD 2022) trained from scratch in the transductive setting (text + ID), as TedRec's Table 3 runs it.

Matches `RUCAIBox/UniSRec: unisrec.py` with `train_stage='transductive_ft'` and no pre-trained checkpoint
(`finetune.py` without `-p`), configured by `props/UniSRec.yaml` + `props/finetune.yaml` (digest §9):

- sequence: `Dropout(LN(MoE(Text[seq]) + ItemEmb[seq] + PosEmb))` -> RecBole Transformer (causal + padding mask)
  -> hidden state at the last real position;
- candidates: `MoE(Text) + ItemEmb` for every id, recomputed at each call, so in training the adaptor's dropout
  and router noise are active on the candidate side too (independent draws from the sequence side);
- training logits `cos(s, c) / temperature` (0.07) with full-softmax CE over all ids; evaluation ranks by the
  plain cosine (same order).

The MoE adaptor (`benchmark.layers.blocks.MoEAdaptor`, K = 8 experts) uses UniSRec's *global* whitening bias: expert k
computes `(Dropout(x) - b_k) @ A_k` with one `(text_dim,)` vector b_k per expert (not TedRec's per-position
table). The SASRec part gets RecBole's init; the adaptor is created afterwards and keeps its own init (experts
N(0, 0.02²), router and biases zero), as in the official code. The text table is a frozen, non-persistent
buffer. Trainable parameters on ML-1M shapes (3,417 ids, d 300): 3,935,444 with 768-d text (digest §9.d),
3,004,628 with 384-d text.

The digest lists no significant ambiguity for this model; nothing here departs from the official code.
Preset `official` = `props/UniSRec.yaml` (+ RecBole's learning rate): the defaults themselves, cited.
"""

from __future__ import annotations

import torch

from baselines.presets import UNISREC, yaml_backbone
from benchmark.errors import TedbenchError
from benchmark.layers.blocks import MoEAdaptor, cosine_logits
from benchmark.layers.sasrec import DROPOUTS, SASREC_DEFAULTS, SASRecBackbone
from benchmark.model import DatasetInfo
from benchmark.registry import SearchParam, register_model

UNISREC_DEFAULTS = {
    **SASREC_DEFAULTS,
    "n_exps": 8,
    "adaptor_dropout_prob": 0.2,
    "temperature": 0.07,
}
UNISREC_OFFICIAL = {
    **yaml_backbone(UNISREC + "UniSRec.yaml", 300),
    "adaptor_dropout_prob": (0.2, UNISREC + "UniSRec.yaml:20"),
    "temperature": (0.07, UNISREC + "UniSRec.yaml:22"),
    "n_exps": (8, UNISREC + "UniSRec.yaml:23"),
}


@register_model(
    "UniSRec",
    defaults=UNISREC_DEFAULTS,
    presets={"official": UNISREC_OFFICIAL},
    search_space={
        "hidden_dropout_prob": DROPOUTS,
        "attn_dropout_prob": DROPOUTS,
        "adaptor_dropout_prob": DROPOUTS,
        "n_exps": SearchParam("categorical", choices=(4, 8)),
        "temperature": SearchParam("categorical", choices=(0.05, 0.07, 0.1)),
    },
    needs_text=True,
)
class UniSRec(SASRecBackbone):
    """UniSRec (transductive, from scratch): MoE-adapted text + ID embeddings, SASRec encoder, cosine scoring."""

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        if info.item_text is None:
            raise TedbenchError("UniSRec needs item text embeddings (DatasetInfo.item_text is None)")
        self.temperature = config["temperature"]
        self.register_buffer("item_text", info.item_text.detach().float().clone(), persistent=False)
        self.adaptor = MoEAdaptor(
            info.item_text.size(1), config["hidden_size"], config["n_exps"], config["adaptor_dropout_prob"]
        )

    def sequence_input(self, seq: torch.Tensor) -> torch.Tensor:
        return self.adaptor.lookup(self.item_text, seq) + self.item_embedding(seq)

    def item_embeddings(self) -> torch.Tensor:
        return self.adaptor(self.item_text) + self.item_embedding.weight

    def score_items(self, query: torch.Tensor, training: bool) -> torch.Tensor:
        return cosine_logits(query, self.item_embeddings(), self.temperature, training)
