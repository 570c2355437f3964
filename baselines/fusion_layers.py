"""Blocks shared by the text-side-information baselines (SASRecF, FDSA, DIF-SR, SMLP4Rec).

- `item_features`: per-position features of a per-item function, computed once per item id when the
  catalogue is smaller than the batch (the function is then gathered), else per position;
- `ConcatFusion`: RecBole's `concat_layer` (SASRecF, FDSA): Linear over the concatenated inputs, optionally
  deepened into an MLP;
- `VanillaAttention`: RecBole's `VanillaAttention` (Linear -> ReLU -> Linear(.., 1) energies, softmax over
  the inputs, weighted sum), taking its inputs as a list so that batch-independent inputs (DIF-SR's
  position scores) are projected once and broadcast.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F


def item_features(
    seq: torch.Tensor,
    n_items: int,
    all_items: Callable[[], torch.Tensor],
    of_ids: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """`of_ids(seq)` [.., d] for a deterministic per-item function, computed the cheaper way.

    `all_items()` must return the same function of every id [n_items, d]. When the catalogue has no more
    ids than `seq` has positions (ml-1m: 3,417 ids vs 102,400 positions in a 2048-row batch) the function
    runs once per id and its table is gathered; otherwise it runs per position. Both give the same values
    and, for functions without an `nn.Embedding(padding_idx=0)` lookup (the text adapter), the same
    gradients. A function containing such a lookup gets, through the table, the gradient of padding
    positions in its row 0 as well; use it that way only where padding positions receive exactly zero
    gradient (causal attention models: they feed nothing but masked keys and unread rows).
    """
    return F.embedding(seq, all_items()) if n_items <= seq.numel() else of_ids(seq)


class ConcatFusion(nn.Module):
    """`MLP([x_1 ; … ; x_k])`: concatenated inputs of size `in_size` each -> `out_size`.

    n_layers = 1 is RecBole's `concat_layer` (one Linear, no activation); more layers insert
    Linear(out -> out) layers with a ReLU before each (no activation after the last).
    """

    def __init__(self, n_inputs: int, in_size: int, out_size: int, n_layers: int = 1):
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"a concat fusion needs at least one layer, not {n_layers}")
        self.layers = nn.ModuleList(
            [nn.Linear(n_inputs * in_size, out_size)] + [nn.Linear(out_size, out_size) for _ in range(n_layers - 1)]
        )

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        x = self.layers[0](torch.cat(inputs, dim=-1))
        for layer in self.layers[1:]:
            x = layer(F.relu(x))
        return x


class VanillaAttention(nn.Module):
    """Σ_m softmax_m(w₂·ReLU(W₁·x_m + b₁) + b₂) · x_m over the inputs x_1..x_M [.., n] (broadcastable).

    RecBole's `VanillaAttention(hidden_dim=n, attn_dim)` applied to the stack of the inputs along a new
    axis -2, computed input by input so no stacked copy exists and an input with broadcast (size-1) axes
    has its energy computed at its own size.
    """

    def __init__(self, hidden_dim: int, attn_dim: int):
        super().__init__()
        self.projection = nn.Sequential(nn.Linear(hidden_dim, attn_dim), nn.ReLU(), nn.Linear(attn_dim, 1))

    def weights(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Attention weights [.., M] (broadcast shape of the inputs without their last axis)."""
        energies = torch.broadcast_tensors(*(self.projection(x) for x in inputs))
        return torch.softmax(torch.cat(energies, dim=-1), dim=-1)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        weights = self.weights(inputs)
        out = inputs[0] * weights[..., :1]
        for m, x in enumerate(inputs[1:], start=1):
            out = out + x * weights[..., m : m + 1]
        return out
