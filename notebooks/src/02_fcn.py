# %% [markdown]
# # Fully convolutional networks
#
# Chapter 1 ended with a network made of convolutions only: it accepts an image of any size and
# returns a score for every class at every pixel, all at once. This chapter trains such
# [fully convolutional networks](../book/glossary.md#fully-convolutional-network) (FCNs)
# {cite}`long2015fcn`. We write down the loss — the
# [pixel-wise cross entropy](../book/glossary.md#pixel-wise-cross-entropy), with ignored pixels
# and class weights — and measure why every segmentation network
# [downsamples](../book/glossary.md#downsampling): a stack that keeps the full resolution needs
# far more memory for training. Then we build FCN-32s, FCN-16s and FCN-8s, which differ only in
# how many finer predictions they add back, train all three and compare them.
#
# [Open this chapter in Colab](https://colab.research.google.com/github/segedu/segedu/blob/main/notebooks/02_fcn.ipynb)

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
from scipy import ndimage
from torch.nn import functional as F

from segedu import memory, metrics, viz
from segedu.data import Shapes
from segedu.losses import pixel_cross_entropy
from segedu.models import FCN
from segedu.train import fit, predict, resolve_device
from segedu.widgets import Explorer

# %%
# Configuration. The defaults run this chapter in a few minutes on 2 CPU cores.
# On a GPU: SIZE = 128, STEPS = 3000, the default FCN widths (drop FCN_KW) or FCN.vgg16().
SEED = 0
SIZE = 64                                  # Shapes images are SIZE x SIZE
N_TRAIN, N_TEST = 400, 64
STEPS = 600                                # optimizer steps per FCN variant
BATCH = 8
LR = 3e-3
FCN_KW = dict(widths=(8, 16, 32, 64, 64), fc_channels=128, norm="batch")  # a narrow FCN (see the text)
MEMORY_SIZES = [64, 128, 256]              # input sides for the memory measurement
MEMORY_DEPTHS = [3, 5, 7, 9]               # convolutions per stack
MEMORY_WIDTH = 16                          # channels of the full-resolution layers
DEVICE = resolve_device("auto")
_ = torch.manual_seed(SEED)
print("device:", DEVICE)

# %% [markdown]
# ## One score per class and pixel
#
# An FCN maps a batch of images `[N, C, H, W]` to *logits* `[N, K, H, W]`: $K$ scores for every
# pixel. The target is a mask `[N, H, W]` of class indices. No fully connected layer fixes the
# input size, so the same network takes other sizes too:

# %%
# NBVAL_CHECK_OUTPUT
train_set, test_set = Shapes(N_TRAIN, size=SIZE, seed=SEED), Shapes(N_TEST, size=SIZE, seed=SEED + 1)
images = torch.stack([test_set[i][0] for i in range(N_TEST)])
masks = torch.stack([test_set[i][1] for i in range(N_TEST)])
model = FCN(num_classes=4, variant="8s", **FCN_KW).eval()
with torch.no_grad():
    logits = model(images[:8])
    other = model(torch.rand(1, 3, 50, 70))
print("images:", tuple(images[:8].shape), " logits:", tuple(logits.shape), " target:", tuple(masks[:8].shape),
      masks.dtype)
print("a 50x70 image gives logits", tuple(other.shape))

# %% [markdown]
# ## The loss: cross entropy at every pixel
#
# Each pixel is its own classification problem: softmax over its $K$ scores, and the negative
# log-probability of its true class. The loss is the mean over all pixels of the batch,
#
# $$L = \frac{1}{|P|}\sum_{(n, y, x) \in P} -\log \frac{e^{z_{n, t, y, x}}}{\sum_{k} e^{z_{n, k, y, x}}},
# \qquad t = \text{target}[n, y, x].$$
#
# `segedu.losses.pixel_cross_entropy` computes it (with the options explained below):

# %%
print(inspect.getsource(pixel_cross_entropy)[inspect.getsource(pixel_cross_entropy).index("    if logits.dim()"):])

# %% [markdown]
# We check it against the definition, one pixel at a time, and against the "flatten" view: move
# the class axis last and treat the $N \cdot H \cdot W$ pixels as one big batch of ordinary
# classification problems.

# %%
# NBVAL_CHECK_OUTPUT
z, t = logits[:2, :, :16, :16].double(), masks[:2, :16, :16]
by_hand = torch.stack([-torch.log_softmax(z[n, :, y, x], 0)[t[n, y, x]]
                       for n in range(2) for y in range(16) for x in range(16)]).mean()
flat = F.cross_entropy(z.permute(0, 2, 3, 1).reshape(-1, 4), t.reshape(-1))
print("pixels:", t.numel(), " logits per pixel:", z.shape[1])
print("by hand == pixel_cross_entropy:", torch.allclose(by_hand, pixel_cross_entropy(z, t)))
print("flattened F.cross_entropy == pixel_cross_entropy:", torch.allclose(flat, pixel_cross_entropy(z, t)))

# %% [markdown]
# **Ignored pixels.** Real annotations leave some pixels unlabelled (object borders in PASCAL VOC
# are marked 255, "don't care"). Pixels whose label equals `ignore_index` are left out of both the
# sum and the count; their scores get no gradient. We mark the pixels on either side of every
# class boundary as ignored:

# %%
# NBVAL_CHECK_OUTPUT
t_ign = masks[:8].clone()
boundary = torch.from_numpy(np.stack([ndimage.morphological_gradient(m.numpy(), size=3) > 0 for m in t_ign]))
t_ign[boundary] = 255
z = logits.detach().clone().requires_grad_(True)
loss_ign = pixel_cross_entropy(z, t_ign, ignore_index=255)
loss_ign.backward()
kept = t_ign != 255
per_pixel = F.cross_entropy(z.detach(), masks[:8], reduction="none")
print(f"ignored pixels: {int((~kept).sum())} of {kept.numel()}")
print("loss == mean over the kept pixels only:", torch.allclose(loss_ign, per_pixel[kept].mean()))
print("gradient on ignored pixels is zero:", bool((z.grad.permute(0, 2, 3, 1)[~kept] == 0).all()))

# %% [markdown]
# **Class weights.** Background covers most of a `Shapes` image, so a network that predicts
# "background" everywhere already has a small loss. Weights per class scale each pixel's term by
# the weight of its true class; the loss becomes the weighted mean
# $\sum_i w_{t_i} \ell_i / \sum_i w_{t_i}$ (PyTorch's convention). A common choice is the inverse
# class frequency:

# %%
# NBVAL_CHECK_OUTPUT
counts = torch.bincount(torch.stack([train_set[i][1] for i in range(100)]).flatten(), minlength=4).double()
freq = counts / counts.sum()
class_weights = (1 / freq) / (1 / freq).sum() * 4  # mean weight 1
print("class frequencies:", [f"{Shapes.CLASSES[k]} {freq[k]:.3f}" for k in range(4)])
print("inverse-frequency weights:", [round(float(w), 2) for w in class_weights])
w = class_weights[masks[:8]]
by_formula = (w * per_pixel.double()).sum() / w.sum()
loss_w = pixel_cross_entropy(logits.double(), masks[:8], class_weights=class_weights)
print("weighted loss == sum(w * l) / sum(w):", torch.allclose(loss_w, by_formula))

# %% [markdown]
# ## Why downsample? Activation memory, measured
#
# A network that never downsamples is the simplest FCN: 3×3 convolutions at full resolution all
# the way, then a 1×1 classifier. Its cost is memory. To compute gradients, autograd keeps the
# activations of the forward pass until the backward pass uses them. We measure exactly what it
# keeps: `segedu.memory.activation_bytes` registers `torch.autograd.graph.saved_tensors_hooks` and
# adds up the bytes of every tensor autograd saves (each storage once; the input image and the
# weights are not activations).

# %%
print(inspect.getsource(memory.activation_bytes))

# %% [markdown]
# We compare two stacks with the same number of 3×3 convolutions (`depth`): `full_resolution_stack`
# keeps `width` = 16 channels at full resolution; `encoder_decoder_stack` keeps one convolution at
# full resolution, halves the size (and doubles the channels) with stride-2 convolutions, and comes
# back with transposed convolutions (chapter 4). Both end in the same 1×1 classifier:

# %%
print(memory.full_resolution_stack(5, MEMORY_WIDTH))
print(memory.encoder_decoder_stack(5, MEMORY_WIDTH))

# %% [markdown]
# The arithmetic: each convolution is followed by an in-place ReLU whose output is saved (and is
# the next convolution's saved input), so the full-resolution stack saves
# $\text{depth} \times \text{width} \times H \times W$ float32 values. In the encoder–decoder a map
# at $1/2^i$ of the side with $2^i$ times the channels holds only $2^{-i}$ of those values
# (`memory.expected_activation_bytes`). We measure both stacks at several sizes and depths
# (batch 1) and compare with the arithmetic. On a GPU the notebook also measures the peak memory of
# a forward + backward pass with `torch.cuda.max_memory_allocated` (which includes gradients and
# workspaces as well).

# %%
# NBVAL_CHECK_OUTPUT
rows = []
for depth in MEMORY_DEPTHS:
    full_net = memory.full_resolution_stack(depth, MEMORY_WIDTH)
    ed_net = memory.encoder_decoder_stack(depth, MEMORY_WIDTH)
    for side in MEMORY_SIZES:
        x = torch.rand(1, 3, side, side)
        row = dict(depth=depth, side=side,
                   full=memory.activation_bytes(full_net, x), ed=memory.activation_bytes(ed_net, x),
                   full_expected=memory.expected_activation_bytes("full", depth, MEMORY_WIDTH, side),
                   ed_expected=memory.expected_activation_bytes("encoder_decoder", depth, MEMORY_WIDTH, side))
        if torch.cuda.is_available():
            row["full_cuda"] = memory.cuda_peak_bytes(full_net, x)
            row["ed_cuda"] = memory.cuda_peak_bytes(ed_net, x)
        rows.append(row)
MB = 2**20
print(f"{'depth':>5} {'side':>5} {'full (MB)':>10} {'enc-dec (MB)':>13} {'full/enc-dec':>13} {'= arithmetic':>13}")
for r in rows:
    same = r["full"] == r["full_expected"] and r["ed"] == r["ed_expected"]
    print(f"{r['depth']:>5} {r['side']:>5} {r['full'] / MB:>10.2f} {r['ed'] / MB:>13.2f} "
          f"{r['full'] / r['ed']:>13.2f} {str(same):>13}")
print("measured == arithmetic in every row:",
      all(r["full"] == r["full_expected"] and r["ed"] == r["ed_expected"] for r in rows))

# %% alt="Left: measured saved activations against input side on log axes, for full-resolution stacks and encoder-decoders of depth 3 to 9; all lines grow with the number of pixels, the full-resolution ones faster with depth. Right: the full-resolution over encoder-decoder memory ratio at 256 by 256 rising from 1.2 at depth 3 to 2.4 at depth 9, the measured points on the arithmetic's crosses."
# NBVAL_IGNORE_OUTPUT
if torch.cuda.is_available():
    print("CUDA peak of forward + backward (MB), full vs encoder-decoder:")
    for r in rows:
        print(f"  depth {r['depth']} side {r['side']}: {r['full_cuda'] / MB:.1f} vs {r['ed_cuda'] / MB:.1f}")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for i, depth in enumerate(MEMORY_DEPTHS):
    rs = [r for r in rows if r["depth"] == depth]
    ax1.loglog([r["side"] for r in rs], [r["full"] / MB for r in rs], "o-", color=f"C{i}", label=f"full, depth {depth}")
    ax1.loglog([r["side"] for r in rs], [r["ed"] / MB for r in rs], "s--", color=f"C{i}", label=f"enc-dec, depth {depth}")
ax1.minorticks_off()
ax1.set_xticks(MEMORY_SIZES, [str(s) for s in MEMORY_SIZES])
ax1.set_xlabel("input side (pixels)"), ax1.set_ylabel("saved activations (MB, measured)")
ax1.set_title("activation memory grows with the pixels", fontsize=10)
ax1.legend(fontsize=7, ncol=2)
side = MEMORY_SIZES[-1]
rs = [r for r in rows if r["side"] == side]
ax2.plot([r["depth"] for r in rs], [r["full"] / r["ed"] for r in rs], "o-", label="measured")
ax2.plot([r["depth"] for r in rs], [r["full_expected"] / r["ed_expected"] for r in rs], "x", ms=10, color="k",
         label="arithmetic")
ax2.set_xlabel("depth (3x3 convolutions)"), ax2.set_ylabel("full / encoder-decoder")
ax2.set_title(f"memory ratio at {side}x{side}", fontsize=10)
ax2.legend()
fig.tight_layout()

# %% [markdown]
# **What the measurement shows.** The bytes autograd saved equal the arithmetic exactly, in every
# row. Both stacks grow with the number of pixels: doubling the side multiplies the memory by 4.
# The full-resolution stack also grows linearly with depth — at 256×256 every 16-channel layer
# saves 4 MB (16 × 256² × 4 bytes), so depth 9 saves 36 MB. The encoder–decoder grows much more
# slowly with depth: 10, 13, 14.5 and 15.25 MB at depths 3, 5, 7 and 9, a geometric series that
# approaches 16 MB (4 × width × H × W values), because every extra level works on a quarter of
# the pixels with twice the channels. So the ratio grows roughly like depth / 4: 1.2 at depth 3,
# 2.36 at depth 9. The claim holds, with a nuance the measurement adds: for these shallow stacks
# the saving is modest, because the encoder–decoder still has full-resolution layers at both ends;
# it becomes large for deep networks, the regime of real segmentation networks (exercise 1 does
# the arithmetic for VGG16's 13 convolutions).
#
# ## FCN-32s, FCN-16s and FCN-8s
#
# The FCN paper turns VGG16 {cite}`simonyan2015vgg` into a fully convolutional network: its five
# stages end in max-pooling (`pool1` … `pool5`, at 1/2 … 1/32 of the input), its fully connected
# layers become convolutions (`fc6`, `fc7`), and a 1×1 convolution scores the classes at 1/32.
# A learnable upsampling (a transposed convolution initialised to bilinear interpolation, chapter
# 4) brings the scores back to the input size. That is **FCN-32s**. Predictions made from 1/32
# are coarse, so the "skip" architecture adds finer ones, by **summation**:
#
# * **FCN-16s**: upsample the 1/32 scores ×2, add a 1×1 score layer on `pool4` (1/16), upsample ×16;
# * **FCN-8s**: additionally upsample ×2 and add a score layer on `pool3` (1/8), upsample ×8.
#
# The forward pass of `segedu.models.FCN` reads like that list:

# %%
print(inspect.getsource(FCN.forward))

# %% [markdown]
# The default `FCN` keeps VGG16's layer counts at a quarter of its widths; here we narrow it once
# more (`FCN_KW` in the configuration) so that three networks train on a CPU in a few minutes,
# and add batch normalisation because we train from scratch, not from ImageNet weights as the
# paper does. `FCN.vgg16()` builds the paper's widths (134 M parameters). The skip score layers
# start at zero, so a new skip starts by changing nothing — as in the paper, which trains
# FCN-16s starting from FCN-32s. The shapes that meet at each sum, for a 64×64 input:

# %%
# NBVAL_CHECK_OUTPUT
seen = {}
model = FCN(4, "8s", **FCN_KW).eval()
for name in ("score_fr", "upscore2", "score_pool4", "upscore_pool4", "score_pool3", "upscore_final"):
    getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape)))
with torch.no_grad():
    model(images[:1])
for name, shape in seen.items():
    print(f"{name:<14} {shape}")
print("skip score layers start at zero:",
      all(bool((getattr(model, n).weight == 0).all()) for n in ("score_pool4", "score_pool3")))
for variant in ("32s", "16s", "8s"):
    print(f"FCN-{variant}: {sum(p.numel() for p in FCN(4, variant, **FCN_KW).parameters()):,} parameters")
with torch.device("meta"):  # the paper's network, without allocating its weights
    print(f"FCN.vgg16(21 classes): {sum(p.numel() for p in FCN.vgg16(21).parameters()) / 1e6:.1f} M parameters")

# %% [markdown]
# On 64×64 images `pool5` is only 2×2: FCN-32s has to paint the whole image from four score
# vectors. We train the three variants with the same data, seed, optimizer and number of steps.

# %% alt="Training loss per epoch of FCN-32s, FCN-16s and FCN-8s on Shapes: over 12 epochs FCN-8s falls lowest (about 0.08), FCN-16s to about 0.15, FCN-32s only to about 0.37."
# NBVAL_IGNORE_OUTPUT
trained, histories = {}, {}
for variant in ("32s", "16s", "8s"):
    torch.manual_seed(SEED)
    net = FCN(4, variant, **FCN_KW)
    histories[f"FCN-{variant}"] = fit(net, train_set, epochs=10_000, max_steps=STEPS, batch_size=BATCH, lr=LR,
                                      device=DEVICE, seed=SEED, progress=False)
    trained[variant] = net.cpu().eval()
    print(f"FCN-{variant}: trained {STEPS} steps in {histories[f'FCN-{variant}'].seconds:.0f} s, "
          f"final loss {histories[f'FCN-{variant}'].epochs[-1]['loss']:.3f}")
fig = viz.plot_history(histories, keys=("loss",))

# %% [markdown]
# We score the test images with mean IoU and, for boundary quality, with the pixel accuracy in a
# thin band around the true class boundaries (a "trimap" accuracy: all pixels within 2 pixels of
# a change of class).


# %%
def boundary_band(mask: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Pixels within `radius` of a class boundary (where a (2r+1)^2 window sees two classes)."""
    m = mask.numpy()
    size = (1, 2 * radius + 1, 2 * radius + 1)
    return torch.from_numpy(ndimage.maximum_filter(m, size=size) != ndimage.minimum_filter(m, size=size))


band = boundary_band(masks)
scores = {v: predict(trained[v], images) for v in trained}

# %%
# NBVAL_IGNORE_OUTPUT
print(f"boundary band: {band.float().mean():.1%} of the test pixels")
print(f"{'model':<8} {'mIoU':>6} {'pixel acc':>10} {'boundary acc':>13}")
results = {}
for v, s in scores.items():
    pred = metrics.as_labels(s)
    results[v] = (metrics.mean_iou(s, masks, 4), metrics.pixel_accuracy(s, masks),
                  float((pred == masks)[band].float().mean()))
    print(f"FCN-{v:<4} {results[v][0]:>6.3f} {results[v][1]:>10.3f} {results[v][2]:>13.3f}")

# %% alt="Four Shapes test images, their ground truth and the predictions of FCN-32s, FCN-16s and FCN-8s: FCN-32s finds little more than blobs, FCN-16s finds most shapes with rounded outlines, FCN-8s gives the sharpest outlines."
# NBVAL_IGNORE_OUTPUT
show = [0, 1, 2, 3]
fig, axes = plt.subplots(len(show), 5, figsize=(10, 2.1 * len(show)))
for row, i in enumerate(show):
    axes[row, 0].imshow(viz.to_image(images[i]))
    axes[row, 1].imshow(viz.colorize(masks[i]), interpolation="nearest")
    for col, v in enumerate(("32s", "16s", "8s"), start=2):
        axes[row, col].imshow(viz.colorize(metrics.as_labels(scores[v][i:i + 1])[0]), interpolation="nearest")
        if row == 0:
            axes[row, col].set_title(f"FCN-{v}", fontsize=10)
axes[0, 0].set_title("image", fontsize=10), axes[0, 1].set_title("ground truth", fontsize=10)
for ax in axes.flat:
    ax.set_xticks([]), ax.set_yticks([])
viz.class_legend(fig, Shapes.CLASSES, loc="lower center")
fig.tight_layout(rect=(0, 0.04, 1, 1))

# %% [markdown]
# **What the measurements show.** Each finer skip helps, clearly. In the run printed above, mean
# IoU rises from 0.28 (FCN-32s) to 0.63 (FCN-16s) and 0.75 (FCN-8s), and the accuracy in the
# boundary band from 0.51 to 0.65 and 0.77 (the exact numbers move by several hundredths between
# runs with a different number of CPU threads or memory format; the order has not changed in the
# runs we made). The pictures show why: FCN-32s, which paints a 64×64
# image from a 2×2 score map, mostly predicts background and misses the small shapes; FCN-16s
# finds the objects, with ragged outlines and mixed classes; FCN-8s gives compact shapes in the
# right places, mostly of the right class. The paper reports the same ordering on PASCAL VOC 2011 (mean IU 59.4, 62.4 and
# 62.7) with much smaller gaps: its images are several hundred pixels wide, so even 1/32 keeps a
# useful grid, and it fine-tunes each variant from the coarser one. Here, at 64×64, a stride of 32
# leaves almost no spatial resolution, and the skips are what bring it back.
#
# ## Interactive: the three variants on the test images
#
# Choose a variant and a test image. In the rendered book the pictures were all drawn when the
# notebook ran and the controls switch between them in your browser; in Jupyter or Colab the demo
# is live.

# %%
# NBVAL_IGNORE_OUTPUT
def render_variant(variant, image):
    pred = metrics.as_labels(scores[variant][image:image + 1])[0]
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.7))
    axes[0].imshow(viz.to_image(images[image])), axes[0].set_title("image", fontsize=9)
    axes[1].imshow(viz.colorize(masks[image]), interpolation="nearest"), axes[1].set_title("ground truth", fontsize=9)
    axes[2].imshow(viz.colorize(pred), interpolation="nearest")
    axes[2].set_title(f"FCN-{variant}: IoU {metrics.mean_iou(pred[None], masks[image:image + 1], 4):.2f}", fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


Explorer(render_variant, {"variant": ["32s", "16s", "8s"], "image": list(range(8))},
         title="FCN-32s / 16s / 8s predictions")

# %% [markdown]
# ## Summary
#
# * An FCN outputs logits `[N, K, H, W]`; the loss is the cross entropy of every pixel, averaged —
#   ignored pixels leave both the sum and the count, class weights turn it into a weighted mean.
# * The activations autograd saves for backward grow with the pixels: measured, exactly
#   depth × width × H × W values for a full-resolution stack, and at most about 4 × width × H × W
#   for an encoder–decoder, whatever its depth.
# * FCN-32s, 16s and 8s share the backbone and differ only in the skips they sum in at 1/16 and
#   1/8; the measurements above compare what those skips buy.
#
# ## Exercises
#
# 1. **The paper's network at full resolution.** Use `memory.expected_activation_bytes` (checked
#    above against the measurement) to compute the activation memory of a stack of VGG16's 13
#    convolutions, kept at 64 channels and at full resolution, for one 500×500 image. How does
#    it compare with the 1/2 … 1/32 pyramid of the real VGG16?
# 2. **Ignored pixels are not background.** Compute the loss of an untrained FCN with the
#    boundary band ignored, and with the band labelled as background instead. Which is larger,
#    and why?
# 3. **Coarse maps.** What are the sizes of the score maps at 1/32, 1/16 and 1/8 for a 100×100
#    input, and how does `FCN.forward` handle a side that is not a multiple of 32?

# %% tags=["hide-cell", "solution"]
# Solution 1: a full-resolution VGG16 keeps 13 x 64 x 500 x 500 float32 values (about 0.8 GB per
# image, before gradients); the real VGG16 keeps 64 channels only at full resolution and halves the
# side while at most doubling the channels at every pooling.
full = memory.expected_activation_bytes("full", 13, 64, 500)
vgg = sum(n * c * (500 // 2**i) ** 2 * 4 for i, (n, c) in enumerate(zip((2, 2, 3, 3, 3), (64, 128, 256, 512, 512))))
print(f"full resolution: {full / 2**30:.2f} GiB;  VGG16's pyramid (conv outputs only): {vgg / 2**30:.2f} GiB")

# %% tags=["hide-cell", "solution"]
# Solution 2: (an untrained FCN predicts all-zero scores — its score layers start at zero — so
# every pixel costs log 4 and both losses are equal; use the trained FCN-8s.) Labelling the band as
# background gives its object-side pixels a label that contradicts the image, and the network
# disagrees with it: the loss goes up. Ignoring the band removes these uncertain pixels instead.
with torch.no_grad():
    z = trained["8s"](images[:8])
as_background = masks[:8].clone()
as_background[boundary] = 0
print(f"band ignored: {pixel_cross_entropy(z, t_ign, ignore_index=255):.4f}   "
      f"band as background: {pixel_cross_entropy(z, as_background):.4f}")

# %% tags=["hide-cell", "solution"]
# Solution 3: the input is zero-padded to 128 x 128 (the next multiple of 32), so the maps are
# 4x4, 8x8 and 16x16; the output is cropped back to 100 x 100.
seen.clear()
with torch.no_grad():
    out = model(torch.rand(1, 3, 100, 100))
print({k: v[-2:] for k, v in seen.items()}, "->", tuple(out.shape))
