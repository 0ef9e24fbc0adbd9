"""The RAVE networks at a size that trains on one GPU in minutes (or a CPU in hours): PQMF filter
bank, convolutional variational encoder, convolutional decoder with a waveform branch and a
filtered-noise branch (RAVE v2's noise synthesiser), multi-scale discriminator, the TorchScript
export with the interface of official RAVE exports, and the checkpoint's reader (losses:
losses.py).

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

from melodymaker.trainkit import check_checkpoint, float_weights, read_checkpoint

FORMAT, FORMAT_VERSION = "melodymaker-rave", 2
"""rave.pt: trainkit's header, then model_args (RaveConfig), audio, genres, model (EMA weights in
float16) and info (how it was trained). Version 1 files (no noise branch; the decoder's waveform
head inside `decoder.net`) read as version 2 through `upgrade`."""


@dataclass
class RaveConfig:
    """Architecture and audio parameters; stored in every checkpoint."""
    sr: int = 22050
    n_bands: int = 16               # PQMF bands; the networks run at sr / n_bands
    pqmf_taps: int = 8              # prototype length per band: n_bands * pqmf_taps + 1 taps
    channels: tuple = (96, 192, 288, 384)   # at the band rate, then after each stride
    strides: tuple = (4, 4, 2)      # encoder downsampling (decoder upsamples in reverse)
    latent_size: int = 32
    dilations: tuple = (1, 3, 9)    # residual stack of every decoder stage
    noise_bands: int = 5            # filtered-noise magnitudes per PQMF band and frame; 0 = no noise branch
    noise_strides: tuple = (2, 2, 2)  # the noise branch's frame: prod(noise_strides) band samples

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


class NoiseSynth(nn.Module):
    """Filtered noise per PQMF band, after RAVE v2's noise generator: strided convolutions of the
    decoder's last hidden layer predict, for every frame of `hop` band samples, `noise_bands`
    magnitudes per band (a zero-phase filter from the band's low edge to its high edge); each
    frame of uniform white noise is shaped by them in the frequency domain. The decoder's small
    waveform branch then need not fake noise (hiss) with its oscillating heads."""

    def __init__(self, channels: int, n_bands: int, noise_bands: int, strides=(2, 2, 2)):
        super().__init__()
        if any(s % 2 for s in strides):
            raise ValueError(f"noise strides must be even, got {strides}")
        self.n_bands, self.noise_bands = n_bands, noise_bands
        self.hop = int(math.prod(strides))
        widths = [channels] * len(strides) + [n_bands * noise_bands]
        layers = []
        for i, s in enumerate(strides):
            layers += [_conv(widths[i], widths[i + 1], 2 * s, stride=s, padding=s // 2)]
            if i < len(strides) - 1:
                layers += [nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)

    def magnitudes(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, n_bands, T / hop, noise_bands), each in [0, 2): RAVE's modified
        sigmoid, biased by -5 so that a new branch starts nearly silent."""
        m = 2 * torch.sigmoid(self.net(hidden) - 5).pow(2.3)
        b, _, frames = m.shape
        return m.reshape(b, self.n_bands, self.noise_bands, frames).transpose(2, 3)

    def synthesise(self, mags: torch.Tensor) -> torch.Tensor:
        """Magnitudes (B, n_bands, frames, noise_bands) -> band noise (B, n_bands, frames * hop)."""
        b, m, frames, k = mags.shape
        bins = self.hop // 2 + 1
        if k != bins:  # the magnitudes, linearly interpolated onto the frame's FFT bins
            mags = F.interpolate(mags.reshape(b * m, frames, k), size=bins, mode="linear",
                                 align_corners=True).reshape(b, m, frames, bins)
        noise = torch.rand(b, m, frames, self.hop, device=mags.device, dtype=mags.dtype) * 2 - 1
        shaped = torch.fft.irfft(torch.fft.rfft(noise) * mags, n=self.hop)
        return shaped.reshape(b, m, frames * self.hop)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.synthesise(self.magnitudes(hidden))


class Decoder(nn.Module):
    """Latent -> PQMF bands: transposed-conv upsampling with dilated residual stacks, then a
    waveform head (a `tanh` waveform times a `sigmoid` amplitude per band, RAVE v1's generator)
    plus, when cfg.noise_bands, filtered noise per band (RAVE v2's noise synthesiser)."""

    def __init__(self, cfg: RaveConfig):
        super().__init__()
        ch = cfg.channels
        layers = [_conv(cfg.latent_size, ch[-1], 7, padding=3)]
        for i in reversed(range(len(cfg.strides))):
            r = cfg.strides[i]
            layers += [nn.LeakyReLU(0.2),
                       weight_norm(nn.ConvTranspose1d(ch[i + 1], ch[i], 2 * r, stride=r, padding=r // 2)),
                       ResidualStack(ch[i], cfg.dilations)]
        layers += [nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)
        self.wave = _conv(ch[0], 2 * cfg.n_bands, 7, padding=3)
        self.noise = (NoiseSynth(ch[0], cfg.n_bands, cfg.noise_bands, cfg.noise_strides)
                      if cfg.noise_bands else None)

    def waveform(self, hidden: torch.Tensor) -> torch.Tensor:
        wave, amp = self.wave(hidden).chunk(2, dim=1)
        return torch.tanh(wave) * torch.sigmoid(amp)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        hidden = self.net(z)
        bands = self.waveform(hidden)
        if self.noise is not None:
            bands = bands + self.noise(hidden)
        return bands


class RAVE(nn.Module):
    """PQMF + encoder + decoder. forward() reconstructs and returns (audio, kl)."""

    def __init__(self, cfg: RaveConfig):
        super().__init__()
        if any(r % 2 for r in cfg.strides):
            raise ValueError(f"strides must be even, got {cfg.strides}")
        if len(cfg.channels) != len(cfg.strides) + 1:
            raise ValueError("channels needs one entry more than strides")
        if cfg.noise_bands and math.prod(cfg.strides) % math.prod(cfg.noise_strides):
            raise ValueError(f"the noise frame {math.prod(cfg.noise_strides)} must divide the latent "
                             f"frame's {math.prod(cfg.strides)} band samples")
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
def rave_config(model_args: dict) -> RaveConfig:
    """The RaveConfig of a checkpoint's model_args (version 1 files had no noise branch)."""
    return from_dict(RaveConfig, {"noise_bands": 0, **model_args})


def upgrade(ckpt: dict) -> dict:
    """A rave.pt dict at FORMAT_VERSION: a version 1 dict gets `noise_bands: 0` and its decoder
    head renamed from `decoder.net.<last>` to `decoder.wave`; ValueError for anything that is not
    a RAVE checkpoint of a version this code reads."""
    try:
        return check_checkpoint(ckpt, FORMAT, FORMAT_VERSION, name="RAVE")
    except ValueError as e:
        if "format version 1;" not in str(e):
            raise
    args = {"noise_bands": 0, **ckpt["model_args"]}
    head = f"decoder.net.{3 * len(args['strides']) + 2}."
    rename = lambda k: "decoder.wave." + k[len(head):] if k.startswith(head) else k
    return {**ckpt, "format": FORMAT, "format_version": FORMAT_VERSION, "model_args": args,
            "model": {rename(k): v for k, v in ckpt["model"].items()}}


def read(path) -> dict:
    """rave.pt at `path` (tensors on the CPU, no code run), upgraded to FORMAT_VERSION;
    FileNotFoundError, or ValueError naming what is wrong (unreadable, not RAVE, a newer version)."""
    try:
        return read_checkpoint(path, FORMAT, FORMAT_VERSION, name="RAVE")
    except ValueError as e:
        if "format version 1;" not in str(e):
            raise
    return upgrade(read_checkpoint(path, FORMAT, 1, name="RAVE"))


def model_from_checkpoint(ckpt: dict) -> RAVE:
    """The network (float32, eval mode) of a rave.pt dict (any version `upgrade` reads);
    ValueError for anything else."""
    ckpt = upgrade(ckpt)
    model = RAVE(rave_config(ckpt["model_args"]))
    model.load_state_dict(float_weights(ckpt["model"]))
    return model.eval()


def adapt_weights(model: RAVE, weights: dict, source: RaveConfig) -> dict:
    """Load `weights` (a state dict of a `source`-shaped RAVE) into `model` wherever they fit, for
    training on from a checkpoint of another shape. Equal shapes are copied; a wider latent keeps
    the source's dimensions first (the encoder's mean and scale rows, the decoder's first input
    columns; the decoder's new columns start at zero, so the output is unchanged until they are
    trained); everything else (a new noise branch) keeps its fresh initialisation. Returns
    {"copied", "widened", "new"}: the tensor names of each kind."""
    state, done = model.state_dict(), {"copied": [], "widened": [], "new": []}
    old_l, new_l = source.latent_size, model.cfg.latent_size
    for name, target in state.items():
        w = weights.get(name)
        if w is not None and w.shape == target.shape:
            target.copy_(w)
            done["copied"].append(name)
        elif (w is not None and name.startswith("encoder.") and w.shape[0] == 2 * old_l
              and target.shape[0] == 2 * new_l and w.shape[1:] == target.shape[1:] and new_l > old_l):
            target[:old_l].copy_(w[:old_l])                            # means
            target[new_l: new_l + old_l].copy_(w[old_l:])              # scales
            done["widened"].append(name)
        elif (w is not None and name.startswith("decoder.net.0.") and w.dim() == 3 and w.shape[1] == old_l
              and target.shape[1] == new_l and new_l > old_l and w.shape[0] == target.shape[0]):
            target.zero_()
            target[:, :old_l].copy_(w)
            done["widened"].append(name)
        else:
            done["new"].append(name)
    model.load_state_dict(state)
    return done


def metadata_json(ckpt: dict) -> str:
    """The checkpoint's self-description, carried inside the export as `metadata`."""
    return json.dumps({"format": FORMAT, "format_version": FORMAT_VERSION, "version": ckpt["version"],
                       "step": ckpt["step"], "model_args": ckpt["model_args"], "audio": ckpt["audio"],
                       "genres": ckpt["genres"]})
