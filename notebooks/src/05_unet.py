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

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage

from segedu import sizes, viz
from segedu.data import Cells
from segedu.losses import unet_weight_map
from segedu.memory import peak_memory_bytes
from segedu.models import UNet
from segedu.tiling import mirror_pad, predict_tiled, tile_layout
from segedu.widgets import unet_size_calculator, weight_map_explorer

# %%
# Configuration. The defaults run this part in about a minute on 2 CPU cores.
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

# %% [markdown]
# **What the enumeration shows.** The network accepts exactly the sizes $x = 16k + 124$ with
# $k \ge 4$ (smaller $k$ makes a feature map vanish on the way up): 188, 204, 220, …, 572, ….
# The notes' extra condition is **not** needed: odd $k$ (204, 236, …) work with even poolings and
# symmetric crops. The last printed line says why: the crops are the *same* for every working size
# — 8, 32, 80 and 176 pixels, i.e. 4, 16, 40 and 88 per side. At level $\ell$ both the skip and
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
# image size. We measure peak memory (bytes held by PyTorch's allocator during the call) and time
# for whole-image vs tiled inference of a `BIG`×`BIG` image with the narrow network that the next
# part trains (the benchmark suite goes to 2048² and 4096²: see the Performance appendix).

# %%
# NBVAL_IGNORE_OUTPUT
net = UNet(depth=DEPTH, base_channels=WIDTH).eval()
big = torch.rand(1, BIG, BIG)
big_layout = tile_layout((BIG, BIG), 572, DEPTH)
Py, Px = big_layout.padded_size
mg = big_layout.margin
big_padded = mirror_pad(big[None], mg, Py - BIG - mg, mg, Px - BIG - mg)
with torch.no_grad():
    mem_whole = peak_memory_bytes(lambda: net(big_padded))
    mem_tiled = peak_memory_bytes(lambda: predict_tiled(net, big, tile_size=572, batch_size=1))
    times = {"whole": [], "tiled": []}
    for _ in range(3):  # interleaved, so that a burst of load on the machine hits both alike
        t0 = time.perf_counter(); net(big_padded); times["whole"].append(time.perf_counter() - t0)
        t0 = time.perf_counter(); predict_tiled(net, big, tile_size=572, batch_size=1); times["tiled"].append(time.perf_counter() - t0)
t_whole, t_tiled = np.median(times["whole"]), np.median(times["tiled"])
print(f"{BIG}x{BIG} image, whole: peak {mem_whole / 2**20:7.0f} MiB, {t_whole:.2f} s (median of 3)")
print(f"{BIG}x{BIG} image, tiled (572): peak {mem_tiled / 2**20:7.0f} MiB, {t_tiled:.2f} s  ({big_layout.num_tiles} tiles)")
print(f"whole / tiled: memory {mem_whole / mem_tiled:.1f}x, time {t_whole / t_tiled:.2f}x")

# %% [markdown]
# In the run that produced this page the tiled pass needed 6.9 times less peak memory (111 against
# 758 MiB at 1024²) and was even faster (2.74 s against 4.70 s). That the tiles recompute their
# overlapping margins costs less here than what the whole-image pass loses to its large
# intermediate tensors on a CPU. On a GPU the balance is different: on an H100 (Performance
# appendix) tiling was faster up to 1024² but 1.27 times slower at 2048². The printed numbers are
# the measurement; the explanation is our reading of it.
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
for sigma in (2, 5, 8):
    ws = unet_weight_map(inst, w0=10, sigma=sigma)
    print(f"sigma {sigma}: mean weight in cells {ws[inst > 0].mean():.2f}, in gaps between cells {ws[gap].mean():.2f}, "
          f"in open background {ws[(inst == 0) & ~gap].mean():.2f}")

# %% [markdown]
# ### Interactive: the weight-map explorer

# %%
# NBVAL_IGNORE_OUTPUT
weight_map_explorer(inst)

# %% [markdown]
# $w_0$ scales the border term; $\sigma$ sets how far from the gaps it reaches. The table above
# measures it. With $\sigma = 2$ the border term stays in the gaps (their mean weight 1.63, open
# background 1.01); with the paper's $\sigma = 5$ the gaps average 6.13 and the open background
# 1.29; with $\sigma = 8$ the gaps reach 8.06 but the open background rises to 1.90 — the term
# starts to spread beyond the gaps it is meant for. (Cells get weight 1.00 throughout: the border
# term is added on background pixels only, see the `border_on` argument, and here the two classes
# are almost equally frequent, so $w_c \approx 1$.)
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
# * The paper's U-Net has 23 convolutional layers and 31,030,658 parameters (counted, and in
#   `tests/test_unet.py` also computed from the layer shapes alone); a 572×572 input gives a
#   388×388 output because every unpadded convolution trims the border.
# * Valid inputs are exactly $x = 16k + 124$ with $k \ge 4$ — measured by running the network on
#   every size from 100 to 800. The notes' "k must be even" is not needed: the crops (4, 16, 40,
#   88 pixels per side) are the same for every $k$.
# * Overlap-tile with tiles on the pooling grid reproduces whole-image inference exactly, with
#   memory bounded by the tile; a tile shifted by one pixel does not.
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
