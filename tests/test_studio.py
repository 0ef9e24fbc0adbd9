"""Studio quality (issue 23, item 3): `quality: "studio"` gives 44.1 kHz stereo. compose renders a
true stereo mix (each role at its style's pan); the audio modes are upsampled and centred; the
default (`standard`, 22050 Hz mono) is unchanged. Real audio through Flask's test client."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from conftest import wait_done

from melodymaker import audio as mm_audio
from melodymaker.mastering import dbtp

STUDIO = 44100


def make(client, **body) -> dict:
    r = client.post("/api/tracks", json=body)
    assert r.status_code == 202, r.json
    return wait_done(client, r.json["id"])


def read(client, track_id: str, ext: str = "wav") -> tuple[np.ndarray, int, bytes]:
    r = client.get(f"/api/tracks/{track_id}/audio.{ext}")
    assert r.status_code == 200
    y, sr = sf.read(io.BytesIO(r.data), dtype="float32")
    return y, sr, r.data


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_compose_studio_is_a_true_stereo_mix_at_44k(client):
    # metal pans its harmony left (CC10 40) and its lead right (88)
    meta = make(client, genre="metal", mode="compose", length=10, seed=3, quality="studio")
    y, sr, _ = read(client, meta["id"])
    assert sr == STUDIO and y.shape == (10 * STUDIO, 2)
    assert np.corrcoef(y[:, 0], y[:, 1])[0, 1] < 0.99                 # not the same signal twice
    assert meta["quality"]["stereo"] == "true stereo" and meta["quality"]["sample_rate"] == STUDIO
    assert meta["request"]["quality"] == "studio"
    assert pyloudnorm.Meter(sr).integrated_loudness(y.astype(np.float64)) == pytest.approx(-16.0, abs=0.5)
    assert max(dbtp(y[:, 0]), dbtp(y[:, 1])) <= -0.9                     # -1 dBTP, and 16-bit rounding
    # the stems are stereo too, sum to the mix, and the role panned left is louder on the left
    z = zipfile.ZipFile(io.BytesIO(client.get(f"/api/tracks/{meta['id']}/stems.zip").data))
    stems = {name[:-4]: sf.read(io.BytesIO(z.read(name)), dtype="float32")[0]
             for name in z.namelist() if name.endswith(".wav")}
    assert all(part.shape == y.shape for part in stems.values())
    assert np.max(np.abs(sum(stems.values()) - y)) < 4 * len(stems) / 32768
    harmony, lead = stems["harmony"], stems["lead"]
    assert rms(harmony[:, 0]) > 1.3 * rms(harmony[:, 1]) and rms(lead[:, 1]) > 1.3 * rms(lead[:, 0])
    # the MP3 is stereo at 44.1 kHz too; the MIDI is the score, as for any composed track
    mp3, mp3_sr, _ = read(client, meta["id"], "mp3")
    assert mp3_sr == STUDIO and mp3.ndim == 2 and mp3.shape[1] == 2
    assert client.get(f"/api/tracks/{meta['id']}/audio.mid").data[:4] == b"MThd"


def test_audio_modes_in_studio_are_upsampled_and_centred(client):
    body = {"genre": "rock", "mode": "dataset", "length": 6, "seed": 1}
    studio = make(client, **body, quality="studio")
    standard = make(client, **body)
    y, sr, _ = read(client, studio["id"])
    mono, mono_sr, _ = read(client, standard["id"])
    assert sr == STUDIO and y.shape == (6 * STUDIO, 2) and np.array_equal(y[:, 0], y[:, 1])
    assert studio["quality"]["stereo"] == "upsampled, centred" and "centred" in studio["quality"]["note"]
    # the same music as the standard track, and as loud (centred at -3 dB a side)
    up = mm_audio.resample(mono, mono_sr, STUDIO)
    assert np.corrcoef(up, y[:, 0])[0, 1] > 0.999
    assert studio["loudness_lufs"] == pytest.approx(standard["loudness_lufs"], abs=0.3)
    assert studio["measured_tempo"] == standard["measured_tempo"]
    mp3, mp3_sr, _ = read(client, studio["id"], "mp3")
    assert mp3_sr == STUDIO and mp3.shape[1] == 2
    # its extension is conformed in mono as the parent was, then centred like it
    r = client.post(f"/api/tracks/{studio['id']}/extend", json={"seconds": 3})
    assert r.status_code == 202, r.json
    child = wait_done(client, r.json["id"])
    after, sr, _ = read(client, child["id"])
    assert sr == STUDIO and after.shape == (9 * STUDIO, 2) and np.array_equal(after[:, 0], after[:, 1])
    assert child["quality"]["stereo"] == "upsampled, centred"
    seam = int(round(child["seam"]["at"] * STUDIO))
    assert np.array_equal(after[:seam], y[:seam])


def test_standard_is_the_default_and_unchanged(client):
    body = {"genre": "jazz", "mode": "compose", "length": 5, "seed": 4}
    r1 = client.post("/generate", json=body)
    r2 = client.post("/generate", json={**body, "quality": "standard"})
    assert r1.status_code == r2.status_code == 200
    assert r1.data == r2.data                                           # byte for byte
    y, sr = sf.read(io.BytesIO(r1.data))
    assert sr == 22050 and y.shape == (5 * 22050,)
    meta = client.get(f"/api/tracks/{r1.headers['X-Track-Id']}").json["meta"]
    assert meta["quality"] == {"name": "standard", "label": "22.05 kHz mono", "sample_rate": 22050,
                               "channels": 1}


def test_a_bad_quality_is_a_400_naming_the_field_and_options_and_openapi_describe_it(client):
    for bad in ("hifi", 44100, True):
        r = client.post("/generate", json={"genre": "rock", "quality": bad})
        assert r.status_code == 400 and r.json["field"] == "quality"
        assert "standard" in r.json["message"] and "studio" in r.json["message"]
    quality = client.get("/api/options").json["quality"]
    assert quality["default"] == "standard" and [q["name"] for q in quality["qualities"]] == ["standard", "studio"]
    assert quality["studio"]["compose"] == "true stereo" and quality["studio"]["dataset"] == "upsampled, centred"
    field = client.get("/openapi.json").json["paths"]["/generate"]["post"]["requestBody"]["content"][
        "application/json"]["schema"]["properties"]["quality"]
    assert field["enum"] == ["standard", "studio"] and field["default"] == "standard"


def test_studio_loops_keep_their_points_and_extensions_stay_studio(client):
    loop = make(client, genre="reggae", mode="compose", length=4, tempo=120, seed=2, loop=True, quality="studio")
    y, sr, data = read(client, loop["id"])
    assert sr == STUDIO and y.shape == (4 * STUDIO, 2)                  # two bars of 4/4 at 120 BPM
    assert mm_audio.wav_loop(data) == (0, 4 * STUDIO) and loop["loop"]["end"] == 4 * STUDIO
    centred = make(client, genre="rock", mode="dataset", length=4, tempo=120, seed=2, loop=True, quality="studio")
    y, sr, data = read(client, centred["id"])
    assert y.shape == (4 * STUDIO, 2) and mm_audio.wav_loop(data) == (0, 4 * STUDIO)
    assert np.max(np.abs(y[0] - y[-1])) < 0.2                           # it plays round without a click

    parent = make(client, genre="metal", mode="compose", length=6, seed=5, quality="studio")
    before, _, _ = read(client, parent["id"])
    r = client.post(f"/api/tracks/{parent['id']}/extend", json={"seconds": 4})
    assert r.status_code == 202, r.json
    child = wait_done(client, r.json["id"])
    after, sr, _ = read(client, child["id"])
    assert sr == STUDIO and after.shape == (10 * STUDIO, 2)
    assert child["quality"]["name"] == "studio" and child["request"]["quality"] == "studio"
    seam = int(round(child["seam"]["at"] * STUDIO))
    assert np.array_equal(after[:seam], before[:seam])                  # the parent, bit for bit
    assert np.corrcoef(after[seam:, 0], after[seam:, 1])[0, 1] < 0.99     # still stereo after it


@pytest.fixture()
def fit_client(composed_library, tiny_models, tmp_path):
    from app import create_app
    from melodymaker.settings import Settings
    app = create_app(Settings(genres_dir=composed_library, models_dir=tiny_models, var_dir=tmp_path / "var"))
    yield app.test_client()
    app.extensions["melodymaker"].close()


def test_the_judges_hear_a_studio_track_in_mono(fit_client, tiny_models):
    meta = make(fit_client, genre="disco", mode="compose", length=6, seed=1, quality="studio")
    assert 0.0 <= meta["genre_fit"]["probability"] <= 1.0
    similar = fit_client.get(f"/api/tracks/{meta['id']}/similar?k=3").json["similar"]
    assert len(similar) == 3
    # what the judges hear of stereo 44.1 kHz is its mono fold at 22050 Hz
    from melodymaker.classify import load_judges
    judges = load_judges(tiny_models / "classifier")
    y, sr, _ = read(fit_client, meta["id"])
    heard, rate = judges.hear(y, sr)
    assert rate == 22050 and heard.shape == (6 * 22050,)
    folded = judges.verdict(mm_audio.resample(y.mean(axis=1), sr, 22050), 22050)
    assert judges.verdict(y, sr).combined == pytest.approx(folded.combined, abs=1e-6)
