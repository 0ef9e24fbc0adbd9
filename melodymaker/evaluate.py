"""The benchmark: a fixed, seeded request set per mode and genre, measured the same way for all modes.

    python -m melodymaker evaluate [--modes dataset compose] [--per-genre 2] [--length 10]
                                   [--json results.json] [--markdown results.md]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from . import engines
from . import options as opt

TEMPI = (84, 100, 118, 136)  # cycled through the request set; inside every genre's plausible range


def request_set(mode: str, per_genre: int, length: float) -> list[dict]:
    """The fixed requests of one mode: per_genre seeded requests for each genre."""
    return [{"genre": g, "mode": mode, "length": length, "seed": 1000 * i + gi,
             "tempo": TEMPI[(gi + i) % len(TEMPI)]}
            for gi, g in enumerate(opt.GENRES) for i in range(per_genre)]


def tempo_error(requested: float, measured: float | None) -> float | None:
    """Relative error in %, octave-folded: a beat tracker's half or double tempo is no miss."""
    if not measured:
        return None
    return min(abs(measured * k - requested) / requested * 100 for k in (0.5, 1.0, 2.0))


def _run_mode(mode: str, requests: list[dict], genres_dir: str | None, show_progress: bool) -> dict:
    """Generate one mode's requests in this (fresh) process; returns rows and embeddings."""
    from tqdm import tqdm
    from .request import GenerationRequest
    from .service import Service
    from .settings import Settings
    service = Service(Settings.from_env(genres_dir=genres_dir), with_store=False, modes=[mode])
    clf = service.classifier()
    rows, vectors = [], []
    try:  # one untimed warm-up: imports, JIT caches and model loading are start-up, not generation
        service.generate(GenerationRequest.parse({**requests[0], "length": 2}))
    except Exception:
        pass
    for body in tqdm(requests, desc=mode, disable=not show_progress, file=sys.stderr):
        req = GenerationRequest.parse(body)
        start = time.perf_counter()
        try:
            track, meta = service.generate(req)
        except Exception as e:  # a failing mode is a row with its reason, not a crashed benchmark
            rows.append({**body, "error": f"{type(e).__name__}: {e}"})
            continue
        seconds = time.perf_counter() - start
        fit = meta.get("genre_fit") or {}
        if track.meta.get("embedding") is not None:
            vectors.append(np.asarray(track.meta["embedding"], dtype=np.float32))
        rows.append({**body, "seconds": seconds, "rtf": req.length / seconds,
                     "length_error_ms": abs(len(track.audio) / track.sr - req.length) * 1000,
                     "measured_tempo": meta.get("measured_tempo"),
                     "tempo_error_pct": tempo_error(req.tempo, meta.get("measured_tempo")),
                     "fit_probability": fit.get("probability"),
                     "top1": fit["top3"][0]["genre"] if fit else None})
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    library = None
    if clf is not None:
        _, matrix = service.library.embeddings(clf, service._classifier_version())
        library = matrix.tolist()
    return {"rows": rows, "embeddings": [v.tolist() for v in vectors], "peak_mb": peak_mb,
            "library_embeddings": library, "classifier": clf.info if clf is not None else None,
            "classifier_reason": service.classifier_reason}


def summarise(mode: str, result: dict) -> dict:
    rows = [r for r in result["rows"] if "error" not in r]
    errors = [r for r in result["rows"] if "error" in r]
    fits = [r for r in rows if r["fit_probability"] is not None]
    tempo = [r["tempo_error_pct"] for r in rows if r["tempo_error_pct"] is not None]
    summary = {
        "mode": mode, "requests": len(result["rows"]), "failed": len(errors),
        "first_error": errors[0]["error"] if errors else None,
        "genre_top1_accuracy": round(float(np.mean([r["top1"] == r["genre"] for r in fits])), 3) if fits else None,
        "genre_fit_mean_probability": round(float(np.mean([r["fit_probability"] for r in fits])), 3) if fits else None,
        "tempo_error_median_pct": round(float(np.median(tempo)), 2) if tempo else None,
        "length_error_max_ms": round(max(r["length_error_ms"] for r in rows), 3) if rows else None,
        "realtime_factor_median": round(float(np.median([r["rtf"] for r in rows])), 2) if rows else None,
        "peak_memory_mb": round(result["peak_mb"], 1),
        "frechet_distance": None, "frechet_floor": None,
    }
    from .classify import frechet_distance  # one implementation, shared with the classifier's tests
    gen, lib = np.asarray(result["embeddings"]), np.asarray(result["library_embeddings"] or [])
    if len(gen) >= 2 and len(lib) >= 4:
        summary["frechet_distance"] = round(frechet_distance(gen, lib), 4)
        half = len(lib) // 2
        order = np.random.default_rng(0).permutation(len(lib))
        summary["frechet_floor"] = round(frechet_distance(lib[order[:half]], lib[order[half:]]), 4)
    return summary


COLUMNS = (("mode", "mode"), ("genre_top1_accuracy", "genre fit top-1"),
           ("genre_fit_mean_probability", "mean p(genre)"), ("tempo_error_median_pct", "tempo err % (median)"),
           ("length_error_max_ms", "length err ms (max)"), ("realtime_factor_median", "× real time (median)"),
           ("peak_memory_mb", "peak MB"), ("frechet_distance", "Fréchet"), ("frechet_floor", "Fréchet floor (lib/lib)"),
           ("failed", "failed"))


def markdown(summaries: list[dict]) -> str:
    head = "| " + " | ".join(label for _, label in COLUMNS) + " |"
    rule = "|" + "---|" * len(COLUMNS)
    lines = [head, rule]
    for s in summaries:
        lines.append("| " + " | ".join("—" if s.get(k) is None else str(s[k]) for k, _ in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m melodymaker evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", nargs="+", default=None, help="default: every available mode")
    p.add_argument("--per-genre", type=int, default=2)
    p.add_argument("--length", type=float, default=10.0)
    p.add_argument("--genres", help="library folder (default: ./genres)")
    p.add_argument("--json", type=Path, help="write the full results here")
    p.add_argument("--markdown", type=Path, help="write the table here")
    p.add_argument("-q", "--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.per_genre < 1 or not opt.LENGTH_MIN <= args.length <= opt.LENGTH_MAX:
        p.error(f"--per-genre must be ≥ 1 and --length within {opt.LENGTH_MIN}-{opt.LENGTH_MAX} s")
    modes = args.modes or list(engines.MODES)
    unknown = [m for m in modes if m not in engines.MODES]
    if unknown:
        p.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(engines.MODES)}")
    ctx = mp.get_context("spawn")  # one fresh process per mode: honest peak memory, no shared caches
    summaries, details = [], {}
    for mode in modes:
        requests = request_set(mode, args.per_genre, args.length)
        with ctx.Pool(1) as pool:
            result = pool.apply(_run_mode, (mode, requests, args.genres, not args.quiet))
        summaries.append(summarise(mode, result))
        details[mode] = {"rows": result["rows"], "classifier": result["classifier"],
                         "classifier_reason": result["classifier_reason"]}
    table = markdown(summaries)
    print(table)
    command = "python -m melodymaker evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    report = {"command": command.strip(), "per_genre": args.per_genre, "length": args.length,
              "machine": {"platform": platform.platform(), "processor": platform.machine(),
                          "cpus": mp.cpu_count()},
              "summary": summaries, "details": details, "markdown": table}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.markdown:
        args.markdown.write_text(table + "\n")
    return 0
