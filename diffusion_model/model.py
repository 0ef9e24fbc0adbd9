"""The networks: a class-conditional 1D U-Net over MDCT frames, and the diffusion schedule.

The MDCT bins are the channels and the U-Net convolves over time (frames), which is what makes it
fast on a CPU: a 2D U-Net over the full MDCT image ran at about 0.5x real time here, this shape at
several times real time. Conditioning:
  - diffusion time: sinusoidal embedding -> MLP, added to the genre embedding;
  - genre: a learned embedding with one extra "no genre" class for classifier-free guidance;
  - context (continuation): the known frames and their mask are extra input channels, so a window
    can continue from the overlap of the previous one (trained inpainting);
  - tempo (tempo_cond checkpoints): the clip's BPM, a sinusoidal embedding of log2(BPM) -> MLP whose
    last layer starts at zero (a checkpoint without it loads unchanged and learns it from there);
    0 means "no tempo" (dropped in training like the genre), and adds nothing.
The embeddings are summed and reach every residual block as a FiLM scale and shift.

The head predicts v as gain * x_t + shift, each (B, bins, frames). With the bins folded into a
few hundred channels the network cannot carry every coefficient of x_t through to its output, and
MDCT signs are close to unpredictable, so a plain head learned nothing (v-loss stuck at 1.0, the
loss of a Gaussian). The best denoiser of envelope-shaped noise is exactly an elementwise gain on
x_t set by the local envelope, which a narrow network can give: with the gain head a tiny run's
loss falls at once, and the envelope (what the ear and the genre classifier hear) is learned.
With taps > 1 the gain becomes a short filter along time in each bin, v = sum_j gain_j * x_t
shifted j frames + shift: a steady partial is a slowly turning pattern across an MDCT bin's frames,
which an elementwise gain can only scale as it finds it in the noise, and a filter whose taps the
network sets for each bin and frame can pick out and continue (add_taps grows a checkpoint's head
with the new taps at zero: the same network).

Diffusion: v-prediction on a continuous cosine schedule (alpha = cos(pi/2 t), sigma = sin(pi/2 t)),
sampled by DDIM in model_sampler.py-style code in sample.py.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class UNetConfig:
    bins: int = 256                 # MDCT bins = input channels per frame
    patch: int = 2                  # frames folded into channels by the stem (halves the time axis)
    channels: tuple = (256, 384, 512)
    blocks: int = 2                 # residual blocks per level (encoder; decoder has blocks + 1)
    attention_heads: int = 8        # self-attention at the lowest resolution
    classes: int = 10               # genres; index `classes` is "no genre" (guidance)
    emb_dim: int = 256
    dropout: float = 0.0
    gain_head: bool = True          # predict v = gain * x_t + shift (see UNet1D)
    taps: int = 1                   # frames of x_t each bin's gain reaches (odd; 1: elementwise)
    tempo_cond: bool = False        # a tempo (BPM) embedding beside the genre's

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        d = dict(d)
        d["channels"] = tuple(d["channels"])
        return cls(**d)


def tempo_embedding(bpm: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of log2(BPM) (an octave is one unit: 60 and 120 BPM differ as 90 and
    180), periods from 1/8 to 64 octaves, so nearby tempi embed nearby."""
    half = dim // 2
    periods = torch.exp(torch.linspace(math.log(0.125), math.log(64.0), half, device=bpm.device))
    args = 2 * math.pi * torch.log2(bpm.float().clamp_min(1.0))[:, None] / periods[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of continuous diffusion time t in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = 1000.0 * t[:, None].float() * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, c // 4), c)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int, dropout: float):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv1d(cin, cout, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * cout)
        self.norm2, self.conv2 = _norm(cout), nn.Conv1d(cout, cout, 3, padding=1)
        self.dropout = nn.Dropout(dropout)
        self.skip = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.film(emb)[:, :, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.dropout(F.silu(h)))
        return h + self.skip(x)


class Attention(nn.Module):
    def __init__(self, c: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = _norm(c)
        self.qkv = nn.Conv1d(c, 3 * c, 1)
        self.out = nn.Conv1d(c, c, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x, emb=None):
        b, c, t = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, t).unbind(1)
        h = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.out(h.transpose(-1, -2).reshape(b, c, t))


class UNet1D(nn.Module):
    """(x_t, context, mask, t, genre[, tempo]) -> v, all shaped (B, bins, frames); frames % (patch * 2**(levels-1)) == 0."""

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        self.cfg = cfg
        c0, p, e = cfg.channels[0], cfg.patch, cfg.emb_dim
        self.time_mlp = nn.Sequential(nn.Linear(e, e * 2), nn.SiLU(), nn.Linear(e * 2, e))
        self.genre = nn.Embedding(cfg.classes + 1, e)
        if cfg.tempo_cond:
            self.tempo_mlp = nn.Sequential(nn.Linear(e, e), nn.SiLU(), nn.Linear(e, e))
            nn.init.zeros_(self.tempo_mlp[-1].weight)
            nn.init.zeros_(self.tempo_mlp[-1].bias)
        self.stem = nn.Conv1d((2 * cfg.bins + 1) * p, c0, 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, c = [c0], c0
        for i, ch in enumerate(cfg.channels):
            level = nn.ModuleList()
            for _ in range(cfg.blocks):
                level.append(ResBlock(c, ch, e, cfg.dropout))
                c = ch
                skips.append(c)
            self.down.append(level)
            if i < len(cfg.channels) - 1:
                self.downsample.append(nn.Conv1d(c, c, 4, stride=2, padding=1))
                skips.append(c)
        self.mid = nn.ModuleList([ResBlock(c, c, e, cfg.dropout), Attention(c, cfg.attention_heads),
                                  ResBlock(c, c, e, cfg.dropout)])
        self.down_attn = Attention(cfg.channels[-1], cfg.attention_heads)
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, ch in reversed(list(enumerate(cfg.channels))):
            level = nn.ModuleList()
            for _ in range(cfg.blocks + 1):
                level.append(ResBlock(c + skips.pop(), ch, e, cfg.dropout))
                c = ch
            self.up.append(level)
            if i > 0:
                self.upsample.append(nn.ConvTranspose1d(c, c, 4, stride=2, padding=1))
        self.up_attn = Attention(cfg.channels[-1], cfg.attention_heads)
        if cfg.taps < 1 or cfg.taps % 2 == 0 or (cfg.taps > 1 and not cfg.gain_head):
            raise ValueError(f"taps must be an odd number of frames with the gain head, got {cfg.taps}")
        outs = cfg.bins * p * (cfg.taps + 1 if cfg.gain_head else 1)
        self.head = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv1d(c, outs, 3, padding=1))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    @property
    def multiple(self) -> int:
        return self.cfg.patch * 2 ** (len(self.cfg.channels) - 1)

    def _fold(self, x):  # (B, C, T) -> (B, C*p, T/p)
        b, c, t = x.shape
        p = self.cfg.patch
        return x.reshape(b, c, t // p, p).permute(0, 1, 3, 2).reshape(b, c * p, t // p)

    def _unfold(self, x):  # (B, C*p, T/p) -> (B, C, T)
        b, cp, t = x.shape
        p = self.cfg.patch
        return x.reshape(b, cp // p, p, t).permute(0, 1, 3, 2).reshape(b, cp // p, t * p)

    def forward(self, x, context, mask, t, genre, tempo=None, guidance=None):
        """v for each condition. x, context and mask may have a batch of one while t, genre (and
        tempo) have B: the same noisy frames under B conditions (classifier-free guidance's
        branches). The stem, which sees only the frames, then runs once for all of them.

        guidance w, with two conditions (given, then none): the guided v = v_none + w (v_given -
        v_none) alone, batch 1. The head is a convolution of the trunk's activations, and v is
        linear in its output, so the branches are mixed before the head and it runs once: the same
        v as mixing after it. The stem and the head are 19 % each of a guided call's multiply-adds
        at the shipped size; each run once, a guided call does a fifth fewer of them, but takes only
        about 5 % less time on 2 cores: those two convolutions are bound by reading their weights."""
        emb = self.time_mlp(timestep_embedding(t, self.cfg.emb_dim)) + self.genre(genre)
        if self.cfg.tempo_cond and tempo is not None:   # tempo (B,) BPM; 0: none given
            known = (tempo > 0).to(emb.dtype)[:, None]
            emb = emb + known * self.tempo_mlp(tempo_embedding(tempo, self.cfg.emb_dim))
        h = self.stem(self._fold(torch.cat([x, context * mask, mask], dim=1))).expand(len(emb), -1, -1)
        hs = [h]
        for i, level in enumerate(self.down):
            for block in level:
                h = block(h, emb)
                hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
                hs.append(h)
        h = self.down_attn(h)
        for layer in self.mid:
            h = layer(h, emb)
        for i, level in enumerate(self.up):
            for block in level:
                h = block(torch.cat([h, hs.pop()], dim=1), emb)
            if i == 0:
                h = self.up_attn(h)
            if i < len(self.upsample):
                h = self.upsample[i](h)
        norm, act, conv = self.head
        a = act(norm(h))
        if guidance is not None:
            a = a[1:] + guidance * (a[:1] - a[1:])
        out = self._unfold(conv(a))
        if not self.cfg.gain_head:
            return out
        if self.cfg.taps == 1:
            gain, shift = out.chunk(2, dim=1)
            return gain * x + shift
        *gains, shift = out.chunk(self.cfg.taps + 1, dim=1)
        r = self.cfg.taps // 2      # gains[j] weighs x_t j - r frames on, in the same bin
        padded = F.pad(x, (r, r))
        frames = x.shape[-1]
        for j, gain in enumerate(gains):
            shift = shift + gain * padded[..., j: j + frames]
        return shift


# -- the schedule (continuous time, cosine, v-prediction) -------------------------------------

def alpha_sigma(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Signal and noise scales at time t in [0, 1]; alpha^2 + sigma^2 = 1."""
    angle = t * math.pi / 2
    return torch.cos(angle), torch.sin(angle)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# -- widening a trained network ---------------------------------------------------------------

@torch.no_grad()
def widen(old: UNet1D, new: UNet1D, *, noise: float = 0.01, seed: int = 0) -> None:
    """Load `old`'s learned function into `new`, whose levels are each as wide or twice as wide
    (the same shape otherwise; the lowest level, with the attention, unchanged). Net2Net-style: a
    doubled level holds each channel twice, side by side, and every layer reading it takes half of
    the old weight from each copy, so the sum is what it was. From 128 channels up GroupNorm keeps
    its 32 groups, and a group of doubled channels has the same mean and variance as before; the
    decoder blocks whose input joins a doubled skip to an undoubled level regroup (as does every
    norm of a narrower level, whose group count follows its width), so the network starts close
    to, not exactly at, the old one. The copies' input weights get `noise` (relative) so they can part."""
    oc, nc = old.cfg.channels, new.cfg.channels
    if (len(oc) != len(nc) or oc[-1] != nc[-1] or any(n not in (o, 2 * o) for o, n in zip(oc, nc))
            or replace(old.cfg, channels=nc) != new.cfg):
        raise ValueError(f"cannot widen channels {list(oc)} to {list(nc)}: each level must stay or "
                         "double, the lowest stay, and the rest of the shape match")
    g = torch.Generator().manual_seed(seed)
    maps = [torch.arange(n) // (n // o) for o, n in zip(oc, nc)]
    same = lambda c: torch.arange(c)

    def parted(map_):  # True for the second copy of a doubled channel
        return torch.cat([torch.tensor([False]), map_[1:] == map_[:-1]])

    def conv(n, o, in_map, out_map, transposed=False):
        w = o.weight
        counts = torch.bincount(in_map, minlength=w.shape[0 if transposed else 1]).to(w.dtype)
        if transposed:   # (in, out, k)
            w = (w / counts[:, None, None])[in_map][:, out_map]
            copy = parted(out_map)[None, :, None]
        else:            # (out, in, k)
            w = (w / counts[None, :, None])[out_map][:, in_map]
            copy = parted(out_map)[:, None, None]
        jitter = torch.randn(w.shape, generator=g) * noise * o.weight.std()
        n.weight.copy_(w + jitter * copy)
        if o.bias is not None:
            n.bias.copy_(o.bias[out_map])

    def norm(n, o, map_):
        n.weight.copy_(o.weight[map_])
        n.bias.copy_(o.bias[map_])

    def block(n: ResBlock, o: ResBlock, in_map, out_map):
        norm(n.norm1, o.norm1, in_map)
        conv(n.conv1, o.conv1, in_map, out_map)
        cout = o.conv1.out_channels
        film_map = torch.cat([out_map, out_map + cout])
        n.film.weight.copy_(o.film.weight[film_map])
        n.film.bias.copy_(o.film.bias[film_map])
        norm(n.norm2, o.norm2, out_map)
        conv(n.conv2, o.conv2, out_map, out_map)
        if isinstance(n.skip, nn.Conv1d):       # the old skip may be an identity: as a 1x1 conv
            skip = o.skip if isinstance(o.skip, nn.Conv1d) else _identity_conv(o.conv1.in_channels)
            conv(n.skip, skip, in_map, out_map)
        elif isinstance(o.skip, nn.Conv1d):
            raise ValueError("cannot widen a block whose skip convolution would become an identity")

    def joined(a, a_old, b):  # the map of torch.cat([a, b]) when a had a_old channels before
        return torch.cat([a, b + a_old])

    for name in ("time_mlp", "genre", "tempo_mlp", "mid", "down_attn", "up_attn"):
        if hasattr(old, name):
            getattr(new, name).load_state_dict(getattr(old, name).state_dict())
    conv(new.stem, old.stem, same(old.stem.in_channels), maps[0])
    h, skips = maps[0], [(maps[0], oc[0])]
    for i, (nl, ol) in enumerate(zip(new.down, old.down)):
        for nb, ob in zip(nl, ol):
            block(nb, ob, h, maps[i])
            h = maps[i]
            skips.append((h, oc[i]))
        if i < len(new.downsample):
            conv(new.downsample[i], old.downsample[i], h, h)
            skips.append((h, oc[i]))
    h_old = oc[-1]
    for j, (nl, ol) in enumerate(zip(new.up, old.up)):
        i = len(oc) - 1 - j
        for nb, ob in zip(nl, ol):
            s, _ = skips.pop()
            block(nb, ob, joined(h, h_old, s), maps[i])
            h, h_old = maps[i], oc[i]
        if j < len(new.upsample):
            conv(new.upsample[j], old.upsample[j], h, h, transposed=True)
    norm(new.head[0], old.head[0], h)
    conv(new.head[2], old.head[2], h, same(old.head[2].out_channels))


def _identity_conv(c: int) -> nn.Conv1d:
    conv = nn.Conv1d(c, c, 1)
    nn.init.eye_(conv.weight[:, :, 0])
    nn.init.zeros_(conv.bias)
    return conv


@torch.no_grad()
def add_taps(old: UNet1D, new: UNet1D) -> None:
    """Load `old` into `new`, the same network with a wider gain filter (cfg.taps): the old gain
    becomes the centre tap, the new taps start at zero, so `new` computes what `old` did."""
    if replace(new.cfg, taps=old.cfg.taps) != old.cfg or new.cfg.taps < old.cfg.taps:
        raise ValueError(f"cannot grow taps {old.cfg.taps} to {new.cfg.taps} on another network shape")
    state = old.state_dict()
    head_w, head_b = state.pop("head.2.weight"), state.pop("head.2.bias")
    missing, unexpected = new.load_state_dict(state, strict=False)
    assert sorted(missing) == ["head.2.bias", "head.2.weight"] and not unexpected, (missing, unexpected)
    block = old.cfg.bins * old.cfg.patch          # head rows per chunk: gain taps..., then shift
    gains = old.cfg.taps * block
    first = (new.cfg.taps - old.cfg.taps) // 2 * block   # the old taps sit in the middle of the new
    for param, old_rows in ((new.head[2].weight, head_w), (new.head[2].bias, head_b)):
        param.zero_()
        param[first:first + gains] = old_rows[:gains]
        param[new.cfg.taps * block:] = old_rows[gains:]
