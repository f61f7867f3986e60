"""Datasets of the course.

Every dataset returns ``(image, mask)`` pairs: ``image`` is ``float32 [C, H, W]`` with values in
``[0, 1]`` and ``mask`` is ``int64 [H, W]`` of class indices. Synthetic data is the default
everywhere, so every chapter runs offline and deterministically.

Introduced in chapter 1 (``Shapes``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["Shapes"]


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Shapes(Dataset):
    """Synthetic multi-class scenes: circles, squares and triangles on a textured background.

    Classes: ``0`` background, ``1`` circle, ``2`` square, ``3`` triangle.

    The colours of the shapes are drawn from the *same* distribution for every class and the
    background carries a random low-frequency texture plus pixel noise, so a pixel's class cannot
    be read off its own colour: a model has to look at the neighbourhood (the shape's outline).
    That is exactly what makes it a segmentation problem rather than a colour lookup.

    Sample ``i`` depends only on ``(seed, i)``, so datasets are reproducible and cheap: images
    are generated on the fly, nothing is stored.

    Args:
        n: number of images.
        size: height and width in pixels (images are square).
        seed: base seed; different seeds give disjoint-looking datasets (use one per split).
        max_shapes: each image holds between 1 and ``max_shapes`` shapes.
        noise: standard deviation of the additive Gaussian pixel noise.
    """

    CLASSES = ("background", "circle", "square", "triangle")
    num_classes = 4
    in_channels = 3

    def __init__(self, n: int, size: int = 64, seed: int = 0, max_shapes: int = 4, noise: float = 0.06):
        self.n = _check_positive_int("n", n)
        self.size = _check_positive_int("size", size, minimum=16)
        self.seed = int(seed)
        self.max_shapes = _check_positive_int("max_shapes", max_shapes)
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise = float(noise)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for Shapes of length {self.n}")
        i = i % self.n
        image, mask = self.generate(np.random.default_rng([self.seed, i]))
        return torch.from_numpy(image), torch.from_numpy(mask)

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
