"""Style version 2: hip-hop with a sub-heavy 808-style bass that follows the kick and a swung
sixteenth hi-hat, pop with a brighter, compressed mix. Compose requests use it; the library stays
on version 1 (test_soundfonts checks the sidecar), so the models keep their training data."""
from __future__ import annotations

import numpy as np
import librosa

from melodymaker.compose.composer import compose, perform
from melodymaker.compose.styles import STYLE_VERSION, style_of
from melodymaker.engines.compose import _bus
from melodymaker.midi import DEFAULT_SOUNDFONT

SR = 22050
CLOSED_HAT = 42


def render(genre: str, version: int, seed: int = 2, length: float = 12.0) -> np.ndarray:
    y, _, facts = perform(genre, tempo=90, length=length, seed=seed, style_version=version,
                          soundfont=DEFAULT_SOUNDFONT)
    assert facts["style_version"] == version
    y, _ = _bus(genre, version, y, None, SR)
    return y


def band_share(y: np.ndarray, below_hz: float) -> float:
    spec = np.abs(librosa.stft(y, n_fft=4096)) ** 2
    freqs = librosa.fft_frequencies(sr=SR, n_fft=4096)
    return float(spec[freqs < below_hz].sum() / spec.sum())


def test_requests_use_the_newest_styles_and_the_old_ones_stay():
    assert STYLE_VERSION == 2
    assert style_of("hiphop", 1).bus is None and style_of("hiphop", 2).bus is not None
    assert style_of("jazz", 1) is style_of("jazz", 2)           # only hip-hop and pop were revised


def test_hiphop_has_a_sub_bass_and_a_swung_sixteenth_hat():
    shares = {v: np.mean([band_share(render("hiphop", v, seed=s), 50) for s in (1, 2)]) for v in (1, 2)}
    assert shares[2] > 2 * shares[1], shares                      # the 808 lives under 50 Hz
    score, facts = compose("hiphop", tempo=90, length=12, seed=2, style_version=2)
    sixteenth = 60 / 90 / 4
    hats = sorted(n.start for inst in score.instruments if inst.is_drum for n in inst.notes
                  if n.pitch == CLOSED_HAT)
    bars = facts["bars"]
    assert len(hats) >= 14 * bars                                  # sixteenths, not eighths
    # swung: the off sixteenths fall late, past the straight grid
    pos = (np.asarray(hats) / sixteenth) % 2
    late = pos[(pos > 0.5) & (pos < 1.8)]
    assert len(late) > 4 * bars and np.median(late) > 1.05


def test_pop_is_brighter_and_more_compressed():
    def centroid(y):
        return float(np.mean(librosa.feature.spectral_centroid(y=y, sr=SR)))

    def crest_db(y):
        frames = librosa.util.frame(y, frame_length=2048, hop_length=1024)
        rms = np.sqrt(np.mean(frames ** 2, axis=0))
        rms = rms[rms > 1e-4]
        return float(20 * np.log10(np.percentile(rms, 95) / np.percentile(rms, 20)))
    old, new = render("pop", 1), render("pop", 2)
    assert centroid(new) > 1.1 * centroid(old)
    assert crest_db(new) < crest_db(old)
