"""The genre CNN: a few conv blocks over a log-mel window, global pooling, an embedding, logits."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class ModelArgs:
    """Everything needed to rebuild the network; stored in the checkpoint as `model_args`."""
    n_mels: int = 64
    n_genres: int = 10
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    embed_dim: int = 128
    dropout: float = 0.3

    def asdict(self) -> dict:
        return asdict(self)


class ConvBlock(nn.Module):
    """3x3 conv, batch norm, ReLU, 2x2 max pool (halves time and frequency)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.norm = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.relu(self.norm(self.conv(x))), 2)


class GenreCNN(nn.Module):
    """(batch, n_mels, frames) normalised log-mel -> (logits (batch, n_genres), embedding (batch, embed_dim)).

    Mean and max pooling over what is left of time and frequency make the network indifferent
    to the window length, so inference can use any window of at least 2**len(channels) frames.
    """

    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        chans = [1, *args.channels]
        self.blocks = nn.Sequential(*[ConvBlock(a, b) for a, b in zip(chans[:-1], chans[1:])])
        self.embed = nn.Linear(2 * chans[-1], args.embed_dim)
        self.dropout = nn.Dropout(args.dropout)
        self.head = nn.Linear(args.embed_dim, args.n_genres)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.blocks(x.unsqueeze(1))
        h = torch.cat([h.mean(dim=(2, 3)), h.amax(dim=(2, 3))], dim=1)
        e = F.relu(self.embed(h))
        return self.head(self.dropout(e)), e
