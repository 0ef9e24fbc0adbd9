"""The mastering chain: gentle bus compression where a style wants it (the composer's styles:
bus()), then, in the post stage, a look-ahead limiter that holds the true peak (4x oversampled)
at -1 dBTP.

The limiter computes, for every sample, the gain that would keep the oversampled peak around it
under the ceiling, takes the minimum of that over a window that reaches `lookahead` ahead and
`release` behind, and smooths it with a moving average no longer than the look-ahead. Each
smoothed value is an average of minima that all include the sample's own requirement, so the gain
is never above what the sample needs: the gain falls before a peak arrives (no overshoot, no
waveshaping) and comes back after it. Audio whose true peak is under the ceiling passes untouched.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d, uniform_filter1d
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
    """Per input sample, the largest |value| of the oversampled signal within one sample of it
    (oversampled in float32: within 1e-6 of float64, in about half the time)."""
    up = np.abs(resample_poly(np.asarray(y, dtype=np.float32), oversample, 1))[: len(y) * oversample]
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


def compressor_gain(y: np.ndarray, sr: int, *, threshold_db: float, ratio: float,
                    attack: float = 0.010, release: float = 0.150, loop: bool = False) -> np.ndarray:
    """A gentle bus compressor's gain per sample (<= 1): the RMS level over `attack` seconds (of
    the channels together, for (n, 2) audio), reduced above threshold_db by (1 - 1/ratio) of the
    excess, the reduction reaching `attack` ahead (look-ahead) and held for `release` after, eased
    in over `attack`. A gain curve, not a
    waveshaper: multiplying each part of a mix by it compresses the whole mix (stems still sum).
    loop: y plays round, and so does the compressor (its gain is continuous where the loop comes round)."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 2:
        y = np.sqrt(np.mean(y ** 2, axis=1))
    if y.size == 0:
        return np.ones(0, dtype=np.float32)
    if loop:
        pad = min(len(y), int((attack + release) * sr) + 8)
        ring = np.concatenate([y[-pad:], y, y[:pad]])
        return compressor_gain(ring, sr, threshold_db=threshold_db, ratio=ratio, attack=attack,
                               release=release)[pad:pad + len(y)]
    a, r = max(1, int(attack * sr)), max(1, int(release * sr))
    level = 10 * np.log10(uniform_filter1d(y ** 2, size=a, mode="nearest") + 1e-12)
    reduce = np.maximum(0.0, level - threshold_db) * (1.0 - 1.0 / ratio)
    # the reduction a sample needs, held from `attack` ahead of it to `release` after it: the gain
    # starts to fall before a loud onset arrives (look-ahead), so attacks are caught, not passed
    held = maximum_filter1d(reduce, size=r + a + 1, mode="nearest", origin=(r - a) // 2)
    smooth = uniform_filter1d(held, size=a, mode="nearest")
    return (10 ** (-smooth / 20)).astype(np.float32)


def high_shelf(y: np.ndarray, sr: int, gain_db: float, cutoff_hz: float = 6000.0) -> np.ndarray:
    """A linear high-shelf EQ (pedalboard's), for a style whose mix should sound brighter."""
    y = np.asarray(y, dtype=np.float32)
    if not gain_db:
        return y
    from pedalboard import HighShelfFilter
    channels = np.ascontiguousarray(y.T if y.ndim == 2 else y[None, :])
    out = HighShelfFilter(cutoff_frequency_hz=cutoff_hz, gain_db=gain_db)(channels, sr)
    return np.asarray(out.T if y.ndim == 2 else out[0], dtype=np.float32)


def bus(y: np.ndarray, stems: dict[str, np.ndarray] | None, sr: int, *, threshold_db: float, ratio: float,
        shelf_db: float = 0.0, loop: bool = False) -> tuple[np.ndarray, dict[str, np.ndarray] | None]:
    """A style's bus processing: the shelf EQ, then the compressor's gain, on the mix and, the
    same way, on each stem (both are linear given the mix's gain curve, so the stems still sum).
    loop: the audio plays round (the compressor wraps; the shelf filter's few-sample memory is
    left to the loop's own crossfade-free render, which the shelf barely touches)."""
    bright = high_shelf(y, sr, shelf_db)
    gain = compressor_gain(bright, sr, threshold_db=threshold_db, ratio=ratio, loop=loop)
    if bright.ndim == 2:
        gain = gain[:, None]
    parts = {k: high_shelf(v, sr, shelf_db) * gain for k, v in stems.items()} if stems else stems
    return bright * gain, parts
