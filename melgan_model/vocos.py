"""A Vocos vocoder (Siuzdak 2023): ConvNeXt blocks at the mel frame rate and an inverse-STFT head.

Where MelGAN upsamples by 256 with transposed convolutions and runs its residual stacks at the
audio rate, Vocos keeps every layer at the frame rate (86 frames a second here) and predicts the
STFT of the audio, magnitude and phase, which one inverse FFT turns into samples. The compute per
second of audio is about an order of magnitude lower, so it trains and runs fast on a CPU.

Shapes: normalised mel (B, n_mels, frames) -> audio (B, (frames - 1) * hop), frames = n // hop + 1
(the centred STFT of MelConfig), so `forward(mel, n)` returns exactly n samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

KIND = "vocos"
"""The value of a checkpoint's "vocoder_kind" when its vocoder is this one (absent: MelGAN)."""


@dataclass
class VocosConfig:
    n_mels: int = 80
    dim: int = 256
    intermediate: int = 768
    layers: int = 6
    n_fft: int = 1024
    hop: int = 256


class _ConvNeXtBlock(nn.Module):
    """Depthwise conv (k 7) -> LayerNorm -> pointwise MLP (GELU) -> layer scale, residual."""

    def __init__(self, dim: int, intermediate: int, scale: float):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pw1, self.pw2 = nn.Linear(dim, intermediate), nn.Linear(intermediate, dim)
        self.gamma = nn.Parameter(torch.full((dim,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.dwconv(x).transpose(1, 2)
        h = self.gamma * self.pw2(F.gelu(self.pw1(self.norm(h))))
        return x + h.transpose(1, 2)


class Vocos(nn.Module):
    """Normalised mel (B, n_mels, frames) -> audio (B, n) through magnitude and phase of its STFT."""

    def __init__(self, cfg: VocosConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Conv1d(cfg.n_mels, cfg.dim, 7, padding=3)
        self.norm = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.blocks = nn.ModuleList(_ConvNeXtBlock(cfg.dim, cfg.intermediate, 1.0 / cfg.layers)
                                    for _ in range(cfg.layers))
        self.final = nn.LayerNorm(cfg.dim, eps=1e-6)
        self.head = nn.Linear(cfg.dim, cfg.n_fft + 2)
        self.register_buffer("window", torch.hann_window(cfg.n_fft), persistent=False)

    @property
    def hop(self) -> int:
        return self.cfg.hop

    def spectrum(self, mel: torch.Tensor) -> torch.Tensor:
        """The complex STFT (B, n_fft // 2 + 1, frames) the network predicts."""
        h = self.norm(self.embed(mel).transpose(1, 2)).transpose(1, 2)
        for block in self.blocks:
            h = block(h)
        out = self.head(self.final(h.transpose(1, 2))).transpose(1, 2)
        log_mag, phase = out.chunk(2, dim=1)
        mag = torch.exp(log_mag).clamp(max=1e2)
        return torch.polar(mag, phase)

    def forward(self, mel: torch.Tensor, n_samples: int | None = None) -> torch.Tensor:
        n = (mel.shape[-1] - 1) * self.cfg.hop if n_samples is None else n_samples
        return torch.istft(self.spectrum(mel), self.cfg.n_fft, self.cfg.hop, window=self.window,
                           center=True, length=n)


__all__ = ["KIND", "Vocos", "VocosConfig"]
