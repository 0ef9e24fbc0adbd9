"""How sharp a track's transients are: what a stretcher that smears attacks (a phase vocoder)
takes away and one that keeps them (Rubber Band's transient handling) leaves.

onset_sharpness: librosa's onset-strength envelope (spectral flux, hop 256), at each detected onset
its peak over the envelope's median across the track; the median of that over the onsets. A
smeared attack spreads its flux over several frames, so its peak is lower against the rest."""
from __future__ import annotations

import numpy as np

HOP = 256


def onset_sharpness(y: np.ndarray, sr: int) -> float | None:
    """The median onset peak over the track's median onset strength; None without onsets."""
    import librosa
    y = np.asarray(y, dtype=np.float32)
    if y.ndim == 2:
        y = y.mean(axis=1)
    env = librosa.onset.onset_strength(y=y, sr=sr, hop_length=HOP)
    floor = float(np.median(env))
    peaks = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=HOP)
    if floor <= 0 or len(peaks) == 0:
        return None
    return round(float(np.median(env[peaks]) / floor), 3)
