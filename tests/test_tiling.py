"""Overlap-tile inference equals whole-image inference of the mirror-padded image."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from segedu.models import UNet
from segedu.sizes import valid_input_sizes
from segedu.tiling import mirror_pad, predict_tiled, tile_layout

torch.manual_seed(0)
MODEL = UNet(in_channels=1, num_classes=2, depth=2, base_channels=4).double().eval()
for p in MODEL.parameters():  # small positive biases keep ReLUs alive so the output varies in space
    if p.dim() == 1:
        p.data.fill_(0.05)
TILE = valid_input_sizes(depth=2, max_size=200)[4]


def _whole(model, image, layout):
    H, W = image.shape[-2:]
    m = layout.margin
    Py, Px = layout.padded_size
    with torch.no_grad():
        return model(mirror_pad(image[None], m, Py - H - m, m, Px - W - m))[0, :, :H, :W]


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 90), st.integers(1, 90), st.integers(0, 1000))
def test_tiled_equals_whole_image(H, W, seed):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, H, W, generator=g, dtype=torch.float64)
    tiled, layout = predict_tiled(MODEL, image, tile_size=TILE, return_layout=True)
    assert tiled.shape == (2, H, W)
    assert H * W < 4 or tiled.std() > 0  # a constant output would make the comparison meaningless
    assert torch.equal(tiled, _whole(MODEL, image, layout)) or (tiled - _whole(MODEL, image, layout)).abs().max() < 1e-10


def test_tiles_start_on_the_pooling_grid_and_cover_the_image():
    layout = tile_layout((1000, 700), tile_size=572, depth=4)
    assert layout.out_size == 388 and layout.step == 384 and layout.margin == 92
    for offs, n in zip(layout.offsets, (1000, 700)):
        assert all(o % 16 == 0 for o in offs)
        assert offs[-1] + layout.out_size >= n
    assert layout.num_tiles == 3 * 2


def test_misaligned_tiles_would_differ():
    """Why the step is a multiple of 2**depth: shifting a tile by one pixel changes its output."""
    image = torch.rand(1, 60, 60, dtype=torch.float64)
    layout = tile_layout((60, 60), TILE, 2)
    whole = _whole(MODEL, image, layout)
    m, t = layout.margin, layout.tile_size
    padded = mirror_pad(image[None], m, layout.padded_size[0] - 60 - m, m, layout.padded_size[1] - 60 - m)
    with torch.no_grad():
        shifted = MODEL(padded[..., 1 : 1 + t, 1 : 1 + t])[0]
    o = layout.out_size
    assert not torch.allclose(shifted[:, : o - 1, : o - 1], whole[:, 1:o, 1:o])


def test_mirror_pad_reflects_beyond_the_image():
    x = torch.arange(6.0).view(1, 2, 3)
    padded = mirror_pad(x, 3, 3, 4, 4)  # more than the image's size on every side
    assert padded[0].numpy().tolist() == np.pad(np.arange(6.0).reshape(2, 3), ((3, 3), (4, 4)), mode="reflect").tolist()
    assert padded[0, 3, 4:7].tolist() == [0, 1, 2]


def test_bad_input():
    with pytest.raises(ValueError, match="nearest valid"):
        predict_tiled(MODEL, torch.rand(1, 30, 30, dtype=torch.float64), tile_size=TILE + 1)
    with pytest.raises(ValueError, match="same"):
        predict_tiled(UNet(padding="same", base_channels=2), torch.rand(1, 32, 32))
    with pytest.raises(ValueError, match="tensor"):
        predict_tiled(MODEL, torch.rand(30, 30))
    with pytest.raises(TypeError, match="float"):
        predict_tiled(MODEL, torch.zeros(1, 30, 30, dtype=torch.uint8))
    with pytest.raises(ValueError, match="in_channels=1"):
        predict_tiled(MODEL, torch.rand(3, 30, 30, dtype=torch.float64))


def test_a_batch_of_images_of_any_size_equals_one_by_one():
    """Tiles of several images share batches; each image's result is the one it gets alone."""
    images = torch.rand(3, 1, 41, 67, dtype=torch.float64)
    together = predict_tiled(MODEL, images, tile_size=TILE, batch_size=5, progress=True)
    assert together.shape == (3, 2, 41, 67)
    for i in range(3):
        alone = predict_tiled(MODEL, images[i], tile_size=TILE, batch_size=1)
        assert (together[i] - alone).abs().max() < 1e-10
