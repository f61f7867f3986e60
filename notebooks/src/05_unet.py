# %% [markdown]
# # U-Net
#
# U-Net {cite}`ronneberger2015unet` is an [encoder-decoder](../book/glossary.md#encoder-decoder):
# a contracting path that halves the resolution and doubles the channels four times, and an
# expansive path that climbs back up. What makes it U-Net is the
# [skip connection](../book/glossary.md#skip-connection) at every level: the encoder's feature
# map is copied across the "U", cropped, and *concatenated* to the decoder's. This chapter builds
# the paper's network exactly, derives which input sizes it accepts, segments images of any size
# with the overlap-tile strategy, and builds the paper's weighted loss for touching cells. The
# next part, [U-Net in practice](05b_unet_training.ipynb), trains it: with and without the weight
# map, with both kinds of skip, and on the paper's own electron-microscopy data.
#
# [Open this chapter in Colab](https://colab.research.google.com/github/segedu/segedu/blob/main/notebooks/05_unet.ipynb)

# %%
# Setup: install segedu only if it is missing (e.g. on Colab); a local checkout already has it.
try:
    import segedu
except ImportError:
    %pip install -q "segedu @ git+https://github.com/segedu/segedu"

# %%
import inspect
import os
import time

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import sympy
import torch
from scipy import ndimage

import segedu
from segedu import sizes, viz
from segedu.data import Cells
from segedu.glue import glue
from segedu.losses import unet_weight_map
from segedu.memory import peak_memory_bytes
from segedu.models import UNet
from segedu.tiling import mirror_pad, predict_tiled, tile_layout
from segedu.widgets import unet_size_calculator, weight_map_explorer

# %%
# Configuration. The defaults run this part in about a minute and a half on 2 CPU cores.
# On a GPU: DEPTH = 4, WIDTH = 64 (the paper's network), TILE = 572, BIG = 2048 or 4096.
SEED = 0
DEPTH = 3            # poolings of the small networks used for tiling (the paper: 4)
WIDTH = 16           # channels of their first level (the paper: 64)
TILE = 140           # a valid input side for DEPTH = 3 (output 52 x 52)
BIG = 1024           # side of the large image for the memory / time measurement
SIZE_RANGE = (100, 800)  # input sides tried on the real network
_ = torch.manual_seed(SEED)

# %% [markdown]
# ## The paper's network, exactly
#
# The defaults of `segedu.models.UNet` are the paper's configuration: unpadded
# ([valid](../book/glossary.md#valid-convolution)) 3×3 convolutions with ReLU, 2×2 max pooling,
# channels 64 → 128 → 256 → 512 → 1024, 2×2 up-convolutions that halve the channels, crop and
# concatenate, and a final 1×1 convolution to the 2 classes. The paper says: "In total the network
# has 23 convolutional layers." We count them, and the parameters:

# %%
# NBVAL_CHECK_OUTPUT
paper = UNet()  # in_channels=1, num_classes=2, depth=4, base_channels=64, padding="valid", skip="concat"
convs = [m for m in paper.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
kinds = {}
for m in convs:
    key = f"{type(m).__name__} {m.kernel_size[0]}x{m.kernel_size[1]}"
    kinds[key] = kinds.get(key, 0) + 1
print("convolutional layers:", len(convs), kinds)
print(f"parameters: {sum(p.numel() for p in paper.parameters()):,}")

# %%
glue("ch5_n_convs", len(convs))
glue("ch5_params", f"{sum(p.numel() for p in paper.parameters()):,}")

# %% [markdown]
# The forward pass reads like the paper's Figure 1:

# %%
print(inspect.getsource(UNet.forward))

# %% [markdown]
# The figure below is drawn from a real forward pass of a 572×572 input through the paper's
# network (forward hooks record every block's output): every number is a channel count or a side
# the network computed. Each unpadded convolution trims a pixel from each border
# (572 → 570 → 568), each pooling halves (568 → 284), and on the way up each skip must be cropped
# to the decoder's smaller map.

# %% alt="The U-Net drawn from a forward pass of a 572 by 572 input: the contracting path on the left goes down four levels (sides 572, 570, 568, then 284 after pooling, down to 32 and 30, 28 at the bottom with 1024 channels), the expansive path on the right goes back up to 388, and grey arrows mark the cropped copies of the encoder maps."
fig = viz.draw_unet(paper, 572)

# %%
# NBVAL_CHECK_OUTPUT
records = viz.unet_feature_shapes(paper, 572)  # one forward pass, recorded by hooks
for r in records:
    if r["path"] == "up":
        print(f"level {r['level']}: decoder input {r['input'][0]}x{r['input'][0]} with {2 * r['channels']} channels "
              f"(cropped skip + up-convolved map, concatenated) -> {r['size'][0]}x{r['size'][0]}, {r['channels']} channels")
head = records[-1]
print(f"input 572x572 -> output {head['size'][0]}x{head['size'][1]}, {head['channels']} class scores per pixel")

# %% [markdown]
# ## Which input sizes work? The rule $x = 16k + 124$
#
# Follow a side of length $x$ through the network of depth 4. Each level of the contracting path
# applies two valid convolutions ($-4$) and a pooling ($\div 2$), and a pooling needs an even size:
#
# $$x \to \frac{x-4}{2} \to \frac{x-12}{4} \to \frac{x-28}{8} \to \frac{x-60}{16}.$$
#
# The bottom level's two convolutions give $k = \frac{x-60}{16} - 4 = \frac{x - 124}{16}$: the size
# before the first up-convolution. So
#
# $$x = 16k + 124.$$
#
# The study notes derive it from the bottom up: start from $k$, add back the bottom level's two
# convolutions ($+4$), then undo each pooling ($\times 2$) and the two convolutions above it ($+4$):
#
# $$x = 2(2(2(2(k+4)+4)+4)+4)+4 = 2^4 k + 4(2^4 + 2^3 + 2^2 + 2 + 1) = 16k + 124.$$
#
# The notes' middle line reads $2^4 + 4(2^4 + 2^3 + 2^2 + 2 + 1)$: the $k$ fell off the first term,
# and as written it is a constant. The last line is right. sympy expands the nested form:

# %%
# NBVAL_CHECK_OUTPUT
k_sym = sympy.Symbol("k")
nested = 2 * (2 * (2 * (2 * (k_sym + 4) + 4) + 4) + 4) + 4
series = 4 * (2**4 + 2**3 + 2**2 + 2 + 1)
print("2(2(2(2(k+4)+4)+4)+4)+4   =", sympy.expand(nested))
print("2^4 k + 4(2^4 + ... + 1)  =", sympy.expand(2**4 * k_sym + series), "  (the middle line, corrected)")
print("2^4 + 4(2^4 + ... + 1)    =", 2**4 + series, "         (the notes' middle line: no k)")
print("k = 28:", nested.subs(k_sym, 28))

# %% [markdown]
# For 572: $k = 28$, and going up each level doubles and trims 4: $28 \to 52 \to 100 \to 196 \to 388$.
# The study notes add that $k$ must be **even** "so that the crops divide evenly". Rather than argue,
# we enumerate: run the real paper network on every input size from 100 to 800 *without* the input
# check, and record for each size whether every pooling met an even size and every crop was
# symmetric. To make 701 forward passes cheap they run on PyTorch's `meta` device, which executes
# the same layers but computes only shapes, no values.

# %%
def run_unchecked(model, side):
    """Forward a side x side input, recording pooling inputs and crop margins (forward hooks)."""
    pools, crops = [], []
    hooks = [model.pool.register_forward_pre_hook(lambda m, i: pools.append(i[0].shape[-1]))]
    ups = {}
    for j, up in enumerate(model.up):
        hooks.append(up.register_forward_hook(lambda m, i, o, j=j: ups.__setitem__(j, o.shape[-1])))
    for lv, block in enumerate(model.down[:-1]):
        hooks.append(block.register_forward_hook(lambda m, i, o, lv=lv: crops.append((lv, o.shape[-1]))))
    x = torch.zeros(1, 1, side, side, device=next(model.parameters()).device)
    h, skips = x, []
    try:
        with torch.no_grad():  # the same steps as UNet.forward, minus the size check
            for level, block in enumerate(model.down):
                h = block(h)
                if level < model.depth:
                    skips.append(h)
                    h = model.pool(h)
            for up, block, skip in zip(model.up, model.decode, reversed(skips)):
                h = up(h)
                margin = skip.shape[-1] - h.shape[-1]
                crops.append(("margin", margin))
                h = block(torch.cat([sizes.center_crop(skip, h.shape[-2:]), h], 1))
    except RuntimeError:
        return False, None
    finally:
        for hk in hooks:
            hk.remove()
    margins = [m for tag, m in crops if tag == "margin"]
    exact = all(p % 2 == 0 for p in pools) and all(m >= 0 and m % 2 == 0 for m in margins)
    return exact, tuple(margins)


probe = UNet().to("meta").eval()  # the paper's network; shapes only
runs = {s: run_unchecked(probe, s) for s in range(SIZE_RANGE[0], SIZE_RANGE[1] + 1)}
works = [s for s, (exact, _) in runs.items() if exact]

# %%
# NBVAL_CHECK_OUTPUT
formula = sizes.valid_input_sizes(depth=4, max_size=SIZE_RANGE[1], min_size=SIZE_RANGE[0])
print("sizes that run with even poolings and symmetric crops:", works[:8], "...", works[-3:])
print("valid_input_sizes (the formula):                    ", formula[:8], "...", formula[-3:])
print("identical lists:", works == formula, f"({len(works)} sizes)")
ks = [(s - 124) // 16 for s in works]
print("k for these sizes:", ks[:8], "...")
print("odd k that work:", [k for k in ks if k % 2][:6], "...")
print("crops (total pixels cut from each skip, level 3 -> 0) over all working sizes:", {runs[s][1] for s in works})

# %%
(crops_total,) = {runs[s][1] for s in works}  # one set of crops for every working size


def in_words(items):
    """[8, 32, 80, 176] -> '8, 32, 80 and 176'."""
    items = [str(i) for i in items]
    return " and ".join([", ".join(items[:-1]), items[-1]]) if len(items) > 1 else "".join(items)


glue("ch5_crops_total", in_words(crops_total))
glue("ch5_crops_side", in_words([c // 2 for c in crops_total]))

# %% [markdown]
# **What the enumeration shows.** The network accepts exactly the sizes $x = 16k + 124$ with
# $k \ge 4$ (smaller $k$ makes a feature map vanish on the way up): 188, 204, 220, …, 572, ….
# The notes' extra condition is **not** needed: odd $k$ (204, 236, …) work with even poolings and
# symmetric crops. The last printed line says why: the crops are the *same* for every working size
# — {glue:text}`ch5_crops_total` pixels, i.e. {glue:text}`ch5_crops_side` per side. At level $\ell$ both the skip and
# the up-convolved map it meets grow by exactly $2^{4-\ell}$ pixels per unit of $k$, so their
# difference, the crop, does not depend on $k$ at all — and it is even.
# `segedu` rejects other sizes before computing anything, naming the nearest valid ones:

# %%
# NBVAL_CHECK_OUTPUT
try:
    UNet(base_channels=2)(torch.zeros(1, 1, 500, 500))
except ValueError as e:
    print("ValueError:", e)
print("nearest valid sizes to 500:", sizes.nearest_valid_input_size(500))

# %% [markdown]
# ### Interactive: the size calculator
#
# Pick an input side; the figure follows it down and up the U (depth 4): the sides after every
# convolution, every pooling (red when it meets an odd side), every crop of a skip and by how much,
# and whether the size is valid — with the nearest valid sizes when it is not. The numbers come
# from `sizes.unet_levels`, the same arithmetic as the model's input check (and the enumeration
# above shows that arithmetic equals the real network). Static in the book: every setting was
# computed when the notebook ran.

# %%
# NBVAL_IGNORE_OUTPUT
unet_size_calculator(depth=4)

# %% [markdown]
# ## Why 572 → 388: the receptive field and the 92-pixel margin
#
# The output is smaller than the input by the same amount at every valid size. By the closed form,
# $k$ gives the input $16k + 124$ and, going up, the output $16(k - 4) + 4 = 16k - 60$: the
# difference is $184$ whatever $k$ is, so the network loses 92 pixels on every side. The sizes
# functions agree on every valid size up to 2000:

# %%
# NBVAL_CHECK_OUTPUT
lost = {s - sizes.unet_output_size(s) for s in sizes.valid_input_sizes(depth=4, max_size=2000)}
print("input - output over all valid sizes up to 2000:", lost)
MARGIN = (572 - sizes.unet_output_size(572)) // 2
print("margin per side:", MARGIN)

# %% [markdown]
# Where do the 92 pixels go? The network pads nothing, so it computes an output pixel only where
# everything that pixel depends on — its *receptive field* — lies inside the input. The function
# below follows one output column back through the network, layer by layer (a valid 3×3
# convolution's output $i$ reads inputs $i \ldots i+2$, a pooling's $2i, 2i+1$, a 2×2 up-convolution's
# $\lfloor i/2 \rfloor$, and every skip enters shifted by half its crop), and returns the first and last
# input column it depends on. We check it with autograd on a copy of the paper's network with one
# channel per level, all weights made positive and average pooling in place of max pooling, so that
# no path can cancel or switch off: the input pixels with a non-zero gradient are then exactly the
# receptive field. (Max pooling depends on all four pixels of its window too; only its gradient
# picks one.)


# %%
def receptive_field(p, tile=572, depth=4):
    """First and last input column that output column p of the valid U-Net depends on."""
    levels = sizes.unet_levels(tile, depth)

    def back_down(lo, hi, level):  # from the map after the two convolutions of `level` to the input
        lo, hi = lo, hi + 4
        for _ in range(level):  # undo a pooling, then the two convolutions of the level above
            lo, hi = 2 * lo, 2 * hi + 1 + 4
        return lo, hi

    lo, hi, fields = p, p, []
    for rec in reversed(levels.up):  # decoder levels 0, 1, ..., depth - 1, walking back from the output
        lo, hi = lo, hi + 4  # the decoder's two 3x3 convolutions
        half = rec["crop"] // 2
        fields.append(back_down(lo + half, hi + half, rec["level"]))  # through the cropped skip
        lo, hi = lo // 2, hi // 2  # the 2x2 up-convolution
    fields.append(back_down(lo, hi, depth))  # through the bottom of the U
    return min(f[0] for f in fields), max(f[1] for f in fields)


OUT = sizes.unet_output_size(572)
fields = [receptive_field(p) for p in range(OUT)]
widths = [last - first + 1 for first, last in fields]
reach_left = [p + MARGIN - first for p, (first, last) in enumerate(fields)]  # output p sits at input p + 92
reach_right = [last - (p + MARGIN) for p, (first, last) in enumerate(fields)]

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
rf_probe = UNet(base_channels=1).double()  # the paper's layers, one channel per level
rf_probe.pool = torch.nn.AvgPool2d(2)
with torch.no_grad():
    for prm in rf_probe.parameters():
        prm.abs_()
x_rf = torch.rand(1, 1, 572, 572, dtype=torch.float64, requires_grad=True)
for p in (0, 4, 15, 200, OUT - 1):
    x_rf.grad = None
    rf_probe(x_rf)[0, 0, p, p].backward()
    rows = x_rf.grad[0, 0].abs().sum(1).nonzero().flatten()
    cols = x_rf.grad[0, 0].abs().sum(0).nonzero().flatten()
    print(f"output pixel ({p}, {p}): receptive_field {receptive_field(p)}, autograd rows "
          f"({int(rows.min())}, {int(rows.max())}), columns ({int(cols.min())}, {int(cols.max())})")
print(f"width of one output pixel's field: {min(widths)} to {max(widths)} input pixels")
print(f"reach from its own position (input p + {MARGIN}): left {min(reach_left)} to {max(reach_left)}, "
      f"right {min(reach_right)} to {max(reach_right)}")
print(f"union of the fields of all {OUT} outputs: columns {min(f[0] for f in fields)} to {max(f[1] for f in fields)}")

# %%
glue("ch5_margin", MARGIN)
glue("ch5_rf_min", min(widths))
glue("ch5_rf_max", max(widths))
glue("ch5_reach_min", min(reach_left + reach_right))
glue("ch5_reach_max", max(reach_left + reach_right))
glue("ch5_rf_union", f"{min(f[0] for f in fields)} to {max(f[1] for f in fields)}")

# %% alt="Left: for every output column of a 572 input, the band of input columns its value depends on; the band starts at the window's first column for the first output and ends at its last column for the last output. Right: how far that field reaches to the left and to the right of the pixel's own position, for the first 64 output columns: a sawtooth with the period of the pooling grid that never drops below the margin."
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
ps = np.arange(OUT)
ax1.fill_between(ps, [f[0] for f in fields], [f[1] for f in fields], color="#56B4E9", alpha=0.5,
                 label="receptive field (input columns)")
ax1.plot(ps, ps + MARGIN, color="k", lw=1, label=f"the pixel's own position, p + {MARGIN}")
for edge in (0, 571):
    ax1.axhline(edge, color="#D55E00", ls="--", lw=1)
ax1.set_xlabel("output column p"), ax1.set_ylabel("input column")
ax1.set_title("each output column and the input columns it depends on\n(dashed: the 572-pixel window)", fontsize=9)
ax1.legend(fontsize=8, loc="lower right")
ax2.step(ps[:64], reach_left[:64], where="mid", label="reach to the left")
ax2.step(ps[:64], reach_right[:64], where="mid", label="reach to the right")
ax2.axhline(MARGIN, color="k", ls=":", lw=1, label=f"margin {MARGIN}")
ax2.set_xlabel("output column p"), ax2.set_ylabel("pixels of context")
ax2.set_title("how far one pixel's field reaches (first 64 columns)", fontsize=9)
ax2.set_ylim(MARGIN - 4, max(reach_left + reach_right) + 10)
ax2.yaxis.get_major_locator().set_params(integer=True)
ax2.legend(fontsize=8, loc="upper center", ncol=3)
fig.tight_layout()

# %% [markdown]
# **What this shows.** One output pixel depends on a field {glue:text}`ch5_rf_min:d` to
# {glue:text}`ch5_rf_max:d` input pixels wide: the width depends on where the pixel sits on the
# 16-pixel pooling grid (the sawtooth on the right). Measured from its own position, the field
# reaches {glue:text}`ch5_reach_min:d` to {glue:text}`ch5_reach_max:d` pixels to each side, never less
# than the margin of {glue:text}`ch5_margin:d`. And the fields of the 388 outputs together cover
# input columns {glue:text}`ch5_rf_union` — exactly the 572-pixel window, no more and no less. That
# is the "why" of 572 → 388: a valid network outputs a pixel only where it has seen all of that
# pixel's context, and the paper's window is 388 outputs plus the 92 pixels of context each of them
# is guaranteed on every side. Nothing is invented at the border, unlike a zero-padded network.
#
# Overlap-tile follows directly. To predict an output tile, feed the window that extends 92 pixels
# beyond it on every side. Neighbouring windows therefore overlap by at least 184 pixels, the
# context that both tiles need; the margin is computed twice, once in each tile — that is the cost
# of tiling. At the image's border those 92 pixels lie outside the image, and the paper fills them
# by mirroring the image.
#
# ## Overlap-tile: images of any size
#
# A valid U-Net predicts only the centre of what it sees: 388 of 572 pixels. To segment a large
# image the paper slides the *input* window (blue) so that the *output* tiles (yellow) cover the
# image, and fills the missing context at the border by mirroring the image
# ([overlap-tile](../book/glossary.md#overlap-tile)). `predict_tiled` does this; its tiles start
# at multiples of $2^{\text{depth}}$ (the pooling grid), so each tile computes exactly what one pass
# over the whole mirrored image would compute there. The figure shows the plan for a 1000×700
# image and the paper's 572 tiles:

# %% alt="The overlap-tile plan for a 700 by 1000 image: yellow output tiles of 388 pixels cover the image exactly, the grey mirrored border surrounds it, and blue squares show two 572-pixel input windows that reach into the border or the neighbouring tiles."
layout = tile_layout((1000, 700), tile_size=572, depth=4)
fig, ax = plt.subplots(figsize=(5, 6.5))
m = layout.margin
ax.add_patch(plt.Rectangle((-m, -m), layout.padded_size[1], layout.padded_size[0], color="0.9", label="mirrored border"))
ax.add_patch(plt.Rectangle((0, 0), 700, 1000, fill=False, lw=2, color="k", label="image 700x1000"))
for i, y in enumerate(layout.offsets[0]):
    for j, x in enumerate(layout.offsets[1]):
        ax.add_patch(plt.Rectangle((x, y), layout.out_size, layout.out_size, color="#F0E442", alpha=0.35,
                                   label="output tiles (388)" if i == j == 0 else None))
        if i == j == 0 or (i == 1 and j == 1):
            ax.add_patch(plt.Rectangle((x - m, y - m), layout.tile_size, layout.tile_size, fill=False, lw=2,
                                       color="#0072B2", label="input window (572)" if i == j == 0 else None))
ax.set_xlim(-m - 20, layout.padded_size[1] - m + 20), ax.set_ylim(layout.padded_size[0] - m + 20, -m - 20)
ax.set_aspect("equal"), ax.legend(loc="lower center", fontsize=8, bbox_to_anchor=(0.5, -0.32), ncol=2)
ax.set_title(f"{layout.num_tiles} tiles, step {layout.step} (a multiple of 16), margin {layout.margin}", fontsize=9)
fig.tight_layout()

# %% [markdown]
# Exactness, checked in float64 on a random image: tiled prediction vs one pass over the whole
# mirror-padded image.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
net64 = UNet(depth=DEPTH, base_channels=4).double().eval()
image = torch.rand(1, 150, 97, dtype=torch.float64)
tiled, lay = predict_tiled(net64, image, tile_size=TILE, return_layout=True)
Py, Px = lay.padded_size
with torch.no_grad():
    whole = net64(mirror_pad(image[None], lay.margin, Py - 150 - lay.margin, lay.margin, Px - 97 - lay.margin))[0, :, :150, :97]
print("tiles:", lay.num_tiles, " output:", tuple(tiled.shape))
print("tiled equals whole within 1e-12:", (tiled - whole).abs().max().item() < 1e-12)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"max |tiled - whole| = {(tiled - whole).abs().max().item():.1e}, bit for bit equal: {torch.equal(tiled, whole)}")

# %% [markdown]
# The two agree to float64's last bits. (Not necessarily bit for bit: the convolution routines may
# add up the same terms in a different order for a differently shaped input.) The pooling grid is
# what makes this work. Shift a tile by a single pixel and its output no longer matches — the
# poolings see different 2×2 windows:

# %%
# NBVAL_CHECK_OUTPUT
t, o, mg = lay.tile_size, lay.out_size, lay.margin
padded = mirror_pad(image[None], mg, Py - 150 - mg, mg, Px - 97 - mg)
with torch.no_grad():
    shifted = net64(padded[..., 1 : 1 + t, 1 : 1 + t])[0]
print("tile shifted by 1 pixel, max difference:", f"{(shifted[:, : o - 1, : o - 1] - whole[:, 1:o, 1:o]).abs().max().item():.3g}")

# %% [markdown]
# The point of tiling is memory: a tile's activations are bounded by the tile size, whatever the
# image size. What it costs in *time* depends on the setting, and two measurements of this course
# disagreed: an earlier version of this chapter found tiling faster than the whole image on the
# CPU, while the Performance appendix's CPU benchmark (`segedu.bench`, `tiling`) has the whole
# image faster {glue:text}`ch5_bench_every`. They did not measure the same thing. The cell below
# measures a `BIG`×`BIG` image with the narrow network that the next part trains, four ways,
# interleaved (so that a burst of load on the shared machine hits all four alike):
#
# * the whole image, mirror-padded **to the tile grid** (what this chapter measured before: the
#   padded image that the exactness check above compares against);
# * the whole image, mirror-padded to the **smallest valid input whose output covers it**
#   (`sizes.covering_input_size`: what the appendix measures);
# * overlap-tile with **one** 572 tile per forward pass (this chapter's setting);
# * overlap-tile with **four** tiles per forward pass (the appendix's setting).
#
# It also reads the appendix's stored results (`book/_data/bench/`) and prints both settings side
# by side. Peak memory is the bytes held by PyTorch's allocator during the call.

# %%
# NBVAL_IGNORE_OUTPUT
net = UNet(depth=DEPTH, base_channels=WIDTH).eval()
big = torch.rand(1, BIG, BIG)
big_layout = tile_layout((BIG, BIG), 572, DEPTH)
Py, Px = big_layout.padded_size
mg = big_layout.margin
cover = sizes.covering_input_size(BIG, DEPTH)
cm = (cover - sizes.unet_output_size(cover, DEPTH)) // 2
whole_inputs = {"whole, padded to the tile grid": mirror_pad(big[None], mg, Py - BIG - mg, mg, Px - BIG - mg),
                "whole, smallest covering input": mirror_pad(big[None], cm, cover - BIG - cm, cm, cover - BIG - cm)}
passes = {name: (lambda x=x: net(x)) for name, x in whole_inputs.items()}
passes["tiled, 1 tile per pass"] = lambda: predict_tiled(net, big, tile_size=572, batch_size=1)
passes["tiled, 4 tiles per pass"] = lambda: predict_tiled(net, big, tile_size=572, batch_size=4)
pixels = {name: x.shape[-2] * x.shape[-1] for name, x in whole_inputs.items()}
pixels["tiled, 1 tile per pass"] = pixels["tiled, 4 tiles per pass"] = big_layout.num_tiles * 572**2
with torch.no_grad():
    peak = {name: peak_memory_bytes(passes[name]) for name in ("whole, smallest covering input", "tiled, 1 tile per pass")}
    times = {name: [] for name in passes}
    for _ in range(3):
        for name, fn in passes.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
t_med = {name: float(np.median(v)) for name, v in times.items()}
print(f"{BIG}x{BIG} image, U-Net depth {DEPTH}, width {WIDTH}, {torch.get_num_threads()} thread(s), "
      f"CPU capability {torch.backends.cpu.get_cpu_capability()}, {big_layout.num_tiles} tiles of 572")
print(f"{'':<32}{'pixels computed':>16}{'time (median of 3)':>20}{'s per Mpx':>11}{'peak memory':>13}")
for name in passes:
    mem = f"{peak[name] / 2**20:.0f} MiB" if name in peak else "-"
    print(f"{name:<32}{pixels[name] / 1e6:>12.2f} Mpx{t_med[name]:>18.2f} s{t_med[name] / (pixels[name] / 1e6):>11.2f}{mem:>13}")

# the appendix's stored CPU and GPU results of the same comparison (python -m segedu bench tiling)
BENCH = Path(segedu.__file__).resolve().parents[1] / "book" / "_data" / "bench"
bench = {d: json.loads((BENCH / d / "results.json").read_text()) for d in ("cpu", "cuda")
         if (BENCH / d / "results.json").exists()}
for d, res in bench.items():
    tb = res["benchmarks"]["tiling"]
    threads = f"{tb['measured']['threads']} thread(s), " if d == "cpu" else ""
    print(f"\nappendix, {d} ({res['meta']['device_name']}): U-Net depth 4, width {tb['summary']['base_channels']}, "
          f"{threads}{tb['summary']['tile_batch_size']} tiles per pass, whole image = smallest covering input")
    for row in tb["rows"]:
        if row["whole_s"]:
            print(f"  {row['size']:>5}²: tiled {row['tiled_s']:.3g} s, whole {row['whole_s']:.3g} s, "
                  f"tiled / whole {row['tiled_s'] / row['whole_s']:.2f}")

# %%
T_GRID, T_COVER = t_med["whole, padded to the tile grid"], t_med["whole, smallest covering input"]
T_TILED, T_TILED4 = t_med["tiled, 1 tile per pass"], t_med["tiled, 4 tiles per pass"]


def than(t_a, t_b):
    """'1.71 times faster than' or '1.20 times slower than': a against b."""
    return f"{t_b / t_a:.2f} times faster than" if t_a < t_b else f"{t_a / t_b:.2f} times slower than"


glue("ch5_threads", torch.get_num_threads())
glue("ch5_isa", torch.backends.cpu.get_cpu_capability())
glue("ch5_tiles", big_layout.num_tiles)
glue("ch5_margin_here", big_layout.margin)
glue("ch5_side_grid", Py)
glue("ch5_side_cover", cover)
glue("ch5_px_ratio_grid", pixels["whole, padded to the tile grid"] / pixels["whole, smallest covering input"])
glue("ch5_px_ratio_tiles", pixels["tiled, 1 tile per pass"] / pixels["whole, smallest covering input"])
glue("ch5_t_grid", T_GRID)
glue("ch5_t_cover", T_COVER)
glue("ch5_t_tiled", T_TILED)
glue("ch5_t_tiled4", T_TILED4)
glue("ch5_tiled_vs_grid", than(T_TILED, T_GRID))
glue("ch5_tiled_vs_cover", than(T_TILED, T_COVER))
glue("ch5_tiled4_vs_tiled", than(T_TILED4, T_TILED))
for name, key in (("whole, padded to the tile grid", "grid"), ("whole, smallest covering input", "cover"),
                  ("tiled, 1 tile per pass", "tiled"), ("tiled, 4 tiles per pass", "tiled4")):
    glue(f"ch5_spm_{key}", t_med[name] / (pixels[name] / 1e6))
spm = [t_med[name] / (pixels[name] / 1e6) for name in passes]
glue("ch5_spm_spread", max(spm) / min(spm))
glue("ch5_mem_cover", peak["whole, smallest covering input"] / 2**20)
glue("ch5_mem_tiled", peak["tiled, 1 tile per pass"] / 2**20)
glue("ch5_mem_ratio", peak["whole, smallest covering input"] / peak["tiled, 1 tile per pass"])
if "cpu" in bench:
    rows = [r for r in bench["cpu"]["benchmarks"]["tiling"]["rows"] if r["whole_s"]]
    at = {r["size"]: r for r in rows}
    glue("ch5_bench_every", "at every size it measured" if all(r["whole_s"] < r["tiled_s"] for r in rows)
         else "at some sizes")
    glue("ch5_bench_threads", bench["cpu"]["benchmarks"]["tiling"]["measured"]["threads"])
    glue("ch5_bench_batch", bench["cpu"]["benchmarks"]["tiling"]["summary"]["tile_batch_size"])
    glue("ch5_bench_width", bench["cpu"]["benchmarks"]["tiling"]["summary"]["base_channels"])
    glue("ch5_bench_tiled", at[1024]["tiled_s"])
    glue("ch5_bench_whole", at[1024]["whole_s"])
    glue("ch5_bench_vs", than(at[1024]["tiled_s"], at[1024]["whole_s"]))
    glue("ch5_bench_mem_small", in_words([f"{r['size']}²" for r in rows if r["whole_peak"] < r["tiled_peak"]]))
if "cuda" in bench:
    rows = [r for r in bench["cuda"]["benchmarks"]["tiling"]["rows"] if r["whole_s"]]
    glue("ch5_gpu_name", bench["cuda"]["meta"]["device_name"])
    glue("ch5_gpu_width", bench["cuda"]["benchmarks"]["tiling"]["summary"]["base_channels"])
    glue("ch5_gpu_faster_sizes", in_words([f"{r['size']}²" for r in rows if r["tiled_s"] < r["whole_s"]]))
    glue("ch5_gpu_slower_sizes", in_words([f"{r['size']}²" for r in rows if r["tiled_s"] >= r["whole_s"]])
         if any(r["tiled_s"] >= r["whole_s"] for r in rows) else "none")

# %% [markdown]
# **Reconciling the two.** The printed settings differ in four ways, and the measurement separates
# the first two:
#
# * **What "whole image" means.** This chapter used to pad the whole image to the tile grid,
#   {glue:text}`ch5_side_grid:d`² pixels: {glue:text}`ch5_px_ratio_grid:.2f` times the pixels of the
#   smallest valid input that covers the image ({glue:text}`ch5_side_cover:d`², the appendix's
#   choice). Against the padded image the tiles were {glue:text}`ch5_tiled_vs_grid` the whole pass
#   ({glue:text}`ch5_t_tiled:.2f` s against {glue:text}`ch5_t_grid:.2f` s). Against the covering
#   input, which computes only what the image needs, they were {glue:text}`ch5_tiled_vs_cover` it
#   ({glue:text}`ch5_t_cover:.2f` s); the {glue:text}`ch5_tiles:d` tiles compute
#   {glue:text}`ch5_px_ratio_tiles:.2f` times its pixels. The second comparison is the one the
#   appendix makes.
# * **Tiles per forward pass.** The same tiles, four per pass as in the appendix, were
#   {glue:text}`ch5_tiled4_vs_tiled` one per pass ({glue:text}`ch5_t_tiled4:.2f` s).
# * **Depth and threads.** The appendix's network has depth 4 (margin 92, against
#   {glue:text}`ch5_margin_here:d` for this chapter's depth 3: a larger share of each 572 tile is
#   context) and width {glue:text}`ch5_bench_width:d`, and it ran on {glue:text}`ch5_bench_threads:d` threads; this run
#   used {glue:text}`ch5_threads:d`. Its tiled pass took {glue:text}`ch5_bench_tiled:.2f` s at 1024²,
#   {glue:text}`ch5_bench_vs` the whole image ({glue:text}`ch5_bench_whole:.2f` s).
# * **The processor.** The appendix's CPU has AVX-512 (Performance appendix); this run's kernels
#   report {glue:text}`ch5_isa`.
#
# The time per megapixel shows what the comparison turns on: it is not a constant of the network
# but varies by a factor of {glue:text}`ch5_spm_spread:.1f` between the four ways. A tile pass spends
# {glue:text}`ch5_spm_tiled:.2f` s per million pixels, four tiles at once
# {glue:text}`ch5_spm_tiled4:.2f` s, the covering whole image {glue:text}`ch5_spm_cover:.2f` s and the
# padded one {glue:text}`ch5_spm_grid:.2f` s. So "tiling is faster" or "slower" is not a property of
# overlap-tile: it depends on how much extra work each side does and on what one pass over more
# pixels costs on the machine. Memory is the dependable gain: the tiled pass needed
# {glue:text}`ch5_mem_ratio:.1f` times less peak memory than even the covering whole image
# ({glue:text}`ch5_mem_tiled:.0f` against {glue:text}`ch5_mem_cover:.0f` MiB) — for a large enough
# image: in the appendix one whole pass needed less memory than the tiles at
# {glue:text}`ch5_bench_mem_small`. On the appendix's GPU
# ({glue:text}`ch5_gpu_name`, width {glue:text}`ch5_gpu_width:d`) tiling was faster at
# {glue:text}`ch5_gpu_faster_sizes` and slower at {glue:text}`ch5_gpu_slower_sizes`.
#
# ## Touching cells and the weight map
#
# Biomedical images are full of touching objects of the same class. A pixel-wise loss hardly
# notices a missing one-pixel gap between two cells — but without the gap the two cells become
# one. The paper's answer is a [weight map](../book/glossary.md#weight-map) that makes the gap
# pixels count more:
#
# $$w(x) = w_c(x) + w_0 \exp\left(-\frac{(d_1(x) + d_2(x))^2}{2\sigma^2}\right)$$
#
# with $d_1, d_2$ the distances to the nearest and second-nearest cell, $w_0 = 10$, $\sigma \approx 5$,
# and $w_c$ balancing the class frequencies. Our synthetic `Cells` data have exactly this
# difficulty: Voronoi-shaped cells separated by 2-pixel gaps, with instance labels.

# %% alt="Left: a synthetic Cells image of touching bright cells separated by thin dark gaps. Middle: its instance labels, one colour per cell. Right: the weight map, which is largest (bright) in the narrow gaps between neighbouring cells and small inside cells."
cells = Cells(4, size=96, seed=SEED)
inst = cells.instances(0)
w = unet_weight_map(inst, w0=10, sigma=5)
fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
axes[0].imshow(cells[0][0][0], cmap="gray"), axes[0].set_title("Cells image")
axes[1].imshow(inst, cmap="tab20", interpolation="nearest"), axes[1].set_title(f"{inst.max()} instances")
im = axes[2].imshow(w, cmap="viridis"), axes[2].set_title("weight map (w0=10, σ=5)")
fig.colorbar(im[0], ax=axes[2], fraction=0.046)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()

# %%
# NBVAL_CHECK_OUTPUT
gap = (inst == 0) & ndimage.binary_dilation(inst > 0, iterations=2)  # background within 2 px of a cell
weight_means = {}
for sigma in (2, 5, 8):
    ws = unet_weight_map(inst, w0=10, sigma=sigma)
    weight_means[sigma] = (ws[inst > 0].mean(), ws[gap].mean(), ws[(inst == 0) & ~gap].mean())
    print(f"sigma {sigma}: mean weight in cells {weight_means[sigma][0]:.2f}, in gaps between cells "
          f"{weight_means[sigma][1]:.2f}, in open background {weight_means[sigma][2]:.2f}")

# %%
for sigma, (w_cells, w_gap, w_open) in weight_means.items():
    glue(f"ch5_w{sigma}_gap", float(w_gap))
    glue(f"ch5_w{sigma}_open", float(w_open))
glue("ch5_w_cells_lo", float(min(m[0] for m in weight_means.values())))
glue("ch5_w_cells_hi", float(max(m[0] for m in weight_means.values())))

# %% [markdown]
# ### Interactive: the weight-map explorer

# %%
# NBVAL_IGNORE_OUTPUT
weight_map_explorer(inst)

# %% [markdown]
# $w_0$ scales the border term; $\sigma$ sets how far from the gaps it reaches. The table above
# measures it. With $\sigma = 2$ the border term stays in the gaps (their mean weight
# {glue:text}`ch5_w2_gap:.2f`, open background {glue:text}`ch5_w2_open:.2f`); with the paper's
# $\sigma = 5$ the gaps average {glue:text}`ch5_w5_gap:.2f` and the open background
# {glue:text}`ch5_w5_open:.2f`; with $\sigma = 8$ the gaps reach {glue:text}`ch5_w8_gap:.2f` but the
# open background rises to {glue:text}`ch5_w8_open:.2f` — the term starts to spread beyond the gaps
# it is meant for. (Cells get a mean weight of {glue:text}`ch5_w_cells_lo:.2f` at every $\sigma$: the
# border term is added on background pixels only, see the `border_on` argument, and here the two
# classes are almost equally frequent, so $w_c \approx 1$.)
#
# ### Elastic deformation
#
# The paper's other tool for small training sets: a smooth random deformation, from displacements
# on a coarse 3×3 grid (standard deviation 10 pixels) interpolated bicubically to every pixel,
# applied identically to image and labels. `Cells(augment=True)` draws a new one every time an
# item is read:

# %% alt="One Cells image and three elastic deformations of it: the same cells, smoothly bent and stretched."
aug = Cells(1, size=96, seed=SEED, augment=True)
fig, axes = plt.subplots(1, 4, figsize=(9, 2.5))
axes[0].imshow(Cells(1, size=96, seed=SEED)[0][0][0], cmap="gray"), axes[0].set_title("original", fontsize=9)
for k in range(1, 4):
    axes[k].imshow(aug[0][0][0], cmap="gray"), axes[k].set_title(f"elastic deformation {k}", fontsize=9)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
fig.tight_layout()

# %% [markdown]
# ## Summary
#
# * The paper's U-Net has {glue:text}`ch5_n_convs:d` convolutional layers and {glue:text}`ch5_params`
#   parameters (counted, and in `tests/test_unet.py` also computed from the layer shapes alone); a
#   572×572 input gives a 388×388 output because every unpadded convolution trims the border.
# * 572 → 388 is the receptive field at work: every output pixel sees at least
#   {glue:text}`ch5_margin:d` pixels of context on each side, and the 572 window is exactly the union
#   of its 388 outputs' receptive fields. Overlap-tile feeds each output tile that context.
# * Valid inputs are exactly $x = 16k + 124$ with $k \ge 4$ — measured by running the network on
#   every size from 100 to 800. The notes' "k must be even" is not needed: the crops
#   ({glue:text}`ch5_crops_side` pixels per side) are the same for every $k$. (The notes' derivation
#   also drops a $k$: $2^4 k + 4(\dots)$, not $2^4 + 4(\dots)$.)
# * Overlap-tile with tiles on the pooling grid reproduces whole-image inference exactly, with
#   memory bounded by the tile; a tile shifted by one pixel does not. Whether it is also faster
#   depends on the setting (what the whole pass is padded to, tiles per pass, depth, threads).
# * The weight map puts the loss on the gaps between touching cells; $\sigma$ decides how far it
#   reaches.
#
# Next: [U-Net in practice](05b_unet_training.ipynb) trains the network with and without the
# weight map, compares concatenation with summation skips, and segments the real EM slices.
#
# ## Exercises
#
# 1. **The rule for depth 3.** Derive the valid input sizes of a depth-3 U-Net by hand, then check
#    them with `sizes.valid_input_sizes(depth=3)`.
# 2. **Same padding.** Build `UNet(padding="same")`. Which input sizes does it accept, and how
#    many parameters does it have compared with the valid version?
# 3. **The weight map's σ.** For two cells separated by a gap of $g$ pixels, what weight does the
#    centre of the gap get? Compare with `unet_weight_map` on a tiny hand-made label map.

# %% tags=["hide-cell", "solution"]
# Solution 1: per level -4 then /2 three times, then -4 at the bottom: x = 8k + 60 with k the bottom
# size; k must leave positive sizes on the way up (k >= 4 here too).
print([8 * k + 60 for k in range(4, 10)])
print(sizes.valid_input_sizes(depth=3, max_size=140))

# %% tags=["hide-cell", "solution"]
# Solution 2: any side divisible by 16; padding changes no weight shapes, so the parameter count is equal.
same = UNet(padding="same")
print(sum(p.numel() for p in same.parameters()) == sum(p.numel() for p in UNet().parameters()))
with torch.no_grad():
    print(UNet(base_channels=2, padding="same")(torch.zeros(1, 1, 96, 80)).shape)

# %% tags=["hide-cell", "solution"]
# Solution 3: at the centre of a gap of g pixels, d1 = d2 = (g + 1) / 2, so the term is w0 exp(-(g+1)^2 / (2 sigma^2)).
g = 3
toy = np.zeros((1, 2 + g + 2), np.int64)
toy[0, :2], toy[0, 2 + g :] = 1, 2
centre = 2 + g // 2
print(unet_weight_map(toy, class_balance=False)[0, centre], 1 + 10 * np.exp(-((g + 1) ** 2) / (2 * 5**2)))
