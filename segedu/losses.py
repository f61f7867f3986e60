"""Losses of the course.

* chapter 2: pixel-wise cross entropy (``pixel_cross_entropy``)
* chapter 5: the U-Net weight map (``unet_weight_map``) and the weighted cross entropy
* chapter 6: soft Dice, BCE + Dice, deep supervision
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

__all__ = ["pixel_cross_entropy", "unet_weight_map", "soft_dice_loss", "BCEDiceLoss", "DeepSupervisionLoss"]


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
        denom = class_weights[target[valid]].sum()  # only valid pixels: ignore_index may be >= K (255)
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


# ---------------------------------------------------------------------------------------------
# Chapter 6: soft Dice, BCE + Dice (the UNet++ loss), deep supervision
# ---------------------------------------------------------------------------------------------

def _probabilities(logits: torch.Tensor, target: torch.Tensor):
    """Probabilities and one-hot targets, both ``[N, C, H, W]`` (C = 1 for a binary logit)."""
    if logits.dim() != 4:
        raise ValueError(f"logits must be [N, C, H, W], got shape {tuple(logits.shape)}")
    if target.dim() != 3 or target.shape[0] != logits.shape[0] or target.shape[1:] != logits.shape[2:]:
        raise ValueError(f"target must be [N, H, W] = {(logits.shape[0], *logits.shape[2:])}, got {tuple(target.shape)}")
    if logits.shape[1] == 1:  # binary: one logit per pixel
        if target.numel() and (target.min() < 0 or target.max() > 1):
            raise ValueError("a one-channel (binary) output needs a target of 0s and 1s")
        return torch.sigmoid(logits), target[:, None].to(logits.dtype)
    k = logits.shape[1]
    if target.numel() and (target.min() < 0 or target.max() >= k):
        raise ValueError(f"target labels must be in [0, {k})")
    onehot = F.one_hot(target.long(), k).permute(0, 3, 1, 2).to(logits.dtype)
    return logits.softmax(1), onehot


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0,
                   reduction: str = "image") -> torch.Tensor:
    """``1 - soft Dice``, from probabilities (not thresholded masks).

    For class ``c``: ``(2 sum(p y) + s) / (sum(p) + sum(y) + s)``, with ``p`` the predicted
    probability (sigmoid of a binary logit, or softmax over classes) and ``y`` the target. The
    smoothing ``s`` (1 by default) makes the loss defined when a class is absent from both
    prediction and target (Dice 1, loss 0) and keeps gradients finite. For several classes, the
    mean over classes.

    Args:
        reduction: over which pixels the sums run.

            * ``"image"`` (default): one Dice per image (the sums over its pixels), then the mean
              over the images of the batch: the UNet++ paper's 2018 equation, a sum over images
              ``b``. Every image weighs the same, whatever the size of its object.
            * ``"batch"``: one Dice over all pixels of the whole batch, flattened: the official
              UNet++ implementation (``dice_coef`` on ``K.flatten``) and the 2019 paper's "N = all
              pixels of the batch". Images weigh by their foreground: a missed small object costs
              little next to a large one, and the value depends on what else is in the batch.

            The two agree for a batch of one image.
    """
    if reduction not in ("image", "batch"):
        raise ValueError(f"reduction must be 'image' (one Dice per image, averaged) or 'batch' (one Dice over "
                         f"the whole flattened batch), got {reduction!r}")
    p, y = _probabilities(logits, target)
    dims = (2, 3) if reduction == "image" else (0, 2, 3)
    inter = (p * y).sum(dims)
    dice = (2 * inter + smooth) / (p.sum(dims) + y.sum(dims) + smooth)  # [N, C] per image, [C] per batch
    return 1 - dice.mean()


class BCEDiceLoss(torch.nn.Module):
    """The UNet++ paper's hybrid loss: binary cross entropy plus soft Dice.

    The paper states it twice. The 2018 version (eq. 1) sums over the ``N`` images of a batch,
    with flattened targets ``Y_b`` and predicted probabilities ``P_b``:
    ``L = -1/N sum_b ( 1/2 * Y_b log P_b + 2 Y_b P_b / (Y_b + P_b) )``; the 2019 version sums over
    the ``N`` pixels of the whole batch and the ``C`` classes, without the 1/2:
    ``L = -1/N sum_c sum_n ( y log p + 2 y p / (y^2 + p^2) )``. Read literally, neither is a
    loss one can train with (per pixel, the second term is 0 on every background pixel, so it
    cannot tell a perfect mask from an all-foreground one); both are shorthand for what the
    official code computes: ``0.5 * BCE - Dice``, with one Dice over the flattened batch.
    We implement ``bce_weight * BCE + (1 - Dice)``, with ``bce_weight = 1/2``:

    * the first term is the usual mean binary cross entropy over all pixels of the batch (both
      ``y log p`` and ``(1 - y) log(1 - p)``: the papers' ``Y log P`` stands for it);
    * the second is ``1 -`` the soft Dice of :func:`soft_dice_loss`, per image and averaged over
      the batch (``reduction="image"``, the default and the 2018 equation's reading) or over the
      whole flattened batch (``reduction="batch"``, the official implementation). Subtracting
      from 1 only shifts the loss by a constant (same gradients) so that it is non-negative, and
      the smoothing keeps it defined on empty masks.

    Works for one logit per pixel (the paper's binary tasks) and, with softmax and cross entropy,
    for several classes.
    """

    def __init__(self, bce_weight: float = 0.5, smooth: float = 1.0, reduction: str = "image"):
        super().__init__()
        if reduction not in ("image", "batch"):
            raise ValueError(f"reduction must be 'image' or 'batch', got {reduction!r}")
        self.bce_weight, self.smooth, self.reduction = bce_weight, smooth, reduction

    def extra_repr(self) -> str:
        return f"bce_weight={self.bce_weight}, smooth={self.smooth}, reduction={self.reduction!r}"

    def forward(self, logits: torch.Tensor, target: torch.Tensor, weight=None) -> torch.Tensor:
        if logits.shape[1] == 1:
            ce = F.binary_cross_entropy_with_logits(logits[:, 0], target.to(logits.dtype))
        else:
            ce = F.cross_entropy(logits, target.long())
        return self.bce_weight * ce + soft_dice_loss(logits, target, self.smooth, self.reduction)


class DeepSupervisionLoss(torch.nn.Module):
    """Weighted sum of a loss over the outputs of several heads (UNet++ deep supervision).

    ``forward(outputs, target)`` with ``outputs`` the list ``[X^{0,1}, ..., X^{0,L}]``; equal
    weights ``1/L`` by default (the authors weight the heads equally). A single tensor is passed
    straight to the base loss.
    """

    def __init__(self, loss=None, weights=None):
        super().__init__()
        self.loss = loss if loss is not None else BCEDiceLoss()
        self.weights = None if weights is None else [float(w) for w in weights]

    def forward(self, outputs, target, *extra) -> torch.Tensor:
        if torch.is_tensor(outputs):
            return self.loss(outputs, target, *extra)
        if not outputs:
            raise ValueError("DeepSupervisionLoss got an empty list of outputs")
        weights = self.weights or [1.0 / len(outputs)] * len(outputs)
        if len(weights) != len(outputs):
            raise ValueError(f"{len(weights)} weights for {len(outputs)} heads; give one weight per head")
        return sum(w * self.loss(o, target, *extra) for w, o in zip(weights, outputs))
