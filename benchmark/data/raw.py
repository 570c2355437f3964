"""The common form every dataset reader returns, before filtering and splitting."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class RawInteractions:
    """Interactions as read from a source, one row per interaction, in file order.

    user, item:   object arrays of string tokens (the source's own ids).
    timestamp:    int64 seconds, or None when the file has no time column; then file order
                  within a user is the time order.
    item_text:    source item token -> item text, already built the way the paper builds it.
                  An item without text maps to "" (its embedding row is zeros).
    item_attributes: source item token -> its categorical attributes (ml-1m genres, Amazon categories),
                  or None when the source has none (Online Retail).
    prefiltered:  True for already processed releases (RecBole benchmark files): the k-core
                  filter is not applied again and rows are already in per-user time order.
    notes:        facts worth recording in the manifest (e.g. why a dataset is partial).
    """

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray | None
    item_text: dict[str, str]
    item_attributes: dict[str, list[str]] | None = None
    prefiltered: bool = False
    notes: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.user) != len(self.item):
            raise ValueError("user and item columns differ in length")
        if self.timestamp is not None and len(self.timestamp) != len(self.user):
            raise ValueError("timestamp column differs in length")

    def __len__(self) -> int:
        return len(self.user)
