"""TedRec's fusion as a plug-in for other backbones (the paper's Table 4, "w/ ours").

The paper implements "our framework on four model backbones" without further detail. Here the plug-in
takes each backbone's own item-sequence input -- the [B, L, d] tensor its `sequence_input` hook returns,
after the backbone's own use of text, if any -- as the ID side of TedRec's sequence-level fusion, and
TedRec's modulation adaptor over the same frozen text as the text side:

    input = FrequencyFusion(backbone.sequence_input(seq), ModulationAdaptor(Text[seq]))

Everything else (position embedding, encoder, candidates, loss) is the backbone's. Options are TedRec's
(`n_exps`, `adaptor_dropout_prob`, `modulation`, the three ablation switches). Each variant is registered as
"<backbone>+TedRec" with the backbone's presets and search space.

Padding never reaches an ID table: TedRec's circular fusion mixes every slot, padding included, into every
position, so the gradient of the padded slots would flow into whatever produced the backbone's input there
(SASRecF's and DLFS-Rec's per-item tables are gathered, so into ID row 0 and the layers computing row 0).
TedRec itself looks the IDs up with `padding_idx=0`, which makes the padded slots constants for the
optimiser; the plug-in does the same for any backbone: the padded slots of the backbone's input are
detached (same values, no gradient).

`UniSRec+TedRec` is TedRec itself. The paper's Table-4 row "UniSRec w/ ours" equals TedRec's Table-3 row in
all four numbers Table 4 reports (Recall@10/NDCG@10: ML-1M 0.2623/0.1445, OR 0.2234/0.1316), and TedRec is
UniSRec's recipe (MoE text adaptor, SASRec encoder, cosine/0.07 over ID embeddings) with the text-ID fusion in
place of UniSRec's sum: the authors report the same runs twice. So `UniSRec+TedRec` is registered as TedRec
(same class, options and search space), and the composite of UniSRec's own input with the fusion is not
offered as a Table-4 model.
"""

from __future__ import annotations

import torch
from torch import nn

from benchmark.errors import TedbenchError
from benchmark.layers.sasrec import SASRecBackbone
from benchmark.model import DatasetInfo
from benchmark.registry import get_model, register_model
from tedrec.adaptor import modulation_adaptor
from tedrec.fusion import FrequencyFusion

FUSION_DEFAULTS = {
    "n_exps": 8,
    "adaptor_dropout_prob": 0.2,
    "modulation": "position",  # "global" = w/o MM
    "use_id_filter": True,  # False = w/o IF
    "use_text_fusion": True,  # False = w/o TF
    "use_gates": True,  # False = w/o AG
    "adaptor_dropout": "position",  # "item": one adaptor dropout mask per item of the batch (declared, faster)
}
BACKBONES = ("DLFS-Rec", "SASRecF", "DIF-SR")
SUFFIX = "+TedRec"


def text_id_fusion(config: dict, info: DatasetInfo) -> tuple[nn.Module, FrequencyFusion]:
    """TedRec's two modules for hidden size `config['hidden_size']`: the modulation adaptor and the fusion."""
    if info.item_text is None:
        raise TedbenchError("TedRec's fusion needs item text embeddings (DatasetInfo.item_text is None)")
    hidden = config["hidden_size"]
    adaptor = modulation_adaptor(
        info.item_text.size(1),
        hidden,
        config["n_exps"],
        config["adaptor_dropout_prob"],
        info.max_len,
        config["modulation"],
        config["adaptor_dropout"],
    )
    fusion = FrequencyFusion(
        hidden, info.max_len, config["use_id_filter"], config["use_text_fusion"], config["use_gates"]
    )
    return adaptor, fusion


class TextIdFusion(nn.Module):
    """Fuses a backbone's item-sequence input with TedRec's modulated text of the same items."""

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__()
        self.register_buffer("text", info.item_text.detach().float(), persistent=False)
        self.adaptor, self.fusion = text_id_fusion(config, info)

    def forward(self, seq: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        return self.fusion(item, self.adaptor.lookup(self.text, seq))


def _plugin_class(backbone: type) -> type:
    """`backbone` with TedRec's fusion wrapped around its `sequence_input` hook (created after its init)."""

    def __init__(self, config: dict, info: DatasetInfo) -> None:
        backbone.__init__(self, config, info)
        self.tedrec_fusion = TextIdFusion(config, info)

    def sequence_input(self, seq: torch.Tensor, *args: torch.Tensor) -> torch.Tensor:
        item = backbone.sequence_input(self, seq, *args)
        item = torch.where((seq > 0).unsqueeze(-1), item, item.detach())  # padded slots: constants, as padding_idx
        return self.tedrec_fusion(seq, item)

    doc = f"{backbone.__name__} with TedRec's text-ID fusion on its item-sequence input (Table 4, w/ ours)."
    return type(
        f"{backbone.__name__}TedRec",
        (backbone,),
        {
            "__init__": __init__,
            "sequence_input": sequence_input,
            "prefix_only": False,
            # the fusion mixes only the input: a SASRec-family encoder after it still runs by length groups
            "input_mixes_positions": issubclass(backbone, SASRecBackbone),
            "__doc__": doc,
            "__module__": __name__,
        },
    )


for _name in BACKBONES:
    _entry = get_model(_name)
    register_model(
        _name + SUFFIX,
        defaults={**FUSION_DEFAULTS, **_entry.defaults},
        search_space=dict(_entry.search_space),
        needs_text=True,
        description=f"{_name} + TedRec's fusion (Table 4)",
        presets=_entry.cited_presets(),
    )(_plugin_class(_entry.cls))

_tedrec = get_model("TedRec")


@register_model(
    "UniSRec" + SUFFIX,
    defaults=_tedrec.defaults,
    search_space=dict(_tedrec.search_space),
    needs_text=True,
    description="UniSRec w/ TedRec's fusion (Table 4) = TedRec (the paper reports the same runs)",
    presets=_tedrec.cited_presets(),
)
class UniSRecTedRec(_tedrec.cls):
    """TedRec under Table 4's name "UniSRec w/ ours" (see the module docstring)."""
