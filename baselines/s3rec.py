"""S3-Rec (CIKM 2020) in the TedRec setting: text as the item "attribute", pre-training then SASRec fine-tuning.

Follows RecBole 1.2's `S3Rec` and its text variant in `RUCAIBox/UniSRec: baselines/s3rec.py` (digest §7):

Fine-tuning (`loss`, `full_sort_scores`): SASRec (causal + padding mask, right-padded input, read-out at the last
real position) over an ID table of N + 1 rows, row N being the [MASK] token; the training CE runs over all N + 1
columns (RecBole keeps the mask column), full-sort scores only the N real ids (`info.n_items` columns).

Pre-training (`pretrain_loss`, run by the engine for `pretrain_epochs` epochs before fine-tuning, on the same
prefix rows): each row's sequence is corrupted on the device, vectorised over the batch:
- masked items: every real position is replaced by [MASK] with probability `mask_ratio` (Bernoulli); each
  masked slot gets a negative drawn uniformly from the ids 1..N-1 absent from the row (vectorised rejection);
- segments (rows with n >= 2 items): span length ℓ ~ U{1..n//2}, start ~ U{0..n-ℓ}; the masked-segment sequence
  has the span set to [MASK], the positive segment keeps only the span (all else [MASK]), the negative segment
  copies ℓ items from a random offset of the concatenation of the batch's sequences (RecBole); rows with n < 2
  use the sequence itself three times;
- all six sequences are LEFT-padded (a vectorised gather of the engine's right-padded batch), encoded with the
  bidirectional padding mask, and scored by four Linear(d->d) heads:
  AAP  Σ over real non-masked positions, Σ over all N attribute columns BCE(σ((Waap·o)·A_a), [a = item]);
  MIP  Σ over masked positions −log σ(σ((Wmip·o)·e_pos) − σ((Wmip·o)·e_neg)) (the double sigmoid of both codes);
  MAP  as AAP with Wmap at the masked positions;
  SP   Σ over rows −log σ(σ((Wsp·c)·z_pos) − σ((Wsp·c)·z_neg)), c/z = last-position states of the segment sequences;
  total = aap_weight·AAP + mip_weight·MIP + map_weight·MAP + sp_weight·SP (sums over positions, as both codes).
The attribute table A is the shared `TextAdapter` over every item's text ([N, d]; the label of an item is the
one-hot of its own id, UniSRec's text variant), so AAP/MAP score each position against all N items: they are
computed only at the real positions (each position enters exactly one of the two), in chunks of at most
`ATTRIBUTE_CHUNK_ELEMENTS` scores that are recomputed in backward, never as a B·L·N tensor.

Choices for the digest's ambiguities (§7.k, §12.2 #2/#4), all config keys:
- `pretrain_epochs` 300: the official code's `--pre_epochs` (run_pretrain.py:48) and the UniSRec lab's text
  S3Rec.yaml:17 agree (RecBole's own yaml says 500). This is the `paper` profile's length; the smaller
  profiles declare their own (params.yaml: 1 epoch). A pre-training step costs several fine-tuning steps (AAP/MAP
  score every real position against all N items, SP encodes three more sequences; ~5x on CPU at ML-1M shapes).
- loss weights: aap 1.0 / mip 0.2 / map 1.0 / sp 0.5, the RecBole release the authors ran (v1.2.0 S3Rec.yaml:12-15,
  identical in the UniSRec lab's S3Rec.yaml:12-15); RecBole swapped aap/mip back to the original code's values in
  March 2024 (commit ae720aa4). Preset `official` = the original CIKM code (aap 0.2 / mip 1.0, hidden 64, the last
  item always masked); preset `authors-code` = the UniSRec lab's text S3-Rec as it ran (its yaml, random text).
- `pretrain_left_padding` True: both reference codes left-pad in pre-training (so SP reads position L−1);
  False keeps the engine's right padding (SP reads position n−1) and avoids the position shift between stages.
- `mask_last_item` False: RecBole masks only by `mask_ratio`; the original CIKM code also always masks the last item.
- `random_text` False: the frozen text is used as is (the UniSRec-lab code silently replaced it by N(0, 0.02²)
  noise; True reproduces that).
- pre-training rows are the engine's prefix rows (as RecBole re-builds them from each training batch); the
  negative segments come from the batch (RecBole), not from the whole data (official).
Negatives are drawn from 1..N−1 (RecBole could also draw the [MASK] id). AAP/MAP use BCE-with-logits, equal to
the references' sigmoid + BCELoss up to BCELoss's clamp of log at −100.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.checkpoint import checkpoint

from baselines.negatives import sample_absent_items
from baselines.presets import UNISREC, yaml_backbone
from baselines.text_adapter import TextAdapter
from benchmark.errors import TedbenchError
from benchmark.layers.blocks import bidirectional_padding_mask, recbole_init_
from benchmark.layers.kernels import at_least_float32, bernoulli_keep_
from benchmark.layers.sasrec import DROPOUTS, SASREC_DEFAULTS, SASRecBackbone
from benchmark.model import Batch, DatasetInfo
from benchmark.registry import register_model

ATTRIBUTE_CHUNK_ELEMENTS = 1 << 26  # AAP/MAP scores held at once (256 MiB of float32)

S3REC_DEFAULTS = {
    **SASREC_DEFAULTS,
    "pretrain_epochs": 300,  # aHuiWang/CIKM2020-S3Rec@49a890d run_pretrain.py:48; RUCAIBox/UniSRec props/S3Rec.yaml:17
    "mask_ratio": 0.2,
    "aap_weight": 1.0,  # RUCAIBox/RecBole@v1.2.0 recbole/properties/model/S3Rec.yaml:12
    "mip_weight": 0.2,  # S3Rec.yaml:13
    "map_weight": 1.0,  # S3Rec.yaml:14
    "sp_weight": 0.5,  # S3Rec.yaml:15
    "pretrain_left_padding": True,
    "mask_last_item": False,
    "random_text": False,
}


S3REC = "aHuiWang/CIKM2020-S3Rec@49a890d "
S3REC_OFFICIAL = {
    "hidden_size": (64, S3REC + "run_pretrain.py:30"),
    "n_layers": (2, S3REC + "run_pretrain.py:31"),
    "n_heads": (2, S3REC + "run_pretrain.py:32"),
    "attn_dropout_prob": (0.5, S3REC + "run_pretrain.py:34"),
    "hidden_dropout_prob": (0.5, S3REC + "run_pretrain.py:35"),
    "learning_rate": (1e-3, S3REC + "run_pretrain.py:40"),
    "pretrain_epochs": (300, S3REC + "run_pretrain.py:48"),
    "mask_ratio": (0.2, S3REC + "run_pretrain.py:51"),
    "aap_weight": (0.2, S3REC + "run_pretrain.py:52"),
    "mip_weight": (1.0, S3REC + "run_pretrain.py:53"),
    "map_weight": (1.0, S3REC + "run_pretrain.py:54"),
    "sp_weight": (0.5, S3REC + "run_pretrain.py:55"),
    "mask_last_item": (True, S3REC + "datasets.py:44-45"),
}
S3REC_AUTHORS_CODE = {
    **yaml_backbone(UNISREC + "S3Rec.yaml", 300),
    "mask_ratio": (0.2, UNISREC + "S3Rec.yaml:11"),
    "aap_weight": (1.0, UNISREC + "S3Rec.yaml:12"),
    "mip_weight": (0.2, UNISREC + "S3Rec.yaml:13"),
    "map_weight": (1.0, UNISREC + "S3Rec.yaml:14"),
    "sp_weight": (0.5, UNISREC + "S3Rec.yaml:15"),
    "pretrain_epochs": (300, UNISREC + "S3Rec.yaml:17"),
    # the dataset's text table is assigned (baselines/s3rec.py:70) before apply(_init_weights) (:106)
    "random_text": (True, "RUCAIBox/UniSRec@05aa5cb baselines/s3rec.py:70,106"),
}


def right_to_left_padding(x: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Right-padded [..., B, L] rows (first `length[b]` slots real) as left-padded rows (last `length[b]` real)."""
    max_len = x.size(-1)
    source = torch.arange(max_len, device=x.device) - (max_len - length).unsqueeze(-1)  # [B, L]
    gathered = x.gather(-1, source.clamp(min=0).expand_as(x))
    return torch.where(source >= 0, gathered, torch.zeros((), dtype=x.dtype, device=x.device))


def uniform_below(bound: torch.Tensor) -> torch.Tensor:
    """One integer uniformly from 0..bound[b]−1 per entry (bound >= 1)."""
    draw = (torch.rand(bound.shape, device=bound.device) * bound).long()
    return torch.minimum(draw, bound - 1)


def _softplus_row_sums(query: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Σ_a softplus(query·table_a) per row [R] (the BCE of every negative column plus the positive's softplus)."""
    return F.softplus(at_least_float32(query @ table.t())).sum(-1)


def attribute_nll(
    query: torch.Tensor, table: torch.Tensor, label: torch.Tensor, chunk_elements: int | None = None
) -> torch.Tensor:
    """Per-row Σ_a BCE(σ(query·table_a), [a = label]) [R], without holding the [R, N] scores.

    BCE summed over one-hot labels = Σ_a softplus(s_a) − s_label; the softplus sums run in chunks of rows whose
    scores are recomputed in backward (activation checkpointing), so memory is O(chunk · N).
    """
    rows = max(1, (chunk_elements or ATTRIBUTE_CHUNK_ELEMENTS) // max(1, table.size(0)))
    if query.size(0) <= rows:
        sums = _softplus_row_sums(query, table)
    else:
        parts = [
            checkpoint(_softplus_row_sums, query[i : i + rows], table, use_reentrant=False)
            for i in range(0, query.size(0), rows)
        ]
        sums = torch.cat(parts)
    return sums - at_least_float32((query * table[label]).sum(-1))


def pairwise_preference_nll(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """−log σ(σ(a·p) − σ(a·n)) per row: the references' BCE on the difference of two sigmoid scores."""
    difference = torch.sigmoid((anchor * positive).sum(-1)) - torch.sigmoid((anchor * negative).sum(-1))
    return F.softplus(-at_least_float32(difference))


@dataclasses.dataclass
class PretrainInputs:
    """The corrupted sequences of one pre-training batch, all [B, L] in the pre-training padding.

    masked: items with masked slots set to [MASK]; positive/negative: the original item and its sampled negative
    at every slot (used at the masked slots); segment_*: the masked-segment, positive- and negative-segment rows.
    """

    masked: torch.Tensor
    positive: torch.Tensor
    negative: torch.Tensor
    segment_masked: torch.Tensor
    segment_positive: torch.Tensor
    segment_negative: torch.Tensor
    length: torch.Tensor


@register_model(
    "S3-Rec",
    defaults=S3REC_DEFAULTS,
    presets={"official": S3REC_OFFICIAL, "authors-code": S3REC_AUTHORS_CODE},
    search_space={"hidden_dropout_prob": DROPOUTS, "attn_dropout_prob": DROPOUTS},
    needs_text=True,
)
class S3Rec(SASRecBackbone):
    """S3-Rec: self-supervised pre-training (AAP, MIP, MAP, SP over item text) of a SASRec with a [MASK] id."""

    def __init__(self, config: dict, info: DatasetInfo):
        if info.item_text is None:
            raise TedbenchError("S3-Rec needs item text embeddings (DatasetInfo.item_text is None)")
        if not 0.0 <= config["mask_ratio"] < 1.0:
            raise TedbenchError(f"S3-Rec mask_ratio must be in [0, 1), not {config['mask_ratio']}")
        # The ID table gets one extra row, id N = [MASK]; everything else sees the real `info`.
        super().__init__(config, dataclasses.replace(info, n_items=info.n_items + 1))
        self.info = info
        self.mask_token = info.n_items
        hidden = config["hidden_size"]
        self.attributes = TextAdapter(info.item_text, hidden, random_text=config["random_text"])
        self.aap_head = nn.Linear(hidden, hidden)
        self.mip_head = nn.Linear(hidden, hidden)
        self.map_head = nn.Linear(hidden, hidden)
        self.sp_head = nn.Linear(hidden, hidden)
        for module in (self.attributes, self.aap_head, self.mip_head, self.map_head, self.sp_head):
            recbole_init_(module, config["initializer_range"])  # RecBole inits the whole model at once

    # -- fine-tuning -------------------------------------------------------------------------
    def item_embeddings(self) -> torch.Tensor:
        """The N real ids' vectors (the [MASK] row N is left out)."""
        return self.item_embedding.weight[: self.info.n_items]

    def score_items(self, query: torch.Tensor, training: bool) -> torch.Tensor:
        """Training: all N + 1 columns ([MASK] included, as RecBole's CE); evaluation: the N real ids."""
        weight = self.item_embedding.weight
        return query @ (weight if training else weight[: self.info.n_items]).t()

    # -- pre-training ------------------------------------------------------------------------
    def pretrain_inputs(self, seq: torch.Tensor, length: torch.Tensor) -> PretrainInputs:
        """Masked items, their negatives and the three segment sequences for a right-padded batch."""
        max_len = seq.size(1)
        mask_token = torch.full((), self.mask_token, dtype=seq.dtype, device=seq.device)
        position = torch.arange(max_len, device=seq.device)
        real = position < length.unsqueeze(1)
        # masked item prediction: Bernoulli masks over the real slots
        masked = (
            bernoulli_keep_(torch.empty(seq.shape, dtype=torch.bool, device=seq.device), self.config["mask_ratio"])
            & real
        )
        if self.config["mask_last_item"]:
            masked |= position == (length - 1).unsqueeze(1)
        negative = torch.where(masked, sample_absent_items(seq, max_len, self.info.n_items), seq)
        masked_seq = torch.where(masked, mask_token, seq)
        # segment prediction: one span per row with at least two items
        has_span = length >= 2
        span = 1 + uniform_below((length // 2).clamp(min=1))
        start = uniform_below((length - span + 1).clamp(min=1))
        in_span = (position >= start.unsqueeze(1)) & (position < (start + span).unsqueeze(1)) & has_span.unsqueeze(1)
        pool = seq[real]  # the batch's sequences, concatenated row after row
        source = uniform_below((pool.numel() - span + 1).clamp(min=1)).unsqueeze(1) + position - start.unsqueeze(1)
        segment_masked = torch.where(in_span, mask_token, seq)
        segment_positive = torch.where(real & has_span.unsqueeze(1) & ~in_span, mask_token, seq)
        segment_negative = torch.where(in_span, pool[source.clamp(0, pool.numel() - 1)], segment_positive)
        rows = torch.stack([masked_seq, seq, negative, segment_masked, segment_positive, segment_negative])
        if self.config["pretrain_left_padding"]:
            rows = right_to_left_padding(rows, length)
        return PretrainInputs(*rows.unbind(0), length=length)

    def _bidirectional_states(self, seq: torch.Tensor, read_index: torch.Tensor | None = None) -> torch.Tensor:
        return self.encoder(self.embedding(self.item_embedding(seq)), bidirectional_padding_mask(seq), read_index)

    def pretrain_losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        """The four unweighted pre-training losses of a freshly corrupted batch (each a sum over positions or rows)."""
        return self.losses_of(self.pretrain_inputs(batch.seq, batch.length))

    def losses_of(self, inputs: PretrainInputs) -> dict[str, torch.Tensor]:
        """AAP, MIP, MAP and SP of given pre-training inputs."""
        hidden = self._bidirectional_states(inputs.masked)  # [B, L, d]
        is_masked = inputs.masked == self.mask_token
        associated = (inputs.masked != 0) & ~is_masked
        aap_rows, map_rows = hidden[associated], hidden[is_masked]
        queries = torch.cat([self.aap_head(aap_rows), self.map_head(map_rows)])
        labels = torch.cat([inputs.positive[associated], inputs.positive[is_masked]])
        attribute = attribute_nll(queries, self.attributes.all_items(), labels)
        mip_query = self.mip_head(map_rows)
        mip = pairwise_preference_nll(
            mip_query, self.item_embedding(inputs.positive[is_masked]), self.item_embedding(inputs.negative[is_masked])
        )
        segments = torch.cat([inputs.segment_masked, inputs.segment_positive, inputs.segment_negative])
        max_len = segments.size(1)
        last = (
            torch.full_like(inputs.length, max_len - 1) if self.config["pretrain_left_padding"] else inputs.length - 1
        )
        context, positive, negative = self._bidirectional_states(segments, last.repeat(3)).chunk(3)
        sp = pairwise_preference_nll(self.sp_head(context), positive, negative)
        n_aap = aap_rows.size(0)
        return {"aap": attribute[:n_aap].sum(), "mip": mip.sum(), "map": attribute[n_aap:].sum(), "sp": sp.sum()}

    def pretrain_loss(self, batch: Batch) -> torch.Tensor:
        losses = self.pretrain_losses(batch)
        return sum(self.config[f"{name}_weight"] * value for name, value in losses.items())
