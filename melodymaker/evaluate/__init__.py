"""The benchmark: a fixed, seeded request set per mode and genre, measured the same way for all modes.

    python -m melodymaker evaluate [--modes dataset ddim] [--per-genre 10] [--length 10]
        [--genres DIR] [--models DIR] [--no-ceilings] [--ceiling-per-genre 10]
        [--sheet sheet.png] [--json results.json] [--markdown results.md]

Per mode, in a fresh process (honest peak memory, no shared caches): per_genre requests for each
genre from seeds reserved for evaluation (requests.RESERVED_SEEDS), tempi cycled 70-160 BPM and
keys through all 24, made end to end by the service. Each track is scored by the two genre judges
(the CNN and the feature baseline; "genre fit" is the lower of their top-1 accuracies) and
measured: tempo error, key accuracy (the key estimated from the audio against the key asked for:
exact, or a fifth away, relative or parallel, counted apart; keys.relation), length error, leading and trailing silence below -60 dBFS, real-time factor, peak memory, and the
Fréchet distance of its CNN embeddings to held-out library clips. Each neural mode also gets its
resynthesis ceilings (ceilings.py): library clips neither the judges nor any measured model
trained on, through the mode's analysis and synthesis path only.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
from pathlib import Path

from .. import engines
from .. import options as opt
from . import ceilings, runner
from .requests import RESERVED_SEEDS, TEMPI, request_set
from .summary import ROW_KEYS, ceilings_markdown, markdown, summarise

__all__ = ["main", "request_set", "markdown", "summarise", "ROW_KEYS"]


def _in_fresh_process(fn, *args) -> dict:
    """fn(*args) in a new interpreter; {"crashed": why} when it raises or its process dies (a
    process killed for memory breaks the executor instead of hanging, as a Pool would)."""
    from concurrent.futures import ProcessPoolExecutor
    try:
        with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
            return pool.submit(fn, *args).result()
    except Exception as e:
        return {"crashed": f"{type(e).__name__}: {e}"}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m melodymaker evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--modes", nargs="+", default=None, help="default: every mode of the registry")
    p.add_argument("--per-genre", type=int, default=10, help="tracks per genre and mode (default 10)")
    p.add_argument("--length", type=float, default=10.0, help="seconds per track (default 10)")
    p.add_argument("--genres", help="library folder (default: ./genres or MELODYMAKER_GENRES_DIR)")
    p.add_argument("--models", help="models folder (default: ./models or MELODYMAKER_MODELS_DIR)")
    p.add_argument("--ceilings", action=argparse.BooleanOptionalAction, default=True,
                   help="measure the resynthesis ceilings of the neural modes (default: on)")
    p.add_argument("--ceiling-per-genre", type=int, default=10,
                   help="held-out library clips per genre for the ceilings and the Fréchet reference")
    p.add_argument("--ceiling-seconds", type=float, default=None,
                   help="seconds of each clip (its middle) for the ceilings (default: --length)")
    p.add_argument("--keys", choices=("cycle", "auto"), default="cycle",
                   help="cycle: every request names a key (all 24 in turn; the audio modes pitch-shift onto "
                        "it); auto: no key, the request set of the figures measured before keys existed")
    p.add_argument("--sheet", type=Path, help="draw the spectrogram sheet (PNG) here")
    p.add_argument("--json", type=Path, help="write every row and every track's figures here")
    p.add_argument("--markdown", type=Path, help="write the tables here")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    p = _parser()
    args = p.parse_args(argv)
    if not 1 <= args.per_genre <= 1000 or not opt.LENGTH_MIN <= args.length <= opt.LENGTH_MAX:
        p.error(f"--per-genre must be within 1-1000 and --length within {opt.LENGTH_MIN}-{opt.LENGTH_MAX} s")
    if args.ceiling_per_genre < 1:
        p.error("--ceiling-per-genre must be ≥ 1")
    modes = args.modes or list(engines.MODES)
    unknown = [m for m in modes if m not in engines.MODES]
    if unknown:
        p.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(engines.MODES)}")
    paths = {"genres_dir": args.genres, "models_dir": args.models}
    settings = runner._settings(paths)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    # the clips no measured model trained on: those of the neural modes that have a model folder
    neural = [m for m in modes if m in ceilings.MODES and (settings.models_dir / m).is_dir()]
    seconds = args.ceiling_seconds or args.length
    say("library reference: held-out clips, the judges' own ceiling")
    reference = _in_fresh_process(runner.run_reference, paths, neural, args.ceiling_per_genre,
                                  seconds, args.length if args.sheet else None)
    if "crashed" in reference:
        reference = {"keys": [], "reason": f"the library reference failed: {reference['crashed']}"}
    sheet_genres = tuple(opt.GENRES) if args.sheet else ()
    rows, details, ceiling_results = [], {}, []
    if reference.get("ceiling"):
        ceiling_results.append(reference["ceiling"])
    for mode in modes:
        say(f"mode {mode}")
        result = _in_fresh_process(runner.run_mode, mode, request_set(mode, args.per_genre, args.length,
                                                                           keys=args.keys == "cycle"),
                                   paths, not args.quiet, sheet_genres)
        ceiling = None
        if args.ceilings and mode in ceilings.MODES and "rows" in result:
            if reference["keys"]:
                say(f"mode {mode}: resynthesis ceilings on {len(reference['keys'])} clips")
                ceiling = _in_fresh_process(runner.run_ceiling, mode, reference["keys"], paths, seconds)
                if "crashed" in ceiling:
                    ceiling = {"mode": mode, "reason": f"failed: {ceiling['crashed']}"}
            else:
                ceiling = {"mode": mode, "reason": reference.get("reason") or "no held-out clips"}
            ceiling_results.append(ceiling)
        rows.append(summarise(mode, result, reference, ceiling))
        details[mode] = {"tracks": result.get("rows", []), "judges": result.get("judges"),
                         "warm_up_seconds": result.get("warm_up_seconds"),
                         "sheet_audio": result.get("sheet_audio", {})}
    table = markdown(rows)
    text = table + ("\n\nResynthesis ceilings (held-out library clips through each path only):\n\n"
                    + ceilings_markdown(ceiling_results) if ceiling_results else "")
    print(text)
    if args.sheet:
        from .sheet import sheet
        layout = sheet(_sheet_rows(reference, modes, details), args.sheet,
                       title=f"library beside each mode: first track of each genre, {args.length:g} s")
        say(f"wrote {layout['path']} ({layout['size'][0]}×{layout['size'][1]} px)")
    if args.json:
        command = "python -m melodymaker evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
        report = {
            "command": command.strip(), "per_genre": args.per_genre, "length": args.length,
            "seeds": {"reserved": [RESERVED_SEEDS.start, RESERVED_SEEDS.stop - 1],
                      "rule": "RESERVED_SEEDS.start + 1000 * genre index + i"},
            "tempi": list(TEMPI),
            "machine": {"platform": platform.platform(), "processor": platform.machine(),
                        "cpus": mp.cpu_count()},
            "summary": rows, "ceilings": [_plain(c) for c in ceiling_results],
            "reference": {k: reference.get(k) for k in ("keys", "facts", "reason", "judges", "judges_reason")},
            "details": {m: {k: v for k, v in d.items() if k != "sheet_audio"} for m, d in details.items()},
            "markdown": text}
        args.json.write_text(json.dumps(_plain(report), indent=1))
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


def _sheet_rows(reference: dict, modes: list[str], details: dict) -> list:
    rows = []
    for genre in opt.GENRES:
        y, sr = reference.get("sheet_audio", {}).get(genre, (None, opt.SAMPLE_RATE))
        cells = [("library", y, sr)]
        for mode in modes:
            y, sr = details[mode]["sheet_audio"].get(genre, (None, opt.SAMPLE_RATE))
            cells.append((mode, y, sr))
        rows.append((genre, cells))
    return rows


def _plain(x):
    """JSON-ready: numpy arrays and scalars as lists and numbers, tuples as lists."""
    import numpy as np
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    return x
