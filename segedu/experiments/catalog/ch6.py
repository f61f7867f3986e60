"""The named experiments of chapter 6: the hybrid loss, batch normalization, and depth."""

from __future__ import annotations

from ...data import Binary, Cells, Shapes
from ...models import UNet, UNetPlusPlus
from ..registry import Experiment
from ..runner import ModelSpec
from .common import N_TEST, bce_dice, register

__all__ = ["CH6", "average_precision", "best_threshold_dice", "foreground_ratio"]


# ---------------------------------------------------------------------------------------------
# Chapter 6: the hybrid loss, batch normalization, and depth
# ---------------------------------------------------------------------------------------------

CH6 = dict(size=48, width=8, n_train=96, loss_steps=300, depth_steps=150, batch_size=8, lr=2e-3)


def _small_unetpp(norm):
    return lambda c, k: UNetPlusPlus(c, 1, depth=2, base_channels=CH6["width"], norm=norm)


def _small_foreground():
    s = CH6["size"]
    return {"small shapes": (Binary(Shapes(CH6["n_train"], size=s, seed=10, max_shapes=1)),
                             Binary(Shapes(N_TEST, size=s, seed=11, max_shapes=1)))}




register(Experiment(
    name="ch6-loss",
    question="On a small foreground (one shape per image), does UNet++ trained with BCE + soft Dice reach a "
             "higher foreground Dice than with BCE alone?",
    chapter="06_unetpp",
    # BCE alone is fit's default loss for a one-channel output
    models=lambda: {"BCE": ModelSpec(_small_unetpp("batch")),
                    "BCE + Dice": ModelSpec(_small_unetpp("batch"), fit_kwargs={"loss": bce_dice()})},
    data=_small_foreground,
    comparisons=(("BCE + Dice", "BCE", "dice"), ("BCE + Dice", "BCE", "foreground_iou"),
                 ("BCE + Dice", "BCE", "pixel_accuracy")),
    # 30 seeds: with 10 the verdict was resolved in one memory format and not in the other (chapter 7's
    # rounding check); one run per seed spreads widely on this small foreground
    seeds=tuple(range(30)), steps=CH6["loss_steps"], batch_size=CH6["batch_size"], lr=CH6["lr"], n_test=N_TEST,
))

register(Experiment(
    name="ch6-batchnorm",
    question="Does batch normalization after every convolution let the narrow UNet++ learn the small-foreground "
             "task better within the CPU budget?",
    chapter="06_unetpp",
    models=lambda: {"batch norm": ModelSpec(_small_unetpp("batch"), fit_kwargs={"loss": bce_dice()}),
                    "no normalization": ModelSpec(_small_unetpp(None), fit_kwargs={"loss": bce_dice()})},
    data=_small_foreground,
    comparisons=(("batch norm", "no normalization", "foreground_iou"),),
    seeds=tuple(range(8)), steps=CH6["loss_steps"], batch_size=CH6["batch_size"], lr=CH6["lr"], n_test=N_TEST,
))

# Depth: the chapter's second data set, noiseless Cells, was a ceiling (every depth 0.968-0.970).
# Noisy cells (noise 0.3, as in chapter 7) are a local task that is not solved at once; Shapes is
# a task that needs context. Two tasks where depth can matter, possibly in different directions.


def _ch6_depth_models():
    return {f"UNet-L{L}": ModelSpec(lambda c, k, L=L: UNet(c, 1, depth=L, base_channels=CH6["width"], padding="same",
                                                           norm="batch"), fit_kwargs={"loss": bce_dice()})
            for L in (1, 2, 3, 4)}


def _ch6_depth_data():
    s, n = CH6["size"], CH6["n_train"]
    return {"Shapes": (Binary(Shapes(n, size=s, seed=20)), Binary(Shapes(N_TEST, size=s, seed=21))),
            "noisy Cells": (Cells(n, size=s, seed=22, cells=16, noise=0.3),
                            Cells(N_TEST, size=s, seed=23, cells=16, noise=0.3))}


register(Experiment(
    name="ch6-depth",
    question="Does the best U-Net depth (L1..L4, same budget) depend on the data set?",
    chapter="06_unetpp",
    models=_ch6_depth_models, data=_ch6_depth_data,
    comparisons=tuple((f"UNet-L{b}", f"UNet-L{a}", "mean_iou", d) for d in ("Shapes", "noisy Cells")
                      for a, b in ((1, 2), (2, 3), (3, 4), (1, 4))),
    seeds=tuple(range(8)), steps=CH6["depth_steps"], batch_size=CH6["batch_size"], lr=CH6["lr"], n_test=N_TEST,
))


# Soft Dice per image or per batch (issue 15). The UNet++ paper's 2018 equation sums the Dice over
# the images of a batch (our default, BCEDiceLoss()); its official code computes one Dice over the
# whole flattened batch (BCEDiceLoss(reduction="batch")). Does it matter here? BCE alone is the
# baseline, and three threshold-free columns sit beside Dice at threshold 0.5: with 5% foreground a
# BCE model is favoured to under-segment at 0.5, which a fixed threshold charges to the loss.

import torch  # noqa: E402

from ...losses import BCEDiceLoss  # noqa: E402


def _pixel_ranking(scores, masks):
    """True and false positives over every test pixel, ranked by the foreground logit: one point per
    distinct score (tied pixels enter together), and the number of foreground pixels."""
    z = scores[:, 0].flatten().double()
    y = (masks == 1).flatten().double()
    z, order = torch.sort(z, descending=True, stable=True)
    y = y[order]
    tp, fp = torch.cumsum(y, 0), torch.cumsum(1 - y, 0)
    last = torch.ones_like(z, dtype=torch.bool)
    last[:-1] = z[1:] != z[:-1]
    return tp[last], fp[last], y.sum()


def average_precision(scores, masks, test=None) -> float:
    """Pixel-level average precision of the foreground (area under the precision-recall curve, as a
    step sum): how well the probabilities rank foreground above background, at every threshold."""
    tp, fp, positives = _pixel_ranking(scores, masks)
    precision, recall = tp / (tp + fp), tp / positives
    return float((torch.diff(recall, prepend=recall.new_zeros(1)) * precision).sum())


def best_threshold_dice(scores, masks, test=None) -> float:
    """Foreground Dice over the test set at the best threshold (chosen on the test set itself: an
    upper bound that takes the threshold out of the comparison, not a result to report as Dice)."""
    tp, fp, positives = _pixel_ranking(scores, masks)
    return float((2 * tp / (tp + fp + positives)).max())


def foreground_ratio(scores, masks, test=None) -> float:
    """Predicted foreground pixels at threshold 0.5 (logit > 0) over true foreground pixels:
    below 1, the model under-segments; above 1, it over-segments."""
    return float((scores[:, 0] > 0).sum() / (masks == 1).sum())


def _bce_dice_batch():
    """The hybrid loss with one soft Dice over the whole flattened batch (the official UNet++ code)."""
    return BCEDiceLoss(reduction="batch")


register(Experiment(
    name="ch6-dice-reduction",
    question="Does it matter whether soft Dice is computed per image and averaged (the 2018 equation) or once "
             "over the whole flattened batch (the official code), and does the hybrid loss's gain over BCE "
             "survive threshold-free metrics?",
    chapter="06_unetpp",
    models=lambda: {"BCE": ModelSpec(_small_unetpp("batch")),
                    "BCE + Dice (per image)": ModelSpec(_small_unetpp("batch"), fit_kwargs={"loss": bce_dice()}),
                    "BCE + Dice (batch)": ModelSpec(_small_unetpp("batch"), fit_kwargs={"loss": _bce_dice_batch()})},
    data=_small_foreground,
    comparisons=(("BCE + Dice (batch)", "BCE + Dice (per image)", "dice"),
                 ("BCE + Dice (batch)", "BCE + Dice (per image)", "average_precision"),
                 ("BCE + Dice (batch)", "BCE", "dice"),
                 ("BCE + Dice (per image)", "BCE", "average_precision"),
                 ("BCE + Dice (per image)", "BCE", "best_threshold_dice"),
                 ("BCE + Dice (per image)", "BCE", "foreground_ratio")),
    seeds=tuple(range(8)), steps=CH6["loss_steps"], batch_size=CH6["batch_size"], lr=CH6["lr"], n_test=N_TEST,
    metrics=lambda: {"average_precision": average_precision, "best_threshold_dice": best_threshold_dice,
                     "foreground_ratio": foreground_ratio},
))
