"""The MDCT and its inverse, in torch and batched: a sine-windowed lapped transform with
time-domain aliasing cancellation (Princen & Bradley 1986), so inverse(forward(x)) == x.

`hop` coefficients per frame, frames of 2*hop samples, one frame every hop samples. The basis is
scaled so the transform is orthogonal (a TDAC pair): overlap-adding the windowed inverse frames
cancels the aliasing exactly.
"""
from __future__ import annotations

import math

import torch


class MDCT(torch.nn.Module):
    def __init__(self, hop: int = 256):
        super().__init__()
        self.hop = hop
        n = torch.arange(2 * hop, dtype=torch.float64)
        k = torch.arange(hop, dtype=torch.float64)
        window = torch.sin(math.pi / (2 * hop) * (n + 0.5))  # w[n]^2 + w[n+hop]^2 == 1
        basis = torch.cos(math.pi / hop * (n[:, None] + 0.5 + hop / 2) * (k[None, :] + 0.5))
        basis = basis * window[:, None] * math.sqrt(2.0 / hop)
        self.register_buffer("basis", basis.float(), persistent=False)  # (2*hop, hop)

    def frames_for(self, samples: int) -> int:
        """Frames the forward transform gives for a signal of `samples` samples."""
        return -(-samples // self.hop) + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., samples) -> (..., hop bins, frames). The signal is padded by hop at the start
        and up to a whole frame at the end, so every sample is covered by two frames."""
        hop = self.hop
        lead = x.shape[:-1]
        x = x.reshape(-1, x.shape[-1])
        frames = self.frames_for(x.shape[-1])
        total = (frames + 1) * hop
        x = torch.nn.functional.pad(x, (hop, total - hop - x.shape[-1]))
        blocks = x.unfold(-1, 2 * hop, hop)  # (B, frames, 2*hop)
        coeffs = blocks @ self.basis  # (B, frames, hop)
        return coeffs.transpose(1, 2).reshape(*lead, hop, frames)

    def inverse(self, coeffs: torch.Tensor, samples: int | None = None) -> torch.Tensor:
        """(..., hop bins, frames) -> (..., samples): windowed inverse frames, overlap-added."""
        hop = self.hop
        lead = coeffs.shape[:-2]
        c = coeffs.reshape(-1, hop, coeffs.shape[-1]).transpose(1, 2)  # (B, frames, hop)
        blocks = c @ self.basis.T  # (B, frames, 2*hop)
        frames = blocks.shape[1]
        out = torch.nn.functional.fold(blocks.transpose(1, 2), output_size=(1, (frames + 1) * hop),
                                       kernel_size=(1, 2 * hop), stride=(1, hop))
        y = out.reshape(-1, (frames + 1) * hop)[:, hop:]
        if samples is None:
            samples = (frames - 1) * hop
        return y[:, :samples].reshape(*lead, samples)
