"""Fixed (parameter-free) upsampling layers.

Downsampling throws positions away; upsampling has to invent them. The three classic answers,
from the least to the most informed:

* :class:`NearestUpsample` copies each value into its whole ``s x s`` block;
* :class:`BedOfNailsUpsample` puts each value in the block's top-left corner and zeros
  elsewhere — one fixed position, whichever pixel the value came from;
* :class:`MaxUnpool` ("index pooling", SegNet) puts each value back exactly where the matching
  max-pooling found it, using the indices the pooling remembered; zeros elsewhere.

Learnable upsampling (transposed convolution) is chapter 4 (:mod:`segedu.transposed`).

Introduced in chapter 3.
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_int_at_least

__all__ = ["NearestUpsample", "BedOfNailsUpsample", "MaxUnpool"]


def _check_factor(scale_factor) -> int:
    return check_int_at_least("scale_factor", scale_factor, 1)


def _check_input(x, name: str = "x") -> None:
    if not torch.is_tensor(x):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be a batch of feature maps [N, C, H, W], got shape {tuple(x.shape)}")


class NearestUpsample(nn.Module):
    """Nearest-neighbour upsampling: every value fills its ``s x s`` output block.

    ``out[n, c, y, x] = in[n, c, y // s, x // s]``. Equal to
    ``F.interpolate(x, scale_factor=s, mode="nearest")``; written with ``repeat_interleave`` so
    the copy is visible.
    """

    def __init__(self, scale_factor: int = 2):
        super().__init__()
        self.scale_factor = _check_factor(scale_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        s = self.scale_factor
        return x.repeat_interleave(s, dim=2).repeat_interleave(s, dim=3)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}"


class BedOfNailsUpsample(nn.Module):
    """"Bed of nails": each value goes to the top-left pixel of its ``s x s`` block, zeros elsewhere.

    ``out[n, c, s*y, s*x] = in[n, c, y, x]``; all other outputs are 0. The position inside the
    block is fixed, so a value that max-pooling took from another pixel of the block is put back
    at the wrong place (measured in chapter 3).
    """

    def __init__(self, scale_factor: int = 2):
        super().__init__()
        self.scale_factor = _check_factor(scale_factor)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x)
        s = self.scale_factor
        n, c, h, w = x.shape
        out = x.new_zeros(n, c, h * s, w * s)
        out[:, :, ::s, ::s] = x
        return out

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}"


class MaxUnpool(nn.Module):
    """Index ("max") unpooling: put each value back where the matching max-pooling took it from.

    Pair it with ``nn.MaxPool2d(kernel_size, stride, return_indices=True)``: the pooling returns,
    for every output value, the flat index ``y * W + x`` of the input pixel that was the maximum.
    Unpooling scatters each value to that index in a zero map of the pre-pooling size. Equal to
    ``nn.MaxUnpool2d``, written as one ``scatter`` so the mechanism is visible.

    Args:
        kernel_size, stride: those of the pooling (``stride`` defaults to ``kernel_size``); they
            give the default output size ``(h - 1) * stride + kernel_size``.

    ``forward(x, indices, output_size=None)``; pass ``output_size=(H, W)`` (the pooling's input
    size) when it was odd — a ``2x2`` pooling maps both 7 and 6 to 3.
    """

    def __init__(self, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        self.kernel_size = _check_factor(kernel_size)
        self.stride = self.kernel_size if stride is None else _check_factor(stride)

    def forward(self, x: torch.Tensor, indices: torch.Tensor | None = None, output_size=None) -> torch.Tensor:
        _check_input(x)
        if indices is None:
            raise ValueError("MaxUnpool needs the indices of the matching max-pooling: create it with "
                             "nn.MaxPool2d(kernel_size, return_indices=True) and call unpool(x, indices)")
        if not torch.is_tensor(indices) or indices.dtype != torch.int64:
            raise TypeError("indices must be the int64 tensor returned by nn.MaxPool2d(..., return_indices=True), "
                            f"got {indices.dtype if torch.is_tensor(indices) else type(indices).__name__}")
        if indices.shape != x.shape:
            raise ValueError(f"indices {tuple(indices.shape)} must have the shape of x {tuple(x.shape)}: use the "
                             "indices of the pooling that produced this feature map (same level of the network)")
        n, c, h, w = x.shape
        if output_size is None:
            H, W = (h - 1) * self.stride + self.kernel_size, (w - 1) * self.stride + self.kernel_size
        else:
            H, W = (int(v) for v in tuple(output_size)[-2:])
        if indices.numel() and (indices.min() < 0 or indices.max() >= H * W):
            raise ValueError(f"indices reach {int(indices.max())} but the output has only {H}x{W} = {H * W} positions; "
                             "pass output_size=(H, W), the size of the pooling's input")
        out = x.new_zeros(n, c, H * W)
        out.scatter_(2, indices.flatten(2), x.flatten(2))
        return out.view(n, c, H, W)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}"
