"""Transposed convolution, derived from scratch.

Three views of the same operation:

1. **Overlap-add.** Every input value scales a copy of the kernel, the copies are placed
   ``stride`` pixels apart in the output, and where they overlap they are summed
   (:func:`transposed_conv2d_naive`, :func:`overlap_count`).
2. **The matrix.** A 1D convolution is a matrix product ``y = X @ a``; the same matrix,
   transposed, maps ``y`` back to the length of ``a``: ``X.T @ y`` *is* the transposed
   convolution — hence the name (:func:`conv_matrix`).
3. **The size arithmetic** (:func:`conv_output_size`, :func:`transposed_output_size`).

Conventions follow PyTorch: "convolution" is cross-correlation,
``y[i] = sum_j k[j] * a_padded[i * stride + j]``.

Introduced in chapter 4.
"""

from __future__ import annotations

import numbers

import torch

__all__ = ["conv_output_size", "transposed_output_size", "conv_matrix", "transposed_conv2d_naive",
           "overlap_count", "bilinear_kernel"]


def _check_int(name: str, value, minimum: int) -> int:
    integral = isinstance(value, numbers.Integral) or (
        torch.is_tensor(value) and value.dim() == 0 and not value.is_floating_point() and not value.is_complex())
    if isinstance(value, bool) or not integral:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if value < minimum:
        hint = {"stride": " (stride 1 = every position; stride 0 would never move the kernel)",
                "padding": " (padding counts zeros added at each end; it cannot be negative)"}.get(name, "")
        raise ValueError(f"{name} must be >= {minimum}, got {value}{hint}")
    return value


def conv_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Length of a convolution's output along one axis.

    .. math:: n_\\text{out} = \\left\\lfloor \\frac{n + 2p - d(k - 1) - 1}{s} \\right\\rfloor + 1

    The dilated kernel spans ``d (k - 1) + 1`` positions; it fits ``n + 2p - span`` steps of one
    pixel into the padded input, of which every ``s``-th is kept. Introduced in chapter 4.

    Raises:
        ValueError: if the (dilated) kernel is longer than the padded input.
    """
    n, k = _check_int("input length", n, 1), _check_int("kernel_size", kernel_size, 1)
    s, p, d = _check_int("stride", stride, 1), _check_int("padding", padding, 0), _check_int("dilation", dilation, 1)
    span = d * (k - 1) + 1
    if span > n + 2 * p:
        raise ValueError(f"the kernel spans {span} positions (kernel_size={k}, dilation={d}) but the padded input "
                         f"has only {n + 2 * p} (length {n} + 2 x padding {p}); use a smaller kernel or more padding")
    return (n + 2 * p - span) // s + 1


def transposed_output_size(n: int, kernel_size: int, stride: int = 1, padding: int = 0, output_padding: int = 0,
                           dilation: int = 1) -> int:
    """Length of a transposed convolution's output along one axis.

    .. math:: n_\\text{out} = (n - 1)s - 2p + d(k - 1) + \\text{output\\_padding} + 1

    Read it as overlap-add: ``n`` kernel copies placed ``s`` apart cover ``(n - 1)s + d(k-1) + 1``
    positions; ``padding`` *removes* ``p`` from each end (it undoes the padding of the
    convolution this one transposes). ``output_padding`` (``< stride``, or ``< dilation``) adds
    positions at the end: it picks one of the several input lengths that a strided convolution
    maps to the same output length. Introduced in chapter 4.
    """
    n, k = _check_int("input length", n, 1), _check_int("kernel_size", kernel_size, 1)
    s, p, d = _check_int("stride", stride, 1), _check_int("padding", padding, 0), _check_int("dilation", dilation, 1)
    op = _check_int("output_padding", output_padding, 0)
    if op >= max(s, d):
        raise ValueError(f"output_padding must be smaller than stride or dilation (here {max(s, d)}), got {op}")
    out = (n - 1) * s - 2 * p + d * (k - 1) + op + 1
    if out < 1:
        raise ValueError(f"padding={p} removes more than the transposed convolution produces "
                         f"({(n - 1) * s + d * (k - 1) + op + 1} positions); use less padding")
    return out


def conv_matrix(kernel, input_length: int, stride: int = 1, padding: int = 0):
    """The matrix ``X`` of a 1D convolution: ``X @ a == conv1d(a, kernel, stride, padding)``.

    Row ``i`` holds the kernel at the position where output ``i`` reads the input:
    ``X[i, i * stride + j - padding] = kernel[j]``. Columns that would fall on the zero padding
    are dropped (multiplying a zero contributes nothing), so ``X`` acts on the *unpadded* ``a``
    and has shape ``[output_length, input_length]``.

    Its transpose is the transposed convolution: ``X.T @ y`` equals
    ``conv_transpose1d(y, kernel, stride, padding, output_padding=r)`` with
    ``r = (input_length + 2 padding - len(kernel)) % stride`` — a vector as long as ``a`` again.

    Args:
        kernel: a 1D tensor / sequence of numbers, or a sequence of sympy symbols (then a sympy
            ``Matrix`` is returned, to show the structure symbolically).
        input_length: length of ``a``.
        stride, padding: as in ``torch.nn.functional.conv1d``.

    Returns:
        ``[out, input_length]`` tensor in the kernel's dtype (float32 for a list), or a sympy Matrix.

    Introduced in chapter 4.
    """
    symbolic = False
    if torch.is_tensor(kernel):
        if kernel.dim() != 1:
            raise ValueError(f"kernel must be 1D (one row of weights), got shape {tuple(kernel.shape)}")
        values = kernel
    else:
        try:
            values = list(kernel)
        except TypeError:
            raise TypeError(f"kernel must be a 1D tensor or a sequence of numbers/symbols, got {type(kernel).__name__}") from None
        try:
            import sympy

            symbolic = any(isinstance(v, sympy.Basic) and not v.is_number for v in values)
        except ImportError:  # pragma: no cover
            symbolic = False
        if not symbolic:
            values = torch.as_tensor(values, dtype=torch.float32)
            if values.dim() != 1:
                raise ValueError(f"kernel must be 1D, got shape {tuple(values.shape)}")
    k = len(values)
    if k == 0:
        raise ValueError("kernel is empty; give at least one weight")
    n = _check_int("input_length", input_length, 1)
    out = conv_output_size(n, k, stride, padding)  # also validates stride, padding, kernel length
    if symbolic:
        import sympy

        X = sympy.zeros(out, n)
    else:
        X = torch.zeros(out, n, dtype=values.dtype, device=values.device)
    for i in range(out):
        for j in range(k):
            col = i * stride + j - padding
            if 0 <= col < n:  # outside: the kernel tap sits on a padded zero
                X[i, col] = values[j]
    return X


def _as_4d(x: torch.Tensor, name: str):
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 2:
        return x[None, None], 2
    if x.dim() == 3:
        return x[None], 3
    if x.dim() == 4:
        return x, 4
    raise ValueError(f"{name} must be [H, W], [C, H, W] or [N, C, H, W], got shape {tuple(x.shape)}")


def transposed_conv2d_naive(x: torch.Tensor, k: torch.Tensor, stride: int = 1, padding: int = 0,
                            output_padding: int = 0) -> torch.Tensor:
    """Transposed convolution written as overlap-add with plain loops.

    For every input position ``(i, j)``, the kernel scaled by the input's value is added to the
    output window whose top-left corner is ``(i * stride, j * stride)``. Then ``padding`` rows and
    columns are cut from each border. Equals ``torch.nn.functional.conv_transpose2d``.

    Args:
        x: ``[H, W]`` (one channel), ``[C_in, H, W]`` or ``[N, C_in, H, W]``.
        k: ``[kh, kw]`` (one input and one output channel) or ``[C_in, C_out, kh, kw]`` — PyTorch's
            layout for transposed convolutions (note: in, then out). ``C_out`` = the number of
            filters = the output's channels.
        stride, padding, output_padding: as in PyTorch (same value for both axes).

    Returns:
        A tensor of the same rank as ``x``.

    Introduced in chapter 4.
    """
    x4, rank = _as_4d(x, "x")
    if not torch.is_tensor(k):
        raise TypeError(f"k must be a torch.Tensor, got {type(k).__name__}")
    if k.dim() == 2:
        k = k[None, None]
    if k.dim() != 4:
        raise ValueError(f"k must be [kh, kw] or [C_in, C_out, kh, kw], got shape {tuple(k.shape)}")
    if k.shape[0] != x4.shape[1]:
        raise ValueError(f"k has {k.shape[0]} input channels (k.shape[0]) but x has {x4.shape[1]}; "
                         "the transposed-convolution weight layout is [C_in, C_out, kh, kw]")
    if rank == 2 and k.shape[1] != 1:
        raise ValueError("a 2D input [H, W] gives a one-channel output; pass x as [C, H, W] for several filters")
    stride = _check_int("stride", stride, 1)
    padding = _check_int("padding", padding, 0)
    N, _, H, W = x4.shape
    kh, kw = k.shape[2:]
    Ho = transposed_output_size(H, kh, stride, padding, output_padding)
    Wo = transposed_output_size(W, kw, stride, padding, output_padding)
    # The full (uncropped) canvas; output_padding only extends the far end.
    full = torch.zeros(N, k.shape[1], (H - 1) * stride + kh + output_padding,
                       (W - 1) * stride + kw + output_padding, dtype=torch.result_type(x4, k), device=x4.device)
    for i in range(H):
        for j in range(W):
            # each input value (one per sample and input channel) scales its kernel; sum over C_in
            contribution = torch.einsum("nc,cokl->nokl", x4[:, :, i, j], k)
            full[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += contribution
    out = full[:, :, padding:padding + Ho, padding:padding + Wo]
    return out.reshape(out.shape[-2:]) if rank == 2 else out[0] if rank == 3 else out


def overlap_count(input_size: int, kernel_size: int, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """How many kernel copies land on each output pixel of a 2D transposed convolution.

    It is the transposed convolution of an all-ones input with an all-ones kernel. When
    ``kernel_size`` is not divisible by ``stride`` the counts alternate between neighbouring
    pixels — the source of checkerboard artifacts (Odena et al., 2016). Introduced in chapter 4.
    """
    ones = torch.ones(_check_int("input_size", input_size, 1), input_size)
    k = torch.ones(_check_int("kernel_size", kernel_size, 1), kernel_size)
    return transposed_conv2d_naive(ones, k, stride=stride, padding=padding)


def bilinear_kernel(kernel_size: int, in_channels: int = 1, out_channels: int | None = None) -> torch.Tensor:
    """Weights ``[C_in, C_out, k, k]`` that make a transposed convolution bilinear interpolation.

    With ``kernel_size = 2 * factor`` (and ``stride = factor``, ``padding = factor // 2``) the
    layer upsamples by ``factor``. Channel ``c`` is mapped to channel ``c`` only (a diagonal
    weight), so channels do not mix. The FCN paper initialises its learnable upsampling this way.
    Introduced in chapter 2 (used again in chapter 4).
    """
    k = _check_int("kernel_size", kernel_size, 1)
    out_channels = in_channels if out_channels is None else out_channels
    if in_channels != out_channels:
        raise ValueError(f"a bilinear kernel maps each channel to itself: in_channels ({in_channels}) must equal "
                         f"out_channels ({out_channels})")
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = torch.arange(k, dtype=torch.float64)
    filt1d = 1 - (og - center).abs() / factor
    filt = filt1d[:, None] * filt1d[None, :]
    w = torch.zeros(in_channels, out_channels, k, k, dtype=torch.float64)
    w[range(in_channels), range(in_channels)] = filt
    return w.float()
