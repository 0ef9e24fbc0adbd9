"""Which RQ workers are alive, what each can run, and which queue a mode's jobs go to.

Each worker publishes its queues and the availability of every mode (with the reason for those it
cannot run) under a Redis key that expires unless the worker renews it (a heartbeat); a sorted set
names the workers. The web tier reads the union: a mode is available when a live worker that serves
one of its queues can run it. Routing: each mode lists its queues in order of preference in the
registry (engines.MODES[...].queues: compose and dataset on "cpu"; the neural modes on "gpu", else
"cpu"); MELODYMAKER_QUEUE_ROUTES overrides them ("ddim=gpu/cpu,melgan=cpu"). A job goes to the first
queue of its mode's list that a live worker, able to run the mode, serves.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field

from .. import engines
from ..errors import ModeUnavailable

PREFIX = "melodymaker:"
WORKERS = PREFIX + "workers"           # sorted set: worker name -> the time its entry expires
QUEUE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def worker_key(name: str) -> str:
    return f"{PREFIX}worker:{name}"


def parse_routes(text: str) -> dict[str, tuple[str, ...]]:
    """'ddim=gpu/cpu, melgan=cpu' -> {"ddim": ("gpu", "cpu"), "melgan": ("cpu",)}; ValueError names
    what is wrong (an unknown mode, a malformed queue name)."""
    routes = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        mode, _, queues = part.partition("=")
        mode, names = mode.strip(), tuple(q.strip() for q in queues.split("/") if q.strip())
        if mode not in engines.MODES:
            raise ValueError(f"MELODYMAKER_QUEUE_ROUTES: unknown mode {mode!r} in {part!r}; "
                             f"modes: {', '.join(engines.MODES)}")
        if not names or not all(QUEUE_NAME.match(q) for q in names):
            raise ValueError(f"MELODYMAKER_QUEUE_ROUTES: {part!r} is not mode=queue[/fallback...]")
        routes[mode] = names
    return routes


def mode_routes(overrides: str = "") -> dict[str, tuple[str, ...]]:
    """Every mode's queues in order of preference: the registry's, then the overrides."""
    return {**{name: mode.queues for name, mode in engines.MODES.items()}, **parse_routes(overrides)}


def publish(conn, name: str, info: dict, ttl: float) -> None:
    """Announce (or renew) a worker for ttl seconds."""
    now = time.time()
    with conn.pipeline() as pipe:
        pipe.set(worker_key(name), json.dumps(info), px=max(1000, int(ttl * 1000)))
        pipe.zadd(WORKERS, {name: now + ttl})
        pipe.zremrangebyscore(WORKERS, "-inf", now)
        pipe.execute()


def withdraw(conn, name: str) -> None:
    """A worker that stops cleanly leaves at once instead of when its entry expires."""
    with conn.pipeline() as pipe:
        pipe.delete(worker_key(name))
        pipe.zrem(WORKERS, name)
        pipe.execute()


@dataclass
class Roster:
    """The live workers as they published themselves."""
    workers: list[dict] = field(default_factory=list)

    @classmethod
    def read(cls, conn) -> "Roster":
        names = [n.decode() if isinstance(n, bytes) else n
                 for n in conn.zrangebyscore(WORKERS, time.time(), "+inf")]
        values = conn.mget([worker_key(n) for n in names]) if names else []
        workers = []
        for value in values:
            try:
                workers.append(json.loads(value)) if value else None
            except ValueError:
                continue  # a malformed entry is not a worker
        return cls(workers)

    def queues(self) -> set[str]:
        return {q for w in self.workers for q in w.get("queues", ())}

    def route(self, mode: str, preference: tuple[str, ...]) -> str:
        """The queue for a job of `mode`; ModeUnavailable (503) with the reason when no live worker
        can run it."""
        for queue in preference:
            if any(queue in w.get("queues", ()) and _offers(w, mode) for w in self.workers):
                return queue
        raise ModeUnavailable(f"mode '{mode}' is unavailable: {self.reason(mode, preference)}", field="mode")

    def reason(self, mode: str, preference: tuple[str, ...]) -> str:
        if not self.workers:
            return "no generation worker is running (start one: python -m melodymaker worker)"
        serving = [w for w in self.workers if set(w.get("queues", ())) & set(preference)]
        if not serving:
            return (f"no live worker serves the queue{'s' if len(preference) > 1 else ''} "
                    f"{' or '.join(preference)} that this mode runs on")
        reasons = sorted({(w.get("modes", {}).get(mode) or {}).get("reason") or "not offered"
                          for w in serving})
        return "; ".join(reasons)

    def modes(self, routes: dict[str, tuple[str, ...]]) -> dict[str, dict]:
        """{mode: {"available", "reason", "queues", "workers"}} over the registry's modes."""
        out = {}
        for name in engines.MODES:
            preference = routes.get(name, ("cpu",))
            able = [w["name"] for w in self.workers
                    if set(w.get("queues", ())) & set(preference) and _offers(w, name)]
            out[name] = {"available": bool(able), "reason": None if able else self.reason(name, preference),
                         "queues": list(preference), "workers": len(able)}
        return out

    def public(self) -> list[dict]:
        return [{k: w.get(k) for k in ("name", "host", "pid", "queues", "busy", "started")}
                for w in self.workers]


def _offers(worker: dict, mode: str) -> bool:
    return bool((worker.get("modes", {}).get(mode) or {}).get("available"))
