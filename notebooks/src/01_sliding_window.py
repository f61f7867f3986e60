# %% [markdown]
# # Semantic segmentation and the brute-force sliding window
#
# Segmentation means labelling every pixel. The most direct way to do that with the image
# classifiers we already know is to *slide a window*: classify the patch around each pixel and
# give its class to the pixel. In this chapter we build exactly that, measure how much work it
# wastes, and then remove the waste by rewriting the classifier as a
# [fully convolutional network](../book/glossary.md#fully-convolutional-network) — the step that
# starts the rest of the course.
#
# [Open this chapter in Colab](https://colab.research.google.com/github/segedu/segedu/blob/main/notebooks/01_sliding_window.ipynb)
# (Runtime → Change runtime type → GPU for speed; everything also runs on a laptop CPU.)

# %%
# Setup: install segedu only if it is missing (e.g. on Colab); a local checkout already has it.
try:
    import segedu
except ImportError:
    %pip install -q "segedu @ git+https://github.com/segedu/segedu"

# %%
import inspect
import json
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage
from torch.nn import functional as F

from segedu import metrics, viz
from segedu.data import Shapes
from segedu.glue import glue
from segedu.models import SlidingWindowClassifier
from segedu.models.sliding_window import CenterPixelPatches
from segedu.train import fit, resolve_device
from segedu.widgets import Explorer

# %%
# Configuration. The defaults run this chapter in about a minute on 2 CPU cores.
# On a GPU, for a better classifier: N_PATCHES = 40_000, EPOCHS = 10, WIDTH = 32.
SEED = 0
SIZE = 64                          # Shapes images are SIZE x SIZE
N_TRAIN_IMAGES = 200               # images the training patches are cut from
N_PATCHES = 12_000                 # training patches (class-balanced)
PATCH = 25                         # the window: PATCH x PATCH pixels around the centre
WIDTH = 16                         # channels of the 3x3 convolutions
BOTTLENECK = 16                    # channels of the 1x1 squeeze before the fully connected layers
EPOCHS, BATCH, LR = 3, 32, 1e-3    # Adam, as in segedu.train.fit
N_DEMO = 3                         # test images segmented by the sliding window
TIMING_SIZES = [32, 64, 96]        # image sizes for the sliding-window vs dense timing (GPU: add 128, 256)
DEVICE = resolve_device("auto")
torch.manual_seed(SEED)
print("device:", DEVICE)

# %% [markdown]
# ## What semantic segmentation is
#
# Our data set, `Shapes`, is synthetic: circles, squares and triangles on a textured
# background. Shape colours are drawn independently of the class, so a pixel's colour alone says
# nothing about its class — a model has to look at the outline around it.
#
# The same image supports four different tasks. *Classification* answers "what is in the image?",
# *detection* draws a box around each object, [semantic segmentation](../book/glossary.md#semantic-segmentation)
# labels every pixel with its class, and [instance segmentation](../book/glossary.md#instance-segmentation)
# also tells objects of the same class apart. The figure below derives all four from one
# `Shapes` mask (boxes and instances from connected components).

# %%
# NBVAL_CHECK_OUTPUT
train_images = Shapes(N_TRAIN_IMAGES, size=SIZE, seed=SEED)
test_images = Shapes(16, size=SIZE, seed=SEED + 1)
# Show an image with several objects of at least two classes (the first such one).
for idx in range(len(train_images)):
    image, mask = train_images[idx]
    if len(mask.unique()) >= 3 and ndimage.label(mask.numpy() > 0)[1] >= 3:
        break
print("example image index:", idx)
print("image:", tuple(image.shape), image.dtype, " mask:", tuple(mask.shape), mask.dtype)
print("classes present:", [Shapes.CLASSES[c] for c in mask.unique().tolist()])

# %% alt="One Shapes image shown four ways: the whole image labelled with the classes it contains (classification), a box around each object (detection), every pixel coloured by its class (semantic segmentation), and every object in its own colour (instance segmentation)."
instances, n_instances = ndimage.label(mask.numpy() > 0)
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4))
axes[0].imshow(viz.to_image(image))
present = sorted(set(mask.unique().tolist()) - {0})
axes[0].set_title("classification:\n" + ", ".join(Shapes.CLASSES[c] for c in present), fontsize=9)
axes[1].imshow(viz.to_image(image))
for sl, lab in zip(ndimage.find_objects(instances), range(1, n_instances + 1)):
    cls = int(np.bincount(mask.numpy()[instances == lab]).argmax())
    y, x = sl
    axes[1].add_patch(plt.Rectangle((x.start - 0.5, y.start - 0.5), x.stop - x.start, y.stop - y.start,
                                    fill=False, color=viz.CLASS_COLORS[cls], lw=2))
axes[1].set_title("detection: one box per object", fontsize=9)
axes[2].imshow(viz.colorize(mask), interpolation="nearest")
axes[2].set_title("semantic segmentation:\na class per pixel", fontsize=9)
axes[3].imshow(instances, cmap="tab20", interpolation="nearest")
axes[3].set_title(f"instance segmentation:\n{n_instances} objects told apart", fontsize=9)
for ax in axes:
    ax.set_xticks([]), ax.set_yticks([])
viz.class_legend(fig, Shapes.CLASSES, loc="lower center")
fig.tight_layout(rect=(0, 0.08, 1, 1))

# %% alt="Six training images of the Shapes data set, each above its mask: circles, squares and triangles on a textured background, with a colour legend for the four classes."
xs, ys = zip(*(train_images[i] for i in range(6)))
fig = viz.show_samples(xs, ys, class_names=Shapes.CLASSES, max_items=6)

# %% [markdown]
# ## A patch classifier
#
# To label pixel $(y, x)$ the [sliding window](../book/glossary.md#sliding-window) cuts the
# $P \times P$ patch centred on it ($P = 25$ here) and classifies it, as
# {cite}`ciresan2012em` did for electron-microscopy membranes. Our classifier is a small CNN:
# six unpadded 3×3 convolutions (`WIDTH` channels each), a 1×1 convolution that squeezes the
# channels (`BOTTLENECK` of them), and two fully connected layers. It has no pooling — we will see
# why that matters at the end of the chapter.

# %%
torch.manual_seed(SEED)
model = SlidingWindowClassifier(in_channels=3, num_classes=4, patch_size=PATCH, width=WIDTH, bottleneck=BOTTLENECK)
print(model)
print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")

# %% [markdown]
# Training data are `(patch, label of its centre pixel)` pairs cut from the training images.
# Background covers most pixels, so the centres are drawn class-balanced:

# %%
# NBVAL_CHECK_OUTPUT
patches = CenterPixelPatches(train_images, patch_size=PATCH, n=N_PATCHES, seed=SEED)
val_patches = CenterPixelPatches(Shapes(40, size=SIZE, seed=SEED + 2), patch_size=PATCH, n=1000, seed=SEED)
print(len(patches), "patches of shape", tuple(patches[0][0].shape))
print("centre-class counts:", torch.bincount(patches.labels, minlength=4).tolist())

# %% [markdown]
# ## Starting point: a signal that reaches the scores
#
# Before training, a network's scores should depend on its input. PyTorch's default initialisation
# of `Conv2d` and `Linear` draws weights with variance $1/(3\,\text{fan\_in})$. Each convolution
# followed by a ReLU then multiplies the variance of the input-dependent part of the signal by
# about $\text{fan\_in} \cdot \frac{1}{3\,\text{fan\_in}} \cdot \frac{1}{2} = \frac{1}{6}$, while
# the biases add a constant. After the nine layers of our classifier the scores barely change from
# one patch to the next: training starts from an almost constant prediction (loss near
# $\ln 4 \approx 1.386$ for four balanced classes), and the gradient that could tell the classes
# apart is tiny. Whether Adam escapes that plateau then depends on details as small as the
# rounding of the CPU: an earlier version of this chapter, with the default initialisation, trained
# on one CPU and stayed at $\ln 4$ on another.
#
# He et al.'s initialisation for ReLU networks (2015) uses variance $2/\text{fan\_in}$ and zero
# biases, so the factor per layer is about $1$ and the input still shapes the scores at the end.
# We measure both starts on 512 training patches: how much each class score varies across the
# patches, and how many of the squeeze's channels are zero for *every* patch (a ReLU that is off
# everywhere passes no gradient to the weights before it).

# %%
# NBVAL_IGNORE_OUTPUT
probe = torch.stack([patches[i][0] for i in range(512)])


def signal(net):
    """(spread of the class scores across the probe patches, squeeze channels that are zero on all of them)."""
    with torch.no_grad():
        scores, squeezed = net(probe), net.features(probe)
    return scores.std(0).mean().item(), int((squeezed.amax((0, 2, 3)) <= 0).sum())


def he_init(net):
    """He (Kaiming) normal initialisation for ReLU networks: weights N(0, 2 / fan_in), biases 0."""
    for m in net.modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            torch.nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            torch.nn.init.zeros_(m.bias)
    return net


spread_default, dead_default = signal(model)   # PyTorch's default initialisation
spread_he, dead_he = signal(he_init(model))    # the same network, re-initialised
print(f"PyTorch default: scores vary by {spread_default:.1e} across patches, "
      f"{dead_default} of {BOTTLENECK} squeeze channels zero on every patch")
print(f"He init:         scores vary by {spread_he:.1e} across patches, "
      f"{dead_he} of {BOTTLENECK} squeeze channels zero on every patch")
glue("ch1_spread_default", spread_default)
glue("ch1_spread_he", spread_he)
glue("ch1_dead_default", dead_default)
glue("ch1_dead_he", dead_he)
_ = glue("ch1_bottleneck", BOTTLENECK)

# %% [markdown]
# With the default start the scores vary by only {glue:text}`ch1_spread_default:.1e` across the
# patches, and {glue:text}`ch1_dead_default:d` of the {glue:text}`ch1_bottleneck:d` squeeze
# channels are switched off for every patch; after He's initialisation the scores vary by
# {glue:text}`ch1_spread_he:.2f` and {glue:text}`ch1_dead_he:d` channels are off everywhere. We
# train from He's start. The squeeze is also wider than the library's default of four channels:
# once a squeeze channel is off for every patch it gets no gradient and stays off, and with only
# four of them a few unlucky early steps can leave the fully connected layers nothing to read.
#
# Training data are the class-balanced patches above; Adam, batches of `BATCH` patches,
# `EPOCHS` passes over them.

# %% alt="Training curves of the patch classifier: training loss and validation loss per epoch."
# NBVAL_IGNORE_OUTPUT
history = fit(model, patches, val_patches, epochs=EPOCHS, batch_size=BATCH, lr=LR, device=DEVICE, seed=SEED)
fig = viz.plot_history({"patch classifier": history}, keys=("loss", "val_loss"))
last = history.epochs[-1]
glue("ch1_train_loss_first", history.epochs[0]["loss"])
glue("ch1_train_loss", last["loss"])
glue("ch1_val_acc", last["val_pixel_accuracy"])
glue("ch1_val_miou", last["val_mean_iou"])
_ = glue("ch1_train_seconds", history.seconds)

# %% [markdown]
# The training loss falls from {glue:text}`ch1_train_loss_first:.3f` in the first epoch to
# {glue:text}`ch1_train_loss:.3f` in the last (a constant prediction would stay at
# $\ln 4 \approx 1.386$), and {glue:text}`ch1_val_acc:.3f` of the validation patches' centres
# are classified correctly, after {glue:text}`ch1_train_seconds:.0f` s of training. A longer run
# (the GPU settings in the configuration cell) gives a better classifier; this one is good enough
# to show what the sliding window does, and what it costs.

# %% [markdown]
# ## Segmenting by sliding the window
#
# `segment` mirror-pads the image by $P/2$ (so border pixels get a full patch) and classifies one
# patch per pixel, in batches. Here is its core:

# %%
print(inspect.getsource(SlidingWindowClassifier.segment)[:1800])

# %% alt="Three test images in the top row, their true masks in the middle row and the sliding-window predictions in the bottom row."
# NBVAL_IGNORE_OUTPUT
model = model.cpu().eval()
x_test = torch.stack([test_images[i][0] for i in range(N_DEMO)])
y_test = torch.stack([test_images[i][1] for i in range(N_DEMO)])
t0 = time.perf_counter()
scores = model.segment(x_test)
t_slide = time.perf_counter() - t0
glue("ch1_demo_patches", len(x_test) * SIZE * SIZE)
print(f"sliding window: {len(x_test)} images of {SIZE}x{SIZE} in {t_slide:.1f} s "
      f"({len(x_test) * SIZE * SIZE:,} patches)")
print(f"pixel accuracy {metrics.pixel_accuracy(scores, y_test):.3f}, "
      f"mean IoU {metrics.mean_iou(scores, y_test, 4):.3f}")
fig = viz.show_samples(x_test, y_test, scores, class_names=Shapes.CLASSES)
glue("ch1_demo_seconds", t_slide)
glue("ch1_demo_acc", metrics.pixel_accuracy(scores, y_test))
_ = glue("ch1_demo_miou", metrics.mean_iou(scores, y_test, 4))

# %% [markdown]
# The window labels these test images with pixel accuracy {glue:text}`ch1_demo_acc:.3f` (mean IoU
# {glue:text}`ch1_demo_miou:.3f`; a few images make a picture, not an evaluation), and it took
# {glue:text}`ch1_demo_seconds:.1f` s for {glue:text}`ch1_demo_patches:,d` patches.

# %% [markdown]
# ## How much work is repeated?
#
# With stride 1, every interior pixel lies in $P^2 = 625$ patches, and each of those patches runs
# the whole network over it. We check that count by brute force — add one to every pixel a patch
# covers — and then count the multiply-accumulate operations (MACs) the convolutions perform,
# once patch by patch and once for the shared, fully convolutional computation.

# %%
# NBVAL_CHECK_OUTPUT
H = W = SIZE
r = PATCH // 2
coverage = np.zeros((H + 2 * r, W + 2 * r), np.int64)  # the mirror-padded image
for y in range(H):
    for x in range(W):
        coverage[y : y + PATCH, x : x + PATCH] += 1
inner = coverage[r:-r, r:-r]
print("times each pixel of the padded image is read, min/max:", coverage.min(), coverage.max())
print("times an interior pixel is read:", int(inner[H // 2, W // 2]), "= P^2 =", PATCH**2)
print("patches per pixel from the formula (fewest, most):", model.patches_per_pixel(stride=1))


# %%
def conv_macs(net: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-accumulates of every Conv2d/Linear layer of `net` on input `x` (via forward hooks)."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, torch.nn.Conv2d):
            total += out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups
        elif isinstance(mod, torch.nn.Linear):
            total += out.numel() * mod.in_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    return total


dense = model.to_fcn().eval()
S = TIMING_SIZES[-1]  # the largest image we time below
macs_patch = conv_macs(model, torch.zeros(1, 3, PATCH, PATCH))
macs_dense = conv_macs(dense, torch.zeros(1, 3, S, S))
macs_slide = macs_patch * S * S
print(f"one patch: {macs_patch / 1e6:.2f} M MACs")
print(f"{S}x{S} image, sliding window: {macs_slide / 1e9:.1f} G MACs;  dense: {macs_dense / 1e9:.2f} G MACs")
print(f"the sliding window repeats {1 - macs_dense / macs_slide:.1%} of its arithmetic "
      f"(ratio {macs_slide / macs_dense:.0f}x)")
glue("ch1_macs_patch_M", macs_patch / 1e6)
glue("ch1_macs_slide_G", macs_slide / 1e9)
glue("ch1_macs_dense_G", macs_dense / 1e9)
glue("ch1_repeated_pct", 100 * (1 - macs_dense / macs_slide))
glue("ch1_mac_ratio", macs_slide / macs_dense)
_ = glue("ch1_size_S", S)

# %% [markdown]
# For one {glue:text}`ch1_size_S:d`×{glue:text}`ch1_size_S:d` image the window performs {glue:text}`ch1_macs_slide_G:.1f` G MACs
# ({glue:text}`ch1_macs_patch_M:.2f` M per patch), the shared computation
# {glue:text}`ch1_macs_dense_G:.2f` G: {glue:text}`ch1_repeated_pct:.1f`% of the window's
# arithmetic repeats work already done for a neighbour, a ratio of
# {glue:text}`ch1_mac_ratio:.0f` to 1. (The dense network is not free: the first fully connected
# layer, rewritten below as a $13 \times 13$ convolution, still runs once per pixel. That is why
# the classifier squeezes its channels before it.)

# %% [markdown]
# The count says the window recomputes almost everything. Does the clock agree? We time the
# sliding window and the dense network (built from the same weights; how, the next section shows)
# at several image sizes, and compute the MAC ratio at each size: it grows a little with the side,
# because the dense network also runs over the mirror-padded border.

# %%
# NBVAL_IGNORE_OUTPUT
def best_time(fn, repeats=5):
    """The fastest of `repeats` timed calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


timings = []
for s in TIMING_SIZES:
    x = Shapes(1, size=s, seed=5)[0][0][None]
    t0 = time.perf_counter()  # the window takes seconds: one timed call (the demo above warmed it up)
    slow = model.segment(x, progress=False)
    t_slow = time.perf_counter() - t0
    with torch.no_grad():
        fast = dense(x)
        t_fast = best_time(lambda: dense(x))
    timings.append(dict(size=s, slow=t_slow, fast=t_fast, diff=(slow - fast).abs().max().item(),
                        mac_ratio=macs_patch * s * s / conv_macs(dense, x)))
    t = timings[-1]
    print(f"{s:>4}x{s:<4} sliding {t_slow * 1e3:8.1f} ms   dense {t_fast * 1e3:6.2f} ms   "
          f"speed-up {t_slow / t_fast:5.0f}x   MAC ratio {t['mac_ratio']:5.1f}x   max|diff| {t['diff']:.1e}")

# %% [markdown]
# The speed-up need not equal the MAC ratio, because the clock also measures *how fast* each
# kind of work runs. Write $r$ for a rate of arithmetic (MACs per second): the sliding window's
# time is its MACs divided by its rate, and so
#
# $$\text{speed-up} = \frac{t_\text{sliding}}{t_\text{dense}}
#   = \text{MAC ratio} \times \frac{r_\text{dense}}{r_\text{sliding}}.$$
#
# We measure the rates at the largest size, and split the window's time into its parts: cutting
# the patches out of the image (what `segment` does row by row: `unfold`, then a copy), the
# classifier on batches of about 2048 patches (`segment`'s batch size), and the rest (the Python loop,
# collecting the patches into batches and writing the scores back). To compare like with like, we
# also time the classifier's convolutional part (`features`: the 3×3 convolutions and the squeeze)
# on a batch of patches and over the whole image, as the dense network runs it.

# %%
# NBVAL_IGNORE_OUTPUT
x = Shapes(1, size=S, seed=5)[0][0][None]
padded = F.pad(x, (r, r, r, r), mode="reflect")


def cut_patches():
    """The patches segment() cuts, one image row at a time: [S, C, P, P] per row."""
    return [padded[0, :, y : y + PATCH].unfold(2, PATCH, 1)[:, :, :S].permute(2, 0, 1, 3).contiguous()
            for y in range(S)]


t_cut = best_time(cut_patches, repeats=2)
batch = torch.cat(cut_patches()[: -(-2048 // S)])      # one batch as segment() builds it: whole rows, >= 2048
with torch.no_grad():
    t_batch = best_time(lambda: model(batch), repeats=2)
    t_feat_patch = best_time(lambda: model.features(batch), repeats=2)  # its 3x3 convolutions + squeeze only
    t_feat_dense = best_time(lambda: dense.net[0](padded))              # the same layers over the whole image
t_net = t_batch * S * S / len(batch)                    # the classifier on all S*S patches
t_slow, t_fast, mac_ratio_S = timings[-1]["slow"], timings[-1]["fast"], timings[-1]["mac_ratio"]
rate_net = macs_patch * len(batch) / t_batch / 1e9      # G MAC/s: the classifier on patch batches
rate_slide = macs_patch * S * S / t_slow / 1e9          # G MAC/s: the sliding window as a whole
rate_dense = conv_macs(dense, x) / t_fast / 1e9         # G MAC/s: the dense network
rate_feat_patch = conv_macs(model.features, batch[:1]) * len(batch) / t_feat_patch / 1e9
rate_feat_dense = conv_macs(dense.net[0], padded) / t_feat_dense / 1e9
parts = {"cutting the patches": t_cut, "classifier on the patches": t_net,
         "the rest (loop, batching, scores)": max(t_slow - t_cut - t_net, 0.0)}
print(f"sliding window at {S}x{S}: {t_slow:.2f} s")
for name, sec in parts.items():
    print(f"  {name:<36} {sec:6.2f} s  ({sec / t_slow:4.0%})")
print(f"rate of arithmetic: classifier on patch batches {rate_net:.1f} G MAC/s, "
      f"whole sliding window {rate_slide:.1f}, dense network {rate_dense:.1f}")
print(f"the same 3x3 convolutions and squeeze: {rate_feat_patch:.1f} G MAC/s on the patch batch, "
      f"{rate_feat_dense:.1f} G MAC/s over the whole image")
print(f"speed-up {t_slow / t_fast:.1f}x = MAC ratio {mac_ratio_S:.1f}x * rate ratio {rate_dense / rate_slide:.2f}")
glue("ch1_speedup_S", t_slow / t_fast)
glue("ch1_mac_ratio_S", mac_ratio_S)
glue("ch1_speedup_vs_mac", "above" if t_slow / t_fast > mac_ratio_S else "below")
glue("ch1_rate_net", rate_net)
glue("ch1_rate_slide", rate_slide)
glue("ch1_rate_dense", rate_dense)
glue("ch1_rate_ratio", rate_dense / rate_slide)
glue("ch1_rate_feat_patch", rate_feat_patch)
glue("ch1_rate_feat_dense", rate_feat_dense)
glue("ch1_feat_words", "the same layers run faster over the whole image than on the patches"
     if rate_feat_dense > rate_feat_patch else "the same layers run no faster over the whole image than on the patches")
glue("ch1_gap_source", "the rate of the network's own arithmetic, not the work around it"
     if rate_dense / rate_net > rate_net / rate_slide else "the work around the classifier, more than its arithmetic")
glue("ch1_share_cut_pct", 100 * t_cut / t_slow)
glue("ch1_share_net_pct", 100 * t_net / t_slow)
_ = glue("ch1_share_rest_pct", 100 * parts["the rest (loop, batching, scores)"] / t_slow)

# %% [markdown]
# ## Convolutionalisation: the same network, without the repetition
#
# The fully connected layer `fc1` multiplies the flattened $16 \times 13 \times 13$ feature map of
# a patch (`BOTTLENECK` channels of $13 \times 13$) by a weight matrix. Reshape each row of that
# matrix to $16 \times 13 \times 13$ and it *is* a convolution kernel: applied to a larger feature
# map it computes `fc1` for every window at once. `fc2` becomes a 1×1 convolution. That is all
# `to_fcn()` does — no retraining {cite}`long2015fcn,sermanet2014overfeat`:

# %%
print(inspect.getsource(SlidingWindowClassifier.to_fcn))

# %% [markdown]
# The dense network must give the same scores as the sliding window, pixel for pixel. We check it
# on the test images segmented above and on every image timed above:

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    diff_test = (scores - dense(x_test)).abs().max().item()
diff_timed = max(t["diff"] for t in timings)
print(f"max |sliding - dense| on the test images:  {'<= 1e-4' if diff_test <= 1e-4 else diff_test}")
print(f"max |sliding - dense| on the timed images: {'<= 1e-4' if diff_timed <= 1e-4 else diff_timed}")
assert diff_test <= 1e-4 and diff_timed <= 1e-4

# %% alt="Left: seconds per image against image side for the sliding window and the dense network, on log axes. Right: the measured speed-up against image side, with the ratio of multiply-accumulates at each side as a dashed line."
# NBVAL_IGNORE_OUTPUT
print(f"at {S}x{S}: max abs difference {timings[-1]['diff']:.2e}, dense network {t_slow / t_fast:.0f}x faster "
      f"({t_slow:.2f} s vs {t_fast * 1e3:.1f} ms)")
glue("ch1_max_diff", max(diff_test, diff_timed))
glue("ch1_t_slow_S", t_slow)
glue("ch1_t_fast_S_ms", t_fast * 1e3)
sizes = [t["size"] for t in timings]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
ax1.loglog(sizes, [t["slow"] for t in timings], "o-", label="sliding window")
ax1.loglog(sizes, [t["fast"] for t in timings], "s-", label="dense (to_fcn)")
ax1.set_xlabel("image side (pixels)"), ax1.set_ylabel("seconds per image"), ax1.legend()
ax1.minorticks_off(), ax1.set_xticks(sizes, [str(s) for s in sizes]), ax1.set_title("time per image")
ax2.plot(sizes, [t["slow"] / t["fast"] for t in timings], "o-", color="C2", label="speed-up (measured)")
ax2.plot(sizes, [t["mac_ratio"] for t in timings], "--", color="gray", label="MAC ratio")
ax2.set_xlabel("image side (pixels)"), ax2.set_ylabel("times"), ax2.set_title("sliding time / dense time")
ax2.set_ylim(bottom=0), ax2.legend()
fig.tight_layout()

# %% [markdown]
# **What the measurements show.** The dense network gives the sliding window's scores to within
# floating-point rounding (at most {glue:text}`ch1_max_diff:.1e` apart). In the run that produced
# this page it was {glue:text}`ch1_speedup_S:.0f` times faster at
# {glue:text}`ch1_size_S:d`×{glue:text}`ch1_size_S:d` ({glue:text}`ch1_t_slow_S:.2f` s against
# {glue:text}`ch1_t_fast_S_ms:.0f` ms per image), {glue:text}`ch1_speedup_vs_mac` the MAC ratio of
# {glue:text}`ch1_mac_ratio_S:.1f` at that size. The split above says where the difference comes
# from on this CPU. The sliding window as a whole computed {glue:text}`ch1_rate_slide:.1f` G MAC/s
# and the dense network {glue:text}`ch1_rate_dense:.1f` G MAC/s: their ratio,
# {glue:text}`ch1_rate_ratio:.2f`, is the factor between the speed-up and the MAC ratio. Of the
# window's time, the classifier took {glue:text}`ch1_share_net_pct:.0f`%, cutting the patches out
# {glue:text}`ch1_share_cut_pct:.0f`% and the loop around them
# {glue:text}`ch1_share_rest_pct:.0f`%; the classifier alone, on batches of patches, computed
# {glue:text}`ch1_rate_net:.1f` G MAC/s. So the gap is mostly {glue:text}`ch1_gap_source`. The two
# networks do different mixes of work (most of the dense network's MACs are in the 13×13
# convolution that replaced `fc1`, most of a patch's in its 3×3 convolutions); to compare like
# with like, the very same 3×3 convolutions and squeeze ran at
# {glue:text}`ch1_rate_feat_dense:.1f` G MAC/s over the whole image and at
# {glue:text}`ch1_rate_feat_patch:.1f` G MAC/s over a batch of patches:
# {glue:text}`ch1_feat_words`. The timings are short and easily disturbed by other load on the
# machine, so the speed-up at each size moves between runs.
#
# The redundancy the notes complain about is real — and it is removed without changing a single
# weight.

# %% [markdown]
# **On a GPU.** The Performance appendix's GPU run (file
# `book/_data/bench/cuda/results.json`, measured with the library's default classifier: 32
# channels and a 4-channel squeeze) timed the same comparison on an H100. The next cell reads that
# file and computes that classifier's MAC ratios at the sizes it timed.

# %%
# NBVAL_IGNORE_OUTPUT
gpu_file = Path("../book/_data/bench/cuda/results.json")
if gpu_file.exists():
    bench = json.loads(gpu_file.read_text())
    rows = {row["size"]: row for row in bench["benchmarks"]["sliding_window"]["rows"]}
    default_clf = SlidingWindowClassifier(**bench["benchmarks"]["sliding_window"]["summary"]["model"]).eval()
    default_dense = default_clf.to_fcn().to("meta")  # count MACs on the meta device: no arithmetic is done
    per_patch = conv_macs(default_clf.to("meta"), torch.zeros(1, 3, PATCH, PATCH, device="meta"))
    print(f"{bench['meta']['device_name']}, PyTorch {bench['meta']['torch']}:")
    for size, row in rows.items():
        row["mac_ratio"] = per_patch * size * size / conv_macs(default_dense, torch.zeros(1, 3, size, size, device="meta"))
        print(f"{size:>4}x{size:<4} sliding {row['sliding_s'] * 1e3:7.2f} ms   dense {row['dense_s'] * 1e3:5.3f} ms   "
              f"speed-up {row['speedup']:6.1f}x   MAC ratio {row['mac_ratio']:6.1f}x")
    small, large = min(rows), max(rows)
    glue("ch1_gpu_name", bench["meta"]["device_name"])
    glue("ch1_gpu_small", small)
    glue("ch1_gpu_large", large)
    glue("ch1_gpu_speedup_small", rows[small]["speedup"])
    glue("ch1_gpu_speedup_large", rows[large]["speedup"])
    glue("ch1_gpu_mac_small", rows[small]["mac_ratio"])
    glue("ch1_gpu_mac_large", rows[large]["mac_ratio"])
    glue("ch1_gpu_dense_small_ms", rows[small]["dense_s"] * 1e3)
    glue("ch1_gpu_dense_large_ms", rows[large]["dense_s"] * 1e3)
    glue("ch1_gpu_pixels_factor", (large // small) ** 2)
    glue("ch1_gpu_below_everywhere", "at every size" if all(r["speedup"] < r["mac_ratio"] for r in rows.values())
         else "not at every size")
else:
    print("the GPU results are not in this copy of the course (they are in the repository's book/ folder)")

# %% [markdown]
# On the {glue:text}`ch1_gpu_name` the speed-up was {glue:text}`ch1_gpu_speedup_small:.1f` at
# {glue:text}`ch1_gpu_small:d`² and {glue:text}`ch1_gpu_speedup_large:.0f` at
# {glue:text}`ch1_gpu_large:d`², against MAC ratios of {glue:text}`ch1_gpu_mac_small:.0f` and
# {glue:text}`ch1_gpu_mac_large:.0f` (below the MAC ratio {glue:text}`ch1_gpu_below_everywhere`).
# Its dense network took {glue:text}`ch1_gpu_dense_small_ms:.2f` ms at
# {glue:text}`ch1_gpu_small:d`² and {glue:text}`ch1_gpu_dense_large_ms:.2f` ms at
# {glue:text}`ch1_gpu_large:d`², for {glue:text}`ch1_gpu_pixels_factor:d` times the pixels: a time
# that hardly grows with the work is not set by the arithmetic. A likely reason is the fixed cost
# of every GPU call (launching each layer's kernels), which the sliding window pays once per batch
# of 2048 patches and the small dense network pays for very little arithmetic; the appendix's run
# did not measure that split, so on the GPU this explanation is an inference from the timings,
# while on the CPU it is the measurement above.

# %% [markdown]
# ## Interactive: the stride of the window
#
# A cheaper sliding window classifies only every $s$-th pixel in each direction and copies the
# label to the $s \times s$ block: $s^2$ times fewer patches, but a blockier mask. Move the slider.
# (In the rendered book this demo is static: every setting was computed when the notebook ran.
# Run the notebook for the live version.)

# %%
# NBVAL_IGNORE_OUTPUT
demo_x, demo_y = x_test[:1], y_test[:1]


def render_stride(stride):
    t0 = time.perf_counter()
    pred = model.segment(demo_x, stride=stride, progress=False)
    seconds = time.perf_counter() - t0
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
    axes[0].imshow(viz.to_image(demo_x[0])), axes[0].set_title("image")
    axes[1].imshow(viz.colorize(demo_y[0]), interpolation="nearest"), axes[1].set_title("ground truth")
    axes[2].imshow(viz.colorize(metrics.as_labels(pred)[0]), interpolation="nearest")
    n = (-(-SIZE // stride)) ** 2
    axes[2].set_title(f"stride {stride}: {n} patches\nmIoU {metrics.mean_iou(pred, demo_y, 4):.2f}, {seconds * 1e3:.0f} ms",
                      fontsize=9)
    for ax in axes:
        ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


Explorer(render_stride, {"stride": [1, 2, 3, 4, 6, 8]}, title="Sliding window with stride s")

# %% [markdown]
# ## Summary
#
# * Semantic segmentation labels every pixel with a class.
# * A patch classifier slid over the image does it, but every interior pixel is processed
#   $P^2$ times; counting MACs shows that nearly all of the work is repeated.
# * Rewriting the fully connected layers as convolutions gives a network that computes the same
#   scores for every pixel at once — the *fully convolutional network* of the next chapter.
# * How much faster that is depends on the machine, not only on the MACs: the rate at which each
#   kind of work runs multiplies the MAC ratio (measured above on this CPU; on the appendix's GPU
#   the speed-up stayed below the MAC ratio).
# * Where training starts matters: with PyTorch's default initialisation this classifier's scores
#   hardly depend on the patch; He's initialisation keeps the signal alive through the layers.
#
# ## Exercises
#
# 1. **Stride and coverage.** With stride $s$, how many patches contain an interior pixel?
#    (Careful: when $s$ does not divide $P$ the answer depends on the pixel.) Check your formula
#    with the brute-force coverage count.
# 2. **The receptive field.** Show, with autograd, that one output pixel of the dense network
#    depends on exactly a $P \times P$ window of the (padded) input.
# 3. **Pooling breaks the one-to-one map.** Add a `MaxPool2d(2)` after the first convolution of a
#    patch classifier. What size does the convolutionalised network's output have for a
#    $64 \times 64$ image, and why is it no longer one score per pixel? (The FCN paper's
#    *shift-and-stitch* and dilated filters {cite}`giusti2013fast` recover the dense output.)
# 4. **Where the signal goes.** For a freshly built classifier, print how much each layer's output
#    varies across the probe patches (the standard deviation over the patches, averaged over
#    channels and positions), with PyTorch's default initialisation and after `he_init`. Compare
#    the factor per layer with the text's $1/6$ (that is a factor of the variance; the standard
#    deviation shrinks by $1/\sqrt{6}$ per layer).

# %% tags=["hide-cell", "solution"]
# Solution 1: along each axis a pixel lies in floor(P/s) or ceil(P/s) windows, so between
# floor(P/s)^2 and ceil(P/s)^2 patches contain it (P^2/s^2 on average).
for s in (1, 2, 3, 5):
    cov = np.zeros((SIZE + 2 * r, SIZE + 2 * r), np.int64)
    for y in range(0, SIZE, s):
        for x in range(0, SIZE, s):
            cov[y : y + PATCH, x : x + PATCH] += 1
    centre = cov[r + SIZE // 2 - s : r + SIZE // 2 + s, r + SIZE // 2 - s : r + SIZE // 2 + s]
    lo, hi = model.patches_per_pixel(s)
    print(f"stride {s}: formula {lo}..{hi}, brute force {centre.min()}..{centre.max()}")

# %% tags=["hide-cell", "solution"]
# Solution 2: the gradient of one output score is non-zero exactly on a P x P window. The window is a
# property of the architecture, not of the weights, so a freshly built network shows it (in a trained
# one a ReLU that is off at that position hides part of the window from the gradient).
torch.manual_seed(SEED)
fresh = SlidingWindowClassifier(3, 4, PATCH, width=WIDTH, bottleneck=BOTTLENECK).to_fcn().eval()
x = torch.rand(1, 3, 48, 48)
padded = torch.nn.functional.pad(x, (r, r, r, r), mode="reflect").requires_grad_(True)
out = fresh.net(padded)  # the network without its own padding
out[0, 0, 20, 30].backward()
rows, cols = np.nonzero(padded.grad[0].abs().sum(0).numpy())
print("window:", rows.max() - rows.min() + 1, "x", cols.max() - cols.min() + 1,
      "starting at", (int(rows.min()), int(cols.min())), "= the output position (20, 30)")

# %% tags=["hide-cell", "solution"]
# Solution 3: each stride-2 pooling halves the grid, so the dense output has one score per 2x2 block.
pooled = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.MaxPool2d(2), torch.nn.Conv2d(8, 8, 3),
                             torch.nn.Conv2d(8, 4, 1))
print("output for a 64x64 image:", tuple(pooled(torch.rand(1, 3, 64, 64)).shape[-2:]),
      "— one score per 2x2 block, shifted by the pooling grid")


# %% tags=["hide-cell", "solution"]
# Solution 4: with the default start the spread shrinks layer after layer (by roughly 1/sqrt(6) at
# first; the biases, which are the same for every patch, do not count in a spread); after he_init
# it stays of the same order all the way to the scores.
def layer_spread(net, x):
    """Standard deviation across the patches of every ReLU's output, and of the scores."""
    spreads, h = [], x
    with torch.no_grad():
        for layer in net.features:
            h = layer(h)
            if isinstance(layer, torch.nn.ReLU):
                spreads.append(h.std(0).mean().item())
        h = F.relu(net.fc1(h.flatten(1)))
        spreads.append(h.std(0).mean().item())
        spreads.append(net.fc2(h).std(0).mean().item())
    return spreads


torch.manual_seed(SEED)
fresh = SlidingWindowClassifier(3, 4, PATCH, width=WIDTH, bottleneck=BOTTLENECK)
spread_default_layers = layer_spread(fresh, probe[:256])
spread_he_layers = layer_spread(he_init(fresh), probe[:256])
print(f"input: {probe[:256].std(0).mean():.3f}")
for i, (a, b) in enumerate(zip(spread_default_layers, spread_he_layers), 1):
    print(f"layer {i}: default {a:8.1e}   He {b:6.3f}")
