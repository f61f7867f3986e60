"""The data ``--data`` names: the course's datasets, or a folder of your own images and masks.

:func:`load_data` returns a training set, a validation set (or ``None``) and what the model must
know about the data (channels, classes). The synthetic datasets draw fresh images per seed; the
ISBI 2012 slices come with their own split; a folder (``folder:PATH``, see
:class:`segedu.data.ImageFolder`) is split by a seeded shuffle (``--val-fraction``).

Your images may differ in size, and a batch needs equal ones: ``--size N`` trains on random
``N x N`` crops. Without it, a folder of mixed sizes is an error that says so, rather than a
collate error deep inside the data loader.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch.utils.data import Subset

from .. import data as D
from .errors import CLIError

__all__ = ["DATASETS", "load_data"]

#: ``--data`` names (plus ``folder:PATH``).
DATASETS = ("shapes", "cells", "isbi2012")


def _crops(dataset, sizes, size: int, n: int, seed: int) -> D.RandomCrops:
    """``n`` random ``size x size`` crops of images that may differ in size (fixed by ``seed``), after
    saying which images are too small for ``--size``."""
    small = [i for i, (h, w) in enumerate(sizes) if min(h, w) < size]
    if small:
        base, index = (dataset.dataset, dataset.indices) if isinstance(dataset, Subset) else (dataset, None)
        names = [Path(base.files[index[i] if index is not None else i][0]).name if hasattr(base, "files") else str(i)
                 for i in small[:5]]
        raise CLIError(f"--size {size} is larger than {len(small)} image(s), e.g. {', '.join(names)} "
                       f"({sizes[small[0]][0]}x{sizes[small[0]][1]}); use a smaller --size")
    return D.RandomCrops(dataset, size, n, seed=seed, sizes=sizes)


def _split(n: int, val_fraction: float, seed: int):
    """``(training indices, validation indices)`` of ``n`` items, shuffled by ``seed``, both sorted."""
    if not 0 <= val_fraction < 1:
        raise CLIError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng([seed, 99]).permutation(n).tolist()
    n_val = min(int(round(n * val_fraction)), n - 1) if n > 1 else 0
    if val_fraction > 0 and n > 1:
        n_val = max(n_val, 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def load_data(data: str, *, size=None, n_train: int = 64, n_val: int = 16, val_fraction: float = 0.2,
              num_classes=None, binary_masks: bool = False, seed: int = 0):
    """``(train, val, info)`` for ``--data``; ``info`` has ``in_channels``, ``num_classes``, ``classes``.

    ``val`` may be ``None`` (a folder too small to split, or ``--val-fraction 0``).
    """
    if data == "shapes":
        base = D.Shapes(1)
        train, val = D.Shapes(n_train, size=size or 64, seed=seed), D.Shapes(n_val, size=size or 64, seed=seed + 10_000)
    elif data == "cells":
        base = D.Cells(1)
        train, val = D.Cells(n_train, size=size or 96, seed=seed), D.Cells(n_val, size=size or 96, seed=seed + 10_000)
    elif data == "isbi2012":
        train, val = D.ISBI2012(split="train"), D.ISBI2012(split="val")
        base = train
        if size:
            train = D.RandomCrops(train, size, n_train, seed=seed)
            val = D.RandomCrops(val, size, n_val, seed=seed + 10_000)
    elif data.startswith("folder:"):
        path = data[len("folder:"):]
        if not path:
            raise CLIError("--data folder:PATH needs a PATH (the folder holding images/ and masks/)")
        if num_classes is not None and num_classes < 2:
            raise CLIError(f"--num-classes must be at least 2 (the background and one class), got {num_classes}")
        folder = D.ImageFolder(path, num_classes=num_classes, binary=binary_masks)
        base = folder
        train_idx, val_idx = _split(len(folder), val_fraction, seed)
        sizes = folder.sizes
        if size:
            train = _crops(Subset(folder, train_idx), [sizes[i] for i in train_idx], size, n_train, seed)
            val = _crops(Subset(folder, val_idx), [sizes[i] for i in val_idx], size, n_val, seed + 10_000) \
                if val_idx else None
        else:
            if len(set(sizes)) > 1:
                listed = sorted(set(sizes))[:3]
                raise CLIError(f"the images in {path} differ in size ({', '.join(f'{h}x{w}' for h, w in listed)}, ...): "
                               "pass --size N to train on random N x N crops")
            train = Subset(folder, train_idx)
            val = Subset(folder, val_idx) if val_idx else None
    else:
        raise CLIError(f"unknown data {data!r}; choose one of {', '.join(DATASETS)} or folder:PATH")
    if num_classes is not None and not data.startswith("folder:") and num_classes != base.num_classes:
        raise CLIError(f"--num-classes is for folder data; {data} has {base.num_classes} classes")
    info = dict(in_channels=base.in_channels, num_classes=base.num_classes, classes=list(base.CLASSES))
    return train, val, info
