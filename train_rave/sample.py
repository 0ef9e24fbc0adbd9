"""Make audio with RAVE exports: genre + length + seed -> a latent trajectory of the genre's own
material (see latents.py) -> decode -> resample to the app's rate.

    python -m train_rave.sample --checkpoint models/rave --genre jazz --length 20 \
        --seed 7 --out jazz.wav [--variation 0.15]

--checkpoint takes a `.ts` export (ours or official) or our `rave.pt` (scripted by this
machine's torch); its latent bank is `<stem>.latents.pt` beside it (`python -m
train_rave.latents`), and is encoded from --genres on first use when missing or made by another
model. A folder (models/rave) serves our `rave.pt` (its export derived on first start and cached)
or a multi-genre export `rave.ts`, and/or per-genre exports `<genre>.ts`: a genre with its own
export uses it, every other genre the multi-genre one. A per-genre export with no library clips
of its genre to draw latents from generates from its prior (N(0, 1) latents).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from melodymaker.trainkit import atomic_save

from .latents import (
    DECODE_CONTEXT,
    RaveExport,
    bank_fits,
    build_bank,
    continue_trajectory,
    file_digest,
    genre_trajectory,
    load_bank,
    save_bank,
)
from .model import FORMAT, export, metadata_json, model_from_checkpoint, read

MULTI = "rave"          # the stem of the multi-genre export
VARIATION = 0.15        # latent noise, in units of each dimension's spread in the genre
PRIOR = "prior: N(0, 1) latents of the genre's own export (no library clips of the genre)"
EDGE = 2                # latent frames at the end of an encoding that the silence past it has changed


class GenreRave:
    """Loaded RAVE exports (one multi-genre, any per-genre) and their latent banks.

    Holds no generation settings: genre, seed, length and variation arrive with each call."""

    def __init__(self, models: dict[str, RaveExport], *, banks: dict[str, dict] | None = None,
                 genres_dir: Path | None = None, cache_dir: Path | None = None):
        if not models:
            raise FileNotFoundError("no RAVE export to load")
        self.models, self.banks = models, dict(banks or {})
        self.genres_dir, self.cache_dir = genres_dir, cache_dir
        self._prior: set[str] = set()   # per-genre exports found without library clips: their prior
        self._lock = threading.Lock()

    # -- the parts of one generation -------------------------------------------------------------
    def model_for(self, genre: str) -> tuple[str, RaveExport]:
        if genre in self.models:
            return genre, self.models[genre]
        if MULTI in self.models:
            return MULTI, self.models[MULTI]
        raise LookupError(f"no RAVE export for {genre}: add models/rave/{genre}.ts or a multi-genre rave.ts")

    def genre_latents(self, key: str, model: RaveExport, genre: str, progress=None) -> dict | None:
        """{"names", "latents", ...} of the genre's library clips under this export: from its bank,
        else encoded now from the library (once; kept in memory and in the cache folder). None for
        a per-genre export when the library has no clips of its genre: it generates from its prior."""
        with self._lock:
            bank = self.banks.get(key)
            if bank is not None and genre in bank["genres"]:
                return bank["genres"][genre]
            cached = self._cache_path(key, model)
            if bank is None and cached is not None and cached.is_file():
                bank = load_bank(cached)
                if not bank_fits(bank, model):
                    bank = None
                else:
                    self.banks[key] = bank
                    if genre in bank["genres"]:
                        return bank["genres"][genre]
            if key in self._prior:
                return None
            built = {"genres": {}}
            if self._library_has(genre):
                if progress is not None:
                    progress(0.03, f"encoding the library's {genre} clips with this model (first use; cached)")
                built = build_bank(model, self.genres_dir, genres=[genre])
            if genre not in built["genres"]:
                if key == genre:  # a per-genre export: its prior is the genre's
                    self._prior.add(key)
                    return None
                if self.genres_dir is None:
                    raise LookupError(f"no latents of {genre} for {model.path.name if model.path else key} "
                                      "and no library to encode them from")
                raise LookupError(f"the library has no readable {genre} clips to draw RAVE latents from")
            bank = self.banks.setdefault(key, {**built, "genres": {}})
            bank["genres"][genre] = built["genres"][genre]
            if cached is not None:
                save_bank(bank, cached)
            return bank["genres"][genre]

    def genre_source(self, genre: str) -> str:
        """Where the genre's latents come from, in words (the capability table shows it)."""
        try:
            key, model = self.model_for(genre)
        except LookupError as e:
            return f"unavailable: {e.args[0]}"
        bank = self.banks.get(key)
        if bank is not None and genre in bank["genres"]:
            return f"library latents of {len(bank['genres'][genre]['names'])} clips ({model.describe()['file']})"
        if key not in self._prior and self._library_has(genre):
            return f"library latents, encoded on first use ({model.describe()['file']})"
        return PRIOR if key == genre else "unavailable: no library clips of the genre"

    def _library_has(self, genre: str) -> bool:
        """The library has a folder of the genre (any case) with files in it."""
        root = Path(self.genres_dir) if self.genres_dir is not None else None
        return root is not None and root.is_dir() and any(
            d.is_dir() and d.name.lower() == genre and any(d.iterdir()) for d in root.iterdir())

    def _cache_path(self, key: str, model: RaveExport) -> Path | None:
        if self.cache_dir is None:
            return None
        digest = model.digest or (file_digest(model.path) if model.path else key)
        return Path(self.cache_dir) / "rave" / f"{key}-{digest}.latents.pt"

    def generate(self, genre: str, n_samples: int, *, sr: int, seed: int, variation: float = VARIATION,
                 tempo: float | None = None,
                 progress: Callable[[float, str], None] | None = None) -> tuple[np.ndarray, dict]:
        """float32 mono audio of exactly n_samples at `sr`, and what it was made from.

        tempo (BPM): the latent segments are laid on its beat grid and stretched in latent space
        when the bank knows its clips' tempi; otherwise the decoded audio is conformed by the
        phase vocoder, as the post stage would."""
        from melodymaker.audio import fit_length, resample
        if n_samples < 1:
            raise ValueError("n_samples must be positive")
        if not 0 <= variation <= 2:
            raise ValueError(f"variation must be within 0-2, got {variation}")
        progress = progress or (lambda f, m="": None)
        key, model = self.model_for(genre)
        progress(0.02, "gathering the genre's latents")
        material = self.genre_latents(key, model, genre, progress)
        n_model = math.ceil(n_samples * model.sr / sr) + 2 * model.ratio
        frames = math.ceil(n_model / model.ratio)
        if material is None:  # a per-genre export without library clips: its prior
            z = np.random.default_rng(seed).standard_normal((model.latent_size, frames)).astype(np.float32)
            used, material = [], {"names": []}
        else:
            z, used = genre_trajectory(material["latents"], frames, seed, frame_rate=model.frame_rate,
                                       variation=variation, tempo=tempo, tempos=material.get("tempos"),
                                       first_beats=material.get("first_beats"))
        progress(0.1, "decoding")
        y = model.decode(z, seed=seed, progress=lambda f: progress(0.1 + 0.8 * f, "decoding"))
        y = resample(y, model.sr, sr)
        info = {"model": model.describe(), "variation": variation,
                "genre_from": "library latents" if material["names"] else PRIOR}
        if tempo:
            gridded = any("rate" in u for u in used)
            info["tempo"] = tempo
            info["tempo_by"] = ("latent time-stretch on the beat grid" if gridded else
                                "phase vocoder (no clip tempi: " + ("prior latents)" if not used else "an older bank)"))
            if not gridded:
                from melodymaker.audio import conform_tempo
                y, info["tempo_conform"] = conform_tempo(y, sr, tempo)
        y = fit_length(y, n_samples).astype(np.float32)
        progress(1.0, "done")
        info["segments"] = [{"clip": material["names"][u["clip"]], "start_s": round(u["start"] / model.frame_rate, 2),
                             "seconds": round(u["frames"] / model.frame_rate, 2),
                             **({"rate": u["rate"]} if "rate" in u else {})} for u in used]
        return y, info

    def continue_audio(self, tail: np.ndarray, genre: str, n_samples: int, *, sr: int, seed: int, at: float,
                       variation: float = VARIATION, tempo: float | None = None,
                       progress: Callable[[float, str], None] | None = None) -> tuple[np.ndarray, dict]:
        """float32 mono audio of exactly n_samples at `sr` that continues `tail` (raw audio at `sr`
        that this mode made, ending `at` seconds into its track): its first sample is the one after
        the tail's last. Also what it was made from.

        The tail is encoded, and its latents (all but the last EDGE, which the silence past its end
        has changed) are continued by continue_trajectory: the genre passage nearest them plays
        on, on the track's bar grid (with a tempo, a bar every 240 / tempo s from its start). The
        decoder runs over the tail's latents and the new ones in one pass, so the new audio flows
        on from the decoder's own rendering of the tail, which is cut off. That rendering is not
        the tail's exact waveform: the caller hands over from the tail.
        A tail too short to encode: `generate`'s draw, the tail unused. (A bank without its clips'
        tempi lays no grid: the new audio keeps the clips' own tempo.)"""
        from melodymaker.audio import fit_length, resample
        progress = progress or (lambda f, m="": None)
        key, model = self.model_for(genre)
        y_tail = resample(np.asarray(tail, dtype=np.float32), sr, model.sr)
        whole = len(y_tail) // model.ratio
        if whole <= EDGE:
            return self.generate(genre, n_samples, sr=sr, seed=seed, variation=variation, tempo=tempo,
                                 progress=progress)
        progress(0.02, "gathering the genre's latents")
        material = self.genre_latents(key, model, genre, progress)
        progress(0.05, "encoding the tail")
        context = model.encode(y_tail[len(y_tail) - whole * model.ratio:])[:, : whole - EDGE]
        lead = EDGE * model.ratio                        # samples from the last context frame to the joint
        frames = math.ceil((math.ceil(n_samples * model.sr / sr) + lead) / model.ratio) + 2
        if material is None:                             # a per-genre export without library clips
            z = np.random.default_rng(seed).standard_normal((model.latent_size, frames)).astype(np.float32)
            fade = np.cos(np.linspace(0.0, np.pi / 2, min(frames, DECODE_CONTEXT), dtype=np.float32)) ** 2
            z[:, : len(fade)] = context[:, -1:] * fade + z[:, : len(fade)] * (1 - fade)
            used, material = [], {"names": []}
        else:
            bar = 240.0 / tempo * model.frame_rate if tempo else 0.0
            phase = (at * model.sr - lead) / model.ratio % bar if bar else 0.0
            z, used = continue_trajectory(material["latents"], context, frames, seed,
                                          frame_rate=model.frame_rate, variation=variation, tempo=tempo,
                                          tempos=material.get("tempos"), first_beats=material.get("first_beats"),
                                          phase=phase)
        progress(0.1, "decoding")
        known = min(DECODE_CONTEXT, context.shape[1])     # the decoder's run-up: the tail rendered again
        y = model.decode(np.concatenate([context[:, -known:], z], axis=1), seed=seed,
                         progress=lambda f: progress(0.1 + 0.8 * f, "decoding"))[known * model.ratio + lead:]
        y = fit_length(resample(y, model.sr, sr), n_samples)
        progress(1.0, "done")
        segments = [{"clip": material["names"][u["clip"]], "start_s": round(u["start"] / model.frame_rate, 2),
                     "seconds": round(u["frames"] / model.frame_rate, 2),
                     **{k: u[k] for k in ("rate", "matched") if k in u}} for u in used]
        return y.astype(np.float32), {"model": model.describe(), "variation": variation,
                                      "context_frames": int(context.shape[1]), "segments": segments,
                                      "genre_from": "library latents" if material["names"] else PRIOR}


# -- loading ----------------------------------------------------------------------------------------
def load(path: str | Path, *, genres_dir: Path | None = None, cache_dir: Path | None = None) -> GenreRave:
    """The sampler of a RAVE model folder (models/rave): our `rave.pt` (exported on first start by
    this machine's torch, cached in `cache_dir`/rave) or a multi-genre `rave.ts`, and `<genre>.ts`
    exports, with their latent banks; a single other `.ts` is taken as the multi-genre export, and
    file names match genres case-insensitively. Given a file instead: one `.ts` export (ours or
    official), or our `rave.pt`. Latents missing from a bank are encoded from `genres_dir` on first
    use and kept in `cache_dir`."""
    path = Path(path)
    models = _exports_in(path, cache_dir) if path.is_dir() else {MULTI: export_of(path, cache_dir)}
    banks = {}
    for key, model in models.items():
        bank_path = model.path.with_name(model.path.stem + ".latents.pt")
        if bank_path.is_file():
            bank = load_bank(bank_path)
            if bank_fits(bank, model):
                banks[key] = bank
    return GenreRave(models, banks=banks, genres_dir=genres_dir, cache_dir=cache_dir)


def _exports_in(folder: Path, cache_dir: Path | None = None) -> dict[str, RaveExport]:
    from melodymaker.options import GENRES
    files = sorted(p for p in folder.glob("*") if p.suffix.lower() == ".ts" and p.is_file())
    ours = folder / f"{MULTI}.pt"
    if not files and not ours.is_file():
        raise FileNotFoundError(f"no RAVE checkpoint (rave.pt) or export (*.ts) in {folder}")
    chosen = {p.stem.lower(): p for p in files if p.stem.lower() in GENRES or p.stem.lower() == MULTI}
    others = [p for p in files if p.stem.lower() not in chosen]
    if MULTI not in chosen and len(others) == 1 and not ours.is_file():
        chosen[MULTI] = others[0]
    if not chosen and not ours.is_file():
        found = ", ".join(p.name for p in files)
        raise FileNotFoundError(f"no rave.pt, rave.ts or <genre>.ts in {folder} (found {found})")
    models = {key: RaveExport.from_file(path) for key, path in chosen.items()}
    if ours.is_file() and (MULTI not in models or _made_from(models[MULTI], ours)):
        models[MULTI] = export_of(ours, cache_dir)   # an official rave.ts beside our rave.pt wins
    return models


def _made_from(model: RaveExport, checkpoint: Path) -> bool:
    """The export is one of ours (its metadata names our format): rave.pt beside it is the source."""
    try:
        return json.loads(model.module.metadata).get("format") == FORMAT
    except (AttributeError, RuntimeError, ValueError):
        return False


def export_of(path: Path, cache_dir: Path | None = None) -> RaveExport:
    """A `.ts` export as it is, or our `rave.pt` scripted by this machine's torch: read from
    `cache_dir`/rave/<stem>-<digest of rave.pt>-torch<version>.ts when an earlier start made it,
    else exported now (and saved there). A derived export describes itself as the rave.pt it came
    from (file name and digest), so latent banks made from that rave.pt fit it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no RAVE checkpoint at {path}")
    if path.suffix != ".pt":
        return RaveExport.from_file(path)
    digest = file_digest(path)
    cached = (Path(cache_dir) / "rave" / f"{path.stem}-{digest}-torch{torch.__version__.split('+')[0]}.ts"
              if cache_dir is not None else None)
    module = None
    if cached is not None and cached.is_file():
        try:
            module = torch.jit.load(str(cached), map_location="cpu")
        except RuntimeError:  # a damaged cache file is made again
            module = None
    if module is None:
        ckpt = read(path)
        module = export(model_from_checkpoint(ckpt), metadata_json(ckpt))
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            atomic_save(cached, module)
    model = RaveExport(module)
    model.path, model.digest = path, digest
    return model


def benchmark_decode(model: RaveExport, *, seconds: float = 30.0, threads=(1, 2), repeats: int = 3) -> dict:
    """Decode speed in × real time: `seconds` of random latents, best of `repeats`, per thread count."""
    frames = math.ceil(seconds * model.frame_rate)
    z = np.random.default_rng(0).standard_normal((model.latent_size, frames)).astype(np.float32)
    before, out = torch.get_num_threads(), {}
    try:
        for n in threads:
            torch.set_num_threads(n)
            model.decode(z[:, :64])  # warm-up
            best = min(_timed(model.decode, z) for _ in range(repeats))
            out[str(n)] = round(frames / model.frame_rate / best, 1)
    finally:
        torch.set_num_threads(before)
    return {"realtime_factor_by_threads": out, "seconds_decoded": round(frames / model.frame_rate, 2),
            "model": model.describe()}


def genre_fit_check(rave: GenreRave, classifier, *, per_genre: int = 3, seconds: float = 10.0,
                    sr: int = 22050) -> dict:
    """The point of the latent banks, measured: classifier top-1 and mean p(genre) of audio decoded
    from the genre's library latents (as served) and from N(0, 1) latents (the seed's way)."""
    from melodymaker.options import GENRES
    rows = {"library_latents": [], "random_latents": []}
    for gi, genre in enumerate(GENRES):
        key, model = rave.model_for(genre)
        for i in range(per_genre):
            seed = 1000 * i + gi
            y, _ = rave.generate(genre, round(seconds * sr), sr=sr, seed=seed)
            frames = math.ceil(seconds * model.frame_rate) + 2
            z = np.random.default_rng(seed).standard_normal((model.latent_size, frames)).astype(np.float32)
            from melodymaker.audio import fit_length, resample
            noise = fit_length(resample(model.decode(z, seed=seed), model.sr, sr), round(seconds * sr))
            for name, audio in (("library_latents", y), ("random_latents", noise)):
                probs = classifier.predict(audio, sr)
                rows[name].append((max(probs, key=probs.get) == genre, probs[genre]))
    return {name: {"genre_top1_accuracy": round(float(np.mean([t for t, _ in r])), 3),
                   "genre_fit_mean_probability": round(float(np.mean([p for _, p in r])), 3), "requests": len(r)}
            for name, r in rows.items()} | {"per_genre": per_genre, "seconds": seconds}


def _timed(fn, *args) -> float:
    t = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train_rave.sample", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", type=Path, default=Path("models/rave"),
                   help="our rave.pt, a .ts export, or a folder of rave.pt / rave.ts / <genre>.ts")
    p.add_argument("--genre")
    p.add_argument("--length", type=float, default=10.0, help="seconds")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variation", type=float, default=VARIATION)
    p.add_argument("--genres", type=Path, default=Path("genres"), help="library, for latents not in a bank")
    p.add_argument("--cache", type=Path, help="keep derived exports and latents here (the app uses var/cache)")
    p.add_argument("--sr", type=int, default=22050)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="a .wav file")
    p.add_argument("--benchmark", type=Path, metavar="JSON",
                   help="instead of sampling: measure decode speed on 1 and 2 threads, write it here")
    p.add_argument("--fit-check", type=Path, metavar="JSON",
                   help="instead of sampling: genre fit of library latents vs N(0, 1) latents, written here")
    args = p.parse_args(argv)
    if args.fit_check:
        from melodymaker.classify import load_classifier
        torch.set_num_threads(args.threads)
        rave = load(args.checkpoint, genres_dir=args.genres, cache_dir=args.cache)
        report = genre_fit_check(rave, load_classifier(Path("models/classifier")))
        args.fit_check.write_text(json.dumps(report, indent=1))
        print(json.dumps(report))
        return 0
    if args.benchmark:
        rave = load(args.checkpoint)
        report = benchmark_decode(rave.models[MULTI])
        args.benchmark.write_text(json.dumps(report, indent=1))
        print(json.dumps(report["realtime_factor_by_threads"]))
        return 0
    if not args.genre or not args.out:
        p.error("--genre and --out are required")
    from melodymaker.options import GENRES
    if args.genre not in GENRES:
        p.error(f"unknown genre {args.genre!r}; choose from {', '.join(GENRES)}")
    if not 0 < args.length <= 600:
        p.error("--length must be within 0-600 s")
    torch.set_num_threads(args.threads)
    import soundfile as sf
    rave = load(args.checkpoint, genres_dir=args.genres, cache_dir=args.cache)
    n = round(args.length * args.sr)
    t = time.perf_counter()
    y, info = rave.generate(args.genre, n, sr=args.sr, seed=args.seed, variation=args.variation)
    seconds = time.perf_counter() - t
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(args.out, y, args.sr, subtype="PCM_16")
    print(f"{args.out}: {len(y)} samples, {len(y) / args.sr:.2f} s of {args.genre} from "
          f"{len(info['segments'])} latent segments ({args.length / seconds if seconds else math.inf:.1f}× real time)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
