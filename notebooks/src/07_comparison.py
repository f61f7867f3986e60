# %% [markdown]
# # Every model side by side
#
# Which model should you use? This chapter answers with measurements: every model of the course
# trained under the **same budget** (optimizer steps), on the same data pipeline, evaluated on the
# same held-out images, over several seeds — with parameters, inference time, pixel accuracy, mean
# IoU and Dice in one table. It runs on the synthetic `Shapes` and `Cells` by default, and on the
# real ISBI 2012 EM slices when they are available.
#
# [Open this chapter in Colab](https://colab.research.google.com/github/segedu/segedu/blob/main/notebooks/07_comparison.ipynb)

# %%
# Setup: install segedu only if it is missing (e.g. on Colab); a local checkout already has it.
try:
    import segedu
except ImportError:
    %pip install -q "segedu @ git+https://github.com/segedu/segedu"

# %%
import inspect

import matplotlib.pyplot as plt
import numpy as np
import torch

from segedu import metrics, viz
from segedu.data import Cells, ISBI2012, RandomCrops, Shapes
from segedu.experiments import ModelSpec, compare, format_table, summarize
from segedu.losses import DeepSupervisionLoss
from segedu.models import FCN, SlidingWindowClassifier, UNet, UNetE, UNetPlus, UNetPlusPlus
from segedu.models.sliding_window import CenterPixelPatches
from segedu.tiling import predict_tiled
from segedu.train import default_loss, resolve_device

# %%
# Configuration. The default ("CPU") run trains 60 networks (11 models x 3 data sets x 2 seeds,
# when the real slices are available) on 2 CPU cores: narrow networks, 48x48 images, 100 optimizer
# steps each. FULL_RUN is meant for a GPU (Colab): wider networks, ten times the steps, three
# seeds, 128x128 images. All encoder-decoders use BatchNorm (norm="batch", a named option):
# without it these narrow networks do not leave the all-background solution within a CPU budget.
FULL_RUN = False
SEEDS = (0, 1, 2) if FULL_RUN else (0, 1)
STEPS = 1000 if FULL_RUN else 100
NORM = "batch"
WIDTH = 32 if FULL_RUN else 8
SIZE = 128 if FULL_RUN else 48
VALID_DEPTH = 2 if FULL_RUN else 1   # the valid-padding U-Net: SIZE must be a valid input for it
N_TRAIN, N_TEST = (400, 50) if FULL_RUN else (64, 16)
DEVICE = resolve_device("auto")
print("device:", DEVICE, "| full run" if FULL_RUN else "| CPU run")

# %% [markdown]
# ## The runner
#
# `segedu.experiments.compare` trains each model on each data set with each seed for exactly
# `STEPS` optimizer steps, then evaluates on the test images. A `ModelSpec` says how to build a
# model and, where a model needs it, how it trains and predicts: the sliding window trains on
# patches and predicts with its convolutionalised form; the valid-padding U-Net predicts whole
# images by overlap-tile; a deeply supervised UNet++ trains on the mean loss of its heads, and its
# pruned form is evaluated after training.

# %%
print(inspect.getsource(compare)[:1500], "...")

# %%
ds_loss = DeepSupervisionLoss(default_loss)  # the same pixel-wise cross entropy on every head
PATCH = 17


def unet_valid_predict(model, x):
    return predict_tiled(model, x, tile_size=SIZE)


MODELS = {
    "sliding window": ModelSpec(
        lambda c, k: SlidingWindowClassifier(c, k, patch_size=PATCH, width=WIDTH * 2, num_convs=4),
        train_transform=lambda ds: CenterPixelPatches(ds, patch_size=PATCH, n=4000, seed=0),
        after_training=lambda m: m.to_fcn()),
    f"UNet-L{VALID_DEPTH} valid + tile": ModelSpec(
        lambda c, k: UNet(c, k, depth=VALID_DEPTH, base_channels=WIDTH, norm=NORM), predict=unet_valid_predict),
    **{f"UNet-L{L}": ModelSpec(lambda c, k, L=L: UNet(c, k, depth=L, base_channels=WIDTH, padding="same", norm=NORM))
       for L in (1, 2, 3, 4)},
    # UNet-e: every member trained with its own head; the prediction is the ensemble mean
    "UNet-e": ModelSpec(lambda c, k: UNetE(c, k, base_channels=WIDTH, deep_supervision=True, norm=NORM),
                        fit_kwargs={"loss": ds_loss}, predict=lambda m, x: torch.stack(m(x)).mean(0)),
    "UNet+": ModelSpec(lambda c, k: UNetPlus(c, k, base_channels=WIDTH, norm=NORM)),
    "UNet++": ModelSpec(lambda c, k: UNetPlusPlus(c, k, base_channels=WIDTH, norm=NORM)),
    "UNet++ DS": ModelSpec(lambda c, k: UNetPlusPlus(c, k, base_channels=WIDTH, deep_supervision=True, norm=NORM),
                           fit_kwargs={"loss": ds_loss}),
    # the trained "UNet++ DS" itself, cut back to L3 (no second training: same weights)
    "UNet++ DS pruned L3": ModelSpec(None, same_training_as="UNet++ DS", after_training=lambda m: m.pruned(3)),
}
print(len(MODELS), "models:", ", ".join(MODELS))

# %% [markdown]
# FCN-8s (chapter 2) at the same scale: its five VGG stages get `WIDTH` to `16 * WIDTH` channels,
# with BatchNorm like the others.

# %%
W = WIDTH
MODELS["FCN-8s"] = ModelSpec(lambda c, k: FCN(k, variant="8s", in_channels=c, widths=(W, 2 * W, 4 * W, 8 * W, 8 * W),
                                              fc_channels=16 * W, norm=NORM))
print(len(MODELS), "models:", ", ".join(MODELS))

# %% [markdown]
# Their sizes at the widths of this run (3 input channels, 4 classes, as for `Shapes`):

# %%
# NBVAL_CHECK_OUTPUT
for name, spec in MODELS.items():
    if spec.same_training_as:  # e.g. the pruned UNet++: built from the model it is cut from
        model = spec.after_training(MODELS[spec.same_training_as].build(3, 4))
    else:
        model = spec.build(3, 4)
    print(f"{name:<22}{sum(p.numel() for p in model.parameters()):>10,} parameters")

# %% [markdown]
# ## The data
#
# `Shapes` (four classes, 3 channels) needs context: a pixel's class depends on the outline of its
# shape. `Cells` (cell vs gap, 1 channel) is a local, boundary-heavy task. The ISBI 2012 slices are
# used when available (random `SIZE`×`SIZE` crops of the 24 training slices; the 6 validation slices cut
# into crops for testing).

# %%
DATA = {
    "Shapes": (Shapes(N_TRAIN, size=SIZE, seed=40), Shapes(N_TEST, size=SIZE, seed=41)),
    "Cells": (Cells(N_TRAIN, size=SIZE, seed=42, cells=12), Cells(N_TEST, size=SIZE, seed=43, cells=12)),
}
on_colab = "google.colab" in str(get_ipython()) if "get_ipython" in dir() else False
try:
    em_train, em_val = ISBI2012(split="train", download=on_colab), ISBI2012(split="val", download=on_colab)
    DATA["ISBI 2012"] = (RandomCrops(em_train, SIZE, N_TRAIN, seed=0), RandomCrops(em_val, SIZE, N_TEST, seed=1))
    print("real ISBI 2012 slices found: included")
except (FileNotFoundError, OSError, ValueError) as e:
    print("ISBI 2012 slices not available: running on synthetic data only")
print("data sets:", list(DATA))

# %%
# NBVAL_IGNORE_OUTPUT
trained = {}
rows = compare(MODELS, DATA, seeds=SEEDS, steps=STEPS, batch_size=8, lr=3e-3, device=DEVICE, trained=trained)
summary = summarize(rows)
print(format_table(summary, metrics=("mean_iou", "dice", "pixel_accuracy", "infer_ms_per_image")))

# %% [markdown]
# ## Figures
#
# Mean IoU with its spread over seeds, per data set:

# %%
names = list(MODELS)
fig, axes = plt.subplots(1, len(DATA), figsize=(5.2 * len(DATA), 4.2), sharey=True)
axes = np.atleast_1d(axes)
for ax, dname in zip(axes, DATA):
    rs = {r["model"]: r for r in summary if r["dataset"] == dname}
    ax.barh(range(len(names)), [rs[n]["mean_iou"] for n in names], xerr=[rs[n]["mean_iou_std"] for n in names],
            color=[viz.CLASS_COLORS[1 + i % 7] for i in range(len(names))], capsize=3)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("mean IoU (± std over seeds)"), ax.set_title(dname), ax.grid(axis="x", alpha=0.3)
    ax.invert_yaxis()
fig.tight_layout()

# %% [markdown]
# Accuracy against inference time (CPU, one image), with the Pareto front: the models no other
# model beats on both axes.

# %%
fig, axes = plt.subplots(1, len(DATA), figsize=(5.2 * len(DATA), 4), sharey=False)
axes = np.atleast_1d(axes)
pareto = {}
for ax, dname in zip(axes, DATA):
    rs = [r for r in summary if r["dataset"] == dname]
    pts = sorted((r["infer_ms_per_image"], r["mean_iou"], r["model"]) for r in rs)
    front, best = [], -1.0
    for t, iou, n in pts:
        if iou > best:
            front.append((t, iou, n))
            best = iou
    pareto[dname] = [n for _, _, n in front]
    for t, iou, n in pts:
        ax.scatter(t, iou, color="C0" if n in pareto[dname] else "0.6", zorder=3)
        ax.annotate(n, (t, iou), fontsize=6.5, textcoords="offset points", xytext=(3, 3))
    ax.plot([p[0] for p in front], [p[1] for p in front], "--", color="C0", label="Pareto front")
    ax.set_xscale("log"), ax.set_xlabel("ms per image (log)"), ax.set_ylabel("mean IoU"), ax.set_title(dname)
    ax.legend(fontsize=8), ax.grid(alpha=0.3)
fig.tight_layout()

# %%
# NBVAL_IGNORE_OUTPUT
for dname, front in pareto.items():
    print(f"Pareto front on {dname}: {' -> '.join(front)}")

# %% [markdown]
# The same hard images — those on which the models disagree most — segmented by every model
# (seed 0):

# %%
dname = "Shapes"
test = DATA[dname][1]
xs = torch.stack([test[i][0] for i in range(len(test))])
ys = torch.stack([test[i][1] for i in range(len(test))])
preds = {}
spec_predict = {n: (MODELS[n].predict or (lambda m, x: (lambda o: o[-1] if isinstance(o, list) else o)(m(x))))
                for n in names}
with torch.no_grad():
    for n in names:
        preds[n] = metrics.as_labels(spec_predict[n](trained[(dname, n, SEEDS[0])].eval(), xs))
accs = torch.stack([(preds[n] == ys).float().mean((1, 2)) for n in names])  # [models, images]
hard = accs.std(0).argsort(descending=True)[:3].tolist()
fig, axes = plt.subplots(len(hard), len(names) + 2, figsize=(1.25 * (len(names) + 2), 1.35 * len(hard) + 0.6))
for r, i in enumerate(hard):
    axes[r, 0].imshow(viz.to_image(xs[i])), axes[r, 1].imshow(viz.colorize(ys[i]), interpolation="nearest")
    for c, n in enumerate(names):
        axes[r, c + 2].imshow(viz.colorize(preds[n][i]), interpolation="nearest")
        if r == 0:
            axes[r, c + 2].set_title(n, fontsize=6, rotation=30, ha="left")
    if r == 0:
        axes[r, 0].set_title("image", fontsize=7), axes[r, 1].set_title("truth", fontsize=7)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
viz.class_legend(fig, Shapes.CLASSES, loc="lower center")
fig.tight_layout(rect=(0, 0.06, 1, 1))

# %% [markdown]
# ## Discussion
#
# DISCUSSION_PLACEHOLDER
#
# ## Exercises
#
# 1. **A fair budget.** The runner fixes optimizer *steps*. Re-run the comparison with a fixed
#    number of *seconds* instead (time each step), and see which models gain or lose.
# 2. **More seeds.** Add a seed and check which differences in the table survive.
# 3. **Your own model.** Write a `ModelSpec` for `UNet(norm="batch", padding="same")` and add it
#    to the table.

# %% tags=["hide-cell", "solution"]
# Solution 1 (sketch): measure seconds per step on a few batches, then give each model
# steps = budget_seconds / seconds_per_step. Here: the per-step cost of each model on the CPU.
import time

x = DATA["Cells"][0][0][0][None].repeat(8, 1, 1, 1)
for n in ("UNet-L4", "UNet++"):
    m = MODELS[n].build(1, 2)
    t0 = time.perf_counter()
    m(x).sum().backward()
    print(f"{n}: {time.perf_counter() - t0:.3f} s for one forward + backward of 8 images")

# %% tags=["hide-cell", "solution"]
# Solution 2: run compare with SEEDS + (2,) on one data set and compare the std columns.
extra = compare({"UNet-L2": MODELS["UNet-L2"]}, {"Cells": DATA["Cells"]}, seeds=(0, 1, 2), steps=20, batch_size=8,
                device=DEVICE, progress=False)
print(format_table(summarize(extra), metrics=("mean_iou",)))

# %% tags=["hide-cell", "solution"]
# Solution 3: a ModelSpec with BatchNorm.
bn = ModelSpec(lambda c, k: UNet(c, k, depth=3, base_channels=WIDTH, padding="same", norm="batch"))
print(format_table(summarize(compare({"U-Net BN": bn}, {"Cells": DATA["Cells"]}, seeds=(0,), steps=20, batch_size=8,
                                     device=DEVICE, progress=False)), metrics=("mean_iou",)))
