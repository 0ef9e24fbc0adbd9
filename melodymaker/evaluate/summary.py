"""From evaluate's per-process results to one row per mode, and the rows as markdown tables."""
from __future__ import annotations

import numpy as np

from .scoring import fit_summary
from .silence import TAIL_LIMIT_MS

ROW_KEYS = (
    "mode", "available", "reason", "requests", "tracks", "failed", "first_error",
    "fit_cnn", "fit_features", "genre_fit", "mean_p_cnn", "mean_p_features", "mean_p_combined",
    "genre_fit_before_fade", "judges_reason", "tempo_error_median_pct",
    "key_tracks", "key_exact", "key_fifth", "key_relative", "key_parallel", "key_score",
    "length_error_max_ms", "tails_over_limit",
    "tail_max_ms", "lead_max_ms", "realtime_factor_median", "peak_memory_mb", "onset_sharpness_median",
    "frechet_distance", "frechet_floor", "frechet_reason", "spread_ratio",
    "ceiling_path", "ceiling_clips", "ceiling_fit_cnn", "ceiling_fit_features", "ceiling_genre_fit",
    "ceiling_mrstft", "ceiling_reason")
"""Every key of a summary row (the JSON's "summary"), present in every row, None when not measured."""


def before_fade_fit(rows: list[dict]) -> float | None:
    """The genre fit (lower judge's top-1) of the same tracks with their fade-out cut off: the feature
    judge's statistics (level and timbre spreads) count a fade to silence, which no library clip
    has; None where no track was judged so."""
    scored = [r for r in rows if "before_fade_cnn_top1" in r]
    if not scored:
        return None
    return round(min(float(np.mean([r[f"before_fade_{j}_top1"] == r["genre"] for r in scored]))
                     for j in ("cnn", "features")), 3)


def _round(x, digits):
    return None if x is None else round(float(x), digits)


def summarise(mode: str, result: dict, reference: dict, ceiling: dict | None) -> dict:
    """One mode's row: ROW_KEYS, from run_mode's result, the library reference (Fréchet) and the
    mode's ceilings (None when not measured)."""
    row = dict.fromkeys(ROW_KEYS)
    row.update(mode=mode, available="unavailable" not in result)
    if "rows" not in result:  # the mode is unavailable here, or its process failed
        row["reason"] = (f"unavailable: {result['unavailable']}" if "unavailable" in result
                         else f"the run failed: {result.get('crashed')}")
        row.update(_ceiling_cells(mode, ceiling))
        return row
    done = [r for r in result["rows"] if "error" not in r]
    errors = [r for r in result["rows"] if "error" in r]
    tempo = [r["tempo_error_pct"] for r in done if r["tempo_error_pct"] is not None]
    fit = fit_summary(done)
    row.update(
        requests=len(result["rows"]), tracks=len(done), failed=len(errors),
        first_error=errors[0]["error"] if errors else None,
        **{k: fit[k] for k in ("fit_cnn", "fit_features", "genre_fit", "mean_p_cnn",
                               "mean_p_features", "mean_p_combined")},
        judges_reason=result.get("judges_reason"),
        tempo_error_median_pct=_round(np.median(tempo), 2) if tempo else None,
        **key_accuracy([r.get("key_relation") for r in done]),
        length_error_max_ms=_round(max(r["length_error_ms"] for r in done), 3) if done else None,
        tails_over_limit=sum(r["tail_ms"] > TAIL_LIMIT_MS for r in done) if done else None,
        tail_max_ms=_round(max(r["tail_ms"] for r in done), 0) if done else None,
        lead_max_ms=_round(max(r["lead_ms"] for r in done), 0) if done else None,
        realtime_factor_median=_round(np.median([r["rtf"] for r in done]), 2) if done else None,
        onset_sharpness_median=_round(np.median([r["onset_sharpness"] for r in done
                                                 if r.get("onset_sharpness") is not None]), 2)
        if any(r.get("onset_sharpness") is not None for r in done) else None,
        peak_memory_mb=_round(result["peak_mb"], 1))
    if errors and not done:
        row["reason"] = f"every request failed: {errors[0]['error']}"
    row.update(_frechet(result.get("embeddings"), reference))
    row["genre_fit_before_fade"] = before_fade_fit(done)
    row["spread_ratio"] = spread_ratio([r["genre"] for r in done if "cnn_top1" in r], result.get("embeddings"),
                                       [k.split("/")[0] for k in reference.get("keys") or []],
                                       reference.get("embeddings"))
    row.update(_ceiling_cells(mode, ceiling))
    return row


def key_accuracy(relations: list[str | None]) -> dict:
    """Of the tracks asked for a key and whose key could be estimated: the share estimated in that
    key exactly, and the shares in its usual confusions, counted apart (keys.relation: a fifth
    away, the relative, the parallel key), with MIREX's weighted score over all of them."""
    from ..keys import RELATION_SCORE
    told = [r for r in relations if r is not None]
    if not told:
        return {}
    share = lambda rel: round(sum(r == rel for r in told) / len(told), 3)
    return {"key_tracks": len(told), "key_exact": share("exact"), "key_fifth": share("fifth"),
            "key_relative": share("relative"), "key_parallel": share("parallel"),
            "key_score": round(float(np.mean([RELATION_SCORE[r] for r in told])), 3)}


def spread_ratio(genres: list[str], embeddings, ref_genres: list[str], ref_embeddings) -> float | None:
    """Mode collapse, checked rather than assumed: per genre, the spread of the tracks' CNN
    embeddings (the root of the mean variance per dimension) over the spread of the reference
    library clips of that genre; the median over the genres with at least 3 of each. About 1: as
    varied as the library; far below 1: the mode makes one track per genre. None when it cannot be
    measured (no judges or no reference clips)."""
    gen, ref = np.asarray(embeddings if embeddings is not None else []), \
        np.asarray(ref_embeddings if ref_embeddings is not None else [])
    if len(gen) != len(genres) or len(ref) != len(ref_genres) or not len(gen) or not len(ref):
        return None
    spread = lambda x: float(np.sqrt(x.var(axis=0).mean()))
    ratios = []
    for g in sorted(set(genres) & set(ref_genres)):
        a, b = gen[[x == g for x in genres]], ref[[x == g for x in ref_genres]]
        if len(a) >= 3 and len(b) >= 3 and spread(b) > 0:
            ratios.append(spread(a) / spread(b))
    return round(float(np.median(ratios)), 3) if ratios else None


def _frechet(generated, reference: dict) -> dict:
    from ..classify import frechet_distance  # one implementation, shared with the classifier's tests
    gen = np.asarray(generated if generated is not None else [])
    lib = np.asarray(reference.get("embeddings") if reference.get("embeddings") is not None else [])
    if len(gen) < 2 or len(lib) < 4:
        if reference.get("judges_reason"):
            return {"frechet_reason": "needs the judges (CNN embeddings)"}
        return {"frechet_reason": reference.get("reason")
                or f"too few embeddings ({len(gen)} tracks, {len(lib)} library clips)"}
    order = np.random.default_rng(0).permutation(len(lib))
    half = len(lib) // 2
    return {"frechet_distance": round(frechet_distance(gen, lib), 4),
            "frechet_floor": round(frechet_distance(lib[order[:half]], lib[order[half:]]), 4)}


def _ceiling_cells(mode: str, ceiling: dict | None) -> dict:
    if ceiling is None:
        return {}
    if ceiling.get("reason") or not ceiling.get("paths"):
        return {"ceiling_reason": ceiling.get("reason") or "no clips"}
    path = ceiling["paths"][ceiling["primary"]]
    return {"ceiling_path": ceiling["primary"], "ceiling_clips": ceiling["clips"],
            "ceiling_fit_cnn": path["fit_cnn"], "ceiling_fit_features": path["fit_features"],
            "ceiling_genre_fit": path["genre_fit"], "ceiling_mrstft": path["mrstft"]}


COLUMNS = (
    ("mode", "mode"), ("fit_cnn", "fit: CNN"), ("fit_features", "fit: features"),
    ("genre_fit", "genre fit (lower)"), ("genre_fit_before_fade", "before fade-out (lower)"), ("tracks", "tracks"),
    ("tempo_error_median_pct", "tempo err % (median)"),
    ("key", "key: exact (5th/rel/par)"), ("length_error_max_ms", "length err ms (max)"),
    ("tails", f"tail > {TAIL_LIMIT_MS:g} ms (max ms)"), ("realtime_factor_median", "× real time (median)"),
    ("peak_memory_mb", "peak MB"), ("onset_sharpness_median", "onset sharpness"),
    ("frechet", "Fréchet (lib/lib floor)"), ("spread_ratio", "spread (vs lib)"),
    ("ceiling_fit_cnn", "ceiling: CNN"), ("ceiling_fit_features", "ceiling: features"),
    ("ceiling_mrstft", "ceiling: MR-STFT"))


def _cell(row: dict, key: str) -> str:
    if key == "tails":
        if row["tails_over_limit"] is None:
            return "—"
        return f"{row['tails_over_limit']}/{row['tracks']} ({row['tail_max_ms']:g})"
    if key == "key":
        if row["key_exact"] is None:
            return "—"
        return f"{row['key_exact']:g} ({row['key_fifth']:g}/{row['key_relative']:g}/{row['key_parallel']:g})"
    if key == "tracks" and row["requests"] is not None:
        return f"{row['tracks']}/{row['requests']}"
    if key == "frechet":
        if row["frechet_distance"] is None:
            return "—"
        return f"{row['frechet_distance']:g} ({row['frechet_floor']:g})"
    if key == "mode" and row["tracks"] is None:
        return f"{row['mode']} ({'unavailable' if not row['available'] else 'failed'})"
    value = row.get(key)
    return "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def markdown(rows: list[dict]) -> str:
    """The main table, one row per mode, then a note for every cell that could not be measured."""
    lines = ["| " + " | ".join(label for _, label in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_cell(r, k) for k, _ in COLUMNS) + " |" for r in rows]
    notes: dict[str, list[str]] = {}   # note -> the modes it is about, so a shared cause shows once
    for r in rows:
        for key, what in (("reason", ""), ("first_error", "first failure: "),
                          ("judges_reason", "judges: "), ("frechet_reason", "Fréchet: "),
                          ("ceiling_reason", "ceiling: ")):
            if not r.get(key) or (key == "first_error" and r.get("reason")) or (
                    key == "frechet_reason" and r.get("judges_reason")):
                continue
            notes.setdefault(f"{what}{r[key]}", []).append(r["mode"])
    return "\n".join(lines + [""] + [f"- {', '.join(m)}: {n}" for n, m in notes.items()] if notes else lines)


def ceilings_markdown(results: list[dict]) -> str:
    """Every resynthesis path measured (Griffin-Lim beside the vocoder, the untouched library)."""
    lines = ["| mode | path | clips | fit: CNN | fit: features | fit (lower) | MR-STFT | × real time |",
             "|---|---|---|---|---|---|---|---|"]
    for res in results:
        if res.get("reason") or not res.get("paths"):
            lines.append(f"| {res['mode']} | — | — | — | — | — | — | {res.get('reason') or 'no clips'} |")
            continue
        for name, p in res["paths"].items():
            cells = [p.get(k) for k in ("fit_cnn", "fit_features", "genre_fit", "mrstft", "realtime_factor")]
            lines.append(f"| {res['mode']} | {name} | {res['clips']} | "
                         + " | ".join("—" if c is None else f"{c:g}" for c in cells) + " |")
    return "\n".join(lines)
