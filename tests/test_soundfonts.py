"""SoundFonts: compose requests render through the best General MIDI font on the machine, named
everywhere; the built-in library stays pinned to TimGM6mb; a large font is loaded once per process.

FluidR3_GM comes from Debian's fluid-soundfont-gm (.ci/run installs it); without it those tests
skip and say so."""
from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest
import soundfile as sf

from melodymaker import midi
from melodymaker.compose.builder import build_clip, clip_paths
from melodymaker.midi import DEFAULT_SOUNDFONT, SYSTEM_SOUNDFONTS, request_soundfont
from melodymaker.request import GenerationRequest

FLUID = SYSTEM_SOUNDFONTS[0]
needs_fluid = pytest.mark.skipif(not FLUID.is_file(), reason=f"no {FLUID} (apt-get install fluid-soundfont-gm)")


def compose(settings, **kwargs):
    from melodymaker.service import Service
    service = Service(settings, modes=["compose"], with_store=False)
    try:
        body = {"genre": "jazz", "mode": "compose", "length": 4, "seed": 3, **kwargs}
        track, meta = service.generate_one(GenerationRequest.parse(body))
        return track, meta, service.health()
    finally:
        service.close()


def test_a_font_in_models_soundfonts_comes_first(tmp_path):
    own = tmp_path / "models" / "soundfonts"
    own.mkdir(parents=True)
    assert request_soundfont(tmp_path / "models") in (*SYSTEM_SOUNDFONTS, DEFAULT_SOUNDFONT)
    shutil.copy(DEFAULT_SOUNDFONT, own / "Mine.sf2")
    assert request_soundfont(tmp_path / "models") == own / "Mine.sf2"


def test_the_bundled_font_renders_and_is_named(settings):
    import dataclasses
    track, meta, health = compose(dataclasses.replace(settings, soundfont=DEFAULT_SOUNDFONT))
    assert meta["details"]["soundfont"] == "TimGM6mb.sf2"
    assert health["soundfont"]["name"] == "TimGM6mb.sf2" and health["soundfont"]["bundled"] is True
    assert len(track.audio) == 4 * track.sr and np.sqrt(np.mean(track.audio ** 2)) > 0.01


@needs_fluid
def test_fluidr3_is_used_for_requests_when_installed_and_sounds_different(settings):
    import dataclasses
    track, meta, health = compose(settings)       # no MELODYMAKER_SOUNDFONT: the best font here
    assert meta["details"]["soundfont"] == "FluidR3_GM.sf2"
    assert health["soundfont"]["name"] == "FluidR3_GM.sf2" and health["soundfont"]["megabytes"] > 100
    small, _, _ = compose(dataclasses.replace(settings, soundfont=DEFAULT_SOUNDFONT))
    assert len(track.audio) == len(small.audio)
    assert abs(np.corrcoef(track.audio, small.audio)[0, 1]) < 0.9   # other samples, not the same audio
    assert meta["loudness_lufs"] == pytest.approx(-16, abs=1.0)


@needs_fluid
def test_a_large_font_is_loaded_once_however_many_renders_run_at_once(settings):
    from melodymaker.service import Service
    service = Service(settings, modes=["compose"], with_store=False)
    done = []

    def one(seed):
        done.append(service.generate_one(GenerationRequest.parse(
            {"genre": "pop", "mode": "compose", "length": 3, "seed": seed}))[1]["details"]["soundfont"])
    threads = [threading.Thread(target=one, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    service.close()
    assert done == ["FluidR3_GM.sf2"] * 3
    assert midi.loaded_synths()["FluidR3_GM.sf2"] == 1


def test_the_library_stays_on_timgm6mb_whatever_the_machine_has(tmp_path, monkeypatch):
    # even with a user's font configured, a library clip is rendered with the bundled font and
    # says so; the same clip built again is kept (same spec, same bytes)
    monkeypatch.setenv("MELODYMAKER_SOUNDFONT", str(FLUID if FLUID.is_file() else DEFAULT_SOUNDFONT))
    out = tmp_path / "genres"
    assert build_clip((str(out), "blues", 0, 0, 3.0)) == "written"
    audio, sidecar = clip_paths(out, "blues", 0)
    import json
    meta = json.loads(sidecar.read_text())
    assert meta["soundfont"] == "TimGM6mb.sf2" and meta["style_version"] == 1
    first = audio.read_bytes()
    monkeypatch.delenv("MELODYMAKER_SOUNDFONT")
    audio.unlink()
    assert build_clip((str(out), "blues", 0, 0, 3.0)) == "written"
    assert audio.read_bytes() == first
    assert build_clip((str(out), "blues", 0, 0, 3.0)) == "kept"
    # a sidecar written before the font and style version were recorded counts as TimGM6mb, v1
    del meta["soundfont"], meta["style_version"]
    sidecar.write_text(json.dumps(meta))
    assert build_clip((str(out), "blues", 0, 0, 3.0)) == "kept"
    y, sr = sf.read(audio)
    assert sr == 22050 and len(y) == 3 * 22050


@needs_fluid
def test_standard_and_studio_renders_share_the_large_fonts_one_synthesizer(settings):
    track, meta, _ = compose(settings, quality="studio")
    assert track.sr == 44100 and track.audio.ndim == 2 and meta["details"]["soundfont"] == "FluidR3_GM.sf2"
    small, _, _ = compose(settings)
    assert small.sr == 22050
    again, _, _ = compose(settings, quality="studio")
    assert np.array_equal(again.audio, track.audio)      # retargeting the rate leaves no trace
    assert midi.loaded_synths()["FluidR3_GM.sf2"] == 1
