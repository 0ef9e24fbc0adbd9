"""The deployment of "Scaling out", for real: a redis-server, two worker processes and a web tier,
each a separate process with its own working directory and var/ folder, sharing one store folder.

16 concurrent requests over two modes all succeed; one worker's process group SIGKILLed mid-job
leaves that job `error` (RQ's abandoned-job handling, with short heartbeats here) while the other
jobs complete; cancel works across processes; a restarted web tier still answers for finished jobs
and serves all three formats of a track another process made.
"""
from __future__ import annotations

import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import soundfile as sf

from conftest import ROOT, make_library
from redis_server import RedisServer, free_port

pytest.importorskip("rq", reason="rq is not installed (pip install -r requirements.txt)")


class Process:
    """A MelodyMaker process (web or worker) in its own folder and session (its own process group)."""

    def __init__(self, args: list[str], env: dict, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "out.log"
        self.proc = subprocess.Popen([sys.executable, *args], cwd=folder, start_new_session=True,
                                     env={**env, "MELODYMAKER_VAR_DIR": str(folder / "var")},
                                     stdout=open(self.log, "ab"), stderr=subprocess.STDOUT)

    def kill_group(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


class Web(Process):
    def __init__(self, env: dict, folder: Path):
        self.port = free_port()
        super().__init__([str(ROOT / "app.py"), "--port", str(self.port), "--no-browser"], env, folder)

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 120):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.request(method, path, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"} if body is not None else {})
        r = conn.getresponse()
        data, headers = r.read(), {k.lower(): v for k, v in r.getheaders()}
        conn.close()
        return r.status, headers, data

    def json(self, method: str, path: str, body: dict | None = None):
        status, _, data = self.request(method, path, body)
        return status, json.loads(data)


def wait_for(what: str, check, timeout: float, *, every: float = 0.2, logs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = check()
        except (OSError, http.client.HTTPException, ValueError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what} within {timeout} s\n" + "\n".join(p.tail() for p in logs))


def worker_running(redis_url: str, job_id: str) -> int | None:
    """The pid of the worker process running the job (RQ records the worker's name: host.pid.x)."""
    from rq.job import Job
    from rq.serializers import JSONSerializer

    from melodymaker.jobs.redis_queue import connect
    job = Job.fetch(job_id, connection=connect(redis_url), serializer=JSONSerializer)
    return int(job.worker_name.split(".")[-2]) if job.worker_name else None


def test_two_workers_and_a_web_tier_share_a_store_and_survive_a_killed_worker(tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    genres = make_library(tmp_path / "genres")
    env = {**os.environ, "MELODYMAKER_QUEUE": redis.url, "MELODYMAKER_GENRES_DIR": str(genres),
           "MELODYMAKER_MODELS_DIR": str(tmp_path / "models"), "MELODYMAKER_STORE_DIR": str(tmp_path / "shared"),
           "MELODYMAKER_MAX_QUEUE": "32", "MELODYMAKER_WORKERS": "2",
           "MELODYMAKER_WORKER_HEARTBEAT": "1", "MELODYMAKER_WORKER_MAINTENANCE": "2", "PYTHONUNBUFFERED": "1"}
    worker_args = ["-m", "melodymaker", "worker", "--queues", "cpu,gpu"]
    workers = [Process(worker_args, {**env, "PYTHONPATH": str(ROOT)}, tmp_path / f"worker{i}") for i in (1, 2)]
    web = Web(env, tmp_path / "web")
    procs = [*workers, web]
    try:
        wait_for("the web tier and both workers are up",
                 lambda: len(web.json("GET", "/api/health")[1]["jobs"]["live_workers"]) == 2, 120, logs=procs)
        status, options = web.json("GET", "/api/options")
        modes = {m["name"]: m for m in options["modes"]}
        assert modes["compose"]["available"] and modes["dataset"]["available"]
        assert not modes["ddim"]["available"] and "no trained checkpoint" in modes["ddim"]["reason"]

        # -- 16 concurrent requests over a mix of modes: all succeed ----------------------------
        bodies = [{"genre": ("rock", "jazz", "blues")[i % 3], "mode": ("dataset", "compose")[i % 2],
                   "length": 2 + i % 2, "seed": i} for i in range(16)]
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda b: web.request("POST", "/generate", b), bodies))
        made = {}
        for body, (status, headers, data) in zip(bodies, answers):
            assert status == 200, (status, data[:300])
            y, sr = sf.read(io.BytesIO(data))
            assert sr == 22050 and len(y) == body["length"] * sr
            made[headers["x-track-id"]] = body["mode"]
        assert len(made) == 16
        served_by = {json.loads((tmp_path / "shared" / i / "meta.json").read_text())["mode"] for i in made}
        assert served_by == {"dataset", "compose"}

        # -- one worker's process group SIGKILLed mid-job: that job ends `error`, the rest complete
        long = web.json("POST", "/api/tracks", {"genre": "jazz", "mode": "compose", "length": 300})[1]["id"]
        wait_for("the long job is running", lambda: web.json("GET", f"/api/tracks/{long}")[1]["progress"] > 0,
                 60, every=0.05, logs=procs)
        pid = worker_running(redis.url, long)
        victim = next(w for w in workers if w.proc.pid == pid)
        survivor = next(w for w in workers if w is not victim)
        victim.kill_group()
        killed_at = time.monotonic()
        others = [web.json("POST", "/api/tracks", {"genre": "rock", "mode": m, "length": 2})[1]["id"]
                  for m in ("compose", "dataset", "compose")]
        failed = wait_for("the killed worker's job reads error",
                          lambda: (s := web.json("GET", f"/api/tracks/{long}")[1])["status"] == "error" and s,
                          120, every=0.25, logs=procs)
        took = time.monotonic() - killed_at
        print(f"\nthe killed worker's job read 'error' {took:.1f} s after the SIGKILL "
              "(heartbeat 1 s, maintenance 2 s)")
        assert "stopped before it finished" in failed["error"]["message"] and took < 120
        for job_id in others:
            wait_for(f"job {job_id} completes on the surviving worker",
                     lambda: web.json("GET", f"/api/tracks/{job_id}")[1]["status"] == "done", 120, logs=procs)
        assert not (tmp_path / "shared" / long).exists()       # nothing half-written is ever served
        assert web.request("GET", f"/api/tracks/{long}/audio.wav")[0] == 404

        # -- cancel across processes: a running job (on the survivor) and a queued one ----------
        running = web.json("POST", "/api/tracks", {"genre": "jazz", "mode": "compose", "length": 300})[1]["id"]
        queued = web.json("POST", "/api/tracks", {"genre": "rock", "mode": "compose", "length": 300})[1]["id"]
        wait_for("the job to cancel is running",
                 lambda: web.json("GET", f"/api/tracks/{running}")[1]["status"] == "running", 60, logs=procs)
        assert web.json("POST", f"/api/tracks/{queued}/cancel")[1]["status"] == "cancelled"
        web.json("POST", f"/api/tracks/{running}/cancel")
        wait_for("the running job stops as cancelled",
                 lambda: web.json("GET", f"/api/tracks/{running}")[1]["status"] == "cancelled", 60, logs=procs)
        assert not (tmp_path / "shared" / running).exists() and not (tmp_path / "shared" / queued).exists()
        assert survivor.proc.poll() is None

        # -- the web tier restarts (another folder): it still answers for finished jobs ---------
        web.kill_group()
        web = procs[-1] = Web(env, tmp_path / "web2")
        wait_for("the new web tier is up", lambda: web.request("GET", "/api/health")[0] == 200, 120, logs=procs)
        assert web.json("GET", f"/api/tracks/{long}")[1]["status"] == "error"
        assert web.json("GET", f"/api/tracks/{running}")[1]["status"] == "cancelled"
        composed = next(i for i, m in made.items() if m == "compose")
        status, state = web.json("GET", f"/api/tracks/{composed}")
        assert status == 200 and state["status"] == "done"
        for ext, magic in (("wav", b"RIFF"), ("mp3", None), ("mid", b"MThd")):
            status, headers, data = web.request("GET", f"/api/tracks/{composed}/audio.{ext}")
            assert status == 200 and len(data) > 100, (ext, status, data[:200])
            if magic:
                assert data[:4] == magic
            else:
                assert data[:3] == b"ID3" or data[0] == 0xFF
        listed = {t["id"] for t in web.json("GET", "/api/tracks?limit=100")[1]["tracks"]}
        assert set(made) | set(others) <= listed
    finally:
        for p in procs:
            p.kill_group()
        redis.stop()


def test_a_worker_rides_out_a_lost_redis_and_stops_cleanly_without_it(tmp_path):
    from melodymaker.jobs.redis_queue import RedisQueue, connect
    from melodymaker.jobs.roster import Roster
    redis = RedisServer(tmp_path / "redis").start()
    env = {**os.environ, "MELODYMAKER_QUEUE": redis.url, "PYTHONPATH": str(ROOT),
           "MELODYMAKER_GENRES_DIR": str(make_library(tmp_path / "genres")),
           "MELODYMAKER_MODELS_DIR": str(tmp_path / "models"), "MELODYMAKER_STORE_DIR": str(tmp_path / "shared"),
           "MELODYMAKER_WORKER_HEARTBEAT": "1", "MELODYMAKER_WORKER_MAINTENANCE": "2"}
    worker = Process(["-m", "melodymaker", "worker"], env, tmp_path / "worker")
    try:
        live = lambda: len(Roster.read(connect(redis.url)).workers) == 1  # noqa: E731
        wait_for("the worker is up", live, 120, logs=[worker])
        redis.stop()
        time.sleep(4)
        redis.start()                                   # the same port, empty
        wait_for("the worker publishes itself again", live, 30, logs=[worker])
        queue = RedisQueue(redis.url, max_pending=4, job_timeout=60)
        queue.submit("c" * 32, {"genre": "rock", "mode": "compose", "length": 2})
        assert queue.wait("c" * 32, 60).status == "done"
        redis.stop()
        time.sleep(2)
        worker.proc.send_signal(signal.SIGTERM)         # it cannot tell Redis; it stops anyway
        assert worker.proc.wait(timeout=30) == 0
    finally:
        worker.kill_group()
        redis.stop()
