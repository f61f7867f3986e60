"""segedu.loading: a whole data set held on the device gives fit the same batches, in the same order."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from segedu.data import Binary, Cells, Shapes
from segedu.loading import DeviceBatches, batches, preload_tensors
from segedu.models import UNet
from segedu.models.sliding_window import CenterPixelPatches
from segedu.train import fit


@pytest.mark.parametrize("shuffle", [True, False])
def test_device_batches_are_the_dataloaders_batches(shuffle):
    data = Shapes(13, size=32, seed=4)
    loader = DataLoader(data, batch_size=4, shuffle=shuffle, generator=torch.Generator().manual_seed(7))
    held = DeviceBatches(preload_tensors(data, "cpu"), 4, shuffle, torch.Generator().manual_seed(7))
    assert len(held) == len(loader) == 4
    for _ in range(3):  # three epochs: the generator advances the same way
        for a, b in zip(loader, held, strict=True):
            assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_batches_preloads_only_fixed_items_that_fit():
    assert isinstance(batches(Binary(Shapes(8, size=32)), 4, True, 0, "cpu"), DeviceBatches)
    augmented = Cells(4, size=32, cells=6, augment=True)  # a new deformation on every read
    assert isinstance(batches(augmented, 4, True, 0, "cpu"), DataLoader)
    assert isinstance(batches(Shapes(8, size=32), 4, True, 0, "cpu", preload=False), DataLoader)
    assert preload_tensors(Shapes(8, size=32), "cpu", max_bytes=1000) is None  # over the budget
    with pytest.raises(ValueError, match="cannot be preloaded: its items must be fixed"):
        batches(augmented, 4, True, 0, "cpu", preload=True)
    with pytest.raises(ValueError, match="preload must be"):
        batches(Shapes(8, size=32), 4, True, 0, "cpu", preload="yes")


@pytest.mark.parametrize("make, build", [
    (lambda: Shapes(12, size=32, seed=1), lambda: UNet(3, 4, depth=2, base_channels=4, padding="same")),
    (lambda: Cells(10, size=32, seed=2, cells=6, weights=True), lambda: UNet(1, 2, depth=1, base_channels=4)),
    (lambda: CenterPixelPatches(Shapes(4, size=32, seed=3), patch_size=9, n=40, seed=0),
     lambda: torch.nn.Sequential(torch.nn.Conv2d(3, 4, 9), torch.nn.Flatten())),
], ids=["Shapes", "Cells with weight maps (valid U-Net)", "centre-pixel patches"])
def test_fit_trains_the_same_weights_with_and_without_preloading(make, build):
    weights = []
    for preload in (True, False):
        torch.manual_seed(0)
        model = build()
        fit(model, make(), epochs=2, batch_size=4, device="cpu", progress=False, seed=3, preload=preload)
        weights.append([p.detach().clone() for p in model.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*weights))


def test_fit_applies_a_batch_augmentation_to_every_training_batch():
    from segedu.data import BatchAugment

    aug, calls = BatchAugment(seed=0), []

    def counted(x, *targets):
        calls.append(x.shape)
        return aug(x, *targets)

    torch.manual_seed(0)
    model = UNet(3, 4, depth=1, base_channels=4, padding="same")
    fit(model, Shapes(8, size=32, seed=1), epochs=2, batch_size=4, device="cpu", progress=False, augment=counted)
    assert calls == [torch.Size([4, 3, 32, 32])] * 4  # 2 batches x 2 epochs, on the device, before the step
