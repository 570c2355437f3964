"""TedRec's sequence-level text-ID fusion in the frequency domain (Eq. 7-11, official `contextual_convolution`)."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.layers.blocks import LearnableFilter
from benchmark.layers.kernels import at_least_float32, rfft_ortho


class FrequencyFusion(nn.Module):
    """F = 2·(C_id·σ(g_id(C_id)) + C_fu·σ(g_fu(C_fu))) from ID embeddings E and adapted text T, both [B, L, d].

    C_id = irfft(rfft(E) ⊙ W) (learnable filter on the ID spectrum), C_fu = irfft(rfft(E) ⊙ rfft(T)) (the
    channel-wise circular convolution of E and T divided by sqrt(L)); all transforms along the sequence
    axis with norm='ortho', no masking. g_id/g_fu are Linear(d→1) with N(0, 0.02²) weights and PyTorch's
    default bias init, as in the official code.

    Ablations of the paper's Section 4.3.1 (defaults reproduce the official model):
      use_id_filter=False   (w/o IF): C_id = E, the pure item embeddings;
      use_text_fusion=False (w/o TF): C_fu = E ⊙ T, the time-domain vector product of text and IDs;
      use_gates=False       (w/o AG): F = C_id + C_fu, direct addition without the 2σ gates.
    """

    def __init__(
        self,
        hidden_size: int,
        max_len: int,
        use_id_filter: bool = True,
        use_text_fusion: bool = True,
        use_gates: bool = True,
    ):
        super().__init__()
        self.use_text_fusion = use_text_fusion
        self.id_filter = LearnableFilter(max_len, hidden_size) if use_id_filter else None
        self.id_gate = nn.Linear(hidden_size, 1) if use_gates else None
        self.fusion_gate = nn.Linear(hidden_size, 1) if use_gates else None
        for gate in (self.id_gate, self.fusion_gate):
            if gate is not None:
                nn.init.normal_(gate.weight, mean=0.0, std=0.02)

    def branches(self, item: torch.Tensor, text: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(C_id, C_fu), each [B, L, d]."""
        item, text = at_least_float32(item), at_least_float32(text)  # FFTs in full precision (also under autocast)
        length = item.size(1)
        if self.id_filter is None and not self.use_text_fusion:
            return item, item * text
        spectrum = rfft_ortho(item, dim=1)
        c_id = item if self.id_filter is None else self.id_filter.filter_spectrum(spectrum, length)
        if not self.use_text_fusion:
            return c_id, item * text
        return c_id, torch.fft.irfft(spectrum * rfft_ortho(text, dim=1), n=length, dim=1, norm="ortho")

    def forward(self, item: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        c_id, c_fu = self.branches(item, text)
        if self.id_gate is None:
            return c_id + c_fu
        return 2 * (c_id * torch.sigmoid(self.id_gate(c_id)) + c_fu * torch.sigmoid(self.fusion_gate(c_fu)))
