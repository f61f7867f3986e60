# %% [markdown]
# # Every model side by side
#
# Which model should you use? This closing chapter answers with measurements instead of opinions.
# Every model of the course is trained under the **same budget** on the same data pipeline,
# evaluated on the same held-out images, over several seeds. One table then holds the numbers:
# parameters, training time, inference time, pixel accuracy, mean IoU and Dice.
#
# The comparison runs on the synthetic data of the earlier chapters, `Shapes` and `Cells`. When
# the real ISBI 2012 EM slices are available it runs on them too; the data cell prints which sets
# ran. On Colab they are downloaded and checksummed; locally, point `SEGEDU_DATA` at a folder that
# holds them.
#
# A warning before the numbers. A budget that fits a laptop CPU is tiny: 120 optimizer steps on
# 48×48 images. At that scale this chapter measures how fast each model learns *at the start*, not
# which one is best when fully trained. The discussion at the end separates what the table
# supports from what it does not. `FULL_RUN` in the configuration cell is the GPU run that would
# come closer to the papers.
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
import sys

import matplotlib.pyplot as plt
import torch

from segedu import metrics, viz
from segedu.data import Binary, Cells, ISBI2012, RandomCrops, Shapes
from segedu.experiments import ModelSpec, compare, count_parameters, format_table, pareto_front, summarize
from segedu.losses import DeepSupervisionLoss
from segedu.models import FCN, SlidingWindowClassifier, UNet, UNetE, UNetPlus, UNetPlusPlus
from segedu.models.sliding_window import CenterPixelPatches
from segedu.sizes import valid_input_sizes
from segedu.tiling import predict_tiled
from segedu.train import default_loss, resolve_device

# %%
# Configuration. The default (CPU) run trains 11 networks per data set and seed: 2 seeds on
# 2 synthetic data sets (3 when the ISBI slices are found), so 44 or 66 training runs. All of them
# are narrow (8 filters in the first layer), use 48x48 images and take 120 optimizer steps of 4
# images. That is about five minutes on 2 CPU cores.
# FULL_RUN = True is meant for a GPU (Colab: Runtime > Change runtime type > GPU): 32 filters,
# 128x128 images, 2000 steps of 8 images, 3 seeds, and a valid U-Net of depth 2. (We have not run
# it yet: its table is yours to make.)
FULL_RUN = False
SEEDS = (0, 1, 2) if FULL_RUN else (0, 1)
STEPS = 2000 if FULL_RUN else 120          # the shared budget: optimizer steps per training run
BATCH = 8 if FULL_RUN else 4               # images per step (the sliding window: PATCH_BATCH patches)
LR = 1e-3 if FULL_RUN else 3e-3
WIDTH = 32 if FULL_RUN else 8              # filters of the first layer (the papers: 64 and 32)
SIZE = 128 if FULL_RUN else 48             # image side; divisible by 2**4 for the depth-4 networks
VALID_DEPTH = 2 if FULL_RUN else 1         # depth of the valid-padding U-Net that predicts by overlap-tile
N_TRAIN, N_TEST = (400, 50) if FULL_RUN else (64, 16)
PATCH, PATCH_BATCH = 17, 256               # the sliding window's patch side and patches per step
NORM = "batch"                             # BatchNorm in every encoder-decoder (a named, modern option)
DEVICE = resolve_device("auto")
print("device:", DEVICE, "| full run" if FULL_RUN else "| CPU run")

# %% [markdown]
# ## The runner
#
# `segedu.experiments.compare` takes a dict of models, a dict of `(train, test)` data sets and a
# list of seeds. It trains every model on every data set with every seed for the same budget. It
# then predicts the test images and measures. Its signature:

# %%
print("compare" + str(inspect.signature(compare)))

# %% [markdown]
# The budget is either `steps` or `seconds`:
#
# * **Steps** (used here) gives every model the same number of optimizer steps. This reproduces:
#   the same seed gives the same table on a CPU. It is also what the papers do when they train
#   every model "for the same number of epochs".
# * **Seconds** gives every model the same wall-clock time, so cheap models take more steps. That
#   answers "what is best for *my* compute", but it depends on the machine and on its load
#   (exercise 1).
#
# A `ModelSpec` says how to build a model. Where a model needs more, it also says how the model
# trains and predicts:
#
# * the sliding window trains on patches and predicts with its convolutionalised form (equal to
#   the brute-force window, chapter 1);
# * the valid-padding U-Net predicts whole images by overlap-tile (chapter 5);
# * the deeply supervised networks train on the mean loss of their heads;
# * the pruned UNet++ is the trained deeply supervised UNet++, cut back to L3 (chapter 6b). It is
#   evaluated, not trained again, so its training time is the full network's.

# %%
ds_loss = DeepSupervisionLoss(default_loss)  # the same pixel-wise cross entropy on every head
VALID_TILE = valid_input_sizes(VALID_DEPTH, max_size=SIZE)[-1]  # largest valid input <= SIZE
W = WIDTH

MODELS = {
    # Chapter 1. One "image" step of the others is BATCH x SIZE^2 labelled pixels; one step here is
    # PATCH_BATCH patches, each with one labelled pixel (its centre).
    "sliding window": ModelSpec(
        lambda c, k: SlidingWindowClassifier(c, k, patch_size=PATCH, width=2 * W, num_convs=4),
        train_transform=lambda ds: CenterPixelPatches(ds, patch_size=PATCH, n=PATCH_BATCH * STEPS, seed=0),
        fit_kwargs={"batch_size": PATCH_BATCH},
        after_training=lambda m: m.to_fcn()),
    # Chapter 2: FCN-8s, its five VGG stages narrowed to W .. 8W channels.
    "FCN-8s": ModelSpec(lambda c, k: FCN(k, variant="8s", in_channels=c, widths=(W, 2 * W, 4 * W, 8 * W, 8 * W),
                                         fc_channels=16 * W, norm=NORM)),
    # Chapter 5: the paper's valid convolutions, trained on VALID_TILE crops, predicting by overlap-tile.
    f"U-Net valid L{VALID_DEPTH} + tile": ModelSpec(
        lambda c, k: UNet(c, k, depth=VALID_DEPTH, base_channels=W, norm=NORM),
        train_transform=lambda ds: ds if VALID_TILE == SIZE else RandomCrops(ds, VALID_TILE, len(ds), seed=0),
        predict=lambda m, x: predict_tiled(m, x, tile_size=VALID_TILE)),
    # Chapter 6: U-Nets of depth 1..4 with "same" padding (UNet-L4 is the U-Net of the UNet++ paper).
    **{f"UNet-L{L}": ModelSpec(lambda c, k, L=L: UNet(c, k, depth=L, base_channels=W, padding="same", norm=NORM))
       for L in (1, 2, 3, 4)},
    # UNet-e: every member has its own head and loss; the prediction is the members' mean.
    "UNet-e": ModelSpec(lambda c, k: UNetE(c, k, base_channels=W, deep_supervision=True, norm=NORM),
                        fit_kwargs={"loss": ds_loss}, predict=lambda m, x: torch.stack(m(x)).mean(0)),
    "UNet+": ModelSpec(lambda c, k: UNetPlus(c, k, base_channels=W, norm=NORM)),
    "UNet++": ModelSpec(lambda c, k: UNetPlusPlus(c, k, base_channels=W, norm=NORM)),
    "UNet++ DS": ModelSpec(lambda c, k: UNetPlusPlus(c, k, base_channels=W, deep_supervision=True, norm=NORM),
                           fit_kwargs={"loss": ds_loss}),
    "UNet++ DS pruned L3": ModelSpec(None, same_training_as="UNet++ DS", after_training=lambda m: m.pruned(3)),
}
print(len(MODELS), "models:", ", ".join(MODELS))
print("the valid U-Net trains on", VALID_TILE, "x", VALID_TILE, "crops and tiles with them")

# %% [markdown]
# Their sizes at the width of this run, for 3 input channels and 2 classes:

# %%
# NBVAL_CHECK_OUTPUT
for name, spec in MODELS.items():
    if spec.same_training_as:  # the pruned UNet++ is cut from the model it names
        model = spec.after_training(MODELS[spec.same_training_as].build(3, 2))
    else:
        model = spec.build(3, 2)
        if spec.after_training:  # the sliding window's dense form has the same weights
            model = spec.after_training(model)
    print(f"{name:<22}{count_parameters(model):>10,} parameters")

# %% [markdown]
# ## The data
#
# * **Shapes**, as a binary task (shape vs background, `Binary(Shapes)`, as in chapter 6b): a
#   shape's colour is drawn from the same distribution as the background's, so only its outline
#   gives it away. This task needs context. The four-class version is left for exercise 4.
# * **Cells**, with strong pixel noise (`noise=0.3`, against 0.08 in chapter 5b): touching cells
#   separated by gaps of 2 pixels. This is a local, boundary-heavy task like the EM data, and the
#   noise keeps it from being trivial at 48×48.
# * **ISBI 2012**, if found: random `SIZE`×`SIZE` crops of the 24 training slices, tested on crops
#   of the 6 held-out slices (24–29).

# %%
DATA = {
    "Shapes": (Binary(Shapes(N_TRAIN, size=SIZE, seed=40)), Binary(Shapes(N_TEST, size=SIZE, seed=41))),
    "Cells": (Cells(N_TRAIN, size=SIZE, seed=42, cells=round(16 * (SIZE / 48) ** 2), noise=0.3),
              Cells(N_TEST, size=SIZE, seed=43, cells=round(16 * (SIZE / 48) ** 2), noise=0.3)),
}
on_colab = "google.colab" in sys.modules
try:
    em_train, em_val = ISBI2012(split="train", download=on_colab), ISBI2012(split="val", download=on_colab)
    DATA["ISBI 2012"] = (RandomCrops(em_train, SIZE, N_TRAIN, seed=0), RandomCrops(em_val, SIZE, N_TEST, seed=1))
    print("real ISBI 2012 slices found: included")
except (FileNotFoundError, OSError, ValueError):
    print("ISBI 2012 slices not available (set SEGEDU_DATA, or run on Colab): synthetic data only")
print("data sets:", list(DATA))

# %% alt="One test image of each data set with its ground truth: binary Shapes (a few coloured shapes on a textured background), noisy Cells (grey cells separated by dark gaps) and, when available, an ISBI 2012 EM crop with its membrane mask."
samples = [DATA[d][1][0][:2] for d in DATA]
fig = viz.show_samples([x for x, _ in samples], [y for _, y in samples], titles=("image", "truth"))
for ax, d in zip(fig.axes[: len(DATA)], DATA):
    ax.set_title(d)

# %% [markdown]
# ## The run
#
# This cell is the chapter's whole computation. It makes one training run per (data set, model,
# seed), with a progress bar over the runs.

# %%
# NBVAL_IGNORE_OUTPUT
trained = {}
rows = compare(MODELS, DATA, seeds=SEEDS, steps=STEPS, batch_size=BATCH, lr=LR, device=DEVICE, trained=trained)
summary = summarize(rows)
print(format_table(summary, metrics=("mean_iou", "dice", "pixel_accuracy", "infer_ms_per_image", "train_seconds")))

# %% [markdown]
# With two seeds a standard deviation says little, so here is every run's mean IoU:

# %%
# NBVAL_IGNORE_OUTPUT
for dname in DATA:
    print(dname)
    for name in MODELS:
        runs = [r["mean_iou"] for r in rows if r["dataset"] == dname and r["model"] == name]
        print(f"  {name:<22}" + "  ".join(f"{v:.3f}" for v in runs))

# %% [markdown]
# In the table, each row is the mean ± the standard deviation over the seeds. `dice` is the foreground's Dice
# (cell, shape, or the EM cell interiors). `infer_ms_per_image` is the median time to predict one
# test image on this machine. `train_seconds` is the time of the run's 120 steps; the pruned
# network repeats the full network's, because it is the same training.
#
# ## Figures
#
# Mean IoU per model. The bar is the mean over seeds and each dot is one seed:

# %% alt="Mean IoU of the twelve models on Shapes, Cells and ISBI 2012, a bar at the mean of two seeds and a dot per seed. On Shapes UNet+ leads (0.76) ahead of UNet-L3 (0.73) and the sliding window trails (0.42); on Cells every model lies between 0.81 and 0.86 except FCN-8s (0.61); on ISBI UNet-e and UNet-L3 lead (0.68 and 0.67), with wide gaps between the seeds of several models."
fig = viz.plot_comparison(rows, "mean_iou")

# %% [markdown]
# The same for the foreground's Dice. It is the metric of the UNet++ paper, and it ignores the
# large, easy background class:

# %% alt="Foreground Dice of the twelve models on the three data sets, a bar at the mean of two seeds and a dot per seed: the same pattern as the mean IoU, with the two Shapes seeds of the sliding window far apart (near 0 and about 0.36)."
fig = viz.plot_comparison(rows, "dice")

# %% [markdown]
# Pixel accuracy, for comparison. It counts every pixel, so the largest class dominates it, and the
# models lie closer together than in mean IoU on every data set. That is why the course does not
# rank by it.

# %% alt="Pixel accuracy of the twelve models on the three data sets, a bar at the mean of two seeds and a dot per seed: most models lie between 0.8 and 0.94; the exceptions are the sliding window and the valid U-Net on Shapes (one seed each near 0.63 and 0.66), FCN-8s on Cells (0.77), and UNet++ DS and its pruned L3 on ISBI (one seed each near 0.61 and 0.62)."
fig = viz.plot_comparison(rows, "pixel_accuracy")

# %% [markdown]
# And the cost of the budget: seconds of training per run on this CPU. The step budget is the same
# for all; what a step costs is not. The pruned UNet++ repeats the full network's time, since it is
# the same training.

# %% alt="Training seconds per run for each model on the three data sets: the U-Nets of depth 1 to 4 take about 1 to 3 s, FCN-8s about 2 to 2.6 s, the sliding window about 4 s, the nested models 5 to 7 s; the pruned UNet++ repeats the full network's time."
fig = viz.plot_comparison(rows, "train_seconds")

# %% [markdown]
# Accuracy against the cost of using the model: inference time for one image on this CPU. The
# [**Pareto front**](../book/glossary.md#pareto-front) (blue) holds the models that no other model
# beats on both axes at once. Any model off the front has a cheaper model that is at least as
# accurate.

# %% alt="Mean IoU against inference milliseconds per image on a log scale, one panel per data set, with the Pareto front as a dashed line. Shapes: UNet-L1, L2, L3 and UNet+ on the front; Cells: UNet-L1 and UNet-e; ISBI 2012: UNet-L1, the sliding window, UNet-L3 and UNet-e. The nested models take about 5 to 7 ms per image, the U-Nets of depth 1 to 3 about 1 to 2 ms."
fig = viz.plot_pareto(summary)

# %%
# NBVAL_IGNORE_OUTPUT
for dname in DATA:
    print(f"Pareto front on {dname}: " + " -> ".join(pareto_front([r for r in summary if r["dataset"] == dname])))

# %% [markdown]
# Finally, the same hard images segmented by every model (seed 0). "Hard" means the images on
# which the models disagree most: the largest spread of per-image pixel accuracy across models.

# %% alt="A grid for the three Shapes test images on which the models disagree most: image, truth, then the prediction of each of the twelve models. The sliding window predicts no foreground on them, FCN-8s misses some shapes, the valid depth-1 U-Net paints large areas as foreground, UNet-L4 merges shapes into one blob on two images, and the nested models follow the shapes most closely."
names = list(MODELS)


def predictions(dname, seed=SEEDS[0]):
    test = DATA[dname][1]
    xs = torch.stack([test[i][0] for i in range(len(test))])
    ys = torch.stack([test[i][1] for i in range(len(test))])
    with torch.no_grad():  # each spec knows how its model predicts a whole image (e.g. overlap-tile)
        preds = {n: metrics.as_labels(MODELS[n].scores(trained[(dname, n, seed)].eval(), xs)) for n in names}
    return xs, ys, preds


xs, ys, preds = predictions("Shapes")
accuracy = torch.stack([(preds[n] == ys).float().mean((1, 2)) for n in names])  # [models, images]
hard = accuracy.std(0).argsort(descending=True)[:3]
fig = viz.compare_predictions(xs[hard], ys[hard], {n: p[hard] for n, p in preds.items()},
                              class_names=Binary.CLASSES)

# %% [markdown]
# ## How solid is one run?
#
# One more measurement before the discussion. `fit` trains in the channels-last memory format on
# the CPU (it is faster there). The other format computes the same convolutions, and only the
# rounding of the sums differs. Here are two models trained again on Shapes with the same seeds,
# in the other format:

# %%
# NBVAL_IGNORE_OUTPUT
def other_format(spec):
    return ModelSpec(spec.build, fit_kwargs={**spec.fit_kwargs, "channels_last": False}, predict=spec.predict)


again = compare({n: other_format(MODELS[n]) for n in ("UNet-L3", "UNet++ DS")}, {"Shapes": DATA["Shapes"]},
                seeds=SEEDS, steps=STEPS, batch_size=BATCH, lr=LR, device=DEVICE, progress=False)
for r in again:
    first = next(f for f in rows if (f["dataset"], f["model"], f["seed"]) == ("Shapes", r["model"], r["seed"]))
    print(f"{r['model']:<10} seed {r['seed']}: mean IoU {first['mean_iou']:.3f} -> {r['mean_iou']:.3f} "
          f"in the other memory format")

# %% [markdown]
# ## Discussion
#
# The numbers below are the ones printed above. They come from one CPU run: 120 steps of 4 images
# of 48×48, 8 filters in the first layer, 2 seeds.
#
# ### What the table supports
#
# * **The best depth depends on the data (as in chapter 6).** On Shapes, mean IoU rises from UNet-L1
#   (0.511) through L2 (0.623) to L3 (0.731), then falls for L4 (0.638; both its seeds below both of
#   L3's). On Cells the plain U-Nets lie within 0.024 of each other (0.826–0.850), the shallowest
#   the highest. On ISBI it rises with depth up to L3 (0.607, 0.631, 0.666), with L4 at 0.656.
# * **One nested model led on Shapes; the paper's ordering did not appear.** UNet+ scored 0.758, and
#   both its seeds lie above both seeds of UNet-L3. UNet-e (0.724), UNet++ (0.700) and UNet++ with
#   deep supervision (0.694) did not beat UNet-L3 there. On ISBI, UNet++ DS had the lowest mean of
#   all (0.503), because one seed fell to 0.406. So the paper's ordering UNet-e < UNet+ < UNet++ is
#   not reproduced here, as in chapter 6b. UNet-e had the steadiest record: the best mean on Cells
#   (0.856) and on ISBI (0.676), and 0.007 below UNet-L3 on Shapes.
# * **FCN-8s cannot draw thin gaps.** On Cells it scores 0.614, against 0.814–0.856 for every other
#   model, on both seeds. Its scores are upsampled from 1/8 of the resolution (chapter 2), and the
#   gaps between cells are 2 pixels wide. The U-Nets' full-resolution skips are made for this. On
#   Shapes, where the objects are large, it did well (0.676, above UNet-L2 and L4).
# * **The sliding window depends on the task.** On Shapes it came last (0.422). One of its seeds
#   found almost no foreground (Dice 0.182 ± 0.257). On the local tasks it came close to the U-Nets:
#   0.814 on Cells (the U-Nets: 0.826–0.850), and 0.635 on ISBI, above UNet-L1 and L2 and on the
#   Pareto front. Two caveats. Its time in the table is that of its convolutionalised form; the
#   brute-force window computes the same output hundreds of times slower (chapter 1). And it
#   learns from 256 labelled pixels per step, against 4 × 48² = 9,216 for the others.
# * **Pruning cost nothing here.** The pruned L3 scored like the full deeply supervised UNet++ on
#   every set (0.696 vs 0.694, 0.844 vs 0.843, 0.518 vs 0.503). It needed 55–66% of its inference
#   time (3.5–3.8 ms against 5.7–6.9 ms).
# * **Valid convolutions did not buy accuracy.** The valid U-Net of depth 1 with overlap-tile scored
#   a little below the same-padding UNet-L1 on all three sets (0.476 vs 0.511, 0.839 vs 0.850, 0.598
#   vs 0.607), within the spread of its seeds. Tiling made its inference 1.6–2.2 times slower at
#   this size. What valid convolutions buy is seamless tiles of images too large for memory
#   (chapter 5), not a better score.
# * **The Pareto fronts are short.** On Shapes the front is UNet-L1 → L2 → L3 → UNet+; on Cells it
#   is UNet-L1 → UNet-e; on ISBI it is UNet-L1 → sliding window → UNet-L3 → UNet-e. UNet-L3 is on
#   two of the three fronts, at 31–43% of the nested models' inference time (1.8–2.1 ms against
#   4.6–6.9 ms). The fronts come from single timings on a shared CPU; a model a few tenths of a
#   millisecond from the front may be on it in your run.
#
# ### What it does not support
#
# * **Small differences.** The rounding experiment above changed only how the sums are rounded, and
#   it moved single runs by 0.010 to 0.017. That is more than some gaps in the table: UNet-e is
#   0.007 below UNet-L3 on Shapes, UNet++ DS 0.006 below UNet++. With two seeds the spread can be
#   large too: ±0.138 for UNet++ DS and ±0.103 for the valid U-Net on ISBI. On Cells the
#   seeds agree closely, but every model except FCN-8s lies within 0.042 (0.814–0.856): too small
#   to choose a model by. Exercise 2 adds a seed and watches the means move.
# * **Which model is best when fully trained.** 120 steps of 4 images is 480 images, seven and a
#   half passes over 64 training images. The papers train to convergence. With the same number of
#   steps, a model with 567,120 parameters has had far less training per parameter than one with
#   6,498. Whether UNet-L4's lower Shapes score (0.638 against L3's 0.731) is such a budget effect,
#   we did not test.
# * **Speed in general.** The times are for one 48×48 image on this CPU, one thread. Chapter 6b
#   times the pruned networks at 256×256, and on a GPU the balance changes again (Performance
#   appendix).
# * **The papers' networks.** These are narrow variants (8 filters, not 64 or 32), all with
#   BatchNorm. The paper configurations are in chapters 5 and 6.
#
# ### With more compute
#
# `FULL_RUN = True` gives every model 2000 steps of 8 images of 128×128, 32 filters and 3 seeds:
# about 240 times as many training pixels per run. It is meant for a Colab GPU, and we have not run
# it: this book was built on a CPU. When you run it, look for three things. Do UNet-L4 and UNet++
# catch up once the budget stops being the bottleneck? Does the lead of UNet+ on Shapes survive?
# Does the pruned L3 still match the full UNet++?
#
# ### So which one should I use?
#
# On this evidence, start with a U-Net of depth 3 (same padding, BatchNorm). It was on the Pareto
# front of two of the three data sets and cheap to run. If 2.4 to 2.9 times its inference time is
# affordable, UNet-e was the step up: never more than 0.007 below it here, and up to 0.030 above.
# Avoid FCN-8s for thin structures. And if you train a deeply supervised UNet++, prune it to L3
# for inference. Then re-run this chapter on your own data (`segedu.data.ImageFolder`) with your
# own budget: that table answers the question better than this one.
#
# ## Exercises
#
# 1. **A budget in seconds.** Re-run a few models on `Cells` with `compare(..., steps=None,
#    seconds=2)`: every model gets two seconds of training. Which models take more steps than
#    others, and does the ranking change?
# 2. **More seeds.** Add a third seed for `UNet-L3` and `UNet++` on Shapes. Which of their
#    differences in the table survive it?
# 3. **Your own model.** Write a `ModelSpec` for a U-Net with summation skips (chapter 5b:
#    `skip="sum"`) and add it to the table.
# 4. **Four classes.** Swap `Binary(Shapes(...))` for the four-class `Shapes(...)`. How does it go
#    with this budget, and what does it take to fix it?

# %% tags=["hide-cell", "solution"]
# Solution 1: the same two seconds give the cheap models many more steps (train_steps).
subset = {n: MODELS[n] for n in ("UNet-L1", "UNet-L3", "UNet++")}
timed = compare(subset, {"Cells": DATA["Cells"]}, seeds=(0,), steps=None, seconds=2, batch_size=BATCH, lr=LR,
                device=DEVICE, progress=False)
for r in timed:
    print(f"{r['model']:<10} {r['train_steps']:>4} steps in {r['train_seconds']:.1f} s  mean IoU {r['mean_iou']:.3f}")

# %% tags=["hide-cell", "solution"]
# Solution 2: the dots of the two seeds already in the table, plus one more seed, for two models.
extra = compare({n: MODELS[n] for n in ("UNet-L3", "UNet++")}, {"Shapes": DATA["Shapes"]}, seeds=(2,), steps=STEPS,
                batch_size=BATCH, lr=LR, device=DEVICE, progress=False)
both = [r for r in rows if r["dataset"] == "Shapes" and r["model"] in ("UNet-L3", "UNet++")] + extra
print(format_table(summarize(both), metrics=("mean_iou", "dice")))

# %% tags=["hide-cell", "solution"]
# Solution 3: a ModelSpec is all it takes; the runner does the rest.
sum_skips = ModelSpec(lambda c, k: UNet(c, k, depth=3, base_channels=W, padding="same", norm=NORM, skip="sum"))
print(format_table(summarize(compare({"UNet-L3 sum": sum_skips}, {"Cells": DATA["Cells"]}, seeds=(0,), steps=STEPS,
                                     batch_size=BATCH, lr=LR, device=DEVICE, progress=False)), metrics=("mean_iou",)))

# %% tags=["hide-cell", "solution"]
# Solution 4 (one model, to keep it short): with four classes the same budget is not enough.
# More steps (FULL_RUN) or a higher learning rate for the first steps are the usual fixes.
four = {"Shapes, 4 classes": (Shapes(N_TRAIN, size=SIZE, seed=40), Shapes(N_TEST, size=SIZE, seed=41))}
r4 = compare({"UNet-L3": MODELS["UNet-L3"]}, four, seeds=(0,), steps=STEPS, batch_size=BATCH, lr=LR, device=DEVICE,
             progress=False)[0]
print(f"UNet-L3 on four-class Shapes: mean IoU {r4['mean_iou']:.3f}, per class",
      [None if v is None else round(v, 3) for v in r4["iou_per_class"]])
