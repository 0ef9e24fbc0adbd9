"""The RQ backend in one process against a real redis-server: routing from the registry, the modes
the workers publish, submit / status / cancel / 429, a real job run by a burst worker, errors a user
can act on, and a Redis that goes away and comes back (503 with a reason, never a hang).

The multi-process deployment (two workers, a web tier, SIGKILL) is tests/test_redis_deploy.py.
"""
from __future__ import annotations

import io
import os
import subprocess
import sys
import time

import pytest
import soundfile as sf

from conftest import ROOT
from redis_server import RedisServer, redis_server  # noqa: F401  (the fixture)

from melodymaker.errors import InvalidRequest, ModeUnavailable, QueueUnavailable
from melodymaker.jobs import roster
from melodymaker.settings import Settings

pytest.importorskip("rq", reason="rq is not installed (pip install -r requirements.txt)")


def web_settings(settings, url, **kw) -> Settings:
    import dataclasses
    return dataclasses.replace(settings, queue=url, **kw)


def publish_worker(url, name, queues, modes, ttl=30.0):
    from melodymaker.jobs.redis_queue import connect
    conn = connect(url)
    roster.publish(conn, name, {"name": name, "queues": list(queues), "modes": {
        m: {"available": r is None, "reason": r} for m, r in modes.items()}}, ttl=ttl)
    return conn


# -- routing and the roster (no Redis needed) ---------------------------------------------------
def test_routes_come_from_the_registry_and_the_setting_overrides_them():
    routes = roster.mode_routes("")
    assert routes["compose"] == routes["dataset"] == ("cpu",)
    assert routes["ddim"] == routes["rave"] == routes["melgan"] == ("gpu", "cpu")
    assert roster.mode_routes("ddim=cpu, compose=gpu/cpu")["ddim"] == ("cpu",)
    assert roster.mode_routes("compose=gpu/cpu")["compose"] == ("gpu", "cpu")
    with pytest.raises(ValueError, match="unknown mode 'jazz'"):
        roster.mode_routes("jazz=cpu")
    with pytest.raises(ValueError, match="is not mode=queue"):
        roster.mode_routes("ddim=")


def test_a_mode_goes_to_the_first_queue_a_live_worker_able_to_run_it_serves():
    cpu = {"name": "a", "queues": ["cpu"], "modes": {"ddim": {"available": True}, "compose": {"available": True}}}
    gpu = {"name": "b", "queues": ["gpu"], "modes": {"ddim": {"available": True}}}
    gpu_without = {"name": "c", "queues": ["gpu"], "modes": {"ddim": {"available": False, "reason": "no ddim.pt"}}}
    assert roster.Roster([cpu, gpu]).route("ddim", ("gpu", "cpu")) == "gpu"
    assert roster.Roster([cpu]).route("ddim", ("gpu", "cpu")) == "cpu"
    assert roster.Roster([cpu, gpu_without]).route("ddim", ("gpu", "cpu")) == "cpu"
    with pytest.raises(ModeUnavailable, match="no generation worker is running"):
        roster.Roster([]).route("compose", ("cpu",))
    with pytest.raises(ModeUnavailable, match="no ddim.pt"):
        roster.Roster([gpu_without]).route("ddim", ("gpu",))
    with pytest.raises(ModeUnavailable, match="no live worker serves the queue cpu"):
        roster.Roster([gpu]).route("compose", ("cpu",))


def test_the_store_folder_is_a_setting_and_the_default_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.delenv("MELODYMAKER_STORE_DIR", raising=False)
    monkeypatch.setenv("MELODYMAKER_VAR_DIR", str(tmp_path / "var"))
    assert Settings.from_env().store_dir == tmp_path / "var" / "tracks"
    monkeypatch.setenv("MELODYMAKER_STORE_DIR", str(tmp_path / "shared"))
    monkeypatch.setenv("MELODYMAKER_QUEUE", "redis://127.0.0.1:1/0")
    s = Settings.from_env()
    assert s.store_dir == tmp_path / "shared" and s.queue == "redis://127.0.0.1:1/0"
    assert Settings.from_env(store_dir=tmp_path / "x").store_dir == tmp_path / "x"
    assert Settings().queue == ""            # ./run.sh with no settings: the embedded pool


# -- Redis unreachable at start -------------------------------------------------------------------
def test_an_unreachable_redis_at_start_is_said_and_the_server_exits_non_zero(settings, tmp_path):
    from app import create_app
    url = f"redis://127.0.0.1:{RedisServer(tmp_path).port}/0"   # nothing listens there
    t0 = time.monotonic()
    with pytest.raises(QueueUnavailable, match="unreachable"):
        create_app(web_settings(settings, url))
    assert time.monotonic() - t0 < 10
    env = {**os.environ, "MELODYMAKER_QUEUE": url, "MELODYMAKER_GENRES_DIR": str(settings.genres_dir),
           "MELODYMAKER_VAR_DIR": str(tmp_path / "var"), "MELODYMAKER_MODELS_DIR": str(tmp_path / "m")}
    done = subprocess.run([sys.executable, str(ROOT / "app.py"), "--port", "1", "--no-browser"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "cannot start" in done.stderr and "unreachable" in done.stderr
    worker = subprocess.run([sys.executable, "-m", "melodymaker", "worker", "--burst"], env=env,
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert worker.returncode == 2 and "unreachable" in worker.stderr


# -- the web tier over Redis ---------------------------------------------------------------------
@pytest.fixture()
def web(settings, redis_server):
    from app import create_app
    app = create_app(web_settings(settings, redis_server.url, max_queue=2))
    app.config["TESTING"] = True
    yield app.test_client(), app.extensions["melodymaker"], redis_server
    app.extensions["melodymaker"].close()


def test_with_no_worker_every_mode_is_unavailable_and_the_web_tier_loads_no_engine(web):
    client, service, _ = web
    assert service.engines == {} and service.remote
    modes = client.get("/api/options").json["modes"]
    assert [m["name"] for m in modes] == ["dataset", "rave", "compose", "ddim", "melgan"]
    assert all(not m["available"] and "no generation worker is running" in m["reason"] for m in modes)
    r = client.post("/api/tracks", json={"genre": "rock", "mode": "compose", "length": 2})
    assert r.status_code == 503 and r.json["field"] == "mode"


def test_the_union_of_published_modes_and_queued_jobs_cancel_and_429(web):
    client, service, server = web
    publish_worker(server.url, "w1", ["cpu"], {"compose": None, "dataset": None, "ddim": "no ddim.pt in models/ddim"})
    publish_worker(server.url, "w2", ["gpu"], {"ddim": None, "compose": "not installed: fluidsynth"})
    service.jobs.roster(fresh=True)
    modes = {m["name"]: m for m in client.get("/api/options").json["modes"]}
    assert modes["compose"]["available"] and modes["ddim"]["available"] and modes["dataset"]["available"]
    assert not modes["rave"]["available"] and "not offered" in modes["rave"]["reason"]
    health = client.get("/api/health").json
    assert health["models"]["ddim"]["available"] and {w["name"] for w in health["jobs"]["live_workers"]} == {"w1", "w2"}

    r = client.post("/api/tracks", json={"genre": "rock", "mode": "ddim", "length": 2})
    assert r.status_code == 202
    from rq.job import Job
    assert Job.fetch(r.json["id"], connection=service.jobs.conn).origin == "gpu"
    first = client.post("/api/tracks", json={"genre": "rock", "mode": "compose", "length": 2}).json["id"]
    assert client.get(f"/api/tracks/{first}").json["status"] == "queued"
    full = client.post("/api/tracks", json={"genre": "rock", "mode": "compose", "length": 2})
    assert full.status_code == 429 and full.headers["Retry-After"] and "queued" in full.json["message"]

    r = client.post(f"/api/tracks/{first}/cancel")            # queued: it never starts
    assert r.status_code == 200 and r.json["status"] == "cancelled"
    assert client.get(f"/api/tracks/{first}").json["status"] == "cancelled"
    assert client.post("/api/tracks", json={"genre": "rock", "mode": "compose", "length": 2}).status_code == 202
    assert client.get("/api/tracks/" + "0" * 32).status_code == 404
    assert service.jobs.pending() == 2 and len(service.jobs.list()) == 3


def test_a_payload_that_does_not_parse_is_never_enqueued(web):
    _, service, server = web
    publish_worker(server.url, "w1", ["cpu"], {"compose": None})
    with pytest.raises(InvalidRequest, match="genre"):
        service.jobs.submit("a" * 32, {"genre": "polka", "mode": "compose"})
    with pytest.raises(InvalidRequest):
        service.jobs.submit("b" * 32, ["not", "a", "request"])
    assert service.jobs.pending() == 0


def run_burst_worker(settings, url, **service_kw):
    """A worker in this process: loads the engines, runs what is queued, returns."""
    import dataclasses

    from rq.serializers import JSONSerializer

    from melodymaker import worker
    from melodymaker.jobs import redis_queue
    from melodymaker.service import Service
    s = dataclasses.replace(settings, queue=url, worker_heartbeat=1)
    service = Service(s, worker=True, **service_kw)
    redis_queue.serve(service._run_job)
    try:
        w = worker.generation_worker_class()(["cpu", "gpu"], connection=redis_queue.connect(url),
                                             serializer=JSONSerializer, job_monitoring_interval=1)
        w.work(burst=True, logging_level="WARNING")
    finally:
        redis_queue.serve(None)
        service.close()


def test_a_job_runs_on_a_worker_and_any_web_process_serves_its_track(web, settings):
    client, service, server = web
    publish_worker(server.url, "w1", ["cpu"], {"compose": None, "dataset": None})
    ok = client.post("/api/tracks", json={"genre": "rock", "mode": "compose", "length": 2, "seed": 3}).json["id"]
    bad = client.post("/api/tracks", json={"genre": "rock", "mode": "dataset", "length": 2}).json["id"]
    run_burst_worker(settings, server.url, modes=["compose"])   # this worker cannot run dataset
    state = client.get(f"/api/tracks/{ok}").json
    assert state["status"] == "done" and state["meta"]["mode"] == "compose", state
    r = client.get(f"/api/tracks/{ok}/audio.wav")
    y, sr = sf.read(io.BytesIO(r.data))
    assert r.status_code == 200 and len(y) == 2 * sr
    assert client.get(f"/api/tracks/{ok}/audio.mid").data[:4] == b"MThd"
    failed = client.get(f"/api/tracks/{bad}").json
    assert failed["status"] == "error" and "dataset" in failed["error"]["message"]
    assert failed["error"]["status"] == 503 and failed["error"]["field"] == "mode"
    assert client.post(f"/api/tracks/{ok}/cancel").json["status"] == "done"   # finished: left as it is


def test_a_lost_redis_is_a_503_with_a_reason_never_a_hang_and_the_server_recovers(web, settings):
    client, service, server = web
    publish_worker(server.url, "w1", ["cpu"], {"compose": None})
    queued = client.post("/api/tracks", json={"genre": "rock", "mode": "compose", "length": 2}).json["id"]
    server.stop()
    t0 = time.monotonic()
    for method, path, body in (("post", "/api/tracks", {"genre": "rock", "mode": "compose", "length": 2}),
                               ("post", "/generate", {"genre": "rock", "mode": "compose", "length": 2}),
                               ("get", f"/api/tracks/{queued}", None), ("get", "/api/health", None),
                               ("post", f"/api/tracks/{queued}/cancel", None)):
        r = getattr(client, method)(path, json=body)
        assert r.status_code == 503 and "unreachable" in r.json["message"] and r.headers["Retry-After"], (path, r.json)
    options = client.get("/api/options").json                 # the page still loads; no mode can run
    assert not any(m["available"] for m in options["modes"]) and "unreachable" in options["modes"][0]["reason"]
    assert time.monotonic() - t0 < 30
    server.start()                                             # same port, an empty Redis
    publish_worker(server.url, "w1", ["cpu"], {"compose": None})
    service.jobs.roster(fresh=True)
    assert client.get("/api/health").status_code == 200
    assert client.post("/api/tracks", json={"genre": "rock", "mode": "compose", "length": 2}).status_code == 202
