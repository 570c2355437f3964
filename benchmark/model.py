"""The interface every model implements; the engine relies on nothing else.

A model is built from `(config, info)`. It never touches devices, precision, optimisers,
batching, early stopping or files: the engine owns those. It sees the data only through
`DatasetInfo`, `Batch` and `TrainingRows`, never through the data package's own classes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

LENGTH_GROUPS = 8  # row groups of `encode_by_length`
# Every input sequence is exactly this long (the paper's and RecBole's MAX_ITEM_LIST_LENGTH); TedRec's
# per-position modulation has parameters of this length, so it is part of the protocol, not a knob.
MAX_LEN = 50


@dataclass
class DatasetInfo:
    """What a model may know about the data.

    n_items:    number of item ids including the padding id 0 (RecBole's n_items).
    max_len:    padded sequence length (`MAX_LEN` in every run; inputs are always exactly this long).
    item_text:  frozen item-text matrix [n_items, dim], row 0 zeros; None for ID-only runs.
    item_attributes: categorical attributes [n_items, k] int64 (ids 1..n_attributes, 0 = none), or None
                when the dataset has none (DIF-SR's attribute-prediction labels).
    """

    n_items: int
    max_len: int = MAX_LEN
    item_text: torch.Tensor | None = None
    item_attributes: torch.Tensor | None = None


@dataclass(frozen=True)
class TrainingRows:
    """What a model may know of the training rows (device-resident): R rows, addressed by index 0..R-1.

    target: [R] each row's next item id.
    inputs: index [B] -> (seq [B, L] right-padded, length [B]), the input sequences of those rows.
    """

    target: torch.Tensor
    inputs: Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

    def __len__(self) -> int:
        return len(self.target)


@dataclass
class Batch:
    """One training batch, already on the model's device.

    seq:     [B, L] item ids, right-padded with 0 (items left-aligned).
    length:  [B] number of real items in each row (>= 1).
    target:  [B] next item id.
    extra:   model-specific tensors prepared by the model's `batch_extras` hook
             (e.g. FEARec's same-target sequences); empty for most models.
    """

    seq: torch.Tensor
    length: torch.Tensor
    target: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


def rows_at(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """One position per sequence: x[b, index[b]] for x [B, L, d] and index [B] -> [B, d]."""
    return x.gather(1, index.view(-1, 1, 1).expand(-1, 1, x.size(-1))).squeeze(1)


def gather_last(hidden: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
    """Hidden state at each row's last real position: [B, L, d] -> [B, d]."""
    return rows_at(hidden, (length - 1).clamp(min=0))


def encode_by_length(
    encode: Callable[..., torch.Tensor],
    seq: torch.Tensor,
    length: torch.Tensor,
    *inputs: torch.Tensor,
    groups: int = LENGTH_GROUPS,
) -> torch.Tensor:
    """`encode(seq, length, *inputs)` [B, d] for an encoder whose row b depends only on seq[b, :length[b]] and
    inputs[i][b, :length[b]] (causal, right-padded; each of `inputs` is [B, L, ..]): the rows, sorted by length,
    are encoded in `groups` groups, each cut to its longest row.

    The same values (the cut positions are padding that no read row attends to), for the work of about the
    mean length rather than L; dropout draws fall on the kept positions only, with the same distribution.
    """
    groups = min(groups, len(seq))
    if groups <= 1:
        return encode(seq, length, *inputs)
    out = None
    for rows in torch.argsort(length).tensor_split(groups):
        part_length = length[rows]
        width = max(1, int(part_length.max()))
        part = encode(seq[rows, :width], part_length, *(x[rows, :width] for x in inputs))
        if out is None:
            out = part.new_empty(len(seq), *part.shape[1:])
        out = out.index_put((rows,), part)
    return out


class SequentialModel(nn.Module):
    """Base class: dot-product scoring of the sequence vector against the ID embeddings.

    Subclasses implement `encode` and `item_embeddings`; override `score_items` for other
    score functions (cosine, distances) and `loss` for auxiliary terms. Three optional hooks let a
    model ask the engine for more without special cases in the engine:

    - `attach(train)`: called once with the `TrainingRows` before training (e.g. to index them
      by target);
    - `batch_extras(train, index)`: tensors added to `Batch.extra` for the batch of training rows `index`;
    - `pretrain_loss(batch)` with a positive `pretrain_epochs` in the config: a pre-training
      stage the engine runs (with its own optimiser) before the main training.
    """

    registry_name: str = ""
    prefix_only: bool = False  # True: encode's row b depends only on seq[b, :length[b]] (see encode_by_length)

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__()
        self.config = config
        self.info = info

    def encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Sequence representation [B, d]."""
        raise NotImplementedError

    def item_embeddings(self) -> torch.Tensor:
        """Candidate vectors for all ids [n_items, d] (row 0 = padding, masked at evaluation)."""
        raise NotImplementedError

    def score_items(self, query: torch.Tensor, training: bool) -> torch.Tensor:
        """Scores of every item id for each query [B, n_items]; training scores feed the CE loss."""
        return query @ self.item_embeddings().t()

    def attach(self, train: TrainingRows) -> None:
        """Called once by the engine with the training rows on the model's device."""

    def batch_extras(self, train: TrainingRows, index: torch.Tensor) -> dict[str, torch.Tensor]:
        """Extra training inputs for the batch of training rows `index` [B] (default: none)."""
        return {}

    def encode_rows(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """`encode`, by length groups for a `prefix_only` model."""
        return encode_by_length(self.encode, seq, length) if self.prefix_only else self.encode(seq, length)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Training loss for one batch: full-softmax cross-entropy over all ids (padding included)."""
        logits = self.score_items(self.encode_rows(batch.seq, batch.length), training=True)
        return F.cross_entropy(logits.float(), batch.target)

    @torch.no_grad()
    def full_sort_scores(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        """Evaluation scores over all ids [B, n_items]; the engine masks id 0."""
        return self.score_items(self.encode_rows(seq, length), training=False)
