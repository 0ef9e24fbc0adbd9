"""MEL-GAN networks: log-mel features, a genre-conditioned mel generator and its discriminator,
and a MelGAN vocoder (Kumar et al. 2019) with multi-scale discriminators and an STFT loss.

Shapes: audio (B, n) float32 in [-1, 1] at MelConfig.sr; log-mel (B, n_mels, frames) with
frames = n // hop + 1 (centred STFT); normalised mel is the log-mel mapped per band into [-1, 1].
"""
from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm, weight_norm

LOG_FLOOR = 1e-5
"""Added to the mel amplitude before the log: silence maps to log(1e-5) ≈ -11.5, not -inf."""


# -- audio <-> log-mel ------------------------------------------------------------------------
@dataclass(frozen=True)
class MelConfig:
    """How audio becomes a log-mel; stored in the checkpoint so sampling matches training.

    The mel is of the STFT *amplitude* (power 1), Slaney scale and area norm, like
    librosa.feature.melspectrogram(power=1.0); log is natural: log(max(mel, LOG_FLOOR)).
    """
    sr: int = 22050
    n_fft: int = 1024
    hop: int = 256
    n_mels: int = 80
    fmin: float = 0.0
    fmax: float = 11025.0

    def asdict(self) -> dict:
        return asdict(self)


class LogMel(nn.Module):
    """Audio (B, n) -> natural-log amplitude mel (B, n_mels, n // hop + 1); differentiable."""

    def __init__(self, mel: MelConfig):
        super().__init__()
        import librosa
        self.mel = mel
        basis = librosa.filters.mel(sr=mel.sr, n_fft=mel.n_fft, n_mels=mel.n_mels,
                                    fmin=mel.fmin, fmax=mel.fmax)
        self.register_buffer("basis", torch.from_numpy(basis).float(), persistent=False)
        self.register_buffer("window", torch.hann_window(mel.n_fft), persistent=False)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(y, self.mel.n_fft, self.mel.hop, window=self.window, center=True,
                          pad_mode="reflect", return_complex=True).abs()
        return torch.log(torch.clamp(self.basis @ spec, min=LOG_FLOOR))


@dataclass
class MelNorm:
    """Per-band affine map of log-mel into [-1, 1]: lo -> -1, hi -> +1, clipped outside.

    lo and hi are per-band percentiles of the training mels, kept in the checkpoint.
    """
    lo: np.ndarray
    hi: np.ndarray

    @classmethod
    def fit(cls, logmels: np.ndarray, *, low_pct: float = 1.0, high_pct: float = 99.9) -> MelNorm:
        """logmels: (n_mels, frames) concatenated training mels."""
        lo = np.percentile(logmels, low_pct, axis=1).astype(np.float32)
        hi = np.percentile(logmels, high_pct, axis=1).astype(np.float32)
        return cls(lo, np.maximum(hi, lo + 1e-3))

    def normalise(self, logmel):
        """log-mel (..., n_mels, frames) -> [-1, 1]; numpy or torch in, same kind out."""
        lo, hi = self._like(logmel)
        x = 2 * (logmel - lo) / (hi - lo) - 1
        return x.clamp(-1, 1) if torch.is_tensor(x) else np.clip(x, -1, 1)

    def denormalise(self, x):
        """[-1, 1] (..., n_mels, frames) -> log-mel; the inverse of normalise inside [lo, hi]."""
        lo, hi = self._like(x)
        return (x + 1) / 2 * (hi - lo) + lo

    def _like(self, x):
        lo, hi = self.lo[:, None], self.hi[:, None]
        if torch.is_tensor(x):
            return torch.from_numpy(lo).to(x), torch.from_numpy(hi).to(x)
        return lo, hi

    def state(self) -> dict:
        return {"lo": torch.from_numpy(self.lo), "hi": torch.from_numpy(self.hi)}

    @classmethod
    def from_state(cls, state: dict) -> MelNorm:
        return cls(state["lo"].float().numpy(), state["hi"].float().numpy())


# -- the beat clock ------------------------------------------------------------------------------
CLOCK_RATES = (0.25, 0.5, 1.0, 2.0)
"""Cycles per beat of the clock's sine pairs: the bar of four, the half bar, the beat, the eighth."""


def beat_clock(phase: torch.Tensor) -> torch.Tensor:
    """Beat phase (B, T) in beats (1.0 = one beat later) -> (B, 2 * len(CLOCK_RATES), T): a sine
    and cosine per rate. A generator given it can put its onsets on the beat; a discriminator given
    it can tell whether they are."""
    angle = 2 * math.pi * phase.unsqueeze(1) * torch.tensor(CLOCK_RATES, dtype=phase.dtype)[None, :, None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)


def phase_from_beats(beats: np.ndarray, frames: int, frame_seconds: float) -> np.ndarray:
    """Beat times (s) -> the beat phase at each of `frames` frames: beat k is phase k, linear in
    between, and continued at the median beat period before the first and after the last beat.
    Fewer than two beats: 120 BPM from 0."""
    t = np.arange(frames) * frame_seconds
    beats = np.asarray(beats, dtype=np.float64)
    if len(beats) < 2:
        return (t * 2.0).astype(np.float32)
    period = float(np.median(np.diff(beats)))
    inside = np.interp(t, beats, np.arange(len(beats), dtype=np.float64))
    before, after = t < beats[0], t > beats[-1]
    inside[before] = (t[before] - beats[0]) / period
    inside[after] = len(beats) - 1 + (t[after] - beats[-1]) / period
    return inside.astype(np.float32)


def phase_at_tempo(bpm: float, frames: int, frame_seconds: float, start: float = 0.0) -> np.ndarray:
    """A steady clock: `start` + bpm / 60 beats per second, at each of `frames` frames."""
    return (start + np.arange(frames) * frame_seconds * bpm / 60.0).astype(np.float32)


# -- the mel generator and its discriminator ------------------------------------------------------
@dataclass
class MelGenConfig:
    """A generator convolutional in time: any number of frames, no seams between windows."""
    n_mels: int = 80
    n_genres: int = 10
    z_local: int = 32        # noise channels per latent step (one step = 2**len(channels) frames)
    z_global: int = 32       # one noise vector per track, broadcast over time (its "style")
    embed: int = 32          # genre embedding size
    channels: tuple = (256, 192, 128, 128)   # one ×2 upsampling block each
    d_channels: tuple = (128, 256, 256, 384)
    clock: bool = False      # a beat clock (beat_clock) enters every generator block and the 1-D discriminators

    @property
    def clock_channels(self) -> int:
        return 2 * len(CLOCK_RATES) if self.clock else 0

    @property
    def frames_per_step(self) -> int:
        return 2 ** len(self.channels)


class _CondBlock(nn.Module):
    """×2 nearest upsampling, two convolutions, a genre bias (FiLM shift) and a residual path."""

    def __init__(self, c_in: int, c_out: int, embed: int, clock: int = 0):
        super().__init__()
        self.conv1 = nn.Conv1d(c_in, c_out, 5, padding=2)
        self.conv2 = nn.Conv1d(c_out, c_out, 3, padding=2, dilation=2)
        self.film = nn.Linear(embed, 2 * c_out)
        self.skip = nn.Conv1d(c_in, c_out, 1)
        self.clock = nn.Conv1d(clock, c_out, 1) if clock else None
        if self.clock is not None:  # starts silent: a generator grown from one without a clock is unchanged
            nn.init.zeros_(self.clock.weight)
            nn.init.zeros_(self.clock.bias)

    def forward(self, h: torch.Tensor, e: torch.Tensor, clock: torch.Tensor | None = None) -> torch.Tensor:
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        scale, shift = self.film(e).unsqueeze(-1).chunk(2, dim=1)
        x = F.leaky_relu(self.conv1(F.leaky_relu(h, 0.2)), 0.2)
        x = x * (1 + scale) + shift
        if self.clock is not None:
            x = x + self.clock(clock)
        return self.skip(h) + self.conv2(x)


class MelGenerator(nn.Module):
    """(genre (B,), local noise (B, z_local, L), global noise (B, z_global)) -> mel in [-1, 1]
    of shape (B, n_mels, L * frames_per_step)."""

    def __init__(self, cfg: MelGenConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.n_genres, cfg.embed)
        self.inp = nn.Conv1d(cfg.z_local + cfg.z_global + cfg.embed, cfg.channels[0], 3, padding=1)
        chans = (cfg.channels[0],) + tuple(cfg.channels)
        self.blocks = nn.ModuleList(_CondBlock(a, b, cfg.embed, cfg.clock_channels)
                                    for a, b in itertools.pairwise(chans))
        self.out = nn.Conv1d(chans[-1], cfg.n_mels, 7, padding=3)

    def forward(self, genre: torch.Tensor, z: torch.Tensor, z_global: torch.Tensor,
                clock: torch.Tensor | None = None) -> torch.Tensor:
        """clock: beat_clock() of the output frames (B, clock_channels, z frames * frames_per_step),
        for a generator with a clock; ignored by one without."""
        e = self.embed(genre)
        steps = z.shape[-1]
        frames = steps * self.cfg.frames_per_step
        if self.cfg.clock and (clock is None or clock.shape[-1] < frames):
            raise ValueError(f"this generator draws on a beat clock: give beat_clock() of {frames} frames")
        cond = torch.cat([z_global, e], dim=1).unsqueeze(-1).expand(-1, -1, steps)
        h = self.inp(torch.cat([z, cond], dim=1))
        for i, block in enumerate(self.blocks):
            stride = 2 ** (len(self.blocks) - 1 - i)         # this block's output frame = stride output frames
            h = block(h, e, clock[..., :frames:stride] if self.cfg.clock else None)
        return torch.tanh(self.out(F.leaky_relu(h, 0.2)))

    def noise(self, batch: int, frames: int, generator: torch.Generator | None = None,
              truncation: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Seeded noise for at least `frames` output frames; the caller crops."""
        steps = max(1, math.ceil(frames / self.cfg.frames_per_step))
        z = torch.randn(batch, self.cfg.z_local, steps, generator=generator) * truncation
        zg = torch.randn(batch, self.cfg.z_global, generator=generator) * truncation
        return z, zg


class MelDiscriminator(nn.Module):
    """Spectral-norm 1-D convolutions over time (mel bands as channels), a projection term for the
    genre at every output patch, and an auxiliary genre head on the pooled features (AC-GAN)."""

    def __init__(self, cfg: MelGenConfig):
        super().__init__()
        layers, c = [], cfg.n_mels + cfg.clock_channels
        for i, c_out in enumerate(cfg.d_channels):
            stride = 1 if i == 0 else 2
            layers.append(spectral_norm(nn.Conv1d(c, c_out, 5 if i == 0 else 4, stride=stride,
                                                  padding=2 if i == 0 else 1)))
            c = c_out
        self.layers = nn.ModuleList(layers)
        self.out = spectral_norm(nn.Conv1d(c, 1, 3, padding=1))
        self.project = spectral_norm(nn.Embedding(cfg.n_genres, c))
        self.classify = spectral_norm(nn.Linear(c, cfg.n_genres))

    def forward(self, mel: torch.Tensor, genre: torch.Tensor, clock: torch.Tensor | None = None):
        """-> (patch logits (B, T'), genre logits (B, n_genres), features per layer)."""
        feats, h = [], mel if clock is None else torch.cat([mel, clock], dim=1)
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
            feats.append(h)
        logits = self.out(h).squeeze(1) + (h * self.project(genre).unsqueeze(-1)).sum(1)
        return logits, self.classify(h.mean(-1)), feats


class MelPatchDiscriminator2d(nn.Module):
    """Spectral-norm 2-D convolutions over (mel band, frame): one set of weights slides along the
    bands too, so it judges the local shape of the spectrum (harmonic lines, the valleys between
    them, onsets) wherever it lies, which the 1-D discriminators, one weight per band, learn band by
    band. Patch logits with a genre projection, an auxiliary genre head, and features flattened
    to (B, channels x bands, frames) for feature matching."""

    def __init__(self, cfg: MelGenConfig, width: int = 32):
        super().__init__()
        # (out channels, kernel (bands, frames), stride (bands, frames)) per layer
        plan = ((width, (3, 5), (1, 2)), (2 * width, (3, 5), (2, 2)), (4 * width, (3, 5), (2, 2)),
                (4 * width, (3, 3), (2, 1)))
        layers, c = [], 1
        for c_out, k, st in plan:
            layers.append(spectral_norm(nn.Conv2d(c, c_out, k, stride=st, padding=(k[0] // 2, k[1] // 2))))
            c = c_out
        self.layers = nn.ModuleList(layers)
        self.out = spectral_norm(nn.Conv2d(c, 1, 3, padding=1))
        self.project = spectral_norm(nn.Embedding(cfg.n_genres, c))
        self.classify = spectral_norm(nn.Linear(c, cfg.n_genres))

    def forward(self, mel: torch.Tensor, genre: torch.Tensor):
        feats, h = [], mel.unsqueeze(1)
        for layer in self.layers:
            h = F.leaky_relu(layer(h), 0.2)
            feats.append(h.flatten(1, 2))
        logits = self.out(h).squeeze(1) + (h * self.project(genre)[:, :, None, None]).sum(1)
        return logits.flatten(1), self.classify(h.mean((-2, -1))), feats


class MultiScaleMelDiscriminator(nn.Module):
    """MelDiscriminators on the mel at 1, 1/2, 1/4 ... of its frame rate (average-pooled in time):
    the coarser ones see a longer stretch for the same depth, where rhythm and form live; with
    `width_2d` > 0, a 2-D patch discriminator on the full-rate mel beside them."""

    def __init__(self, cfg: MelGenConfig, scales: int = 1, width_2d: int = 0):
        super().__init__()
        self.discs = nn.ModuleList(MelDiscriminator(cfg) for _ in range(max(1, scales)))
        self.patch2d = MelPatchDiscriminator2d(cfg, width_2d) if width_2d > 0 else None

    def forward(self, mel: torch.Tensor, genre: torch.Tensor, clock: torch.Tensor | None = None) -> list[tuple]:
        """-> one (patch logits, genre logits, features) per scale, finest first, then the 2-D one;
        the 1-D ones see the beat clock beside the mel when there is one."""
        out, full = [], mel
        for i, d in enumerate(self.discs):
            if i:
                mel = F.avg_pool1d(mel, 2)
                clock = None if clock is None else F.avg_pool1d(clock, 2)
            out.append(d(mel, genre, clock))
        if self.patch2d is not None:
            out.append(self.patch2d(full, genre))
        return out


def diff_augment(mel: torch.Tensor, p: float, rng: torch.Generator, aux: torch.Tensor | None = None):
    """DiffAugment (Zhao et al. 2020) for normalised mels (B, n_mels, T): each of four
    differentiable transforms applied to each example with probability p, to real and generated
    mels alike, so the discriminator cannot memorise a small library and the generator is not
    pushed toward the augmentations. Gain: every band shifted by up to ±0.2 (about ±2 dB of the
    typical band range); translation: up to T/8 frames, the gap filled with -1 (silence); frequency
    cutout: up to n_mels/8 adjacent bands set to -1; time cutout: up to T/8 frames set to -1.
    aux (B, C, T), e.g. the beat clock, is translated with the mel (0 in the gap) and nothing else;
    with it, (mel, aux) comes back."""
    if p <= 0:
        return mel if aux is None else (mel, aux)
    b, n_mels, t = mel.shape
    dev = mel.device

    def chosen() -> torch.Tensor:
        return (torch.rand(b, generator=rng) < p).to(dev)

    def uniform(lo, hi) -> torch.Tensor:
        return (lo + (hi - lo) * torch.rand(b, generator=rng)).to(dev)

    x = mel + (chosen() * uniform(-0.2, 0.2))[:, None, None]
    shift = (chosen() * torch.round(uniform(-t / 8, t / 8))).long()
    src = torch.arange(t, device=dev)[None] - shift[:, None]                     # (B, T)
    inside = ((src >= 0) & (src < t)).to(x.dtype)[:, None]
    x = torch.gather(x, 2, src.clamp(0, t - 1)[:, None].expand(b, n_mels, t)) * inside - (1 - inside)
    if aux is not None:
        aux = torch.gather(aux, 2, src.clamp(0, t - 1)[:, None].expand(b, aux.shape[1], t)) * inside
    for axis, size in ((1, n_mels), (2, t)):
        width = chosen() * torch.round(uniform(1, size / 8))
        start = torch.floor(uniform(0, 1) * (size - width + 1))
        pos = torch.arange(size, device=dev)[None]
        cut = ((pos >= start[:, None]) & (pos < (start + width)[:, None])).to(x.dtype)
        cut = cut[:, :, None] if axis == 1 else cut[:, None, :]
        x = x * (1 - cut) - cut
    return x if aux is None else (x, aux)


# -- the vocoder ----------------------------------------------------------------------------------
@dataclass
class VocoderConfig:
    """MelGAN generator: upsampling by prod(ratios) == hop, dilated residual stacks (1, 3, 9)."""
    n_mels: int = 80
    ngf: int = 16                      # 32 is the paper's width; 16 is "half width"
    ratios: tuple = (8, 8, 2, 2)
    n_residual: int = 3
    d_scales: int = 3
    d_channels: tuple = (16, 64, 256, 256)


class _ResStack(nn.Module):
    def __init__(self, c: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.LeakyReLU(0.2), nn.ReflectionPad1d(dilation),
            weight_norm(nn.Conv1d(c, c, 3, dilation=dilation)),
            nn.LeakyReLU(0.2), weight_norm(nn.Conv1d(c, c, 1)))
        self.shortcut = weight_norm(nn.Conv1d(c, c, 1))

    def forward(self, x):
        return self.shortcut(x) + self.block(x)


class Vocoder(nn.Module):
    """Normalised mel (B, n_mels, frames) -> audio (B, frames * hop) in [-1, 1]."""

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        self.cfg = cfg
        mult = 2 ** len(cfg.ratios)
        layers = [nn.ReflectionPad1d(3), weight_norm(nn.Conv1d(cfg.n_mels, mult * cfg.ngf, 7))]
        for r in cfg.ratios:
            c = mult * cfg.ngf
            layers += [nn.LeakyReLU(0.2),
                       weight_norm(nn.ConvTranspose1d(c, c // 2, 2 * r, stride=r,
                                                      padding=r // 2 + r % 2, output_padding=r % 2))]
            layers += [_ResStack(c // 2, 3 ** j) for j in range(cfg.n_residual)]
            mult //= 2
        layers += [nn.LeakyReLU(0.2), nn.ReflectionPad1d(3), weight_norm(nn.Conv1d(cfg.ngf, 1, 7)), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    @property
    def hop(self) -> int:
        return int(np.prod(self.cfg.ratios))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel).squeeze(1)


class _ScaleDiscriminator(nn.Module):
    def __init__(self, chans: tuple):
        super().__init__()
        c0 = chans[0]
        layers = [nn.Sequential(nn.ReflectionPad1d(7), weight_norm(nn.Conv1d(1, c0, 15)), nn.LeakyReLU(0.2))]
        c = c0
        for c_out in chans[1:]:
            layers.append(nn.Sequential(weight_norm(nn.Conv1d(c, c_out, 41, stride=4, padding=20,
                                                              groups=max(1, c // 4))),
                                        nn.LeakyReLU(0.2)))
            c = c_out
        layers.append(nn.Sequential(weight_norm(nn.Conv1d(c, c, 5, padding=2)), nn.LeakyReLU(0.2)))
        layers.append(weight_norm(nn.Conv1d(c, 1, 3, padding=1)))
        self.layers = nn.ModuleList(layers)

    def forward(self, x):
        feats = []
        for layer in self.layers:
            x = layer(x)
            feats.append(x)
        return feats  # the last is the logit map


class MultiScaleDiscriminator(nn.Module):
    """MelGAN's discriminators on audio at 1, 1/2, 1/4 rate; returns a feature list per scale."""

    def __init__(self, cfg: VocoderConfig):
        super().__init__()
        self.discs = nn.ModuleList(_ScaleDiscriminator(tuple(cfg.d_channels)) for _ in range(cfg.d_scales))

    def forward(self, y: torch.Tensor) -> list[list[torch.Tensor]]:
        x, out = y.unsqueeze(1), []
        for i, d in enumerate(self.discs):
            if i:
                x = F.avg_pool1d(x, 4, stride=2, padding=1, count_include_pad=False)
            out.append(d(x))
        return out


class MultiResolutionSTFTLoss(nn.Module):
    """Spectral convergence + log-magnitude L1 over three STFT resolutions (Yamamoto et al. 2020)."""

    def __init__(self, resolutions=((1024, 256), (2048, 512), (512, 128))):
        super().__init__()
        self.resolutions = resolutions
        for n_fft, _ in resolutions:
            self.register_buffer(f"w{n_fft}", torch.hann_window(n_fft), persistent=False)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        loss = y.new_zeros(())
        for n_fft, hop in self.resolutions:
            w = getattr(self, f"w{n_fft}")
            a = torch.stft(y_hat, n_fft, hop, window=w, return_complex=True).abs().clamp(min=1e-7)
            b = torch.stft(y, n_fft, hop, window=w, return_complex=True).abs().clamp(min=1e-7)
            sc = torch.linalg.norm(b - a) / torch.linalg.norm(b).clamp(min=1e-7)
            loss = loss + sc + F.l1_loss(a.log(), b.log())
        return loss / len(self.resolutions)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def config_dict(cfg) -> dict:
    """A dataclass config as plain types (tuples as lists), for a weights_only checkpoint."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def from_dict(cls, d: dict):
    names = {f.name: f for f in cls.__dataclass_fields__.values()}
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in names})


__all__ = [
    "LOG_FLOOR",
    "LogMel",
    "MelConfig",
    "MelDiscriminator",
    "MelGenConfig",
    "MelGenerator",
    "MelNorm",
    "MultiScaleMelDiscriminator",
    "MultiResolutionSTFTLoss",
    "MultiScaleDiscriminator",
    "Vocoder",
    "VocoderConfig",
    "config_dict",
    "diff_augment",
    "count_params",
    "from_dict",
]
