"""The RAVE networks at a size that trains on a CPU: PQMF filter bank, convolutional variational
encoder, convolutional decoder, multi-scale spectral loss, multi-scale discriminator, and the
TorchScript export with the interface of official RAVE exports.

Shapes: audio (batch, 1, samples); PQMF bands (batch, n_bands, samples / n_bands);
latents (batch, latent_size, samples / ratio) with ratio = n_bands * prod(strides).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import weight_norm

from melodymaker.trainkit import check_checkpoint, float_weights

FORMAT, FORMAT_VERSION = "melodymaker-rave", 1
"""rave.pt: trainkit's header, then model_args (RaveConfig), audio, genres, model (EMA weights in
float16) and info (how it was trained). Files written before format_version read as well."""


@dataclass
class RaveConfig:
    """Architecture and audio parameters; stored in every checkpoint."""
    sr: int = 22050
    n_bands: int = 16               # PQMF bands; the networks run at sr / n_bands
    pqmf_taps: int = 8              # prototype length per band: n_bands * pqmf_taps + 1 taps
    channels: tuple = (64, 128, 192, 256)   # at the band rate, then after each stride
    strides: tuple = (4, 4, 2)      # encoder downsampling (decoder upsamples in reverse)
    latent_size: int = 16
    dilations: tuple = (1, 3, 9)    # residual stack of every decoder stage

    @property
    def ratio(self) -> int:
        return self.n_bands * math.prod(self.strides)


def config_dict(cfg) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(cfg).items()}


def from_dict(cls, d: dict):
    names = {f.name for f in fields(cls)}
    unknown = set(d) - names
    if unknown:
        raise ValueError(f"unknown {cls.__name__} argument(s): {', '.join(sorted(unknown))}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# -- PQMF ----------------------------------------------------------------------------------------
def pqmf_prototype(n_bands: int, taps_per_band: int, beta: float = 9.0) -> np.ndarray:
    """The Kaiser-window lowpass prototype of a near-perfect-reconstruction cosine-modulated
    bank: its cutoff is chosen so that h * reversed(h) vanishes at every multiple of 2 * n_bands
    but the centre (the power-complementarity condition), as in RAVE's PQMF."""
    from scipy.optimize import minimize_scalar
    from scipy.signal import firwin
    n = n_bands * taps_per_band + 1

    def prototype(wc):
        return firwin(n, wc, window=("kaiser", beta), scale=False)

    def objective(wc):
        h = prototype(wc)
        g = np.convolve(h, h[::-1])
        centre = len(g) // 2
        side = np.abs(np.concatenate([g[centre + 2 * n_bands:: 2 * n_bands],
                                      g[centre - 2 * n_bands:: -2 * n_bands]]))
        return float(side.max()) if side.size else 0.0

    best = minimize_scalar(objective, bounds=(0.2 / n_bands, 1.5 / n_bands), method="bounded",
                           options={"xatol": 1e-7})
    return prototype(best.x)


class PQMF(nn.Module):
    """Pseudo-quadrature mirror filter bank: audio <-> n_bands critically sampled bands.

    Both directions are zero-phase (centred filters), so analysis then synthesis gives back the
    input in place, to about -60 dB for 16 bands."""

    def __init__(self, n_bands: int, taps_per_band: int = 8):
        super().__init__()
        self.n_bands = n_bands
        h = pqmf_prototype(n_bands, taps_per_band)
        n = len(h)
        k = np.arange(n_bands)[:, None]
        t = np.arange(n)[None, :] - (n - 1) / 2
        phase = (-1) ** k * np.pi / 4
        analysis = 2 * h * np.cos((2 * k + 1) * np.pi / (2 * n_bands) * t + phase)
        synthesis = 2 * h * np.cos((2 * k + 1) * np.pi / (2 * n_bands) * t - phase)
        # torch convolutions correlate: flip so that analysis is a true convolution
        self.register_buffer("analysis", torch.tensor(analysis[:, None, ::-1].copy(), dtype=torch.float32))
        # synthesis in polyphase form: output sample m * n_bands + r is a short convolution of the
        # bands with taps r, r + n_bands, r + 2 n_bands, ... of each synthesis filter (no zeros
        # are inserted and multiplied: n_bands times fewer operations than upsample-then-filter)
        self.taps = -(-n // n_bands)
        g = np.zeros((n_bands, self.taps * n_bands))
        g[:, :n] = synthesis * n_bands
        phases = g.reshape(n_bands, self.taps, n_bands).transpose(2, 0, 1)  # (r, k, j) = g_k[r + j M]
        self.register_buffer("synthesis", torch.tensor(phases[:, :, ::-1].copy(), dtype=torch.float32))
        self.pad = n // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T) -> (B, n_bands, T / n_bands); T must be a multiple of n_bands."""
        return F.conv1d(F.pad(x, (self.pad, self.pad)), self.analysis, stride=self.n_bands)

    def inverse(self, bands: torch.Tensor) -> torch.Tensor:
        """(B, n_bands, T') -> (B, 1, T' * n_bands)."""
        b, m, t = bands.shape
        extra = self.pad // m + 1
        phased = F.conv1d(F.pad(bands, (self.taps - 1, extra)), self.synthesis)   # (B, M, t + extra)
        full = phased.transpose(1, 2).reshape(b, 1, (t + extra) * m)
        return full[:, :, self.pad: self.pad + t * m]


# -- encoder and decoder ---------------------------------------------------------------------------
def _conv(cin, cout, k, **kw) -> nn.Module:
    return weight_norm(nn.Conv1d(cin, cout, k, **kw))


class ResidualStack(nn.Module):
    """Dilated residual units (MelGAN / RAVE v1 style): x + conv1x1(lrelu(conv_k3_dil(lrelu(x))))."""

    def __init__(self, channels: int, dilations):
        super().__init__()
        self.units = nn.ModuleList(
            nn.Sequential(nn.LeakyReLU(0.2), _conv(channels, channels, 3, dilation=d, padding=d),
                          nn.LeakyReLU(0.2), _conv(channels, channels, 1))
            for d in dilations)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for unit in self.units:
            x = x + unit(x)
        return x


class Encoder(nn.Module):
    """PQMF bands -> (mean, scale) of a diagonal Gaussian latent."""

    def __init__(self, cfg: RaveConfig):
        super().__init__()
        ch, layers = cfg.channels, []
        layers.append(_conv(cfg.n_bands, ch[0], 7, padding=3))
        for i, r in enumerate(cfg.strides):
            layers += [ResidualStack(ch[i], (1,)), nn.LeakyReLU(0.2),
                       _conv(ch[i], ch[i + 1], 2 * r + 1, stride=r, padding=r)]
        layers += [nn.LeakyReLU(0.2), _conv(ch[-1], 2 * cfg.latent_size, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, bands: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, scale = self.net(bands).chunk(2, dim=1)
        return mean, scale


def reparametrize(mean: torch.Tensor, scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A sample of the posterior and its KL divergence to N(0, 1) (summed over latent dims,
    averaged over batch and time), as in RAVE."""
    std = F.softplus(scale) + 1e-4
    var = std * std
    kl = (mean * mean + var - torch.log(var) - 1).sum(1).mean()
    return mean + torch.randn_like(mean) * std, kl


class Decoder(nn.Module):
    """Latent -> PQMF bands: transposed-conv upsampling with dilated residual stacks, then a
    waveform head multiplied by a sigmoid amplitude head per band (RAVE v1's generator)."""

    def __init__(self, cfg: RaveConfig):
        super().__init__()
        ch = cfg.channels
        layers = [_conv(cfg.latent_size, ch[-1], 7, padding=3)]
        for i in reversed(range(len(cfg.strides))):
            r = cfg.strides[i]
            layers += [nn.LeakyReLU(0.2),
                       weight_norm(nn.ConvTranspose1d(ch[i + 1], ch[i], 2 * r, stride=r, padding=r // 2)),
                       ResidualStack(ch[i], cfg.dilations)]
        layers += [nn.LeakyReLU(0.2), _conv(ch[0], 2 * cfg.n_bands, 7, padding=3)]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        wave, amp = self.net(z).chunk(2, dim=1)
        return torch.tanh(wave) * torch.sigmoid(amp)


class RAVE(nn.Module):
    """PQMF + encoder + decoder. forward() reconstructs and returns (audio, kl)."""

    def __init__(self, cfg: RaveConfig):
        super().__init__()
        if any(r % 2 for r in cfg.strides):
            raise ValueError(f"strides must be even, got {cfg.strides}")
        if len(cfg.channels) != len(cfg.strides) + 1:
            raise ValueError("channels needs one entry more than strides")
        self.cfg = cfg
        self.pqmf = PQMF(cfg.n_bands, cfg.pqmf_taps)
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(self.pqmf(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.pqmf.inverse(self.decoder(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, kl = reparametrize(*self.encode(x))
        return self.decode(z), kl


def fold_weight_norm(module: nn.Module) -> nn.Module:
    """Replace weight-norm parametrisations by plain weights (inference and export)."""
    for m in module.modules():
        if parametrize.is_parametrized(m):
            parametrize.remove_parametrizations(m, "weight")
    return module


# -- losses and discriminator ---------------------------------------------------------------------
class MultiScaleSpectralLoss(nn.Module):
    """RAVE's distance: over several STFT sizes, spectral convergence + L1 of log magnitudes."""

    def __init__(self, sizes=(2048, 1024, 512, 256, 128)):
        super().__init__()
        self.sizes = sizes
        for n in sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n))

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y_hat, y = y_hat.reshape(-1, y_hat.shape[-1]), y.reshape(-1, y.shape[-1])
        loss = 0.0
        for n in self.sizes:
            w = getattr(self, f"window_{n}")
            s = torch.stft(y, n, n // 4, window=w, return_complex=True).abs()
            s_hat = torch.stft(y_hat, n, n // 4, window=w, return_complex=True).abs()
            loss = loss + torch.linalg.norm(s - s_hat) / torch.linalg.norm(s).clamp(min=1e-7)
            loss = loss + (torch.log(s + 1e-7) - torch.log(s_hat + 1e-7)).abs().mean()
        return loss / len(self.sizes)


class ScaleDiscriminator(nn.Module):
    """MelGAN's waveform discriminator at reduced width; returns every layer's features."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.layers = nn.ModuleList([
            nn.Sequential(_conv(1, w, 15, padding=7), nn.LeakyReLU(0.2)),
            nn.Sequential(_conv(w, 4 * w, 41, stride=4, padding=20, groups=4), nn.LeakyReLU(0.2)),
            nn.Sequential(_conv(4 * w, 16 * w, 41, stride=4, padding=20, groups=16), nn.LeakyReLU(0.2)),
            nn.Sequential(_conv(16 * w, 16 * w, 41, stride=4, padding=20, groups=64), nn.LeakyReLU(0.2)),
            nn.Sequential(_conv(16 * w, 16 * w, 5, padding=2), nn.LeakyReLU(0.2)),
            _conv(16 * w, 1, 3, padding=1),
        ])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = []
        for layer in self.layers:
            x = layer(x)
            features.append(x)
        return features


class MultiScaleDiscriminator(nn.Module):
    """Scale discriminators on the waveform at 1x, 1/2x, 1/4x ... (average-pooled)."""

    def __init__(self, scales: int = 2, width: int = 16):
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(width) for _ in range(scales))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out = []
        for i, d in enumerate(self.discriminators):
            if i:
                x = F.avg_pool1d(x, 4, 2, padding=1)
            out.append(d(x))
        return out


# -- export ---------------------------------------------------------------------------------------
class ExportedRAVE(nn.Module):
    """The TorchScript interface of official RAVE exports (acids-ircam/RAVE `rave export`):
    `encode(x)` (B, 1, T) -> (B, latent_size, T / ratio) (the posterior mean), `decode(z)` back,
    `forward(x)` = decode(encode(x)), `sr` (int), and int buffers `encode_params`,
    `decode_params`, `forward_params` = [in_channels, in_ratio, out_channels, out_ratio]."""

    def __init__(self, model: RAVE, metadata: str = "{}"):
        super().__init__()
        cfg = model.cfg
        self.pqmf, self.encoder, self.decoder = model.pqmf, model.encoder, model.decoder
        self.sr = int(cfg.sr)
        self.latent_size = int(cfg.latent_size)
        self.ratio = int(cfg.ratio)
        self.metadata = metadata  # the checkpoint's self-description, as JSON
        self.register_buffer("encode_params", torch.tensor([1, 1, cfg.latent_size, cfg.ratio]))
        self.register_buffer("decode_params", torch.tensor([cfg.latent_size, cfg.ratio, 1, 1]))
        self.register_buffer("forward_params", torch.tensor([1, 1, 1, 1]))

    @torch.jit.export
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pad = (-x.shape[-1]) % self.ratio
        x = F.pad(x, (0, pad))
        mean, _ = self.encoder(self.pqmf(x))
        return mean

    @torch.jit.export
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.pqmf.inverse(self.decoder(z))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))


def export(model: RAVE, metadata: str = "{}") -> torch.jit.ScriptModule:
    """Script a trained model (weight norm folded) and check the interface before returning it,
    as RAVE's export does."""
    import copy
    model = fold_weight_norm(copy.deepcopy(model).cpu().eval())
    scripted = torch.jit.script(ExportedRAVE(model, metadata))
    cfg = model.cfg
    with torch.inference_mode():
        x = torch.zeros(1, 1, 4 * cfg.ratio)
        z = scripted.encode(x)
        if tuple(z.shape) != (1, cfg.latent_size, 4):
            raise RuntimeError(f"export check: encode gave {tuple(z.shape)}")
        y = scripted.decode(torch.zeros(1, cfg.latent_size, 3))
        if tuple(y.shape) != (1, 1, 3 * cfg.ratio):
            raise RuntimeError(f"export check: decode gave {tuple(y.shape)}")
    return scripted


# -- the checkpoint ---------------------------------------------------------------------------------
def model_from_checkpoint(ckpt: dict) -> RAVE:
    """The network (float32, eval mode) of a rave.pt dict; ValueError for anything else."""
    check_checkpoint(ckpt, FORMAT, FORMAT_VERSION, name="RAVE")
    model = RAVE(from_dict(RaveConfig, ckpt["model_args"]))
    model.load_state_dict(float_weights(ckpt["model"]))
    return model.eval()


def metadata_json(ckpt: dict) -> str:
    """The checkpoint's self-description, carried inside the export as `metadata`."""
    return json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "version": ckpt["version"],
                       "step": ckpt["step"], "model_args": ckpt["model_args"], "audio": ckpt["audio"],
                       "genres": ckpt["genres"]})
