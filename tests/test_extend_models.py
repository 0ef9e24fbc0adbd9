"""Extending a track in the neural modes (issue 22): DDIM, RAVE and MEL-GAN continue the raw audio of
a track they made from its tail, with the shipped checkpoints in models/, as a listener would judge
it: the length asked for, not silent, at the tail's loudness, no seam where the tail ends, the same
audio when asked again, and the base class's longer draw for a track stored without a tail."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ROOT, SR

from melodymaker.audio import seam_report
from melodymaker.engines import MODES
from melodymaker.engines.base import Parent
from melodymaker.request import GenerationRequest

NEURAL = ("ddim", "rave", "melgan")
GENRE = "disco"
AT, MORE = 3.0, 3.0  # raw seconds: where the continuation takes over in a 4 s track, and how much more
LEVEL_DB = 5.0       # a parent's own next second differs from its last by up to 4 (MEL-GAN) to 11 dB (DDIM)


def rms_db(y: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(y, dtype=np.float64)) + 1e-12))


@pytest.fixture(scope="module")
def settings(disco_library, tmp_path_factory):
    """The shipped checkpoints over a small built-in library of the genre (RAVE draws its latents
    from it), on one torch thread (with a busy second core, two threads ran slower, not faster)."""
    from melodymaker.settings import Settings
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Settings(genres_dir=disco_library, models_dir=ROOT / "models",
                   var_dir=tmp_path_factory.mktemp("extend") / "var")
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=NEURAL)
def extended(request, settings):
    """(mode, its engine, a Parent: a 4 s raw track's first 3 s as the tail, the continuation)."""
    mode = request.param
    engine = MODES[mode].load(settings, None)
    assert engine.availability() is None, engine.availability()
    asked = GenerationRequest.parse({"genre": GENRE, "mode": mode, "length": AT + 1, "seed": 3, "tempo": 120})
    raw = engine.generate(asked)
    parent = Parent(asked, raw.meta, at=AT, seconds=MORE, tail=raw.audio[: int(AT * SR)])
    return mode, engine, parent, engine.continue_from(parent)


def test_the_continuation_is_as_long_as_asked_and_music(extended):
    mode, _, parent, track = extended
    assert track.sr == SR and len(track.audio) >= MORE * SR
    assert track.meta["starts_at"] == AT and "tail" in track.meta["continued_by"]
    # within +-1 where the raw track was; DDIM's raw draws are not (its MDCT expansion squares the
    # coefficients; the post stage's limiter brings every delivered track under -1 dBTP): its
    # continuation is to be no peakier than the raw track it continues
    peak, tail_peak = np.max(np.abs(track.audio)), np.max(np.abs(parent.tail))
    assert np.all(np.isfinite(track.audio)) and peak <= (1.0 if tail_peak <= 1.0 else 1.5 * tail_peak), \
        (peak, tail_peak)
    seconds = track.audio[: int(MORE * SR)].reshape(int(MORE), SR)
    assert min(rms_db(s) for s in seconds) > -45, [round(rms_db(s), 1) for s in seconds]  # no silent second


def test_the_continuation_starts_at_the_tails_loudness(extended):
    mode, _, parent, track = extended
    before, after = rms_db(parent.tail[-SR:]), rms_db(track.audio[:SR])
    print(mode, f"last second of the tail {before:.1f} dB, first of the continuation {after:.1f} dB")
    assert abs(after - before) < LEVEL_DB, (before, after)


def test_no_seam_where_the_tail_ends(extended):
    mode, _, parent, track = extended
    report = seam_report(np.concatenate([parent.tail, track.audio]), SR, len(parent.tail))
    print(mode, {k: round(v, 4) for k, v in report.items()})
    for measure in ("jump", "loudness_step", "flux"):
        assert report[measure] <= report[f"{measure}_p99"], (measure, report)


def test_the_same_extension_asked_again_is_the_same_audio(extended):
    _, engine, parent, track = extended
    assert np.array_equal(engine.continue_from(parent).audio, track.audio)


def test_a_parent_stored_without_a_tail_gets_the_longer_draw(extended):
    _, engine, parent, _ = extended
    track = engine.continue_from(Parent(parent.request, parent.meta, at=AT, seconds=1.0))
    assert track.meta["starts_at"] == 0.0 and track.meta["continued_by"] == "the same seed's longer timeline"
    assert len(track.audio) >= (AT + 1.0) * SR


# -- the parts -------------------------------------------------------------------------------------
def test_a_continuation_trajectory_plays_on_the_passage_its_context_came_from():
    """RAVE: the context is a clip's passage (plus noise, as the parent's variation and the encoder
    add): the continuation plays that clip on from where the context ends, without a jump."""
    from train_rave.latents import continue_trajectory
    rng = np.random.default_rng(0)
    clips = [np.cumsum(rng.standard_normal((4, 400)), axis=1).astype(np.float32) for _ in range(3)]
    context = clips[1][:, 150:200] + 0.1 * rng.standard_normal((4, 50)).astype(np.float32)
    z, used = continue_trajectory(clips, context, 300, seed=4, frame_rate=43.0, variation=0.0)
    assert z.shape == (4, 300) and used[0] == {"clip": 1, "start": 200, "frames": used[0]["frames"], "at": 0,
                                               "matched": True}
    assert used[0]["frames"] >= 4 * 43 and used[1]["at"] == used[0]["frames"] - 22   # then the seed's draw
    n = used[0]["frames"] - 22
    np.testing.assert_allclose(z[:, 22:n], clips[1][:, 222:200 + n])     # the clip itself, once the offset fades
    steps = np.abs(np.diff(np.concatenate([context, z], axis=1), axis=1)).mean(axis=0)
    assert steps[context.shape[1] - 1] < 2 * np.median(steps)             # no jump where it takes over
    again, _ = continue_trajectory(clips, context, 300, seed=4, frame_rate=43.0, variation=0.15)
    assert not np.array_equal(again, z)


def test_a_trajectory_that_starts_mid_bar_keeps_the_grid():
    """RAVE: `phase` frames into a bar, a trajectory is the phase-0 one from that frame on."""
    from train_rave.latents import genre_trajectory
    rng = np.random.default_rng(1)
    clips = [rng.standard_normal((2, 900)).astype(np.float32) for _ in range(3)]
    grid = dict(frame_rate=43.0, variation=0.0, tempo=100.0, tempos=[120.0, 96.0, 110.0],
                first_beats=[0.2, 0.0, 0.1])
    whole, _ = genre_trajectory(clips, 600 + 17, 5, **grid)
    later, _ = genre_trajectory(clips, 600, 5, phase=17, **grid)
    np.testing.assert_array_equal(later, whole[:, 17:])


def test_the_hand_over_starts_where_the_tail_ends_and_keeps_its_level():
    """The tail's prediction continues a tone sample for sample, and noise at its level."""
    from melodymaker.engines.continuation import extrapolate, hand_over
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    np.testing.assert_allclose(extrapolate(tone[:SR // 2], 1000), tone[SR // 2: SR // 2 + 1000], atol=0.02)
    noise = np.random.default_rng(2).standard_normal(SR).astype(np.float32) * 0.1
    assert abs(rms_db(extrapolate(noise, 2048)) - rms_db(noise)) < 2.0
    joined = np.concatenate([tone[: SR // 2], hand_over(tone[: SR // 2], -tone[SR // 2:], SR)])
    assert np.abs(np.diff(joined)).max() < 1.2 * np.abs(np.diff(tone)).max()  # opposite phase: no click
    assert np.array_equal(hand_over(tone[:100], noise, SR)[int(0.05 * SR):], noise[int(0.05 * SR):])


def test_a_ddim_continuation_starts_one_step_from_the_tails_last_sample(settings):
    """DDIM: the known frames rebuild the tail up to its end, so the new audio flows on from its last sample."""
    engine = MODES["ddim"].load(settings, None)
    tail = engine.model.sample(GENRE, 1.0, 9)
    y, known = engine.model.continue_audio(tail, GENRE, 0.5, 1)
    assert known == engine.model.defaults["overlap"] and len(y) == SR // 2
    assert abs(float(y[0] - tail[-1])) <= 2 * np.abs(np.diff(tail[-64:])).max()
