"""Chapter 3's claims about fixed upsampling layers.

* nearest neighbour copies each value into its whole block (= ``F.interpolate(mode="nearest")``);
* bed of nails puts each value at the block's top-left corner, zeros elsewhere;
* index (max) unpooling puts each value back exactly where max-pooling took it from
  (= ``nn.MaxUnpool2d``), so pool -> unpool restores the argmax positions exactly;
* bad input gets a clear error (no indices, indices of another shape, wrong dtypes).
"""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from segedu.layers import BedOfNailsUpsample, MaxUnpool, NearestUpsample

GRID = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])


def test_nearest_copies_each_value_into_its_block():
    out = NearestUpsample(2)(GRID)
    assert torch.equal(out[0, 0], torch.tensor([[1.0, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]))


@pytest.mark.parametrize("s", [1, 2, 3])
def test_nearest_equals_interpolate(s):
    x = torch.randn(2, 3, 4, 5)
    assert torch.equal(NearestUpsample(s)(x), F.interpolate(x, scale_factor=s, mode="nearest"))


def test_bed_of_nails_places_values_at_the_top_left_and_zeros_elsewhere():
    out = BedOfNailsUpsample(2)(GRID)
    assert torch.equal(out[0, 0], torch.tensor([[1.0, 0, 2, 0], [0, 0, 0, 0], [3, 0, 4, 0], [0, 0, 0, 0]]))
    x = torch.randn(2, 3, 4, 5)
    out = BedOfNailsUpsample(3)(x)
    assert out.shape == (2, 3, 12, 15)
    assert torch.equal(out[:, :, ::3, ::3], x)
    assert int((out != 0).sum()) == int((x != 0).sum())  # nothing else is non-zero


def test_max_unpool_restores_the_argmax_positions_of_the_pooling():
    x = torch.tensor([[[[1.0, 5.0, 0.0, 2.0],
                        [3.0, 4.0, 9.0, 1.0],
                        [7.0, 0.0, 1.0, 1.0],
                        [0.0, 0.0, 1.0, 8.0]]]])
    pooled, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert torch.equal(pooled[0, 0], torch.tensor([[5.0, 9.0], [7.0, 8.0]]))
    out = MaxUnpool(2)(pooled, idx)
    expected = torch.zeros(4, 4)
    expected[0, 1], expected[1, 2], expected[2, 0], expected[3, 3] = 5, 9, 7, 8
    assert torch.equal(out[0, 0], expected)
    # bed of nails puts the same values at the top-left instead: only 7 (a top-left maximum) lands right
    nails = BedOfNailsUpsample(2)(pooled)[0, 0]
    assert int(((nails != 0) & (expected == 0)).sum()) == 3


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5), k=st.integers(2, 3),
       seed=st.integers(0, 2**16))
def test_pool_unpool_round_trip_is_exact_at_the_argmax_positions(n, c, h, w, k, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c, h * k, w * k, generator=g)  # continuous values: no ties
    pooled, idx = nn.MaxPool2d(k, return_indices=True)(x)
    out = MaxUnpool(k)(pooled, idx)
    assert torch.equal(out, nn.MaxUnpool2d(k)(pooled, idx))
    kept = out != 0
    assert torch.equal(out[kept], x[kept])  # every value sits where it was taken from
    assert int(kept.sum()) == pooled.numel()
    # ... and each k x k block holds exactly one non-zero, its maximum
    per_block = F.avg_pool2d(kept.float(), k) * k * k
    assert torch.equal(per_block, torch.ones_like(pooled))
    assert torch.equal(F.max_pool2d(out.masked_fill(~kept, float("-inf")), k), pooled)


def test_max_unpool_with_odd_input_needs_output_size():
    x = torch.randn(1, 2, 7, 7)
    pooled, idx = nn.MaxPool2d(2, return_indices=True)(x)  # 7 -> 3: the last row/column is dropped
    assert pooled.shape[-1] == 3
    assert MaxUnpool(2)(pooled, idx, output_size=x.shape).shape == (1, 2, 7, 7)
    assert torch.equal(MaxUnpool(2)(pooled, idx, output_size=(7, 7)),
                       nn.MaxUnpool2d(2)(pooled, idx, output_size=(7, 7)))
    with pytest.raises(ValueError, match="output_size"):  # default 6x6 is too small for these indices
        x = torch.zeros(1, 1, 7, 7)
        x[0, 0, 5, 5] = 1
        pooled, idx = nn.MaxPool2d(2, return_indices=True)(x)
        MaxUnpool(2)(pooled, idx + 6)  # an index beyond 6x6


def test_max_unpool_with_overlapping_pooling_stride():
    x = torch.randn(1, 1, 7, 7)
    pooled, idx = nn.MaxPool2d(3, stride=2, return_indices=True)(x)
    assert torch.equal(MaxUnpool(3, stride=2)(pooled, idx), nn.MaxUnpool2d(3, stride=2)(pooled, idx))


def test_layers_pass_gradients():
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    pooled, idx = nn.MaxPool2d(2, return_indices=True)(x)
    (NearestUpsample(2)(pooled).sum() + BedOfNailsUpsample(2)(pooled).sum() + MaxUnpool(2)(pooled, idx).sum()).backward()
    assert x.grad is not None and int((x.grad != 0).sum()) == pooled.numel()


def test_max_unpool_without_indices_says_how_to_get_them():
    with pytest.raises(ValueError, match="return_indices=True"):
        MaxUnpool(2)(torch.randn(1, 1, 2, 2))


def test_max_unpool_with_indices_of_another_shape():
    _, idx = nn.MaxPool2d(2, return_indices=True)(torch.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="must have the shape of x"):
        MaxUnpool(2)(torch.randn(1, 1, 2, 2), idx)


def test_max_unpool_with_float_indices():
    with pytest.raises(TypeError, match="int64"):
        MaxUnpool(2)(torch.randn(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))


@pytest.mark.parametrize("layer", [NearestUpsample, BedOfNailsUpsample, MaxUnpool])
@pytest.mark.parametrize("factor", [0, -1, 1.5, True, "2"])
def test_bad_scale_factor(layer, factor):
    with pytest.raises(ValueError, match="integer >= 1"):
        layer(factor)


@pytest.mark.parametrize("layer", [NearestUpsample(2), BedOfNailsUpsample(2)])
def test_bad_input_shape_and_type(layer):
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        layer(torch.randn(4, 4))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer([[1.0]])


def test_repr_names_the_factor():
    assert "scale_factor=3" in repr(NearestUpsample(3))
    assert "kernel_size=2, stride=2" in repr(MaxUnpool(2))
