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

* :func:`resized` is the one eager view: every frame of a split scaled down once and stacked in
  memory (chapters 2 and 3 train on CamVid at a quarter of its size this way), with the
  full-size labels kept for measuring at the size the labels were drawn.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..checks import check_int_at_least

__all__ = ["RandomCrops", "Binary", "resized", "Resized"]


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


class Resized(NamedTuple):
    images: torch.Tensor         # float32 [N, C, h, w]
    masks: torch.Tensor          # int64 [N, h, w]
    full_masks: torch.Tensor | None  # uint8 [N, H, W]: the labels at their own size (keep_full=True)
    counts: torch.Tensor         # int64 [num_classes + 1]: pixels of each label at full size (the last: unlabelled)


def resized(dataset, size, keep_full: bool = False) -> Resized:
    """Every item of ``dataset`` scaled to ``size = (h, w)`` and stacked: a split held in memory.

    Images are resized bilinearly with antialiasing (a plain bilinear shrink by 2 or more skips
    pixels and aliases thin poles and signs); masks by nearest neighbour, because labels are
    categories and averaging two of them would invent a third. ``counts`` are taken at full size.
    """
    if not isinstance(size, (tuple, list)) or len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(f"size must be (height, width) in pixels, got {size!r}")
    num_classes = getattr(dataset, "num_classes", None)
    if num_classes is None:
        raise ValueError(f"{type(dataset).__name__} has no num_classes; resized() counts the pixels of each class")
    images, masks, full = [], [], []
    counts = torch.zeros(num_classes + 1, dtype=torch.long)
    for k in range(len(dataset)):
        image, mask = dataset[k]
        images.append(F.interpolate(image[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0])
        masks.append(F.interpolate(mask[None, None].float(), size=size, mode="nearest")[0, 0].long())
        counts += torch.bincount(mask.flatten(), minlength=num_classes + 1)[: num_classes + 1]
        if keep_full:
            full.append(mask.to(torch.uint8))
    return Resized(torch.stack(images), torch.stack(masks), torch.stack(full) if keep_full else None, counts)
