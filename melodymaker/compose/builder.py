"""The built-in library: composer clips written in GTZAN's layout and format, with sidecars."""
#     python -m melodymaker library build --out genres --per-genre 100 --seed 0
#
# writes genres/<genre>/<genre>.00000.au (22050 Hz, mono, 16-bit PCM, exactly --duration
# seconds) and genres/<genre>/<genre>.00000.json (genre, tempo, key, instruments, seeds).
# Clip i of genre g depends only on (seed, g, i): a small build is a prefix of a larger one,
# the same seed gives the same bytes, and a rerun skips clips that are already there.
# Like GTZAN's, each clip is an excerpt: the song runs on past the clip's end.
from __future__ import annotations

import argparse
import io
import json
import os
import random
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import soundfile as sf

from ..options import GENRES, SAMPLE_RATE
from ..midi import DEFAULT_SOUNDFONT
from .composer import perform
from .styles import style_of

BUILDER_VERSION = 1
LIBRARY_STYLE_VERSION = 1
"""The composer's styles the library is built with (styles.STYLE_VERSIONS); a newer one applies to
compose requests, and to a library only once the models are retrained on it."""
BEFORE_PINNING = {"soundfont": DEFAULT_SOUNDFONT.name, "style_version": 1}
"""What a sidecar written before these were recorded was built with."""
TARGET_RMS_DB = -20.0
"""Clips are levelled to this RMS (dBFS), peaks kept at or below PEAK."""
PEAK = 0.98
RUN_ON = 8.0
"""Seconds the composition runs past the end of its clip."""
FADE = 0.5


def clip_spec(genre: str, index: int, seed: int, duration: float) -> dict:
    """What clip `index` of `genre` will be: a seeded tempo, instruments and composer seed."""
    style = style_of(genre, LIBRARY_STYLE_VERSION)
    rng = random.Random(f"library:{seed}:{genre}:{index}")
    instruments = []
    for role, choices in style.instruments.items():
        if role == "drums" and not style.drums_by_default:
            continue
        # the genre's default twice as likely as each alternative, for a recognisable core
        weights = [2] + [1] * (len(choices) - 1)
        instruments.append(rng.choices(choices, weights)[0])
    return {"genre": genre, "index": index, "library_seed": seed,
            "seed": rng.randrange(2 ** 31), "tempo": float(rng.randint(*style.tempo)),
            "kit": rng.choice(style.kits),
            "instruments": instruments, "duration": float(duration),
            "sample_rate": SAMPLE_RATE, "builder_version": BUILDER_VERSION, "run_on": RUN_ON,
            # pinned, whatever font compose requests use, so that clip i of a seed is the same
            # everywhere and the models keep their training data
            "soundfont": DEFAULT_SOUNDFONT.name, "style_version": LIBRARY_STYLE_VERSION}


def clip_paths(out: Path, genre: str, index: int) -> tuple[Path, Path]:
    stem = f"{genre}.{index:05d}"
    return out / genre / f"{stem}.au", out / genre / f"{stem}.json"


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _au_bytes(y: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, y, SAMPLE_RATE, format="AU", subtype="PCM_16")
    return buf.getvalue()


def _fade_out(n: int, fade: int) -> np.ndarray:
    env = np.ones(n, dtype=np.float32)
    fade = min(fade, n // 4)
    if fade > 0:
        env[-fade:] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, fade, dtype=np.float32))
    return env


def _level(y: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    peak = float(np.max(np.abs(y)))
    if rms <= 0:
        return y
    gain = min(10 ** (TARGET_RMS_DB / 20) / rms, PEAK / peak)
    return (y * gain).astype(np.float32)


def _is_current(audio: Path, sidecar: Path, spec: dict) -> bool:
    """The clip on disk was written from this very spec (so it has these very bytes)."""
    try:
        on_disk = json.loads(sidecar.read_text())
        frames = sf.info(str(audio)).frames
    except (OSError, ValueError, RuntimeError):
        return False
    return ({k: on_disk.get(k, BEFORE_PINNING.get(k)) for k in spec} == spec
            and frames == int(round(spec["duration"] * SAMPLE_RATE)))


def build_clip(job: tuple[str, str, int, int, float]) -> str:
    """Render one clip unless it is already there; returns 'written' or 'kept'."""
    out, genre, index, seed, duration = job
    audio, sidecar = clip_paths(Path(out), genre, index)
    spec = clip_spec(genre, index, seed, duration)
    if _is_current(audio, sidecar, spec):
        return "kept"
    # like GTZAN's, a clip is an excerpt: the song runs on past it, so no clip spends its last
    # seconds on a held final chord that sounds alike in every genre
    y, _, facts = perform(genre, tempo=spec["tempo"], length=duration + RUN_ON,
                          instruments=tuple(spec["instruments"]), seed=spec["seed"],
                          kit=spec["kit"], soundfont=DEFAULT_SOUNDFONT, style_version=spec["style_version"])
    n = int(round(duration * SAMPLE_RATE))
    y = y[:n] * _fade_out(n, int(FADE * SAMPLE_RATE))
    audio.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(audio, _au_bytes(_level(y)))
    meta = {**spec, "key": facts["key"], "roles": facts["instruments"], "form": facts["form"],
            "excerpt": [0.0, float(duration)], "file": audio.name}
    _write_atomic(sidecar, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
    return "written"


def build_library(out: Path, *, per_genre: int, seed: int = 0, duration: float = 30.0,
                  workers: int = 2, progress: bool = True, genres: tuple[str, ...] = GENRES
                  ) -> dict:
    """Write per_genre clips of each genre under out/; returns counts and the time taken."""
    from tqdm import tqdm
    started = time.perf_counter()
    out = Path(out)
    # index-major order, so an interrupted build is balanced across genres
    jobs = [(str(out), g, i, seed, float(duration)) for i in range(per_genre) for g in genres]
    counts = {"written": 0, "kept": 0}
    bar = tqdm(total=len(jobs), unit="clip", desc="library", disable=not progress)
    if workers <= 1 or len(jobs) <= 1:
        results = map(build_clip, jobs)
        for status in results:
            counts[status] += 1
            bar.update()
    else:
        with get_context().Pool(min(workers, len(jobs))) as pool:
            for status in pool.imap_unordered(build_clip, jobs, chunksize=1):
                counts[status] += 1
                bar.update()
    bar.close()
    return {"out": str(out), "clips": len(jobs), **counts, "per_genre": per_genre,
            "seed": seed, "duration": float(duration),
            "seconds": round(time.perf_counter() - started, 2)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="genres", help="library folder (default: genres)")
    parser.add_argument("--per-genre", type=int, default=100, help="clips per genre (default 100)")
    parser.add_argument("--seed", type=int, default=0, help="library seed (default 0)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per clip (default 30)")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                        help="processes (default: 2, or 1 on a one-core machine)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    if args.per_genre < 0 or args.duration <= 0:
        raise SystemExit("--per-genre must be >= 0 and --duration > 0")
    summary = build_library(Path(args.out), per_genre=args.per_genre, seed=args.seed,
                            duration=args.duration, workers=args.workers,
                            progress=not args.quiet)
    print(f"{summary['clips']} clips in {summary['out']}: {summary['written']} written, "
          f"{summary['kept']} already there ({summary['seconds']} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m melodymaker library build",
                                     description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
