"""FDSA as RecBole's two-tower model, with the item text as the feature tower's input (UniSRec lab's text
version, `RUCAIBox/UniSRec: baselines/fdsa.py`; digest §6).

- item tower: `Dropout(LN(ItemEmb[seq] + PosEmb))` -> Transformer (causal + padding) -> row len−1;
- text tower: `Dropout(LN(Adapter(Text[seq]) + PosEmb))` -> a second Transformer (same architecture and
  mask, own weights) -> row len−1;
- `s = Dropout(LN(Linear_{2d->d}([o_item ; o_text])))`, logits `s · ItemEmbᵀ` (ID candidates only).
One LayerNorm, one position table and one dropout are shared by both tower inputs and the output, as in
RecBole (here: SASRec's `SequenceEmbedding` module, used for both towers, and its LayerNorm/Dropout for
the output).

Ambiguity (digest §6.i/§6.k): the UniSRec-lab FDSA re-initialised its frozen BERT table with N(0, 0.02²)
noise (a copied `nn.Embedding` hit by RecBole's init), so its "text" tower saw a fixed random code per
item. `random_text` (default False = the real text) reproduces that on purpose.

Presets: `official` = RecBole 1.2.0's FDSA (there is no code from FDSA's authors; RecBole's is the reference);
`authors-code` = the UniSRec repository's text FDSA as it ran: its `props/FDSA.yaml` sizes and random text.
"""

from __future__ import annotations

import torch

from baselines.fusion_layers import ConcatFusion, item_features
from baselines.presets import UNISREC, recbole_backbone, yaml_backbone
from baselines.text_adapter import TextAdapter
from benchmark.layers.blocks import TransformerEncoder, causal_padding_mask, recbole_init_
from benchmark.layers.sasrec import DROPOUTS, SASREC_DEFAULTS, SASRecBackbone
from benchmark.model import DatasetInfo
from benchmark.registry import SearchParam, register_model

FDSA_DEFAULTS = {**SASREC_DEFAULTS, "random_text": False}
FDSA_AUTHORS_CODE = {
    **yaml_backbone(UNISREC + "FDSA.yaml", 300),
    # the text table is deep-copied into the model (baselines/fdsa.py:51) before apply(_init_weights) (:88)
    "random_text": (True, "RUCAIBox/UniSRec@05aa5cb baselines/fdsa.py:51,88"),
}


@register_model(
    "FDSA",
    defaults=FDSA_DEFAULTS,
    presets={"official": recbole_backbone("FDSA"), "authors-code": FDSA_AUTHORS_CODE},
    search_space={
        "hidden_dropout_prob": DROPOUTS,
        "attn_dropout_prob": DROPOUTS,
        "n_layers": SearchParam("categorical", choices=(1, 2, 3)),
        "n_heads": SearchParam("categorical", choices=(1, 2)),
    },
    needs_text=True,
)
class FDSA(SASRecBackbone):
    """FDSA: an ID Transformer tower and a text Transformer tower, concatenated and fused by one Linear.

    The item tower is SASRec's (`item_embedding`, `embedding`, `encoder`); `text_encoder` is the text
    tower's Transformer.
    """

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        hidden = config["hidden_size"]
        self.text = TextAdapter(info.item_text, hidden, random_text=config["random_text"])
        self.text_encoder = TransformerEncoder.from_config(config)  # the item tower's architecture, own weights
        self.concat_layer = ConcatFusion(2, hidden, hidden)
        recbole_init_(self.text_encoder, config["initializer_range"])
        recbole_init_(self.concat_layer, config["initializer_range"])

    def text_input(self, seq: torch.Tensor) -> torch.Tensor:
        """Adapted text at every position [B, L, d] (the text tower's input before position/LN/dropout)."""
        return item_features(seq, self.info.n_items, self.text.all_items, self.text)

    def _towers(self, seq: torch.Tensor, read_index: torch.Tensor | None) -> torch.Tensor:
        mask = causal_padding_mask(seq)
        item = self.encoder(self.embedding(self.item_embedding(seq)), mask, read_index)
        text = self.text_encoder(self.embedding(self.text_input(seq)), mask, read_index)
        return self.embedding.dropout(self.embedding.layer_norm(self.concat_layer(item, text)))

    def hidden_states(self, seq: torch.Tensor) -> torch.Tensor:
        """Fused output at every position [B, L, d] (encode reads row len−1 of it)."""
        return self._towers(seq, None)

    def encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        return self._towers(seq, (length - 1).clamp(min=0))
