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
    res, tr, lib, split = card["results"], card["training"], card["library"], card["split"]
    cnn, base = res["cnn"], res["baseline"]
    lines = [
        "# Genre classifier", "",
        f"Predicts the ten GTZAN genres from audio and embeds audio for similarity search. "
        f"Serving backend: **{card['backend']}** ({card['ship_rule']}). Checkpoint "
        f"`{card['checkpoint']}` version `{card['version']}`, {card['checkpoint_bytes'] / 1e6:.2f} MB, "
        f"{card['parameters']:,} CNN parameters. Every figure below is read from `card.json`.", "",
        "## Trained by", "", "```", card["command"], "```", "",
        f"- library: `{lib['path']}`, {lib['clips']} clips"
        + (f"; built by `{lib['builder']}`" if lib.get("builder") else ""),
        f"- split: {split['train']} training clips, {split['test']} held-out clips "
        f"({split['method']}; seed {split['seed']})",
        f"- {tr['epochs']} epochs, {tr['steps']} steps, {tr['wall_time_s']:.0f} s wall time "
        f"({tr['feature_time_s']:.0f} s features, {tr['cnn_time_s']:.0f} s CNN) on {tr['device']}",
        f"- final training loss {tr['final_train_loss']}, held-out loss {tr['final_test_loss']}", "",
        "## Held-out accuracy (per clip)", "",
        "| model | accuracy |", "| --- | --- |",
        f"| {cnn['name']} | {cnn['accuracy']:.3f} |",
        f"| baseline: {base['name']} (C={base['C']}) | {base['accuracy']:.3f} |", "",
        "| genre | CNN | baseline |", "| --- | --- | --- |",
    ]
    for g in card["genres"]:
        c, b = cnn["per_genre"].get(g), base["per_genre"].get(g)
        lines.append(f"| {g} | {'-' if c is None else f'{c:.2f}'} | {'-' if b is None else f'{b:.2f}'} |")
    shipped = res["cnn"] if card["backend"] == "cnn" else res["baseline"]
    labels = shipped["confusion"]["labels"]
    lines += ["", f"Confusion matrix of the shipped {card['backend']} model (rows: true genre):", "",
              "| | " + " | ".join(labels) + " |", "| --- " * (len(labels) + 1) + "|"]
    for g, row in zip(labels, shipped["confusion"]["matrix"]):
        lines.append(f"| {g} | " + " | ".join(map(str, row)) + " |")
    lines += [
        "", "## Use", "", "```python",
        "from melodymaker.classify import load_classifier",
        "clf = load_classifier(Path('models'))",
        "probs, vector = clf.predict_and_embed(y, sr)  # {genre: p}, unit float32 vector",
        "```", "",
        "## Retrain on the real GTZAN", "",
        "Put GTZAN in `genres/<genre>/*.au` (any subset of genres, any number of clips) and run "
        "`python -m melodymaker.classify train --genres genres --out models/classifier --seed 0`.",
        "Unreadable files are skipped and listed in `card.json`.", "",
    ]
    return "\n".join(lines)
