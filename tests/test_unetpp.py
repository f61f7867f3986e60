"""Chapter 6's claims about the UNet++ family: the paper's parameter counts, the grid, pruning."""

import pytest
import torch

from segedu.models import UNet, UNetE, UNetPlus, UNetPlusPlus

FAMILY = [UNetE, UNetPlus, UNetPlusPlus]


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_paper_parameter_counts():
    """UNet++ paper, Table (filters 32..512, binary head): U-Net 7.76M, UNet++ 9.04M."""
    assert round(n_params(UNet(1, 1, depth=4, base_channels=32, padding="same")) / 1e6, 2) == 7.76
    assert round(n_params(UNetPlusPlus(1, 1, depth=4, base_channels=32)) / 1e6, 2) == 9.04


def test_unetpp_parameters_from_the_grid_by_hand():
    f = [4, 8, 16]  # depth 2, base 4, 1 input channel, 1 class
    conv = lambda k, ci, co: (k * k * ci + 1) * co  # noqa: E731
    enc = sum(conv(3, ci, co) + conv(3, co, co) for ci, co in zip([1] + f[:-1], f))
    # X^{1,1}: [X^{1,0}, up(X^{2,0})]; X^{0,1}: [X^{0,0}, up(X^{1,0})]; X^{0,2}: [X^{0,0}, X^{0,1}, up(X^{1,1})]
    ups = conv(2, 16, 8) + conv(2, 8, 4) + conv(2, 8, 4)
    dec = (conv(3, 16, 8) + conv(3, 8, 8)) + (conv(3, 8, 4) + conv(3, 4, 4)) + (conv(3, 12, 4) + conv(3, 4, 4))
    head = conv(1, 4, 1)
    assert n_params(UNetPlusPlus(1, 1, depth=2, base_channels=4)) == enc + ups + dec + head


def test_nodes_are_named_like_the_paper():
    m = UNetPlusPlus(depth=4, base_channels=4)
    names = set(m.nodes.keys())
    assert names == {f"x_{i}_{j}" for j in range(5) for i in range(5 - j)}
    assert len(names) == 15


@pytest.mark.parametrize("cls", FAMILY)
@pytest.mark.parametrize("size", [(16, 16), (32, 48)])
def test_shapes_with_and_without_deep_supervision(cls, size):
    x = torch.rand(2, 3, *size)
    plain = cls(3, 2, depth=4, base_channels=4).eval()
    assert plain(x).shape == (2, 2, *size)
    ds = cls(3, 2, depth=4, base_channels=4, deep_supervision=True).eval()
    outs = ds(x)
    assert isinstance(outs, list) and len(outs) == 4 and all(o.shape == (2, 2, *size) for o in outs)


@pytest.mark.parametrize("cls", FAMILY)
def test_pruning_is_exact_and_shares_weights(cls):
    torch.manual_seed(0)
    m = cls(1, 1, depth=4, base_channels=4, deep_supervision=True).eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        heads = m(x)
        counts = []
        for level in range(1, 5):
            p = m.pruned(level).eval()
            assert torch.equal(p(x), heads[level - 1])
            counts.append(n_params(p))
    assert counts == sorted(counts) and counts[-1] <= n_params(m)
    p = m.pruned(2)
    assert p.nodes["x_0_0"] is m.nodes["x_0_0"]  # the same module: trained weights are shared
    assert "x_3_0" not in p.nodes  # nodes deeper than the level are gone


def test_unete_members_are_unets_of_each_depth():
    """The UNet-e sub-network ending at X^{0,j} reads only encoder nodes: it is a U-Net of depth j."""
    m = UNetE(1, 1, depth=3, base_channels=4)
    assert m.same_row(3) == [0]
    assert UNetPlus.same_row(3) == [2] and UNetPlusPlus.same_row(3) == [0, 1, 2]


def test_bad_input():
    m = UNetPlusPlus(1, 1, depth=4, base_channels=4)
    with pytest.raises(ValueError, match=r"divisible by 2\*\*depth = 16.*48 and 64"):
        m(torch.rand(1, 1, 50, 50))
    with pytest.raises(ValueError, match="channels"):
        m(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="deep_supervision"):
        m.pruned(2)
    with pytest.raises(ValueError, match="level"):
        UNetPlusPlus(deep_supervision=True, base_channels=4).pruned(5)
    with pytest.raises(ValueError, match="depth"):
        UNetPlusPlus(depth=0)


def test_pruned_unete_keeps_only_what_its_head_reads():
    """UNet-e's X^{0,2} reads X^{0,0} and up(X^{1,1}), not X^{0,1}: pruning drops X^{0,1}."""
    m = UNetE(1, 1, depth=4, base_channels=4)
    assert set(m.pruned(2).nodes) == {"x_0_0", "x_1_0", "x_2_0", "x_1_1", "x_0_2"}
    pp = UNetPlusPlus(1, 1, depth=4, base_channels=4, deep_supervision=True)
    assert set(pp.pruned(2).nodes) == {f"x_{i}_{j}" for j in range(3) for i in range(3 - j)}


def test_nested_grid_edges_match_the_paper():
    from segedu.viz import draw_nested_grid, nested_grid

    nodes, skips, ups, downs, heads = nested_grid(UNetPlusPlus(depth=4, base_channels=2))
    assert len(nodes) == 15 and len(ups) == 10 and len(downs) == 4 and heads == [4]
    assert len(skips) == sum((5 - j) * j for j in range(1, 5))  # X^{i,j} reads j same-row nodes
    nodes, skips, ups, downs, heads = nested_grid(UNetPlus(depth=4, base_channels=2, deep_supervision=True))
    assert len(skips) == 10 and heads == [1, 2, 3, 4]
    nodes, skips, ups, downs, heads = nested_grid(UNet(depth=3, padding="same", base_channels=2))
    assert sorted(nodes) == [(0, 0), (0, 3), (1, 0), (1, 2), (2, 0), (2, 1), (3, 0)] and len(skips) == 3
    fig = draw_nested_grid(UNetPlusPlus(depth=2, base_channels=2, deep_supervision=True).pruned(1))
    assert fig is not None


def test_chapter6_demos():
    from segedu.widgets import family_explorer, pruning_explorer

    m = UNetPlusPlus(1, 1, depth=2, base_channels=2, deep_supervision=True)
    x, y = torch.rand(2, 1, 16, 16), torch.randint(0, 2, (2, 16, 16))
    demo = pruning_explorer(m, x, y, times_ms={1: 1.0, 2: 2.0})
    assert len(demo.frames()) == 2
    assert len(family_explorer({"UNet++": m, "UNet-L2": UNet(depth=2, padding="same", base_channels=2)}).frames()) == 2
    with pytest.raises(ValueError, match="deep_supervision"):
        pruning_explorer(UNetPlusPlus(1, 1, depth=2, base_channels=2), x, y)
