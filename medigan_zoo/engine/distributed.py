"""Sharding a generation run across processes started by ``torchrun`` (env WORLD_SIZE / RANK / LOCAL_RANK)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Optional

import torch


@dataclass
class Shard:
    """This process's share of a run: sample ``i`` belongs to rank ``i % world_size``."""

    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    initialized_here: bool = False
    comm_device: str = "cpu"  # where collectives' tensors live (the GPU under nccl)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def owns(self, index: int) -> bool:
        return index % self.world_size == self.rank

    def all_ok(self, ok: bool) -> bool:
        """True when every rank reports ``ok``."""
        if not self.distributed:
            return ok
        import torch.distributed as dist

        flag = torch.tensor([1 if ok else 0], device=self.comm_device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def total(self, *counts: int) -> tuple:
        """``counts`` summed over all ranks."""
        if not self.distributed:
            return counts
        import torch.distributed as dist

        values = torch.tensor(counts, dtype=torch.int64, device=self.comm_device)
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return tuple(int(v) for v in values.tolist())

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.initialized_here:
            import torch.distributed as dist

            dist.destroy_process_group()
            self.initialized_here = False


def env_world() -> tuple:
    """(world_size, rank, local_rank) from torchrun's environment (1, 0, 0 outside torchrun)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    rank = int(os.environ.get("RANK", "0") or 0)
    local = int(os.environ.get("LOCAL_RANK", str(rank)) or 0)
    return world, rank, local


def default_device(requested: Optional[str]) -> Optional[str]:
    """Under torchrun with CUDA and no explicit device, each process takes ``cuda:LOCAL_RANK``."""
    world, _, local = env_world()
    if requested is None and world > 1 and torch.cuda.is_available():
        return f"cuda:{local % torch.cuda.device_count()}"
    return requested


def join(device: torch.device, timeout_minutes: float = 60.0) -> Shard:
    """This process's shard; initializes torch.distributed (nccl on CUDA, gloo on CPU) when launched by torchrun."""
    world, rank, local = env_world()
    if world <= 1:
        return Shard()
    import torch.distributed as dist

    here = False
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo",
                                timeout=timedelta(minutes=timeout_minutes))
        here = True
    comm = str(device) if dist.get_backend() == "nccl" else "cpu"
    return Shard(world_size=dist.get_world_size(), rank=dist.get_rank(), local_rank=local, initialized_here=here,
                 comm_device=comm)
