"""Losses of the course.

* chapter 2: pixel-wise cross entropy (``pixel_cross_entropy``)
* chapter 5: the U-Net weight map (``unet_weight_map``) and the weighted cross entropy
* chapter 6: soft Dice, BCE + Dice, deep supervision
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["pixel_cross_entropy", "unet_weight_map"]


# ---------------------------------------------------------------------------------------------
# Chapter 2: pixel-wise cross entropy
# ---------------------------------------------------------------------------------------------

def pixel_cross_entropy(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                        ignore_index: int = -100, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross entropy averaged over every pixel of the batch.

    ``logits`` ``[N, K, H, W]`` (one score per class and pixel), ``target`` ``[N, H, W]`` class
    indices. Each pixel is one classification problem:
    ``-log softmax(logits[n, :, y, x])[target[n, y, x]]``; the loss is their (weighted) mean.

    Args:
        weight: optional per-pixel weights ``[N, H, W]`` (the U-Net weight map); the loss is then
            ``sum(w * l) / sum(w)``.
        ignore_index: pixels with this label contribute nothing (unlabelled regions, borders).
        class_weights: optional ``[K]`` weights per class (to counter class imbalance).
    """
    if logits.dim() != 4:
        raise ValueError(f"logits must be [N, K, H, W], got shape {tuple(logits.shape)}")
    if target.dim() != 3 or target.shape[0] != logits.shape[0] or target.shape[1:] != logits.shape[2:]:
        raise ValueError(f"target must be [N, H, W] = {(logits.shape[0], *logits.shape[2:])} to match logits "
                         f"{tuple(logits.shape)}, got {tuple(target.shape)}")
    if target.is_floating_point():
        raise TypeError("target must hold integer class indices (torch.long), got a float tensor")
    k = logits.shape[1]
    valid = target != ignore_index
    if valid.any() and (target[valid].min() < 0 or target[valid].max() >= k):
        raise ValueError(f"target labels must be in [0, {k}) or equal ignore_index={ignore_index}; "
                         f"found {int(target[valid].min())}..{int(target[valid].max())}")
    per_pixel = F.cross_entropy(logits, target.long(), weight=class_weights, ignore_index=ignore_index, reduction="none")
    if weight is not None:
        w = weight * valid
        return (per_pixel * w).sum() / w.sum().clamp(min=1e-12)
    if class_weights is not None:  # PyTorch's convention: normalise by the summed weights of the valid pixels
        denom = class_weights[target.clamp(min=0)][valid].sum()
        return per_pixel.sum() / denom.clamp(min=1e-12)
    return per_pixel.sum() / valid.sum().clamp(min=1)


# ---------------------------------------------------------------------------------------------
# Chapter 5: the U-Net weight map
# ---------------------------------------------------------------------------------------------

def unet_weight_map(instances, w0: float = 10.0, sigma: float = 5.0, class_balance: bool = True,
                    border_on: str = "background"):
    """The U-Net paper's per-pixel loss weights (its equation 2).

    .. math:: w(x) = w_c(x) + w_0 \\exp\\left(-\\frac{(d_1(x) + d_2(x))^2}{2\\sigma^2}\\right)

    ``d1`` and ``d2`` are the distances to the border of the nearest and the second-nearest cell,
    so the second term is large exactly in the thin gaps between two touching cells — the pixels a
    network must get right to keep the cells apart. ``w_c`` balances the class frequencies
    (background vs cell): each class gets weight ``total / (2 * count)``.

    Args:
        instances: ``[H, W]`` integer instance labels, 0 = background, 1..n = cells.
        w0, sigma: the paper's values are 10 and "approximately 5 pixels".
        class_balance: include ``w_c`` (else ``w_c = 1``).
        border_on: ``"background"`` (default) adds the border term on background pixels only —
            the gaps; ``"all"`` applies the formula literally to every pixel (inside a cell
            ``d1 = 0``, so cell pixels near a neighbour are weighted up as well). The paper's text
            does not say which; most implementations use the background-only form.

    Returns:
        ``float64 [H, W]`` weights. With fewer than two cells there is no "second-nearest cell"
        and the border term is zero (the map is ``w_c``).
    """
    from scipy import ndimage
    import numpy as np

    inst = instances.detach().cpu().numpy() if torch.is_tensor(instances) else np.asarray(instances)
    if inst.ndim != 2:
        raise ValueError(f"instances must be a 2-D label map [H, W], got shape {inst.shape}")
    if not np.issubdtype(inst.dtype, np.integer):
        raise TypeError(f"instances must hold integer labels (0 = background), got {inst.dtype}")
    if inst.min(initial=0) < 0:
        raise ValueError("instance labels must be >= 0 (0 = background)")
    if sigma <= 0 or w0 < 0:
        raise ValueError(f"need sigma > 0 and w0 >= 0, got sigma={sigma}, w0={w0}")
    if border_on not in ("background", "all"):
        raise ValueError(f"border_on must be 'background' or 'all', got {border_on!r}")
    foreground = inst > 0
    weight = np.ones(inst.shape, np.float64)
    if class_balance:
        total, n_fg = inst.size, int(foreground.sum())
        for cls_mask, count in ((foreground, n_fg), (~foreground, total - n_fg)):
            if count:
                weight[cls_mask] = total / (2.0 * count)
    labels = np.unique(inst[foreground])
    if len(labels) >= 2 and w0 > 0:
        # Distance from every pixel to each cell (0 inside it); keep the two smallest per pixel.
        dist = np.stack([ndimage.distance_transform_edt(inst != lab) for lab in labels])
        dist.partition(1, axis=0)
        d1, d2 = dist[0], dist[1]
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma**2))
        if border_on == "background":
            border[foreground] = 0.0
        weight += border
    return weight
