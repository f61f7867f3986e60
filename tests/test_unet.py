"""Chapter 5's claims about U-Net: the paper's architecture, sizes, skips, and bad input."""

import pytest
import torch
from torch import nn

from segedu.models import UNet
from segedu.sizes import center_crop


def _paper_parameter_count(in_ch=1, classes=2, base=64, depth=4):
    """Parameters from the layer shapes alone: (k*k*c_in + 1) * c_out per convolution."""
    conv = lambda k, ci, co: (k * k * ci + 1) * co  # noqa: E731
    w = [base * 2**i for i in range(depth + 1)]
    total, c = 0, in_ch
    for wi in w:  # contracting path and bottom: two 3x3 convolutions per level
        total += conv(3, c, wi) + conv(3, wi, wi)
        c = wi
    for wi in reversed(w[:-1]):  # expansive path: 2x2 up-conv, then two 3x3 on the concatenation
        total += conv(2, 2 * wi, wi) + conv(3, 2 * wi, wi) + conv(3, wi, wi)
    return total + conv(1, w[0], classes)


def test_paper_configuration_layers_sizes_and_parameters():
    model = UNet()  # the defaults are the paper's network
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    assert len(convs) == 23  # "In total the network has 23 convolutional layers."
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == _paper_parameter_count() == 31_030_658
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(m.padding == (0, 0) for m in convs if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3))


@pytest.mark.slow
def test_paper_network_maps_572_to_388():
    model = UNet().eval()
    with torch.no_grad():
        out = model(torch.rand(1, 1, 572, 572))
    assert out.shape == (1, 2, 388, 388)


def test_level_sizes_on_the_way_down_and_up():
    model = UNet(base_channels=2).eval()
    seen = []
    hooks = [m.register_forward_hook(lambda m, i, o: seen.append(o.shape[-1]))
             for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.MaxPool2d))]
    with torch.no_grad():
        model(torch.rand(1, 1, 572, 572))
    for h in hooks:
        h.remove()
    assert seen[:7] == [570, 568, 284, 282, 280, 140, 138]
    assert seen[-4:] == [392, 390, 388, 388]


@pytest.mark.parametrize("depth, size", [(1, 20), (2, 44), (3, 92), (4, 188)])
def test_unet_l_depths_same_padding_keep_size(depth, size):
    m = UNet(in_channels=3, num_classes=4, depth=depth, base_channels=4, padding="same").eval()
    x = torch.rand(2, 3, 32, 48)
    assert m(x).shape == (2, 4, 32, 48)
    v = UNet(depth=depth, base_channels=2).eval()  # valid: the smallest valid input
    assert v(torch.rand(1, 1, size, size)).shape[-1] >= 1


def test_unetpp_papers_unet_count():
    """UNet++ paper, Table: U-Net with filters 32..512 has 7.76M parameters."""
    m = UNet(in_channels=1, num_classes=1, base_channels=32, padding="same")
    assert round(sum(p.numel() for p in m.parameters()) / 1e6, 2) == 7.76


def test_options_change_the_network():
    s = UNet(base_channels=4, skip="sum", padding="same")
    c = UNet(base_channels=4, skip="concat", padding="same")
    assert sum(p.numel() for p in s.parameters()) < sum(p.numel() for p in c.parameters())
    b = UNet(base_channels=4, norm="batch", padding="same")
    assert any(isinstance(m, nn.BatchNorm2d) for m in b.modules())
    bi = UNet(base_channels=4, up="bilinear", padding="same").eval()
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in bi.modules())
    assert bi(torch.rand(1, 1, 32, 32)).shape == (1, 2, 32, 32)
    x = torch.rand(1, 1, 32, 32)
    assert s.eval()(x).shape == (1, 2, 32, 32)


def test_center_crop_is_centred():
    x = torch.arange(36.0).view(1, 1, 6, 6)
    assert center_crop(x, 2).flatten().tolist() == [14, 15, 20, 21]
    with pytest.raises(ValueError, match="larger"):
        center_crop(x, 8)


@pytest.mark.parametrize("kwargs, match", [
    (dict(padding="reflect"), "padding"), (dict(skip="add"), "skip"), (dict(norm="group"), "norm"),
    (dict(up="pixelshuffle"), "up"), (dict(depth=0), "depth"), (dict(base_channels=0), "base_channels"),
])
def test_bad_constructor_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UNet(**kwargs)


def test_bad_input_is_rejected_before_computing():
    m = UNet(base_channels=2)
    with pytest.raises(ValueError, match=r"nearest valid sizes are 492 \(smaller\) and 508 \(larger\)"):
        m(torch.rand(1, 1, 500, 500))
    with pytest.raises(ValueError, match="channels"):
        m(torch.rand(1, 3, 572, 572))
    with pytest.raises(TypeError, match="float"):
        m(torch.zeros(1, 1, 572, 572, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        m(torch.rand(1, 572, 572))
    same = UNet(base_channels=2, padding="same")
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 16.*48 and 64"):
        same(torch.rand(1, 1, 50, 50))
