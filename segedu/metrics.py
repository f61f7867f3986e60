"""Segmentation metrics, all computed from one confusion matrix.

``pred`` may be class labels ``[N, H, W]`` (int) or raw scores ``[N, K, H, W]`` (float, argmax is
taken; a single channel ``[N, 1, H, W]`` is read as a binary logit thresholded at 0). ``target``
is ``[N, H, W]`` of class indices. Pixels equal to ``ignore_index`` are left out.

Undefined input never scores well:

* scores holding NaN or Inf raise ``ValueError`` (the argmax of all-NaN scores is class 0, so a
  diverged model would otherwise score perfectly on a background-only image);
* a target that is not integer class indices (a float mask with NaN or fractions) raises
  ``ValueError``;
* a class absent from both prediction and target has no IoU or Dice: ``NaN``; the means skip such
  classes, and are ``NaN`` when no class occurs at all (empty masks, or every pixel ignored).

The ISBI 2012 challenge did not rank by pixels but by the *cells* a membrane map cuts the slice
into (:func:`isbi_challenge_scores`): a one-pixel gap in a membrane merges two cells and costs
little pixel accuracy but a lot of Rand error.

Introduced in chapter 1; the challenge's scores in chapter 5b.
"""

from __future__ import annotations

import torch

__all__ = ["as_labels", "confusion_matrix", "pixel_accuracy", "iou", "mean_iou", "dice", "iou_from_confusion",
           "dice_from_confusion", "instances_recovered",
           "cells_of", "isbi_challenge_scores", "UNET_PAPER_ISBI2012"]


def as_labels(pred: torch.Tensor) -> torch.Tensor:
    """Turn scores ``[N, K, H, W]`` into labels ``[N, H, W]``; labels pass through unchanged.

    Scores holding NaN or Inf raise ``ValueError``: their argmax is meaningless.
    """
    if pred.is_floating_point():
        _check_finite(pred, "the predicted scores", "a diverged model? check the loss, or lower the learning rate")
        if pred.dim() == 2:  # a classifier's scores [N, K] (chapter 1's patch classifier)
            return pred.argmax(1)
        if pred.dim() != 4:
            raise ValueError(f"float predictions must be scores [N, K, H, W] or [N, K], got shape {tuple(pred.shape)}")
        if pred.shape[1] == 1:  # binary: one logit per pixel
            return (pred[:, 0] > 0).long()
        return pred.argmax(1)
    return pred.long()


def _check_finite(t: torch.Tensor, what: str, hint: str) -> None:
    if not bool(torch.isfinite(t).all()):
        nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
        raise ValueError(f"{what} hold {nan} NaN and {inf} Inf values ({hint}); metrics of them are undefined")


def _target_labels(target: torch.Tensor) -> torch.Tensor:
    """``target`` as long class indices; a float target must hold whole numbers."""
    if not torch.is_tensor(target):
        raise TypeError(f"target must be a tensor [N, H, W] of class indices, got {type(target).__name__}")
    if target.is_floating_point():
        _check_finite(target, "the target masks", "masks must be class indices")
        if bool((target != target.round()).any()):
            raise ValueError("the target masks must hold integer class indices, got fractional values "
                             f"(dtype {target.dtype}); round or threshold them, then .long()")
    return target.long()


def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = None) -> torch.Tensor:
    """``C[t, p]`` = number of pixels of true class ``t`` predicted as ``p``."""
    pred, target = as_labels(pred), _target_labels(target)
    if pred.shape != target.shape:
        raise ValueError(
            f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape "
            "(for a valid-padding U-Net, centre-crop the target with segedu.sizes.center_crop)"
        )
    pred, target = pred.reshape(-1).cpu(), target.reshape(-1).long().cpu()
    if ignore_index is not None:
        keep = target != ignore_index
        pred, target = pred[keep], target[keep]
    if target.numel() and (target.min() < 0 or target.max() >= num_classes):
        raise ValueError(f"target labels must be in [0, {num_classes}), found {target.min()}..{target.max()}")
    if pred.numel() and (pred.min() < 0 or pred.max() >= num_classes):
        raise ValueError(f"predicted labels must be in [0, {num_classes}), found {pred.min()}..{pred.max()}")
    return torch.bincount(target * num_classes + pred, minlength=num_classes**2).reshape(num_classes, num_classes)


def pixel_accuracy(pred, target, ignore_index: int | None = None) -> float:
    """Fraction of (non-ignored) pixels whose predicted class is right; NaN when there are none."""
    pred, target = as_labels(pred), _target_labels(target)
    if pred.shape != target.shape:
        raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    keep = torch.ones_like(target, dtype=torch.bool) if ignore_index is None else target != ignore_index
    n = int(keep.sum())
    return float(((pred == target) & keep).sum()) / n if n else float("nan")


def iou_from_confusion(conf: torch.Tensor) -> torch.Tensor:
    """Per-class IoU ``TP / (TP + FP + FN)`` of a confusion matrix (rows: true class), NaN for a
    class absent from both. Sum the matrices of a whole test set first, then call this: a data
    set's IoU, not a mean of per-image IoUs."""
    c = conf.double()
    tp = c.diag()
    union = c.sum(0) + c.sum(1) - tp
    return torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))


def dice_from_confusion(conf: torch.Tensor) -> torch.Tensor:
    """Per-class Dice ``2 TP / (2 TP + FP + FN)`` of a confusion matrix; NaN for a class absent from both."""
    c = conf.double()
    tp = c.diag()
    denom = c.sum(0) + c.sum(1)
    return torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.full_like(tp, float("nan")))


def iou(pred, target, num_classes: int, ignore_index: int | None = None) -> torch.Tensor:
    """Per-class intersection over union ``TP / (TP + FP + FN)``; NaN for a class absent from both."""
    return iou_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


def mean_iou(pred, target, num_classes: int, ignore_index: int | None = None) -> float:
    """Mean of the per-class IoU over the classes that occur (in prediction or target).

    ``NaN`` when no class occurs (empty masks, every pixel ignored); NaN or Inf scores raise
    ``ValueError`` (see the module's docstring) — never a perfect score for undefined input.
    """
    return float(torch.nanmean(iou(pred, target, num_classes, ignore_index)))


def dice(pred, target, num_classes: int, ignore_index: int | None = None) -> torch.Tensor:
    """Per-class Dice coefficient ``2 TP / (2 TP + FP + FN)``; NaN for a class absent from both."""
    return dice_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


def instances_recovered(pred_fg, true_instances, threshold: float = 0.5) -> float:
    """The fraction of true objects that come out as their *own* predicted connected component.

    Pixel metrics cannot see two touching cells merged into one blob (a few wrong pixels on the
    border between them). Chapter 5b's instance measure can: label the predicted foreground
    ``pred_fg`` (a boolean ``[H, W]`` array) into connected components, and count a true object of
    ``true_instances`` (``[H, W]`` ints, 0 = background, 1..n = objects, e.g.
    :meth:`segedu.data.Cells.instances`) as recovered when one component overlaps it with IoU above
    ``threshold``. An image without objects has nothing to miss and scores 1.0.
    """
    import numpy as np
    from scipy import ndimage

    pred_fg, true_instances = np.asarray(pred_fg, dtype=bool), np.asarray(true_instances)
    if pred_fg.shape != true_instances.shape or pred_fg.ndim != 2:
        raise ValueError(f"instances_recovered takes one [H, W] image: pred_fg {pred_fg.shape} and true_instances "
                         f"{true_instances.shape} must be the same 2-D shape")
    components, _ = ndimage.label(pred_fg)
    n = int(true_instances.max())
    if n == 0:
        return 1.0
    hits = 0
    for obj in range(1, n + 1):
        cell = true_instances == obj
        ids, overlaps = np.unique(components[cell], return_counts=True)
        for cid, overlap in zip(ids, overlaps):  # cid 0 is predicted background
            union = cell.sum() + (components == cid).sum() - overlap
            if cid and overlap / union > threshold:
                hits += 1
                break
    return hits / n


# ---------------------------------------------------------------------------------------------
# The ISBI 2012 challenge's scores: compare the cells, not the pixels
# ---------------------------------------------------------------------------------------------

#: The U-Net paper's entry (Ronneberger et al., 2015, Table 1), on the challenge's *hidden* test
#: slices (the 30 training slices' labels were public, the test slices' were not): warping error,
#: Rand error, pixel error. Not comparable number for number with scores on slices 24-29.
UNET_PAPER_ISBI2012 = {"warping_error": 0.000353, "rand_error": 0.0382, "pixel_error": 0.0611}


def cells_of(cell_mask) -> "np.ndarray":
    """Label the connected cell interiors of a boolean ``[H, W]`` map 1..n (membrane and gaps: 0).

    This is how a membrane map becomes a segmentation into cells: everything the membrane does not
    separate is one cell (4-connectivity, so a diagonal touch does not join two cells).
    """
    import numpy as np
    from scipy import ndimage

    cell_mask = np.asarray(cell_mask, dtype=bool)
    if cell_mask.ndim != 2:
        raise ValueError(f"cells_of takes one [H, W] map, got shape {cell_mask.shape}")
    return ndimage.label(cell_mask)[0]


def isbi_challenge_scores(pred_cells, true_cells) -> dict:
    """The ISBI 2012 challenge's scores for one slice, from its cell masks (``True`` = cell interior).

    * ``rand_error``: the *foreground-restricted* adapted Rand error (scikit-image's
      ``adapted_rand_error``, pixels of true membrane ignored): 1 - F-score of "these two pixels
      are in the same cell" over all pairs of true-cell pixels. A merge of two cells or a split of
      one both cost pairs. ``rand_split_score`` and ``rand_merge_score`` are its two halves, named
      as in the challenge's Fiji script: each is 1 unless the prediction splits (merges) true cells.
    * ``vi_merge``, ``vi_split``: the variation of information ``VI = H(true | pred) + H(pred |
      true)`` (scikit-image's ``variation_of_information``, true membrane ignored), in bits:
      ``vi_merge = H(true | pred)`` grows when predicted cells merge true ones, ``vi_split =
      H(pred | true)`` when they cut a true cell apart; ``vi`` is their sum (0 = identical).
      (The ISBI leaderboard reported a normalised form, "V_info", not this sum.)
    * ``pixel_error``: the fraction of pixels labelled wrongly (membrane vs cell).

    Both arguments are boolean ``[H, W]`` maps; the cells are their connected components
    (:func:`cells_of`).
    """
    import numpy as np
    from skimage.metrics import adapted_rand_error, variation_of_information

    pred_cells, true_cells = np.asarray(pred_cells, dtype=bool), np.asarray(true_cells, dtype=bool)
    if pred_cells.shape != true_cells.shape:
        raise ValueError(f"pred_cells {pred_cells.shape} and true_cells {true_cells.shape} must have the same shape")
    pred, true = cells_of(pred_cells), cells_of(true_cells)
    # scikit-image's "precision" falls when pred splits a true cell, its "recall" when pred merges
    # two (checked in tests/test_challenge_scores.py): hence the names below.
    error, split_score, merge_score = adapted_rand_error(true, pred, ignore_labels=(0,))
    split, merge = variation_of_information(true, pred, ignore_labels=(0,))  # H(pred|true), H(true|pred)
    return {"rand_error": float(error), "rand_split_score": float(split_score), "rand_merge_score": float(merge_score),
            "vi_merge": float(merge), "vi_split": float(split), "vi": float(merge + split),
            "pixel_error": float((pred_cells != true_cells).mean())}
