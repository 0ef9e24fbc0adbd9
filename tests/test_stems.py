"""Stems: a composed track's roles apart (GET /api/tracks/{id}/stems.zip), sample-aligned, given the
mix's gains so that they sum to the mix; the audio modes have none (409 with the reason)."""
import io
import zipfile

import numpy as np
import pretty_midi
import pytest
import soundfile as sf


def error_db(parts: list[np.ndarray], mix: np.ndarray) -> float:
    """How far the parts' sum is from the mix, in dB relative to the mix (RMS)."""
    residual = np.sum(parts, axis=0) - mix
    return 20 * np.log10(np.sqrt(np.mean(residual ** 2)) / np.sqrt(np.mean(mix ** 2)) + 1e-12)


def stems_of(client, body) -> tuple[dict, np.ndarray, dict[str, np.ndarray], zipfile.ZipFile]:
    r = client.post("/generate", json=body)
    assert r.status_code == 200, r.json
    status = client.get(f"/api/tracks/{r.headers['X-Track-Id']}").json
    mix, sr = sf.read(io.BytesIO(r.data), dtype="float64")
    got = client.get(status["stems"])
    assert got.status_code == 200 and got.mimetype == "application/zip"
    assert "stems.zip" in got.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(got.data))
    parts = {}
    for name in archive.namelist():
        if name.endswith(".wav"):
            parts[name[:-4]], part_sr = sf.read(io.BytesIO(archive.read(name)), dtype="float64")
            assert part_sr == sr
    return status, mix, parts, archive


@pytest.mark.parametrize("body, roles", [
    ({"genre": "rock", "length": 6, "seed": 3}, ["drums", "bass", "harmony", "lead"]),
    ({"genre": "classical", "length": 5, "seed": 1, "meter": "3/4"}, ["bass", "harmony", "lead"]),
    ({"genre": "disco", "length": 4, "seed": 2, "tempo": 120, "loop": True,
      "instruments": ["strings", "synth pad", "synth bass"]}, ["drums", "bass", "harmony", "lead"]),
])
def test_composed_stems_are_the_roles_and_sum_to_the_mix(client, body, roles):
    status, mix, parts, archive = stems_of(client, {**body, "mode": "compose"})
    assert status["meta"]["stems"] == roles and sorted(parts) == sorted(roles)
    assert all(len(p) == len(mix) for p in parts.values())  # sample-aligned, the mix's length
    assert error_db(list(parts.values()), mix) < -40
    assert all(np.sqrt(np.mean(p ** 2)) > 1e-3 for p in parts.values())  # each part plays
    score = pretty_midi.PrettyMIDI(io.BytesIO(archive.read("score.mid")))
    assert {p.name for p in score.instruments} >= set(status["meta"]["instruments"]) - {""}


def test_audio_modes_have_no_stems_409_with_the_reason(client):
    r = client.post("/generate", json={"genre": "jazz", "mode": "dataset", "length": 2, "seed": 1})
    assert r.status_code == 200
    status = client.get(f"/api/tracks/{r.headers['X-Track-Id']}").json
    assert status["stems"] is None and status["meta"]["stems"] == []
    got = client.get(f"/api/tracks/{r.headers['X-Track-Id']}/stems.zip")
    assert got.status_code == 409 and "one mixed signal" in got.json["message"]
    assert client.get("/api/tracks/" + "0" * 32 + "/stems.zip").status_code == 404
    caps = {m["name"]: m["capabilities"]["stems"] for m in client.get("/api/options").json["modes"]}
    assert caps == {"dataset": False, "rave": False, "compose": True, "ddim": False, "melgan": False}
    assert "409" in client.get("/openapi.json").json["paths"]["/api/tracks/{track_id}/stems.zip"]["get"]["responses"]
