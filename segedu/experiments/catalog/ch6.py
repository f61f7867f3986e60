"""The named experiments of chapter 6: the hybrid loss, batch normalization, and depth."""

from __future__ import annotations

from ...data import Binary, Cells, Shapes
from ...models import UNet, UNetPlusPlus
from ..registry import Experiment
from ..runner import ModelSpec
from .common import N_TEST, bce_dice, register

__all__ = []


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
    seeds=tuple(range(10)), steps=CH6["loss_steps"], batch_size=CH6["batch_size"], lr=CH6["lr"], n_test=N_TEST,
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
