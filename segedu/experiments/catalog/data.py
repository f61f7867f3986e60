"""Dataset views the named experiments need: crops paired so two networks see the same supervised
pixels, mosaics that keep objects at their scale on larger images, and the ISBI slices with the
membrane as the foreground class.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ...data import ISBI2012

__all__ = ["PairedCrops", "Mosaic", "DropWeights", "MembraneForeground", "isbi2012_splits"]


# ---------------------------------------------------------------------------------------------
# Data helpers
# ---------------------------------------------------------------------------------------------

class PairedCrops(Dataset):
    """``n`` crops of ``out_size`` x ``out_size`` (plus ``margin`` pixels of context on each side)
    at positions drawn once from ``seed``: :meth:`with_margin` gives the same crops with another
    margin, so a valid-padding network (which needs ``margin`` pixels of context on each side to
    predict ``out_size``) and a same-padding network are supervised on exactly the same pixels.

    Positions keep ``max_margin`` pixels from the image border, so any margin up to it fits.
    Items are ``(image, mask, ...)`` cut alike from the wrapped dataset's items.
    """

    def __init__(self, dataset, out_size: int, n: int, seed: int = 0, max_margin: int = 0, margin: int = 0):
        if not 0 <= margin <= max_margin:
            raise ValueError(f"margin must be in 0..max_margin={max_margin}, got {margin}")
        self.dataset, self.out_size, self.n, self.seed = dataset, int(out_size), int(n), seed
        self.max_margin, self.margin = int(max_margin), int(margin)
        h, w = dataset[0][1].shape[-2:]
        free_h, free_w = h - out_size - 2 * max_margin, w - out_size - 2 * max_margin
        if min(free_h, free_w) < 0:
            raise ValueError(f"{out_size} + 2 x {max_margin} does not fit into the items ({h}x{w})")
        rng = np.random.default_rng(seed)
        self.where = [(int(rng.integers(len(dataset))), max_margin + int(rng.integers(free_h + 1)),
                       max_margin + int(rng.integers(free_w + 1))) for _ in range(n)]
        self.num_classes = getattr(dataset, "num_classes", None)
        self.in_channels = getattr(dataset, "in_channels", None)
        self.CLASSES = getattr(dataset, "CLASSES", None)

    def with_margin(self, margin: int) -> "PairedCrops":
        """The same crops, with ``margin`` pixels of context on each side."""
        other = object.__new__(PairedCrops)
        other.__dict__.update(self.__dict__)
        if not 0 <= margin <= self.max_margin:
            raise ValueError(f"margin must be in 0..max_margin={self.max_margin}, got {margin}")
        other.margin = int(margin)
        return other

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int):
        i, y, x = self.where[k]
        m, s = self.margin, self.out_size
        return tuple(t[..., y - m : y + s + m, x - m : x + s + m] for t in self.dataset[i])


class Mosaic(Dataset):
    """Item ``i`` is the ``k x k`` tiling of items ``i*k*k .. (i+1)*k*k - 1`` of ``dataset``: large
    images whose objects keep the scale of the small ones (a :class:`~segedu.data.Shapes` shape's
    size is a fraction of its image, so ``Shapes(size=96)`` would hold larger shapes, not more)."""

    def __init__(self, dataset, n: int, k: int = 2):
        if n * k * k > len(dataset):
            raise ValueError(f"{n} mosaics of {k}x{k} need {n * k * k} items, the dataset has {len(dataset)}")
        self.dataset, self.n, self.k = dataset, int(n), int(k)
        for name in ("num_classes", "in_channels", "CLASSES"):
            setattr(self, name, getattr(dataset, name, None))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} out of range for a Mosaic of length {self.n}")
        k = self.k
        items = [self.dataset[i * k * k + j] for j in range(k * k)]
        return tuple(torch.cat([torch.cat([items[r * k + c][t] for c in range(k)], dim=-1) for r in range(k)], dim=-2)
                     for t in range(len(items[0])))


class DropWeights(Dataset):
    """``(image, mask)`` of a dataset whose items are ``(image, mask, weight)``: the same pixels
    trained with the plain loss."""

    def __init__(self, dataset):
        self.dataset = dataset
        for name in ("num_classes", "in_channels", "CLASSES"):
            setattr(self, name, getattr(dataset, name, None))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        return tuple(self.dataset[i][:2])


class MembraneForeground(Dataset):
    """ISBI 2012 with the labels swapped: 1 = membrane (the foreground), 0 = cell interior.

    :class:`~segedu.data.ISBI2012` labels the membrane 0 and the cell interiors 1, so a row's
    ``dice`` and ``foreground_iou`` (class 1 and up) would score the cell interiors, the large
    easy class (~80% of the pixels). Through this view they score the membrane, the class the
    task is about."""

    CLASSES = ("cell", "membrane")
    num_classes = 2

    def __init__(self, dataset):
        if tuple(getattr(dataset, "CLASSES", ())) != ("membrane", "cell"):
            raise ValueError("expected a dataset with CLASSES ('membrane', 'cell'), "
                             f"got {getattr(dataset, 'CLASSES', None)!r}")
        self.dataset, self.in_channels = dataset, getattr(dataset, "in_channels", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        image, mask, *rest = self.dataset[i]
        return (image, 1 - mask, *rest)


def isbi2012_splits(experiment: str):
    """``(train, val)`` of ISBI 2012 from ``$SEGEDU_DATA`` (or the per-user cache), with the
    membrane as class 1 (:class:`MembraneForeground`), never downloading; a clear error when the
    slices are absent."""

    try:
        return (MembraneForeground(ISBI2012(split="train", download=False)),
                MembraneForeground(ISBI2012(split="val", download=False)))
    except (FileNotFoundError, OSError, ValueError) as e:
        raise FileNotFoundError(
            f"experiment {experiment!r} needs the ISBI 2012 slices (real data), which were not found: {e}. "
            "Set SEGEDU_DATA to the folder that holds isbi2012-em/, or fetch them once with "
            "segedu.data.ISBI2012(download=True)") from None
