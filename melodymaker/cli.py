"""The command line: `python -m melodymaker generate|library ...` for batch use."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import engines, formats
from . import options as opt
from .errors import InvalidRequest, MelodyMakerError


def _generate(args: argparse.Namespace) -> int:
    from .request import GenerationRequest
    from .service import Service
    from .settings import Settings

    out = Path(args.output)
    fmt = args.format
    if fmt is None:
        try:
            fmt = formats.by_extension(out.suffix).name
        except InvalidRequest:
            endings = ", ".join(f".{f.extension}" for f in formats.FORMATS.values())
            raise InvalidRequest(f"cannot tell the format from {out.name!r}; end it in {endings}, "
                                 "or pass --format", field="output") from None
    request = GenerationRequest.parse({
        "genre": args.genre, "instruments": args.instruments, "tempo": args.tempo,
        "length": args.length, "mode": args.mode, "seed": args.seed, "format": fmt, "key": args.key,
        "meter": args.meter, "loop": args.loop})
    # generates here, in this process, whatever queue MELODYMAKER_QUEUE names for the server
    service = Service(Settings.from_env(genres_dir=args.genres, queue=""), with_store=False)

    def progress(fraction: float, message: str = "") -> None:
        if not args.quiet:
            print(f"\r{fraction * 100:5.1f}% {message[:60]:<60}", end="", file=sys.stderr, flush=True)

    track, meta = service.generate(request, progress)
    data = service.encode(track, request.format)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    if not args.quiet:
        print(file=sys.stderr)
    print(f"wrote {out} ({request.format}, {meta['length']:.2f} s, {request.genre}, mode {request.mode}, "
          f"seed {request.seed}, tempo {meta.get('tempo')}, measured {meta.get('measured_tempo')} BPM, "
          f"key {meta['key']['requested']}, estimated {meta['key']['estimated']}"
          + (f", genre fit {meta['genre_fit']['probability']:.2f}" if meta.get("genre_fit") else "") + ")")
    return 0


def _library_scan(args: argparse.Namespace) -> int:
    from .library import Library
    from .settings import Settings
    settings = Settings.from_env(genres_dir=args.genres)
    library = Library(settings.genres_dir, settings.cache_dir).scan()
    for genre, n in library.counts().items():
        print(f"{genre:10s} {n}")
    for s in library.skipped:
        print(f"skipped {s.path}: {s.reason}")
    return 0


def _library_build(args: argparse.Namespace) -> int:
    from .compose import builder
    return builder.run(args) or 0


def _unavailable(what: str, reason: str) -> int:
    print(f"error: {what} is unavailable here: {reason}", file=sys.stderr)
    return 2


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m melodymaker", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    g = sub.add_parser("generate", help="generate one track to a file")
    g.add_argument("--genre", required=True, help=", ".join(opt.GENRES))
    g.add_argument("--tempo", help=f"BPM ({opt.TEMPO_MIN}-{opt.TEMPO_MAX}) or a preset name")
    g.add_argument("--length", default=str(opt.LENGTH_DEFAULT), help="seconds (1-300)")
    g.add_argument("--mode", default=engines.DEFAULT_MODE, help=", ".join(engines.MODES))
    g.add_argument("--instruments", help="comma-separated: " + ", ".join(opt.INSTRUMENTS))
    g.add_argument("--key", help=f"'A minor', 'F# major', ... or {opt.KEY_AUTO} (the default)")
    g.add_argument("--meter", help=f"{', '.join(opt.METERS)} (default {opt.METER_DEFAULT}; the tempo "
                                   "counts dotted quarters in 6/8)")
    g.add_argument("--loop", action="store_true",
                   help="a seamless loop of whole bars (the length rounded to the nearest bar count)")
    g.add_argument("--seed", help="whole number; random when left out")
    g.add_argument("--format", help=f"{formats.allowed()}; default: from the output extension")
    g.add_argument("--genres", help="library folder (default: ./genres)")
    g.add_argument("-o", "--output", required=True, help="file to write (" + ", ".join(
        f".{f.extension}" for f in formats.FORMATS.values()) + ")")
    g.add_argument("-q", "--quiet", action="store_true")
    g.set_defaults(run=_generate)

    lib = sub.add_parser("library", help="the audio library in genres/")
    lsub = lib.add_subparsers(dest="library_command", required=True)
    scan = lsub.add_parser("scan", help="index the library and list skipped files")
    scan.add_argument("--genres", help="library folder (default: ./genres)")
    scan.set_defaults(run=_library_scan)
    build = lsub.add_parser("build", help="render the built-in library with the composer")
    try:
        from .compose import builder
    except ImportError as e:  # say so when it is run, instead of a traceback later
        build.set_defaults(run=lambda args, reason=str(e): _unavailable("library build", reason))
    else:
        builder.add_arguments(build)
        build.set_defaults(run=_library_build)

    sub.add_parser("evaluate", help="the benchmark: every mode on a fixed request set "
                   "(python -m melodymaker evaluate --help)")

    from . import worker  # light: rq is imported when the worker runs
    w = sub.add_parser("worker", help="run generation jobs from Redis (MELODYMAKER_QUEUE) as an RQ worker")
    worker.add_arguments(w)
    w.set_defaults(run=worker.run)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["evaluate"]:  # its own parser, so `evaluate --help` shows its options
        from .evaluate import main as evaluate
        return evaluate(argv[1:])
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except MelodyMakerError as e:
        where = f" ({e.field})" if e.field else ""
        print(f"error{where}: {e.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
