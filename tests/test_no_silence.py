"""No padded silence, any mode: every available mode, at a slow and a fast tempo, fills the requested
length with music (issue 16). Runs the shipped checkpoints in models/ on the small test library."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, SR, click_track

from melodymaker import audio, post
from melodymaker.engines import Capabilities
from melodymaker.request import GenerationRequest
from melodymaker.track import Track

MAX_TAIL = 0.25  # seconds below -60 dBFS at the end


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """The shipped models over a small built-in library (the conftest click tracks are silent
    between clicks, which is the music ending, not padding)."""
    from melodymaker.service import Service
    from melodymaker.settings import Settings
    genres = tmp_path_factory.mktemp("lib") / "genres"
    subprocess.run([sys.executable, "-m", "melodymaker", "library", "build", "--out", str(genres),
                    "--per-genre", "3", "--duration", "8", "--seed", "0", "-q"], cwd=ROOT, check=True)
    s = Service(Settings(genres_dir=genres, models_dir=ROOT / "models",
                         var_dir=tmp_path_factory.mktemp("var"), workers=1, max_queue=2), with_store=False)
    yield s
    s.close()


def test_silent_edges_measures_what_it_says():
    y = np.concatenate([np.zeros(SR // 2), click_track(120, 2) + 0.05, np.zeros(SR)]).astype(np.float32)
    lead, tail = audio.silent_edges(y, SR)
    assert abs(lead - 0.5) <= 0.011 and abs(tail - 1.0) <= 0.011
    assert max(audio.silent_edges(click_track(120, 2) + 0.05, SR)) < 0.011   # within one window


@pytest.mark.parametrize("native,target", [(120, 160), (120, 70), (90, 127), (140, 99)])
def test_a_sped_up_conform_still_fills_the_length(native, target):
    """A 'mode' that plays at its own tempo gets asked for enough audio: no zeros after the conform."""
    request = GenerationRequest.parse({"genre": "rock", "length": 6, "tempo": target, "seed": 1})
    caps = Capabilities(length=True)
    seconds = post.source_length(request, caps, native)
    assert seconds >= 6 * max(1.0, audio.stretch_rate(native, target))
    raw = Track(click_track(native, seconds) + 0.01 * np.sin(np.arange(int(seconds * SR))).astype(np.float32), SR)
    done = post.finish(raw, request, caps)
    assert len(done.audio) == 6 * SR
    assert audio.silent_edges(done.audio, SR)[1] <= MAX_TAIL
    # even when the engine's tempo was mispredicted, the fallback stretches rather than pads
    short = Track(click_track(native, 6 * 0.7) + 0.01, SR)
    done = post.finish(short, request, caps)
    assert len(done.audio) == 6 * SR and audio.silent_edges(done.audio, SR)[1] <= MAX_TAIL


@pytest.mark.parametrize("tempo", [70, 160])
def test_every_available_mode_fills_its_length_at_slow_and_fast_tempi(service, tempo):
    available = [name for name, e in service.engines.items() if e.availability() is None]
    assert {"dataset", "compose"} <= set(available)
    for mode in available:
        request = GenerationRequest.parse({"genre": "rock", "mode": mode, "length": 4, "tempo": tempo, "seed": 3})
        track, meta = service.generate(request)
        assert len(track.audio) == 4 * SR, mode
        lead, tail = audio.silent_edges(track.audio, SR)
        assert tail <= MAX_TAIL, f"{mode} at {tempo} BPM ends in {tail:.2f} s of silence"
        assert lead <= MAX_TAIL, f"{mode} at {tempo} BPM starts with {lead:.2f} s of silence"
