"""Size arithmetic: centre cropping (used by training on valid-padding networks) and, in
chapter 5, the U-Net input/output size rules.

Introduced in chapter 5.
"""

from __future__ import annotations

import torch

__all__ = ["center_crop"]


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
