"""Synthetic data: scenes generated on the fly, so every chapter runs offline and reproducibly.

* :class:`Shapes` (chapter 1): circles, squares and triangles on a textured background. Their
  colours tell nothing about their class, so a model must look at outlines: a segmentation
  problem, not a colour lookup.
* :class:`Cells` (chapter 5): touching cells separated by gaps of one or two pixels, with their
  instance labels: the situation the U-Net paper's weight map was invented for.
* :func:`elastic_deform` (chapter 5): the paper's augmentation, a smooth random deformation
  applied alike to an image and its labels.

Item ``i`` of a dataset depends only on ``(seed, i)``: nothing is downloaded, and two runs see
the same pixels. So an item can be generated once, on its first read, and kept (as tensors): a
read after that costs a copy instead of milliseconds of NumPy, and a training run no longer waits
for its data (``python -m segedu bench fit_throughput``). Caching changes no value: the cached item
*is* the item. ``cache=False`` generates on every read (a data set too large for memory).
Cells' elastic augmentation is new on every read, so only its undeformed cells are cached.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checks import check_int_at_least
from ..losses import unet_weight_map

__all__ = ["Shapes", "Cells", "elastic_deform"]


class Shapes(Dataset):
    """Synthetic multi-class scenes: circles, squares and triangles on a textured background.

    Classes: ``0`` background, ``1`` circle, ``2`` square, ``3`` triangle.

    The colours of the shapes are drawn from the *same* distribution for every class and the
    background carries a random low-frequency texture plus pixel noise, so a pixel's class cannot
    be read off its own colour: a model has to look at the neighbourhood (the shape's outline).
    That is exactly what makes it a segmentation problem rather than a colour lookup.

    Sample ``i`` depends only on ``(seed, i)``, so datasets are reproducible and cheap: an image
    is generated on its first read and kept (``cache``), nothing is downloaded.

    Args:
        n: number of images.
        size: height and width in pixels (images are square).
        seed: base seed; different seeds give disjoint-looking datasets (use one per split).
        max_shapes: each image holds between 1 and ``max_shapes`` shapes.
        noise: standard deviation of the additive Gaussian pixel noise.
        cache: keep each item after its first read (reads return copies); ``False`` regenerates.
    """

    CLASSES = ("background", "circle", "square", "triangle")
    fixed_items = True  # item i is the same on every read (segedu.loading may hold them on the device)
    num_classes = 4
    in_channels = 3

    def __init__(self, n: int, size: int = 64, seed: int = 0, max_shapes: int = 4, noise: float = 0.06,
                 cache: bool = True):
        self.n = check_int_at_least("n", n, 1)
        self._items = {} if cache else None  # i -> (image, mask), filled on first read
        self.size = check_int_at_least("size", size, 16)
        self.seed = int(seed)
        self.max_shapes = check_int_at_least("max_shapes", max_shapes, 1)
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise = float(noise)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for Shapes of length {self.n}")
        i = i % self.n
        if self._items is not None and i in self._items:
            return tuple(t.clone() for t in self._items[i])  # a copy: the caller may change it in place
        image, mask = self.generate(np.random.default_rng([self.seed, i]))
        item = torch.from_numpy(image), torch.from_numpy(mask)
        if self._items is not None:
            self._items[i] = tuple(t.clone() for t in item)
        return item

    def generate(self, rng: np.random.Generator):
        s = self.size
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        # Background: a smooth random texture in random colours (sum of a few sinusoids).
        image = np.empty((3, s, s), np.float32)
        for c in range(3):
            base = rng.uniform(0.25, 0.75)
            tex = np.zeros((s, s), np.float32)
            for _ in range(3):
                fx, fy = rng.uniform(0.5, 4.0, 2) * 2 * np.pi / s
                tex += np.sin(fx * xx + fy * yy + rng.uniform(0, 2 * np.pi))
            image[c] = base + 0.08 * tex
        mask = np.zeros((s, s), np.int64)
        for _ in range(rng.integers(1, self.max_shapes + 1)):
            cls = int(rng.integers(1, 4))
            r = rng.uniform(0.08, 0.2) * s  # "radius" of the shape
            cy, cx = rng.uniform(r, s - r, 2)
            if cls == 1:  # circle
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
            elif cls == 2:  # axis-aligned square
                inside = (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
            else:  # upward triangle: below the two slanted edges, above the base
                top, base_y = cy - r, cy + r * 0.8
                half_w = (yy - top) / (base_y - top) * r
                inside = (yy >= top) & (yy <= base_y) & (np.abs(xx - cx) <= half_w)
            # Colour independent of the class; later shapes occlude earlier ones.
            colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
            image[:, inside] = colour[:, None] * 0.8 + 0.1
            mask[inside] = cls
        image += rng.normal(0, self.noise, image.shape).astype(np.float32)
        return np.clip(image, 0.0, 1.0), mask

    def __repr__(self) -> str:
        return f"Shapes(n={self.n}, size={self.size}, seed={self.seed})"


# ---------------------------------------------------------------------------------------------
# Chapter 5: synthetic touching cells, and elastic deformation
# ---------------------------------------------------------------------------------------------

def elastic_deform(arrays, rng: np.random.Generator, grid: int = 3, sigma: float = 10.0, orders=None):
    """The U-Net paper's augmentation: a smooth random deformation, the same for every array.

    "We generate smooth deformations using random displacement vectors on a coarse 3 by 3 grid.
    The displacements are sampled from a Gaussian distribution with 10 pixels standard deviation.
    Per-pixel displacements are then computed using bicubic interpolation." (Ronneberger et al.)

    Args:
        arrays: 2-D arrays of the same shape (image, labels, ...).
        rng: NumPy generator (so augmentation is reproducible).
        grid: the coarse grid is ``grid x grid``; sigma: standard deviation of its displacements.
        orders: interpolation order per array (default 3 = bicubic for the first, 0 = nearest for
            the rest, so label maps keep integer labels).
    """
    from scipy import ndimage

    h, w = arrays[0].shape
    coarse = rng.normal(0.0, sigma, size=(2, grid, grid))
    # Bicubic upsampling of the coarse displacement grid to every pixel.
    dy = ndimage.zoom(coarse[0], (h / grid, w / grid), order=3, mode="nearest")[:h, :w]
    dx = ndimage.zoom(coarse[1], (h / grid, w / grid), order=3, mode="nearest")[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = np.stack([yy + dy, xx + dx])
    orders = orders or [3] + [0] * (len(arrays) - 1)
    return [ndimage.map_coordinates(a, coords, order=o, mode="reflect").astype(a.dtype) for a, o in zip(arrays, orders)]


class Cells(Dataset):
    """Synthetic microscopy: many touching cells separated by thin gaps, with instance labels.

    Built to exercise exactly what the U-Net paper's weight map is for: cells of the same class
    that touch, so the only thing between two instances is a gap of one or two pixels. Each image
    is a Voronoi tessellation of random seed points (neighbouring cells share long borders); the
    border between two cells is a dark gap; some cells are removed to leave background. Cell
    interiors have a random brightness and texture, the whole image is blurred and noisy.

    Items are ``(image float32 [1, H, W], mask int64 [H, W])`` with ``mask`` 1 for cell and 0 for
    background/gap — the same two classes as the ISBI 2012 EM data. ``instances(i)`` gives the
    instance labels (0 = background, 1..n = cells). With ``weights=True`` items are
    ``(image, mask, weight)`` where ``weight`` is :func:`segedu.losses.unet_weight_map` of the
    instances (pass it through :func:`segedu.train.fit` to train with the weighted loss).

    Args:
        n: number of images. size: side in pixels. seed: base seed.
        cells: mean number of cells per image. gap: width of the gap between touching cells.
        augment: apply the paper's elastic deformation (a new one each time an item is read,
            seeded by ``(seed, i, read count)`` so runs reproduce).
        weights: also return the U-Net weight map; ``w0``, ``sigma``: its parameters.
        cache: keep each item after its first read (with ``augment``, only the undeformed cells).
    """

    CLASSES = ("background", "cell")
    num_classes = 2
    in_channels = 1

    def __init__(self, n: int, size: int = 96, seed: int = 0, cells: int = 24, gap: int = 2, augment: bool = False,
                 weights: bool = False, w0: float = 10.0, sigma: float = 5.0, noise: float = 0.08, cache: bool = True):
        self.n = check_int_at_least("n", n, 1)
        self.size = check_int_at_least("size", size, 16)
        self.cells = check_int_at_least("cells", cells, 2)
        self.gap = check_int_at_least("gap", gap, 1)
        self.seed, self.augment, self.weights = int(seed), bool(augment), bool(weights)
        self.w0, self.sigma, self.noise = float(w0), float(sigma), float(noise)
        self._reads = {}
        self._weights = {}  # weight maps of un-augmented items, computed once
        self._cells = {} if cache else None  # i -> (image, instances) before noise and augmentation
        self._items = {} if cache and not self.augment else None  # i -> the whole item
        self.fixed_items = not self.augment  # a new deformation on every read is not a fixed item

    def __len__(self) -> int:
        return self.n

    def _generate(self, i: int):
        if self._cells is None:
            return self._draw(i)
        if i not in self._cells:
            self._cells[i] = self._draw(i)
        return self._cells[i]

    def _draw(self, i: int):
        from scipy import ndimage

        rng = np.random.default_rng([self.seed, i, 7])
        s = self.size
        count = int(rng.poisson(self.cells)) + 2
        seeds = np.zeros((s, s), bool)
        seeds[rng.integers(0, s, count), rng.integers(0, s, count)] = True
        # Voronoi regions: every pixel takes the label of its nearest seed point.
        _, (iy, ix) = ndimage.distance_transform_edt(~seeds, return_indices=True)
        point_label = np.zeros((s, s), np.int64)
        point_label[seeds] = np.arange(1, seeds.sum() + 1)
        regions = point_label[iy, ix]
        # Gaps: pixels whose neighbourhood holds another region, widened to `gap` pixels.
        border = np.zeros((s, s), bool)
        border[:-1] |= regions[:-1] != regions[1:]
        border[1:] |= regions[:-1] != regions[1:]
        border[:, :-1] |= regions[:, :-1] != regions[:, 1:]
        border[:, 1:] |= regions[:, :-1] != regions[:, 1:]
        if self.gap > 1:
            border = ndimage.binary_dilation(border, iterations=self.gap - 1)
        instances = np.where(border, 0, regions)
        # Remove about a quarter of the cells to leave background.
        labels = np.unique(instances[instances > 0])
        drop = labels[rng.random(len(labels)) < 0.25]
        instances[np.isin(instances, drop)] = 0
        instances = self._relabel(instances)  # labels 1..n (not ndimage.label: it would merge touching cells)
        # Appearance: bright textured cells, dark gaps and background.
        brightness = rng.uniform(0.55, 0.9, instances.max() + 1)
        brightness[0] = 0.25
        image = brightness[instances].astype(np.float64)
        image += 0.06 * ndimage.gaussian_filter(rng.normal(size=(s, s)), 1.5)
        image = ndimage.gaussian_filter(image, 0.8)
        return image, instances

    @staticmethod
    def _relabel(instances):
        out = np.zeros_like(instances)
        for new, old in enumerate(np.unique(instances[instances > 0]), start=1):
            out[instances == old] = new
        return out

    def instances(self, i: int) -> np.ndarray:
        """Instance labels of image ``i`` (before augmentation): 0 background, 1..n cells."""
        return self._generate(i)[1].copy()

    def __getitem__(self, i: int):
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for Cells of length {self.n}")
        i = i % self.n
        if self._items is not None and i in self._items:
            return tuple(t.clone() for t in self._items[i])  # a copy: the caller may change it in place
        image, instances = self._generate(i)
        if self.augment:
            k = self._reads.get(i, 0)
            self._reads[i] = k + 1
            image, instances = elastic_deform([image, instances], np.random.default_rng([self.seed, i, k, 11]))
        rng = np.random.default_rng([self.seed, i, 13])
        image = np.clip(image + rng.normal(0, self.noise, image.shape), 0, 1).astype(np.float32)
        mask = (instances > 0).astype(np.int64)
        out = (torch.from_numpy(image)[None], torch.from_numpy(mask))
        if self.weights:
            if self.augment:  # the deformed instances need their own map
                w = unet_weight_map(instances, w0=self.w0, sigma=self.sigma)
            else:
                if i not in self._weights:
                    self._weights[i] = unet_weight_map(instances, w0=self.w0, sigma=self.sigma)
                w = self._weights[i]
            out += (torch.from_numpy(w).float(),)
        if self._items is not None:
            self._items[i] = tuple(t.clone() for t in out)
        return out

    def __repr__(self) -> str:
        return f"Cells(n={self.n}, size={self.size}, seed={self.seed}, augment={self.augment}, weights={self.weights})"
