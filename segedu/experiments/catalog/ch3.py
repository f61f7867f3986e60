"""The named experiments of chapter 3: upsampling in an encoder-decoder without skips."""

from __future__ import annotations

from ...data import Cells
from ...models.encoder_decoder import EncoderDecoder
from ..registry import Experiment
from ..runner import ModelSpec
from .common import N_TEST, boundary_accuracy, cells_recovered, register

__all__ = ["CH3"]


# ---------------------------------------------------------------------------------------------
# Chapter 3: upsampling in an encoder-decoder without skips
# ---------------------------------------------------------------------------------------------
# The chapter's own run (four-class Shapes, 500 steps) never learned the task: almost every object
# came out as "circle", so it could not rank upsamplings. Here the task is touching cells: a 2-pixel
# gap between two cells has to come back at the right position after three 2x2 poolings, and the
# decoder has no skip connection, so positions travel only through the upsampling.

CH3 = dict(size=48, cells=16, n_train=400, width=8, levels=3, steps=200, batch_size=8, lr=3e-3)
UPSAMPLINGS = ("nearest", "bed_of_nails", "max_unpool", "transpose", "bilinear")


def _ch3_models():
    return {up: ModelSpec(lambda c, k, up=up: EncoderDecoder(k, c, up=up, width=CH3["width"], levels=CH3["levels"]))
            for up in UPSAMPLINGS}


def _ch3_data():
    s, n = CH3["size"], CH3["cells"]
    return {"Cells": (Cells(CH3["n_train"], size=s, seed=30, cells=n), Cells(N_TEST, size=s, seed=31, cells=n))}


register(Experiment(
    name="ch3-upsampling",
    question="In an encoder-decoder without skips, does max unpooling (values back at their argmax) segment "
             "touching cells better than nearest, bed-of-nails, transposed-convolution or bilinear upsampling?",
    chapter="03_upsampling",
    models=_ch3_models, data=_ch3_data,
    comparisons=tuple(("max_unpool", other, metric) for metric in ("mean_iou", "boundary_accuracy")
                      for other in ("nearest", "bed_of_nails", "transpose", "bilinear")),
    seeds=tuple(range(8)), steps=CH3["steps"], batch_size=CH3["batch_size"], lr=CH3["lr"], n_test=N_TEST,
    metrics=lambda: {"boundary_accuracy": boundary_accuracy, "cells_recovered": cells_recovered},
))
