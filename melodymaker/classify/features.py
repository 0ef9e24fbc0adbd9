"""What the CNN judge sees: log-mel spectrograms in windows (the feature judge has its own front end).

All functions take float32 mono audio `y` of shape (n,) at `sr` Hz (options.SAMPLE_RATE).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np

from ..options import SAMPLE_RATE

LOG_FLOOR = 1e-6
"""Added to mel power before the log, so silence maps to log(1e-6) ≈ -13.8, not -inf."""


@dataclass(frozen=True)
class MelParams:
    """How audio becomes a log-mel image; stored in the checkpoint so inference matches training."""
    sr: int = SAMPLE_RATE
    n_fft: int = 2048
    hop: int = 512
    n_mels: int = 64
    fmin: float = 20.0
    fmax: float = 11025.0
    segment: float = 3.0      # seconds the CNN sees at once
    overlap: float = 0.5      # fraction of a window shared with the next at inference

    @property
    def frames(self) -> int:
        """Mel frames per window (129 for 3 s at hop 512)."""
        return int(round(self.segment * self.sr / self.hop))

    @property
    def frame_hop(self) -> int:
        return max(1, int(round(self.frames * (1.0 - self.overlap))))

    def asdict(self) -> dict:
        return asdict(self)


def spectrum(y: np.ndarray, mel: MelParams) -> np.ndarray:
    """Magnitude STFT, shape (1 + n_fft // 2, frames); audio shorter than one window is zero-padded.

    Equal to abs(librosa.stft(y, n_fft, hop)) (periodic Hann, centred, zero padding), in plain
    numpy and scipy: librosa's first call compiles for seconds, which a request should not wait for.
    """
    y = np.asarray(y, dtype=np.float32)
    n_min = int(mel.segment * mel.sr)
    if len(y) < n_min:
        y = np.concatenate([y, np.zeros(n_min - len(y), dtype=np.float32)])
    half = mel.n_fft // 2
    y = np.pad(y, (half, half))
    frames = np.lib.stride_tricks.sliding_window_view(y, mel.n_fft)[:: mel.hop]
    from scipy import fft  # pocketfft in single precision: twice numpy's speed here
    return np.abs(fft.rfft(frames * _hann(mel.n_fft), axis=1)).T.astype(np.float32)


@lru_cache(maxsize=4)
def _hann(n: int) -> np.ndarray:
    w = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)
    w.setflags(write=False)
    return w


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """librosa.filters.mel (Slaney scale and area norm), shape (n_mels, 1 + n_fft // 2).

    Written out because librosa's first call takes over a second, on the first request.
    """
    mel_points = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    fft_freqs = np.linspace(0, sr / 2, 1 + n_fft // 2)
    ramps = mel_points[:, None] - fft_freqs[None, :]
    widths = np.diff(mel_points)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    basis = np.maximum(0, np.minimum(lower, upper)) * (2.0 / (mel_points[2:] - mel_points[:-2]))[:, None]
    basis = basis.astype(np.float32)
    basis.setflags(write=False)  # shared by every thread
    return basis


_F_SP, _MIN_LOG_HZ, _LOGSTEP = 200.0 / 3, 1000.0, np.log(6.4) / 27.0


def _hz_to_mel(f):
    f = np.asarray(f, dtype=np.float64)
    linear = f / _F_SP
    log = _MIN_LOG_HZ / _F_SP + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log, linear)


def _mel_to_hz(m):
    m = np.asarray(m, dtype=np.float64)
    min_log_mel = _MIN_LOG_HZ / _F_SP
    return np.where(m >= min_log_mel, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - min_log_mel)), _F_SP * m)


@lru_cache(maxsize=8)
def _mel_sparse(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float):
    """_mel_basis as a sparse matrix: each FFT bin feeds at most two bands, so the product is
    some thirty times cheaper than the dense one."""
    from scipy import sparse
    return sparse.csr_matrix(_mel_basis(sr, n_fft, n_mels, fmin, fmax))


def log_mel(S: np.ndarray, mel: MelParams) -> np.ndarray:
    """Natural-log mel power from a magnitude spectrum, shape (n_mels, frames), float32."""
    basis = _mel_sparse(mel.sr, mel.n_fft, mel.n_mels, mel.fmin, mel.fmax)
    return np.log(np.asarray(basis @ (S ** 2)) + LOG_FLOOR).astype(np.float32)


def windows(logmel: np.ndarray, mel: MelParams) -> np.ndarray:
    """Overlapping windows covering the whole log-mel, shape (k, n_mels, frames_per_window).

    The last window is aligned to the end, so no tail is left out.
    """
    width, hop = mel.frames, mel.frame_hop
    total = logmel.shape[1]
    if total < width:  # spectrum() pads audio, so this is at most a frame or two
        pad = np.full((logmel.shape[0], width - total), np.log(LOG_FLOOR), dtype=np.float32)
        logmel = np.concatenate([logmel, pad], axis=1)
        total = width
    starts = list(range(0, total - width + 1, hop))
    if starts[-1] != total - width:
        starts.append(total - width)
    return np.stack([logmel[:, s: s + width] for s in starts])


def clip_logmel(y: np.ndarray, mel: MelParams) -> np.ndarray:
    """The whole clip's log-mel, shape (n_mels, frames), float32: what the CNN judge sees."""
    return log_mel(spectrum(y, mel), mel)
