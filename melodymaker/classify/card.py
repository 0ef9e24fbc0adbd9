"""The classifier's model card: library facts for card.json, and card.json as a README."""
from __future__ import annotations

import json
from pathlib import Path

from ..options import GENRES


def library_facts(root: Path, clips: dict, library, unreadable: list[dict], *, builder: str = "") -> dict:
    """Where the training audio came from: path, counts, skipped files, and the builder command."""
    facts = {"path": str(root), "clips": sum(len(c) for c in clips.values()),
             "counts": {g: len(c) for g, c in clips.items() if c},
             "skipped": [{"path": s.path, "reason": s.reason} for s in library.skipped] + unreadable}
    facts.update(builder_facts(clips))
    if builder:
        facts["builder"] = builder
    return facts


def builder_facts(clips: dict) -> dict:
    """How the built-in library was made, read from its per-clip sidecars; {} for other audio."""
    seeds, versions, durations, indices = set(), set(), set(), {}
    for genre, cs in clips.items():
        for c in cs:
            try:
                meta = json.loads(Path(c.path).with_suffix(".json").read_text())
            except (OSError, ValueError):
                return {}
            seeds.add(meta.get("library_seed"))
            versions.add(meta.get("builder_version"))
            durations.add(meta.get("duration"))
            indices.setdefault(genre, set()).add(meta.get("index"))
    if not indices or len(seeds) != 1 or len(durations) != 1 or None in seeds:
        return {}
    sizes = {len(v) for v in indices.values()}
    complete = len(sizes) == 1 and all(v == set(range(len(v))) for v in indices.values())
    seed, duration = seeds.pop(), durations.pop()
    facts = {"library_seed": seed, "builder_version": sorted(versions, key=str)[-1],
             "duration": duration}
    if complete:
        n = sizes.pop()
        extra = "" if duration == 30.0 else f" --duration {duration:g}"
        facts["per_genre"] = n
        facts["builder"] = (f"python -m melodymaker library build --out genres --per-genre {n} "
                            f"--seed {seed}{extra}")
        facts["note"] = (f"the built-in library (composer clips) with seed {seed}, {n} per genre"
                         + ("" if len(indices) == len(GENRES) else f", genres {sorted(indices)}"))
    return facts


def render_markdown(card: dict) -> str:
    """A human-readable model card (README.md) with the figures of card.json."""
    res, tr, lib, split, aug = card["results"], card["training"], card["library"], card["split"], card["augmentation"]
    cnn, feat = card["judges"]["cnn"], card["judges"]["features"]
    acc = res["accuracy"]
    conditions = list(acc["cnn"])
    lines = [
        "# Genre judges", "",
        "Two judges of the ten GTZAN genres that share no features, both shipped, each usable alone, "
        f"and their combined verdict ({card['combination']}). Version `{card['version']}`. "
        "Every figure below is read from `card.json`.", "",
        f"- **CNN** (`{cnn['checkpoint']}`, {cnn['bytes'] / 1e6:.2f} MB, {cnn['parameters']:,} parameters, "
        f"version `{cnn['version']}`): {cnn['features']}, windows averaged per track; its penultimate "
        "layer is the embedding for similar tracks.",
        f"- **Feature judge** (`{feat['checkpoint']}`, {feat['bytes'] / 1e3:.0f} kB, version `{feat['version']}`): "
        f"{feat['features']}; standardised, multinomial logistic regression (C={feat['C']:g}, picked from "
        f"{len(feat['cv'])} values by cross-validation on the training clips, folds grouped by clip). Stored as "
        "tensors, no pickle.", "",
        "## Trained by", "", "```", card["command"], "```", "",
        f"- library: `{lib['path']}`, {lib['clips']} clips"
        + (f"; built by `{lib['builder']}`" if lib.get("builder") else ""),
        f"- split: {split['train']} training clips, {split['test']} held-out clips, the same for both "
        f"judges and every model trainer ({split['method']}; seed {split['seed']}, fraction {split['fraction']:g}); "
        "the held-out keys are in `card.json`",
        f"- augmentation, never any mode's output: {aug['copies_per_training_clip']} degraded "
        f"{aug['excerpt_seconds']:g}-s excerpts per training clip besides the clean clip, each a chain of "
        "1-3 of: " + "; ".join(f"{k} ({v})" for k, v in aug["degradations"].items())
        + f". The CNN also gets {aug['cnn_also']}.",
        f"- {tr['wall_time_s']:.0f} s wall time ({tr['feature_time_s']:.0f} s features, {tr['cnn_time_s']:.0f} s "
        f"CNN, {tr['feature_judge_time_s']:.0f} s feature judge) on {tr['device']}",
        f"- CNN: {tr['epochs']} epochs, {tr['steps']} steps; final training loss {tr['final_train_loss']}, "
        f"held-out loss {tr['final_test_loss']}", "",
        "## Held-out accuracy, clean and degraded", "",
        f"{res['test_clips']} held-out clips. \"clean, whole clip\" is the full clip; every other column is "
        f"a {res['excerpt_seconds']:g}-s excerpt, clean or under one degradation (drawn per clip from the "
        "ranges below), or a random mix of 2-3.", "",
        "| judge | " + " | ".join(c.replace("_", " ").replace("clean whole clip", "clean, whole clip")
                                 for c in conditions) + " |",
        "| --- " * (len(conditions) + 1) + "|",
    ]
    for judge in ("cnn", "features", "combined"):
        lines.append(f"| {judge} | " + " | ".join(f"{acc[judge][c]:.3f}" for c in conditions) + " |")
    lines += ["", "| condition | what it does |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in res["conditions"].items()]
    lines += ["", "Per genre, clean whole clips:", "", "| genre | CNN | feature judge |", "| --- | --- | --- |"]
    for g in card["genres"]:
        c, f = res["cnn"]["per_genre"].get(g), res["features"]["per_genre"].get(g)
        lines.append(f"| {g} | {'-' if c is None else f'{c:.2f}'} | {'-' if f is None else f'{f:.2f}'} |")
    lines += [
        "", "## Use", "", "```python",
        "from melodymaker.classify import load_judges",
        "judges = load_judges(Path('models/classifier'))",
        "v = judges.verdict(y, sr)        # v.cnn, v.features, v.combined: {genre: p}; v.embedding",
        "judges.cnn.predict(y, sr)        # each judge alone",
        "```", "",
        "`python -m melodymaker.classify predict file.wav` prints each judge's top three and the combined one.", "",
        "## Retrain", "",
        "Build the training library (`python -m melodymaker library build --out lib100 --per-genre 100 --seed 0`; "
        "`lib100/` is git-ignored) or put the real GTZAN in `<dir>/<genre>/*.au`, then run the command above "
        "with `--genres` pointing there (`--cache-dir` keeps each clip's features for reruns). Unreadable files "
        "are skipped and listed in `card.json`.", "",
    ]
    return "\n".join(lines)
