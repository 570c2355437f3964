"""SMLP4Rec as the released code (`Applied-Machine-Learning-Lab/SMLP4Rec: smlprec.py`, RecBole 1.0), with
the item text as its one feature channel (digest §11).

Forward pass (digest §11.c):
1. `X = stack(ItemEmb[seq], Adapter(Text[seq]))` -> [B, C=2, L, d]: channels ID and text; no position
   embedding, no input LayerNorm or dropout.
2. ONE SMLP block applied `n_layers` times (shared weights, no residual, as the released code):
   `Xn = LN_d(X)` (PyTorch's default eps 1e-5, as the code's `nn.LayerNorm(hidden)`), then
   `X <- M_C(Xn) + M_L(Xn) + M_d(Xn)` where each mixer is an MLP along one axis (channels, sequence
   slots, hidden units): Linear(n -> 3n, no bias) -> GELU -> Dropout -> Linear(3n -> n, no bias) -> Dropout.
   The sequence mixer is non-causal and position-specific over all L = 50 slots, padding included (the
   model has no mask; right-padded prefixes only have padding after the read-out slot).
3. Channel 0 (ID) at row len−1 -> LayerNorm(eps = `layer_norm_eps`) -> `s`; logits `s · ItemEmbᵀ`.

Choices (digest §11.h/§11.k, no published hyper-parameters):
- text enters as one extra channel through the shared `TextAdapter` (Linear text_dim -> d + ReLU), the
  authors' SASRecF description applied to the channel layout;
- hidden_size 300 (TedRec's d, and the 2.4x-SASRec epoch time they report fits d = 300 with two channels;
  grid {64, 300}), n_layers 2 (grid {1, 2, 3}), hidden_dropout_prob 0.5 (grid {0.2, 0.5}; the attention
  baselines' value), expansion factor 3 (hard-coded in the code; exposed as `expansion_factor`).
- preset `official`: the one value the released code fixes, expansion factor 3 (smlprec.py:100). The
  repository publishes no configuration ("Code is only for reference") and reads every other value from
  a RecBole config it does not ship, so the preset leaves the rest at the defaults.

The mixers run as matrix products along their axis without transposed copies; the last application of
the block computes only channel 0 at row len−1, and the one before it only what that needs (channel 0
everywhere, the text channel at row len−1), the same values for about half the work.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from baselines.fusion_layers import item_features
from baselines.text_adapter import TextAdapter
from benchmark.layers.blocks import recbole_init_
from benchmark.layers.kernels import dropout
from benchmark.model import DatasetInfo, SequentialModel
from benchmark.registry import SearchParam, register_model

SMLP4REC_DEFAULTS = {
    "hidden_size": 300,
    "n_layers": 2,
    "hidden_dropout_prob": 0.5,
    "expansion_factor": 3,
    "layer_norm_eps": 1e-12,
    "initializer_range": 0.02,
    "learning_rate": 1e-3,
}
SMLP4REC_OFFICIAL = {"expansion_factor": (3, "Applied-Machine-Learning-Lab/SMLP4Rec@72287e5 smlprec.py:100")}


class AxisMLP(nn.Module):
    """Linear(n -> e·n, no bias) -> GELU -> Dropout -> Linear(e·n -> n, no bias) -> Dropout along one axis."""

    def __init__(self, size: int, expansion: int):
        super().__init__()
        self.fc1 = nn.Linear(size, expansion * size, bias=False)
        self.fc2 = nn.Linear(expansion * size, size, bias=False)


class SMLPBlock(nn.Module):
    """The released `SMLP` block: channel, sequence and hidden mixers on LN_d(X), summed (no residual)."""

    def __init__(self, n_channels: int, max_len: int, hidden_size: int, expansion: int, dropout_prob: float):
        super().__init__()
        self.channel = AxisMLP(n_channels, expansion)
        self.sequence = AxisMLP(max_len, expansion)
        self.hidden = AxisMLP(hidden_size, expansion)
        self.norm = nn.LayerNorm(hidden_size)  # default eps, as the released code
        self.dropout_prob = dropout_prob

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.dropout_prob, self.training)

    def _mix_left(self, mlp: AxisMLP, x: torch.Tensor) -> torch.Tensor:
        """MLP along axis -2 of x [.., n, m] (weights act from the left)."""
        inner = self._drop(F.gelu(torch.einsum("kn,...nm->...km", mlp.fc1.weight, x)))
        return self._drop(torch.einsum("kn,...nm->...km", mlp.fc2.weight, inner))

    def _mix_right(self, mlp: AxisMLP, x: torch.Tensor) -> torch.Tensor:
        """MLP along the last axis of x."""
        return self._drop(F.linear(self._drop(F.gelu(F.linear(x, mlp.fc1.weight))), mlp.fc2.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, C, L, d] -> [B, C, L, d]."""
        batch, n_channels, length, hidden = x.shape
        xn = self.norm(x)
        channel = self._mix_left(self.channel, xn.view(batch, n_channels, length * hidden)).view_as(x)
        sequence = self._mix_left(self.sequence, xn)
        return channel + sequence + self._mix_right(self.hidden, xn)

    def partial(self, x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """forward(x) where the next `read` needs it: channel 0 at every row [B, L, d] and every channel
        at row rows[b] [B, C, d]. Channels 1.. skip the hidden mixer and the sequence mixer's second
        Linear everywhere but at `rows`."""
        batch, n_channels, length, hidden = x.shape
        xn = self.norm(x)
        xn_rows = _at_rows(xn, rows)  # [B, C, d]
        channel_inner = self._drop(
            F.gelu(torch.einsum("kc,bcn->bkn", self.channel.fc1.weight, xn.view(batch, n_channels, -1)))
        )
        channel_0 = self._drop(torch.einsum("k,bkn->bn", self.channel.fc2.weight[0], channel_inner)).view(
            batch, length, hidden
        )
        channel_rest = self._drop(
            torch.einsum(
                "ck,bkd->bcd",
                self.channel.fc2.weight[1:],
                _at_rows(channel_inner.view(batch, -1, length, hidden), rows),
            )
        )
        sequence_0 = self._mix_left(self.sequence, xn[:, 0])
        sequence_inner = self._drop(F.gelu(torch.einsum("kl,bcld->bckd", self.sequence.fc1.weight, xn[:, 1:])))
        sequence_rest = self._drop(torch.einsum("bk,bckd->bcd", self.sequence.fc2.weight[rows], sequence_inner))
        out_0 = channel_0 + sequence_0 + self._mix_right(self.hidden, xn[:, 0])
        out_rest = channel_rest + sequence_rest + self._mix_right(self.hidden, xn_rows[:, 1:])
        return out_0, torch.cat([_at_rows(out_0.unsqueeze(1), rows), out_rest], dim=1)

    def read(self, x_0: torch.Tensor, x_rows: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """forward(x)[b, 0, rows[b]] [B, d] from x's channel 0 `x_0` [B, L, d] and all channels at the read
        rows `x_rows` [B, C, d] (all that output depends on)."""
        xn_0, xn_rows = self.norm(x_0), self.norm(x_rows)
        channel_inner = self._drop(F.gelu(torch.einsum("kc,bcd->bkd", self.channel.fc1.weight, xn_rows)))
        channel = self._drop(torch.einsum("k,bkd->bd", self.channel.fc2.weight[0], channel_inner))
        sequence_inner = self._drop(F.gelu(torch.einsum("kl,bld->bkd", self.sequence.fc1.weight, xn_0)))
        sequence = self._drop(torch.einsum("bk,bkd->bd", self.sequence.fc2.weight[rows], sequence_inner))
        return channel + sequence + self._mix_right(self.hidden, xn_rows[:, 0])


def _at_rows(x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x[b, :, rows[b]] for x [B, C, L, d] -> [B, C, d]."""
    return x.gather(2, rows.view(-1, 1, 1, 1).expand(-1, x.size(1), 1, x.size(-1))).squeeze(2)


@register_model(
    "SMLP4Rec",
    defaults=SMLP4REC_DEFAULTS,
    presets={"official": SMLP4REC_OFFICIAL},
    search_space={
        "hidden_size": SearchParam("categorical", choices=(64, 300)),
        "n_layers": SearchParam("categorical", choices=(1, 2, 3)),
        "hidden_dropout_prob": SearchParam("categorical", choices=(0.2, 0.5)),
    },
    needs_text=True,
)
class SMLP4Rec(SequentialModel):
    """SMLP4Rec: a weight-shared tri-axis MLP mixer over [ID, text] channels, read at channel 0."""

    def __init__(self, config: dict, info: DatasetInfo):
        super().__init__(config, info)
        hidden = config["hidden_size"]
        self.n_layers = config["n_layers"]
        if self.n_layers < 1:
            raise ValueError(f"SMLP4Rec needs n_layers >= 1, not {self.n_layers}")
        self.item_embedding = nn.Embedding(info.n_items, hidden, padding_idx=0)
        self.text = TextAdapter(info.item_text, hidden)
        self.block = SMLPBlock(2, info.max_len, hidden, config["expansion_factor"], config["hidden_dropout_prob"])
        self.layer_norm = nn.LayerNorm(hidden, eps=config["layer_norm_eps"])
        recbole_init_(self, config["initializer_range"])

    def channels(self, seq: torch.Tensor) -> torch.Tensor:
        """[B, 2, L, d]: ID embeddings and adapted text."""
        text = item_features(seq, self.info.n_items, self.text.all_items, self.text)
        return torch.stack([self.item_embedding(seq), text], dim=1)

    def hidden_states(self, seq: torch.Tensor) -> torch.Tensor:
        """LayerNorm of channel 0 after the last block at every position [B, L, d] (encode reads row len−1)."""
        x = self.channels(seq)
        for _ in range(self.n_layers):
            x = self.block(x)
        return self.layer_norm(x[:, 0])

    def encode(self, seq: torch.Tensor, length: torch.Tensor) -> torch.Tensor:
        rows = (length - 1).clamp(min=0)
        x = self.channels(seq)
        for _ in range(self.n_layers - 2):
            x = self.block(x)
        x_0, x_rows = self.block.partial(x, rows) if self.n_layers > 1 else (x[:, 0], _at_rows(x, rows))
        return self.layer_norm(self.block.read(x_0, x_rows, rows))

    def item_embeddings(self) -> torch.Tensor:
        return self.item_embedding.weight
