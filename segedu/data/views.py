"""Views of a dataset: the same pictures, served differently, without copying anything.

* :class:`RandomCrops` cuts small training images out of large ones: 96x96 patches of the
  512x512 EM slices make a CPU run of chapter 5 possible, and many crops of few images are
  also a cheap augmentation. The crops are drawn once, from ``seed``, so every epoch and every
  run sees the same ones.
* :class:`Binary` turns a multi-class task into foreground vs background (chapter 6's binary
  tasks): ``Binary(Shapes(n, max_shapes=1))`` is a strongly imbalanced task, a single small
  object on a large background.

Both read their items from the wrapped dataset when asked, and keep its class names and number
of input channels so that they can stand wherever the dataset stood.
"""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from ..checks import check_int_at_least

__all__ = ["RandomCrops", "Binary"]


class RandomCrops(Dataset):
    """``n`` random ``size x size`` crops of a dataset's items (fixed by ``seed``): small training
    images cut from large ones, e.g. 96x96 patches of the 512x512 EM slices for a CPU run.

    Each crop picks an item at random, then a position inside it. By default every item has the
    size of the first one; for items that differ in size (your own images, an
    :class:`~segedu.data.ImageFolder`), pass ``sizes``: the ``(h, w)`` of every item, in order
    (``ImageFolder.sizes`` holds them), so that nothing is read to draw the crops.
    """

    def __init__(self, dataset, size: int, n: int, seed: int = 0, sizes=None):
        self.dataset, self.size, self.n = dataset, check_int_at_least("size", size, 1), check_int_at_least("n", n, 1)
        rng = np.random.default_rng(seed)
        if sizes is None:
            h, w = dataset[0][1].shape[-2:]
            if size > min(h, w):
                raise ValueError(f"crop size {size} is larger than the items ({h}x{w})")
        else:
            sizes = [(int(h), int(w)) for h, w in sizes]
            if len(sizes) != len(dataset):
                raise ValueError(f"sizes holds {len(sizes)} (h, w) pairs for a dataset of {len(dataset)} items")
            small = [i for i, (h, w) in enumerate(sizes) if min(h, w) < size]
            if small:
                h, w = sizes[small[0]]
                raise ValueError(f"crop size {size} is larger than {len(small)} item(s), "
                                 f"e.g. item {small[0]} ({h}x{w})")
        self.where = []
        for _ in range(n):
            i = int(rng.integers(len(dataset)))
            if sizes is not None:
                h, w = sizes[i]
            self.where.append((i, int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))))
        self.num_classes = getattr(dataset, "num_classes", None)
        self.in_channels = getattr(dataset, "in_channels", None)
        self.CLASSES = getattr(dataset, "CLASSES", None)

    @property
    def fixed_items(self) -> bool:  # the crops are fixed; their pixels are as fixed as the data set's
        return bool(getattr(self.dataset, "fixed_items", False))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int):
        i, y, x = self.where[k]
        s = self.size
        return tuple(t[..., y : y + s, x : x + s] for t in self.dataset[i])


class Binary(Dataset):
    """Foreground-vs-background view of a dataset: ``mask > 0`` becomes 1 (chapter 6's binary tasks).

    ``Binary(Shapes(n, max_shapes=1))`` is a strongly imbalanced task: a single small object.
    """

    CLASSES = ("background", "foreground")
    num_classes = 2

    def __init__(self, dataset):
        self.dataset = dataset
        self.in_channels = getattr(dataset, "in_channels", None)

    @property
    def fixed_items(self) -> bool:
        return bool(getattr(self.dataset, "fixed_items", False))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        image, mask, *rest = self.dataset[i]
        return (image, (mask > 0).long(), *rest)
