"""The batched torch augmentation equals the NumPy path on the same random numbers (issue: performance).

Tolerances, and why (measured on 4 Cells and 4 Shapes images, 48x48, float64 / float32):

* field: ``elastic_field`` is ``ndimage.zoom(order=3, mode="nearest")`` written as two matrix
  products: the same arithmetic, so equal to 1e-10 pixel in float64 (measured about 1e-13) and to
  1e-4 pixel in float32 (measured about 4e-6: float32 rounding of displacements up to ~30 px).
* image, ``interpolation="spline"``: SciPy's cubic B-spline (prefilter, then the 4x4 taps),
  rebuilt from matrix products and bilinear lookups: 1e-10 in float64 (measured about 1e-13), 1e-5
  in float32 (measured about 3e-6; values in [0, 1]).
* image, ``interpolation="bicubic"``: ``F.grid_sample``'s Keys cubic convolution is a *different*
  interpolation from SciPy's B-spline; they agree on smooth images and part near sharp edges and
  pixel noise. Measured: largest difference 0.016 (Cells) and 0.035 (Shapes: hard edges plus
  noise), mean 0.002 and 0.004. Tolerance: largest 0.05, mean 0.01; on a smooth image (one sine
  period across 48 px, amplitude 0.4) 5e-3 (measured 0.003).
* labels (nearest): equal on every pixel in float64; in float32 a sampling point within rounding
  of a half-pixel may round the other way, so at most 0.1% of pixels may differ (measured: none).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from segedu.data import Cells, Shapes, elastic_deform
from segedu.data.augment import (BatchAugment, coarse_displacements, elastic_deform_batch, elastic_field,
                                 random_coarse_displacements, random_crops, random_flips, warp)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _numpy_path(images, labels, seeds):
    """``elastic_deform`` on every image (every channel) and its labels, each with its own generator."""
    out_i, out_l = [], []
    for image, label, seed in zip(images, labels, seeds):
        arrays = elastic_deform([*image, label], np.random.default_rng(seed), orders=[3] * len(image) + [0])
        out_i.append(np.stack(arrays[:-1]))
        out_l.append(arrays[-1])
    return np.stack(out_i), np.stack(out_l)


def _cells(n=4, size=48):
    ds = Cells(n, size=size, seed=5, cells=10)
    pairs = [ds._generate(i) for i in range(n)]  # float64 image and instance labels 0..k, before noise
    return np.stack([p[0][None] for p in pairs]), np.stack([p[1] for p in pairs])


def _shapes(n=4, size=48):
    ds = Shapes(n, size=size, seed=3)
    return (np.stack([ds[i][0].double().numpy() for i in range(n)]), np.stack([ds[i][1].numpy() for i in range(n)]))


DATA = {"Cells": _cells, "Shapes": _shapes}
SEEDS = [[9, k] for k in range(4)]


@pytest.mark.parametrize("size", [(48, 48), (33, 20), (2, 7)])
def test_the_field_is_scipy_zoom_of_the_same_coarse_displacements(size):
    h, w = size
    coarse = coarse_displacements([np.random.default_rng(s) for s in SEEDS])
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        field = elastic_field(torch.as_tensor(coarse, dtype=dtype), size).double().numpy()
        for k, c in enumerate(coarse):
            for axis in (0, 1):
                ref = ndimage.zoom(c[axis], (h / 3, w / 3), order=3, mode="nearest")[:h, :w]
                assert np.abs(field[k, axis] - ref).max() < tol, (dtype, k, axis)


def test_coarse_displacements_are_the_draws_of_elastic_deform():
    one = coarse_displacements(np.random.default_rng(4), n=3)
    rng = np.random.default_rng(4)
    assert np.array_equal(one, np.stack([rng.normal(0.0, 10.0, size=(2, 3, 3)) for _ in range(3)]))
    assert np.array_equal(coarse_displacements([np.random.default_rng(4)]), one[:1])
    with pytest.raises(ValueError):
        coarse_displacements(np.random.default_rng(4))


@pytest.mark.parametrize("data", DATA)
def test_the_spline_path_equals_elastic_deform(data):
    images, labels = DATA[data]()
    ref_images, ref_labels = _numpy_path(images, labels, SEEDS)
    coarse = coarse_displacements([np.random.default_rng(s) for s in SEEDS])
    for dtype, tol, label_share in ((torch.float64, 1e-10, 0.0), (torch.float32, 1e-5, 1e-3)):
        out, out_labels = elastic_deform_batch(torch.from_numpy(images).to(dtype), torch.from_numpy(labels), coarse,
                                               interpolation="spline")
        assert out.dtype == dtype and out_labels.dtype == torch.int64
        assert np.abs(out.double().numpy() - ref_images).max() < tol, dtype
        assert (out_labels.numpy() != ref_labels).mean() <= label_share, dtype


@pytest.mark.parametrize("data", DATA)
def test_the_bicubic_path_is_close_to_elastic_deform(data):
    images, labels = DATA[data]()
    ref_images, ref_labels = _numpy_path(images, labels, SEEDS)
    coarse = coarse_displacements([np.random.default_rng(s) for s in SEEDS])
    out, out_labels = elastic_deform_batch(torch.from_numpy(images).float(), torch.from_numpy(labels), coarse,
                                           interpolation="bicubic")
    diff = np.abs(out.double().numpy() - ref_images)
    assert diff.max() < 0.05 and diff.mean() < 0.01, (diff.max(), diff.mean())
    assert (out_labels.numpy() != ref_labels).mean() <= 1e-3


def test_on_a_smooth_image_keys_and_the_b_spline_agree():
    yy, xx = np.mgrid[0:48, 0:48] / 48.0
    image = (0.5 + 0.4 * np.sin(2 * np.pi * yy) * np.cos(2 * np.pi * xx))[None, None]
    coarse = coarse_displacements([np.random.default_rng(1)])
    field = elastic_field(coarse, (48, 48))
    spline, keys = (warp(torch.from_numpy(image), field, m) for m in ("spline", "bicubic"))
    assert (spline - keys).abs().max() < 5e-3


def test_labels_stay_integers_of_the_same_values():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (3, 24, 24), generator=g)
    labels[:, :12] = 7  # a large region of a rarer class
    images = torch.rand(3, 2, 24, 24, generator=g)
    weights = torch.rand(3, 24, 24, generator=g)
    out, (out_labels, out_weights) = elastic_deform_batch(images, (labels, weights), generator=g)
    assert out.shape == images.shape and out_labels.dtype == torch.int64 and out_labels.shape == labels.shape
    assert set(out_labels.unique().tolist()) <= set(labels.unique().tolist())
    assert set(out_weights.unique().tolist()) <= set(weights.unique().tolist())  # nearest: pixel values
    with pytest.raises(ValueError, match="nearest"):
        warp(labels, elastic_field(random_coarse_displacements(3), 24), "bicubic")


def _labelled_batch(n=16, size=20, seed=0):
    """Images whose label is a function of the pixel (channel 0 > 0.5), so a consistent
    transform keeps ``label == (image[:, 0] > 0.5)``."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(n, 3, size, size + 3, generator=g)
    return images, (images[:, 0] > 0.5).long()


def test_flips_move_images_and_labels_alike():
    images, labels = _labelled_batch()
    out, out_labels = random_flips(images, labels, torch.Generator().manual_seed(1))
    assert torch.equal(out_labels, (out[:, 0] > 0.5).long())
    flipped = {(torch.equal(o, i.flip(-1)), torch.equal(o, i.flip(-2)), torch.equal(o, i.flip(-1, -2)))
               for o, i in zip(out, images)}
    assert len(flipped) == 4  # none, left-right, up-down, both: every kind occurs among 16 images
    same, _ = random_flips(images, None, torch.Generator().manual_seed(1))
    assert torch.equal(same, out)  # a seed gives the same flips


def test_crops_cut_images_and_labels_at_the_same_place():
    images, labels = _labelled_batch()
    out, out_labels = random_crops(images, labels, (8, 11), torch.Generator().manual_seed(2))
    assert out.shape == (16, 3, 8, 11) and torch.equal(out_labels, (out[:, 0] > 0.5).long())
    for o, i in zip(out, images):  # each crop is a window of its own image
        windows = i.unfold(1, 8, 1).unfold(2, 11, 1)  # [C, positions y, positions x, 8, 11]
        assert (windows == o[:, None, None]).flatten(3).all(-1).all(0).any()


def test_batch_augment_reproduces_and_keeps_maps_with_their_images():
    images, labels = _labelled_batch(n=4)
    a = BatchAugment(seed=3, crop=16)(images, labels)
    b = BatchAugment(seed=3, crop=16)(images, labels)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    out, out_labels = BatchAugment(seed=3, elastic=False, crop=16)(images, labels)
    assert torch.equal(out_labels, (out[:, 0] > 0.5).long())


@pytest.mark.parametrize("device", DEVICES)
def test_it_runs_on_the_device_of_its_input(device):
    images, labels = _labelled_batch(n=4)
    cpu = elastic_deform_batch(images, labels, coarse_displacements(np.random.default_rng(0), n=4))
    on = elastic_deform_batch(images.to(device), labels.to(device), coarse_displacements(np.random.default_rng(0), n=4))
    assert on[0].device.type == device and on[1].device.type == device
    assert (on[0].cpu() - cpu[0]).abs().max() < 1e-4
    out = BatchAugment(seed=0, crop=16)(images.to(device), labels.to(device))
    assert all(t.device.type == device for t in out)
