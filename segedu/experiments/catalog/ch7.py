"""The named experiments of chapter 7: every model side by side; ISBI 2012; valid vs same padding."""

from __future__ import annotations

from ...data import Binary, Cells, Shapes
from ...losses import DeepSupervisionLoss
from ...models import FCN, SlidingWindowClassifier, UNet, UNetE, UNetPlus, UNetPlusPlus
from ...models.sliding_window import CenterPixelPatches
from ...train import default_loss
from ..registry import Experiment
from ..runner import ModelSpec
from .common import N_TEST, bce_dice, mean_of_heads, membrane_dice, membrane_iou, register, tiled_scores
from .data import Mosaic, PairedCrops, isbi2012_splits

__all__ = ["CH7", "CH7V"]


# ---------------------------------------------------------------------------------------------
# Chapter 7: every model side by side; ISBI 2012; valid vs same padding
# ---------------------------------------------------------------------------------------------

CH7 = dict(size=48, width=8, n_train=64, steps=120, batch_size=4, lr=3e-3, patch=17, patch_batch=256,
           cells=16, noise=0.3, isbi_crops=480, valid_depth=2)


def _ch7_models():
    """The chapter-7 table's models (the valid-padding U-Net has its own experiment, ch7-valid-vs-same,
    where it is compared under equal supervised pixels)."""

    W, norm, patch, pb = CH7["width"], "batch", CH7["patch"], CH7["patch_batch"]
    ds_loss = DeepSupervisionLoss(default_loss)
    return {
        "sliding window": ModelSpec(
            lambda c, k: SlidingWindowClassifier(c, k, patch_size=patch, width=2 * W, num_convs=4),
            train_transform=lambda ds: CenterPixelPatches(ds, patch_size=patch, n=pb * CH7["steps"], seed=0),
            fit_kwargs={"batch_size": pb}, after_training=lambda m: m.to_fcn()),
        "FCN-8s": ModelSpec(lambda c, k: FCN(k, variant="8s", in_channels=c, widths=(W, 2 * W, 4 * W, 8 * W, 8 * W),
                                             fc_channels=16 * W, norm=norm)),
        **{f"UNet-L{L}": ModelSpec(lambda c, k, L=L: UNet(c, k, depth=L, base_channels=W, padding="same", norm=norm))
           for L in (1, 2, 3, 4)},
        "UNet-e": ModelSpec(lambda c, k: UNetE(c, k, base_channels=W, deep_supervision=True, norm=norm),
                            fit_kwargs={"loss": ds_loss}, predict=mean_of_heads),
        "UNet+": ModelSpec(lambda c, k: UNetPlus(c, k, base_channels=W, norm=norm)),
        "UNet++": ModelSpec(lambda c, k: UNetPlusPlus(c, k, base_channels=W, norm=norm)),
        "UNet++ DS": ModelSpec(lambda c, k: UNetPlusPlus(c, k, base_channels=W, deep_supervision=True, norm=norm),
                               fit_kwargs={"loss": ds_loss}),
        "UNet++ DS pruned L3": ModelSpec(None, same_training_as="UNet++ DS", after_training=lambda m: m.pruned(3)),
    }


def _ch7_data():
    s, n, c, noise = CH7["size"], CH7["n_train"], CH7["cells"], CH7["noise"]
    return {"Shapes": (Binary(Shapes(n, size=s, seed=40)), Binary(Shapes(N_TEST, size=s, seed=41))),
            "Cells": (Cells(n, size=s, seed=42, cells=c, noise=noise),
                      Cells(N_TEST, size=s, seed=43, cells=c, noise=noise))}


def _ch7_comparisons():
    out = []
    for d in ("Shapes", "Cells"):
        out += [("UNet-L3", "UNet-L1", "mean_iou", d), ("UNet-L3", "UNet-L4", "mean_iou", d),
                ("UNet-L1", "FCN-8s", "mean_iou", d), ("UNet-L1", "sliding window", "mean_iou", d),
                ("UNet+", "UNet-L3", "mean_iou", d), ("UNet-e", "UNet-L3", "mean_iou", d),
                ("UNet++", "UNet+", "mean_iou", d), ("UNet+", "UNet-e", "mean_iou", d),
                ("UNet++ DS pruned L3", "UNet++ DS", "mean_iou", d)]
    return tuple(out)


register(Experiment(
    name="ch7-synthetic",
    question="Under one small budget (120 steps of 4 images), how do the course's models rank on binary Shapes "
             "and on noisy Cells?",
    chapter="07_comparison",
    models=_ch7_models, data=_ch7_data, comparisons=_ch7_comparisons(),
    seeds=tuple(range(8)), steps=CH7["steps"], batch_size=CH7["batch_size"], lr=CH7["lr"], n_test=N_TEST,
))

# ISBI 2012: every training step sees fresh crops (steps x batch random 48x48 crops of the 24
# training slices), and the test set is the 6 validation slices, whole (512x512). Labels are
# swapped so that the membrane is class 1: "dice" and "foreground_iou" are the membrane's. The valid U-Net
# of depth 2 trains on 88x88 crops whose 48x48 output is exactly the same-padding networks' crop.

_VALID_MARGIN = 20  # a valid U-Net of depth 2 (3x3 convolutions) maps 48 + 2 x 20 = 88 to 48


def _valid_unet(depth):
    return lambda c, k: UNet(c, k, depth=depth, base_channels=CH7["width"], norm="batch")


def _ch7_isbi_models():
    models = _ch7_models()
    models["U-Net valid L2 + tile"] = ModelSpec(_valid_unet(CH7["valid_depth"]),
                                               train_transform=lambda ds: ds.with_margin(_VALID_MARGIN),
                                               predict=tiled_scores)
    return models


def _ch7_isbi_data():
    train, val = isbi2012_splits("ch7-isbi")
    crops = PairedCrops(train, CH7["size"], CH7["isbi_crops"], seed=0, max_margin=_VALID_MARGIN)
    return {"ISBI 2012": (crops, val)}


register(Experiment(
    name="ch7-isbi",
    question="On the real EM slices of ISBI 2012, under the chapter-7 budget, how do the models rank on the Dice "
             "of the membrane (the thin minority class)?",
    chapter="07_comparison",
    models=_ch7_isbi_models, data=_ch7_isbi_data,
    comparisons=tuple((a, b, "membrane_dice") for a, b in (
        ("UNet-L3", "UNet-L1"), ("UNet-L3", "UNet-L4"), ("UNet-L1", "FCN-8s"), ("UNet-L1", "sliding window"),
        ("UNet-e", "UNet-L3"), ("UNet+", "UNet-L3"), ("UNet++ DS pruned L3", "UNet++ DS"),
        ("U-Net valid L2 + tile", "UNet-L2"))),
    seeds=tuple(range(8)), steps=CH7["steps"], batch_size=CH7["batch_size"], lr=CH7["lr"], n_test=6,
    complete_real_split=True,
    metrics=lambda: {"membrane_dice": membrane_dice, "membrane_iou": membrane_iou},
))

# Valid vs same padding under equal supervised pixels: both networks are supervised on the same
# 48x48 crops (same positions, same pixels); the valid one reads 20 more pixels of context on each
# side, as overlap-tile gives it at test time. Test images are 96x96, segmented whole: 2x2 mosaics
# of the 48x48 binary Shapes (shapes at the chapter's scale), and noisy Cells at chapter 7's
# density. The budget is chapter 6's recipe (BCE + Dice, one logit, 150 steps of 8): under chapter
# 7's 120 steps of 4 a depth-2 U-Net barely learns binary Shapes, and the question needs networks
# that do.

CH7V = dict(pool_size=96, n_pool=64, out_size=48, cells=64, depth=2, width=8, steps=150, batch_size=8, lr=2e-3)


def _ch7_valid_models():
    d, w = CH7V["depth"], CH7V["width"]
    return {f"U-Net valid L{d} + tile": ModelSpec(lambda c, k: UNet(c, 1, depth=d, base_channels=w, norm="batch"),
                                                 train_transform=lambda ds: ds.with_margin(_VALID_MARGIN),
                                                 predict=tiled_scores, fit_kwargs={"loss": bce_dice()}),
            f"UNet-L{d} same": ModelSpec(lambda c, k: UNet(c, 1, depth=d, base_channels=w, padding="same", norm="batch"),
                                         fit_kwargs={"loss": bce_dice()})}


def _ch7_valid_data():
    s, n, c, noise = CH7V["pool_size"], CH7V["n_pool"], CH7V["cells"], CH7["noise"]
    crops, tile = CH7V["steps"] * CH7V["batch_size"], CH7["size"]

    def paired(pool, seed):
        return PairedCrops(pool, CH7V["out_size"], crops, seed=seed, max_margin=_VALID_MARGIN)

    def mosaics(count, seed):  # 96x96 images made of 2x2 binary Shapes of 48x48
        return Mosaic(Binary(Shapes(4 * count, size=tile, seed=seed)), count, k=s // tile)

    return {"Shapes": (paired(mosaics(n, 50), 0), mosaics(N_TEST, 51)),
            "Cells": (paired(Cells(n, size=s, seed=52, cells=c, noise=noise), 1),
                      Cells(N_TEST, size=s, seed=53, cells=c, noise=noise))}


register(Experiment(
    name="ch7-valid-vs-same",
    question="Supervised on the same pixels, does a valid-padding U-Net with overlap-tile segment better than "
             "the same U-Net with same padding?",
    chapter="07_comparison",
    models=_ch7_valid_models, data=_ch7_valid_data,
    comparisons=tuple(("U-Net valid L2 + tile", "UNet-L2 same", m, d) for d in ("Shapes", "Cells")
                      for m in ("mean_iou", "dice")),
    seeds=tuple(range(8)), steps=CH7V["steps"], batch_size=CH7V["batch_size"], lr=CH7V["lr"], n_test=N_TEST,
))
