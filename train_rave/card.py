"""The RAVE model card: card.json and README.md beside a trained rave.pt (what was trained, how,
its resynthesis ceiling on held-out clips and, when given, its benchmark figures)."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

from melodymaker.trainkit import (carry_figures, evaluate_section, markdown_benchmark, markdown_losses,
                                  markdown_notes, markdown_rows, markdown_training, read_card, read_json, save_card)

from .model import FORMAT, FORMAT_VERSION, read

CHECKPOINT, EXPORT, BANK = "rave.pt", "rave.ts", "rave.latents.pt"
LOSSES, CARD = "losses.csv", "card.json"


def ceiling(out: Path, held: list | None, *, baseline: Path | None, models: Path | None, device="cpu",
            library: Path | None = None) -> dict | None:
    """The resynthesis ceiling of out/rave.pt (and of `baseline`, on the same clips): held-out
    clips through encode -> decode, by spectral distance and the project's genre judges."""
    from .ceiling import PER_GENRE, cap_per_genre, load_judges, measure
    if not held:
        return None
    clips, judges = cap_per_genre(held, PER_GENRE), load_judges(models) if models is not None else None
    try:
        report = {"library": str(Path(library).resolve()) if library else None,
                  **measure(out / CHECKPOINT, clips, judges=judges, device=device)}
    except Exception as e:  # the card is written without the figure rather than not at all
        print(f"resynthesis ceiling not measured ({type(e).__name__}: {e})", file=sys.stderr)
        return None
    if baseline is not None:
        try:
            report["baseline"] = measure(Path(baseline), clips, judges=judges, device=device)
        except Exception as e:
            print(f"baseline ceiling not measured ({type(e).__name__}: {e})", file=sys.stderr)
    return report


def phases_from_log(path: Path) -> list[dict]:
    """The training phases as logged: [{"phase", "from_step", "to_step"}], in order."""
    if not path.exists():
        return []
    with open(path) as f:
        rows = list(csv.DictReader(f))
    phases, prev = [], 0
    for r in rows:
        step = int(r["step"])
        if phases and phases[-1]["phase"] == r["phase"]:
            phases[-1]["to_step"] = step
        else:
            phases.append({"phase": r["phase"], "from_step": prev, "to_step": step})
        prev = step
    return phases


def write_card(out: Path, cfg, *, held: list | None = None, baseline: Path | None = None,
               models: Path | None = Path("models"), device="cpu", evaluate_json: Path | None = None,
               speed_json: Path | None = None, fit_json: Path | None = None,
               what_helped_json: Path | None = None) -> dict:
    """card.json and README.md beside the checkpoint: what was trained, how, and its figures."""
    ckpt = read(out / CHECKPOINT)
    info, old = ckpt["info"], read_card(out)
    phases = phases_from_log(out / LOSSES)
    if phases:  # a run stopped by --max-minutes logs its last steps only in the checkpoint
        phases[-1]["to_step"] = max(phases[-1]["to_step"], ckpt["step"])
    card = {"model": "MelodyMaker RAVE", "checkpoint": CHECKPOINT, "export": EXPORT, "latent_bank": BANK,
            "format": FORMAT, "format_version": FORMAT_VERSION, "version": ckpt["version"],
            "bytes": {name: (out / name).stat().st_size for name in (CHECKPOINT, EXPORT, BANK) if (out / name).exists()},
            "command": info.get("command"), "resumed_with": info.get("resumed_with", []),
            "library": info.get("library"), "steps": ckpt["step"],
            "phases": phases,
            "wall_minutes": round(info.get("wall_seconds", 0) / 60, 1), "device": info.get("device"),
            "threads": info.get("threads"), "params": info.get("params"), "model_args": ckpt["model_args"],
            "audio": ckpt["audio"], "config": info.get("config"), "final_losses": info.get("final_losses"),
            "started_from": info.get("started_from"), "adversarial_from_step": info.get("adv_began"),
            "derived_on_first_use": {EXPORT: "var/cache/rave/rave-<digest of rave.pt>-torch<version>.ts, "
                                     "exported by the serving machine's torch",
                                     BANK: "var/cache/rave/rave-<digest>.latents.pt, each genre's library clips "
                                     "encoded on its first request"}}
    carry_figures(card, old, {
        "resynthesis_ceiling": ceiling(out, held, baseline=baseline, models=models, device=device,
                                       library=Path(cfg.genres)),
        "evaluate": evaluate_section(evaluate_json, "rave") if evaluate_json else None,
        "decode_speed": read_json(speed_json), "genre_fit_library_vs_random_latents": read_json(fit_json),
        "what_helped": read_json(what_helped_json), "notes": None})
    card.setdefault("resynthesis_ceiling", None)
    save_card(out, card, render_markdown(card))
    return card


def render_markdown(card: dict) -> str:
    """The model card as a page, made from card.json."""
    lib, rec, ev = card.get("library") or {}, card.get("resynthesis_ceiling"), card.get("evaluate")
    params, audio = card.get("params") or {}, card["audio"]
    mb = {k: round(v / 1e6, 1) for k, v in card["bytes"].items()}
    lines = [
        "# RAVE", "",
        (f"Our RAVE (code and method: `train_rave/README.md`): PQMF {audio['n_bands']} bands, encoder "
         f"{params.get('encoder', 0) / 1e6:.2f} M and decoder {params.get('decoder', 0) / 1e6:.2f} M parameters, "
         f"{audio['latent_size']} latent dimensions at {audio['sr'] / audio['ratio']:.1f} Hz "
         f"({audio['ratio']} samples per frame, {audio['sr']} Hz audio). Version `{card['version']}`; "
         f"files: " + ", ".join(f"`{k}` {v} MB" for k, v in mb.items()) + "."), "",
        *markdown_training(card, "then resumed (only the schedule may change) with:"),
        (f"- library: `{lib.get('path')}`, {lib.get('note') or 'audio clips'}; built by "
         f"`{lib.get('builder', '?')}`; {lib.get('train_clips')} clips trained on, "
         f"{lib.get('held_out_clips')} held out"
         + (" (the library's split: `library.heldout`)" if lib.get("split") else "")),
        (f"- {card['steps']} steps of {card['config']['batch']} × {card['config']['window']} samples, "
         f"{card['wall_minutes']} min on {card['device']} with {card['threads']} thread(s), in phases: "
         + "; ".join(f"{p['phase']} (steps {p['from_step']}–{p['to_step']})" for p in card.get("phases") or [])
         + f" (spectral: {card['config'].get('loss', 'plain')} multi-scale STFT + KL; adversarial: encoder "
         "frozen, hinge loss + feature matching)"),
        *([f"- started from `{card['started_from']['checkpoint']}` (step {card['started_from']['step']}): "
           f"{card['started_from']['copied']} tensors copied, {card['started_from']['widened']} widened, "
           f"{card['started_from']['new']} new"] if card.get("started_from") else []),
        markdown_losses(card),
        "- the loss curve is `losses.csv`",
        (f"- shipped: `{CHECKPOINT}` alone; `{EXPORT}` and the latent bank are derived on first use into "
         "`var/cache/rave/` (the export by the serving machine's torch)"), "",
        "## Continue training", "",
        "On a GPU (`scripts/device_rave.sh` runs this with the 100-per-genre library), from these weights:", "",
        f"    {continue_command(card)}", ""]
    if rec:
        from .ceiling import render
        lines += ["## Resynthesis ceiling", "",
                  (f"{rec['clips']} held-out clips" + (f" of `{rec['library']}`" if rec.get("library") else "")
                   + f" × {rec['seconds_each']} s through encode → decode only; "
                   "MR-STFT distance: RAVE's plain multi-scale spectral distance (lower is better); top-1: genre "
                   "accuracy of each judge on the resynthesised clips (on the originals in brackets)."), "",
                  render(rec), ""]
    if card.get("decode_speed"):
        s = card["decode_speed"]
        lines += ["## Decode speed", "", "| threads | × real time |", "|---|---|"]
        lines += [f"| {k} | {v} |" for k, v in s.get("realtime_factor_by_threads", {}).items()]
        lines += ["", s.get("note", ""), ""]
    fit = card.get("genre_fit_library_vs_random_latents")
    if fit:
        lines += ["## Genre from the latents", "",
                  (f"The shipped classifier on {fit['library_latents']['requests']} tracks of {fit['seconds']} s "
                   f"({fit['per_genre']} seeds per genre, before the post stage), decoded by `rave.ts` from:"), "",
                  "| latents | genre fit top-1 | mean p(genre) |", "|---|---|---|",
                  (f"| the genre's library clips, spliced and varied (served) | "
                   f"{fit['library_latents']['genre_top1_accuracy']} | {fit['library_latents']['genre_fit_mean_probability']} |"),
                  (f"| N(0, 1) noise (the seed's way) | {fit['random_latents']['genre_top1_accuracy']} | "
                   f"{fit['random_latents']['genre_fit_mean_probability']} |"), ""]
    lines += markdown_benchmark(ev) if ev else []
    return "\n".join(lines + markdown_rows("What helped", card.get("what_helped")) + markdown_notes(card))



def continue_command(card: dict) -> str:
    """The command that trains on from the shipped rave.pt with this card's architecture."""
    c, m = card.get("config") or {}, {"noise_bands": 0, **(card.get("model_args") or {})}
    arch = [f"--{k.replace('_', '-')} {','.join(map(str, m[k])) if isinstance(m[k], list) else m[k]}"
            for k in ("channels", "strides", "latent_size", "noise_bands") if k in m]
    arch += [f"--{k.replace('_', '-')} {c[k]}" for k in ("d_width", "d_scales") if k in c]
    return ("python -m train_rave.train --genres lib100 --out runs/next --init-from models/rave/rave.pt "
            f"--device cuda --batch {c.get('batch', 32)} {' '.join(arch)} --max-minutes 30")
