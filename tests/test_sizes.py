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


def test_levels_agree_with_the_real_network_and_show_the_crops():
    """unet_levels gives the sizes the model computes, level by level, and the crops it applies."""
    from segedu.sizes import unet_levels

    model = UNet(depth=3, base_channels=1).eval()
    for side in (92, 100, 132):
        levels = unet_levels(side, depth=3)
        assert levels.valid and levels.output_size == unet_output_size(side, depth=3)
        seen = {}
        hooks = [b.register_forward_hook(lambda m, i, o, key=("down", lv): seen.__setitem__(key, (i[0].shape[-1], o.shape[-1])))
                 for lv, b in enumerate(model.down)]
        hooks += [u.register_forward_hook(lambda m, i, o, lv=model.depth - 1 - j: seen.__setitem__(("up", lv), o.shape[-1]))
                  for j, u in enumerate(model.up)]
        with torch.no_grad():
            model(torch.rand(1, 1, side, side))
        for h in hooks:
            h.remove()
        for rec in levels.down:
            assert seen[("down", rec["level"])] == (rec["input"], rec["convs"][-1])
        for rec in levels.up:
            assert seen[("up", rec["level"])] == rec["upconv"]
            assert rec["crop"] == rec["skip"] - rec["upconv"]


def test_crops_do_not_depend_on_k():
    """Why the notes' "k must be even" is not needed: every valid size crops by the same even amounts."""
    from segedu.sizes import unet_levels

    crops = {tuple(r["crop"] for r in unet_levels(s).up) for s in valid_input_sizes(depth=4, max_size=1200)}
    assert crops == {(8, 32, 80, 176)}  # the 4, 16, 40, 88 pixels per side of the paper's Figure 1


def test_levels_explain_invalid_sizes():
    from segedu.sizes import unet_levels

    odd = unet_levels(500)
    assert not odd.valid and "odd side 55" in odd.problem and odd.output_size is None
    assert any(r["odd"] for r in odd.down) and any(r["crop"] % 2 for r in odd.up)
    small = unet_levels(140)
    assert "vanishes" in small.problem and "way up" in small.problem and small.k == 1
    assert "way down" in unet_levels(10).problem
    with pytest.raises(TypeError, match="int"):
        unet_levels(572.0)


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 6])
def test_nearest_valid_sizes_exist_for_every_depth(depth):
    lo, hi = nearest_valid_input_size(3, depth=depth)
    assert lo is None and hi == valid_input_sizes(depth=depth, max_size=hi)[0]
    lo, hi = nearest_valid_input_size(hi + 1, depth=depth)
    assert lo < hi and unet_output_size(lo, depth) >= 1 and unet_output_size(hi, depth) >= 1


def test_size_calculator_demo():
    import matplotlib

    matplotlib.use("Agg")
    from segedu.widgets import unet_size_calculator

    demo = unet_size_calculator(sides=[188, 500, 572])
    assert demo.defaults == {"side": 572} and len(demo.frames()) == 3
    assert "size calculator" in demo.to_html()
    titles = []
    for side in (500, 572):
        fig = demo.render(side=side)
        titles.append(fig.axes[0].get_title())
        matplotlib.pyplot.close(fig)
    assert "NOT valid" in titles[0] and "492 (smaller) and 508 (larger)" in titles[0]
    assert "valid → output 388×388, k = 28" in titles[1]
