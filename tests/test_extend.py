"""Extend (POST /api/tracks/{id}/extend): a finished track continued by S seconds as a new track,
through the real server's job queue and store, on compose and dataset tracks; the bad inputs.

What a listener would notice is measured on the new track's audio: no sample jump, loudness step
or spectral-flux spike at the seam beyond the track's own 99th percentile, the beat grid the same
on both sides of it, and the parent's audio unchanged before it."""
from __future__ import annotations

import io

import librosa
import pytest
import numpy as np
import soundfile as sf

from conftest import ROOT, SR, wait_done

from melodymaker.audio import seam_report


def make(client, **body) -> str:
    r = client.post("/api/tracks", json=body)
    assert r.status_code == 202, r.json
    return wait_done(client, r.json["id"])["id"]


def audio(client, track_id: str) -> np.ndarray:
    r = client.get(f"/api/tracks/{track_id}/audio.wav")
    assert r.status_code == 200
    y, sr = sf.read(io.BytesIO(r.data), dtype="float32")
    assert sr == SR
    return y


def extend(client, track_id: str, seconds) -> dict:
    r = client.post(f"/api/tracks/{track_id}/extend", json={"seconds": seconds})
    assert r.status_code == 202, r.json
    assert r.json["parent"] == track_id and r.headers["Location"] == f"/api/tracks/{r.json['id']}"
    return wait_done(client, r.json["id"])


def beat_phase(y: np.ndarray, bpm: float, start: int = 0) -> float:
    """Where the beats fall within the beat period, as a fraction of it (the circular mean of the
    onset strength's frames, weighted by their strength); y begins `start` samples into the track."""
    env = librosa.onset.onset_strength(y=y, sr=SR, hop_length=256)
    times = librosa.times_like(env, sr=SR, hop_length=256) + start / SR
    angle = 2 * np.pi * times / (60.0 / bpm)
    return float(np.angle(np.sum(env * np.exp(1j * angle))) / (2 * np.pi)) % 1.0


def assert_seamless(y: np.ndarray, seam_s: float, crossfade_s: float = 0.0, *,
                    on_a_downbeat: bool = False) -> None:
    """No sample jump, loudness step or spectral-flux spike where the new audio takes over (the
    seam) or where the parent's share of a crossfade ends, beyond the track's own 99th percentile.
    on_a_downbeat: the seam is a bar line where the new bar starts (compose), so the flux there is
    that bar's onset: it may be among the track's loudest, not above its loudest."""
    if crossfade_s:
        end = seam_report(y, SR, int(round((seam_s + crossfade_s) * SR)))
        assert end["jump"] <= end["jump_p99"] and end["loudness_step"] <= end["loudness_step_p99"], end
    at = int(round(seam_s * SR))
    report = seam_report(y, SR, at)
    assert report["jump"] <= report["jump_p99"], report
    assert report["loudness_step"] <= report["loudness_step_p99"], report
    if not on_a_downbeat:
        assert report["flux"] <= report["flux_p99"], report
        return
    env = librosa.onset.onset_strength(y=y, sr=SR, hop_length=256)
    elsewhere = np.delete(env, np.arange(max(0, at // 256 - 8), at // 256 + 8))
    assert env[max(0, at // 256 - 2):at // 256 + 3].max() <= elsewhere.max(), report


def test_compose_extension_continues_the_score_after_the_parents_bars(client):
    parent_id = make(client, genre="jazz", mode="compose", length=8, seed=5, tempo=100, key="D minor")
    before = audio(client, parent_id)
    meta = extend(client, parent_id, 7)
    y = audio(client, meta["id"])
    assert len(y) == 15 * SR and meta["length"] == 15
    assert meta["parent"] == parent_id and meta["mode"] == "compose" and meta["seed"] == 5
    seam = meta["seam"]["at"]
    assert 0 < seam < 8 and meta["seam"]["crossfade"] == 0
    # a bar line: the parent's bars are 4 beats at 100 BPM, its final chord starts on one
    assert abs(seam / (4 * 0.6) - round(seam / (4 * 0.6))) < 1e-6
    # the parent's bars, bit for bit, then the new bars: no jump, step or flux spike at the seam
    assert np.array_equal(y[: int(seam * SR)], before[: int(seam * SR)])
    assert_seamless(y, seam, on_a_downbeat=True)
    # the same key and tempo on the new side, and the beat grid goes on where it was
    assert meta["key"]["requested"] == "D minor" and meta["tempo"] == 100
    cut = int(seam * SR)
    old_side, new_side = beat_phase(y[:cut], 100), beat_phase(y[cut:], 100, cut)
    assert min(abs(old_side - new_side), 1 - abs(old_side - new_side)) < 0.08, (old_side, new_side)
    assert meta["details"]["continued_by"].startswith("the score")
    # the score grew: the MIDI has notes after the parent's end
    midi = client.get(f"/api/tracks/{meta['id']}/audio.mid")
    assert midi.status_code == 200
    import pretty_midi
    score = pretty_midi.PrettyMIDI(io.BytesIO(midi.data))
    assert max(n.end for inst in score.instruments for n in inst.notes) > 12
    # the parent is unchanged and still its own track
    assert np.array_equal(audio(client, parent_id), before)
    assert client.get(f"/api/tracks/{parent_id}").json["meta"]["length"] == 8


def test_dataset_extension_goes_on_with_the_phrase_chain_on_the_same_grid(client):
    parent_id = make(client, genre="rock", mode="dataset", length=6, seed=2, tempo=120)
    before = audio(client, parent_id)
    meta = extend(client, parent_id, 5)
    y = audio(client, meta["id"])
    assert len(y) == 11 * SR
    seam, xfade = meta["seam"]["at"], meta["seam"]["crossfade"]
    assert abs(seam - (6 - 0.48)) < 1e-3 and abs(xfade - 0.48) < 1e-3  # the parent's fade-out
    n = int(round(seam * SR))
    assert np.array_equal(y[:n], before[:n])
    assert_seamless(y, seam, xfade)
    # as loud as the parent: the continuation gets the parent's loudness gain
    parent_lufs = client.get(f"/api/tracks/{parent_id}").json["meta"]["loudness_lufs"]
    assert abs(meta["loudness_lufs"] - parent_lufs) < 1.5
    phases = beat_phase(y[:n], 120), beat_phase(y[n + int(xfade * SR):], 120, n + int(xfade * SR))
    assert min(abs(phases[0] - phases[1]), 1 - abs(phases[0] - phases[1])) < 0.08, phases
    # an extension can be extended again
    again = extend(client, meta["id"], 2)
    assert again["length"] == 13 and again["parent"] == meta["id"]
    assert np.array_equal(audio(client, again["id"])[:n], y[:n])


def test_extending_bad_tracks_and_lengths_says_what_is_wrong(client):
    r = client.post("/api/tracks/0123456789abcdef0123456789abcdef/extend", json={"seconds": 5})
    assert r.status_code == 404 and r.json["field"] == "id"
    parent_id = make(client, genre="rock", mode="dataset", length=10, seed=1)
    for seconds, status in ((291, 400), (0, 400), ("lots", 400), (None, 400), (True, 400)):
        r = client.post(f"/api/tracks/{parent_id}/extend", json={"seconds": seconds})
        assert r.status_code == status and r.json["field"] == "seconds", (seconds, r.json)
    r = client.post(f"/api/tracks/{parent_id}/extend", json={"seconds": 291})
    assert "290" in r.json["message"]                       # the most it can take
    r = client.post(f"/api/tracks/{parent_id}/extend", json={})
    assert r.status_code == 400 and r.json["field"] == "seconds"
    # still running: 409
    running = client.post("/api/tracks", json={"genre": "jazz", "mode": "compose", "length": 120, "seed": 9}).json
    r = client.post(f"/api/tracks/{running['id']}/extend", json={"seconds": 5})
    assert r.status_code == 409 and "still" in r.json["message"]
    client.post(f"/api/tracks/{running['id']}/cancel")
    # a loop is repeated, not extended
    loop_id = make(client, genre="rock", mode="dataset", length=4, seed=1, tempo=120, loop=True)
    r = client.post(f"/api/tracks/{loop_id}/extend", json={"seconds": 5})
    assert r.status_code == 409 and "loop" in r.json["message"]


# -- the neural modes, end to end through the server (their own continuation: test_extend_models) --
@pytest.fixture(scope="module")
def neural_client(disco_library, tmp_path_factory):
    """The server with the shipped checkpoints over a small built-in disco library (RAVE draws its
    latents from it), on one torch thread."""
    import torch

    from app import create_app
    from melodymaker.settings import Settings
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    app = create_app(Settings(genres_dir=disco_library, models_dir=ROOT / "models",
                              var_dir=tmp_path_factory.mktemp("extend-neural") / "var", workers=1))
    yield app.test_client()
    app.extensions["melodymaker"].close()
    torch.set_num_threads(threads)


@pytest.mark.parametrize("mode", ["ddim", "rave", "melgan"])
def test_a_neural_track_extends_from_its_own_tail_without_a_seam(neural_client, mode):
    client = neural_client
    parent_id = make(client, genre="disco", mode=mode, length=5, seed=4, tempo=118)
    before = audio(client, parent_id)
    meta = extend(client, parent_id, 4)
    y = audio(client, meta["id"])
    assert len(y) == 9 * SR and meta["parent"] == parent_id and meta["mode"] == mode
    n = int(round(meta["seam"]["at"] * SR))
    assert abs(meta["seam"]["at"] - (5 - 0.4)) < 1e-3               # the parent's fade-out start
    assert np.array_equal(y[:n], before[:n])
    assert meta["details"]["starts_at"] > 0                          # it continued the tail it kept
    assert_seamless(y, meta["seam"]["at"], meta["seam"]["crossfade"])
    parent_lufs = client.get(f"/api/tracks/{parent_id}").json["meta"]["loudness_lufs"]
    assert abs(meta["loudness_lufs"] - parent_lufs) < 3
    assert np.array_equal(audio(client, parent_id), before)


@pytest.mark.parametrize("mode", ["ddim", "melgan"])
def test_an_extension_of_a_beat_aligned_track_is_on_the_grid_too(neural_client, mode):
    """DDIM and MEL-GAN keep no tempo of their own: the post stage laid the parent's beats on the
    grid (meta.post keeps where its take-over point landed), and lays the continuation's too, so
    the new part plays at the tempo asked for, not at the parent's average stretch."""
    from melodymaker import audio as audio_ops
    client = neural_client
    parent_id = make(client, genre="disco", mode=mode, length=6, seed=8, tempo=124)
    parent = client.get(f"/api/tracks/{parent_id}").json["meta"]
    assert parent["details"]["tempo_conform"]["beats_aligned"] >= 4
    assert "context_end_output" in parent["post"]
    meta = extend(client, parent_id, 8)
    y = audio(client, meta["id"])
    new_part = y[int(round(meta["seam"]["at"] * SR)) + SR // 2:]
    measured = audio_ops.estimate_tempo(new_part, SR)[0]
    assert min(abs(measured * k - 124) for k in (0.5, 1, 2)) / 124 < 0.03, measured
    assert meta["post"]["context_end_output"] == pytest.approx(14 - meta["post"]["fade_out"])
