"""A library with real-world trouble is indexed without crashing; bad entries are listed with reasons."""
import io
import os

import numpy as np
import pytest
import soundfile as sf

from conftest import click_track, tone

SR = 22050


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    root = base / "genres"
    pop, rock = root / "pop", root / "ROCK"
    pop.mkdir(parents=True)
    rock.mkdir(parents=True)
    for sr in (44100, 48000):
        stereo = np.stack([click_track(110, 8, sr), tone(440, 8, sr)], axis=1) * 0.6
        sf.write(pop / f"stereo {sr}.ogg", stereo, sr, format="OGG")
        sf.write(pop / f"stereo {sr}.flac", stereo, sr)
    sf.write(pop / "gtzan.00000.au", click_track(110, 8), SR, format="AU", subtype="PCM_16")
    sf.write(pop / "Café déjà vu ♪.wav", click_track(110, 6), SR)
    sf.write(rock / "LOUD.WAV", click_track(120, 6), SR)
    (rock / "zero.wav").write_bytes(b"")
    buf = io.BytesIO()
    sf.write(buf, click_track(120, 6), SR, format="FLAC")
    (rock / "truncated.flac").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    (rock / "notes.au").write_text("this is a text file, renamed\n" * 50)
    (rock / "folder.wav").mkdir()
    outside = base / "outside.wav"
    sf.write(outside, click_track(120, 4), SR)
    os.symlink(outside, rock / "escape.wav")
    sf.write(rock / "ten minutes.flac", (0.1 * np.sin(np.arange(SR * 600) * 0.05)).astype(np.float32), SR)
    return root


@pytest.fixture()
def hostile_client(hostile_dir, tmp_path):
    from app import create_app
    from melodymaker.settings import Settings
    app = create_app(Settings(genres_dir=hostile_dir, models_dir=tmp_path / "m", var_dir=tmp_path / "var"))
    yield app.test_client()
    app.extensions["melodymaker"].close()


def test_hostile_library_is_indexed_and_bad_entries_listed(hostile_client):
    h = hostile_client.get("/api/health").json
    skipped = {s["path"]: s["reason"] for s in h["library"]["skipped"]}
    assert "ROCK/zero.wav" in skipped and "empty" in skipped["ROCK/zero.wav"]
    assert "ROCK/notes.au" in skipped
    assert "ROCK/folder.wav" in skipped
    assert "outside" in skipped["ROCK/escape.wav"]
    names = {c["name"] for c in hostile_client.get("/api/library").json["clips"]}
    assert {"stereo 44100.ogg", "stereo 48000.flac", "gtzan.00000.au", "Café déjà vu ♪.wav",
            "LOUD.WAV", "ten minutes.flac"} <= names
    assert "escape.wav" not in names


def test_clips_with_odd_names_stream_as_wav(hostile_client):
    r = hostile_client.get("/api/library/pop/Café déjà vu ♪.wav")
    assert r.status_code == 200 and r.data[:4] == b"RIFF"
    assert hostile_client.get("/api/library/rock/escape.wav").status_code == 404


def test_generation_still_works_and_the_truncated_file_is_reported(hostile_client):
    modes = [m["name"] for m in hostile_client.get("/api/options").json["modes"] if m["available"]]
    assert {"dataset", "compose"} <= set(modes)
    for mode in modes:
        for genre in ("pop", "rock"):
            for seed in range(2):
                r = hostile_client.post("/generate", json={"genre": genre, "length": 4, "seed": seed,
                                                           "tempo": 115, "mode": mode})
                assert r.status_code == 200, (mode, r.json)
                y, sr = sf.read(io.BytesIO(r.data))
                assert len(y) == 4 * sr
    # once a generation or stream has touched it, the truncated FLAC is either usable or listed
    hostile_client.get("/api/library/rock/truncated.flac")
    h = hostile_client.get("/api/health").json
    clips = {c["name"] for c in hostile_client.get("/api/library?genre=rock").json["clips"]}
    listed = {s["path"] for s in h["library"]["skipped"]}
    assert "truncated.flac" in clips or "ROCK/truncated.flac" in listed
