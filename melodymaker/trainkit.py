"""What every trainer's command line shares: one --option per config dataclass field, and an
optional TensorBoard writer (the CSV log is always there; TensorBoard only when installed)."""
from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from pathlib import Path


def _int_list(s: str) -> list[int]:
    return [int(x) for x in s.split(",") if x.strip()]


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
