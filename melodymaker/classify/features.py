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
    """Magnitude STFT, shape (1 + n_fft // 2, frames); audio shorter than one window is zero-padded."""
    import librosa
    n_min = int(mel.segment * mel.sr)
    if len(y) < n_min:
        y = np.concatenate([y, np.zeros(n_min - len(y), dtype=np.float32)])
    return np.abs(librosa.stft(np.asarray(y, dtype=np.float32), n_fft=mel.n_fft,
                               hop_length=mel.hop)).astype(np.float32)


@lru_cache(maxsize=8)
def _mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    import librosa
    basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    basis.setflags(write=False)  # shared by every thread
    return basis


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
    mel_power = _mel_basis(sr, mel.n_fft, 64, 0.0, mel.fmax) @ power
    parts = [
        librosa.feature.mfcc(S=librosa.power_to_db(mel_power), n_mfcc=20),
        librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0),
        librosa.feature.spectral_contrast(S=S, sr=sr),
    ]
    singles = [
        librosa.feature.spectral_centroid(S=S, sr=sr) / 1000.0,
        librosa.feature.spectral_bandwidth(S=S, sr=sr) / 1000.0,
        librosa.feature.spectral_rolloff(S=S, sr=sr) / 1000.0,
        librosa.feature.spectral_flatness(S=S),
        librosa.feature.zero_crossing_rate(y, frame_length=mel.n_fft, hop_length=mel.hop),
        librosa.feature.rms(S=S),
    ]
    onset = librosa.onset.onset_strength(S=librosa.power_to_db(mel_power), sr=sr)[None, :]
    singles.append(onset)
    stats = [np.concatenate([p.mean(axis=1), p.std(axis=1)]) for p in parts]
    stats += [np.array([s.mean(), s.std()]) for s in singles]
    tempo = librosa.feature.tempo(onset_envelope=onset[0], sr=sr, hop_length=mel.hop)
    stats.append(np.log2(np.maximum(np.atleast_1d(tempo)[:1], 1.0)))
    out = np.concatenate(stats).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def clip_features(y: np.ndarray, mel: MelParams, *, with_summary: bool = True
                  ) -> tuple[np.ndarray, np.ndarray | None]:
    """(log-mel (n_mels, frames) float32, summary (93,) or None) from one STFT."""
    S = spectrum(y, mel)
    return log_mel(S, mel), (summary(y, S, mel) if with_summary else None)
