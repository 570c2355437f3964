"""SASRec as in RecBole 1.2 (post-LN Transformer, full-softmax CE), TedRec's 300-d setting.

The model is `benchmark.layers.sasrec.SASRecBackbone`; this module registers it with its presets and search
space. Presets (`--set preset=NAME`): `official` = RecBole 1.2.0's SASRec, the code the TedRec authors ran
every RecBole baseline with (the original TensorFlow SASRec is not what Table 3 ran).
"""

from __future__ import annotations

from baselines.presets import recbole_backbone
from benchmark.layers.sasrec import DROPOUTS, SASREC_DEFAULTS, SASRecBackbone
from benchmark.registry import SearchParam, register_model


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
class SASRec(SASRecBackbone):
    """SASRec: causal self-attention over ID + position embeddings, dot-product scoring."""
