"""The mastering chain of the post stage: gentle bus compression where a style wants it, then a
look-ahead limiter that holds the true peak (4x oversampled) at -1 dBTP.

The limiter computes, for every sample, the gain that would keep the oversampled peak around it
under the ceiling, takes the minimum of that over a window that reaches `lookahead` ahead and
`release` behind, and smooths it with a moving average no longer than the look-ahead. Each
smoothed value is an average of minima that all include the sample's own requirement, so the gain
is never above what the sample needs: the gain falls before a peak arrives (no overshoot, no
waveshaping) and comes back after it. Audio whose true peak is under the ceiling passes untouched.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import minimum_filter1d, uniform_filter1d
from scipy.signal import resample_poly

CEILING_DBTP = -1.0
OVERSAMPLE = 4
LOOKAHEAD = 0.005     # seconds: the gain starts to fall this long before a peak
RELEASE = 0.060       # seconds: and holds this long after it before it comes back


def true_peak(y: np.ndarray, oversample: int = OVERSAMPLE) -> float:
    """The largest |sample| of y upsampled `oversample` times (ITU-R BS.1770's true peak), linear."""
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return 0.0
    return float(np.max(np.abs(resample_poly(y, oversample, 1)), initial=0.0))


def dbtp(y: np.ndarray) -> float:
    return 20 * float(np.log10(true_peak(y) + 1e-12))


def _sample_peaks(y: np.ndarray, oversample: int) -> np.ndarray:
    """Per input sample, the largest |value| of the oversampled signal within one sample of it."""
    up = np.abs(resample_poly(np.asarray(y, dtype=np.float64), oversample, 1))[: len(y) * oversample]
    per = up.reshape(len(y), oversample).max(axis=1)
    return np.maximum(per, np.maximum(np.roll(per, 1), np.roll(per, -1)))


def limit_gain(y: np.ndarray, sr: int, *, ceiling_db: float = CEILING_DBTP, lookahead: float = LOOKAHEAD,
               release: float = RELEASE, oversample: int = OVERSAMPLE) -> np.ndarray:
    """The limiter's gain per sample (<= 1): y * limit_gain(y) has its true peak under the ceiling."""
    n = len(y)
    if n == 0:
        return np.ones(0, dtype=np.float32)
    ceiling = 10 ** (ceiling_db / 20) * 0.995  # a hair under: the oversampler's own ripple
    need = np.minimum(1.0, ceiling / np.maximum(_sample_peaks(y, oversample), 1e-12))
    if need.min() >= 1.0:
        return np.ones(n, dtype=np.float32)
    ahead, behind = max(1, int(lookahead * sr)), max(1, int(release * sr))
    size = ahead + behind + 1
    # the minimum over [i - behind, i + ahead]; scipy centres the window, origin moves it
    held = minimum_filter1d(need, size=size, mode="nearest", origin=(behind - ahead) // 2)
    # a centred moving average no wider than the look-ahead keeps every value <= its own need
    width = 2 * (ahead // 2) + 1
    gain = uniform_filter1d(held, size=width, mode="nearest")
    return np.minimum(gain, need).astype(np.float32)


def limit(y: np.ndarray, sr: int, **kwargs) -> np.ndarray:
    """y with its true peak held under the ceiling by the look-ahead limiter."""
    return (np.asarray(y, dtype=np.float32) * limit_gain(y, sr, **kwargs)).astype(np.float32)


def compress(y: np.ndarray, sr: int, *, threshold_db: float, ratio: float, attack_ms: float = 10.0,
             release_ms: float = 150.0) -> np.ndarray:
    """Gentle bus compression (pedalboard's compressor, JUCE's), for the styles that want it."""
    from pedalboard import Compressor
    out = Compressor(threshold_db=threshold_db, ratio=ratio, attack_ms=attack_ms,
                     release_ms=release_ms)(np.asarray(y, dtype=np.float32)[None, :], sr)
    return np.asarray(out[0], dtype=np.float32)
