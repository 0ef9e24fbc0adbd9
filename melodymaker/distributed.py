"""Training on several processes: what the trainers share to run under torchrun with DDP.

    torchrun --standalone --nproc_per_node 2 -m diffusion_model.train --genres genres --out models/ddim

Under torchrun (which sets RANK, WORLD_SIZE, LOCAL_RANK) `setup()` joins the process group, gloo
on the CPU and nccl on CUDA with one GPU per local rank, and `wrap()` puts a model in
DistributedDataParallel, which makes every rank start from rank 0's weights and averages the
gradients, so every rank takes the same optimiser step and holds the same weights. Each rank trains
on its own shard of the library (`shard`) and draws its own noise (`rank_generator`); rank 0 alone
writes logs, checkpoints and cards (`Rank.main`). Decisions that end the loop (out of time, a
signal) are agreed by all ranks (`Rank.any`), or the others would wait for a step that never comes.
Run without torchrun, all of this is a no-op: one process, rank 0 of 1.

A trainer adopts it in a few lines: rank = distributed.setup(cfg.device); build the model on
rank.device; ddp = distributed.wrap(model, rank) for the forward passes that train (a model trained
through other methods: broadcast_weights once, average_gradients after each backward); the training
clips through distributed.shard(clips, rank); write files only `if rank.main`; stop on
`rank.any(flag)`; distributed.finish(rank, model) at the end (it checks the ranks agree).
"""
from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class Rank:
    """This process's place in the run: rank of world, and the device it trains on."""
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        """The one process that writes logs, checkpoints and cards."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def any(self, flag: bool) -> bool:
        """True on every rank when it is true on any (a collective: every rank must call it)."""
        if not self.distributed:
            return bool(flag)
        t = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Each value averaged over the ranks (a collective), for the one log line rank 0 writes."""
        if not self.distributed or not values:
            return values
        keys = sorted(values)
        t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return {k: float(v) / self.world for k, v in zip(keys, t.tolist())}

    def sum(self, value):
        """A number's or a tensor's sum over the ranks (a collective; float64 on the way)."""
        if not self.distributed:
            return value
        t = torch.as_tensor(value, dtype=torch.float64).to(self.device).clone()
        torch.distributed.all_reduce(t)
        return t.cpu() if isinstance(value, torch.Tensor) else float(t.item())


def setup(device: str = "auto") -> Rank:
    """Join torchrun's process group when there is one; the device this rank trains on."""
    from .trainkit import training_device
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Rank(device=training_device(device))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if device.startswith("cuda") and not cuda:
        print("CUDA is not available: training on the CPU (gloo)", file=sys.stderr)
    if cuda:
        torch.cuda.set_device(local)
    torch.distributed.init_process_group("nccl" if cuda else "gloo")
    here = Rank(rank, world, local, torch.device(f"cuda:{local}") if cuda else torch.device("cpu"))
    if here.main:
        print(f"distributed: {world} ranks ({'nccl' if cuda else 'gloo'})", file=sys.stderr)
    return here


def wrap(model: torch.nn.Module, rank: Rank, **ddp_options) -> torch.nn.Module:
    """The model in DistributedDataParallel (weights broadcast from rank 0 now, gradients averaged
    at every backward); the model itself when there is one rank."""
    if not rank.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel
    ids = [rank.local_rank] if rank.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, **ddp_options)


def broadcast_weights(model: torch.nn.Module, rank: Rank) -> None:
    """Rank 0's parameters and buffers on every rank (what DDP does when it wraps a model)."""
    if rank.distributed:
        for t in [*model.parameters(), *model.buffers()]:
            torch.distributed.broadcast(t.data, src=0)


def average_gradients(model: torch.nn.Module, rank: Rank) -> None:
    """What DDP does at each backward, by hand: every gradient averaged over the ranks. For a model
    trained through methods other than forward (RAVE's encode and decode), which DDP cannot hook.
    Call it between backward() and the optimiser's step; every rank must have gradients for the same
    parameters (it does when every rank runs the same code)."""
    if not rank.distributed:
        return
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if grads:
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
        flat = _flatten_dense_tensors(grads)
        torch.distributed.all_reduce(flat)
        flat /= rank.world
        for g, averaged in zip(grads, _unflatten_dense_tensors(flat, grads)):
            g.copy_(averaged)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The model inside a DistributedDataParallel wrapper (for its own methods and its weights)."""
    from torch.nn.parallel import DistributedDataParallel
    return model.module if isinstance(model, DistributedDataParallel) else model


def shard(items: Sequence, rank: Rank) -> list:
    """This rank's share: every world-th item from its rank on. SystemExit when a rank would get
    nothing (a library smaller than the number of ranks)."""
    mine = list(items[rank.rank::rank.world])
    if not mine:
        raise SystemExit(f"rank {rank.rank}: {len(items)} clips cannot be shared by {rank.world} ranks")
    return mine


def rank_generator(seed: int, rank: Rank, step: int = 0) -> torch.Generator:
    """A generator for this rank's batches and noise: rank 0 keeps `seed` (so one process draws
    what it always drew); other ranks draw their own, reproducibly from (seed, rank, step)."""
    if rank.rank == 0:
        return torch.Generator().manual_seed(seed)
    return torch.Generator().manual_seed((seed * 1_000_003 + rank.rank * 7_919 + step) % 2**63)


def checksum(model: torch.nn.Module) -> str:
    """A digest of every parameter and buffer, exact to the bit."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def finish(rank: Rank, *models: torch.nn.Module) -> None:
    """End the run: each rank prints its weights' checksum, all ranks check they agree (the
    point of DDP), then the process group closes. SystemExit when they differ."""
    if not rank.distributed:
        return
    mine = [checksum(m) for m in models]
    print(f"rank {rank.rank}/{rank.world}: weights {' '.join(mine)}", file=sys.stderr, flush=True)
    every: list = [None] * rank.world
    torch.distributed.all_gather_object(every, mine)
    torch.distributed.barrier()  # no rank tears gloo down while another still talks to it
    torch.distributed.destroy_process_group()
    if any(other != mine for other in every):
        raise SystemExit(f"rank {rank.rank}: the ranks' weights differ: {every}")


class NoLog:
    """The loss log of a rank that is not rank 0: writes nothing."""

    def write(self, row: dict) -> None:
        pass
