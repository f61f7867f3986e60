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
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy import ndimage

from segedu import metrics, viz
from segedu.data import Shapes
from segedu.models import SlidingWindowClassifier
from segedu.models.sliding_window import CenterPixelPatches
from segedu.train import fit, resolve_device
from segedu.widgets import Explorer

# %%
# Configuration. The defaults run this chapter in a few minutes on 2 CPU cores.
# On a GPU, raise N_PATCHES and EPOCHS for a better classifier.
SEED = 0
SIZE = 64                          # Shapes images are SIZE x SIZE
N_TRAIN_IMAGES = 200               # images the training patches are cut from
N_PATCHES = 20_000                 # training patches (class-balanced)
PATCH = 25                         # the window: PATCH x PATCH pixels around the centre
EPOCHS = 6
TIMING_SIZES = [32, 64, 96, 128]   # image sizes for the sliding-window vs dense timing
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
# six unpadded 3×3 convolutions, a 1×1 convolution that squeezes the channels, and two fully
# connected layers. It has no pooling — we will see why that matters at the end of the chapter.

# %%
model = SlidingWindowClassifier(in_channels=3, num_classes=4, patch_size=PATCH)
print(model)
print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")

# %% [markdown]
# Training data are `(patch, label of its centre pixel)` pairs cut from the training images.
# Background covers most pixels, so the centres are drawn class-balanced:

# %%
# NBVAL_CHECK_OUTPUT
patches = CenterPixelPatches(train_images, patch_size=PATCH, n=N_PATCHES, seed=SEED)
val_patches = CenterPixelPatches(Shapes(40, size=SIZE, seed=SEED + 2), patch_size=PATCH, n=4000, seed=SEED)
print(len(patches), "patches of shape", tuple(patches[0][0].shape))
print("centre-class counts:", torch.bincount(patches.labels, minlength=4).tolist())

# %% alt="Training curves of the patch classifier: training loss and validation loss per epoch."
# NBVAL_IGNORE_OUTPUT
history = fit(model, patches, val_patches, epochs=EPOCHS, batch_size=128, lr=2e-3, device=DEVICE, seed=SEED)
fig = viz.plot_history({"patch classifier": history}, keys=("loss", "val_loss"))

# %% [markdown]
# ## Segmenting by sliding the window
#
# `segment` mirror-pads the image by $P/2$ (so border pixels get a full patch) and classifies one
# patch per pixel, in batches. Here is its core:

# %%
print(inspect.getsource(SlidingWindowClassifier.segment)[:1800])

# %% alt="Four test images in the top row, their true masks in the middle row and the sliding-window predictions in the bottom row; the predictions find the shapes but with ragged, blotchy outlines."
# NBVAL_IGNORE_OUTPUT
model = model.cpu().eval()
x_test = torch.stack([test_images[i][0] for i in range(4)])
y_test = torch.stack([test_images[i][1] for i in range(4)])
t0 = time.perf_counter()
scores = model.segment(x_test)
t_slide = time.perf_counter() - t0
print(f"sliding window: {len(x_test)} images of {SIZE}x{SIZE} in {t_slide:.1f} s "
      f"({len(x_test) * SIZE * SIZE:,} patches)")
print(f"pixel accuracy {metrics.pixel_accuracy(scores, y_test):.3f}, "
      f"mean IoU {metrics.mean_iou(scores, y_test, 4):.3f}")
fig = viz.show_samples(x_test, y_test, scores, class_names=Shapes.CLASSES)

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
macs_patch = conv_macs(model, torch.zeros(1, 3, PATCH, PATCH))
macs_dense = conv_macs(dense, torch.zeros(1, 3, 128, 128))
macs_slide = macs_patch * 128 * 128
print(f"one patch: {macs_patch / 1e6:.2f} M MACs")
print(f"128x128 image, sliding window: {macs_slide / 1e9:.1f} G MACs;  dense: {macs_dense / 1e9:.2f} G MACs")
print(f"the sliding window repeats {1 - macs_dense / macs_slide:.1%} of its arithmetic "
      f"(ratio {macs_slide / macs_dense:.0f}x)")

# %% [markdown]
# The count says the window recomputes almost everything. Does the clock agree? We time the
# sliding window at several image sizes. Its cost grows with the number of pixels times the cost
# of one patch.

# %%
# NBVAL_IGNORE_OUTPUT
def best_time(fn, repeats=3):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


timings = []
for s in TIMING_SIZES:
    x = Shapes(1, size=s, seed=5)[0][0][None]
    with torch.no_grad():
        slow = model.segment(x, progress=False)
        fast = dense(x)
    t_slow = best_time(lambda: model.segment(x, progress=False), repeats=1 if s >= 96 else 2)
    with torch.no_grad():
        t_fast = best_time(lambda: dense(x), repeats=5)
    timings.append((s, t_slow, t_fast, (slow - fast).abs().max().item()))
    print(f"{s:>4}x{s:<4} sliding {t_slow * 1e3:9.1f} ms   dense {t_fast * 1e3:7.2f} ms   "
          f"speed-up {t_slow / t_fast:7.0f}x   max|diff| {timings[-1][3]:.1e}")

# %% [markdown]
# ## Convolutionalisation: the same network, without the repetition
#
# The fully connected layer `fc1` multiplies the flattened $4 \times 13 \times 13$ feature map of a
# patch by a weight matrix. Reshape each row of that matrix to $4 \times 13 \times 13$ and it *is*
# a convolution kernel: applied to a larger feature map it computes `fc1` for every window at
# once. `fc2` becomes a 1×1 convolution. That is all `to_fcn()` does — no retraining
# {cite}`long2015fcn,sermanet2014overfeat`:

# %%
print(inspect.getsource(SlidingWindowClassifier.to_fcn))

# %% [markdown]
# The dense network must give the same scores as the sliding window, pixel for pixel. We check it
# on the 128×128 image (the largest timed above) and on the test images:

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    diff_test = (model.segment(x_test, progress=False) - dense(x_test)).abs().max().item()
diff_128 = timings[-1][3]
print(f"max |sliding - dense| on the test images: {'<= 1e-4' if diff_test <= 1e-4 else diff_test}")
print(f"max |sliding - dense| at 128x128:         {'<= 1e-4' if diff_128 <= 1e-4 else diff_128}")
assert diff_test <= 1e-4 and diff_128 <= 1e-4

# %% alt="Left: seconds per image against image side for the sliding window and the dense network, on log axes; the dense network is about two orders of magnitude faster. Right: the speed-up against image side, from about 140 times at 32 by 32 to 270 times at 128 by 128, above the dashed line of the 174-fold ratio of multiply-accumulates from 64 by 64 on."
# NBVAL_IGNORE_OUTPUT
s, t_slow, t_fast, diff = timings[-1]
print(f"at {s}x{s}: max abs difference {diff:.2e}, dense network {t_slow / t_fast:.0f}x faster "
      f"({t_slow:.2f} s vs {t_fast * 1e3:.1f} ms)")
sizes = [t[0] for t in timings]
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
ax1.loglog(sizes, [t[1] for t in timings], "o-", label="sliding window")
ax1.loglog(sizes, [t[2] for t in timings], "s-", label="dense (to_fcn)")
ax1.set_xlabel("image side (pixels)"), ax1.set_ylabel("seconds per image"), ax1.legend()
ax1.minorticks_off(), ax1.set_xticks(sizes, [str(s) for s in sizes]), ax1.set_title("time per image")
ax2.plot(sizes, [t[1] / t[2] for t in timings], "o-", color="C2")
ax2.set_xlabel("image side (pixels)"), ax2.set_ylabel("speed-up (x)"), ax2.set_title("speed-up: sliding time / dense time")
ax2.axhline(macs_slide / macs_dense, ls="--", color="gray", label="MAC ratio (128x128)")
ax2.legend()
fig.tight_layout()

# %% [markdown]
# **What the measurements show.** The dense network gives the sliding window's scores to within
# floating-point rounding (at most about 1e-5 apart), and in the run that produced this page it was
# 269 times faster at 128×128 (7.3 s against 27 ms per image) — more than the 174-fold saving in
# arithmetic that the MAC count predicts: a few large convolutions run much closer to the CPU's
# peak than thousands of small patch batches do. At the smallest sizes the speed-up is lower and
# the timings are noisier (a few milliseconds of dense work are easily disturbed by other load on
# the machine). The redundancy the notes complain about is real — and it is removed without
# changing a single weight.

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
fresh = SlidingWindowClassifier(in_channels=3, num_classes=4, patch_size=PATCH).to_fcn().eval()
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
