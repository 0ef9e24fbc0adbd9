"""Interruption: SIGKILL the real server mid-generation, restart it, and find a consistent store.

Also: a damaged library cache is rebuilt at restart, and an upload that announces a huge body is
refused with 413 at once, before the body is sent (through a raw socket to the real server).
"""
from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import soundfile as sf

from conftest import ROOT, make_library

sys.path.insert(0, str(ROOT / "scripts"))
from loadtest import free_port, wait_ready  # noqa: E402

ID = re.compile(r"^[0-9a-f]{32}$")


class Server:
    def __init__(self, env: dict, log: Path):
        self.env, self.log = env, log
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> "Server":
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(self.port),
                                      "--no-browser"], cwd=ROOT, env=self.env,
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)
        wait_ready("127.0.0.1", self.port, 60, self.proc)
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 60):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"} if body is not None else {})
        r = conn.getresponse()
        data = r.read()
        conn.close()
        return r.status, dict(r.getheaders()), data


def _complete(folder: Path) -> bool:
    """audio.wav decodes and meta.json parses and names the folder."""
    meta = json.loads((folder / "meta.json").read_text())
    y, sr = sf.read(folder / "audio.wav")
    return meta["id"] == folder.name and len(y) > 0 and sr > 0


def test_kill_mid_generation_leaves_a_consistent_store(tmp_path):
    genres = make_library(tmp_path / "genres")
    var = tmp_path / "var"
    env = {**os.environ, "MELODYMAKER_GENRES_DIR": str(genres), "MELODYMAKER_VAR_DIR": str(var),
           "MELODYMAKER_MODELS_DIR": str(tmp_path / "models"), "MELODYMAKER_WORKERS": "2"}
    server = Server(env, tmp_path / "server.log").start()
    try:
        status, headers, _ = server.request("POST", "/generate", {"genre": "rock", "mode": "dataset", "length": 3})
        assert status == 200
        first = headers["X-Track-Id"]
        status, _, data = server.request("POST", "/api/tracks", {"genre": "jazz", "mode": "compose", "length": 300})
        assert status == 202
        long_id = json.loads(data)["id"]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            job = json.loads(server.request("GET", f"/api/tracks/{long_id}")[2])
            if job["status"] == "running" and job["progress"] > 0:
                break
            assert job["status"] in ("queued", "running"), job
            time.sleep(0.05)
        else:
            raise AssertionError(f"the long generation never started running: {job}")
    finally:
        server.kill()

    store = var / "tracks"
    visible = [p for p in store.iterdir() if not p.name.startswith(".tmp-")]
    assert all(ID.match(p.name) and _complete(p) for p in visible), [p.name for p in visible]
    assert {p.name for p in visible} == {first}          # the killed job left no visible folder

    # what a kill during Store.save would leave: a half-written temporary folder; and a library
    # cache truncated mid-write (library.json is written atomically, so this is the worst case)
    half = store / f".tmp-{'f' * 32}"
    half.mkdir(exist_ok=True)
    (half / "audio.wav").write_bytes(b"RIFF\x00\x00")
    (half / "meta.json").write_text('{"id": "fff')
    hours_ago = time.time() - 2 * 3600                   # older than the longest job can run
    os.utime(half, (hours_ago, hours_ago))
    # another process's track, half-written right now in a shared store: a start must not touch it
    writing = store / f".tmp-{'e' * 32}"
    writing.mkdir()
    (writing / "audio.wav").write_bytes(b"RIFF\x00\x00")
    cache = var / "cache" / "library.json"
    if cache.exists():                                   # killed during warm-up: still whole
        json.loads(cache.read_text())
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text('{"version": 1, "clips": {"rock/rock.000')

    server = Server(env, tmp_path / "server.log").start()
    try:
        # swept at start: the abandoned folder only
        assert [p.name for p in store.iterdir() if p.name.startswith(".tmp-")] == [writing.name]
        listed = json.loads(server.request("GET", "/api/tracks")[2])["tracks"]
        assert [t["id"] for t in listed] == [first]
        for t in listed:
            status, _, data = server.request("GET", f"/api/tracks/{t['id']}/audio.wav")
            y, sr = sf.read(io.BytesIO(data))
            assert status == 200 and len(y) == int(round(t["length"] * sr))
        assert server.request("GET", f"/api/tracks/{long_id}")[0] == 404

        # the warm-up re-analyses the library and rewrites the damaged cache
        deadline = time.monotonic() + 30
        while True:
            try:
                rebuilt = json.loads(cache.read_text())
                if rebuilt.get("clips"):
                    break
            except ValueError:
                pass
            assert time.monotonic() < deadline, "library.json was not rebuilt"
            time.sleep(0.2)
        assert len(rebuilt["clips"]) >= 5

        status, headers, data = server.request("POST", "/generate", {"genre": "blues", "mode": "compose", "length": 3})
        y, sr = sf.read(io.BytesIO(data))
        assert status == 200 and len(y) == 3 * sr
        ids = {t["id"] for t in json.loads(server.request("GET", "/api/tracks")[2])["tracks"]}
        assert ids == {first, headers["X-Track-Id"]}

        # an upload announcing 500 MB is refused before its body is sent
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            t0 = time.monotonic()
            s.sendall(b"POST /api/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Content-Type: multipart/form-data; boundary=x\r\n"
                      b"Content-Length: 500000000\r\n\r\n--x\r\n")
            head = s.recv(200)
            assert head.startswith(b"HTTP/1.1 413") and time.monotonic() - t0 < 5, head
    finally:
        server.kill()
