"""The shared side-information path of the text-feature baselines.

The only side information available on all five datasets is the frozen item-text matrix, so
SASRecF, FDSA, S3-Rec, DIF-SR, DLFS-Rec and SMLP4Rec all see text through this one adapter:
RecBole's `MLPLayers([text_dim, d])` as the same lab's text baselines use it (UniSRec's
`baselines/fdsa.py`): Linear(text_dim -> d) + ReLU over a frozen table whose row 0 is zeros.
The table is a non-persistent buffer, so no re-initialisation loop can overwrite it (the
UniSRec FDSA/S3-Rec versions accidentally replaced it with N(0, 0.02²) noise; see
`random_text` for reproducing that behaviour on purpose).
"""

from __future__ import annotations

import torch
from torch import nn


class TextAdapter(nn.Module):
    """`ReLU(Text[ids] @ W + b)`: frozen item text adapted to the model's hidden size.

    random_text: replace the text table by fixed N(0, 0.02²) vectors (row 0 zero), i.e. what the
    UniSRec-lab FDSA/S3-Rec code effectively trained on; off by default.
    """

    def __init__(self, item_text: torch.Tensor, hidden_size: int, random_text: bool = False):
        super().__init__()
        if item_text is None:
            raise ValueError("this model needs the item-text matrix (run with an --encoder)")
        table = item_text.float().clone()
        if random_text:
            table = torch.randn(table.shape) * 0.02
            table[0] = 0
        self.register_buffer("table", table, persistent=False)
        self.linear = nn.Linear(table.size(1), hidden_size)
        nn.init.normal_(self.linear.weight, std=0.02)
        nn.init.zeros_(self.linear.bias)

    @property
    def text_dim(self) -> int:
        return self.table.size(1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Adapted text of `ids` (any shape) -> [..., hidden_size]."""
        return torch.relu(self.linear(self.table[ids]))

    def all_items(self) -> torch.Tensor:
        """Adapted text of every id [n_items, hidden_size]."""
        return torch.relu(self.linear(self.table))
