"""Shared fixtures: a small real library of generated audio in a temporary genres/ folder."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SR = 22050
CLICK_BPM = 100.0


def click_track(bpm: float, seconds: float, sr: int = SR, *, accent_every: int = 4,
                pitch: float = 1000.0) -> np.ndarray:
    """A metronome: short decaying clicks on every beat, the downbeat louder and lower."""
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    t = np.arange(int(0.03 * sr)) / sr
    n_beats = int(seconds * bpm / 60)
    for k in range(n_beats):
        f = pitch / 2 if k % accent_every == 0 else pitch
        amp = 0.8 if k % accent_every == 0 else 0.5
        click = (amp * np.sin(2 * np.pi * f * t) * np.exp(-t * 150)).astype(np.float32)
        at = int(round(k * 60 / bpm * sr))
        y[at: at + len(click)] += click[: len(y) - at]
    return y


def tone(freq: float, seconds: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise_bursts(bpm: float, seconds: float, sr: int = SR, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.zeros(int(seconds * sr), dtype=np.float32)
    burst = int(0.05 * sr)
    env = np.exp(-np.arange(burst) / (0.01 * sr)).astype(np.float32)
    for k in range(int(seconds * bpm / 60)):
        at = int(k * 60 / bpm * sr)
        n = min(burst, len(y) - at)
        y[at: at + n] += 0.5 * rng.standard_normal(n).astype(np.float32) * env[:n]
    return y


def make_library(root: Path) -> Path:
    """genres/ with click tracks (rock, jazz), tone+click mixes, noise, and one broken file."""
    rock, jazz, blues = root / "rock", root / "Jazz", root / "blues"  # case-insensitive folder
    for d in (rock, jazz, blues):
        d.mkdir(parents=True)
    sf.write(rock / "rock.00000.au", click_track(CLICK_BPM, 12), SR, format="AU", subtype="PCM_16")
    sf.write(rock / "rock.00001.wav", click_track(CLICK_BPM, 12, pitch=1500), SR, subtype="PCM_16")
    mix = click_track(CLICK_BPM, 10) + tone(220, 10)
    sf.write(jazz / "jazz 00000.flac", 0.7 * mix, SR)
    stereo = np.stack([click_track(CLICK_BPM, 10, 44100), tone(330, 10, 44100)], axis=1)
    sf.write(jazz / "jazz.00001.ogg", 0.7 * stereo, 44100, format="OGG")
    sf.write(blues / "blues.00000.wav", noise_bursts(90, 8) + tone(110, 8), SR, subtype="PCM_16")
    (blues / "broken.au").write_bytes(b"this is not audio at all" * 10)
    (blues / "empty.wav").write_bytes(b"")
    return root


@pytest.fixture(scope="session")
def library_dir(tmp_path_factory) -> Path:
    return make_library(tmp_path_factory.mktemp("lib") / "genres")


@pytest.fixture()
def settings(library_dir, tmp_path):
    from melodymaker.settings import Settings
    return Settings(genres_dir=library_dir, models_dir=tmp_path / "models", var_dir=tmp_path / "var",
                    workers=2, max_queue=8)


@pytest.fixture()
def app(settings):
    from app import create_app
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["melodymaker"].close()


@pytest.fixture()
def client(app):
    return app.test_client()


COMPOSED_GENRES = ("classical", "disco", "metal", "reggae")


@pytest.fixture(scope="session")
def composed_library(tmp_path_factory) -> Path:
    """Five 8-second composer clips of four genres, built by the real library builder."""
    from melodymaker.compose.builder import build_library
    root = tmp_path_factory.mktemp("composed") / "genres"
    build_library(root, per_genre=5, seed=0, duration=8.0, workers=2, progress=False,
                  genres=COMPOSED_GENRES)
    return root


@pytest.fixture(scope="session")
def disco_library(tmp_path_factory) -> Path:
    """Three 6-second disco clips by the real library builder: what the neural modes' extension
    tests continue from (RAVE draws its latents from a library of the genre)."""
    from melodymaker.compose.builder import build_library
    root = tmp_path_factory.mktemp("disco") / "genres"
    build_library(root, per_genre=3, seed=0, duration=6.0, workers=1, progress=False, genres=("disco",))
    return root


@pytest.fixture(scope="session")
def tiny_models(composed_library, tmp_path_factory) -> Path:
    """A models/ folder holding a small classifier trained on composed_library through its CLI."""
    from melodymaker.classify.training import main
    models = tmp_path_factory.mktemp("models")
    rc = main(["train", "--genres", str(composed_library), "--out", str(models / "classifier"),
               "--seed", "0", "--epochs", "6", "--crops-per-clip", "6", "--batch-size", "16",
               "--n-mels", "32", "--channels", "8,16,32", "--embed-dim", "32", "--segment", "2.0",
               "--test-fraction", "0.2", "--workers", "1", "--eval-every", "6"])
    assert rc == 0
    return models


# -- a trained mode in the running server (MEL-GAN, RAVE, DDIM) -----------------------------------
def serve_mode(settings, mode: str, genre: str, *, length: int = 3, seed: int = 2,
               tempo: float | None = None) -> np.ndarray:
    """Start the app on `settings`: `mode` is listed available and POST /generate answers a WAV
    of exactly `length` seconds at 22050 Hz (with a `tempo`, its X-Tempo header says that BPM);
    returns its samples."""
    import io

    from app import create_app
    app = create_app(settings)
    try:
        client = app.test_client()
        modes = {m["name"]: m for m in client.get("/api/options").json["modes"]}
        assert modes[mode]["available"], modes[mode]["reason"]
        body = {"genre": genre, "mode": mode, "length": length, "seed": seed}
        r = client.post("/generate", json=body if tempo is None else {**body, "tempo": tempo})
        assert r.status_code == 200, r.json
        if tempo is not None:
            assert float(r.headers["X-Tempo"]) == tempo
        y, sr = sf.read(io.BytesIO(r.data))
        assert sr == SR and len(y) == length * SR
        return y
    finally:
        app.extensions["melodymaker"].close()


def refuse_mode_and_serve(settings, mode: str) -> str:
    """Start the app on `settings`: `mode` is listed unavailable with a reason (the same in
    /api/health), asking for it gets 503 naming the `mode` field, and the dataset mode still
    answers with a WAV; returns the reason."""
    from app import create_app
    app = create_app(settings)
    try:
        client = app.test_client()
        modes = {m["name"]: m for m in client.get("/api/options").json["modes"]}
        reason = modes[mode]["reason"]
        assert modes[mode]["available"] is False and reason
        assert client.get("/api/health").json["models"][mode]["reason"] == reason
        r = client.post("/generate", json={"genre": "rock", "mode": mode, "length": 2})
        assert r.status_code == 503 and r.json["field"] == "mode" and mode in r.json["message"]
        r = client.post("/generate", json={"genre": "rock", "mode": "dataset", "length": 2, "seed": 1})
        assert r.status_code == 200 and r.data[:4] == b"RIFF"
        return reason
    finally:
        app.extensions["melodymaker"].close()


def wait_done(client, track_id: str, timeout: float = 120.0) -> dict:
    """Poll GET /api/tracks/{id} until the job is finished; it must be done: its metadata, with id."""
    import time
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = client.get(f"/api/tracks/{track_id}").json
        if state["status"] not in ("queued", "running"):
            assert state["status"] == "done", state
            return {**state["meta"], "id": track_id}
        time.sleep(0.1)
    raise AssertionError(f"track {track_id} did not finish within {timeout:.0f} s")
