"""Chapter 4's claims about transposed convolution, checked against PyTorch.

* a 1D convolution is a matrix product ``y = X @ a``, and ``X.T @ y`` is the transposed
  convolution (``conv_transpose1d``) — it returns a vector as long as ``a``;
* the overlap-add loops of ``transposed_conv2d_naive`` compute ``conv_transpose2d``;
* the output-size formulas agree with torch on a whole grid;
* overlap counts are uneven exactly when the kernel size is not divisible by the stride
  (checkerboard artifacts), and the bilinear kernel makes a transposed convolution bilinear upsampling.
"""

import itertools

import numpy as np
import pytest
import sympy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from segedu.transposed import (bilinear_kernel, conv_matrix, conv_output_size, overlap_count,
                               transposed_conv2d_naive, transposed_output_size)

FAST = settings(max_examples=60, deadline=None)


# ------------------------------------------------------------------------------------------------
# The matrix X of a 1D convolution
# ------------------------------------------------------------------------------------------------

def test_conv_matrix_of_the_notes_kernel_x_y_z_with_padding_1():
    """The notes' example: kernel [x, y, z], input of length 4 zero-padded at both ends."""
    x, y, z = sympy.symbols("x y z")
    X = conv_matrix([x, y, z], 4, stride=1, padding=1)
    assert isinstance(X, sympy.Matrix)
    assert X == sympy.Matrix([[y, z, 0, 0],
                              [x, y, z, 0],
                              [0, x, y, z],
                              [0, 0, x, y]])
    # stride 2: every second row of the stride-1 matrix
    assert conv_matrix([x, y, z], 4, stride=2, padding=1) == sympy.Matrix([[y, z, 0, 0], [0, x, y, z]])


def test_conv_matrix_numeric_entries_and_shape():
    X = conv_matrix(torch.tensor([1.0, 2.0, 3.0]), 5)
    assert X.shape == (3, 5)
    assert torch.equal(X, torch.tensor([[1.0, 2, 3, 0, 0], [0, 1, 2, 3, 0], [0, 0, 1, 2, 3]]))
    assert conv_matrix([1, 2, 3], 5).dtype == torch.float32
    assert conv_matrix(torch.ones(3, dtype=torch.float64), 5).dtype == torch.float64


@FAST
@given(n=st.integers(1, 24), k=st.integers(1, 6), stride=st.integers(1, 4), padding=st.integers(0, 3),
       seed=st.integers(0, 2**16))
def test_X_times_a_is_conv1d_and_X_transpose_is_conv_transpose1d(n, k, stride, padding, seed):
    if k > n + 2 * padding:  # the kernel does not fit: conv_matrix must refuse (tested below)
        return
    g = torch.Generator().manual_seed(seed)
    kernel = torch.randn(k, generator=g, dtype=torch.float64)
    a = torch.randn(n, generator=g, dtype=torch.float64)
    X = conv_matrix(kernel, n, stride=stride, padding=padding)
    y_torch = F.conv1d(a[None, None], kernel[None, None], stride=stride, padding=padding)[0, 0]
    assert X.shape == (len(y_torch), n) == (conv_output_size(n, k, stride, padding), n)
    torch.testing.assert_close(X @ a, y_torch, atol=1e-5, rtol=1e-5)
    # The transpose maps y back to the length of a: "transposed" convolution.
    y = torch.randn(len(y_torch), generator=g, dtype=torch.float64)
    r = (n + 2 * padding - k) % stride  # the lengths a strided convolution cannot tell apart
    back = F.conv_transpose1d(y[None, None], kernel[None, None], stride=stride, padding=padding, output_padding=r)[0, 0]
    assert (X.T @ y).shape == (n,) == back.shape
    torch.testing.assert_close(X.T @ y, back, atol=1e-5, rtol=1e-5)


def test_conv_matrix_transpose_is_the_adjoint_not_the_inverse():
    """X.T restores the size of a, not its values (the chapter's warning)."""
    kernel = torch.tensor([1.0, 2.0, 1.0])
    a = torch.arange(6.0)
    X = conv_matrix(kernel, 6, padding=1)
    assert (X.T @ (X @ a)).shape == a.shape
    assert not torch.allclose(X.T @ (X @ a), a)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(kernel=[1, 2, 3, 4, 5, 6], input_length=3, padding=1), ValueError, "kernel spans 6"),
    (dict(kernel=[1, 2, 3], input_length=5, padding=-1), ValueError, "padding must be >= 0"),
    (dict(kernel=[1, 2, 3], input_length=5, stride=0), ValueError, "stride must be >= 1"),
    (dict(kernel=[1, 2, 3], input_length=5, stride=1.5), TypeError, "stride must be an int"),
    (dict(kernel=[], input_length=5), ValueError, "kernel is empty"),
    (dict(kernel=torch.ones(2, 2), input_length=5), ValueError, "kernel must be 1D"),
    (dict(kernel=3, input_length=5), TypeError, "kernel must be a 1D tensor"),
    (dict(kernel=[1, 2], input_length=0), ValueError, "input_length must be >= 1"),
])
def test_conv_matrix_bad_input_says_what_was_expected(kwargs, error, words):
    with pytest.raises(error, match=words):
        conv_matrix(**kwargs)


def test_sizes_accept_numpy_and_tensor_integers():
    assert conv_output_size(np.int64(8), 3, stride=np.int32(2)) == 3
    assert transposed_output_size(torch.tensor(4), 4, 2, 1) == 8


# ------------------------------------------------------------------------------------------------
# Overlap-add, with loops
# ------------------------------------------------------------------------------------------------

@FAST
@given(h=st.integers(1, 5), w=st.integers(1, 5), kh=st.integers(1, 4), kw=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 2), output_padding=st.integers(0, 2),
       c_in=st.integers(1, 3), c_out=st.integers(1, 3), n=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_naive_transposed_conv2d_equals_torch(h, w, kh, kw, stride, padding, output_padding, c_in, c_out, n, seed):
    if output_padding >= stride:
        return
    if min((h - 1) * stride + kh, (w - 1) * stride + kw) + output_padding - 2 * padding < 1:
        return  # padding would remove everything: torch and the naive version both refuse
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, c_in, h, w, generator=g, dtype=torch.float64)
    k = torch.randn(c_in, c_out, kh, kw, generator=g, dtype=torch.float64)
    ours = transposed_conv2d_naive(x, k, stride=stride, padding=padding, output_padding=output_padding)
    ref = F.conv_transpose2d(x, k, stride=stride, padding=padding, output_padding=output_padding)
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=1e-5)


def test_naive_transposed_conv2d_input_ranks_and_overlap_add_picture():
    # One input value = one scaled copy of the kernel, placed stride pixels apart.
    k = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    x = torch.tensor([[1.0, 0.0], [0.0, 10.0]])
    out = transposed_conv2d_naive(x, k, stride=2)
    assert out.shape == (4, 4)
    assert torch.equal(out[:2, :2], k) and torch.equal(out[2:, 2:], 10 * k)
    assert torch.equal(out[:2, 2:], torch.zeros(2, 2))
    # overlaps are summed: stride 1, two neighbouring ones
    out = transposed_conv2d_naive(torch.tensor([[1.0, 1.0]]), k, stride=1)
    assert torch.equal(out, torch.tensor([[1.0, 3.0, 2.0], [3.0, 7.0, 4.0]]))
    # [C, H, W] input keeps its rank; several filters give several output channels
    x3 = torch.randn(2, 3, 3)
    k4 = torch.randn(2, 5, 3, 3)
    assert transposed_conv2d_naive(x3, k4, stride=2).shape == (5, 7, 7)


@pytest.mark.parametrize("x, k, kwargs, error, words", [
    ([[1.0]], torch.ones(2, 2), {}, TypeError, "x must be a torch.Tensor"),
    (torch.ones(3), torch.ones(2, 2), {}, ValueError, r"\[H, W\], \[C, H, W\] or \[N, C, H, W\]"),
    (torch.ones(3, 3), [[1.0]], {}, TypeError, "k must be a torch.Tensor"),
    (torch.ones(3, 3), torch.ones(2), {}, ValueError, r"\[kh, kw\] or \[C_in, C_out, kh, kw\]"),
    (torch.ones(2, 3, 3), torch.ones(3, 1, 2, 2), {}, ValueError, "input channels"),
    (torch.ones(3, 3), torch.ones(1, 2, 2, 2), {}, ValueError, "one-channel output"),
    (torch.ones(3, 3), torch.ones(2, 2), dict(stride=0), ValueError, "stride must be >= 1"),
    (torch.ones(3, 3), torch.ones(2, 2), dict(padding=-1), ValueError, "padding must be >= 0"),
    (torch.ones(3, 3), torch.ones(2, 2), dict(stride=2, output_padding=2), ValueError, "output_padding must be smaller"),
    (torch.ones(1, 1), torch.ones(2, 2), dict(padding=2), ValueError, "use less padding"),
])
def test_naive_transposed_conv2d_bad_input(x, k, kwargs, error, words):
    with pytest.raises(error, match=words):
        transposed_conv2d_naive(x, k, **kwargs)


# ------------------------------------------------------------------------------------------------
# Output sizes
# ------------------------------------------------------------------------------------------------

def test_output_size_formulas_match_torch_on_a_grid():
    checked = 0
    for n, k, s, p, d in itertools.product(range(1, 9), range(1, 6), range(1, 4), range(0, 3), range(1, 3)):
        x = torch.zeros(1, 1, n)
        w = torch.zeros(1, 1, k)
        if d * (k - 1) + 1 > n + 2 * p:
            with pytest.raises(ValueError):
                conv_output_size(n, k, s, p, d)
        else:
            assert conv_output_size(n, k, s, p, d) == F.conv1d(x, w, stride=s, padding=p, dilation=d).shape[-1]
        for op in range(0, max(s, d)):
            expected = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
            if expected < 1:
                with pytest.raises(ValueError, match="less padding"):
                    transposed_output_size(n, k, s, p, op, d)
                continue
            got = F.conv_transpose1d(x, w, stride=s, padding=p, output_padding=op, dilation=d).shape[-1]
            assert transposed_output_size(n, k, s, p, op, d) == got
            checked += 1
    assert checked > 1000


def test_output_padding_picks_one_of_the_input_sizes_a_strided_conv_merges():
    # stride 2, kernel 3, padding 1 maps both 7 and 8 to 4 ...
    assert conv_output_size(7, 3, 2, 1) == conv_output_size(8, 3, 2, 1) == 4
    # ... so the transposed convolution needs output_padding to say which one it should return.
    assert transposed_output_size(4, 3, 2, 1, output_padding=0) == 7
    assert transposed_output_size(4, 3, 2, 1, output_padding=1) == 8
    with pytest.raises(ValueError, match="output_padding must be smaller than stride"):
        transposed_output_size(4, 3, 2, 1, output_padding=2)


def test_output_channels_are_the_number_of_filters():
    layer = torch.nn.ConvTranspose2d(3, 7, 4, stride=2, padding=1)
    assert layer.weight.shape == (3, 7, 4, 4)  # [C_in, C_out = number of filters, k, k]
    assert transposed_conv2d_naive(torch.randn(1, 3, 5, 5), layer.weight.detach()).shape[1] == 7


# ------------------------------------------------------------------------------------------------
# Checkerboard and the bilinear kernel
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("k, s", [(3, 2), (5, 2), (4, 3), (2, 2), (4, 2), (6, 3), (3, 1)])
def test_overlap_counts_are_uneven_iff_stride_does_not_divide_kernel(k, s):
    counts = overlap_count(6, k, stride=s)
    interior = counts[k:-k, k:-k]
    assert interior.numel() > 0
    uneven = interior.min() != interior.max()
    assert uneven == (k % s != 0)
    if k % s == 0:
        assert int(interior.min()) == (k // s) ** 2


def test_overlap_count_is_transposed_conv_of_ones():
    counts = overlap_count(4, 3, stride=2)
    assert torch.equal(counts, F.conv_transpose2d(torch.ones(1, 1, 4, 4), torch.ones(1, 1, 3, 3), stride=2)[0, 0])
    assert set(counts[2:-2, 2:-2].unique().tolist()) == {1.0, 2.0, 4.0}


@pytest.mark.parametrize("factor", [2, 4])
def test_bilinear_kernel_makes_transposed_conv_bilinear_upsampling(factor):
    x = torch.rand(1, 2, 6, 6, dtype=torch.float64)
    w = bilinear_kernel(2 * factor, 2).double()
    assert w.shape == (2, 2, 2 * factor, 2 * factor)
    assert torch.all(w[0, 1] == 0) and torch.all(w[1, 0] == 0)  # channels do not mix
    up = F.conv_transpose2d(x, w, stride=factor, padding=factor // 2)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert up.shape == ref.shape == (1, 2, 6 * factor, 6 * factor)
    m = factor  # away from the border (where the transposed conv sees zeros beyond the edge)
    torch.testing.assert_close(up[..., m:-m, m:-m], ref[..., m:-m, m:-m])


def test_bilinear_kernel_rejects_mixing_channels():
    with pytest.raises(ValueError, match="must equal out_channels"):
        bilinear_kernel(4, 2, 3)
