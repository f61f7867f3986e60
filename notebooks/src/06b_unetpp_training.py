# %% [markdown]
# # UNet++ in training: deep supervision, pruning, progressive refinement
#
# Chapter {doc}`06_unetpp` built the UNet++ family on one grid of nodes $X^{i,j}$ and found that
# the best U-Net depth depends on the data. Here we train the family side by side — U-Net, UNet-e,
# UNet+, UNet++ with and without [deep supervision](../book/glossary.md#deep-supervision) — under
# the same budget, and then use the property that makes UNet++ {cite}`zhou2018unetpp,zhou2019unetpp`
# practical: a deeply supervised UNet++ can be [pruned](../book/glossary.md#pruning) at inference
# time to any depth, with the weights it already has. Every claim of the paper that we test is
# measured below, and the text reports what the measurement showed.
#
# [Open this chapter in Colab](https://colab.research.google.com/github/segedu/segedu/blob/main/notebooks/06b_unetpp_training.ipynb)

# %%
# Setup: install segedu only if it is missing (e.g. on Colab); a local checkout already has it.
try:
    import segedu
except ImportError:
    %pip install -q "segedu @ git+https://github.com/segedu/segedu"

# %%
import inspect
import statistics

import matplotlib.pyplot as plt
import numpy as np
import torch

from segedu import metrics, viz
from segedu.data import Binary, Shapes
from segedu.experiments import count_parameters
from segedu.losses import BCEDiceLoss, DeepSupervisionLoss
from segedu.models import UNet, UNetE, UNetPlus, UNetPlusPlus
from segedu.train import evaluate, fit, resolve_device, seed_everything
from segedu.widgets import inference_ms, pruning_explorer

# %%
# Configuration. The defaults run this chapter in about three minutes on 2 CPU cores: 8 filters in
# the first row (the paper: 32), 48x48 images, 16 epochs of 12 steps. On a GPU: WIDTH = 32,
# SIZE = 96, N_TRAIN = 1000, EPOCHS = 50.
SEEDS = (0, 1, 2)   # every claim is decided on the mean and spread over these seeds
SIZE = 48           # image side (divisible by 2**4)
WIDTH = 8           # filters of row 0
N_TRAIN, N_TEST = 96, 24
EPOCHS, BATCH, LR = 16, 8, 2e-3
DEVICE = resolve_device("auto")
print("device:", DEVICE)

# %% [markdown]
# ## The task
#
# Shapes against a textured background, as a binary task (`Binary(Shapes)`): a shape's colour is
# drawn from the same distribution as the background's, so only its outline gives it away. In the
# previous chapter this was the data set on which depth mattered. As there, every network uses
# batch normalization (`norm="batch"`, a modern addition to the paper's blocks) so that it learns
# within a CPU budget.

# %%
# NBVAL_CHECK_OUTPUT
train = Binary(Shapes(N_TRAIN, size=SIZE, seed=20))
test = Binary(Shapes(N_TEST, size=SIZE, seed=21))
xs = torch.stack([test[i][0] for i in range(len(test))])
ys = torch.stack([test[i][1] for i in range(len(test))])
print("test images", tuple(xs.shape), "masks", tuple(ys.shape), f"foreground {ys.float().mean().item():.1%}")

# %% [markdown]
# ## Deep supervision
#
# With `deep_supervision=True` a 1×1 head sits on every node of the top row, $X^{0,1}, \dots,
# X^{0,4}$, and the forward pass returns all four outputs. Each is the output of a complete U-Net
# of depth 1..4 inside the grid. The loss is the average of the hybrid loss over the heads — the
# authors weight the heads equally:

# %%
print(inspect.getsource(DeepSupervisionLoss.forward))

# %%
# NBVAL_CHECK_OUTPUT
m = UNetPlusPlus(3, 1, base_channels=2, deep_supervision=True)
print([tuple(o.shape) for o in m(xs[:2])])

# %% [markdown]
# ## U-Net vs UNet-e vs UNet+ vs UNet++
#
# Five models, all of depth 4, the same widths, data, optimizer and number of steps; three seeds
# each. UNet-e is trained like the paper's, with a loss on each member's head (deep supervision),
# and predicts with the average of its members; UNet++ is trained both ways. After every epoch
# `fit` measures the IoU on the held-out images (for a deeply supervised model: of its last head),
# which gives the learning curves.

# %%
hybrid, deep = BCEDiceLoss(), DeepSupervisionLoss(BCEDiceLoss())
arch = {
    "U-Net": (lambda: UNet(3, 1, depth=4, base_channels=WIDTH, padding="same", norm="batch"), hybrid),
    "UNet-e": (lambda: UNetE(3, 1, base_channels=WIDTH, norm="batch", deep_supervision=True), deep),
    "UNet+": (lambda: UNetPlus(3, 1, base_channels=WIDTH, norm="batch"), hybrid),
    "UNet++": (lambda: UNetPlusPlus(3, 1, base_channels=WIDTH, norm="batch"), hybrid),
    "UNet++ DS": (lambda: UNetPlusPlus(3, 1, base_channels=WIDTH, norm="batch", deep_supervision=True), deep),
}
histories, trained = {}, {}
for name, (build, loss) in arch.items():
    for seed in SEEDS:
        seed_everything(seed)  # the same initial weights for a given seed
        model = build()
        histories[name, seed] = fit(model, train, test, loss=loss, epochs=EPOCHS, batch_size=BATCH, lr=LR,
                                    device=DEVICE, seed=seed, progress=False)
        trained[name, seed] = model.cpu().eval()


# %%
# NBVAL_IGNORE_OUTPUT
def final_scores(name, model):
    if name == "UNet-e":  # the ensemble: the mean of the members' outputs
        model.deep_supervision = False
    with torch.no_grad():
        out = model(xs)
    out = out[-1] if isinstance(out, list) else out
    if name == "UNet-e":
        model.deep_supervision = True
    return metrics.iou(out, ys, 2)[1].item(), metrics.dice(out, ys, 2)[1].item()


def mean_std(values):
    return statistics.fmean(values), statistics.stdev(values)


table = {}
print(f"{'model':<10} {'parameters':>10} {'foreground IoU':>17} {'foreground Dice':>17}  {'epochs to IoU 0.7':>17}")
for name in arch:
    scores = [final_scores(name, trained[name, s]) for s in SEEDS]
    iou_m, iou_s = mean_std([s[0] for s in scores])
    dice_m, dice_s = mean_std([s[1] for s in scores])
    reach = [next((e["epoch"] for e in histories[name, s].epochs if e["val_mean_iou"] >= 0.7), None) for s in SEEDS]
    table[name] = dict(iou=iou_m, iou_std=iou_s, dice=dice_m, reach=reach)
    params = count_parameters(trained[name, SEEDS[0]])
    print(f"{name:<10} {params:>10,} {iou_m:>9.3f} ± {iou_s:.3f} {dice_m:>9.3f} ± {dice_s:.3f}  {str(reach):>17}")
best = max(table, key=lambda n: table[n]["iou"])
print(f"best mean IoU: {best}; its lead over U-Net: {table[best]['iou'] - table['U-Net']['iou']:+.3f} "
      f"(spreads {table[best]['iou_std']:.3f} and {table['U-Net']['iou_std']:.3f})")

# %% [markdown]
# **What the measurement shows.** UNet++ with deep supervision had the highest mean (0.695 ± 0.013)
# and the smallest spread, but its lead over the plain U-Net (0.677 ± 0.043) is 0.018, less than
# U-Net's spread. The other nested models did not beat U-Net on average: UNet+ 0.663 ± 0.018,
# UNet-e 0.630 ± 0.083, UNet++ without deep supervision 0.624 ± 0.061. So the paper's ordering
# UNet-e < UNet+ < UNet++ is *not* reproduced at this scale, and neither is a general advantage of
# nesting. What does show is deep supervision on UNet++: it lifted the mean from 0.624 to 0.695 and
# shrank the spread from 0.061 to 0.013. UNet-e, trained with a loss on every member too, did not
# profit the same way (its spread is the largest). Three seeds and 192 optimizer steps on 48×48
# images are far from the paper's setting; read this as "deep supervision helped UNet++ here", not
# as a ranking.
#
# The learning curves (mean over the seeds, the band spans the lowest and highest seed). The
# y-axis is the *mean* IoU over background and foreground that `fit` records:

# %% alt="Validation mean IoU per epoch for U-Net, UNet-e, UNet+, UNet++ and UNet++ with deep supervision, mean of three seeds with a band from the lowest to the highest seed: all start between 0.38 and 0.45 and reach about 0.8 by epoch 16; U-Net has the widest band over the first ten epochs."
# NBVAL_IGNORE_OUTPUT
fig, ax = plt.subplots(figsize=(6.5, 3.6))
for name in arch:
    curves = np.array([histories[name, s]["val_mean_iou"] for s in SEEDS])
    epochs = np.arange(1, curves.shape[1] + 1)
    ax.plot(epochs, curves.mean(0), label=name)
    ax.fill_between(epochs, curves.min(0), curves.max(0), alpha=0.15)
ax.set_xlabel(f"epoch ({N_TRAIN // BATCH} steps each)"), ax.set_ylabel("validation mean IoU")
ax.set_title(f"Binary shapes, {len(SEEDS)} seeds", fontsize=10), ax.grid(alpha=0.3), ax.legend(fontsize=8)
fig.tight_layout()

# %% [markdown]
# All five curves start near the mean IoU of predicting "background" everywhere (about 0.44; U-Net
# a little below) and climb to about 0.8. The nested models rise a little earlier than U-Net
# (epochs to reach 0.7: U-Net 7, 11 and 7 for the three seeds; UNet++ DS 6, 7 and 8), and U-Net's
# band is the widest over the first ten epochs. The curves are still rising at epoch 16: none of the models has converged,
# which is one more reason not to over-read the final numbers.
#
# ## Pruning
#
# With deep supervision every head $X^{0,j}$ is trained to segment on its own. Node $X^{i,j}$ reads
# only nodes with $i' + j' \le i + j$, so head $X^{0,j}$ depends only on the triangle of nodes with
# $i + j \le j$: everything to its right can be removed *after* training without changing its output.
# `pruned(level)` returns that sub-network, UNet++ L1..L4, sharing the trained weights:

# %%
print(inspect.getsource(type(trained["UNet++ DS", 0]).pruned))

# %%
# NBVAL_CHECK_OUTPUT
ds_model = trained["UNet++ DS", SEEDS[0]]
with torch.no_grad():
    heads = ds_model(xs)
    for level in range(1, 5):
        sub = ds_model.pruned(level)
        same = torch.equal(sub(xs), heads[level - 1])
        shared = sub.nodes["x_0_0"] is ds_model.nodes["x_0_0"]
        print(f"UNet++ L{level}: output equals head X^(0,{level}) exactly: {same}; weights shared: {shared}; "
              f"{len(sub.nodes)} nodes, {count_parameters(sub):,} parameters")

# %% [markdown]
# The trade-off: foreground IoU of L1..L4 on the held-out images (all three deeply supervised
# models), and the inference time of each on a 256×256 image (median of 5 timed runs on this
# machine's CPU, batch of 4).

# %% alt="Foreground IoU against inference time per 256 by 256 image for the pruned networks L1 to L4: L1 is fastest but worst (IoU 0.46), L2 reaches 0.67, L3 and L4 about 0.69 at increasing cost."
# NBVAL_IGNORE_OUTPUT
prune = []
for level in range(1, 5):
    ious = []
    for s in SEEDS:
        with torch.no_grad():
            ious.append(metrics.iou(trained["UNet++ DS", s].pruned(level)(xs), ys, 2)[1].item())
    sub = ds_model.pruned(level)
    prune.append(dict(level=level, params=count_parameters(sub), ms=inference_ms(sub),
                      iou=statistics.fmean(ious), iou_std=statistics.stdev(ious)))
for r in prune:
    print(f"L{r['level']}: {r['params']:>8,} parameters  {r['ms']:6.1f} ms per 256x256 image  "
          f"foreground IoU {r['iou']:.3f} ± {r['iou_std']:.3f}")
l3, l4 = prune[2], prune[3]
print(f"L3 vs L4: {1 - l3['ms'] / l4['ms']:.0%} less inference time, {1 - l3['params'] / l4['params']:.0%} fewer "
      f"parameters, IoU {l3['iou'] - l4['iou']:+.3f}")
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.errorbar([r["ms"] for r in prune], [r["iou"] for r in prune], yerr=[r["iou_std"] for r in prune], fmt="o-", capsize=4)
for r in prune:
    ax.annotate(f"L{r['level']}", (r["ms"], r["iou"]), textcoords="offset points", xytext=(6, -12))
ax.set_xlabel("ms per 256×256 image (CPU)"), ax.set_ylabel(f"foreground IoU (± std, {len(SEEDS)} seeds)")
ax.set_title("pruning a deeply supervised UNet++", fontsize=10), ax.grid(alpha=0.3)
fig.tight_layout()

# %% [markdown]
# **What the measurement shows.** Pruning is exact — each pruned network reproduces its head bit
# for bit — and on this task nearly free: L3 (10 nodes, 76% fewer parameters than L4) needed 30%
# less inference time at 256×256 with the same foreground IoU (0.694 against 0.695), and L2 lost
# little (0.666) in 40% of L4's time. Only L1 lost clearly (0.460). The paper reports L3 saving
# about a third of the inference time for a small IoU loss; our saving is about the same size, our
# loss 0.001. How much time pruning saves depends on the machine and can depend on the image size
# (exercise 4 times two sizes). These timings were taken on a shared machine, so compare them with
# each other, not with other runs.
#
# ## Progressive refinement: the heads side by side
#
# The four heads of one deeply supervised UNet++ on the same test images; each title gives that
# head's foreground IoU on that image.

# %% alt="Three test images, their true masks and the predictions of the four heads X(0,1) to X(0,4) of one deeply supervised UNet++, with each head's IoU: the first head gives noisy blobs, the later heads clean shapes."
# NBVAL_IGNORE_OUTPUT
fig, axes = plt.subplots(3, 6, figsize=(11, 6))
for r in range(3):
    axes[r, 0].imshow(xs[r].permute(1, 2, 0)), axes[r, 0].set_title("image", fontsize=8)
    axes[r, 1].imshow(ys[r], cmap="gray", interpolation="nearest"), axes[r, 1].set_title("truth", fontsize=8)
    for j in range(4):
        iou = metrics.iou(heads[j][r : r + 1], ys[r : r + 1], 2)[1].item()
        axes[r, 2 + j].imshow(metrics.as_labels(heads[j][r : r + 1])[0], cmap="gray", interpolation="nearest")
        axes[r, 2 + j].set_title(f"X(0,{j + 1}): IoU {iou:.2f}", fontsize=8)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()

# %% [markdown]
# Progressive refinement is visible, up to a point: the first head, $X^{0,1}$ (a network of depth
# one), produces noisy blobs; from $X^{0,2}$ on the shapes are clean, and $X^{0,3}$ and $X^{0,4}$
# change little — the same story as the pruning table. No head finds the faint triangle in the
# first image: where the deeper heads fail, they fail together.
#
# ## Interactive: pruning
#
# Choose the level L; the demo shows the pruned network's grid, its output on a test image, its IoU
# on the test set and its measured inference time (static in the book: every level was computed when
# the notebook ran).

# %%
# NBVAL_IGNORE_OUTPUT
pruning_explorer(ds_model, xs, ys, sample=0, times_ms={r["level"]: r["ms"] for r in prune})

# %% [markdown]
# ## Summary
#
# * A deeply supervised UNet++ holds a U-Net of every depth, with one head each; its forward pass
#   returns them all, and the loss averages them with equal weights.
# * Measured (three seeds, CPU scale): UNet++ with deep supervision had the best mean IoU (0.695) and
#   the smallest spread, 0.018 above U-Net, less than U-Net's spread; the other nested models did not
#   beat U-Net on average, and the paper's ordering UNet-e < UNet+ < UNet++ was not reproduced. Deep
#   supervision raised UNet++ from 0.624 to 0.695.
# * `pruned(level)` returns UNet++ L1..L4 with the trained weights, bit-exact to the heads; L3 cost
#   30% less inference time than L4 at 256×256 for 0.001 less IoU here (the paper: about a third
#   less time, a small loss).
#
# The last chapter, {doc}`07_comparison`, puts these networks next to the sliding window, FCN-8s
# and the valid-padding U-Net, under one budget, on synthetic and real EM data.
#
# ## Exercises
#
# 1. **Unequal head weights.** Train a deeply supervised UNet++ with
#    `DeepSupervisionLoss(BCEDiceLoss(), weights=[0.1, 0.2, 0.3, 0.4])` (one seed) and compare the
#    IoU of each head with the equal-weight model above. Which heads gain, which lose?
# 2. **Prune UNet-e.** UNet-e has a head per member, so it can be pruned too. Which sub-network is
#    `UNetE.pruned(2)`, and how does its parameter count compare with UNet++ L2?
# 3. **Pruning without deep supervision.** Why does `UNetPlusPlus(deep_supervision=False).pruned(3)`
#    raise an error? What would go wrong if it returned the sub-network anyway?
# 4. **Where does the time go?** Time L1..L4 at 128×128 and 512×512. Does the ratio L3/L4 depend on
#    the image size? Why might it?

# %% tags=["hide-cell", "solution"]
# Solution 1 (one seed, same budget as above).
seed_everything(0)
weighted = UNetPlusPlus(3, 1, base_channels=WIDTH, norm="batch", deep_supervision=True)
fit(weighted, train, loss=DeepSupervisionLoss(BCEDiceLoss(), weights=[0.1, 0.2, 0.3, 0.4]), epochs=EPOCHS,
    batch_size=BATCH, lr=LR, device=DEVICE, seed=0, progress=False)
with torch.no_grad():
    w_heads = weighted.cpu().eval()(xs)
for j in range(4):
    print(f"head X(0,{j + 1}): equal weights {metrics.iou(heads[j], ys, 2)[1].item():.3f}, "
          f"weighted {metrics.iou(w_heads[j], ys, 2)[1].item():.3f}")

# %% tags=["hide-cell", "solution"]
# Solution 2: UNetE.pruned(2) is the U-Net of depth 2 inside UNet-e: encoder X^{0..2,0} and decoder
# X^{1,1}, X^{0,2}. In UNet-e, X^{0,2} reads only the encoder node of its row, so X^{0,1} (the depth-1
# member) is not needed and pruning drops it; UNet++ L2 keeps X^{0,1}, which its X^{0,2} reads.
e = trained["UNet-e", 0]
print(sorted(e.pruned(2).nodes), count_parameters(e.pruned(2)),
      count_parameters(ds_model.pruned(2)))

# %% tags=["hide-cell", "solution"]
# Solution 3: without deep supervision only X^{0,4} has a head, and X^{0,1..3} were never trained to
# segment: a head on them would be untrained. The model refuses instead of returning nonsense.
try:
    UNetPlusPlus(base_channels=2).pruned(3)
except ValueError as err:
    print("ValueError:", err)

# %% tags=["hide-cell", "solution"]
# Solution 4: time L1..L4 at two sizes and compare L3/L4. Fixed costs per layer weigh more on small
# images, so the ratio can move with the size; whether it does on your machine, the output says.
for size in (128, 512):
    t = [inference_ms(ds_model.pruned(level), image_size=size, batch=1, repeats=3) for level in range(1, 5)]
    print(size, [f"{v:.1f} ms" for v in t], f"L3/L4 = {t[2] / t[3]:.2f}")
