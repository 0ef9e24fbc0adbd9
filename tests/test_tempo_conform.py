"""The post stage's tempo conform on generated audio: a groove whose tempo drifts comes out on the
requested grid when each beat is stretched by its own rate, where one stretch for the whole track
only gets the average right; and the time map it reports."""
import numpy as np
import pytest

from conftest import SR
from melodymaker import audio


def drifting_clicks(start_bpm: float, end_bpm: float, seconds: float) -> tuple[np.ndarray, np.ndarray]:
    """Clicks whose tempo glides from start_bpm to end_bpm (a neural mode's wandering groove), and
    their times."""
    times, t = [], 0.0
    while t < seconds - 0.05:
        times.append(t)
        t += 60.0 / (start_bpm + (end_bpm - start_bpm) * t / seconds)
    y = np.zeros(int(seconds * SR), dtype=np.float32)
    click = np.arange(int(0.03 * SR)) / SR
    for k, at in enumerate(times):
        burst = ((0.8 if k % 4 == 0 else 0.5) * np.sin(2 * np.pi * (500 if k % 4 == 0 else 1000) * click)
                 * np.exp(-click * 150)).astype(np.float32)
        i = int(round(at * SR))
        y[i:i + len(burst)] += burst[:len(y) - i]
    return y, np.asarray(times)


def onset_intervals(y: np.ndarray) -> np.ndarray:
    import librosa
    onsets = librosa.onset.onset_detect(y=y, sr=SR, units="time", backtrack=False)
    return np.diff(onsets)


@pytest.mark.parametrize("target", [90.0, 128.0])
def test_a_drifting_groove_comes_out_on_the_grid(target):
    y, _ = drifting_clicks(100.0, 116.0, 12.0)
    aligned, info = audio.conform_tempo(y, SR, target)
    whole, plain = audio.conform_tempo(y, SR, target, align_beats=False)
    assert info["beats_aligned"] >= 16 and info["rate"] == plain["rate"]
    assert "map" in info and plain.keys() == {"measured_before", "rate"}
    beat = 60.0 / target
    folded = lambda d: d / beat if d > 0.75 * beat else 2 * d / beat   # a tracker may count half beats
    spread = {name: np.std([folded(d) for d in onset_intervals(z)[2:-2]]) for name, z in
              (("aligned", aligned), ("whole", whole))}
    # every beat lasts one beat of the target (to a few ms), where one rate leaves the drift (+-8 %)
    assert spread["aligned"] < 0.02 < spread["whole"], spread
    measured = audio.estimate_tempo(aligned, SR)[0]
    assert min(abs(measured * k - target) for k in (0.5, 1, 2)) / target < 0.01, measured


def test_a_steady_groove_is_stretched_as_before():
    """At a steady tempo every beat's rate is the track's: the same length and tempo as one stretch."""
    from conftest import click_track
    y = click_track(100.0, 10.0)
    aligned, info = audio.conform_tempo(y, SR, 120.0)
    whole, _ = audio.conform_tempo(y, SR, 120.0, align_beats=False)
    low, high = info["rate_range"]
    assert abs(low - info["rate"]) < 0.01 and abs(high - info["rate"]) < 0.01
    assert abs(len(aligned) - len(whole)) < 0.02 * len(whole)
    assert abs(audio.estimate_tempo(aligned, SR)[0] - 120.0) < 1.0


def test_the_time_map_goes_both_ways():
    knots = [[1.0, 0.8], [2.0, 1.7], [3.0, 2.5]]
    for t in (0.2, 1.0, 1.4, 2.9, 5.0):
        out = audio.warp_time(t, knots, 1.2)
        assert abs(audio.warp_time(out, knots, 1.2, inverse=True) - t) < 1e-9
    assert audio.warp_time(5.0, knots, 1.2) == pytest.approx(2.5 + 2.0 / 1.2)
    assert audio.warp_time(2.4, None, 1.2) == pytest.approx(2.0)   # no map: one rate from 0


def test_too_few_beats_fall_back_to_one_stretch():
    from conftest import click_track
    y = click_track(60.0, 3.0)
    assert len(audio.estimate_tempo(y, SR)[1]) < 4
    out, info = audio.conform_tempo(y, SR, 90.0)
    assert info.keys() == {"measured_before", "rate"} and abs(len(out) * info["rate"] / len(y) - 1) < 1e-3


def test_a_refined_beat_stays_within_its_search_window():
    """Onsets just past the search window (3-7 fine frames after the tracker's beats): the envelope's
    peak inside the window is at its edge and the parabola's vertex would lie beyond it (up to 49 ms
    away, before the vertex was clamped); each refined beat stays within a tracker frame of its beat."""
    rng = np.random.default_rng(1)
    hop, beats = 128, np.arange(0.5, 7.5, 0.5)
    for frames_late in range(3, 8):
        y = 0.01 * rng.standard_normal(SR * 8).astype(np.float32)
        for b in beats:
            i = int((b + frames_late * hop / SR) * SR)
            y[i:i + 300] += (np.hanning(600)[300:] * rng.standard_normal(300)).astype(np.float32)
        refined = audio.refine_beats(y, SR, beats, hop=hop)
        assert np.all(np.abs(refined - beats) <= (512 // hop + 1) * hop / SR + 1e-9)


def test_the_envelope_near_the_beats_is_the_whole_tracks():
    """onset_near (excerpts round each beat, one batched call) gives librosa's envelope of the whole
    track at those frames, beats at the very start and end included."""
    import librosa
    from conftest import click_track
    y = click_track(100.0, 6.0)
    whole = librosa.onset.onset_strength(y=y, sr=SR, hop_length=128)
    centre = np.array([0, 3, 400, len(whole) - 2])
    near = audio.onset_near(y, SR, centre, 5)
    for row, k in zip(near, centre):
        frames = np.arange(k - 5, k + 6)
        inside = (frames >= 0) & (frames < len(whole))
        np.testing.assert_allclose(row[inside], whole[frames[inside]], rtol=1e-4, atol=1e-4 * whole.max())
