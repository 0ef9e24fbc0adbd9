"""What runs in each of evaluate's fresh processes: one mode's request set, the library reference,
one mode's resynthesis ceilings. Each returns plain data (lists, dicts, numpy arrays)."""
from __future__ import annotations

import resource
import sys
import time

import numpy as np

from .. import options as opt
from . import ceilings
from .requests import tempo_error
from .scoring import judge, load_judges
from .silence import silent_edges
from .transients import onset_sharpness


def _settings(paths: dict):
    from ..settings import Settings
    if "queue" in Settings.__dataclass_fields__:  # generate here, whatever queue a server uses
        paths = {**paths, "queue": ""}
    from ..midi import DEFAULT_SOUNDFONT
    # compose renders through the font the library was built with, whatever the machine has, so
    # that figures compare across machines
    return Settings.from_env(**{"soundfont": DEFAULT_SOUNDFONT, **paths})


def peak_memory_mb() -> float:
    """This process's peak resident memory (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_mode(mode: str, requests: list[dict], paths: dict, show_progress: bool,
             sheet_genres: tuple[str, ...] = ()) -> dict:
    """Generate one mode's requests through the service, end to end, and measure each track.

    Timing covers service.generate() alone (engine, post stage, the service's own genre fit), after
    an untimed 2-second warm-up request per genre (its seconds are returned: what a cold start
    costs); the judges score each track afterwards, untimed. The first track of each
    genre in `sheet_genres` comes back as audio for the sheet."""
    from tqdm import tqdm

    from ..request import GenerationRequest
    from ..service import Service
    settings = _settings(paths)
    service = Service(settings, with_store=False, modes=[mode])
    reason = service.engines[mode].availability()
    if reason is not None:
        return {"unavailable": reason, "peak_mb": peak_memory_mb()}
    judges, judges_reason = load_judges(settings.models_dir)
    warm_up = {}  # imports, JIT caches, loading, per-genre material: start-up, not generation
    for genre in dict.fromkeys(r["genre"] for r in requests):
        first = next(r for r in requests if r["genre"] == genre)
        start = time.perf_counter()
        try:
            service.generate(GenerationRequest.parse({**first, "length": 2}))
        except Exception:
            pass
        warm_up[genre] = round(time.perf_counter() - start, 2)
    rows, vectors, sheet_audio = [], [], {}
    for body in tqdm(requests, desc=mode, disable=not show_progress, file=sys.stderr):
        try:
            req = GenerationRequest.parse(body)
            start = time.perf_counter()
            track, meta = service.generate(req)
            seconds = time.perf_counter() - start
        except Exception as e:  # a failing request is a row with its reason, not a crashed benchmark
            rows.append({**body, "error": f"{type(e).__name__}: {e}"})
            continue
        y = np.asarray(track.audio, dtype=np.float32)
        lead_ms, tail_ms = silent_edges(y, track.sr)
        row = {**body, "seconds": round(seconds, 3), "rtf": req.length / seconds,
               "length_error_ms": abs(len(y) / track.sr - req.length) * 1000,
               "measured_tempo": meta.get("measured_tempo"),
               "tempo_error_pct": tempo_error(req.tempo, meta.get("measured_tempo")),
               "lead_ms": round(lead_ms, 1), "tail_ms": round(tail_ms, 1),
               "onset_sharpness": onset_sharpness(y, track.sr),
               **key_cells(meta.get("key"))}
        if judges is not None:
            scores, vector = judge(judges, y, track.sr, req.genre)
            row.update(scores)
            vectors.append(vector)
            # the same track without its fade-out: how much of a verdict the fade itself moves
            fade = int(round(((meta.get("post") or {}).get("fade_out") or 0.0) * track.sr))
            if 0 < fade < len(y):
                body, _ = judge(judges, y[:len(y) - fade], track.sr, req.genre)
                row.update({f"before_fade_{k}": v for k, v in body.items() if k.endswith("_top1")})
        rows.append(row)
        if req.genre in sheet_genres and req.genre not in sheet_audio:
            sheet_audio[req.genre] = (y, track.sr)
    return {"rows": rows, "embeddings": np.asarray(vectors, dtype=np.float32),
            "peak_mb": peak_memory_mb(), "warm_up_seconds": warm_up, "judges_reason": judges_reason,
            "judges": _judges_facts(judges), "sheet_audio": sheet_audio}


def run_reference(paths: dict, ceiling_modes: list[str], per_genre: int, seconds: float,
                  sheet_seconds: float | None) -> dict:
    """The library side: the clips held out from the judges and from every model measured (their
    keys), the judges' own ceiling on them untouched, their CNN embeddings (the Fréchet
    reference), and one library excerpt per genre for the sheet. Without judges: the clips held
    out from the models (for the MR-STFT distance), and the reason."""
    from ..library import Library
    settings = _settings(paths)
    library = Library(settings.genres_dir, settings.cache_dir).scan()
    judges, judges_reason = load_judges(settings.models_dir)
    sheet_audio = {}
    if sheet_seconds:
        sheet_audio = _library_excerpts(library, sheet_seconds)
    cards = {m: ceilings.read_card(settings.models_dir, m) for m in ceiling_modes}
    clips, facts = ceilings.held_out_clips(library, judges.info if judges is not None else None, cards,
                                           per_genre=per_genre)
    loaded, keys = _load(library, clips, seconds)
    if sheet_seconds:  # prefer a held-out clip in the sheet: what no model or judge trained on
        for genre, clip in {c.genre: c for c in reversed(clips)}.items():
            sheet_audio[genre] = (ceilings.excerpt(library.load(clip), sheet_seconds), opt.SAMPLE_RATE)
    out = {"keys": keys, "facts": facts, "reason": facts.get("reason"), "judges_reason": judges_reason,
           "judges": _judges_facts(judges), "sheet_audio": sheet_audio}
    if loaded and judges is not None:
        result = ceilings.ceiling(ceilings.UNTOUCHED, loaded, judges, keep_embeddings=True)
        out["embeddings"] = result.pop("embeddings")[ceilings.PRIMARY[ceilings.UNTOUCHED]]
        out["ceiling"] = result
    return out


def run_ceiling(mode: str, keys: list[str], paths: dict, seconds: float) -> dict:
    """One neural mode's resynthesis ceilings on the reference clips (by key)."""
    from ..library import Library
    settings = _settings(paths)
    library = Library(settings.genres_dir, settings.cache_dir).scan()
    judges, judges_reason = load_judges(settings.models_dir)
    by_key = {c.key: c for c in library.all_clips()}
    loaded, _ = _load(library, [by_key[k] for k in keys if k in by_key], seconds)
    try:
        result = ceilings.ceiling(mode, loaded, judges, models_dir=settings.models_dir)
    except Exception as e:  # a missing or broken checkpoint: a reason, never a crash
        return {"mode": mode, "reason": f"{type(e).__name__}: {e}"}
    result["judges_reason"] = judges_reason
    return result


def key_cells(report: dict | None) -> dict:
    """A track's key figures from its metadata (post.key_report): the key estimated from its
    audio, how it relates to the key asked for (keys.relation) and any pitch shift made."""
    report = report or {}
    return {"key_estimated": report.get("estimated"), "key_relation": report.get("relation"),
            "key_shift": (report.get("shift") or {}).get("semitones")}


def _load(library, clips, seconds: float) -> tuple[list[tuple[str, np.ndarray]], list[str]]:
    loaded, keys = [], []
    for clip in clips:
        try:
            y = library.load(clip)
        except Exception:  # an unreadable clip is left out; the count says so
            continue
        loaded.append((clip.genre, ceilings.excerpt(y, seconds)))
        keys.append(clip.key)
    return loaded, keys


def _library_excerpts(library, seconds: float) -> dict:
    out = {}
    for genre in opt.GENRES:
        for clip in sorted(library.genre_clips(genre), key=lambda c: c.name):
            try:
                out[genre] = (ceilings.excerpt(library.load(clip), seconds), opt.SAMPLE_RATE)
                break
            except Exception:
                continue
    return out


def _judges_facts(judges) -> dict | None:
    if judges is None:
        return None
    info = dict(judges.info)
    split = info.pop("split", None)
    info["split_clips"] = len(split) if isinstance(split, (list, tuple)) else (
        {k: len(v) if isinstance(v, (list, tuple)) else v for k, v in split.items()}
        if isinstance(split, dict) else None)
    return info
