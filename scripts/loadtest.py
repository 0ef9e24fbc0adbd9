"""Concurrency load test: simultaneous POST /generate requests across modes against a local server.

    python scripts/loadtest.py --start --requests 64 --concurrency 16 --length 10
    python scripts/loadtest.py --url http://127.0.0.1:8090 --requests 16 --modes dataset,compose
    python scripts/loadtest.py --compare --requests 12 --length 5 --modes compose,ddim

--compare measures each mode separately on each deployment in one run: the embedded pool (1 and 2
threads) and the Redis deployment (README "Scaling out": a redis-server on a free port, a web
process and 1, then 2, `python -m melodymaker worker` processes), and prints throughput (tracks per
minute) and p50/p95 latency as a table.

Every answer must be either 200 with a WAV of exactly --length seconds (decoded with soundfile),
or a refusal (429 or 503) with a Retry-After header and a JSON error body. Prints requests,
successes, refusals, errors, median and p95 latency (and --json writes them). Exits 1 on any 5xx
other than a well-formed refusal, any timeout, connection error or corrupted file.
Talks to 127.0.0.1 only.
"""
from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
SR = 22050
MAX_REQUESTS, MAX_CONCURRENCY = 1000, 64


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log_path: Path | None) -> subprocess.Popen:
    """`python app.py` on 127.0.0.1:port; MELODYMAKER_* settings come from the environment."""
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1",
                             "--port", str(port), "--no-browser"], cwd=ROOT, stdout=out,
                            stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_ready(host: str, port: int, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode} before it was ready")
        try:
            conn = http.client.HTTPConnection(host, port, timeout=2)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server on port {port} was not ready within {timeout:.0f} s")


def one_request(host: str, port: int, body: dict, length: float, timeout: float) -> dict:
    """POST /generate and judge the answer: ok | refused | error (with why)."""
    t0 = time.perf_counter()
    result = {"mode": body["mode"], "genre": body["genre"], "status": None}
    try:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.request("POST", "/generate", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        headers = {k.lower(): v for k, v in r.getheaders()}
        conn.close()
    except (OSError, http.client.HTTPException) as e:  # socket.timeout is an OSError
        kind = "timeout" if isinstance(e, (socket.timeout, TimeoutError)) else "connection"
        result.update(outcome="error", why=f"{kind}: {type(e).__name__}: {e}")
        result["latency"] = time.perf_counter() - t0
        return result
    result["latency"] = time.perf_counter() - t0
    result["status"] = r.status
    if r.status == 200:
        try:
            y, sr = sf.read(io.BytesIO(data), dtype="float32")
        except Exception as e:
            result.update(outcome="error", why=f"corrupted WAV: {type(e).__name__}: {e}")
            return result
        want = int(round(length * SR))
        if sr != SR or len(y) != want:
            result.update(outcome="error", why=f"WAV is {len(y)} samples at {sr} Hz, want {want} at {SR}")
        elif "x-track-id" not in headers:
            result.update(outcome="error", why="200 without X-Track-Id")
        else:
            result["outcome"] = "ok"
        return result
    try:
        payload = json.loads(data)
        json_error = isinstance(payload, dict) and payload.get("status") == "error" and "message" in payload
    except ValueError:
        payload, json_error = None, False
    if r.status in (429, 503) and "retry-after" in headers and json_error:
        result.update(outcome="refused", retry_after=headers["retry-after"])
    else:
        result.update(outcome="error", why=f"HTTP {r.status} (retry-after: {headers.get('retry-after')}, "
                                           f"body: {data[:200]!r})")
    return result


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def run(host: str, port: int, *, requests: int, concurrency: int, modes: list[str], genres: list[str],
        length: float, timeout: float) -> dict:
    bodies = [{"genre": genres[i % len(genres)], "mode": modes[i % len(modes)], "length": length,
               "seed": i, "format": "wav"} for i in range(requests)]
    barrier = threading.Barrier(min(concurrency, requests))

    def task(body):
        try:  # the first wave leaves together, so the queue really is hit at once
            barrier.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        return one_request(host, port, body, length, timeout)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(task, bodies))
    wall = time.perf_counter() - t0
    ok = [r for r in results if r["outcome"] == "ok"]
    latencies = [r["latency"] for r in ok]
    errors = [r for r in results if r["outcome"] == "error"]
    return {
        "requests": len(results), "successes": len(ok),
        "tracks_per_min": round(len(ok) / wall * 60, 2) if ok else 0.0,
        "refusals": sum(r["outcome"] == "refused" for r in results), "errors": len(errors),
        "server_errors": sum(1 for r in errors if (r["status"] or 0) >= 500),
        "timeouts": sum(1 for r in errors if r.get("why", "").startswith("timeout")),
        "median_latency_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_latency_s": round(percentile(latencies, 0.95), 3) if latencies else None,
        "wall_s": round(wall, 3), "concurrency": concurrency, "length": length, "modes": modes,
        "by_mode": {m: {"ok": sum(r["mode"] == m for r in ok),
                        "refused": sum(r["mode"] == m and r["outcome"] == "refused" for r in results)}
                    for m in modes},
        "error_details": [f"{r['mode']}/{r['genre']}: {r['why']}" for r in errors][:20],
    }


# -- --compare: the embedded pool beside the Redis deployment ------------------------------------------
def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_workers(host: str, port: int, count: int, modes: list[str], timeout: float) -> None:
    """Until `count` workers are live and every mode is available through them."""
    deadline, health = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=5)
            conn.request("GET", "/api/health")
            health = json.loads(conn.getresponse().read())
            if (len(health["jobs"].get("live_workers", [])) == count
                    and all(health["models"][m]["available"] for m in modes)):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{count} workers offering {modes} were not live within {timeout:.0f} s: {health}")


def wait_analysed(host: str, port: int, timeout: float) -> None:
    """Until the server's background warm-up has analysed every library clip (a job's length plan
    reads the genre's tempo), so no deployment is measured while it analyses."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection(host, port, timeout=10)
            conn.request("GET", "/api/library")
            if all(c["tempo"] for c in json.loads(conn.getresponse().read())["clips"]):
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(1.0)
    print(f"warning: the library was still being analysed after {timeout:.0f} s", file=sys.stderr)


def deployment(kind: str, n: int, folder: Path, args) -> tuple[int, list[subprocess.Popen]]:
    """Start one deployment on a free port: `python app.py` with an embedded pool of n threads, or
    a redis-server, `python app.py` and n worker processes (MELODYMAKER_WORKERS=n: they share the
    cores). Tracks go to a store under folder; library, models and caches come from the environment."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "MELODYMAKER_WORKERS": str(n),
           "MELODYMAKER_STORE_DIR": str(folder / "store"), "PYTHONPATH": str(ROOT)}
    env.pop("MELODYMAKER_QUEUE", None)
    procs, port = [], free_port()
    log = open(folder / "log.txt", "ab")
    if kind == "redis":
        redis_port = free_port()
        procs.append(subprocess.Popen([args.redis_server, "--port", str(redis_port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", str(folder)],
                                      stdout=log, stderr=subprocess.STDOUT))
        env["MELODYMAKER_QUEUE"] = f"redis://127.0.0.1:{redis_port}/0"
        time.sleep(0.5)
        procs += [subprocess.Popen([sys.executable, "-m", "melodymaker", "worker"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT) for _ in range(n)]
    procs.append(subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port",
                                   str(port), "--no-browser"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT))
    try:
        wait_ready("127.0.0.1", port, args.ready_timeout, procs[-1])
        wait_analysed("127.0.0.1", port, args.ready_timeout * 5)
        if kind == "redis":
            wait_workers("127.0.0.1", port, n, [m.strip() for m in args.modes.split(",")], args.ready_timeout * 3)
    except Exception:
        for proc in reversed(procs):
            stop(proc)
        raise
    return port, procs


def compare(args) -> int:
    """Every mode on every deployment; a markdown table, and --json with every summary."""
    import tempfile
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    genres = [g.strip() for g in args.genres.split(",") if g.strip()]
    rows, failed = [], 0
    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        for kind, n in (("embedded", 1), ("embedded", 2), ("redis", 1), ("redis", 2)):
            label = f"embedded pool, {n} thread{'s' * (n > 1)}" if kind == "embedded" else \
                f"Redis + {n} worker process{'es' * (n > 1)}"
            port, procs = deployment(kind, n, Path(tmp) / f"{kind}{n}", args)
            try:
                for mode in modes:
                    run("127.0.0.1", port, requests=max(1, args.warmup), concurrency=max(1, args.warmup),
                        modes=[mode], genres=genres, length=args.length, timeout=args.timeout)
                    s = run("127.0.0.1", port, requests=args.requests, concurrency=args.concurrency, modes=[mode],
                            genres=genres, length=args.length, timeout=args.timeout)
                    failed += s["errors"] + s["refusals"]
                    rows.append({"deployment": label, "mode": mode, **s})
                    print(f"{label:32s} {mode:8s} {s['successes']}/{s['requests']} ok  {s['tracks_per_min']:6.1f} "
                          f"tracks/min  p50 {s['median_latency_s']} s  p95 {s['p95_latency_s']} s", flush=True)
            finally:
                for proc in reversed(procs):
                    stop(proc)
    print(f"\n{args.requests} requests per cell, all sent at once (concurrency {args.concurrency}), "
          f"{args.length:g} s tracks\n")
    print("| deployment | mode | ok | tracks/min | p50 latency (s) | p95 latency (s) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['deployment']} | {r['mode']} | {r['successes']}/{r['requests']} | {r['tracks_per_min']} | "
              f"{r['median_latency_s']} | {r['p95_latency_s']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="a running server, e.g. http://127.0.0.1:8090 (127.0.0.1 only)")
    where.add_argument("--start", action="store_true",
                       help="start `python app.py` on a free port (MELODYMAKER_* env: GENRES_DIR, VAR_DIR, ...)")
    where.add_argument("--compare", action="store_true",
                       help="each mode on the embedded pool (1, 2 threads) and on Redis with 1, 2 worker processes")
    p.add_argument("--warmup", type=int, default=2, help="with --compare: requests per deployment and mode "
                   "before measuring (first-use costs)")
    p.add_argument("--redis-server", default="redis-server", help="with --compare: the redis-server binary")
    p.add_argument("--requests", type=int, default=16)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--modes", default="dataset,compose")
    p.add_argument("--genres", default="rock,jazz,blues")
    p.add_argument("--length", type=float, default=3.0, help="seconds of audio per request")
    p.add_argument("--timeout", type=float, default=120.0, help="per-request timeout in seconds")
    p.add_argument("--ready-timeout", type=float, default=60.0, help="seconds to wait for --start")
    p.add_argument("--server-log", type=Path, help="with --start: write the server's output here")
    p.add_argument("--json", type=Path, help="also write the summary here")
    args = p.parse_args(argv)
    if not 1 <= args.requests <= MAX_REQUESTS or not 1 <= args.concurrency <= MAX_CONCURRENCY:
        p.error(f"--requests 1..{MAX_REQUESTS}, --concurrency 1..{MAX_CONCURRENCY}")

    if args.compare:
        return compare(args)
    proc = None
    if args.url:
        u = urlsplit(args.url)
        if u.hostname not in ("127.0.0.1", "localhost"):
            p.error("--url must point at 127.0.0.1")
        host, port = "127.0.0.1", u.port or 80
    else:
        host, port = "127.0.0.1", free_port()
        proc = start_server(port, args.server_log)
    try:
        wait_ready(host, port, args.ready_timeout, proc)
        summary = run(host, port, requests=args.requests, concurrency=args.concurrency,
                      modes=[m.strip() for m in args.modes.split(",") if m.strip()],
                      genres=[g.strip() for g in args.genres.split(",") if g.strip()],
                      length=args.length, timeout=args.timeout)
        # which requests of a burst get in is a race; what must hold is that, once the burst is
        # answered, the server serves every mode again (one request each, in turn)
        modes = summary["modes"]
        after = [one_request(host, port, {"genre": args.genres.split(",")[0].strip(), "mode": m, "length": args.length,
                                          "seed": 10_000 + i, "format": "wav"}, args.length, args.timeout)
                 for i, m in enumerate(modes)]
        summary["after_burst"] = {r["mode"]: r["outcome"] if r["outcome"] != "error" else r["why"] for r in after}
        for r in after:
            if r["outcome"] == "error":
                summary["errors"] += 1
                summary["error_details"].append(f"after the burst, {r['mode']}: {r['why']}")
        if proc is not None and proc.poll() is not None:
            summary["errors"] += 1
            summary["error_details"].append(f"the server exited with {proc.returncode}")
    finally:
        if proc is not None:
            stop(proc)
    print(f"requests {summary['requests']}  successes {summary['successes']}  refusals {summary['refusals']}  "
          f"errors {summary['errors']}  median {summary['median_latency_s']} s  p95 {summary['p95_latency_s']} s  "
          f"{summary['tracks_per_min']} tracks/min (wall {summary['wall_s']} s, concurrency {args.concurrency}, "
          f"length {args.length} s)")
    for m, row in summary["by_mode"].items():
        print(f"  {m}: {row['ok']} ok, {row['refused']} refused")
    print("  after the burst: " + ", ".join(f"{m} {o}" for m, o in summary.get("after_burst", {}).items()))
    for line in summary["error_details"]:
        print(f"  ERROR {line}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1))
    return 1 if summary["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
