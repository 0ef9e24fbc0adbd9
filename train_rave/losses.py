"""What RAVE training compares: multi-scale spectral distances (RAVE's plain one, the measure the
cards report, and the low-band-weighted one the model trains on) and the waveform discriminator.

Shapes: audio (batch, 1, samples) or (batch, samples); every distance is a scalar tensor.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import _conv

EPS = 1e-7


def _magnitudes(y: torch.Tensor, n: int, window: torch.Tensor) -> torch.Tensor:
    """|STFT| (batch, n // 2 + 1, frames) with hop n / 4."""
    return torch.stft(y, n, n // 4, window=window, return_complex=True).abs()


def _spectral_terms(s: torch.Tensor, s_hat: torch.Tensor, weight: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Spectral convergence + the mean L1 distance of log magnitudes, weighted per bin (rows)."""
    sc = torch.linalg.norm(s - s_hat) / torch.linalg.norm(s).clamp(min=EPS)
    return sc + (weight * (torch.log(s + EPS) - torch.log(s_hat + EPS)).abs()).mean()


class MultiScaleSpectralLoss(nn.Module):
    """RAVE's distance: over several STFT sizes, spectral convergence + L1 of log magnitudes, every
    frequency bin alike. Kept unchanged as the cards' `spectral_distance` (comparable across models)."""

    def __init__(self, sizes=(2048, 1024, 512, 256, 128)):
        super().__init__()
        self.sizes = tuple(sizes)
        for n in self.sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y_hat, y = y_hat.reshape(-1, y_hat.shape[-1]), y.reshape(-1, y.shape[-1])
        loss = 0.0
        for n in self.sizes:
            w = getattr(self, f"window_{n}")
            loss = loss + _spectral_terms(_magnitudes(y, n, w), _magnitudes(y_hat, n, w))
        return loss / len(self.sizes)


def mel_density(n_fft: int, sr: int) -> torch.Tensor:
    """Per STFT bin, the mel scale's density d(mel)/df ∝ 1 / (700 Hz + f), normalised to mean 1:
    at 22050 Hz the lowest bin weighs 5.6, the highest 0.33 (a bin below 689 Hz, the lowest PQMF
    band, counts about 4 times as much as in a plain log-magnitude distance)."""
    f = torch.linspace(0, sr / 2, n_fft // 2 + 1, dtype=torch.float64)
    w = 1.0 / (700.0 + f)
    return (w / w.mean()).float()


class LowBandSpectralLoss(nn.Module):
    """The multi-scale spectral distance weighted toward the low frequencies, where this music's
    bass, chords and melodies live. Over STFT sizes 4096…128 (hop n / 4): spectral convergence +
    the L1 distance of log magnitudes weighted per bin by `mel_density`; for the sizes in
    `mel_sizes`, plus the L1 distance of log mel spectra (`mel_weight` each), which resolves the
    low harmonic lines that RAVE's plain distance (every bin alike: mostly high frequencies)
    lets a small decoder smear into hiss. With `chroma_weight`, for the sizes in `chroma_sizes`,
    plus the mean L1 distance of the frames' chroma (the power folded onto the 12 pitch classes,
    each frame divided by its largest): the harmony itself, which a log-magnitude distance weighs
    only through the few bins where the partials lie."""

    def __init__(self, sr: int, sizes=(4096, 2048, 1024, 512, 256, 128), mel_sizes=(4096, 2048, 1024),
                 mel_weight: float = 1.0, chroma_weight: float = 0.0, chroma_sizes=(4096, 2048)):
        super().__init__()
        import librosa
        self.sizes, self.mel_sizes, self.mel_weight = tuple(sizes), tuple(mel_sizes), float(mel_weight)
        self.chroma_weight = float(chroma_weight)
        self.chroma_sizes = tuple(chroma_sizes) if self.chroma_weight else ()
        for n in self.chroma_sizes:
            fb = librosa.filters.chroma(sr=sr, n_fft=n, tuning=0.0)
            self.register_buffer(f"chroma_{n}", torch.from_numpy(fb).float(), persistent=False)
        for n in self.sizes:
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)
            self.register_buffer(f"weight_{n}", mel_density(n, sr)[:, None], persistent=False)
        for n in self.mel_sizes:
            fb = librosa.filters.mel(sr=sr, n_fft=n, n_mels=min(128, n // 16), fmin=0.0, fmax=sr / 2, norm=None)
            self.register_buffer(f"mel_{n}", torch.from_numpy(fb).float(), persistent=False)

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y_hat, y = y_hat.reshape(-1, y_hat.shape[-1]), y.reshape(-1, y.shape[-1])
        loss = 0.0
        for n in self.sizes:
            window = getattr(self, f"window_{n}")
            s, s_hat = _magnitudes(y, n, window), _magnitudes(y_hat, n, window)
            loss = loss + _spectral_terms(s, s_hat, getattr(self, f"weight_{n}"))
            if n in self.mel_sizes:
                fb = getattr(self, f"mel_{n}")
                m, m_hat = fb @ s, fb @ s_hat
                loss = loss + self.mel_weight * (torch.log(m + 1e-5) - torch.log(m_hat + 1e-5)).abs().mean()
            if n in self.chroma_sizes:
                fb = getattr(self, f"chroma_{n}")
                loss = loss + self.chroma_weight * (chroma(fb, s) - chroma(fb, s_hat)).abs().mean()
        return loss / len(self.sizes)


def chroma(fb: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Chroma (batch, 12, frames) of magnitudes `s`: the power through the chroma filter bank `fb`,
    each frame divided by its largest class (librosa's chroma_stft normalisation)."""
    c = fb @ s.square()
    return c / c.amax(dim=1, keepdim=True).clamp(min=EPS)


# -- discriminator ------------------------------------------------------------------------------
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


class STFTDiscriminator(nn.Module):
    """A 2-D discriminator on one complex STFT (real and imaginary parts as two channels, time x
    frequency), as EnCodec's and RAVE v2's spectral discriminators: its kernels slide along
    frequency as well as time, so it judges the local texture of the spectrum (a harmonic line
    against a flat noise floor) wherever in the spectrum it lies, which waveform discriminators
    see poorly. Returns every layer's features, the last one the score map."""

    def __init__(self, n_fft: int, width: int = 32):
        super().__init__()
        from torch.nn.utils.parametrizations import weight_norm
        self.n_fft = n_fft
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        w = width

        def conv(cin, cout, k, stride=(1, 1), dilation=(1, 1)):
            pad = tuple(d * (kk - 1) // 2 for kk, d in zip(k, dilation))
            return weight_norm(nn.Conv2d(cin, cout, k, stride=stride, dilation=dilation, padding=pad))

        self.layers = nn.ModuleList([
            nn.Sequential(conv(2, w, (3, 9)), nn.LeakyReLU(0.2)),
            *(nn.Sequential(conv(w, w, (3, 9), stride=(1, 2), dilation=(d, 1)), nn.LeakyReLU(0.2))
              for d in (1, 2, 4)),
            nn.Sequential(conv(w, w, (3, 3)), nn.LeakyReLU(0.2)),
            conv(w, 1, (3, 3)),
        ])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        s = torch.stft(x.reshape(-1, x.shape[-1]), self.n_fft, self.n_fft // 4, window=self.window,
                       return_complex=True)                        # (batch, freq, time)
        h = torch.stack([s.real, s.imag], 1).transpose(2, 3)       # (batch, 2, time, freq)
        features = []
        for layer in self.layers:
            h = layer(h)
            features.append(h)
        return features


class MultiScaleDiscriminator(nn.Module):
    """Scale discriminators on the waveform at 1x, 1/2x, 1/4x ... (average-pooled), and, with
    `stft_sizes`, one STFTDiscriminator per FFT size beside them."""

    def __init__(self, scales: int = 2, width: int = 16, stft_sizes=()):
        super().__init__()
        self.discriminators = nn.ModuleList(ScaleDiscriminator(width) for _ in range(scales))
        self.spectral = nn.ModuleList(STFTDiscriminator(n, width) for n in stft_sizes)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        out, y = [], x
        for i, d in enumerate(self.discriminators):
            if i:
                y = F.avg_pool1d(y, 4, 2, padding=1)
            out.append(d(y))
        return out + [d(x) for d in self.spectral]
