"""Size arithmetic: centre cropping (used by training on valid-padding networks) and, in
chapter 5, the U-Net input/output size rules.

Introduced in chapter 5.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .checks import check_positive_int, is_int

__all__ = ["center_crop", "unet_size_trace", "unet_levels", "UNetLevels", "unet_output_size", "valid_input_sizes",
           "nearest_valid_input_size", "covering_input_size", "check_unet_input_size", "MAX_DEPTH", "MAX_LISTED"]

#: The deepest U-Net the size functions answer for. The answers come from a closed form, so they are
#: instant at any depth; but at depth 32 the smallest valid input side is already 5e10 pixels, which no
#: image has, so deeper ones are refused with a ValueError.
MAX_DEPTH = 32
#: The most sizes :func:`valid_input_sizes` lists in one call (narrow ``min_size``/``max_size`` for more).
MAX_LISTED = 1_000_000


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
    depth = check_positive_int("depth", depth, note=" (4 in the U-Net paper)")
    if depth > MAX_DEPTH:
        raise ValueError(f"depth must be at most {MAX_DEPTH} (segedu.sizes.MAX_DEPTH), got {depth}: the smallest valid "
                         f"input side of a U-Net of depth {depth} is {_size_of_k(depth, _min_k(depth)):.3g} pixels")
    return depth


# The closed form (chapter 5): going up from the side k before the first up-convolution, every level
# doubles and trims 4 (u -> 2u - 4), so the output is 2**d (k - 4) + 4; going down, every level is the
# reverse (s -> 2s + 4), so the input is 2**d k + 2**(d+3) - 4 — the 16k + 124 of the paper's depth 4.
# Every other side meets an odd pooling. k must keep the map alive on the way up: k >= 3 for depth 1
# (2k - 4 >= 1), k >= 4 otherwise (k = 3 gives 2, then 0). The tests check this against unet_levels.

def _min_k(depth: int) -> int:
    return 3 if depth == 1 else 4


def _size_of_k(depth: int, k: int) -> int:
    return 2**depth * k + 2 ** (depth + 3) - 4


def _k_below(size: int, depth: int) -> int:
    """The largest k whose input side is <= size (may be below the minimum)."""
    return (size - _size_of_k(depth, 0)) // 2**depth


def unet_size_trace(input_size: int, depth: int = 4):
    """Every spatial size a valid-padding U-Net goes through, in forward order.

    Returns a list of ``(stage, size)``: ``"conv"`` after each unpadded 3x3 convolution (-2),
    ``"pool"`` after each 2x2 max pooling (/2), ``"up"`` after each 2x2 up-convolution (x2).
    Raises ``ValueError`` if a pooling would meet an odd size or a size drops below 1.
    (:func:`unet_levels` gives the same numbers grouped by level, with the crops.)
    """
    levels = unet_levels(int(input_size), depth)
    if not levels.valid:
        raise ValueError(f"input {input_size}: {levels.problem}")
    trace = [("input", int(input_size))]
    for rec in levels.down:
        trace += [("conv", c) for c in rec["convs"]]
        if rec["pooled"] is not None:
            trace.append(("pool", rec["pooled"]))
    for rec in levels.up:
        trace += [("up", rec["upconv"])] + [("conv", c) for c in rec["convs"]]
    return trace


@dataclass
class UNetLevels:
    """The sizes of a valid-padding U-Net, level by level (see :func:`unet_levels`).

    ``down[i]`` / ``up[i]`` are dicts for level ``i`` (0 = full resolution):

    * down: ``input``, ``convs`` (side after each 3x3 convolution), ``pooled`` (after the 2x2 max
      pooling; ``None`` at the bottom), ``odd`` (the pooling met an odd side and dropped a row);
    * up: ``upconv`` (side after the 2x2 up-convolution), ``skip`` (side of the encoder map copied
      across), ``crop`` (pixels cut from the skip in total, ``skip - upconv``; half on each side
      when even), ``convs``.

    ``problem`` is ``None`` for a valid size, otherwise why the size fails. Invalid sizes are
    followed as far as they go, as PyTorch would compute them (pooling rounds down).
    """

    input_size: int
    depth: int
    down: list = field(default_factory=list)
    up: list = field(default_factory=list)
    problem: str | None = None

    @property
    def valid(self) -> bool:
        return self.problem is None

    @property
    def k(self) -> int | None:
        """Side before the first up-convolution (after the bottom level's convolutions)."""
        return self.down[self.depth]["convs"][-1] if len(self.down) > self.depth and len(self.down[-1]["convs"]) == 2 else None

    @property
    def output_size(self) -> int | None:
        return self.up[-1]["convs"][-1] if self.valid else None


def unet_levels(input_size: int, depth: int = 4) -> UNetLevels:
    """Follow a side of ``input_size`` down and up the valid-padding U-Net of ``depth``.

    The same arithmetic as the network: each unpadded 3x3 convolution takes 2 pixels, each 2x2
    max pooling halves (rounding down, as ``nn.MaxPool2d`` does), each 2x2 up-convolution doubles,
    and each skip is centre-cropped to the up-convolved map. Used by the size calculator demo
    (:func:`segedu.widgets.unet_size_calculator`). Never raises for a bad size: the result's
    ``problem`` says what went wrong (and the levels computed up to there are kept).
    """
    _check_depth(depth)
    if isinstance(input_size, bool) or not isinstance(input_size, int):
        raise TypeError(f"input_size must be an int, got {input_size!r}")
    out = UNetLevels(input_size, depth)
    odd = []

    def two_convs(x, record):
        for _ in range(2):
            x -= 2
            if x < 1:
                where = "on the way up" if "upconv" in record else "on the way down"
                out.problem = f"the feature map vanishes (side {x}) {where} at level {record['level']}"
                return None
            record["convs"].append(x)
        return x

    x = input_size
    for level in range(depth + 1):
        rec = {"level": level, "input": x, "convs": [], "pooled": None, "odd": False}
        out.down.append(rec)
        x = two_convs(x, rec)
        if x is None:
            return out
        if level < depth:
            rec["odd"] = x % 2 == 1
            if rec["odd"]:
                odd.append(x)
            x //= 2
            rec["pooled"] = x
    for level in reversed(range(depth)):
        x *= 2
        skip = out.down[level]["convs"][-1]
        rec = {"level": level, "upconv": x, "skip": skip, "crop": skip - x, "convs": []}
        out.up.append(rec)
        if skip < x:
            out.problem = f"at level {level} the skip ({skip}) is smaller than the up-convolved map ({x})"
            return out
        x = two_convs(x, rec)
        if x is None:
            return out
    if odd:
        out.problem = (f"a 2x2 max pooling meets the odd side {odd[0]}"
                       + (" (so a crop is uneven: the skip and the decoder map are misaligned)"
                          if any(r["crop"] % 2 for r in out.up) else ""))
    return out


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

    For depth 4 these are 188, 204, 220, ... = 16k + 124 with k >= 4 (k is the side before the
    first up-convolution; smaller k makes a map vanish on the way up): see chapter 5. In general
    ``2**depth k + 2**(depth + 3) - 4``, computed from that closed form, so any ``depth`` up to
    :data:`MAX_DEPTH` answers at once; more than :data:`MAX_LISTED` sizes are refused (ValueError).
    """
    _check_depth(depth)
    for name, v in (("max_size", max_size), ("min_size", min_size)):
        if not is_int(v):
            raise TypeError(f"{name} must be an int, got {v!r}")
    first = max(_min_k(depth), -(-(max(1, min_size) - _size_of_k(depth, 0)) // 2**depth))
    last = _k_below(max_size, depth)
    if last - first + 1 > MAX_LISTED:
        raise ValueError(f"there are {last - first + 1} valid input sizes for depth {depth} between {min_size} and "
                         f"{max_size}, more than {MAX_LISTED} (segedu.sizes.MAX_LISTED): give a smaller max_size")
    return [_size_of_k(depth, k) for k in range(first, last + 1)]


def nearest_valid_input_size(size: int, depth: int = 4) -> tuple[int | None, int]:
    """The nearest valid input sides ``(smaller_or_equal, larger_or_equal)``; ``None`` if no smaller one exists.

    Closed form (see :func:`valid_input_sizes`): instant for any ``depth`` up to :data:`MAX_DEPTH`.
    """
    _check_depth(depth)
    size = int(size)
    k = _k_below(size, depth)
    lo = _size_of_k(depth, k) if k >= _min_k(depth) else None
    hi = _size_of_k(depth, max(_min_k(depth), k if _size_of_k(depth, k) >= size else k + 1))
    return lo, hi


def covering_input_size(side: int, depth: int = 4) -> int:
    """The smallest valid input side whose *output* covers ``side`` pixels: the one tile that
    segments a whole ``side x side`` image (mirror-padded by the margin on every side)."""
    _check_depth(depth)
    side = int(side)
    # the output of k is 2**depth (k - 4) + 4 (see _size_of_k): the smallest k whose output reaches side
    k = max(_min_k(depth), 4 - (-(side - 4) // 2**depth))
    return _size_of_k(depth, k)


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
        raise TypeError(f"input must be a float tensor (e.g. an image scaled to [0, 1]), got {x.dtype}"
                        + (": convert 8-bit images with x.float() / 255" if x.dtype == torch.uint8 else
                           ": convert it with x.float()"))
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
