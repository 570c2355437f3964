"""TedRec (CIKM 2024) on the SASRec backbone, matching the official RUCAIBox/TedRec `tedrec.py`."""

from __future__ import annotations

import torch

from benchmark.errors import TedbenchError
from benchmark.layers.blocks import cosine_logits
from benchmark.layers.sasrec import DROPOUTS, SASREC_DEFAULTS, SASRecBackbone
from benchmark.model import DatasetInfo
from benchmark.registry import SearchParam, register_model
from tedrec.adaptor import ADAPTOR_DROPOUTS, MODULATIONS, modulation_adaptor
from tedrec.fusion import FrequencyFusion

TEDREC_DEFAULTS = {
    **SASREC_DEFAULTS,
    "n_exps": 8,
    "adaptor_dropout_prob": 0.2,
    "temperature": 0.07,
    "modulation": "position",  # "global" = w/o MM, "none" = no bias
    "use_id_filter": True,  # False = w/o IF
    "use_text_fusion": True,  # False = w/o TF
    "use_gates": True,  # False = w/o AG
    "adaptor_dropout": "position",  # "item": one adaptor dropout mask per item of the batch (declared, faster)
}


@register_model(
    "TedRec",
    defaults=TEDREC_DEFAULTS,
    search_space={
        "hidden_dropout_prob": DROPOUTS,
        "attn_dropout_prob": DROPOUTS,
        "adaptor_dropout_prob": DROPOUTS,
        "n_exps": SearchParam("categorical", choices=(4, 8)),
        "temperature": SearchParam("categorical", choices=(0.05, 0.07, 0.1)),
    },
    needs_text=True,
)
class TedRec(SASRecBackbone):
    """TedRec: MoE-modulated text fused with ID embeddings by FFT products, then SASRec; cosine scoring.

    Built as the official code: SASRec (with RecBole's init) first, then the TedRec modules with their own init.
    """

    prefix_only = False  # the fusion's FFTs mix every position, padding included
    input_mixes_positions = True  # ... but only the input: the SASRec encoder after it runs by length groups

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        if info.item_text is None:
            raise TedbenchError("TedRec needs item text embeddings (DatasetInfo.item_text is None)")
        if config["modulation"] not in MODULATIONS:
            raise TedbenchError(
                f"TedRec modulation must be one of {', '.join(MODULATIONS)}, not {config['modulation']!r}"
            )
        if config["adaptor_dropout"] not in ADAPTOR_DROPOUTS:
            choices = ", ".join(ADAPTOR_DROPOUTS)
            raise TedbenchError(f"TedRec adaptor_dropout must be one of {choices}, not {config['adaptor_dropout']!r}")
        hidden = config["hidden_size"]
        self.temperature = config["temperature"]
        self.register_buffer("item_text", info.item_text.detach().float(), persistent=False)
        self.fusion = FrequencyFusion(
            hidden, info.max_len, config["use_id_filter"], config["use_text_fusion"], config["use_gates"]
        )
        self.adaptor = modulation_adaptor(
            info.item_text.size(1),
            hidden,
            config["n_exps"],
            config["adaptor_dropout_prob"],
            info.max_len,
            config["modulation"],
            config["adaptor_dropout"],
        )

    def sequence_input(self, seq: torch.Tensor) -> torch.Tensor:
        return self.fusion(self.item_embedding(seq), self.adaptor.lookup(self.item_text, seq))

    def score_items(self, query: torch.Tensor, training: bool) -> torch.Tensor:
        return cosine_logits(query, self.item_embeddings(), self.temperature, training)
