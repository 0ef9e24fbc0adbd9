"""How shipped checkpoints store weights: float16, or int8 with a float16 scale per output channel.

A state dict may hold, beside ordinary tensors, int8-quantised ones as two entries:
`<name>::int8` (the int8 values, same shape) and `<name>::scale` (float16, one per output
channel, broadcastable). `float_weights` turns either kind back into float32 tensors under their
own names, so a model's loader reads both without knowing which it got.
"""
from __future__ import annotations

from pathlib import Path

INT8, SCALE = "::int8", "::scale"


def float_weights(state: dict) -> dict:
    """A state dict with every floating-point tensor in float32 and int8 entries dequantised."""
    import torch
    out = {}
    for k, v in state.items():
        if k.endswith(SCALE):
            continue
        if k.endswith(INT8):
            name = k[: -len(INT8)]
            out[name] = v.float() * state[name + SCALE].float()
        else:
            out[k] = v.float() if torch.is_floating_point(v) else v
    return out


def half_weights(state: dict) -> dict:
    """A state dict with floating-point tensors in float16: half the size of a shipped checkpoint."""
    import torch
    return {k: v.detach().cpu().half() if torch.is_floating_point(v) else v for k, v in state.items()}


def int8_weights(state: dict, *, min_numel: int = 4096) -> dict:
    """A state dict with each floating-point weight of at least `min_numel` values and two or more
    dimensions in int8, scaled symmetrically per output channel (dimension 0); the rest in
    float16. A quarter of the float32 size; the rounding error is at most half a step of each
    channel's scale (max |w| / 127)."""
    import torch
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if torch.is_floating_point(v) and v.dim() >= 2 and v.numel() >= min_numel:
            w = v.float()
            scale = w.abs().amax(dim=tuple(range(1, w.dim())), keepdim=True).clamp(min=1e-12) / 127.0
            scale = scale.half()
            out[k + INT8] = torch.round(w / scale.float()).clamp(-127, 127).to(torch.int8)
            out[k + SCALE] = scale
        else:
            out[k] = v.half() if torch.is_floating_point(v) else v
    return out


def repack(path, *, to: str, key: str = "model") -> tuple[int, int]:
    """Rewrite the checkpoint at `path` with its `key` state dict stored as `to` ("int8" or
    "float16"), recording how in its "weights" entry; (bytes before, bytes after). The weights
    read back by `float_weights` differ from the original by the rounding of `to` only."""
    import torch

    from .trainkit import atomic_save
    path = Path(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get(key), dict):
        raise SystemExit(f"{path} has no state dict under {key!r}")
    before = path.stat().st_size
    weights = float_weights(ckpt[key])
    ckpt[key] = int8_weights(weights) if to == "int8" else half_weights(weights)
    ckpt["weights"] = {"storage": {key: to}, "note": "int8: symmetric, one float16 scale per output channel"
                       if to == "int8" else "float16"}
    atomic_save(path, ckpt)
    return before, path.stat().st_size


def main(argv: list[str] | None = None) -> int:
    import argparse
    p = argparse.ArgumentParser(prog="python -m melodymaker.weights",
                                description="Store a shipped checkpoint's weights as int8 or float16.")
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--to", choices=("int8", "float16"), required=True)
    p.add_argument("--key", default="model", help="the state dict inside the checkpoint (default: model)")
    args = p.parse_args(argv)
    if not args.checkpoint.is_file():
        p.error(f"no checkpoint at {args.checkpoint}")
    before, after = repack(args.checkpoint, to=args.to, key=args.key)
    print(f"{args.checkpoint}: {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB ({args.to})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
