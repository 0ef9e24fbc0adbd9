"""The mastering chain: a look-ahead limiter with 4x oversampled true-peak detection at -1 dBTP
that leaves audio under the ceiling alone (the old tanh waveshaper bent every sample past -7 dBFS
of any track with one peak over the ceiling), keeps -16 LUFS, and plays round a loop."""
from __future__ import annotations

import numpy as np

from conftest import SR

from melodymaker import audio
from melodymaker.mastering import dbtp, limit, limit_gain, true_peak


def music_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Chords and a kick: a normal crest factor, with a few kicks far louder than the rest."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(0.08 * np.sin(2 * np.pi * f * t + rng.uniform(0, 6)) for f in (220, 277.2, 329.6, 440))
    for k, at in enumerate(np.arange(0, seconds, 0.5)):
        n = np.arange(int(0.15 * SR))
        hit = (1.6 if k % 7 == 3 else 0.5) * np.sin(2 * np.pi * 55 * n / SR) * np.exp(-n / (0.04 * SR))
        i = int(at * SR)
        y[i:i + len(n)] += hit[: len(y) - i]
    return y.astype(np.float32)


def test_inter_sample_peaks_are_held_under_minus_one_dbtp():
    # a sine at a quarter of the sample rate, 45 degrees off: every sample is 3 dB under its true peak
    n = np.arange(SR)
    y = (1.2 * np.sin(np.pi / 2 * n + np.pi / 4)).astype(np.float32)
    assert np.max(np.abs(y)) < 0.9 and dbtp(y) > 1.0          # sample peaks would pass a plain peak check
    out = limit(y, SR)
    assert dbtp(out) <= -1.0 + 0.01


def test_only_what_is_near_a_loud_peak_is_touched_and_never_bent():
    y = music_like(6.0)
    level = audio.loudness_gain(y, SR)
    scaled = y * np.float32(level)
    gain = limit_gain(scaled, SR)
    out = scaled * gain
    assert dbtp(out) <= -1.0 + 0.01
    # samples past the old knee (-7 dBFS) that are far from any over-ceiling peak pass untouched
    knee = 10 ** (-7 / 20) * 10 ** (-1 / 20)
    loud = np.abs(scaled) > knee
    untouched = gain == 1.0
    assert np.sum(loud & untouched) > 0.5 * np.sum(loud & (np.abs(scaled) < 10 ** (-1 / 20)))
    # the gain is a smooth envelope (no per-sample waveshaping): it moves by less than 2 % per sample
    assert np.max(np.abs(np.diff(gain))) < 0.02
    # and it has fallen before the peak arrives: look-ahead, not a clip at the peak itself
    peak = int(np.argmax(np.abs(scaled)))
    assert gain[peak - int(0.002 * SR)] < 1.0


def test_the_post_stage_keeps_minus_16_lufs_and_the_true_peak_ceiling():
    out, curve = audio.normalize_with_gain(music_like(8.0), SR)
    assert abs(audio.loudness(out, SR) - audio.TARGET_LUFS) < 0.5
    assert true_peak(out) <= 10 ** (-1 / 20) * 1.002
    assert np.allclose(out, music_like(8.0) * curve, atol=1e-6)   # the curve is exactly what was applied


def test_audio_under_the_ceiling_is_not_touched():
    y = 0.3 * music_like(3.0) / np.max(np.abs(music_like(3.0)))
    assert np.array_equal(limit(y, SR), y.astype(np.float32))


def test_a_loop_is_limited_round_its_seam():
    y = music_like(4.0)
    y[-200:] += 1.5 * np.sin(np.arange(200) / 3.0)   # a peak right before the loop point
    out, curve = audio.normalize_with_gain(y, SR, loop=True)
    # the gain dips before the end's peak, and the start (what follows it in the loop) is released
    # from the same dip: no step where the loop comes round
    assert abs(float(curve[-1]) - float(curve[0])) < 0.02 * float(curve.max())
    assert dbtp(np.concatenate([out, out])) <= -1.0 + 0.01
