"""Losses of the course.

* chapter 2: pixel-wise cross entropy (``pixel_cross_entropy``)
* chapter 5: the U-Net weight map (``unet_weight_map``) and the weighted cross entropy
* chapter 6: soft Dice, BCE + Dice, deep supervision
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["pixel_cross_entropy"]


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
