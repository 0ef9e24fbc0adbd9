"""Loops: a whole number of bars that repeats without a click or a gap (compose writes the last bar
into the first and wraps its reverb tail; audio modes crossfade their tail into their head), loop
points in the WAV's smpl chunk and the metadata, and 400s for a bad `loop`."""
import io

import numpy as np
import pytest
import soundfile as sf

from melodymaker import audio
from melodymaker import options as opt
from melodymaker.errors import InvalidRequest
from melodymaker.request import GenerationRequest

WINDOW = 0.01  # seconds: the short window the loudness jump is measured over


def loop_of(value) -> bool:
    return GenerationRequest.parse({"genre": "pop", "loop": value}).loop


def test_loop_parses_from_json_and_from_a_form():
    assert loop_of(None) is loop_of("") is loop_of(False) is loop_of("false") is loop_of("0") is False
    assert loop_of(True) is loop_of("true") is loop_of(" TRUE ") is loop_of("1") is loop_of(1) is True


@pytest.mark.parametrize("bad", ["yes", "on", 2, -1, 0.5, "loop", ["true"], {"on": True}])
def test_a_bad_loop_is_400_naming_the_field_and_the_values(client, bad):
    with pytest.raises(InvalidRequest) as e:
        GenerationRequest.parse({"genre": "pop", "loop": bad})
    assert e.value.field == "loop"
    r = client.post("/generate", json={"genre": "rock", "length": 2, "loop": bad})
    assert r.status_code == 400 and r.json["field"] == "loop"
    assert "true or false" in r.json["message"] and "1 or 0" in r.json["message"]


def seam(y: np.ndarray, sr: int) -> dict:
    """Play y twice end to end and compare the seam with every point inside the track: the sample
    jump (beside the largest inside: a note's attack is one) and the loudness step, in dB, between the WINDOW before a point and the WINDOW after it (beside
    the largest such step at any point inside, a millisecond apart, so attacks count wherever they
    fall)."""
    jumps = np.abs(np.diff(y))
    h, n = int(WINDOW * sr), len(y)
    twice = np.concatenate([y, y]).astype(np.float64)
    energy = np.concatenate([[0.0], np.cumsum(twice ** 2)])

    def step(points):
        before = (energy[points] - energy[points - h]) / h
        after = (energy[points + h] - energy[points]) / h
        return np.abs(10 * np.log10((after + 1e-10) / (before + 1e-10)))

    inside = np.arange(h, n - h, max(1, sr // 1000))
    return {"jump": abs(float(twice[n] - twice[n - 1])), "jump_inside": float(np.max(jumps)),
            "step": float(step(np.array([n]))[0]), "step_inside": float(np.max(step(inside)))}


def generate(client, body) -> tuple[np.ndarray, int, dict, bytes]:
    r = client.post("/generate", json=body)
    assert r.status_code == 200, r.json
    meta = client.get(f"/api/tracks/{r.headers['X-Track-Id']}").json["meta"]
    y, sr = sf.read(io.BytesIO(r.data), dtype="float32")
    return y, sr, meta, r.data


@pytest.mark.parametrize("genre, meter, tempo, length, bars", [
    ("pop", "4/4", 120, 7, 4),          # 7 s is 3.5 bars of 2 s: rounds to 4
    ("jazz", "3/4", 90, 5.1, 3),        # bars of 2 s
    ("blues", "6/8", 60, 10.6, 5),      # bars of two dotted quarters at 60: 2 s
])
def test_a_composed_loop_is_whole_bars_and_repeats_without_a_seam(client, genre, meter, tempo, length, bars):
    y, sr, meta, wav = generate(client, {"genre": genre, "mode": "compose", "tempo": tempo, "meter": meter,
                                         "length": length, "seed": 5, "loop": True})
    n = int(round(bars * opt.METERS[meter].bar_seconds(tempo) * sr))
    assert len(y) == n and meta["details"]["samples"] == n and meta["length"] == pytest.approx(n / sr)
    assert {k: meta["loop"][k] for k in ("start", "end", "bars")} == {"start": 0, "end": n, "bars": bars}
    assert audio.wav_loop(wav) == (0, n)
    found = seam(y, sr)
    assert found["jump"] <= found["jump_inside"], found
    # the loop's first downbeat follows its cadence bar: a style whose bus compressor evens out the
    # steps inside (pop since style version 2) may leave that one a little above them (a fade or a
    # gap shows tens of dB: test_without_loop_the_same_track_has_a_seam)
    assert found["step"] <= found["step_inside"] + 1.5, found
    assert 20 * np.log10(np.sqrt(np.mean(y[: int(WINDOW * sr)] ** 2)) + 1e-9) > -50  # no fade-in


def test_without_loop_the_same_track_has_a_seam(client):
    """The measure has teeth: the fades of an ordinary track show at its seam."""
    y, sr, meta, wav = generate(client, {"genre": "pop", "mode": "compose", "tempo": 120, "length": 7,
                                         "seed": 5})
    found = seam(y, sr)
    assert found["step"] > found["step_inside"], found
    assert audio.wav_loop(wav) is None and "loop" not in meta


def test_an_audio_mode_crossfades_its_tail_into_its_head(client):
    """The dataset mode: bars counted in 4/4 at the requested tempo, the seam as smooth as inside, and
    the MP3 says it cannot loop gaplessly."""
    y, sr, meta, wav = generate(client, {"genre": "blues", "mode": "dataset", "tempo": 100, "length": 5,
                                         "seed": 2, "loop": "1"})
    bar = 4 * 60 / 100
    assert meta["loop"]["bars"] == 2 and meta["loop"]["crossfade"] == opt.LOOP_CROSSFADE
    assert len(y) == int(round(2 * bar * sr)) == meta["loop"]["end"] and audio.wav_loop(wav) == (0, len(y))
    found = seam(y, sr)
    assert found["jump"] <= found["jump_inside"] and found["step"] <= found["step_inside"], found
    status = client.get(f"/api/tracks/{meta['id']}").json
    assert "not gapless" in status["file_notes"]["mp3"]


def test_options_and_openapi_describe_the_loop(client):
    body = client.get("/openapi.json").json["paths"]["/generate"]["post"]["requestBody"]
    loop = body["content"]["application/json"]["schema"]["properties"]["loop"]
    assert loop["default"] is False and "smpl" in loop["description"]
    caps = {m["name"]: m["capabilities"]["loop"] for m in client.get("/api/options").json["modes"]}
    assert caps == {"dataset": False, "rave": False, "compose": True, "ddim": False, "melgan": False}
