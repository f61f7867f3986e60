"""The named experiments of chapter 5b: the weight map, and concatenation vs summation skips."""

from __future__ import annotations

from ...data import Cells
from ...models import UNet
from ..registry import Experiment
from ..runner import ModelSpec
from .common import N_TEST, cells_recovered, register, tiled_scores
from .data import DropWeights

__all__ = ["CH5B"]


# ---------------------------------------------------------------------------------------------
# Chapter 5b: the weight map, and concatenation vs summation skips
# ---------------------------------------------------------------------------------------------
# The paper's valid-padding U-Net at CPU size: depth 2, 8 filters, 88x88 inputs -> 48x48 outputs
# (the masks and weight maps are centre-cropped to the output by fit). Test images are 64x64
# Cells at the training density, segmented whole by overlap-tile.

# Batch norm: without it, the weight-map runs collapsed to all-background on 3 of 8 seeds (and
# more at lr 3e-4), so the first stored result measured that instability, not the weight map.
CH5B = dict(depth=2, width=8, norm="batch", train_size=88, train_cells=30, test_size=64, test_cells=16, n_train=96,
            steps=150, batch_size=8, lr=1e-3, w0=10.0, sigma=5.0)


def _ch5b_unet(skip="concat"):
    return lambda c, k: UNet(c, k, depth=CH5B["depth"], base_channels=CH5B["width"], skip=skip, norm=CH5B["norm"])




def _ch5b_data():
    train = Cells(CH5B["n_train"], size=CH5B["train_size"], seed=100, cells=CH5B["train_cells"], weights=True,
                  w0=CH5B["w0"], sigma=CH5B["sigma"])
    return {"Cells": (train, Cells(N_TEST, size=CH5B["test_size"], seed=200, cells=CH5B["test_cells"]))}


def _ch5b_metrics():
    return {"cells_recovered": cells_recovered}


register(Experiment(
    name="ch5b-weight-map",
    question="Does training the U-Net with the weight map (w0 = 10, sigma = 5) recover more touching cells as "
             "separate components than the plain cross entropy?",
    chapter="05b_unet_training",
    models=lambda: {"cross entropy": ModelSpec(_ch5b_unet(), train_transform=DropWeights, predict=tiled_scores),
                    "weight map": ModelSpec(_ch5b_unet(), predict=tiled_scores)},
    data=_ch5b_data,
    comparisons=(("weight map", "cross entropy", "cells_recovered"),
                 ("weight map", "cross entropy", "foreground_iou"),
                 ("weight map", "cross entropy", "pixel_accuracy")),
    seeds=tuple(range(8)), steps=CH5B["steps"], batch_size=CH5B["batch_size"], lr=CH5B["lr"], n_test=N_TEST,
    metrics=_ch5b_metrics,
))

register(Experiment(
    name="ch5b-skips",
    question="Does a U-Net with concatenated skips (the paper) segment touching cells better than the same "
             "U-Net with summed skips (FCN-style)?",
    chapter="05b_unet_training",
    # plain cross entropy for both, so that the skips are the only difference from the weight-map question
    models=lambda: {"concat": ModelSpec(_ch5b_unet("concat"), train_transform=DropWeights, predict=tiled_scores),
                    "sum": ModelSpec(_ch5b_unet("sum"), train_transform=DropWeights, predict=tiled_scores)},
    data=_ch5b_data,
    comparisons=(("concat", "sum", "cells_recovered"), ("concat", "sum", "foreground_iou")),
    seeds=tuple(range(8)), steps=CH5B["steps"], batch_size=CH5B["batch_size"], lr=CH5B["lr"], n_test=N_TEST,
    metrics=_ch5b_metrics,
))
