"""The U-Net size arithmetic agrees with the real network, size by size."""

import pytest
import torch

from segedu.models import UNet
from segedu.sizes import nearest_valid_input_size, unet_output_size, unet_size_trace, valid_input_sizes


def test_paper_sizes():
    assert unet_output_size(572) == 388
    trace = [s for _, s in unet_size_trace(572)]
    assert trace[:4] == [572, 570, 568, 284] and trace[-1] == 388
    assert min(trace) == 28  # the size k before the first up-convolution


def test_formula_x_equals_16k_plus_124():
    """Valid sizes are exactly 16k + 124 with k >= 4 (k = size before the first up-convolution)."""
    sizes = valid_input_sizes(depth=4, max_size=1000)
    assert sizes == [16 * k + 124 for k in range(4, (1000 - 124) // 16 + 1)]
    for s in sizes:
        k = min(v for _, v in unet_size_trace(s))
        assert s == 16 * k + 124
    assert any(min(v for _, v in unet_size_trace(s)) % 2 for s in sizes)  # odd k works too


def test_enumeration_against_the_real_model():
    """Every size the model accepts is one valid_input_sizes lists, and vice versa (depth 2, tiny widths)."""
    model = UNet(depth=2, base_channels=1).eval()
    accepted = []
    for s in range(1, 120):
        try:
            with torch.no_grad():
                out = model(torch.rand(1, 1, s, s))
        except ValueError:
            continue
        accepted.append(s)
        assert out.shape[-1] == unet_output_size(s, depth=2)
    assert accepted == valid_input_sizes(depth=2, max_size=119)


def test_model_would_fail_inside_torch_without_the_check():
    """The sizes rejected up front really break the network (odd pooling -> crop/concat mismatch)."""
    model = UNet(depth=2, base_channels=1).eval()
    bad = 45
    assert bad not in valid_input_sizes(depth=2, max_size=60)
    x = torch.rand(1, 1, bad, bad)
    with pytest.raises(Exception):
        h = x
        skips = []
        for level, block in enumerate(model.down):
            h = block(h)
            if level < model.depth:
                skips.append(h)
                h = model.pool(h)
        for up, block, skip in zip(model.up, model.decode, reversed(skips)):
            h = up(h)
            # crop of the skip is asymmetric or too small: the concatenation must fail or be off-centre
            dy, dx = skip.shape[-2] - h.shape[-2], skip.shape[-1] - h.shape[-1]
            assert dy % 2 == 0 and dx % 2 == 0 and dy >= 0
            h = block(torch.cat([skip[..., dy // 2 : dy // 2 + h.shape[-2], dx // 2 : dx // 2 + h.shape[-1]], h], 1))


def test_nearest_valid_sizes():
    assert nearest_valid_input_size(500) == (492, 508)
    assert nearest_valid_input_size(572) == (572, 572)
    assert nearest_valid_input_size(10) == (None, 188)
    with pytest.raises(ValueError, match="492 and 508"):
        unet_output_size(500)
    with pytest.raises(ValueError, match="depth"):
        valid_input_sizes(depth=0)
