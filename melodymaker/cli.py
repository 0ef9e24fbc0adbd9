"""The command line: `python -m melodymaker generate|extend|library ...` for batch use."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import engines, formats
from . import options as opt
from .errors import InvalidRequest, MelodyMakerError


def _output_format(args: argparse.Namespace) -> str:
    """--format, else the format the output file's extension names."""
    if args.format is not None:
        return args.format
    out = Path(args.output)
    try:
        return formats.by_extension(out.suffix).name
    except InvalidRequest:
        endings = ", ".join(f".{f.extension}" for f in formats.FORMATS.values())
        raise InvalidRequest(f"cannot tell the format from {out.name!r}; end it in {endings}, "
                             "or pass --format", field="output") from None


def _progress(args: argparse.Namespace):
    def progress(fraction: float, message: str = "") -> None:
        if not args.quiet:
            print(f"\r{fraction * 100:5.1f}% {message[:60]:<60}", end="", file=sys.stderr, flush=True)
    return progress


def _service(args: argparse.Namespace, *, with_store: bool):
    from .service import Service
    from .settings import Settings
    # generates here, in this process, whatever queue MELODYMAKER_QUEUE names for the server; the
    # store is the server's (MELODYMAKER_VAR_DIR or MELODYMAKER_STORE_DIR)
    return Service(Settings.from_env(genres_dir=args.genres, queue=""), with_store=with_store)


def _generate(args: argparse.Namespace) -> int:
    from .request import GenerationRequest

    out = Path(args.output)
    fmt = _output_format(args)
    fields = {"genre": args.genre, "instruments": args.instruments, "tempo": args.tempo,
              "length": args.length, "mode": args.mode, "seed": args.seed, "format": fmt, "key": args.key,
              "meter": args.meter, "loop": args.loop or None}
    if args.like is not None and not Path(args.like).is_file():
        raise InvalidRequest(f"no file {args.like}", field="like")
    service = _service(args, with_store=args.keep)
    try:
        if args.like is None:
            request = GenerationRequest.parse(fields)
        else:  # more like this clip: what is heard in it, the options given winning
            y = service.decode_upload(args.like)
            request, heard = service.reference_request(y, opt.SAMPLE_RATE, fields)
            print(_heard_line(args.like, heard))
        progress = _progress(args)
        if args.keep:  # into the server's store, as a job would: the file is the stored track's
            track_id = service.generate_and_store(request, progress)
            path, _, meta = service.track_file(track_id, request.format)
            data = path.read_bytes()
        else:
            track, meta = service.generate(request, progress)
            data = service.encode(track, request.format)
    finally:
        service.close()
    _write(out, data, args.quiet)
    print(f"wrote {out} ({request.format}, {meta['length']:.2f} s, {request.genre}, mode {request.mode}, "
          f"seed {request.seed}, tempo {meta.get('tempo')}, measured {meta.get('measured_tempo')} BPM, "
          f"key {meta['key']['requested']}, estimated {meta['key']['estimated']}"
          + (f", genre fit {meta['genre_fit']['probability']:.2f}" if meta.get("genre_fit") else "") + ")")
    if args.keep:
        print(f"kept as track {track_id}")
    return 0


def _heard_line(name: str, heard: dict) -> str:
    genre = heard["genre"]
    parts = [f"genre {genre['name']} ({genre['probability']:.2f})" if genre else
             f"genre not estimated ({heard['genre_reason']})",
             f"tempo {heard['tempo']} BPM" if heard["tempo"] else "no tempo found",
             f"key {heard['key']['key']}" if heard["key"] else "no key found",
             f"{heard['length']:.2f} s"]
    taken = ", ".join(heard["from_clip"]) or "nothing"
    return f"heard in {Path(name).name}: {', '.join(parts)}; taken from the clip: {taken}"


def _extend(args: argparse.Namespace) -> int:
    out = Path(args.output)
    fmt = _output_format(args)
    service = _service(args, with_store=True)
    progress = _progress(args)
    try:
        job = service.extend(args.track_id, args.seconds)
        try:
            while not job.finished:
                job = service.wait(job.id, timeout=0.5)
                progress(job.progress, job.message)
        except KeyboardInterrupt:
            service.cancel(job.id)
            raise
        if job.status != "done":
            err = job.error or {"message": f"the extension ended {job.status}", "field": None}
            raise MelodyMakerError(err["message"], field=err.get("field"))
        path, fmt, meta = service.track_file(job.id, fmt)
        data = path.read_bytes()
    finally:
        service.close()
    _write(out, data, args.quiet)
    print(f"wrote {out} ({fmt.name}, {meta['length']:.2f} s: track {args.track_id} continued, "
          f"mode {meta['mode']}, {meta['genre']})")
    print(f"kept as track {job.id}")
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
    g.add_argument("--like", metavar="CLIP", help="an audio file: make more like it (its genre, tempo, key "
                   "and length as heard; any option given here wins)")
    g.add_argument("--genre", help=", ".join(opt.GENRES) + " (required unless heard in --like's clip)")
    g.add_argument("--tempo", help=f"BPM ({opt.TEMPO_MIN}-{opt.TEMPO_MAX}) or a preset name")
    g.add_argument("--length", help=f"seconds (1-300; default {opt.LENGTH_DEFAULT}, or the --like clip's)")
    g.add_argument("--mode", help=", ".join(engines.MODES) + f" (default {engines.DEFAULT_MODE})")
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
    g.add_argument("--keep", action="store_true",
                   help="also keep the track in the server's store and print its id (for extend)")
    g.add_argument("-q", "--quiet", action="store_true")
    g.set_defaults(run=_generate)

    e = sub.add_parser("extend", help="continue a track of the store (generate --keep, the server's) to a file")
    e.add_argument("track_id", metavar="TRACK_ID")
    e.add_argument("--seconds", required=True, help=f"how many seconds to add (the whole track at most "
                                                    f"{opt.LENGTH_MAX} s)")
    e.add_argument("--format", help=f"{formats.allowed()}; default: from the output extension")
    e.add_argument("--genres", help="library folder (default: ./genres)")
    e.add_argument("-o", "--output", required=True, help="file to write (" + ", ".join(
        f".{f.extension}" for f in formats.FORMATS.values()) + ")")
    e.add_argument("-q", "--quiet", action="store_true")
    e.set_defaults(run=_extend)

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


def _write(out: Path, data: bytes, quiet: bool) -> None:
    """The output file (its folder made), after the progress line's end."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    if not quiet:
        print(file=sys.stderr)
