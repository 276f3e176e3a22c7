"""torch.distributed for the trainer: one process per GPU (or per CPU worker), DDP, rank-0 I/O.

Two ways to start N processes; both end up in the same ``Trainer.train``:

- torchrun (also multi-node)::

      torchrun --standalone --nproc_per_node 2 -m vode_ros.cli.main train --config FILE --out runs/X
      torchrun --nnodes 2 --node_rank R --master_addr HOST --master_port 29500 --nproc_per_node 8 \\
          -m vode_ros.cli.main train --config FILE --out runs/X

  torchrun sets RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT; :func:`init_from_env`
  reads them.
- ``vode train --nproc N`` (one machine): :func:`launch` spawns N processes with
  torch.multiprocessing and sets the same variables (MASTER_ADDR 127.0.0.1, a free port).

Backend: ``train.backend: auto`` = nccl when the process has a CUDA device, else gloo. Each
process takes ``train.batch_size`` snippets per step (the global batch is batch_size x world
size); the data order is split across ranks like DistributedSampler
(``vode_training.data.sampler``); DDP averages the gradients, so all ranks keep identical
weights. Only rank 0 shows the progress bar, writes TensorBoard and checkpoints.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def choose_device(requested: str, local_rank: int = 0) -> torch.device:
    """train.device -> torch.device; 'auto' = cuda:<local rank> when CUDA is available, else cpu."""
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("train.device: cuda, but torch sees no CUDA device")
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device(requested)


def init_from_env(backend: str = "auto", device: torch.device | None = None) -> DistInfo:
    """Join the process group described by the torchrun environment (no-op for a single process)."""
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if backend == "auto":
        backend = "nccl" if (device is not None and device.type == "cuda") else "gloo"
    if not dist.is_initialized():
        kw: dict[str, Any] = {}
        if backend == "nccl" and device is not None and device.type == "cuda":
            torch.cuda.set_device(device)
            kw["device_id"] = device
        dist.init_process_group(backend=backend, rank=rank, world_size=world, **kw)
    return DistInfo(rank, world, local, backend)


def barrier(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.barrier()


def all_finite(value: torch.Tensor, info: DistInfo) -> bool:
    """True when ``value`` is finite on every rank (so all ranks stop together on a NaN)."""
    ok = torch.isfinite(value.detach()).all().to(torch.float32).reshape(1)
    if info.enabled:
        dist.all_reduce(ok, op=dist.ReduceOp.MIN)
    return bool(ok.item() > 0)


def mean_over_ranks(value: float, info: DistInfo, device: torch.device) -> float:
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world_size


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """[obj of rank 0, obj of rank 1, ...] on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple, result_dir: str | None) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    out = fn(*args)
    if result_dir is not None:
        torch.save(out, os.path.join(result_dir, f"rank{rank}.pt"))


def launch(fn: Callable[..., Any], nprocs: int, args: tuple = (), result_dir: str | None = None) -> None:
    """Run ``fn(*args)`` in ``nprocs`` processes (torch.multiprocessing spawn) as one process group.

    ``fn`` must be importable (module level). With ``result_dir`` each rank's return value is
    saved there as rank<R>.pt (torch.save).
    """
    import torch.multiprocessing as mp

    port = free_port()
    mp.spawn(_worker, args=(nprocs, port, fn, args, result_dir), nprocs=nprocs, join=True)
