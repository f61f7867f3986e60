"""How ``fit`` reads its batches: from a ``DataLoader``, or from tensors already on the device.

A training step on a GPU takes a few milliseconds; building its batch item by item in Python
(``dataset[i]`` eight times, then stacking) can take longer, and then the GPU waits. When every
item of a data set is fixed — the same tensors on every read, as for the course's synthetic data
sets (their items are cached after the first read) — there is a cheaper way: read each item
once, stack them into a few tensors on the training device, and cut every batch out of those
with one indexing operation.

:func:`batches` does that when it can (``preload="auto"``: the data set says its items are fixed,
and they fit in a memory budget), and otherwise returns the usual ``DataLoader`` (with pinned
memory on CUDA, so that ``.to(device, non_blocking=True)`` overlaps the copy with computation).

Both give **the same batches in the same order**: :class:`DeviceBatches` draws from the same
generator exactly as a shuffling ``DataLoader`` does (one number for the loader's base seed, then
the permutation of ``RandomSampler``), so switching between them changes no result.

A data set declares fixed items with a class attribute ``fixed_items = True`` (views such as
:class:`~segedu.data.Binary` forward the answer of the data set they wrap). Anything random per
read (Cells' elastic augmentation) must not declare it.
"""

from __future__ import annotations

import math

import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

__all__ = ["DeviceBatches", "batches", "preload_tensors", "PRELOAD_BYTES"]

#: The most a preloaded data set may take: on the CPU (a second copy beside the data set's own
#: cache, so kept small: there the gain is only the Python of building each batch), and on a GPU
#: (also at most a fifth of its free memory).
PRELOAD_BYTES = {"cpu": 256 * 2**20, "cuda": 4 * 2**30}


class DeviceBatches:
    """Batches cut out of tensors that hold a whole data set (``tensors[k][i]`` = field ``k`` of
    item ``i``), in the order a ``DataLoader(shuffle=..., generator=generator)`` would give."""

    def __init__(self, tensors, batch_size: int, shuffle: bool, generator: torch.Generator):
        self.tensors, self.batch_size, self.shuffle, self.generator = tuple(tensors), batch_size, shuffle, generator
        self.n = len(self.tensors[0])

    def __len__(self) -> int:
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        # A DataLoader's iterator first draws its workers' base seed from the generator; draw it
        # too, so that the permutations below are the ones the DataLoader would have used.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        order = RandomSampler(range(self.n), generator=self.generator) if self.shuffle else SequentialSampler(range(self.n))
        device = self.tensors[0].device
        for idx in BatchSampler(order, self.batch_size, drop_last=False):
            index = torch.as_tensor(idx, device=device)
            yield tuple(t.index_select(0, index) for t in self.tensors)


def preload_tensors(data, device, max_bytes: int | None = None):
    """The whole data set as stacked tensors on ``device``, or ``None`` when it cannot be done:
    its items are not declared fixed, an item holds something other than tensors, or it would
    take more than ``max_bytes`` (default: :data:`PRELOAD_BYTES`)."""
    if not getattr(data, "fixed_items", False):
        return None
    device = torch.device(device)
    first = data[0]
    if not isinstance(first, (tuple, list)) or not all(torch.is_tensor(t) for t in first):
        return None
    if max_bytes is None:
        max_bytes = PRELOAD_BYTES.get(device.type, 0)
        if device.type == "cuda":
            max_bytes = min(max_bytes, torch.cuda.mem_get_info(device)[0] // 5)
    need = len(data) * sum(t.nelement() * t.element_size() for t in first)
    if need > max_bytes:
        return None
    items = [first] + [data[i] for i in range(1, len(data))]
    return tuple(torch.stack([item[k] for item in items]).to(device) for k in range(len(first)))


def batches(data, batch_size: int, shuffle: bool, seed: int, device, preload="auto"):
    """What ``fit`` iterates over: ``data`` itself if it is a ``DataLoader``; else
    :class:`DeviceBatches` when ``preload`` is ``"auto"`` (or ``True``) and the data set can be
    preloaded; else a ``DataLoader`` (pinned memory on CUDA). Either iterable has a ``generator``
    attribute, the shuffling generator ``fit`` saves and restores to resume a run."""
    if isinstance(data, DataLoader):
        return data
    if preload not in ("auto", True, False):
        raise ValueError(f"preload must be 'auto', True or False, got {preload!r}")
    device = torch.device(device)
    g = torch.Generator().manual_seed(seed)
    if preload:
        tensors = preload_tensors(data, device)
        if tensors is not None:
            return DeviceBatches(tensors, batch_size, shuffle, g)
        if preload is True:
            raise ValueError(f"preload=True, but {type(data).__name__} cannot be preloaded: its items must be fixed "
                             "(a class attribute fixed_items = True), tensors only, and fit the memory budget "
                             "(segedu.loading.PRELOAD_BYTES); use preload='auto' to fall back to a DataLoader")
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=0,
                      pin_memory=device.type == "cuda")
