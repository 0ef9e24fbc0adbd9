"""What the genre classifier sees: log-mel spectrograms in windows, and clip summary features.

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


def log_mel(S: np.ndarray, mel: MelParams) -> np.ndarray:
    """Natural-log mel power from a magnitude spectrum, shape (n_mels, frames), float32."""
    basis = _mel_basis(mel.sr, mel.n_fft, mel.n_mels, mel.fmin, mel.fmax)
    return np.log(basis @ (S ** 2) + LOG_FLOOR).astype(np.float32)


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


SUMMARY_NAMES = (
    [f"mfcc{i}_{s}" for s in ("mean", "std") for i in range(20)]
    + [f"chroma{i}_{s}" for s in ("mean", "std") for i in range(12)]
    + [f"contrast{i}_{s}" for s in ("mean", "std") for i in range(7)]
    + [f"{f}_{s}" for f in ("centroid", "bandwidth", "rolloff", "flatness", "zcr", "rms", "onset")
       for s in ("mean", "std")]
    + ["log_tempo"]
)
"""The baseline's clip features: MFCC, chroma and spectral-contrast statistics and friends (93)."""


def summary(y: np.ndarray, S: np.ndarray, mel: MelParams) -> np.ndarray:
    """Mean and standard deviation of classic timbre, harmony and rhythm descriptors, shape (93,)."""
    import librosa
    sr = mel.sr
    power = S ** 2
    mel_db = 10.0 * np.log10(_mel_basis(sr, mel.n_fft, 64, 0.0, mel.fmax) @ power + 1e-10)
    mel_db = np.maximum(mel_db, mel_db.max() - 80.0)  # as librosa.power_to_db(top_db=80)
    parts = [
        librosa.feature.mfcc(S=mel_db, n_mfcc=20),
        librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0),
        librosa.feature.spectral_contrast(S=S, sr=sr),
    ]
    # spectral shape by hand: librosa's versions each re-normalise the spectrum (3x slower)
    freqs = (np.arange(S.shape[0]) * sr / mel.n_fft).astype(np.float32)[:, None]
    total = S.sum(axis=0) + 1e-10
    centroid = (freqs * S).sum(axis=0) / total
    bandwidth = np.sqrt((((freqs - centroid) ** 2) * S).sum(axis=0) / total)
    rolloff = freqs[np.argmax(np.cumsum(S, axis=0) >= 0.85 * total, axis=0), 0]
    flatness = np.exp(np.mean(np.log(power + 1e-10), axis=0)) / (np.mean(power, axis=0) + 1e-10)
    n = (len(y) // mel.hop) * mel.hop
    crossings = np.abs(np.diff(np.signbit(y[: n + 1]).astype(np.int8)))[:n]
    zcr = crossings.reshape(-1, mel.hop).mean(axis=1) if n else np.zeros(1)
    rms = np.sqrt(power.mean(axis=0) * 2 / mel.n_fft)
    onset = librosa.onset.onset_strength(S=mel_db, sr=sr)
    singles = [centroid / 1000.0, bandwidth / 1000.0, rolloff / 1000.0, flatness, zcr, rms, onset]
    stats = [np.concatenate([p.mean(axis=1), p.std(axis=1)]) for p in parts]
    stats += [np.array([s.mean(), s.std()]) for s in singles]
    tempo = librosa.feature.tempo(onset_envelope=onset, sr=sr, hop_length=mel.hop)
    stats.append(np.log2(np.maximum(np.atleast_1d(tempo)[:1], 1.0)))
    out = np.concatenate(stats).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def clip_features(y: np.ndarray, mel: MelParams, *, with_summary: bool = True
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """(log-mel (n_mels, frames) float32, summary (93,) or None) from one STFT."""
    S = spectrum(y, mel)
    return log_mel(S, mel), (summary(y, S, mel) if with_summary else None)
