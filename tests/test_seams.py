"""The house's seams: one registry of modes, one table of formats, the job queue and the track store
interfaces, each exercised through the behaviour a user or another process sees."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import soundfile as sf

from conftest import ROOT, SR, click_track

from melodymaker import engines, formats
from melodymaker.errors import Busy, InvalidRequest, NotFound
from melodymaker.jobs import EmbeddedQueue
from melodymaker.store import DirectoryStore, new_id
from melodymaker.track import Track


# -- the registry ------------------------------------------------------------------------------
def test_every_mode_declares_itself_once_and_everything_lists_the_registry(client):
    names = list(engines.MODES)
    assert names == ["dataset", "rave", "compose", "ddim", "melgan"]
    for mode in engines.MODES.values():
        module = sys.modules[f"melodymaker.engines.{mode.name}"]
        assert (module.NAME, module.LABEL, module.DESCRIPTION) == (mode.name, mode.label, mode.description)
    options = client.get("/api/options").json
    assert [m["name"] for m in options["modes"]] == names
    assert {m["name"]: m["description"] for m in options["modes"]} == \
        {m.name: m.description for m in engines.MODES.values()}
    assert options["generate_mode"] == {str(m.number): m.name for m in engines.MODES.values()}
    assert set(client.get("/api/health").json["models"]) == set(names)  # a JSON object: keys sorted
    spec = client.get("/openapi.json").json
    schema = spec["paths"]["/generate"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["properties"]["mode"]["enum"] == names
    cli = subprocess.run([sys.executable, "-m", "melodymaker", "generate", "--help"], cwd=ROOT,
                         capture_output=True, text=True)
    assert ", ".join(names) in " ".join(cli.stdout.split())


def test_an_unloadable_mode_is_unavailable_with_its_reason_not_a_crash(settings, library_dir):
    def broken(settings, library):
        raise RuntimeError("weights do not match the architecture")
    mode = engines.Mode("ddim", "x", "y", engines.Capabilities(), 3, broken)
    engine = mode.load(settings, None)
    assert engine.availability() == \
        "checkpoint could not be loaded (RuntimeError: weights do not match the architecture)"
    missing = engines.Mode("ddim", "x", "y", engines.Capabilities(), 3,
                           lambda s, l: (_ for _ in ()).throw(FileNotFoundError("no ddim.pt in models/ddim")))
    assert missing.load(settings, None).availability() == "no trained checkpoint: no ddim.pt in models/ddim"


# -- the format table --------------------------------------------------------------------------
def test_the_format_table_drives_options_links_and_downloads(client):
    options = client.get("/api/options").json
    assert [f["name"] for f in options["formats"]] == list(formats.FORMATS)
    r = client.post("/generate", json={"genre": "rock", "length": 3, "seed": 2, "format": "mid"})
    assert r.status_code == 200 and r.mimetype == "audio/midi" and r.data[:4] == b"MThd"
    tid = r.headers["X-Track-Id"]
    status = client.get(f"/api/tracks/{tid}").json
    assert status["files"] == {f.name: f"/api/tracks/{tid}/audio.{f.extension}" for f in formats.FORMATS.values()}
    assert "transcription" in status["file_notes"]["midi"]   # the dataset mode writes no score
    for f in formats.FORMATS.values():
        got = client.get(status["files"][f.name])
        assert got.status_code == 200 and got.mimetype == f.mime and len(got.data) > 30


@pytest.mark.parametrize("value", ["flac", "ogg", "txt", 3, ["wav"]])
def test_an_unknown_format_is_refused_everywhere(client, value, tmp_path):
    with pytest.raises(InvalidRequest) as e:
        formats.parse(value)
    assert e.value.field == "format" and "wav, mp3, midi" in e.value.message
    r = client.post("/generate", json={"genre": "rock", "length": 2, "format": value})
    assert r.status_code == 400 and r.json["field"] == "format"


def test_the_cli_refuses_an_unknown_format(library_dir, tmp_path):
    env = {**os.environ, "MELODYMAKER_VAR_DIR": str(tmp_path / "var"),
           "MELODYMAKER_MODELS_DIR": str(tmp_path / "models")}
    out = subprocess.run([sys.executable, "-m", "melodymaker", "generate", "--genre", "rock",
                          "--genres", str(library_dir), "-o", str(tmp_path / "x.ogg")],
                         cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "x.ogg" in out.stderr and ".wav, .mp3, .mid" in out.stderr
    assert not (tmp_path / "x.ogg").exists()


# -- the job queue -----------------------------------------------------------------------------
def _slow_work(log: list):
    def work(job_id, payload, progress):
        for i in range(payload["steps"]):
            progress(i / payload["steps"], f"step {i}")
            time.sleep(payload.get("pause", 0.02))
        log.append(job_id)
        return job_id
    return work


def test_queue_reports_progress_finishes_and_lists():
    done: list = []
    q = EmbeddedQueue(_slow_work(done), workers=1, max_pending=4)
    try:
        a = q.submit("a", {"steps": 10})
        seen = set()
        while not q.status("a").finished:
            seen.add(round(q.status("a").progress, 1))
            time.sleep(0.005)
        assert q.wait("a").status == "done" and q.status("a").progress == 1.0 and done == ["a"]
        assert len(seen) >= 3                                      # progress was visible as it moved
        q.submit("b", {"steps": 1})
        assert [j.id for j in q.list()][:2] == ["b", "a"] and a.public()["status"] == "done"
        with pytest.raises(NotFound):
            q.status("nope")
    finally:
        q.close()


def test_cancel_is_a_state_the_worker_checks():
    done: list = []
    q = EmbeddedQueue(_slow_work(done), workers=1, max_pending=4)
    try:
        q.submit("running", {"steps": 500, "pause": 0.01})
        q.submit("queued", {"steps": 1})
        while q.status("running").status != "running":
            time.sleep(0.005)
        assert q.cancel("queued").status == "cancelled"            # never starts
        q.cancel("running")
        assert q.wait("running", timeout=10).status == "cancelled"
        assert done == []                                          # neither reached its end
        assert q.cancel("running").status == "cancelled"           # cancelling again changes nothing
    finally:
        q.close()


def test_a_full_queue_refuses_and_wait_can_time_out():
    release = threading.Event()

    def blocked(job_id, payload, progress):
        release.wait(10)

    q = EmbeddedQueue(blocked, workers=1, max_pending=1)
    try:
        q.submit("one", {})
        q.submit("two", {})
        with pytest.raises(Busy):
            q.submit("three", {})
        t0 = time.monotonic()
        assert q.wait("one", timeout=0.2).status in ("queued", "running")
        assert time.monotonic() - t0 < 2
        release.set()
        assert q.wait("two", timeout=10).status == "done"
    finally:
        release.set()
        q.close()


def test_a_failing_job_is_an_error_with_its_message():
    def broken(job_id, payload, progress):
        raise ValueError("engine bug")
    q = EmbeddedQueue(broken, workers=1, max_pending=1)
    try:
        q.submit("x", {})
        job = q.wait("x", timeout=10)
        assert job.status == "error" and job.error["status"] == 500 and "engine bug" in job.error["message"]
    finally:
        q.close()


# -- the track store ---------------------------------------------------------------------------
def _track(seconds: float = 2.0) -> Track:
    return Track(click_track(120, seconds), SR, None, {})


def test_store_saves_lists_encodes_and_deletes(tmp_path):
    store = DirectoryStore(tmp_path / "tracks", max_tracks=3)
    ids = [store.save(_track(), {"genre": "rock", "mode": "dataset", "seed": i, "tempo": 120})
           for i in range(4)]
    assert [m["id"] for m in store.list()] == ids[::-1][:3]        # the oldest was pruned
    with pytest.raises(NotFound):
        store.meta(ids[0])
    for f in formats.FORMATS.values():
        path = store.file(ids[1], f)
        assert path.is_file() and path.read_bytes() == store.file(ids[1], f).read_bytes()
    y, sr = sf.read(store.file(ids[1], formats.FORMATS["wav"]))
    assert sr == SR and abs(len(y) - 2 * SR) <= 1
    store.delete(ids[1])
    with pytest.raises(NotFound):
        store.file(ids[1], formats.FORMATS["wav"])
    assert [m["id"] for m in store.list()] == [ids[3], ids[2]]
    assert not [p for p in (tmp_path / "tracks").iterdir() if p.name.startswith(".tmp-")]


def test_a_store_opened_by_another_process_keeps_a_track_being_written(tmp_path):
    root = tmp_path / "shared"
    first = DirectoryStore(root)
    writing = root / f".tmp-{new_id()}"              # another process is writing this track now
    writing.mkdir()
    (writing / "audio.wav").write_bytes(b"RIFF")
    abandoned = root / f".tmp-{new_id()}"            # a process killed mid-write, long ago
    abandoned.mkdir()
    old = time.time() - 7200
    os.utime(abandoned, (old, old))
    DirectoryStore(root, stale_after=3600)           # a second process starts on the same folder
    assert writing.exists() and not abandoned.exists()
    tid = first.save(_track(), {"genre": "jazz", "mode": "compose", "seed": 1})
    assert DirectoryStore(root).meta(tid)["genre"] == "jazz"


def test_a_worker_in_another_process_writes_tracks_this_process_serves(tmp_path):
    root = tmp_path / "shared"
    store = DirectoryStore(root)
    script = (
        "import sys, numpy as np\n"
        "from melodymaker.store import DirectoryStore\n"
        "from melodymaker.track import Track\n"
        "s = DirectoryStore(sys.argv[1])\n"
        "y = (0.3 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)).astype('float32')\n"
        "print(s.save(Track(y, 22050, None, {}), {'genre': 'pop', 'mode': 'dataset', 'seed': 3}))\n")
    out = subprocess.run([sys.executable, "-c", script, str(root)], cwd=ROOT, capture_output=True,
                         text=True, check=True)
    tid = out.stdout.strip()
    assert store.meta(tid)["genre"] == "pop"
    y, sr = sf.read(store.file(tid, formats.FORMATS["mp3"]))
    assert sr == 22050 and abs(len(y) - 22050) < 2000
    assert json.loads((root / tid / "meta.json").read_text())["id"] == tid
    assert np.max(np.abs(store.track(tid).audio)) > 0.2
