"""Size arithmetic: centre cropping (used by training on valid-padding networks) and, in
chapter 5, the U-Net input/output size rules.

Introduced in chapter 5.
"""

from __future__ import annotations

import torch

__all__ = ["center_crop", "unet_size_trace", "unet_output_size", "valid_input_sizes", "nearest_valid_input_size",
           "check_unet_input_size"]


def center_crop(x: torch.Tensor, size) -> torch.Tensor:
    """Crop the last two dimensions of ``x`` to ``size`` (``int`` or ``(h, w)``) around the centre.

    This is the "copy and crop" of the U-Net paper. When the margin is odd, the extra pixel is
    taken from the bottom/right, i.e. the crop starts at ``(H - h) // 2``.
    """
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    H, W = x.shape[-2:]
    if h > H or w > W:
        raise ValueError(f"cannot centre-crop a {H}x{W} map to the larger size {h}x{w}")
    top, left = (H - h) // 2, (W - w) // 2
    return x[..., top : top + h, left : left + w]


def _check_depth(depth) -> int:
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer (4 in the U-Net paper), got {depth!r}")
    return depth


def unet_size_trace(input_size: int, depth: int = 4):
    """Every spatial size a valid-padding U-Net goes through, level by level.

    Returns a list of ``(stage, size)``: ``"conv"`` after each unpadded 3x3 convolution (-2),
    ``"pool"`` after each 2x2 max pooling (/2), ``"up"`` after each 2x2 up-convolution (x2).
    Raises ``ValueError`` if a pooling would meet an odd size or a size drops below 1.
    """
    _check_depth(depth)
    x, trace = int(input_size), [("input", int(input_size))]

    def conv():
        nonlocal x
        x -= 2
        if x < 1:
            raise ValueError(f"input {input_size}: the feature map vanishes (size {x}) in the U-Net of depth {depth}")
        trace.append(("conv", x))

    for _ in range(depth):
        conv(), conv()
        if x % 2:
            raise ValueError(f"input {input_size}: a 2x2 max pooling meets the odd size {x}")
        x //= 2
        trace.append(("pool", x))
    conv(), conv()
    for _ in range(depth):
        x *= 2
        trace.append(("up", x))
        conv(), conv()
    return trace


def unet_output_size(input_size: int, depth: int = 4) -> int:
    """Output side of the paper's (valid-padding) U-Net for an input side; 572 -> 388 at depth 4.

    Raises ``ValueError`` (naming the nearest valid sizes) if ``input_size`` is not valid.
    """
    try:
        return unet_size_trace(input_size, depth)[-1][1]
    except ValueError as e:
        lo, hi = nearest_valid_input_size(input_size, depth)
        raise ValueError(f"{e}; the nearest valid input sizes are {lo} and {hi}") from None


def _is_valid(size: int, depth: int) -> bool:
    try:
        unet_size_trace(size, depth)
        return True
    except ValueError:
        return False


def valid_input_sizes(depth: int = 4, max_size: int = 1024, min_size: int = 1) -> list[int]:
    """All valid input sides of the valid-padding U-Net of ``depth`` between ``min_size`` and ``max_size``.

    For depth 4 these are 140, 156, 172, ... = 16k + 124 (k = 1, 2, ...): see chapter 5.
    """
    _check_depth(depth)
    return [s for s in range(max(1, min_size), max_size + 1) if _is_valid(s, depth)]


def nearest_valid_input_size(size: int, depth: int = 4) -> tuple[int | None, int]:
    """The nearest valid input sides ``(smaller_or_equal, larger_or_equal)``; ``None`` if no smaller one exists."""
    _check_depth(depth)
    size = int(size)
    lo = next((s for s in range(size, 0, -1) if _is_valid(s, depth)), None)
    hi = next(s for s in range(max(size, 1), size + 2**(depth + 2) * 4) if _is_valid(s, depth))
    return lo, hi


def check_unet_input_size(x, in_channels: int, depth: int, padding: str) -> None:
    """Reject bad input to a U-Net-like model *before* any computation, with a message that helps."""
    import torch

    if not torch.is_tensor(x):
        raise TypeError(f"input must be a torch.Tensor [N, C, H, W], got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"input must have shape [N, C, H, W] (add a batch dimension with x[None]), got {tuple(x.shape)}")
    if x.shape[1] != in_channels:
        raise ValueError(f"input has {x.shape[1]} channels but the model expects in_channels={in_channels}")
    if not x.is_floating_point():
        raise TypeError(f"input must be a float tensor (e.g. an image scaled to [0, 1]), got {x.dtype}")
    for side in x.shape[-2:]:
        side = int(side)
        if padding == "valid":
            if not _is_valid(side, depth):
                lo, hi = nearest_valid_input_size(side, depth)
                raise ValueError(f"input side {side} is not valid for the valid-padding U-Net of depth {depth}: "
                                 f"the nearest valid sizes are {lo} (smaller) and {hi} (larger); "
                                 "see segedu.sizes.valid_input_sizes, or pad the image / use padding='same'")
        elif side % 2**depth:
            m = 2**depth
            lo, hi = (side // m) * m, -(-side // m) * m
            raise ValueError(f"input side {side} must be divisible by 2**depth = {m} so every pooling halves it "
                             f"exactly; the nearest valid sizes are {lo or m} and {hi}")
