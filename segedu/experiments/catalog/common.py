"""What every named experiment shares: the register that also lists the names in order, the
test-set size, and the extra metrics (functions ``f(scores [N, K, H, W], masks [N, H, W], test
dataset) -> float``) that some experiments add to the rows.
"""

from __future__ import annotations

import numpy as np
import torch

from ... import metrics as M
from ...losses import BCEDiceLoss
from ...tiling import predict_tiled
from ..registry import Experiment
from ..registry import register as _register_in_registry

__all__ = ["NAMES", "N_TEST", "register", "boundary_accuracy", "cells_recovered", "membrane_dice", "membrane_iou",
           "bce_dice", "tiled_scores", "mean_of_heads"]

#: The names this module registers, in the course's order (filled in below).
NAMES: tuple = ()


def register(experiment: Experiment) -> Experiment:
    """Register ``experiment`` in :data:`~segedu.experiments.registry.EXPERIMENTS` and list it in :data:`NAMES`."""
    global NAMES
    _register_in_registry(experiment)
    NAMES += (experiment.name,)
    return experiment


#: Test images of every synthetic data set of the catalog (evaluation is cheap; small test sets are not).
N_TEST = 200


# ---------------------------------------------------------------------------------------------
# Extra metrics: f(scores [N, K, H, W], masks [N, H, W], test dataset) -> float
# ---------------------------------------------------------------------------------------------

def boundary_accuracy(scores, masks, test=None, width: int = 2) -> float:
    """Pixel accuracy inside a band of ``width`` pixels on either side of the true class
    boundaries (chapter 3): where putting a value in the right *position* matters most."""
    from scipy import ndimage

    m = masks.numpy()
    k = 2 * width + 1
    band = torch.from_numpy(ndimage.maximum_filter(m, size=(1, k, k)) != ndimage.minimum_filter(m, size=(1, k, k)))
    pred = M.as_labels(scores)
    return float((pred == masks)[band].float().mean())


_INSTANCES: dict = {}  # id(test set) -> (test set, [instance maps]): each Cells test set's instances, computed once


def cells_recovered(scores, masks, test, threshold: float = 0.5) -> float:
    """Chapter 5b's instance measure: the fraction of true cells that come out as their own
    predicted connected component (one component overlaps the cell with IoU > ``threshold``),
    averaged over the test images. ``test`` must have ``instances(i)`` (:class:`~segedu.data.Cells`)."""
    key = id(test)
    if key not in _INSTANCES or _INSTANCES[key][0] is not test:
        _INSTANCES.clear()  # one test set at a time: nothing accumulates over a long session
        _INSTANCES[key] = (test, [test.instances(i) for i in range(len(test))])
    instances = _INSTANCES[key][1]
    pred = M.as_labels(scores).numpy() == 1
    return float(np.mean([M.instances_recovered(pred[i], instances[i], threshold) for i in range(len(instances))]))


def _membrane_class(test) -> int:
    classes = tuple(getattr(test, "CLASSES", None) or ())
    if "membrane" not in classes:
        raise ValueError(f"membrane metrics need a test set whose CLASSES name a 'membrane' class, got {classes!r}")
    return classes.index("membrane")


def membrane_dice(scores, masks, test) -> float:
    """Dice of the membrane class of an ISBI 2012 test set (found by name in ``test.CLASSES``): the
    thin minority class the task is about."""
    return float(M.dice(scores, masks, 2)[_membrane_class(test)])


def membrane_iou(scores, masks, test) -> float:
    """IoU of the membrane class of an ISBI 2012 test set."""
    return float(M.iou(scores, masks, 2)[_membrane_class(test)])


# ---------------------------------------------------------------------------------------------
# Losses and predictions several chapters' experiments share
# ---------------------------------------------------------------------------------------------

def bce_dice() -> BCEDiceLoss:
    """UNet++'s hybrid loss, chapter 6's ``BCEDiceLoss()``."""
    return BCEDiceLoss()


def tiled_scores(model, x):
    """Whole-image scores of a valid-padding U-Net: one covering tile per image (overlap-tile with
    mirror padding), the same scores as any tiling."""
    return predict_tiled(model, x)


def mean_of_heads(model, x):
    """The prediction of a deeply supervised net as the mean of its heads (UNet++'s "fast mode"
    averages them; UNet-e predicts with the mean of its members)."""
    return torch.stack(model(x)).mean(0)
