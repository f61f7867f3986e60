"""Data-parallel training on several processes, with PyTorch's own engine.

``torchrun --nproc_per_node=N -m segedu train ...`` starts ``N`` copies of the same program and
tells each one who it is through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``). Data parallelism then needs three things, all PyTorch's:

* a process group (:func:`init_from_env`): NCCL between GPUs, gloo between CPU processes;
* ``DistributedSampler``: each process reads its own ``1/N`` of every global batch;
* ``DistributedDataParallel`` (:func:`wrap`): after every backward pass the gradients are
  averaged over the processes, so every copy of the model takes the same optimizer step.

Averaging the per-process mean losses' gradients is the gradient of the global batch's mean loss
(the shares have equal sizes), so N processes with ``B / N`` images each train the same run as one
process with ``B`` images — up to floating-point rounding — *if* the model has no BatchNorm:
BatchNorm normalises with the statistics of the process's own ``B / N`` images (convert the
model with ``torch.nn.SyncBatchNorm.convert_sync_batchnorm`` to share them, at a cost).

:func:`segedu.train.fit` takes ``distributed=True`` and uses this module.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from .runtime import resolve_device

__all__ = ["launched", "init_from_env", "rank_and_world_size", "is_main", "sharded_loader", "wrap", "unwrap",
           "all_sum", "barrier", "cleanup", "strip_module_prefix"]


def launched() -> bool:
    """True when this process was started by ``torchrun`` (or similar) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device="auto") -> torch.device:
    """Join the process group described by torchrun's variables; return this process's device.

    CUDA: one GPU per process (``cuda:LOCAL_RANK``) and the NCCL backend. Otherwise the CPU and
    gloo. Apple's MPS cannot be shared between processes.
    """
    dev = resolve_device(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dev.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"process {local_rank} needs GPU {local_rank} but only {torch.cuda.device_count()} "
                             "are visible; use --nproc_per_node <= the number of GPUs")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    elif dev.type == "cpu":
        backend = "gloo"
    else:
        raise ValueError(f"distributed training runs on CUDA GPUs or on the CPU, not on {dev.type}; pass --device cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return dev


def rank_and_world_size() -> tuple[int, int]:
    """``(rank, world size)`` of the default process group, ``(0, 1)`` without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """Rank 0 (or no process group): the one process that prints and writes files."""
    return rank_and_world_size()[0] == 0


def sharded_loader(data, batch_size: int, *, seed: int, rank: int, world_size: int) -> DataLoader:
    """This process's share of the data: ``batch_size`` images per step, reshuffled every epoch.

    With ``world_size`` processes, global batch ``b`` is the same set of images as batch ``b`` of a
    one-process loader with ``batch_size * world_size`` (``DistributedSampler`` deals the epoch's
    permutation out round-robin), so one process reproduces an N-process run's data order.
    Call ``loader.sampler.set_epoch(epoch)`` before each epoch (``fit`` does).
    """
    sampler = DistributedSampler(data, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    return DataLoader(data, batch_size=batch_size, sampler=sampler, num_workers=0)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)``: gradients are averaged over the processes in backward."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The model inside a ``DistributedDataParallel`` wrapper (the model itself otherwise)."""
    return model.module if hasattr(model, "module") and isinstance(model, nn.parallel.DistributedDataParallel) else model


def all_sum(values, device) -> list:
    """Sum numbers over all processes (every process gets the sums)."""
    t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=device)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def strip_module_prefix(state_dict: dict) -> dict:
    """Keys saved from a ``DistributedDataParallel`` wrapper start with ``module.``; a plain model's do not."""
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return state_dict
