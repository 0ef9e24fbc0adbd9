"""What the trainers share: config to argparse, checkpoints (one format convention, one reader),
resume, the loop's clock and loss log, EMA, and the model card's common parts. No serving code.

Every checkpoint a model folder ships is a dict that describes itself, as in nanoGPT:
`format` (the model, e.g. "melodymaker-ddim"), `format_version` (an int, bumped when the layout
changes), `step`, the architecture (`model_args`, or `config` / `<part>_args`) and the weights.
`read_checkpoint` checks format and version before anything else reads it."""
from __future__ import annotations

import argparse
import csv
import json
import shlex
import sys
import time
from dataclasses import MISSING, fields
from pathlib import Path

from .weights import float_weights, half_weights  # noqa: F401 (the trainers import them from here)


def _int_list(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


def ints(s) -> tuple:
    """"64,128,192" (or a list of ints) -> (64, 128, 192): a config's comma-separated widths."""
    return tuple(_int_list(s if isinstance(s, str) else ",".join(map(str, s))))


def add_dataclass_arguments(p: argparse.ArgumentParser, config_cls) -> None:
    """--some-field for each field of `config_cls`, typed and defaulted from the dataclass: lists
    of ints are comma-separated, booleans get --flag / --no-flag, the field's metadata "help" is
    the help text."""
    for f in fields(config_cls):
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        flag, doc = f"--{f.name.replace('_', '-')}", f.metadata.get("help", "")
        if isinstance(default, bool):
            p.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=default, help=doc)
            continue
        kind = _int_list if isinstance(default, list) else type(default)
        shown = ",".join(map(str, default)) if isinstance(default, list) else default
        p.add_argument(flag, dest=f.name, type=kind, default=default,
                       help=f"{doc} (default: {shown})".strip())


def config_from_args(args: argparse.Namespace, config_cls):
    return config_cls(**{f.name: getattr(args, f.name) for f in fields(config_cls)})


def trainer_parser(module: str, doc: str, config_cls, *, mode: str) -> argparse.ArgumentParser:
    """`python -m <module>`'s command line: one option per config field, and --fresh, --card-only
    and --evaluate-json (the figures of `python -m melodymaker evaluate --modes <mode>`)."""
    p = argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_dataclass_arguments(p, config_cls)
    p.add_argument("--fresh", action="store_true", help="ignore an existing train_state.pt")
    p.add_argument("--card-only", action="store_true",
                   help="train nothing: rewrite card.json and README.md from the saved checkpoint")
    p.add_argument("--evaluate-json", type=Path,
                   help=f"with --card-only: the JSON of `python -m melodymaker evaluate --modes {mode}`")
    return p


def split_args(args: argparse.Namespace, config_cls) -> tuple:
    """(the config dataclass, a namespace of every other option)."""
    names = {f.name for f in fields(config_cls)}
    return (config_from_args(args, config_cls),
            argparse.Namespace(**{k: v for k, v in vars(args).items() if k not in names}))


def run_command(module: str, argv: list[str] | None) -> str:
    """`python -m <module> <argv>`, shell-quoted: what a card says was run (argv None: this process's)."""
    return f"python -m {module} " + shlex.join(sys.argv[1:] if argv is None else argv)


def run_info(module: str, argv: list[str] | None, previous: dict | None = None, **facts) -> dict:
    """What a card says about the run: the command (`python -m <module>`, shell-quoted) and
    `facts`; a resumed run keeps the command that started it and adds this one to `resumed_with`."""
    command = run_command(module, argv)
    info = {"command": command, **facts}
    if previous:
        info["command"] = previous["command"]
        info["resumed_with"] = previous.get("resumed_with", []) + [command]
    return info


# -- checkpoints -------------------------------------------------------------------------------------
def checkpoint_header(fmt: str, version: int, step: int) -> dict:
    """The keys every checkpoint starts with: {"format", "format_version", "step"}."""
    return {"format": fmt, "format_version": int(version), "step": int(step)}


def check_checkpoint(ckpt, fmt: str, version: int, *, name: str, source: str = "the checkpoint") -> dict:
    """`ckpt` itself once it is a dict of format `fmt` at `version`; else ValueError naming what
    it is. Checkpoints written before the convention carry the version in the format string
    ("melodymaker-melgan/1"): they read as that format at that version."""
    found = ckpt.get("format") if isinstance(ckpt, dict) else None
    found_version = ckpt.get("format_version") if isinstance(ckpt, dict) else None
    if isinstance(found, str) and found_version is None and found.rpartition("/")[2].isdigit():
        found, _, number = found.rpartition("/")
        found_version = int(number)
    if found != fmt:
        raise ValueError(f"{source} is not a {name} checkpoint (format {found!r}, expected {fmt!r})")
    if found_version != version:
        raise ValueError(f"{source} is a {name} checkpoint of format version {found_version}; this code "
                         f"reads version {version}: retrain, or use the code it was made with")
    return ckpt


def read_checkpoint(path: str | Path, fmt: str, version: int, *, name: str) -> dict:
    """The checkpoint at `path` (tensors on the CPU, loaded with weights_only: no code runs),
    checked by `check_checkpoint`. FileNotFoundError when there is none; ValueError when it is
    unreadable or another model's or version's."""
    import torch
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {name} checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, not a torch file, or objects weights_only refuses
        raise ValueError(f"{path.name} is not a readable {name} checkpoint ({type(e).__name__}: {e})") from e
    return check_checkpoint(ckpt, fmt, version, name=name, source=path.name)


def atomic_save(path: Path, obj) -> None:
    """torch.save (or a TorchScript module's own save) to a temporary file, then rename: a run
    killed mid-write never leaves a truncated checkpoint."""
    import torch
    tmp = path.with_name(path.name + ".tmp")
    if isinstance(obj, torch.jit.ScriptModule):
        obj.save(str(tmp))
    else:
        torch.save(obj, tmp)
    tmp.replace(path)


# -- data ------------------------------------------------------------------------------------------
def load_clips(genres_dir: str | Path, sr: int, *, holdout: int, per_genre: int = 0,
               min_samples: int = 1, split_seed: int = 0, split_fraction: float = 0.2) -> tuple[list, list, dict]:
    """Every readable clip of a genres/ folder at `sr`, as (genre index, float32 audio), split by
    the library's one split (library.heldout, shared with the genre judges): held-out clips never
    train, and the first `holdout` of each genre's (by name) come back for the card's figures.
    `per_genre` caps the clips of each genre (0: all); a clip that cannot be
    decoded or is shorter than `min_samples` is skipped and named in the library facts (what a
    model card records). SystemExit when nothing is left to train on; says on stderr what it
    loaded."""
    import tempfile

    from .audio import load
    from .classify.card import library_facts
    from .errors import AudioDecodeError
    from .library import Library, heldout, split_facts
    from .options import GENRES
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as cache:
        library = Library(Path(genres_dir), Path(cache)).scan()
    train, held, used, unreadable = [], [], {}, []
    for gi, genre in enumerate(GENRES):
        clips = sorted(library.clips.get(genre, []), key=lambda c: c.name)
        if per_genre:
            clips = clips[:per_genre]
        loaded, held_here = [], []
        for c in clips:
            out = heldout(c.key, fraction=split_fraction, seed=split_seed)
            if out and len(held_here) >= holdout:
                continue  # out of training, and not needed for the figures: not decoded
            try:
                y = load(c.path, sr)
            except AudioDecodeError as e:
                unreadable.append({"path": str(c.path), "reason": e.message})
                continue
            if len(y) < min_samples:
                unreadable.append({"path": str(c.path), "reason": "shorter than one training window"})
                continue
            (held_here if out else loaded).append((gi, y))
        train += loaded
        held += held_here
        used[genre] = clips
    if not train:
        raise SystemExit(f"no readable audio clips of at least {min_samples} samples in {genres_dir}")
    facts = library_facts(Path(genres_dir).resolve(), used, library, unreadable)
    facts.update({"train_clips": len(train), "held_out_clips": len(held), "split": split_facts(
        [c.key for cs in used.values() for c in cs], fraction=split_fraction, seed=split_seed)})
    print(f"library: {len(train)} training clips, {len(held)} held out "
          f"({time.perf_counter() - started:.0f} s to load)", file=sys.stderr)
    return train, held, facts


def random_windows(clips: list, n: int, size: int, rng):
    """n random windows (n, size) of random clips (float32 arrays of at least `size` samples),
    each at a random gain in [0.5, 1]; one seeded torch.Generator decides everything."""
    import torch
    out = []
    for _ in range(n):
        y = clips[int(torch.randint(len(clips), (1,), generator=rng))]
        start = int(torch.randint(len(y) - size + 1, (1,), generator=rng))
        gain = 0.5 + 0.5 * float(torch.rand((), generator=rng))
        out.append(torch.from_numpy(y[start: start + size]) * gain)
    return torch.stack(out)


# -- a run: device, resume, the loop's clock and log -------------------------------------------------
def training_device(name: str):
    """torch.device(name); "auto" is CUDA when there is one, and "cuda" falls back to the CPU
    when there is none."""
    import torch
    if name in ("auto", "cuda"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def adopt_config(cfg, saved: dict, run_keys: tuple) -> None:
    """As in nanoGPT, the architecture and data settings of a continued run come from the run that
    made it: every field of `saved` not in `run_keys` (the schedule, which may change) is set on cfg."""
    for k, v in saved.items():
        if k not in run_keys:
            setattr(cfg, k, v)


def load_resume(state_path: Path, cfg, run_keys: tuple, *, fresh: bool = False) -> dict | None:
    """The saved training state, or None (none saved, or `fresh`); its config is adopted
    (`adopt_config`)."""
    import torch
    if fresh or not state_path.exists():
        return None
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    adopt_config(cfg, state["config"], run_keys)
    return state


def restore(resume: dict, parts: dict, rng) -> tuple[int, float]:
    """Load each of `parts` (key in the saved state -> module or optimizer), the data generator
    `rng` and torch's global RNG from a saved state: (step, wall seconds trained)."""
    import torch
    for key, part in parts.items():
        part.load_state_dict(resume[key])
    rng.set_state(resume["rng"])
    torch.set_rng_state(resume["torch_rng"])
    print(f"resuming at step {resume['step']} ({resume['wall_seconds'] / 60:.1f} min trained)", file=sys.stderr)
    return resume["step"], resume["wall_seconds"]


def training_state(parts: dict, rng, **extra) -> dict:
    """Everything to resume from: `extra`, each part's state dict, and both RNG states."""
    import torch
    return {**extra, **{key: part.state_dict() for key, part in parts.items()},
            "rng": rng.get_state(), "torch_rng": torch.get_rng_state()}


def set_lr(opt, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


class Clock:
    """A training loop's bookkeeping: the step, wall time summed over resumes, a progress bar,
    and when to log, save and stop (--log-every, --save-every, --max-minutes of this run)."""

    def __init__(self, cfg, step: int, wall: float, *, desc: str, progress: bool = True):
        from tqdm import tqdm
        self.steps, self.log_every, self.save_every = cfg.steps, cfg.log_every, cfg.save_every
        self.max_minutes = cfg.max_minutes
        self.step, self.wall, self._wall0, self._started = step, wall, wall, time.perf_counter()
        self.bar = tqdm(total=cfg.steps, initial=step, desc=desc, file=sys.stderr, mininterval=5,
                        disable=not progress)

    @property
    def running(self) -> bool:
        return self.step < self.steps

    def tick(self) -> None:
        self.step += 1
        self.bar.update(1)
        self.wall = self._wall0 + time.perf_counter() - self._started

    @property
    def log_due(self) -> bool:
        return self.step % self.log_every == 0 or self.step == self.steps

    @property
    def out_of_time(self) -> bool:
        return bool(self.max_minutes) and time.perf_counter() - self._started > self.max_minutes * 60

    @property
    def save_due(self) -> bool:
        return self.step % self.save_every == 0 or self.out_of_time

    def time_is_up(self) -> bool:
        """out_of_time, saying so on stderr."""
        if self.out_of_time:
            print(f"\nstopping at step {self.step}: --max-minutes {self.max_minutes} reached", file=sys.stderr)
        return self.out_of_time

    def close(self) -> None:
        self.bar.close()


class RunningMeans:
    """Means of each loss since the last log line; a loss not given on a step is not counted."""

    def __init__(self, keys, ndigits: int = 4):
        self.keys, self.ndigits = list(keys), ndigits
        self._reset()

    def _reset(self) -> None:
        self.sums, self.counts = dict.fromkeys(self.keys, 0.0), dict.fromkeys(self.keys, 0)

    def add(self, values: dict) -> None:
        for k, v in values.items():
            self.sums[k] += float(v.detach()) if hasattr(v, "detach") else float(v)
            self.counts[k] += 1

    @property
    def pending(self) -> bool:
        return any(self.counts.values())

    def take(self) -> dict:
        """The means, rounded, and a fresh start."""
        means = {k: round(self.sums[k] / max(1, self.counts[k]), self.ndigits) for k in self.keys}
        self._reset()
        return means


class LossLog:
    """The loss curve: a CSV file (header once; a resumed run appends, a fresh one starts it
    again) and, when installed, TensorBoard for the `scalars` columns."""

    def __init__(self, path: Path, columns: list[str], *, append: bool, tensorboard: Path | None = None,
                 scalars=()):
        self.path, self.columns, self.scalars = Path(path), list(columns), list(scalars)
        if not append or not self.path.exists():
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.columns)
        self.tb = tensorboard_writer(tensorboard) if tensorboard is not None and self.scalars else None

    def write(self, row: dict) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([row.get(k, "") for k in self.columns])
        if self.tb is not None:
            for k in self.scalars:
                if row.get(k) not in (None, ""):
                    self.tb.add_scalar(k, row[k], row["step"])


def tensorboard_writer(folder: Path):
    """A SummaryWriter logging to `folder`, or None when TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # not installed, or installed against a protobuf it cannot use
        return None
    return SummaryWriter(str(folder))


# -- training maths ---------------------------------------------------------------------------------
def ema_update(ema, model, step: int, decay: float) -> None:
    """ema <- lerp towards model by 1 - min(decay, (1 + step) / (10 + step)): a warmed-up
    exponential moving average of the parameters; buffers are copied."""
    import torch
    d = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.lerp_(p, 1 - d)
        for be, b in zip(ema.buffers(), model.buffers()):
            be.copy_(b)


def feature_matching(real: list, fake: list):
    """MelGAN's feature matching: mean L1 between the discriminators' intermediate features of real
    and generated audio (each discriminator's last output, its score, left out)."""
    import torch.nn.functional as F
    loss, n = 0.0, 0
    for rs, fs in zip(real, fake):
        for r, f in zip(rs[:-1], fs[:-1]):
            loss, n = loss + F.l1_loss(f, r.detach()), n + 1
    return loss / n


# -- model cards -------------------------------------------------------------------------------------
def read_json(path: Path | None) -> dict | None:
    """The JSON in `path`, or None when no path is given."""
    return json.loads(Path(path).read_text()) if path else None


def read_card(out: Path) -> dict:
    """The card.json already in `out`, or {}."""
    path = Path(out) / "card.json"
    return json.loads(path.read_text()) if path.exists() else {}


def evaluate_section(path: Path, mode: str) -> dict:
    """A card's "evaluate" entry from the JSON of `python -m melodymaker evaluate`: the command,
    the machine, the torch threads (OMP_NUM_THREADS) and the mode's summary and table."""
    import os
    report = json.loads(Path(path).read_text())
    return {"command": report["command"], "machine": report["machine"],
            "torch_threads": os.environ.get("OMP_NUM_THREADS", "default"),
            "summary": next(s for s in report["summary"] if s["mode"] == mode), "markdown": report["markdown"]}


def carry_figures(card: dict, old: dict, figures: dict) -> None:
    """Set each of `figures` (key -> value, None when not measured now) on `card`; a figure not
    measured now stays from the old card when that card is of the same checkpoint version."""
    same = old.get("version") == card.get("version")
    for key, value in figures.items():
        if value is not None:
            card[key] = value
        elif same and key in old:
            card[key] = old[key]


def save_card(out: Path, card: dict, markdown: str | None = None) -> None:
    """card.json (and README.md, when given) beside the checkpoint, each written whole or not at all."""
    for name, text in (("card.json", json.dumps(card, indent=1)), ("README.md", markdown)):
        if text is None:
            continue
        tmp = Path(out) / f"{name}.tmp"
        tmp.write_text(text)
        tmp.replace(Path(out) / name)


def markdown_training(card: dict, resumed: str) -> list[str]:
    """"## Training": the command, then `resumed` and each resume's command."""
    lines = ["## Training", "", f"    {card['command']}", ""]
    if card.get("resumed_with"):
        lines += [resumed, ""] + [f"    {c}" for c in card["resumed_with"]] + [""]
    return lines


def markdown_losses(card: dict) -> str:
    return "- final losses (mean of the last logged steps): " + ", ".join(
        f"{k} {v}" for k, v in (card.get("final_losses") or {}).items())


def markdown_benchmark(ev: dict) -> list[str]:
    """"## Benchmark": the evaluate command, the machine and its table."""
    return ["## Benchmark", "", f"    {ev['command']}", "",
            (f"on {ev['machine']['cpus']} CPU cores ({ev['machine']['platform']}), torch threads: "
             f"{ev.get('torch_threads', 'default')} (OMP_NUM_THREADS):"), "", ev["markdown"], ""]


def markdown_rows(title: str, table: dict | None) -> list[str]:
    """A card's table ({"what": how the rows were measured, "rows": [{column: value}], optionally
    "benchmark": a line after it}) as a "## title" section, the columns those of its first row;
    [] when there are no rows. The cards' `what_helped` tables are such."""
    if not table or not table.get("rows"):
        return []
    cols = list(table["rows"][0])
    lines = [f"## {title}", "", table.get("what", ""), "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in table["rows"]]
    return lines + ([""] + [table["benchmark"]] if table.get("benchmark") else []) + [""]


def markdown_notes(card: dict) -> list[str]:
    return ["## Notes", ""] + [f"- {n}" for n in card["notes"]] + [""] if card.get("notes") else []
