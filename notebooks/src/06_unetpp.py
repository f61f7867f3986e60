# %% [markdown]
# # UNet++: nested skip pathways and the hybrid loss
#
# U-Net joins encoder and decoder at each level with one long skip connection. UNet++
# {cite}`zhou2018unetpp,zhou2019unetpp` asks two questions about it: what is the right *depth*
# for a task, and is a plain skip the best way to join features that differ so much in meaning?
# Its answer is a grid of nodes $X^{i,j}$ — row $i$ the down-sampling level, column $j$ the
# convolution block along the skip pathway — that contains U-Nets of every depth at once. This
# chapter builds the whole family (UNet-L1..L4, UNet-e, UNet+, UNet++) from the same blocks,
# reproduces the paper's parameter counts, implements its loss (binary cross entropy + soft
# [Dice](../book/glossary.md#dice-coefficient)) and measures two of its claims at CPU scale: that
# the hybrid loss helps a small foreground, and that the best depth depends on the data set. The
# next chapter, {doc}`06b_unetpp_training`, trains the family side by side, with
# [deep supervision](../book/glossary.md#deep-supervision) and [pruning](../book/glossary.md#pruning).
#
# [Open this chapter in Colab](https://colab.research.google.com/github/segedu/segedu/blob/main/notebooks/06_unetpp.ipynb)

# %%
# Setup: install segedu only if it is missing (e.g. on Colab); a local checkout already has it.
try:
    import segedu
except ImportError:
    %pip install -q "segedu @ git+https://github.com/segedu/segedu"

# %%
import inspect

import matplotlib.pyplot as plt
import torch

from segedu import viz
from segedu.data import Binary, Cells, Shapes
from segedu.experiments import ModelSpec, compare, count_parameters, format_table, summarize
from segedu.losses import BCEDiceLoss, soft_dice_loss
from segedu.models import UNet, UNetE, UNetPlus, UNetPlusPlus
from segedu.train import resolve_device
from segedu.widgets import family_explorer

# %%
# Configuration. The defaults run this chapter in about three minutes on 2 CPU cores: narrow
# networks (8 filters in the first row; the paper: 32), 48x48 images and a fixed budget of a few
# hundred optimizer steps per run. On a GPU: WIDTH = 32, SIZE = 96, STEPS x 10, N_TRAIN = 1000.
SEEDS = (0, 1, 2)   # every claim is decided on the mean and spread over these seeds
SIZE = 48           # image side (divisible by 2**4)
WIDTH = 8           # filters of row 0
N_TRAIN, N_TEST = 96, 24
LOSS_STEPS = 300    # optimizer steps per run, loss experiment
DEPTH_STEPS = 150   # optimizer steps per run, depth experiment
LR, BATCH = 2e-3, 8
DEVICE = resolve_device("auto")
print("device:", DEVICE)

# %% [markdown]
# ## One grid, four networks
#
# Every node $X^{i,j}$ with $j \ge 1$ is two 3×3 convolutions applied to a concatenation: the
# up-sampled node below-left, $\mathrm{up}(X^{i+1,j-1})$ (a 2×2 transposed convolution), plus some
# nodes of its own row. Which same-row nodes is the only difference between the family members:
#
# * **UNet-L** (L = 1..4): the plain U-Net of depth L — one decoder node per row on the way up.
#   It is chapter 5's `UNet(depth=L, padding="same")`.
# * **UNet-e**: U-Nets of depth 1..4 sharing one encoder; $X^{i,j}$ reads only $X^{i,0}$.
#   Each member keeps its own head; the ensemble averages them.
# * **UNet+**: the same nodes, but $X^{i,j}$ reads its left neighbour $X^{i,j-1}$.
# * **UNet++**: $X^{i,j}$ reads *all* of $X^{i,0}, \dots, X^{i,j-1}$ — dense nested skips:
#
# $$X^{i,j} = \mathcal{H}\Big(\big[X^{i,0}, \dots, X^{i,j-1}, \mathcal{U}(X^{i+1,j-1})\big]\Big),
# \qquad X^{i,0} = \mathcal{H}\big(\mathcal{D}(X^{i-1,0})\big),$$
#
# with $\mathcal{H}$ the double convolution, $\mathcal{U}$ up-sampling, $\mathcal{D}$ max pooling
# and $[\cdot]$ concatenation. The figures below are drawn from the model objects (their `nodes`
# ModuleDict, keyed `x_i_j` like the paper), not pasted: blue = encoder, orange = decoder, dashed
# grey = skip, green = up-sampling, red = down-sampling; a green ring marks a node with a 1×1
# output head.

# %% alt="Eight node grids drawn from the models: UNet-L1 to L4 as V shapes of increasing depth, then UNet-e, UNet+, UNet++ and UNet++ with deep supervision as triangles of nodes X(i,j), with downsampling arrows in red, upsampling arrows in green, dashed skip connections and circled output heads."
family = {f"UNet-L{L}": UNet(depth=L, padding="same", base_channels=2) for L in (1, 2, 3, 4)}
family.update({
    "UNet-e": UNetE(base_channels=2),
    "UNet+": UNetPlus(base_channels=2),
    "UNet++": UNetPlusPlus(base_channels=2),
    "UNet++ (deep supervision)": UNetPlusPlus(base_channels=2, deep_supervision=True),
})
fig, axes = plt.subplots(2, 4, figsize=(13, 6))
for ax, (name, model) in zip(axes.flat, family.items()):
    viz.draw_nested_grid(model, ax=ax, title=name)
fig.tight_layout()

# %% [markdown]
# The code is the grid: one loop over rows for the encoder, one over columns and rows for the
# decoder, and `same_row(j)` names the same-row inputs of a node — the only line in which the three
# nested models differ.

# %%
print(inspect.getsource(UNetPlusPlus._grid))

# %%
# NBVAL_CHECK_OUTPUT
for cls in (UNetE, UNetPlus, UNetPlusPlus):
    print(f"{cls.__name__:<13} X^(i,3) reads X^(i,k) for k in {cls.same_row(3)} and up(X^(i+1,2))")
print("UNet++ nodes:", list(UNetPlusPlus(base_channels=2).nodes))

# %% [markdown]
# Every network accepts only sizes divisible by $2^{\text{depth}}$ (four 2×2 poolings must divide
# evenly, or the up-sampled map would not match its skip); anything else is refused with the
# nearest sizes that work:

# %%
# NBVAL_CHECK_OUTPUT
try:
    UNetPlusPlus(base_channels=2)(torch.rand(1, 1, 50, 50))
except ValueError as e:
    print("ValueError:", e)

# %% [markdown]
# ### Parameter counts in the paper's configuration
#
# Filters 32, 64, 128, 256, 512, two same-padded 3×3 convolutions per node, 2×2 transposed
# convolutions for up-sampling, a 1×1 head with one output (sigmoid) for a binary task, one input
# channel. The UNet++ paper's table reports 7.76M parameters for U-Net and 9.04M for UNet++:

# %%
# NBVAL_CHECK_OUTPUT
paper_config = dict(in_channels=1, num_classes=1, depth=4, base_channels=32)
for name, model in {
    "U-Net (UNet-L4)": UNet(padding="same", **paper_config),
    "UNet-e": UNetE(**paper_config),
    "UNet+": UNetPlus(**paper_config),
    "UNet++": UNetPlusPlus(**paper_config),
    "UNet++ with deep supervision": UNetPlusPlus(deep_supervision=True, **paper_config),
}.items():
    print(f"{name:<30}{count_parameters(model) / 1e6:6.2f}M  ({count_parameters(model):,})")

# %% [markdown]
# U-Net 7.76M and UNet++ 9.04M reproduce the paper's numbers exactly — a test in
# `tests/test_unetpp.py` checks them. Deep supervision adds three 1×1 heads (99 parameters).
# UNet-e and UNet+ come out at 8.73M: they have the same ten decoder nodes as UNet++, but each
# node reads one same-row map instead of all of them, so their first convolutions are narrower.
# (The paper's table lists U-Net, a "wide U-Net" with more filters to match UNet++'s size, and
# UNet++; it gives no count for UNet-e and UNet+ that we could check, so ours stand unchecked.)
#
# ## The loss: BCE + soft Dice
#
# Binary cross entropy (BCE) averages over pixels, so on a small object the many easy background
# pixels dominate the gradient. The Dice coefficient $2|A \cap B| / (|A| + |B|)$ ignores true
# negatives: it does not care how large the background is. Its *soft* version uses the predicted
# probabilities $p$ instead of a thresholded mask, so that it can be differentiated:

# %%
print(inspect.getsource(soft_dice_loss))

# %% [markdown]
# The smoothing term $s = 1$ matters when a class is absent: for an empty target and an
# all-background prediction, Dice is $\frac{0 + 1}{\approx 0 + 0 + 1} \approx 1$ (loss 0). Without it
# the same perfect prediction scores the worst possible loss, 1 (exercise 4 shows worse):

# %%
# NBVAL_CHECK_OUTPUT
empty = torch.zeros(1, 8, 8, dtype=torch.long)
confident_background = torch.full((1, 1, 8, 8), -20.0)
print("empty vs empty, s = 1:", round(soft_dice_loss(confident_background, empty).item(), 6))
print("empty vs empty, s = 0:", soft_dice_loss(confident_background, empty, smooth=0.0).item())

# %% [markdown]
# The UNet++ paper (its eq. 1) combines the two over the $N$ images of a batch,
# $\mathcal{L} = -\frac1N \sum_b \big(\tfrac12 Y_b \log \hat Y_b + \frac{2 Y_b \hat Y_b}{Y_b + \hat Y_b}\big)$.
# `BCEDiceLoss` implements it as $\tfrac12\,\mathrm{BCE} + (1 - \text{soft Dice})$: the first term is
# the usual mean binary cross entropy over all pixels, the second the per-image soft Dice averaged
# over the batch; "$1 -$" only shifts the loss by a constant (same gradients) so that a perfect
# prediction scores 0.

# %%
print(inspect.getsource(BCEDiceLoss.forward))

# %% [markdown]
# ### Experiment: a small foreground
#
# One small shape per 48×48 image, labelled foreground vs background (`Binary(Shapes(...,
# max_shapes=1))`). We train the same UNet++ (depth 2, to keep the budget small) with BCE alone and
# with BCE + Dice — same seeds, same steps — and measure Dice and IoU of the *foreground* on held-out
# images.
#
# All training runs of this chapter use batch normalization after each convolution
# (`norm="batch"`, {cite}`ioffe2015batchnorm`) — a modern addition, not in the UNet++ paper. The
# reason is a measurement, shown next: without it these narrow networks learn far less within a
# CPU budget.

# %%
# NBVAL_CHECK_OUTPUT
small_train = Binary(Shapes(N_TRAIN, size=SIZE, seed=10, max_shapes=1))
small_test = Binary(Shapes(N_TEST, size=SIZE, seed=11, max_shapes=1))
fg = torch.stack([small_train[i][1] for i in range(len(small_train))]).float().mean().item()
print(f"foreground fraction: {fg:.1%}")


# %%
def small_unetpp(norm):
    return lambda c, k: UNetPlusPlus(c, 1, depth=2, base_channels=WIDTH, norm=norm)


bn_rows = compare({"no normalization": ModelSpec(small_unetpp(None), fit_kwargs={"loss": BCEDiceLoss()}),
                   "batch norm": ModelSpec(small_unetpp("batch"), fit_kwargs={"loss": BCEDiceLoss()})},
                  {"small shapes": (small_train, small_test)}, seeds=(0,), steps=LOSS_STEPS, batch_size=BATCH,
                  lr=LR, device=DEVICE, progress=False)
for r in bn_rows:
    print(f"{r['model']:<17} foreground IoU {r['iou_per_class'][1]:.3f}")

# %%
# BCE alone is fit's default loss for a one-channel output (segedu.train.default_loss)
loss_rows = compare({"BCE": ModelSpec(small_unetpp("batch")),
                     "BCE + Dice": ModelSpec(small_unetpp("batch"), fit_kwargs={"loss": BCEDiceLoss()})},
                    {"small shapes": (small_train, small_test)}, seeds=SEEDS, steps=LOSS_STEPS, batch_size=BATCH,
                    lr=LR, device=DEVICE, progress=False)

# %%
# NBVAL_IGNORE_OUTPUT
loss_summary = summarize(loss_rows, metrics=("dice", "mean_iou", "pixel_accuracy"))
print(format_table(loss_summary, metrics=("dice", "mean_iou", "pixel_accuracy")))
for r in loss_rows:
    print(f"{r['model']:<12} seed {r['seed']}: foreground IoU {r['iou_per_class'][1]:.3f}, Dice {r['dice_per_class'][1]:.3f}")
a, b = loss_summary
print(f"Dice gain of BCE + Dice: {b['dice'] - a['dice']:+.3f}; larger than both spreads: "
      f"{b['dice'] - a['dice'] > max(a['dice_std'], b['dice_std'])}")

# %% [markdown]
# **What the measurement shows.** Without batch normalization the network reached a foreground IoU
# of only 0.245 within the budget (one seed), with it 0.672 — hence `norm="batch"` everywhere below.
# With the hybrid loss the mean foreground Dice was higher by +0.125 (0.745 against 0.621), and
# BCE + Dice won on every seed (0.804 against 0.599, 0.661 against 0.542, 0.771 against 0.721). The
# gain is larger than the spread between seeds (0.092 and 0.075), so at this scale the experiment
# supports the paper's hybrid loss — on three seeds, and chapter {doc}`07_comparison` shows how
# much a change of rounding alone can move a single run. Pixel accuracy (0.963 against 0.973)
# barely moves — on a 5% foreground it is the wrong number to look at.
#
# ## Which depth? UNet-L1..L4 on two data sets
#
# The paper's first motivation: the best depth of a U-Net depends on the data set, and one cannot
# know it in advance. We train UNet-L1..L4 (same widths, same budget, BCE + Dice) on two binary
# tasks: `Binary(Shapes)` (shape vs textured background: a shape's colour is drawn from the same
# distribution as the background's, so the outline — a large context — decides) and `Cells`
# (cell vs the thin dark gaps between cells: a local decision).

# %%
depth_data = {
    "Shapes": (Binary(Shapes(N_TRAIN, size=SIZE, seed=20)), Binary(Shapes(N_TEST, size=SIZE, seed=21))),
    "Cells": (Cells(N_TRAIN, size=SIZE, seed=22, cells=8), Cells(N_TEST, size=SIZE, seed=23, cells=8)),
}
depth_models = {f"UNet-L{L}": ModelSpec(lambda c, k, L=L: UNet(c, 1, depth=L, base_channels=WIDTH, padding="same",
                                                               norm="batch"), fit_kwargs={"loss": BCEDiceLoss()})
                for L in (1, 2, 3, 4)}
depth_rows = compare(depth_models, depth_data, seeds=SEEDS, steps=DEPTH_STEPS, batch_size=BATCH, lr=LR,
                     device=DEVICE, progress=False)

# %% alt="Mean IoU with standard deviation over three seeds for UNet-L1 to L4. On Shapes it rises from 0.65 for L1 to 0.77 for L3 and 0.75 for L4; on Cells all depths lie between 0.968 and 0.970."
# NBVAL_IGNORE_OUTPUT
depth_summary = summarize(depth_rows, metrics=("mean_iou", "dice", "train_seconds"))
print(format_table(depth_summary, metrics=("mean_iou", "dice", "train_seconds")))
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
for ax, dname in zip(axes, depth_data):
    rows = [r for r in depth_summary if r["dataset"] == dname]
    ax.errorbar(range(1, 5), [r["mean_iou"] for r in rows], yerr=[r["mean_iou_std"] for r in rows], fmt="o-", capsize=4)
    ax.set_xticks(range(1, 5), [r["model"] for r in rows])
    ax.set_ylabel(f"mean IoU (± std, {len(SEEDS)} seeds)")
    ax.set_title(dname), ax.grid(alpha=0.3)
fig.tight_layout()
for dname in depth_data:
    rows = sorted((r for r in depth_summary if r["dataset"] == dname), key=lambda r: -r["mean_iou"])
    best, second, worst = rows[0], rows[1], rows[-1]
    print(f"{dname}: best {best['model']} {best['mean_iou']:.3f}, runner-up {second['model']} {second['mean_iou']:.3f}, "
          f"worst {worst['model']} {worst['mean_iou']:.3f}; best - worst = {best['mean_iou'] - worst['mean_iou']:.3f} "
          f"(largest spread {max(r['mean_iou_std'] for r in rows):.3f})")

# %% [markdown]
# **What the measurement shows.** On `Shapes` depth matters a lot: UNet-L1 reached a mean IoU of
# 0.647, UNet-L3 0.770 — the deepest network, UNet-L4, was not better than L3 (0.751 ± 0.027, a
# difference within the spread). On `Cells` depth does not matter at all: every depth scored
# 0.968–0.970, so UNet-L1 with 6,489 parameters does the job of UNet-L4 with 486,409. Both halves
# agree with the paper's motivation — the best depth differs between data sets, and the deepest
# network is not automatically the best — although here the difference shows up as "deep enough",
# not as a sharp optimum at one depth.
#
# This is the motivation for UNet++: instead of searching for the depth, build all the depths into
# one network and let training (and, later, pruning) sort it out.
#
# ## Interactive: the family
#
# Switch between the members (static in the book: every setting was drawn when the notebook ran).

# %%
# NBVAL_IGNORE_OUTPUT
family_explorer(family)

# %% [markdown]
# ## Summary
#
# * One grid of nodes $X^{i,j}$ holds U-Nets of every depth; UNet-e, UNet+ and UNet++ differ only in
#   which same-row nodes each node reads (`same_row`). The paper's parameter counts — 7.76M for
#   U-Net, 9.04M for UNet++ — are reproduced exactly.
# * The UNet++ loss is $\tfrac12$ BCE + (1 − soft Dice); soft Dice works on probabilities and,
#   with its smoothing term, is defined on empty masks.
# * Measured at CPU scale (three seeds): BCE + Dice gave a higher mean foreground Dice than BCE
#   alone (+0.125) and won on all three seeds, by more than the seeds' spread. The best depth
#   was L3 on `Shapes` (L1 much worse) and any depth on `Cells`: the optimal depth depends on the
#   data, as the paper argues.
#
# ## Exercises
#
# 1. **Count the nodes.** How many convolution blocks does UNet++ of depth $L$ have, and how many
#    of them does UNet-L use? Check with `len(UNetPlusPlus(depth=L).nodes)`.
# 2. **Which nodes does $X^{0,j}$ depend on?** Show that node $X^{i,j}$ depends only on nodes with
#    $i' + j' \le i + j$ (this is why UNet++ can be pruned, next chapter), and check it on the edges
#    returned by `viz.nested_grid`.
# 3. **Where do UNet++'s extra parameters sit?** Compute the parameters of UNet++ minus those of
#    UNet+ node by node (paper configuration). Which nodes account for the difference, and why?
# 4. **Dice without smoothing.** What does `soft_dice_loss(..., smooth=0.0)` return for an empty
#    target and a confident all-background prediction (logits −20)? And for logits −200? What would
#    either do to training?

# %% tags=["hide-cell", "solution"]
# Solution 1: (L + 1) encoder nodes plus L + (L - 1) + ... + 1 decoder nodes = (L + 1)(L + 2) / 2;
# UNet-L uses L + 1 encoder and L decoder nodes (2L + 1).
for L in range(1, 5):
    print(L, len(UNetPlusPlus(depth=L, base_channels=2).nodes), (L + 1) * (L + 2) // 2, "UNet-L:", 2 * L + 1)

# %% tags=["hide-cell", "solution"]
# Solution 2: every edge goes from (i', j') to (i, j) with i' + j' <= i + j
# (same row: j' < j; up-sampling: (i + 1) + (j - 1) = i + j; down-sampling: only in column 0, i' = i - 1).
nodes, skips, ups, downs, heads = viz.nested_grid(UNetPlusPlus(base_channels=2))
print(all(a[0] + a[1] <= b[0] + b[1] for a, b in skips + ups + downs))

# %% tags=["hide-cell", "solution"]
# Solution 3: only the first convolution of a decoder node sees the concatenation, so the difference
# is in nodes that read more than one same-row map (j >= 2): (j - 1) * f_i extra input channels.
pp, plus = UNetPlusPlus(**paper_config), UNetPlus(**paper_config)
for name in pp.nodes:
    d = count_parameters(pp.nodes[name]) - count_parameters(plus.nodes[name])
    if d:
        print(name, f"{d:,}")
print("total", f"{count_parameters(pp) - count_parameters(plus):,}")

# %% tags=["hide-cell", "solution"]
# Solution 4: with logits -20 the probabilities are tiny but not zero: Dice = 0 / sum(p) = 0, so the
# loss is 1 — the worst score, for a perfect prediction — and its gradient is 0 (no signal to fix it).
# With logits -200, sigmoid underflows to exactly 0 in float32: 0 / 0 = nan, and one empty image
# turns the whole batch's loss and gradients into nan. The smoothing s = 1 avoids both.
for value in (-20.0, -200.0):
    logits = torch.full((1, 1, 8, 8), value, requires_grad=True)
    loss = soft_dice_loss(logits, empty, smooth=0.0)
    loss.backward()
    print(f"logits {value}: loss {loss.item()}, gradient finite: {torch.isfinite(logits.grad).all().item()}")
