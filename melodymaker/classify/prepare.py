"""What the judges train and are tested on, computed once per clip (in worker processes) and cached.

A training clip gives its whole clean log-mel and descriptors, plus `copies` augmented excerpts
(degrade.augment: a chain of 1-3 generic degradations); a held-out clip gives an excerpt under
every condition of degrade.CONDITIONS, and its whole clean clip. Randomness comes from the seed
and the clip's key only, so results do not depend on worker order or on which other clips exist.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import degrade
from .descriptors import DescriptorParams, descriptors
from .features import MelParams, clip_logmel

CACHE_VERSION = 1


@dataclass(frozen=True)
class Plan:
    """Everything that decides a clip's arrays (and so its cache entry)."""
    mel: dict
    descriptors: dict
    copies: int = 3               # augmented excerpts per training clip
    crop_seconds: float = 10.0    # length of each augmented excerpt (0: whole clip)
    test_seconds: float = 10.0    # the held-out excerpt every condition is applied to (0: whole clip)
    seed: int = 0

    def digest(self, role: str) -> str:
        """What a clip's arrays in `role` depend on (a test clip's not on the training copies)."""
        unused = ("test_seconds",) if role == "train" else ("copies", "crop_seconds")
        fields = {k: v for k, v in asdict(self).items() if k not in unused}
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def clip_rng(seed: int, key: str, salt: int = 0) -> np.random.Generator:
    """A generator that depends on the seed, the clip's key and a salt alone."""
    h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")
    return np.random.default_rng([int(seed), h, int(salt)])


def excerpt(y: np.ndarray, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """n samples of y (all of y when shorter): at a random start, or the middle without rng."""
    if n <= 0 or len(y) <= n:
        return y
    start = int(rng.integers(0, len(y) - n + 1)) if rng is not None else (len(y) - n) // 2
    return y[start: start + n]


def compute(path: str, key: str, role: str, plan: Plan) -> dict | str:
    """The arrays of one clip, or the reason it cannot be read.

    train: {"logmel": [clean, copy 1, ...] float16 (n_mels, frames), "desc": (1 + copies, d)}
    test:  {"logmel": [whole clip, each condition], "desc": (1 + len(CONDITIONS), d)}
    """
    from ..audio import load
    from ..errors import AudioDecodeError
    mel, dp = MelParams(**plan.mel), DescriptorParams(**plan.descriptors)
    try:
        y = load(path, mel.sr)
    except AudioDecodeError as e:
        return e.message
    sr = mel.sr
    if role == "train":
        rng = clip_rng(plan.seed, key)
        versions = [y] + [degrade.augment(excerpt(y, int(plan.crop_seconds * sr), rng), sr, rng)
                          for _ in range(plan.copies)]
    else:
        part = excerpt(y, int(plan.test_seconds * sr))
        versions = [y] + [degrade.apply(c, part, sr, clip_rng(plan.seed, key, 1 + i))
                          for i, c in enumerate(degrade.CONDITIONS)]
    return {"logmel": [clip_logmel(v, mel).astype(np.float16) for v in versions],
            "desc": np.stack([descriptors(v, dp) for v in versions])}


def _cache_path(cache: Path, path: str, key: str, role: str, plan: Plan) -> Path:
    st = os.stat(path)
    stamp = f"{CACHE_VERSION}|{plan.digest(role)}|{role}|{key}|{Path(path).resolve()}|{st.st_size}|{st.st_mtime_ns}"
    return cache / f"{hashlib.sha256(stamp.encode()).hexdigest()[:24]}.npz"


def _cached(path: str, key: str, role: str, plan: Plan, cache: str | None) -> dict | str:
    if not cache:
        return compute(path, key, role, plan)
    file = _cache_path(Path(cache), path, key, role, plan)
    try:
        with np.load(file, allow_pickle=False) as data:
            n = int(data["n"])
            return {"logmel": [data[f"logmel{i}"] for i in range(n)], "desc": data["desc"]}
    except (OSError, KeyError, ValueError):
        pass  # absent or damaged: computed again
    result = compute(path, key, role, plan)
    if isinstance(result, dict):
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_name(f".{file.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, n=len(result["logmel"]), desc=result["desc"],
                 **{f"logmel{i}": m for i, m in enumerate(result["logmel"])})
        os.replace(tmp, file)
    return result


def one_thread() -> None:
    try:  # each worker is one process on one core: no BLAS thread pools fighting over it
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    except ImportError:
        pass


def compute_all(jobs: list[tuple[str, str, str]], plan: Plan, *, workers: int, cache: str | None,
                log=print) -> list[dict | str]:
    """compute() for each (path, key, role), in order, on `workers` processes."""
    t0 = time.time()
    args = ([j[0] for j in jobs], [j[1] for j in jobs], [j[2] for j in jobs],
            [plan] * len(jobs), [cache] * len(jobs))
    pool = None
    if workers <= 1:
        iterator = map(_cached, *args)
    else:
        import multiprocessing as mp
        pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=one_thread)
        iterator = pool.map(_cached, *args, chunksize=2)
    results = []
    try:
        for k, r in enumerate(iterator, 1):
            results.append(r)
            if k % 100 == 0 or k == len(jobs):
                log(f"features {k}/{len(jobs)} clips ({time.time() - t0:.0f} s)")
    finally:
        if pool is not None:
            pool.shutdown()
    return results
