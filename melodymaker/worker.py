"""The generation worker: `python -m melodymaker worker [--queues cpu,gpu] [--burst]`.

An RQ worker over the Redis that MELODYMAKER_QUEUE names. It loads the library, the engines and the
store once, then runs generation jobs from its queues (all of them when none are named) through
Service._run_job, the same data path as the embedded pool, writing tracks into the store
(MELODYMAKER_STORE_DIR: a folder every worker and web process mounts).

Before taking jobs it analyses the library (cached on disk) and loads the classifier, as the
server does at start. Jobs run in the worker process itself (RQ's SimpleWorker: no fork per job,
so the engines, a CUDA context included, are loaded once). A heartbeat thread renews the job's RQ entry every
MELODYMAKER_WORKER_HEARTBEAT seconds (10) for three times that long, so a worker killed mid-job
leaves an entry that lapses within 30 s; every live worker sweeps lapsed entries every
MELODYMAKER_WORKER_MAINTENANCE seconds (30), busy or idle, through RQ's own abandoned-job handling
(StartedJobRegistry.cleanup), which reports the job failed. So a killed worker's job reads `error`
within about a minute once any worker is alive. The same thread publishes the modes this worker can
run (jobs/roster.py). A lost Redis: the worker retries until it returns.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import time
import uuid

log = logging.getLogger("melodymaker.worker")
DEFAULT_QUEUES = ("cpu", "gpu")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--queues", help="comma-separated RQ queues to serve, in order of priority "
                   f"(default: all: {','.join(DEFAULT_QUEUES)})")
    p.add_argument("--burst", action="store_true", help="quit once the queues are empty")


def generation_worker_class(stop: threading.Event | None = None):
    """RQ's SimpleWorker with a heartbeat thread while a job runs (rq imported here, not at import).
    SIGINT/SIGTERM set `stop`; a running job finishes first (RQ's warm shutdown)."""
    from redis.exceptions import RedisError
    from rq.exceptions import StopRequested
    from rq.registry import clean_registries
    from rq.worker import SimpleWorker, WorkerStatus

    class GenerationWorker(SimpleWorker):
        stopping = stop or threading.Event()
        busy = False
        _beat: _Heartbeat | None = None

        def get_heartbeat_ttl(self, job) -> int:
            # the heartbeat thread renews the entry every job_monitoring_interval seconds; three
            # missed beats and the job counts as abandoned (SimpleWorker's default: the job timeout)
            return 3 * self.job_monitoring_interval

        def execute_job(self, job, queue):
            self.prepare_execution(job)
            self.busy, self._beat = True, _Heartbeat(self, job)
            try:
                self.perform_job(job, queue)
            finally:
                self._beat.stop()
                self.busy = False
            self.set_state(WorkerStatus.IDLE)

        def handle_execution_ended(self, job, queue, heartbeat_ttl):
            if self._beat is not None:  # no beat may touch the job once RQ's bookkeeping starts
                self._beat.stop()
            super().handle_execution_ended(job, queue, heartbeat_ttl)

        def request_stop(self, signum, frame):
            self.stopping.set()
            try:
                super().request_stop(signum, frame)
            except RedisError:  # RQ asks Redis whether it is busy; Redis is away: we know
                if not self.busy:
                    raise StopRequested() from None
                self._stop_requested = True

        def forget(self) -> None:
            """After a loop that Redis ended: stop its pubsub thread, which would retry forever."""
            thread = getattr(self, "pubsub_thread", None)
            if thread is not None:
                thread.stop()

        def sweep(self) -> None:
            """RQ's maintenance of each queue's registries (abandoned jobs -> failed), under its lock."""
            for queue in self.queues:
                if queue.acquire_maintenance_lock():
                    try:
                        clean_registries(queue, self._exc_handlers)
                    finally:
                        queue.release_maintenance_lock()

    return GenerationWorker


class _Heartbeat:
    """Renews a running job's RQ entries (worker, execution, job) every job_monitoring_interval."""

    def __init__(self, worker, job):
        self.worker, self.job, self.done = worker, job, threading.Event()
        self.thread = threading.Thread(target=self._run, name="job-heartbeat", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(self.worker.job_monitoring_interval):
            try:
                self.worker.maintain_heartbeats(self.job)
            except Exception as e:  # Redis away for a moment: the next beat tries again
                log.warning("heartbeat for job %s failed: %s", self.job.id, e)

    def stop(self) -> None:
        self.done.set()
        if self.thread is not threading.current_thread():
            self.thread.join()


def _announce(conn, name: str, info: dict, worker_ref: list, settings, stop: threading.Event) -> None:
    """Publish this worker's modes every heartbeat; sweep for abandoned jobs every maintenance
    interval (also while a long job keeps the RQ loop busy)."""
    from .jobs.roster import publish
    swept = 0.0
    while True:
        worker = worker_ref[0]
        try:
            publish(conn, name, {**info, "busy": bool(worker and worker.busy)}, ttl=3 * settings.worker_heartbeat)
            if worker is not None and time.monotonic() - swept >= settings.worker_maintenance:
                worker.sweep()
                swept = time.monotonic()
        except Exception as e:
            log.warning("could not publish this worker to Redis: %s", e)
        if stop.wait(settings.worker_heartbeat):
            return


def run(args: argparse.Namespace) -> int:
    from rq.serializers import JSONSerializer

    from .errors import QueueUnavailable
    from .jobs import redis_queue, roster
    from .service import Service
    from .settings import Settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings.from_env()
    if not settings.queue:
        print("error: set MELODYMAKER_QUEUE=redis://HOST:PORT/DB (the Redis the web tier uses)", file=sys.stderr)
        return 2
    queues = [q.strip() for q in (args.queues or ",".join(DEFAULT_QUEUES)).split(",") if q.strip()]
    bad = [q for q in queues if not roster.QUEUE_NAME.match(q)]
    if bad or not queues:
        print(f"error: --queues: {bad or 'none given'} (names of letters, digits, '.', '_', '-')", file=sys.stderr)
        return 2
    try:
        service = Service(settings, worker=True)   # library, engines, store: loaded once
    except (QueueUnavailable, ValueError) as e:
        print(f"error: the worker cannot start: {getattr(e, 'message', e)}", file=sys.stderr)
        return 2
    service.share_cores()
    started = time.perf_counter()
    service.warm_up()   # before the first job, as the server does in the background: the library's
    # tempi (the post stage's length plan reads them), the classifier and its embeddings; cached on disk
    log.info("library of %d clips analysed in %.1f s", len(service.library), time.perf_counter() - started)
    redis_queue.serve(service._run_job)
    conn = redis_queue.connect(settings.queue, timeout=30.0)
    name = f"{socket.gethostname()}.{os.getpid()}"
    modes = {m["name"]: {"available": m["available"], "reason": m["reason"]} for m in service.modes()}
    info = {"name": name, "host": socket.gethostname(), "pid": os.getpid(), "queues": queues, "modes": modes,
            "started": time.time(), "store": str(settings.store_dir)}
    log.info("worker %s on queues %s; modes: %s", name, ",".join(queues),
             ", ".join(f"{k}{'' if v['available'] else ' (unavailable)'}" for k, v in modes.items()))
    worker_ref, stop = [None], threading.Event()
    announcer = threading.Thread(target=_announce, args=(conn, name, info, worker_ref, settings, stop),
                                 name="announce", daemon=True)
    announcer.start()
    Worker = generation_worker_class(stop)
    try:
        while True:
            worker = None
            try:
                worker = Worker(queues, connection=conn, name=f"{name}.{uuid.uuid4().hex[:6]}",
                                serializer=JSONSerializer, job_monitoring_interval=settings.worker_heartbeat,
                                maintenance_interval=settings.worker_maintenance,
                                worker_ttl=15 + settings.worker_maintenance)
                worker_ref[0] = worker
                worker.work(burst=args.burst, logging_level="INFO", with_scheduler=False)
            except Exception as e:  # Redis went away under the loop: wait for it and start again
                log.warning("the worker loop stopped: %s: %s", type(e).__name__, e)
                if worker is not None:
                    worker.forget()
            if args.burst or stop.is_set():
                return 0
            log.warning("lost Redis at %s; retrying in 2 s", redis_queue.where(settings.queue))
            try:
                stop.wait(2.0)
            except Exception:  # a signal handler of the last loop that could not reach Redis
                pass
            if stop.is_set():
                return 0
    finally:
        stop.set()
        try:
            roster.withdraw(conn, name)
        except Exception:
            pass
        service.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m melodymaker worker", description=__doc__.splitlines()[0])
    add_arguments(p)
    return run(p.parse_args(argv))
