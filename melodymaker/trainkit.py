"""What every trainer's command line shares: one --option per config dataclass field, and an
optional TensorBoard writer (the CSV log is always there; TensorBoard only when installed)."""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path


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


def tensorboard_writer(folder: Path):
    """A SummaryWriter logging to `folder`, or None when TensorBoard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # not installed, or installed against a protobuf it cannot use
        return None
    return SummaryWriter(str(folder))


def load_clips(genres_dir: str | Path, sr: int, *, holdout: int, per_genre: int = 0,
               min_samples: int = 1) -> tuple[list, list, dict]:
    """Every readable clip of a genres/ folder at `sr`, as (genre index, float32 audio), split per
    genre into training clips and the last `holdout` of each genre (by name; none when a genre has
    no more than that). `per_genre` caps the clips of each genre (0: all); a clip that cannot be
    decoded or is shorter than `min_samples` is skipped and named in the library facts (what a
    model card records). SystemExit when nothing is left to train on."""
    import tempfile

    from .audio import load
    from .classify.card import library_facts
    from .errors import AudioDecodeError
    from .library import Library
    from .options import GENRES
    with tempfile.TemporaryDirectory() as cache:
        library = Library(Path(genres_dir), Path(cache)).scan()
    train, held, used, unreadable = [], [], {}, []
    for gi, genre in enumerate(GENRES):
        clips = sorted(library.clips.get(genre, []), key=lambda c: c.name)
        if per_genre:
            clips = clips[:per_genre]
        loaded = []
        for c in clips:
            try:
                y = load(c.path, sr)
            except AudioDecodeError as e:
                unreadable.append({"path": str(c.path), "reason": e.message})
                continue
            if len(y) < min_samples:
                unreadable.append({"path": str(c.path), "reason": "shorter than one training window"})
                continue
            loaded.append((gi, y))
        n_held = holdout if len(loaded) > holdout else 0
        train += loaded[: len(loaded) - n_held]
        held += loaded[len(loaded) - n_held:]
        used[genre] = clips
    if not train:
        raise SystemExit(f"no readable audio clips of at least {min_samples} samples in {genres_dir}")
    facts = library_facts(Path(genres_dir).resolve(), used, library, unreadable)
    facts.update({"train_clips": len(train), "held_out_clips": len(held)})
    return train, held, facts


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


# -- what the GAN trainers (MEL-GAN, RAVE) share --------------------------------------------------
def training_device(name: str):
    """torch.device(name), or the CPU when "cuda" is asked for and there is none."""
    import torch
    return torch.device(name if name != "cuda" or torch.cuda.is_available() else "cpu")


def load_resume(state_path: Path, cfg, run_keys: tuple, *, fresh: bool = False) -> dict | None:
    """The saved training state, or None (none saved, or `fresh`). As in nanoGPT, the architecture
    and data settings of a resumed run come from the state: every config field not in `run_keys`
    (the schedule, which a resume may change) is set on `cfg` from it."""
    import torch
    if fresh or not state_path.exists():
        return None
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    for k, v in state["config"].items():
        if k not in run_keys:
            setattr(cfg, k, v)
    return state


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


def feature_matching(real: list, fake: list):
    """MelGAN's feature matching: mean L1 between the discriminators' intermediate features of real
    and generated audio (each discriminator's last output, its score, left out)."""
    import torch.nn.functional as F
    loss, n = 0.0, 0
    for rs, fs in zip(real, fake):
        for r, f in zip(rs[:-1], fs[:-1]):
            loss, n = loss + F.l1_loss(f, r.detach()), n + 1
    return loss / n
