"""The RQ backend: generation jobs on RQ workers over Redis (`python -m melodymaker worker`).

Job state lives in Redis, so any web process answers for any job. RQ keeps each job's lifecycle
(queued, started, finished, failed, canceled; an abandoned job -- its worker killed -- is moved to
failed by RQ's maintenance once its heartbeat lapses); a small hash per job beside it holds what RQ
does not: progress 0-1 and a message written by the worker, the cancel flag the worker's progress
callback checks, and how a job ended when that was ours to say (an error a user can act on, or a
cancel). Jobs and their arguments are JSON (rq's JSONSerializer), never pickles.

Any Redis failure becomes QueueUnavailable (503 with Retry-After) at once: short socket timeouts
and one quick retry, so a lost Redis never hangs a request, and the next request reconnects.
"""
from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager

from redis import Redis
from redis.backoff import ConstantBackoff
from redis.exceptions import RedisError
from redis.retry import Retry
from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from ..errors import Busy, MelodyMakerError, NotFound, QueueUnavailable
from .base import JobQueue, JobState
from .roster import PREFIX, Roster, mode_routes

JOB_FUNCTION = "melodymaker.jobs.redis_queue.perform"   # what a worker runs (below)
RESULT_TTL = 24 * 3600        # seconds a finished job's state stays in Redis (the store keeps the track)
FAILURE_TTL = 24 * 3600       # ... and a failed or cancelled one's, with its reason
ABANDONED = ("the worker running this generation stopped before it finished (killed, or it lost "
             "Redis); nothing was stored: try again")


def state_key(job_id: str) -> str:
    return f"{PREFIX}job:{job_id}"


def connect(url: str, *, timeout: float = 5.0) -> Redis:
    """A client that fails fast: 2 s to connect, `timeout` per command, one retry."""
    return Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=timeout,
                          retry=Retry(ConstantBackoff(0.1), 1), health_check_interval=30)


def where(url: str) -> str:
    """The URL without a password, for messages."""
    from urllib.parse import urlsplit
    u = urlsplit(url)
    return f"{u.scheme}://{u.hostname}:{u.port or 6379}{u.path or ''}"


class RedisQueue(JobQueue):
    """JobQueue over RQ. `remote`: the engines run in worker processes, not here."""
    remote = True

    def __init__(self, url: str, *, max_pending: int, job_timeout: int, routes: str = "",
                 roster_cache: float = 1.0):
        self.url, self.max_pending, self.job_timeout = url, max_pending, job_timeout
        self.routes = mode_routes(routes)               # ValueError on a bad MELODYMAKER_QUEUE_ROUTES
        self.conn = connect(url)
        self._roster, self._roster_at, self.roster_cache = Roster(), -1e9, roster_cache
        with self.guard():
            self.conn.ping()                            # unreachable at start: say so, never fall back

    @contextmanager
    def guard(self):
        """Redis errors as QueueUnavailable: a 503 that names the queue and the cause."""
        try:
            yield
        except RedisError as e:
            self._roster_at = -1e9
            raise QueueUnavailable(f"the job queue (Redis at {where(self.url)}) is unreachable: "
                                   f"{type(e).__name__}: {e}") from None

    def queue(self, name: str) -> Queue:
        return Queue(name, connection=self.conn, serializer=JSONSerializer,
                     default_timeout=self.job_timeout)

    def _queue_names(self) -> list[str]:
        return sorted({q for route in self.routes.values() for q in route} | self.roster().queues())

    # -- the workers ----------------------------------------------------------------------------
    def roster(self, fresh: bool = False) -> Roster:
        """The live workers, read at most once per roster_cache seconds."""
        if fresh or time.monotonic() - self._roster_at > self.roster_cache:
            with self.guard():
                self._roster = Roster.read(self.conn)
            self._roster_at = time.monotonic()
        return self._roster

    @property
    def workers(self) -> int:
        return len(self.roster().workers)

    def offered_modes(self) -> dict[str, dict]:
        """Every mode's availability as the live workers publish it (the union)."""
        return self.roster().modes(self.routes)

    def check_mode(self, mode: str) -> str:
        """The queue a job of `mode` goes to; ModeUnavailable when no live worker can run it."""
        return self.roster().route(mode, self.routes.get(mode, ("cpu",)))

    # -- JobQueue -------------------------------------------------------------------------------
    def submit(self, job_id: str, payload: dict) -> JobState:
        from ..request import GenerationRequest
        request = GenerationRequest.parse(payload)      # a payload that does not parse never enqueues
        body = json.loads(json.dumps(payload))          # ... nor one that is not plain JSON
        queue = self.queue(self.check_mode(request.mode))
        with self.guard():
            waiting = sum(self.queue(name).count for name in self._queue_names())
            if waiting >= self.max_pending:
                raise Busy(f"{waiting} generations are already queued; try again in a few seconds")
            with self.conn.pipeline() as pipe:
                pipe.hset(state_key(job_id), mapping={"progress": 0.0, "message": "queued"})
                pipe.expire(state_key(job_id), self.job_timeout + FAILURE_TTL)
                pipe.execute()
            queue.enqueue_call(JOB_FUNCTION, args=(job_id, body), job_id=job_id, timeout=self.job_timeout,
                               result_ttl=RESULT_TTL, failure_ttl=FAILURE_TTL,
                               description=f"{request.mode} {request.genre} {request.length:g} s")
        return JobState(job_id, message="queued")

    def status(self, job_id: str) -> JobState:
        with self.guard():
            try:
                job = Job.fetch(job_id, connection=self.conn, serializer=JSONSerializer)
            except NoSuchJobError:
                raise NotFound(f"no job {job_id}", field="id") from None
            return self._state(job, self.conn.hgetall(state_key(job_id)))

    def _state(self, job: Job, raw: dict) -> JobState:
        mine = {k.decode(): v.decode() for k, v in raw.items()}
        rq_status = job.get_status(refresh=False)
        state = JobState(job.id, progress=float(mine.get("progress", 0.0)), message=mine.get("message", ""),
                         created=job.created_at.timestamp() if job.created_at else time.time(),
                         cancel_requested=mine.get("cancel") == "1")
        outcome = mine.get("outcome")
        if rq_status in (JobStatus.QUEUED, JobStatus.DEFERRED, JobStatus.SCHEDULED, JobStatus.CREATED):
            state.status = "queued"
        elif rq_status == JobStatus.STARTED:
            state.status = "running"
        elif rq_status == JobStatus.FINISHED and outcome is None:
            state.status, state.progress, state.message = "done", 1.0, "done"
        elif outcome == "cancelled" or rq_status in (JobStatus.CANCELED, JobStatus.STOPPED):
            state.status, state.message = "cancelled", "cancelled by the user"
        else:                                           # failed: ours to explain, or RQ's
            state.status = "error"
            state.error = json.loads(mine["error"]) if mine.get("error") else self._rq_error(job)
            state.message = state.error["message"]
        return state

    @staticmethod
    def _rq_error(job: Job) -> dict:
        result = job.latest_result()
        text = (result.exc_string if result is not None else None) or job.exc_info or ""
        if "AbandonedJobError" in text:
            return {"message": ABANDONED, "field": None, "status": 500}
        last = [line for line in text.strip().splitlines() if line.strip()][-1:] or ["unknown failure"]
        return {"message": f"generation failed: {last[0].strip()}", "field": None, "status": 500}

    def cancel(self, job_id: str) -> JobState:
        state = self.status(job_id)
        if state.finished:
            return state
        with self.guard():
            self.conn.hset(state_key(job_id), "cancel", "1")    # the state a running job's worker checks
            job = Job.fetch(job_id, connection=self.conn, serializer=JSONSerializer)
            if self.queue(job.origin).remove(job_id):           # still waiting: it never starts
                self.conn.hset(state_key(job_id), mapping={"outcome": "cancelled", "message": "cancelled"})
                job.cancel()
        return self.status(job_id)

    def wait(self, job_id: str, timeout: float | None = None) -> JobState:
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.05
        while True:
            state = self.status(job_id)
            if state.finished or (deadline is not None and time.monotonic() >= deadline):
                return state
            left = 1.0 if deadline is None else deadline - time.monotonic()
            time.sleep(max(0.0, min(pause, left)))
            pause = min(0.5, pause * 1.5)

    def list(self) -> list[JobState]:
        ids: list[str] = []
        with self.guard():
            for name in self._queue_names():
                q = self.queue(name)
                ids += q.get_job_ids()
                for registry in (q.started_job_registry, q.finished_job_registry, q.failed_job_registry,
                                 q.canceled_job_registry):
                    ids += registry.get_job_ids(0, 99, desc=True)
            jobs = [j for j in Job.fetch_many(list(dict.fromkeys(ids)), connection=self.conn,
                                              serializer=JSONSerializer) if j is not None]
            states = [self._state(j, self.conn.hgetall(state_key(j.id))) for j in jobs]
        return sorted(states, key=lambda s: -s.created)

    def pending(self) -> int:
        with self.guard():
            return sum(self.queue(n).count + self.queue(n).started_job_registry.count
                       for n in self._queue_names())

    def close(self) -> None:
        self.conn.close()


# -- the worker side: what `perform` needs in a worker process -------------------------------------
_work = None


def serve(work) -> None:
    """Make this process a worker: `perform` runs work(job_id, payload, progress)."""
    global _work
    _work = work


def perform(job_id: str, payload: dict) -> str | None:
    """The RQ job function: run the work with a progress callback that writes progress to Redis and
    stops the work (Cancelled) once the job's cancel flag is set; record how it ended.

    The work runs on a generation thread, as in the embedded pool, while RQ's main thread waits for
    it (and takes its signals: the job timeout, a shutdown). The same code on the main thread ran
    DDIM 5-10 times slower on this project's busy 2-core machine (torch's intra-op threads), so a
    job runs here exactly as it runs in the pool."""
    from rq import get_current_job

    from .base import Cancelled
    if _work is None:
        raise RuntimeError("this process is not a MelodyMaker worker (python -m melodymaker worker)")
    conn, key = get_current_job().connection, state_key(job_id)
    last, abandon = {"at": 0.0, "progress": 0.0}, threading.Event()

    def progress(fraction: float, message: str = "") -> None:
        if abandon.is_set():                    # the job timed out or the worker is going down
            raise Cancelled()
        now = time.monotonic()
        if now - last["at"] < 0.1:              # at most ten round trips a second
            return
        last.update(at=now, progress=max(last["progress"], min(1.0, float(fraction))))
        try:
            with conn.pipeline() as pipe:
                pipe.hset(key, mapping={"progress": last["progress"], "message": message})
                pipe.hget(key, "cancel")
                cancel = pipe.execute()[1]
        except RedisError:
            return                              # Redis away for a moment: keep generating
        if cancel == b"1":
            raise Cancelled()

    def record(**fields) -> None:
        try:
            conn.hset(key, mapping=fields)
        except RedisError:
            pass

    if conn.hget(key, "cancel") == b"1":
        record(outcome="cancelled", message="cancelled")
        raise Cancelled("cancelled before it started")
    try:
        result = _on_a_thread(lambda: _work(job_id, payload, progress), f"generate-{job_id[:8]}", abandon)
    except Cancelled:
        record(outcome="cancelled", message="cancelled")
        raise
    except MelodyMakerError as e:
        record(outcome="error", error=json.dumps({"message": e.message, "field": e.field, "status": e.status}))
        raise
    except Exception as e:                      # an engine bug (or the job timeout): say which
        message = f"generation failed: {type(e).__name__}: {e}"
        record(outcome="error", error=json.dumps({"message": message, "field": None, "status": 500}))
        raise
    record(progress=1.0, message="done")
    return result


def _on_a_thread(fn, name: str, abandon: threading.Event):
    """fn() on a thread of its own; its result or its exception. Whatever interrupts the wait here
    (RQ's job timeout, a shutdown) sets `abandon`, which stops fn at its next progress report."""
    box: dict = {}

    def run() -> None:
        try:
            box["result"] = fn()
        except BaseException as e:  # handed to the waiting thread, which raises it there
            box["error"] = e

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.5)                    # in slices: signal handlers run in between
    except BaseException:
        abandon.set()
        raise
    if "error" in box:
        raise box["error"]
    return box.get("result")

