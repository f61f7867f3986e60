"""The named experiments of chapter 6b: deep supervision and pruning; nesting."""

from __future__ import annotations

from ...data import Binary, Shapes
from ...losses import BCEDiceLoss, DeepSupervisionLoss
from ...models import UNet, UNetE, UNetPlus, UNetPlusPlus
from ..registry import Experiment
from ..runner import ModelSpec
from .common import bce_dice, mean_of_heads, register

__all__ = ["CH6B"]


# ---------------------------------------------------------------------------------------------
# Chapter 6b: deep supervision and pruning; nesting
# ---------------------------------------------------------------------------------------------

CH6B = dict(size=48, width=8, n_train=96, steps=192, batch_size=8, lr=2e-3, n_test=400)


def _ch6b_data():
    s = CH6B["size"]
    return {"Shapes": (Binary(Shapes(CH6B["n_train"], size=s, seed=20)),
                       Binary(Shapes(CH6B["n_test"], size=s, seed=21)))}


def _deep_loss():
    return DeepSupervisionLoss(BCEDiceLoss())




def _ch6b_ds_models():
    w = CH6B["width"]
    return {
        "UNet++": ModelSpec(lambda c, k: UNetPlusPlus(c, 1, base_channels=w, norm="batch"),
                            fit_kwargs={"loss": bce_dice()}),
        "UNet++ DS": ModelSpec(lambda c, k: UNetPlusPlus(c, 1, base_channels=w, norm="batch", deep_supervision=True),
                               fit_kwargs={"loss": _deep_loss()}),
        # pruned at inference time: the trained UNet++ DS cut back (no training of its own)
        **{f"UNet++ DS pruned L{L}": ModelSpec(None, same_training_as="UNet++ DS",
                                               after_training=lambda m, L=L: m.pruned(L)) for L in (3, 2, 1)},
    }


register(Experiment(
    name="ch6b-deep-supervision",
    question="Does deep supervision improve UNet++ on binary shapes, and how much foreground IoU does pruning "
             "the deeply supervised UNet++ to L3, L2 or L1 cost?",
    chapter="06b_unetpp_training",
    models=_ch6b_ds_models, data=_ch6b_data,
    comparisons=(("UNet++ DS", "UNet++", "foreground_iou"),
                 ("UNet++ DS pruned L3", "UNet++ DS", "foreground_iou"),
                 ("UNet++ DS pruned L2", "UNet++ DS", "foreground_iou"),
                 ("UNet++ DS pruned L1", "UNet++ DS", "foreground_iou")),
    seeds=tuple(range(8)), steps=CH6B["steps"], batch_size=CH6B["batch_size"], lr=CH6B["lr"], n_test=CH6B["n_test"],
))


def _ch6b_nesting_models():
    w = CH6B["width"]
    return {
        "U-Net": ModelSpec(lambda c, k: UNet(c, 1, depth=4, base_channels=w, padding="same", norm="batch"),
                           fit_kwargs={"loss": bce_dice()}),
        "UNet-e": ModelSpec(lambda c, k: UNetE(c, 1, base_channels=w, norm="batch", deep_supervision=True),
                            fit_kwargs={"loss": _deep_loss()}, predict=mean_of_heads),
        "UNet+": ModelSpec(lambda c, k: UNetPlus(c, 1, base_channels=w, norm="batch"),
                           fit_kwargs={"loss": bce_dice()}),
        "UNet++": ModelSpec(lambda c, k: UNetPlusPlus(c, 1, base_channels=w, norm="batch"),
                            fit_kwargs={"loss": bce_dice()}),
    }


register(Experiment(
    name="ch6b-nesting",
    question="Do the nested skip pathways help: does UNet++ beat U-Net, and is the paper's ordering "
             "UNet-e < UNet+ < UNet++ reproduced on binary shapes?",
    chapter="06b_unetpp_training",
    models=_ch6b_nesting_models, data=_ch6b_data,
    comparisons=(("UNet++", "U-Net", "foreground_iou"), ("UNet+", "U-Net", "foreground_iou"),
                 ("UNet-e", "U-Net", "foreground_iou"), ("UNet++", "UNet+", "foreground_iou"),
                 ("UNet+", "UNet-e", "foreground_iou")),
    seeds=tuple(range(8)), steps=CH6B["steps"], batch_size=CH6B["batch_size"], lr=CH6B["lr"], n_test=CH6B["n_test"],
))
