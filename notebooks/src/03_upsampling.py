# %% [markdown]
# # Upsampling
#
# An encoder–decoder downsamples to see more context cheaply (chapter 2), so its decoder has to
# [upsample](../book/glossary.md#upsampling) back to the input's size. Downsampling throws
# positions away; upsampling has to put values somewhere. This chapter builds the three
# parameter-free answers — [nearest neighbour](../book/glossary.md#nearest-neighbour-upsampling),
# [bed of nails](../book/glossary.md#bed-of-nails) and
# [max unpooling](../book/glossary.md#max-unpooling), which remembers where max-pooling found each
# maximum {cite}`noh2015deconv,badrinarayanan2017segnet` — looks at them on a small grid and on a
# photograph, measures how far each one puts values from where they came from, and trains the same
# encoder–decoder with each of them (and with the learnable transposed convolution of chapter 4).
#
# [Open this chapter in Colab](https://colab.research.google.com/github/segedu/segedu/blob/main/notebooks/03_upsampling.ipynb)

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
from matplotlib import cbook
from scipy import ndimage
from torch import nn
from torch.nn import functional as F

from segedu import layers, metrics, viz
from segedu.data import Shapes
from segedu.layers import BedOfNailsUpsample, MaxUnpool, NearestUpsample
from segedu.models.encoder_decoder import EncoderDecoder
from segedu.train import fit, predict, resolve_device
from segedu.widgets import upsampling_explorer

# %%
# Configuration. The defaults run this chapter in a few minutes on 2 CPU cores.
# On a GPU: SIZE = 64, WIDTH = 32, STEPS = 3000, and several seeds per upsampling.
SEED = 0
PHOTO_SIDE = 128          # the photograph is resized to PHOTO_SIDE x PHOTO_SIDE
SIZE = 48                 # Shapes images for the training experiment
N_TRAIN, N_TEST = 400, 64
WIDTH, LEVELS = 8, 3      # the encoder-decoder: channels of level 0, number of poolings
STEPS = 500               # optimizer steps per model
BATCH, LR = 8, 3e-3
DEVICE = resolve_device("auto")
_ = torch.manual_seed(SEED)

# %% [markdown]
# ## Three ways to undo a 2×2 max-pooling
#
# Max-pooling keeps the largest value of every 2×2 block. `nn.MaxPool2d(2, return_indices=True)`
# also returns *where* it was: the flat index $y \cdot W + x$ of the maximum in the input. Then:
#
# * **nearest neighbour** copies each value into its whole 2×2 block;
# * **bed of nails** puts each value in the block's top-left corner and zeros elsewhere;
# * **max unpooling** puts each value back at the position the pooling took it from, zeros elsewhere.
#
# On a 4×4 grid (the true argmax positions are outlined):

# %%
# NBVAL_CHECK_OUTPUT
grid = torch.tensor([[[[1.0, 6.0, 3.0, 2.0],
                       [4.0, 2.0, 1.0, 8.0],
                       [7.0, 0.0, 2.0, 1.0],
                       [3.0, 5.0, 9.0, 4.0]]]])
pool = nn.MaxPool2d(2, return_indices=True)
pooled, indices = pool(grid)
ups = {"nearest": NearestUpsample(2)(pooled), "bed of nails": BedOfNailsUpsample(2)(pooled),
       "max unpool": MaxUnpool(2)(pooled, indices)}
print("pooled:", pooled[0, 0].tolist(), " argmax indices:", indices[0, 0].tolist())
for name, out in ups.items():
    print(f"{name:>12}:", out[0, 0].int().tolist())

# %% alt="A 4 by 4 grid of numbers with the maximum of each 2 by 2 block outlined, its 2 by 2 max-pooled version (6, 8, 7, 9), and three upsamplings back to 4 by 4: nearest neighbour copies each maximum into its whole block, bed of nails puts it in the top-left corner (only one of the four lands on its original position), max unpooling puts each back exactly where it came from, with zeros elsewhere."
is_argmax = torch.zeros(16, dtype=torch.bool)
is_argmax[indices.flatten()] = True
is_argmax = is_argmax.view(4, 4)


fig, axes = plt.subplots(1, 5, figsize=(13, 2.9))
viz.show_numbers(axes[0], grid[0, 0], "input (argmax outlined)", vmin=0, vmax=10, outline=is_argmax)
viz.show_numbers(axes[1], pooled[0, 0], "2x2 max-pooled", vmin=0, vmax=10)
for ax, (name, out) in zip(axes[2:], ups.items()):
    viz.show_numbers(ax, out[0, 0], name, vmin=0, vmax=10, outline=is_argmax)
fig.tight_layout()

# %% [markdown]
# Nearest neighbour puts every maximum back at its true position — and at three others. Bed of
# nails puts only the 7 (a top-left maximum) in the right place; the 6, 8 and 9 land where they
# were not taken from. Max unpooling restores every position. The code is short; here are the three
# `forward` methods of `segedu.layers`:

# %%
for cls in (NearestUpsample, BedOfNailsUpsample, MaxUnpool):
    source = inspect.getsource(cls.forward)
    print(source[source.index("        _check_input(x)"):] if cls is not MaxUnpool else
          "    def forward(self, x, indices, output_size=None):\n        ...\n" +
          source[source.index("        n, c, h, w = x.shape"):])

# %% [markdown]
# The scatter makes the mechanism visible: each value goes to the flat index the pooling
# remembered.
#
# ## A photograph: pool, then unpool
#
# The same round trip on a real image (Grace Hopper's portrait, which ships with matplotlib),
# grey-scale, 2×2 max-pooled and upsampled back. The layers agree with PyTorch's own
# `nn.MaxUnpool2d` and `F.interpolate(mode="nearest")`:

# %%
# NBVAL_CHECK_OUTPUT
with cbook.get_sample_data("grace_hopper.jpg") as f:
    photo = plt.imread(f)
photo = torch.from_numpy(photo[:512, :512].mean(-1) / 255.0).float()[None, None]
photo = F.interpolate(photo, size=(PHOTO_SIDE, PHOTO_SIDE), mode="area")
p_pooled, p_idx = pool(photo)
photo_ups = {"nearest": NearestUpsample(2)(p_pooled), "bed of nails": BedOfNailsUpsample(2)(p_pooled),
             "max unpool": MaxUnpool(2)(p_pooled, p_idx)}
print("photo:", tuple(photo.shape), "-> pooled", tuple(p_pooled.shape), "-> upsampled",
      {k: tuple(v.shape) for k, v in photo_ups.items()})
print("MaxUnpool == nn.MaxUnpool2d:", torch.equal(photo_ups["max unpool"], nn.MaxUnpool2d(2)(p_pooled, p_idx)),
      "  NearestUpsample == F.interpolate(nearest):",
      torch.equal(photo_ups["nearest"], F.interpolate(p_pooled, scale_factor=2, mode="nearest")))

# %% alt="A grayscale photograph of Grace Hopper, its 2 by 2 max-pooled version and the three upsamplings, with zoomed crops below: nearest neighbour looks blocky but complete, bed of nails is a regular grid of dots, max unpooling scatters the values to where the maxima were."
fig, axes = plt.subplots(2, 5, figsize=(13, 5.6))
axes[0, 0].imshow(photo[0, 0], cmap="gray", vmin=0, vmax=1), axes[0, 0].set_title("original", fontsize=9)
axes[0, 1].imshow(p_pooled[0, 0], cmap="gray", vmin=0, vmax=1), axes[0, 1].set_title("2x2 max-pooled", fontsize=9)
for col, (name, out) in enumerate(photo_ups.items(), start=2):
    axes[0, col].imshow(out[0, 0], cmap="gray", vmin=0, vmax=1), axes[0, col].set_title(name, fontsize=9)
# a 16x16 crop, to see the 2x2 structure
zy, zx = slice(40, 56), slice(40, 56)
axes[1, 0].imshow(photo[0, 0, zy, zx], cmap="gray", vmin=0, vmax=1), axes[1, 0].set_title("crop: original", fontsize=9)
axes[1, 1].axis("off")
for col, (name, out) in enumerate(photo_ups.items(), start=2):
    axes[1, col].imshow(out[0, 0, zy, zx], cmap="gray", vmin=0, vmax=1)
    axes[1, col].set_title(f"crop: {name}", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()

# %% [markdown]
# ## Measuring where the values land
#
# The notes claim that nearest neighbour and bed of nails add error, that bed of nails puts a value
# where it was not taken from, and that index unpooling restores positions exactly. We measure, on
# the photograph, for every pooled value:
#
# * whether the value is found at its **true argmax position** after upsampling;
# * how many **other** pixels receive it (positions it was not taken from);
# * the mean **distance** (pixels) from the places it was written to its true argmax;
# * and the mean squared error of the whole upsampled image against the original, over all pixels
#   and over the argmax pixels only.

# %%
# NBVAL_CHECK_OUTPUT
def position_report(original, pooled, idx, upsampled):
    n, c, h, w = pooled.shape
    W = original.shape[-1]
    flat_idx = idx.flatten()
    ty, tx = flat_idx // W, flat_idx % W                           # true argmax of every pooled value
    by, bx = torch.arange(h).repeat_interleave(w) * 2, torch.arange(w).repeat(h) * 2  # block corners
    values = pooled.flatten()
    up = upsampled[0, 0]
    at_argmax = (up[ty, tx] == values).float().mean()
    written = elsewhere = distance = 0.0
    for dy in range(2):                                            # the four pixels of every block
        for dx in range(2):
            y, x = by + dy, bx + dx
            holds = (up[y, x] == values) & (values != 0)
            wrong = holds & ((y != ty) | (x != tx))
            elsewhere += wrong.float().sum()
            distance += (((y - ty) ** 2 + (x - tx) ** 2).float().sqrt() * holds).sum()
            written += holds.float().sum()
    err = (upsampled - original) ** 2
    return dict(at_argmax=float(at_argmax), elsewhere=float(elsewhere / values.numel()),
                distance=float(distance / written), mse=float(err.mean()), mse_argmax=float(err.flatten()[flat_idx].mean()))


report = {name: position_report(photo, p_pooled, p_idx, out) for name, out in photo_ups.items()}
corners = (p_idx.flatten() // PHOTO_SIDE % 2 == 0) & (p_idx.flatten() % PHOTO_SIDE % 2 == 0)
print(f"maxima that sit in the top-left corner of their block: {corners.float().mean():.1%}")
print(f"{'method':<13} {'at argmax':>9} {'written elsewhere':>18} {'distance (px)':>14} {'MSE all':>8} {'MSE argmax':>11}")
for name, r in report.items():
    print(f"{name:<13} {r['at_argmax']:>9.1%} {r['elsewhere']:>18.2f} {r['distance']:>14.3f} "
          f"{r['mse']:>8.4f} {r['mse_argmax']:>11.4f}")

# %% [markdown]
# **What the measurement shows.** The notes are right on all three counts, and the numbers add
# detail. Max unpooling puts 100% of the values back at their argmax and writes nowhere else
# (distance 0). Bed of nails hits the argmax only for the 24.3% of maxima that happened to sit in
# the top-left corner; the other 76% are written where they were not taken from, on average
# 0.87 px away — close to the 0.85 px expected if the maximum were anywhere in its block
# (exercise 2). Nearest neighbour also puts every value at its argmax, but writes it to the 3 other
# pixels of the block as well. In *pixel values* the ranking changes: in a natural image the
# copies of nearest neighbour are close to the pixels they overwrite, so its error against the
# original is by far the smallest (MSE 0.0135); max unpooling restores positions exactly but leaves
# three zeros in every block (MSE 0.133), only a little better than bed of nails (0.147), which
# in addition misplaces the maxima (MSE 0.176 on the argmax pixels, where the other two have 0).
# All three add error; only max unpooling adds none in *position*.
#
# ## Interactive: method, pool size, input
#
# The same round trip with 2×2 or 4×4 pooling, on the grid or the photograph. Red marks the
# pixels where the upsampled image differs from the original. In the rendered book every setting
# was drawn when the notebook ran and the controls switch between the pictures in your browser;
# in Jupyter or Colab the demo is live.

# %%
# NBVAL_IGNORE_OUTPUT
inputs = {"grid": F.interpolate(grid / 10, scale_factor=2, mode="nearest"), "photo": photo}

upsampling_explorer(inputs)

# %% [markdown]
# ## Does it matter for segmentation? The same encoder–decoder, five upsamplings
#
# `segedu.models.encoder_decoder.EncoderDecoder` is a plain encoder–decoder *without skip
# connections*: everything its decoder knows about where things were has to come through the
# upsampling. Only the `up` argument changes between the runs: `"nearest"`, `"bed_of_nails"`,
# `"max_unpool"` (each decoder level uses the indices of the mirrored pooling, as in SegNet),
# `"transpose"` (a learnable 2×2, stride-2 transposed convolution, chapter 4) and `"bilinear"`.

# %%
print(inspect.getsource(EncoderDecoder.forward))

# %%
# NBVAL_CHECK_OUTPUT
train_set, test_set = Shapes(N_TRAIN, size=SIZE, seed=SEED), Shapes(N_TEST, size=SIZE, seed=SEED + 1)
images = torch.stack([test_set[i][0] for i in range(N_TEST)])
masks = torch.stack([test_set[i][1] for i in range(N_TEST)])
UPS = ("nearest", "bed_of_nails", "max_unpool", "transpose", "bilinear")
for up in UPS:
    net = EncoderDecoder(4, 3, up=up, width=WIDTH, levels=LEVELS)
    print(f"{up:<13} parameters {sum(p.numel() for p in net.parameters()):,}   output for {SIZE}x{SIZE}:",
          tuple(net(images[:1]).shape))

# %% [markdown]
# Every model is trained with the same data, seed, optimizer and number of steps. To see how much
# of a difference is just chance, the max-unpooling model is trained a second time with another
# seed. Besides mean IoU we report the accuracy in a 2-pixel band around the true class boundaries,
# where placing things correctly matters most.

# %%
# NBVAL_IGNORE_OUTPUT
m = masks.numpy()
band = torch.from_numpy(ndimage.maximum_filter(m, size=(1, 5, 5)) != ndimage.minimum_filter(m, size=(1, 5, 5)))
runs = [(up, SEED) for up in UPS] + [("max_unpool", SEED + 1)]
results, scores = {}, {}
for up, seed in runs:
    torch.manual_seed(seed)
    net = EncoderDecoder(4, 3, up=up, width=WIDTH, levels=LEVELS)
    history = fit(net, train_set, epochs=10_000, max_steps=STEPS, batch_size=BATCH, lr=LR, device=DEVICE,
                  seed=seed, progress=False)
    s = predict(net.cpu().eval(), images)
    pred = metrics.as_labels(s)
    results[(up, seed)] = (metrics.mean_iou(s, masks, 4), metrics.pixel_accuracy(s, masks),
                           float((pred == masks)[band].float().mean()), history.seconds)
    scores[(up, seed)] = s
print(f"{'upsampling':<13} {'seed':>4} {'mIoU':>6} {'pixel acc':>10} {'boundary acc':>13} {'train s':>8}")
for (up, seed), (miou, acc, bacc, sec) in results.items():
    print(f"{up:<13} {seed:>4} {miou:>6.3f} {acc:>10.3f} {bacc:>13.3f} {sec:>8.0f}")

# %% alt="Three Shapes test images, their ground truth and the predictions of the encoder-decoder with each of the five upsamplings; all are rough: the shapes are found as blobs of roughly the right place and size, mostly with the wrong class, and bilinear is the only one that uses the square and triangle classes."
# NBVAL_IGNORE_OUTPUT
show = [0, 1, 2]
fig, axes = plt.subplots(len(show), 2 + len(UPS), figsize=(2 * (2 + len(UPS)), 2.1 * len(show)))
for row, i in enumerate(show):
    axes[row, 0].imshow(viz.to_image(images[i])), axes[row, 1].imshow(viz.colorize(masks[i]), interpolation="nearest")
    for col, up in enumerate(UPS, start=2):
        axes[row, col].imshow(viz.colorize(metrics.as_labels(scores[(up, SEED)][i:i + 1])[0]), interpolation="nearest")
        if row == 0:
            axes[row, col].set_title(up, fontsize=9)
axes[0, 0].set_title("image", fontsize=9), axes[0, 1].set_title("ground truth", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
viz.class_legend(fig, Shapes.CLASSES, loc="lower center")
fig.tight_layout(rect=(0, 0.05, 1, 1))

# %% [markdown]
# **What the measurements show.** Under this small budget, the exact positions of max unpooling
# did *not* turn into a clearly better segmentation. In the run printed above, bilinear
# interpolation had the best mean IoU (0.37), then max unpooling (0.35), bed of nails and the
# transposed convolution (0.34) and nearest neighbour (0.33): all five within 0.04 of each other.
# Boundary accuracy was between 0.55 and 0.62. Retraining max unpooling with a second seed moved
# its mIoU by 0.04 (0.35 → 0.31), as much as the whole gap between the methods. One run per method
# therefore cannot rank these upsamplings; that needs several seeds and longer training (the
# configuration cell says what to raise on a GPU). Note also what the
# photograph measurement already showed: unpooling restores the positions of the *maxima of the
# encoder's features*, not an image — without skip connections, nothing else of the encoder's
# detail reaches the decoder. U-Net's skips (chapter 5) are the other answer.
#
# ## Summary
#
# * Nearest neighbour copies a value into its whole block, bed of nails into one fixed corner,
#   max unpooling to the exact position the pooling remembered.
# * Measured on a photograph: max unpooling restores every argmax position, bed of nails misplaces
#   the maxima that were not in the top-left corner, nearest neighbour writes each value to three
#   positions it was not taken from.
# * In a small encoder–decoder without skips, the upsampling is the only path for positions; the
#   table above shows what the choice did to mIoU and boundary accuracy under a small budget.
#
# ## Exercises
#
# 1. **Ties.** What does `MaxPool2d` return as the index when a 2×2 block holds two equal
#    maxima? Check on a block of four equal values, and say what max unpooling then restores.
# 2. **Expected misplacement.** If the argmax of each 2×2 block were uniformly distributed, what
#    fraction of bed-of-nails values would be misplaced, and what would the mean distance be?
#    Compare with the photograph's measurement.
# 3. **Odd sizes.** Pool a 7×7 map with 2×2 pooling and unpool it. Why does `MaxUnpool` need
#    `output_size`, and what happens to the last row and column?

# %% tags=["hide-cell", "solution"]
# Solution 1: PyTorch returns the first maximum in scan order (here the top-left), so unpooling puts
# the value there and the other equal pixels become 0.
block = torch.full((1, 1, 2, 2), 5.0)
p, i = pool(block)
print("index of the maximum:", int(i), "->", MaxUnpool(2)(p, i)[0, 0].tolist())

# %% tags=["hide-cell", "solution"]
# Solution 2: 3/4 misplaced; distances 0, 1, 1, sqrt(2) with equal probability -> (2 + sqrt(2)) / 4.
print(f"uniform argmax: misplaced 75.0%, mean distance {(2 + 2 ** 0.5) / 4:.3f} px")
print(f"photograph: misplaced {1 - report['bed of nails']['at_argmax']:.1%}, "
      f"mean distance {report['bed of nails']['distance']:.3f} px")

# %% tags=["hide-cell", "solution"]
# Solution 3: 2x2 pooling maps both 6 and 7 to 3, so the original size cannot be read off the
# pooled map; the 7th row and column never win a pooling window and come back as zeros.
x7 = torch.rand(1, 1, 7, 7)
p, i = pool(x7)
back = MaxUnpool(2)(p, i, output_size=x7.shape)
print("pooled", tuple(p.shape[-2:]), "-> unpooled", tuple(back.shape[-2:]),
      "; last row/column all zero:", bool((back[0, 0, 6] == 0).all() and (back[0, 0, :, 6] == 0).all()))
