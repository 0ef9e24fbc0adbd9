"""Resynthesis ceilings: library clips no model or judge trained on, passed through a neural mode's
analysis and synthesis path only, scored by both judges and by multi-resolution STFT distance.

A mode cannot fit its genre better than its own analysis/synthesis path lets it: RAVE's autoencoder
(encode -> decode), MEL-GAN's mel and its inversion (the vocoder, and Griffin-Lim beside it), DDIM's
normalised MDCT and its inverse (near-lossless, and that is the point). The untouched clips are the
judges' own ceiling.

    from melodymaker.evaluate.ceilings import ceiling
    ceiling("ddim", [("jazz", y), ...], judges, model=ddim)   # a trainer's card, model in memory
    ceiling("rave", clips, judges, models_dir=Path("models"))   # evaluate: the shipped checkpoint
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .. import audio
from .. import options as opt
from .scoring import fit_summary, judge

MODES = ("rave", "melgan", "ddim")       # the neural modes: the ones with an analysis/synthesis path
UNTOUCHED = "library"                    # the pseudo-mode of the judges' own ceiling
PRIMARY = {"library": "untouched", "rave": "encode→decode", "melgan": "mel→vocoder",
           "ddim": "MDCT→inverse"}       # the path serving uses: the one the main table shows
STFT_RESOLUTIONS = ((1024, 256), (2048, 512), (512, 128))
LOG_FLOOR_DB = -100.0                    # the MR-STFT distance's floor, re the reference's loudest bin
Resynthesis = Callable[[np.ndarray, str], np.ndarray]   # (audio at opt.SAMPLE_RATE, genre) -> audio


# -- the paths --------------------------------------------------------------------------------------
def resynthesis_paths(mode: str, *, model=None, models_dir: str | Path | None = None) -> dict[str, Resynthesis]:
    """{path name: function} of a mode's analysis+synthesis paths. `model`: the loaded model (a
    GenreRave or RaveExport, a MelGAN, a DDIM); else it is loaded from `models_dir`/<mode>/."""
    if mode == UNTOUCHED:
        return {PRIMARY[mode]: lambda y, genre: y}
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} has no resynthesis path; choose from {', '.join(MODES)}")
    if model is None:
        if models_dir is None:
            raise ValueError("give the model or the models folder to load it from")
        model = _load(mode, Path(models_dir))
    return {"rave": _rave_paths, "melgan": _melgan_paths, "ddim": _ddim_paths}[mode](model)


def _load(mode: str, models_dir: Path):
    if mode == "rave":
        from train_rave.sample import load
        return load(models_dir / "rave")
    if mode == "melgan":
        from melgan_model.sample import load
        return load(models_dir / "melgan" / "melgan.pt")
    from diffusion_model.sample import load
    return load(models_dir / "ddim" / "ddim.pt")


def _rave_paths(model) -> dict[str, Resynthesis]:
    def through(y: np.ndarray, genre: str) -> np.ndarray:
        export = model.model_for(genre)[1] if hasattr(model, "model_for") else model
        x = audio.resample(y, opt.SAMPLE_RATE, export.sr)
        out = export.decode(export.encode(x), seed=0)
        return audio.fit_length(audio.resample(out, export.sr, opt.SAMPLE_RATE), len(y))
    return {PRIMARY["rave"]: through}


def _melgan_paths(model) -> dict[str, Resynthesis]:
    import torch
    from melgan_model.model import LogMel
    from melgan_model.sample import invert
    logmel = LogMel(model.mel)

    def by(inversion: str) -> Resynthesis:
        def through(y: np.ndarray, genre: str) -> np.ndarray:
            x = audio.resample(y, opt.SAMPLE_RATE, model.mel.sr)
            with torch.inference_mode():
                mel = model.norm.normalise(logmel(torch.from_numpy(np.asarray(x, dtype=np.float32))[None])[0])
            out = invert(model, mel, len(x), inversion)
            return audio.fit_length(audio.resample(out, model.mel.sr, opt.SAMPLE_RATE), len(y))
        return through
    return {PRIMARY["melgan"]: by("vocoder"), "mel→vocoder alone": by("vocoder-raw"),
            "mel→Griffin-Lim": by("griffinlim")}


def _ddim_paths(model) -> dict[str, Resynthesis]:
    import torch
    from diffusion_model.data import denormalise, normalise
    from diffusion_model.mdct import MDCT
    mdct, sr = MDCT(int(model.hop)), int(getattr(model, "sr", opt.SAMPLE_RATE))
    alpha, bin_std = float(model.alpha), model.bin_std.float()

    def through(y: np.ndarray, genre: str) -> np.ndarray:
        x = torch.from_numpy(np.asarray(audio.resample(y, opt.SAMPLE_RATE, sr), dtype=np.float32))
        with torch.inference_mode():
            seen = normalise(mdct(x), alpha, bin_std)           # what the network makes
            out = mdct.inverse(denormalise(seen, alpha, bin_std), len(x)).numpy()
        return audio.fit_length(audio.resample(out, sr, opt.SAMPLE_RATE), len(y))
    return {PRIMARY["ddim"]: through}


# -- the measure ------------------------------------------------------------------------------------
def mrstft_distance(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Multi-resolution STFT distance (Yamamoto et al. 2020; MEL-GAN's training loss): spectral
    convergence plus log-magnitude L1, averaged over three resolutions. 0 for identical audio.

    Unlike the training loss, magnitudes are floored LOG_FLOOR_DB below the reference's loudest
    bin (not at 1e-7): float rounding in near-silent bins is inaudible and must not count."""
    import torch
    a = torch.from_numpy(np.asarray(estimate, dtype=np.float32))
    b = torch.from_numpy(np.asarray(reference, dtype=np.float32))
    n = min(len(a), len(b))
    a, b, total = a[:n], b[:n], 0.0
    for n_fft, hop in STFT_RESOLUTIONS:
        w = torch.hann_window(n_fft)
        sa = torch.stft(a, n_fft, hop, window=w, return_complex=True).abs()
        sb = torch.stft(b, n_fft, hop, window=w, return_complex=True).abs()
        floor = max(1e-7, float(sb.max()) * 10 ** (LOG_FLOOR_DB / 20))
        sa, sb = sa.clamp(min=floor), sb.clamp(min=floor)
        sc = torch.linalg.norm(sb - sa) / torch.linalg.norm(sb).clamp(min=1e-7)
        total += float(sc) + float((sa.log() - sb.log()).abs().mean())
    return total / len(STFT_RESOLUTIONS)


def ceiling(mode: str, clips: list[tuple[str | int, np.ndarray]], judges, *, model=None,
            models_dir: str | Path | None = None, keep_embeddings: bool = False) -> dict:
    """The ceiling of each of a mode's resynthesis paths over `clips`.

    clips: (genre name or index into options.GENRES, mono float audio at options.SAMPLE_RATE).
    judges: melodymaker.classify's judges, or None (then only the MR-STFT distance is measured).
    Returns {"mode", "clips", "primary": the serving path's name, "paths": {name: {"fit_cnn",
    "fit_features", "genre_fit" (the lower), mean probabilities, "mrstft", "realtime_factor"}},
    "judges_reason"}; keep_embeddings also returns each path's CNN embeddings, (clips, d), under
    "embeddings"."""
    paths = resynthesis_paths(mode, model=model, models_dir=models_dir)
    clips = [(opt.GENRES[g] if isinstance(g, (int, np.integer)) else g, y) for g, y in clips]
    result = {"mode": mode, "clips": len(clips), "primary": PRIMARY[mode], "paths": {},
              "judges_reason": None if judges is not None else "no judges given"}
    if keep_embeddings and judges is not None:
        result["embeddings"] = {}
    for name, through in paths.items():
        if clips:  # first calls allocate and pick kernels: not what the real-time factor means
            through(clips[0][1][: opt.SAMPLE_RATE], clips[0][0])
        rows, vectors, seconds, audio_seconds = [], [], 0.0, 0.0
        for genre, y in clips:
            start = time.perf_counter()
            out = np.asarray(through(y, genre), dtype=np.float32)
            seconds += time.perf_counter() - start
            audio_seconds += len(y) / opt.SAMPLE_RATE
            row = {"genre": genre, "mrstft": mrstft_distance(out, y)}
            if judges is not None:
                scores, vector = judge(judges, out, opt.SAMPLE_RATE, genre)
                row.update(scores)
                vectors.append(vector)
            rows.append(row)
        if "embeddings" in result:
            result["embeddings"][name] = np.asarray(vectors, dtype=np.float32)
        result["paths"][name] = {
            **{k: v for k, v in fit_summary(rows).items() if k != "scored"},
            "mrstft": round(float(np.mean([r["mrstft"] for r in rows])), 4) if rows else None,
            "realtime_factor": (round(audio_seconds / seconds, 1)
                                if seconds > 0 and mode != UNTOUCHED else None)}
    return result


# -- which clips: held out from the judges and from every model measured -----------------------------
def judges_held_out(info: dict, library_keys: list[str]) -> set[str] | None:
    """The library clips the judges never trained on, from their info["split"]: a list of held-out
    keys, or a dict naming them ("held_out", "test_clips", "test") or the training keys
    ("train_clips"). None when the split says neither."""
    split = (info or {}).get("split")
    if isinstance(split, (list, tuple)):
        return set(split)
    if isinstance(split, dict):
        for name in ("held_out", "held_out_clips", "test_clips", "test"):
            if isinstance(split.get(name), (list, tuple)):
                return set(split[name])
        if isinstance(split.get("train_clips"), (list, tuple)):
            return set(library_keys) - set(split["train_clips"])
    return None


def trained_on(card: dict | None) -> tuple[Callable[[object], bool] | None, str]:
    """(clip -> whether the model of this card may have trained on it, how that is known).

    A card that lists its training clips ("train_clips" under "split", "library" or at the top)
    is taken at its word. Otherwise its library: a built-in library (card["library"] has
    library_seed and per_genre) holds clips 0..per_genre-1 of that seed (read from each clip's
    sidecar); any other library, every clip. Less the held-out keys the card's split lists
    ("held_out" under "split" or "library"."split"). A card that says neither what it trained on
    nor what it held out gives None: unknown, so every clip counts as seen."""
    if not card:
        return None, "no model card"
    lib = card.get("library") if isinstance(card.get("library"), dict) else {}
    splits = [h for h in (card.get("split"), lib.get("split")) if isinstance(h, dict)]
    for holder in (*splits, lib, card):
        listed = holder.get("train_clips")
        if isinstance(listed, (list, tuple)):
            keys = set(listed)
            return (lambda clip: clip.key in keys), f"the card lists {len(keys)} training clips"
    in_library, how = None, "its library"
    if lib.get("library_seed") is not None and lib.get("per_genre"):
        seed, n = lib["library_seed"], int(lib["per_genre"])

        def in_library(clip) -> bool:
            side = _sidecar(clip)
            return side is None or (side.get("library_seed") == seed and int(side.get("index", 0)) < n)
        how = f"built-in library seed {seed}, clips 0-{n - 1} of each genre"
    held = next((set(h["held_out"]) for h in splits if isinstance(h.get("held_out"), (list, tuple))), None)
    if held is not None:
        base = in_library or (lambda clip: True)
        return (lambda clip: base(clip) and clip.key not in held), f"{how}, less {len(held)} held-out clips"
    if in_library is not None:
        return in_library, how
    return None, "the card does not say which clips it trained on"


def held_out_clips(library, judges_info: dict | None, cards: dict[str, dict | None], *,
                   per_genre: int) -> tuple[list, dict]:
    """(clips, facts): up to `per_genre` clips of each genre that the judges and every model in
    `cards` ({mode: its card.json or None}) never trained on, in name order; facts say how many
    each rule removed, or why none are left. judges_info None: there are no judges to score with
    (the MR-STFT distance alone), so only the models' training clips are left out."""
    everything = library.all_clips()
    facts: dict = {"library": str(library.root), "library_clips": len(everything)}
    chosen = everything
    if judges_info is not None:
        held = judges_held_out(judges_info, [c.key for c in everything])
        if held is None:
            facts["reason"] = "the judges do not record their held-out split"
            return [], facts
        chosen = [c for c in everything if c.key in held]
        facts["held_out_by_judges"] = len(chosen)
    facts["models"] = {}
    for mode, card in cards.items():
        seen, how = trained_on(card)
        if seen is None:
            facts["models"][mode] = {"rule": how, "removed": len(chosen)}
            chosen = []
            continue
        kept = [c for c in chosen if not seen(c)]
        facts["models"][mode] = {"rule": how, "removed": len(chosen) - len(kept)}
        chosen = kept
    picked = []
    for genre in opt.GENRES:
        picked += sorted((c for c in chosen if c.genre == genre), key=lambda c: c.name)[:per_genre]
    facts["clips"] = len(picked)
    if not picked:
        facts["reason"] = "no library clip is held out from both the judges and every model measured"
    return picked, facts


def read_card(models_dir: str | Path, mode: str) -> dict | None:
    path = Path(models_dir) / mode / "card.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def excerpt(y: np.ndarray, seconds: float, sr: int = opt.SAMPLE_RATE) -> np.ndarray:
    """The middle `seconds` of a clip (all of it when shorter): past the intro, before the ending."""
    n = int(round(seconds * sr))
    start = max(0, (len(y) - n) // 2)
    return np.asarray(y[start: start + n], dtype=np.float32)


def _sidecar(clip) -> dict | None:
    try:
        return json.loads(Path(clip.path).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
