"""Data-parallel training under ``torchrun`` (issue #15), on top of ``torch.distributed`` and the recipe's own engine.

``medigan-zoo train`` is one process. Under ``torchrun --nproc_per_node N -m medigan_zoo train ...`` (``WORLD_SIZE``
> 1) :func:`from_environment` joins the process group (gloo on CPU, nccl on CUDA, one device per ``LOCAL_RANK``) and
:func:`distribute` adapts the engine the recipe's ``configs/train.json`` built (no second training loop):

* every network a recipe optimizer optimises (an ``nn.Module`` attribute of the engine or of its
  ``iteration_update`` object: generator, discriminator / critic, diffusion UNet) is wrapped in
  ``DistributedDataParallel`` (gradients averaged over the ranks) after its batch norms are made global
  (:class:`torch.nn.SyncBatchNorm` on CUDA; on CPU, where torch's has no kernel, :class:`GlobalBatchNorm`);
* the training data loader keeps the recipe's sampler, wrapped in :class:`ShardedSampler` (a
  ``DistributedSampler``, ``set_epoch`` each epoch), with a per-rank batch of the recipe's ``batch_size`` divided by
  the world size (:func:`per_rank_batch`).

Invariant that makes N processes equal one process with the same global batch: every rank makes every random draw
of the global batch from the same, identically seeded RNG and keeps its own rows (rank, rank + N, ...): the sampler
(:class:`ShardedSampler`) and the draws inside a training step (:func:`draw`: latents, random labels, timesteps,
noise). Losses are means over the rank's batch, so DDP's averaged gradient is the global batch's mean gradient.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Dict, Iterator, List, Optional

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from medigan_zoo.core.errors import ZooError

#: how long ranks wait for each other at a collective (rank 0's export and evaluation run while the others wait)
TIMEOUT = timedelta(hours=2)


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun job."""

    rank: int  #: global rank (0 writes everything)
    local_rank: int  #: rank on this node (picks the GPU)
    world_size: int
    backend: str  #: "gloo" (CPU) or "nccl" (CUDA)
    device: str  #: torch device of this rank, e.g. "cpu" or "cuda:1"

    @property
    def main(self) -> bool:
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise ZooError(f"{name}={value!r} is not a whole number; run under torchrun or unset it.") from None


def world_size() -> int:
    """torchrun's ``WORLD_SIZE`` (1 when unset)."""
    return _env_int("WORLD_SIZE", 1)


def _group() -> bool:
    """True when a process group with more than one rank is up."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return dist.get_rank() if _group() else 0


def active_world_size() -> int:
    """Ranks of the running process group (1 without one)."""
    return dist.get_world_size() if _group() else 1


def is_main() -> bool:
    """True for rank 0 and for a single process: the one that logs and writes files."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (nothing without a process group)."""
    if _group():
        dist.barrier()


def from_environment(device: Optional[str] = None) -> Optional[DistContext]:
    """None for a single process; under torchrun with several processes, join the process group (env:// from
    torchrun) and return this rank's context. ``device`` "cpu" forces gloo on CPU; otherwise CUDA (nccl,
    ``cuda:LOCAL_RANK``) when available."""
    size = world_size()
    if size <= 1:
        return None
    missing = [name for name in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(name)]
    if missing:
        raise ZooError(f"WORLD_SIZE={size} but {', '.join(missing)} unset: start data-parallel training with "
                       "torchrun (`torchrun --nproc_per_node N -m medigan_zoo train ...`), or unset WORLD_SIZE.")
    local_rank = _env_int("LOCAL_RANK", 0)
    wants_cpu = device is not None and str(device).strip().lower().startswith("cpu")
    cuda = torch.cuda.is_available() and not wants_cpu
    if device is not None and str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ZooError(f"--device {device}: CUDA is not available on this node; use --device cpu (gloo).")
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise ZooError(f"LOCAL_RANK={local_rank} but this node has {torch.cuda.device_count()} GPUs; start at "
                           "most that many processes per node (--nproc_per_node).")
        torch.cuda.set_device(local_rank)
    backend = "nccl" if cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=TIMEOUT)
    return DistContext(rank=dist.get_rank(), local_rank=local_rank, world_size=dist.get_world_size(),
                       backend=backend, device=f"cuda:{local_rank}" if cuda else "cpu")


def shutdown() -> None:
    """Leave the process group (after the last barrier)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


# ------------------------------------------------------------------------------------------- global draws, data
def per_rank_batch(global_batch: int, size: int) -> int:
    """The recipe's ``batch_size`` is the global batch; each of ``size`` ranks takes an equal share."""
    if global_batch < size or global_batch % size:
        raise ZooError(f"batch_size {global_batch} does not split evenly over {size} processes; pass "
                       f"--batch_size a multiple of {size} (each rank takes batch_size / {size}) or change "
                       "--nproc_per_node / --nnodes.")
    return global_batch // size


def draw(n: int, sample: Callable[[int], Any]) -> Any:
    """``n`` rows of a random draw for this rank's batch: ``sample(n * world)[rank::world]``, the rows of the global
    batch's draw that belong to this rank (the rows :class:`ShardedSampler` gives it). A single process gets
    ``sample(n)`` (the same draw as before). ``sample(m)`` must return a tensor of ``m`` rows drawn from the shared,
    identically seeded RNG, e.g. ``lambda m: torch.randn(m, latent, device=device)``."""
    size = active_world_size()
    if size == 1:
        return sample(n)
    return sample(n * size)[rank()::size]


class ShardedSampler(DistributedSampler):
    """``DistributedSampler`` over another sampler: every rank iterates ``sampler`` (the recipe's, drawing from the
    same seeded RNG, so the same indices on every rank) and keeps positions ``rank, rank + N, ...`` of the first
    ``N * (len // N)`` indices. Consecutive per-rank batches of ``B / N`` then together hold exactly the recipe's
    global batch of ``B``."""

    def __init__(self, sampler: Any, num_replicas: int, rank: int):  # no super().__init__: no dataset to split
        self.sampler = sampler
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self.num_samples = len(sampler) // self.num_replicas
        self.total_size = self.num_samples * self.num_replicas
        self.shuffle = False
        self.drop_last = True

    def __iter__(self) -> Iterator[int]:
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(self.epoch)
        return itertools.islice(iter(self.sampler), self.rank, self.total_size, self.num_replicas)

    def __len__(self) -> int:
        return self.num_samples


# ------------------------------------------------------------------------------------------------- batch norm
class _AllReduceSum(torch.autograd.Function):
    """Differentiable sum over the ranks: the gradient of each rank's input is the sum of all ranks' gradients."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, group: Any) -> torch.Tensor:
        ctx.group = group
        out = x.clone()
        dist.all_reduce(out, group=group)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> Any:
        grad = grad.clone()
        dist.all_reduce(grad, group=ctx.group)
        return grad, None


class GlobalBatchNorm:
    """Mixin for torch's ``BatchNorm{1,2,3}d``: in training, mean and (biased) variance over the global batch of all
    ranks (two differentiable ``all_reduce`` of sums), running statistics updated with the
    global unbiased variance, as one process with the whole batch does. Works on gloo/CPU, where
    ``nn.SyncBatchNorm`` raises. Without a process group, or in eval mode, the plain batch norm."""

    group: Any = None

    def forward(self, x: Any) -> Any:  # noqa: D102
        bn: Any = self
        if not (bn.training and active_world_size() > 1):
            return super().forward(x)  # type: ignore[misc]
        bn._check_input_dim(x)
        dims = [0] + list(range(2, x.dim()))
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = torch.tensor([float(x.numel() // x.shape[1])], device=x.device, dtype=x.dtype)
        total = _AllReduceSum.apply(torch.cat([x.sum(dims), count]), self.group)
        n = total[-1]
        mean = total[:-1] / n
        centred = x - mean.reshape(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims), self.group) / n
        if bn.track_running_stats:
            with torch.no_grad():
                bn.num_batches_tracked.add_(1)
                momentum = (1.0 / float(bn.num_batches_tracked) if bn.momentum is None else bn.momentum)
                bn.running_mean.mul_(1 - momentum).add_(mean.detach() * momentum)
                bn.running_var.mul_(1 - momentum).add_(var.detach() * (n / (n - 1)) * momentum)
        out = centred * torch.rsqrt(var + bn.eps).reshape(shape)
        if bn.affine:
            out = out * bn.weight.reshape(shape) + bn.bias.reshape(shape)
        return out


_GLOBAL_CLASSES: Dict[type, type] = {}


def make_batchnorm_global(module: Any, cuda: bool) -> Any:
    """``module`` with every batch norm computing its statistics over the global batch; parameters and buffers stay
    the same tensors (the recipe's optimizers, EMA and checkpoint keep pointing at them). CUDA: torch's
    ``SyncBatchNorm.convert_sync_batchnorm``; CPU: the layers' class becomes a :class:`GlobalBatchNorm` subclass."""
    if cuda:
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)
             and not isinstance(m, (GlobalBatchNorm, nn.SyncBatchNorm))]
    if norms:
        group = dist.new_group(backend="gloo")  # its own group: its collectives run inside DDP's backward
        for m in norms:
            cls = type(m)
            if cls not in _GLOBAL_CLASSES:
                _GLOBAL_CLASSES[cls] = type(f"Global{cls.__name__}", (GlobalBatchNorm, cls), {})
            m.__class__ = _GLOBAL_CLASSES[cls]
            m.group = group
    return module


# --------------------------------------------------------------------------------------------- the engine
def unwrap(module: Any) -> Any:
    """The network inside a ``DistributedDataParallel`` wrapper (itself otherwise). A step that only needs a
    network's output, not gradients of its parameters (the frozen discriminator in the generator step), calls the
    unwrapped one so DDP expects no gradients from it."""
    return module.module if isinstance(module, DistributedDataParallel) else module


def _holders(engine: Any) -> List[Any]:
    """The engine and its iteration_update object (WGAN-GP keeps the critic there)."""
    update = getattr(engine, "_process_function", None)
    return [engine] + ([update] if update is not None and hasattr(update, "__dict__") else [])


def distribute(engine: Any, ctx: DistContext) -> List[str]:
    """Make the recipe's engine data-parallel (see the module docstring); returns the attributes wrapped."""
    from ignite.engine import Events

    loader = engine.data_loader
    if not isinstance(loader, DataLoader) or loader.batch_size is None:
        raise ZooError("data-parallel training needs the recipe's train_dataloader to be a torch DataLoader with a "
                       "batch_size (no batch_sampler).")
    sampler = ShardedSampler(loader.sampler, ctx.world_size, ctx.rank)
    engine.data_loader = DataLoader(
        loader.dataset, batch_size=per_rank_batch(int(loader.batch_size), ctx.world_size), sampler=sampler,
        num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
        drop_last=loader.drop_last, timeout=loader.timeout, worker_init_fn=loader.worker_init_fn,
        generator=loader.generator, persistent_workers=loader.persistent_workers,
        prefetch_factor=loader.prefetch_factor if loader.num_workers else None)
    engine.add_event_handler(Events.EPOCH_STARTED, lambda e: sampler.set_epoch(e.state.epoch))

    optimised: set = set()
    for holder in _holders(engine):
        for value in vars(holder).values():
            if isinstance(value, torch.optim.Optimizer):
                optimised.update(id(p) for group in value.param_groups for p in group["params"])
    cuda = ctx.device.startswith("cuda")
    wrapped: Dict[int, Any] = {}
    names = []
    for holder in _holders(engine):
        for name, value in list(vars(holder).items()):
            if not isinstance(value, torch.nn.Module) or isinstance(value, DistributedDataParallel):
                continue
            if not any(id(p) in optimised for p in value.parameters()):
                continue
            if id(value) not in wrapped:
                module = make_batchnorm_global(value, cuda)
                wrapped[id(value)] = DistributedDataParallel(
                    module, device_ids=[ctx.local_rank] if cuda else None,
                    output_device=ctx.local_rank if cuda else None)
            setattr(holder, name, wrapped[id(value)])
            names.append(name)
    if not names:
        raise ZooError("data-parallel training found no network that the recipe's optimizers optimise on its "
                       "trainer or iteration_update; nothing to synchronise.")
    engine._process_function = GlobalMeanOutput(engine._process_function)
    return names


class GlobalMeanOutput:
    """An ``iteration_update`` whose scalar outputs (floats, 0-d tensors of a dict output) are averaged over the
    ranks, before any handler sees them: the logged losses are those of the global batch (the mean of equal shards'
    means), as in a single process."""

    def __init__(self, update: Callable[[Any, Any], Any]):
        self.update = update

    def __call__(self, engine: Any, batch: Any) -> Any:
        output = self.update(engine, batch)
        if not isinstance(output, dict):
            return output
        keys = [k for k, v in output.items() if isinstance(v, float) or (torch.is_tensor(v) and v.dim() == 0)]
        if not keys:
            return output
        values = torch.tensor([float(output[k]) for k in keys], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            values = values.to(torch.cuda.current_device())
        dist.all_reduce(values)
        values = (values / dist.get_world_size()).cpu()
        averaged = dict(output)
        for key, value in zip(keys, values.tolist()):
            averaged[key] = value if isinstance(output[key], float) else torch.as_tensor(value).to(output[key])
        return averaged
