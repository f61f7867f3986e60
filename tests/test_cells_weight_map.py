"""Cells (synthetic touching cells), elastic deformation, and the U-Net weight map."""

import numpy as np
import pytest
import torch
from scipy import ndimage

from segedu.data import Cells, elastic_deform
from segedu.losses import pixel_cross_entropy, unet_weight_map


def test_cells_items_and_instances():
    ds = Cells(3, size=64, seed=1)
    x, y = ds[1]
    assert x.shape == (1, 64, 64) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (64, 64) and y.dtype == torch.int64 and set(y.unique().tolist()) == {0, 1}
    inst = ds.instances(1)
    assert np.array_equal(inst > 0, y.numpy() > 0)
    assert inst.max() >= 5
    assert torch.equal(ds[1][0], Cells(3, size=64, seed=1)[1][0])  # deterministic


def test_cells_touch_with_thin_gaps():
    """Many cells are separated only by a thin gap: closing the gap merges them."""
    inst = Cells(1, size=96, seed=0, gap=2).instances(0)
    n_cells = inst.max()
    merged, n_merged = ndimage.label(ndimage.binary_closing(inst > 0, iterations=2))
    assert n_merged < n_cells / 2


def test_weight_map_formula_by_hand():
    inst = np.zeros((1, 11), np.int64)
    inst[0, :3] = 1   # cell 1: columns 0..2
    inst[0, 6:] = 2   # cell 2: columns 6..10; gap: columns 3..5
    w = unet_weight_map(inst, w0=10, sigma=5, class_balance=False)
    # column 4: d1 = 2 (to column 2), d2 = 2 (to column 6)
    assert w[0, 4] == pytest.approx(1 + 10 * np.exp(-(2 + 2) ** 2 / (2 * 25)))
    assert w[0, 3] == pytest.approx(1 + 10 * np.exp(-(1 + 3) ** 2 / (2 * 25)))
    assert w[0, 0] == 1.0  # inside a cell: no border term (background-only form)
    lit = unet_weight_map(inst, w0=10, sigma=5, class_balance=False, border_on="all")
    assert lit[0, 2] == pytest.approx(1 + 10 * np.exp(-(0 + 4) ** 2 / 50))


def test_weight_map_is_large_in_gaps_and_balances_classes():
    inst = Cells(1, size=64, seed=2).instances(0)
    w = unet_weight_map(inst)
    gaps = (inst == 0) & ndimage.binary_dilation(inst > 0, iterations=2)
    far = (inst == 0) & ~ndimage.binary_dilation(inst > 0, iterations=12)
    assert w[gaps].mean() > 3 * w[inst > 0].mean()
    fg = inst > 0
    wc = unet_weight_map(inst, w0=0)
    assert wc[fg].sum() == pytest.approx(wc[~fg].sum())  # both classes carry equal total weight
    if far.any():
        assert w[far].max() < w[gaps].max()


def test_weight_map_edge_cases_and_errors():
    empty = unet_weight_map(np.zeros((5, 5), np.int64))
    assert np.isfinite(empty).all() and np.allclose(empty, 0.5)  # one class present: total/(2*count)
    one = np.zeros((5, 5), np.int64)
    one[1:3, 1:3] = 1
    assert np.isfinite(unet_weight_map(one)).all()
    with pytest.raises(ValueError, match="2-D"):
        unet_weight_map(np.zeros((2, 5, 5), np.int64))
    with pytest.raises(TypeError, match="integer"):
        unet_weight_map(np.zeros((5, 5)))
    with pytest.raises(ValueError, match=">= 0"):
        unet_weight_map(-np.ones((5, 5), np.int64))


def test_weighted_loss_through_the_dataset():
    ds = Cells(2, size=48, weights=True)
    x, y, w = ds[0]
    logits = torch.zeros(1, 2, 48, 48, requires_grad=True)
    loss = pixel_cross_entropy(logits, y[None], weight=w[None])
    loss.backward()
    assert loss.item() == pytest.approx(np.log(2), rel=1e-5)  # uniform scores: log 2 whatever the weights
    assert logits.grad.abs().sum() > 0


def test_elastic_deformation_keeps_labels_and_is_smooth():
    rng = np.random.default_rng(0)
    inst = Cells(1, size=64).instances(0)
    image = inst.astype(np.float64)
    img2, inst2 = elastic_deform([image, inst], rng)
    assert set(np.unique(inst2)) <= set(np.unique(inst))  # nearest-neighbour: no new labels
    assert not np.array_equal(inst2, inst)
    aug = Cells(2, size=48, augment=True)
    assert not torch.equal(aug[0][0], aug[0][0])  # a new deformation each read


def test_cells_bad_arguments():
    with pytest.raises(ValueError):
        Cells(0)
    with pytest.raises(ValueError):
        Cells(2, cells=1)
    with pytest.raises(IndexError):
        Cells(2)[5]


def test_fit_trains_a_valid_unet_with_the_weight_map():
    """(image, mask, weight) triples go through segedu.train.fit; mask and weight are centre-cropped."""
    from segedu.models import UNet
    from segedu.train import fit

    torch.manual_seed(0)
    model = UNet(depth=1, base_channels=2)  # valid padding: 48 -> 36
    hist = fit(model, Cells(4, size=48, weights=True), epochs=2, batch_size=2, progress=False, device="cpu")
    assert len(hist["loss"]) == 2 and all(np.isfinite(hist["loss"]))


def test_weight_map_explorer_demo():
    import matplotlib

    matplotlib.use("Agg")
    from segedu.widgets import weight_map_explorer

    inst = Cells(1, size=48).instances(0)
    demo = weight_map_explorer(inst, w0s=(0, 10), sigmas=(5,))
    assert demo.defaults == {"w0": 10, "sigma": 5} and len(demo.frames()) == 2
    assert len(set(demo.frames().values())) == 2  # w0 changes the picture
    with pytest.raises(TypeError, match="integer"):
        weight_map_explorer(inst.astype(float))
