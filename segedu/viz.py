"""Figures drawn from real objects: images, masks, predictions, training curves.

One fixed class colour map is used throughout the course, built from the Okabe-Ito palette,
which stays distinguishable for the common forms of colour blindness. Every mask figure gets a
legend naming the classes.

Introduced in chapter 1; later chapters add architecture drawings.
"""

from __future__ import annotations

import numpy as np
import torch

from .metrics import as_labels
from .summary import pareto_front

__all__ = ["CLASS_COLORS", "colorize", "to_image", "overlay", "class_legend", "show_samples",
           "plot_history", "show_numbers", "figure_to_png", "unet_feature_shapes", "draw_unet", "nested_grid",
           "draw_nested_grid", "plot_comparison", "plot_pareto", "compare_predictions", "plot_forest"]

# Okabe & Ito (2008), "Color Universal Design": colour-blind safe. Class 0 (background) is dark grey.
CLASS_COLORS = np.array([
    [0x33, 0x33, 0x33],  # 0 background
    [0xE6, 0x9F, 0x00],  # 1 orange
    [0x56, 0xB4, 0xE9],  # 2 sky blue
    [0x00, 0x9E, 0x73],  # 3 bluish green
    [0xF0, 0xE4, 0x42],  # 4 yellow
    [0x00, 0x72, 0xB2],  # 5 blue
    [0xD5, 0x5E, 0x00],  # 6 vermillion
    [0xCC, 0x79, 0xA7],  # 7 reddish purple
], dtype=np.float32) / 255.0


def _np(x) -> np.ndarray:
    if torch.is_tensor(x):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def to_image(image) -> np.ndarray:
    """``[C, H, W]`` tensor/array in [0, 1] -> ``[H, W, 3]`` (or ``[H, W]`` for one channel) for imshow."""
    a = _np(image).astype(np.float32)
    if a.ndim == 3 and a.shape[0] in (1, 3):
        a = a[0] if a.shape[0] == 1 else a.transpose(1, 2, 0)
    return np.clip(a, 0, 1)


def colorize(mask) -> np.ndarray:
    """Class-index mask ``[H, W]`` -> RGB ``[H, W, 3]`` with the course's colour map."""
    m = _np(mask).astype(np.int64)
    if m.min(initial=0) < 0 or m.max(initial=0) >= len(CLASS_COLORS):
        raise ValueError(f"mask labels must be in [0, {len(CLASS_COLORS)}) to be coloured, got {m.min()}..{m.max()}")
    return CLASS_COLORS[m]


def overlay(image, mask, alpha: float = 0.5) -> np.ndarray:
    """Blend the coloured mask over the image; background pixels stay untouched."""
    img = to_image(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    m = _np(mask)
    out = img.copy()
    fg = m > 0
    out[fg] = (1 - alpha) * img[fg] + alpha * colorize(m)[fg]
    return out


def class_legend(ax, class_names, loc="lower center", **kwargs):
    """Add a legend with one coloured patch per class name to ``ax`` (or a figure)."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=CLASS_COLORS[i], edgecolor="k", label=name) for i, name in enumerate(class_names)]
    return ax.legend(handles=handles, loc=loc, ncol=len(handles), frameon=False, **kwargs)


def show_samples(images, masks, preds=None, class_names=None, titles=("image", "ground truth", "prediction"),
                 max_items: int = 4, size: float = 2.2):
    """A grid: one column per sample; rows image / ground truth / prediction (if given).

    Returns the matplotlib figure (the notebook displays it). ``preds`` may be labels or scores.
    """
    import matplotlib.pyplot as plt

    n = min(len(images), max_items)
    rows = [("image", images), ("mask", masks)] + ([("mask", as_labels(torch.as_tensor(preds)))] if preds is not None else [])
    fig, axes = plt.subplots(len(rows), n, figsize=(size * n, size * len(rows) + 0.4), squeeze=False)
    for r, (kind, data) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            if kind == "image":
                img = to_image(data[c])
                ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
            else:
                ax.imshow(colorize(data[c]), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(titles[r])
    if class_names is not None:
        class_legend(fig, class_names, loc="lower center", bbox_to_anchor=(0.5, 0.0))
        fig.subplots_adjust(bottom=0.12)
    fig.tight_layout(rect=(0, 0.06 if class_names is not None else 0, 1, 1))
    return fig


def show_numbers(ax, values, title: str = "", cmap: str = "Blues", vmin=None, vmax=None, outline=None,
                 fontsize: int = 10):
    """A small grid of numbers drawn as coloured cells with each value written in its cell.

    ``values``: a 2D array or tensor. ``outline``: an optional boolean array of the same shape;
    its True cells get a red frame (e.g. where max pooling took its maxima). Used for the tiny
    worked examples of chapters 3 and 4, where the numbers themselves are the point.
    """
    import matplotlib.pyplot as plt

    values = _np(values).astype(float)
    if values.ndim != 2:
        raise ValueError(f"show_numbers draws a 2D grid, got an array of shape {values.shape}")
    ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=fontsize)
        if outline is not None and outline[i, j]:
            ax.add_patch(plt.Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, color="C3", lw=2))
    ax.set_title(title, fontsize=9)
    ax.set_xticks([]), ax.set_yticks([])
    return ax


def plot_history(histories: dict, keys=("loss", "val_loss"), ax=None, title=None):
    """Training curves of one or more runs: ``{"name": History}``; one line per run and key."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 3.5))
    styles = ["-", "--", ":", "-."]
    for i, (name, h) in enumerate(histories.items()):
        for j, key in enumerate(keys):
            values = h[key]
            if values:
                ax.plot(range(1, len(values) + 1), values, styles[j % 4], color=f"C{i}", label=f"{name} {key}")
    ax.set_xlabel("epoch")
    ax.set_ylabel(", ".join(keys))
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return ax.figure


def figure_to_png(fig, dpi: int = 80) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it (used by the static demos)."""
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


# ---------------------------------------------------------------------------------------------
# Chapter 5: the U-Net drawn from a real forward pass
# ---------------------------------------------------------------------------------------------

def unet_feature_shapes(model, input_size: int, in_channels: int | None = None):
    """Run ``model`` (a :class:`segedu.models.UNet`) once and record every block's output.

    Returns a list of dicts ``{"path": "down"|"up"|"head", "level": i, "channels": c,
    "size": (h, w), "skip_from": (h, w) or None}`` in forward order — the data the U-Net figure
    is drawn from. Uses forward hooks, so what is shown is what the network really computed.
    """
    import torch

    records = []
    hooks = []
    for level, block in enumerate(model.down):
        hooks.append(block.register_forward_hook(
            lambda m, i, o, level=level: records.append({"path": "down", "level": level, "channels": o.shape[1],
                                                         "size": tuple(o.shape[-2:]), "input": tuple(i[0].shape[-2:])})))
    for j, block in enumerate(model.decode):
        level = model.depth - 1 - j
        hooks.append(block.register_forward_hook(
            lambda m, i, o, level=level: records.append({"path": "up", "level": level, "channels": o.shape[1],
                                                         "size": tuple(o.shape[-2:]), "input": tuple(i[0].shape[-2:])})))
    hooks.append(model.head.register_forward_hook(
        lambda m, i, o: records.append({"path": "head", "level": 0, "channels": o.shape[1], "size": tuple(o.shape[-2:]),
                                        "input": tuple(i[0].shape[-2:])})))
    # Also the size after every single convolution inside each block (572 -> 570 -> 568 ...).
    conv_sizes = {}
    import torch.nn as nn

    for path, blocks in (("down", model.down), ("up", model.decode)):
        for j, block in enumerate(blocks):
            level = j if path == "down" else model.depth - 1 - j
            for conv in (m for m in block.modules() if isinstance(m, nn.Conv2d)):
                hooks.append(conv.register_forward_hook(
                    lambda m, i, o, key=(path, level): conv_sizes.setdefault(key, []).append(o.shape[-1])))
    was_training = model.training
    model.eval()
    c = in_channels or model.in_channels
    try:
        with torch.no_grad():
            model(torch.zeros(1, c, input_size, input_size))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    for r in records:
        r["conv_sizes"] = conv_sizes.get((r["path"], r["level"]), [])
    return records


def draw_unet(model, input_size: int = 572, ax=None, title: str | None = None):
    """Draw the U of a U-Net with the sizes and channels of a real forward pass at ``input_size``.

    Each box is a block's output feature map (label: channels, then side); grey arrows are the
    skip connections with the crop they need ("crop 568→392"); the U's left side is the
    contracting path, the right side the expansive path.
    """
    import matplotlib.pyplot as plt

    rec = unet_feature_shapes(model, input_size)
    depth = model.depth
    if ax is None:
        _, ax = plt.subplots(figsize=(2.0 + 1.45 * (2 * depth + 2), 1.4 + 1.0 * (depth + 1)))
    down = [r for r in rec if r["path"] == "down"]
    up = [r for r in rec if r["path"] == "up"]
    head = [r for r in rec if r["path"] == "head"][0]
    pos = {}
    for r in down:  # left side of the U, going down
        pos[("down", r["level"])] = (r["level"], -r["level"])
    for r in up:  # right side, going up
        pos[("up", r["level"])] = (2 * depth - r["level"], -r["level"])
    pos[("head",)] = (2 * depth + 1, 0)
    maxc = max(r["channels"] for r in rec)

    def box(xy, r, colour):
        x, y = xy
        h = 0.25 + 0.45 * (r["channels"] / maxc) ** 0.5
        ax.add_patch(plt.Rectangle((x - 0.32, y - h / 2), 0.64, h, facecolor=colour, edgecolor="k", lw=0.8))
        sides = [r["input"][0]] + r.get("conv_sizes", []) if r["path"] != "head" else [r["size"][0]]
        ax.text(x, y + h / 2 + 0.05, f"{r['channels']} ch", ha="center", va="bottom", fontsize=8)
        ax.text(x, y - h / 2 - 0.05, "→".join(str(v) for v in sides), ha="center", va="top", fontsize=7.5)

    ax.text(-0.9, 0, f"input\n{input_size}×{input_size}", ha="center", va="center", fontsize=8)
    ax.annotate("", xy=(-0.35, 0), xytext=(-0.6, 0), arrowprops=dict(arrowstyle="->"))
    for r in down:
        box(pos[("down", r["level"])], r, "#56B4E9")
    for r in up:
        box(pos[("up", r["level"])], r, "#E69F00")
    box(pos[("head",)], head, "#009E73")
    # pooling (down) and up-convolution (up) arrows
    for lv in range(depth):
        (x0, y0), (x1, y1) = pos[("down", lv)], pos[("down", lv + 1)]
        ax.annotate("", xy=(x1 - 0.1, y1 + 0.3), xytext=(x0 + 0.1, y0 - 0.3), arrowprops=dict(arrowstyle="->", color="C3"))
        src = ("down", depth) if lv == depth - 1 else ("up", lv + 1)
        (x0, y0), (x1, y1) = pos[src], pos[("up", lv)]
        ax.annotate("", xy=(x1 - 0.1, y1 - 0.3), xytext=(x0 + 0.1, y0 + 0.3), arrowprops=dict(arrowstyle="->", color="C2"))
        # skip: copy (and crop) across the U
        skip = next(r for r in down if r["level"] == lv)["size"][0]
        target = next(r for r in up if r["level"] == lv)["input"][0]
        (x0, y0), (x1, y1) = pos[("down", lv)], pos[("up", lv)]
        ax.annotate("", xy=(x1 - 0.35, y1), xytext=(x0 + 0.35, y0), arrowprops=dict(arrowstyle="->", color="0.5", ls="--"))
        out_of_up = 2 * next(r for r in (down + up) if (r["path"], r["level"]) == src)["size"][0]
        label = "copy" if skip == out_of_up else f"copy and crop {skip}→{out_of_up}"
        ax.text((x0 + x1) / 2, y0 + 0.08, label, ha="center", va="bottom", fontsize=7, color="0.3")
    ax.annotate("", xy=(pos[("head",)][0] - 0.35, 0), xytext=(pos[("up", 0)][0] + 0.35, 0), arrowprops=dict(arrowstyle="->"))
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles = [Patch(facecolor="#56B4E9", edgecolor="k", label="contracting path (2 conv 3×3)"),
               Patch(facecolor="#E69F00", edgecolor="k", label="expansive path (2 conv 3×3)"),
               Patch(facecolor="#009E73", edgecolor="k", label="1×1 conv → classes"),
               Line2D([], [], color="C3", label="max pool 2×2"), Line2D([], [], color="C2", label="up-conv 2×2"),
               Line2D([], [], color="0.5", ls="--", label="skip connection")]
    ax.legend(handles=handles, loc="lower right", fontsize=7, frameon=False)
    ax.set_xlim(-1.5, 2 * depth + 1.6)
    ax.set_ylim(-depth - 0.9, 0.9)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or f"{type(model).__name__}(depth={depth}, padding={model.padding!r}) at {input_size}×{input_size}"
                 f" → {head['size'][0]}×{head['size'][0]}", fontsize=9)
    return ax.figure


# ---------------------------------------------------------------------------------------------
# Chapter 6: the X^{i,j} grid of the UNet++ family, drawn from the model object
# ---------------------------------------------------------------------------------------------

def nested_grid(model):
    """Nodes and edges of a model on the UNet++ grid: ``(nodes, skips, ups, downs, heads)``.

    ``nodes`` are ``(i, j)`` pairs read from the model's ``nodes`` ModuleDict (``"x_i_j"``); a
    :class:`segedu.models.UNet` of depth L is placed on the grid as the paper does (encoder
    X^{i,0}, decoder X^{L-j,j}).
    """
    if hasattr(model, "nodes"):
        nodes = sorted(tuple(int(v) for v in k.split("_")[1:]) for k in model.nodes.keys())
        same_row = model.same_row
        skips = [((i, k), (i, j)) for i, j in nodes if j > 0 for k in same_row(j)]
        ups = [((i + 1, j - 1), (i, j)) for i, j in nodes if j > 0]
        if hasattr(model, "heads"):
            heads = [int(k.split("_")[2]) for k in model.heads.keys()]
        else:
            heads = [model.level]
    else:  # a plain U-Net of depth L
        L = model.depth
        nodes = [(i, 0) for i in range(L + 1)] + [(L - j, j) for j in range(1, L + 1)]
        skips = [((L - j, 0), (L - j, j)) for j in range(1, L + 1)]
        ups = [((L - j + 1, j - 1), (L - j, j)) for j in range(1, L + 1)]
        heads = [L]
    depth = max(i for i, _ in nodes)
    downs = [((i, 0), (i + 1, 0)) for i in range(depth)]
    return nodes, skips, ups, downs, heads


def draw_nested_grid(model, ax=None, title: str | None = None):
    """Draw a model of the UNet++ family (or a U-Net) as the paper's grid of nodes X^{i,j}.

    Blue: encoder nodes X^{i,0}; orange: decoder nodes; grey arrows: skip connections (same row);
    green: up-sampling; red: down-sampling; a green ring marks each node that has an output head.
    """
    import matplotlib.pyplot as plt

    nodes, skips, ups, downs, heads = nested_grid(model)
    depth = max(i for i, _ in nodes)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 1.1 * (depth + 1), 0.8 + 1.0 * (depth + 1)))
    xy = {n: (n[1] + 0.5 * n[0], -n[0]) for n in nodes}  # the paper's slanted layout

    def arrow(a, b, colour, rad=0.0, ls="-"):
        ax.annotate("", xy=xy[b], xytext=xy[a],
                    arrowprops=dict(arrowstyle="->", color=colour, lw=1.1, ls=ls, shrinkA=11, shrinkB=11,
                                    connectionstyle=f"arc3,rad={rad}"))

    for a, b in downs:
        arrow(a, b, "C3")
    for a, b in ups:
        arrow(a, b, "C2")
    for a, b in skips:
        arrow(a, b, "0.45", rad=-0.35 if b[1] - a[1] > 1 else 0.0, ls="--")
    for n in nodes:
        colour = "#56B4E9" if n[1] == 0 else "#E69F00"
        ax.add_patch(plt.Circle(xy[n], 0.2, facecolor=colour, edgecolor="k", lw=0.8, zorder=3))
        ax.text(*xy[n], f"{n[0]},{n[1]}", ha="center", va="center", fontsize=7, zorder=4)
        if n[0] == 0 and n[1] in heads:
            ax.add_patch(plt.Circle(xy[n], 0.27, fill=False, edgecolor="#009E73", lw=2, zorder=2))
    ax.set_xlim(-0.5, max(x for x, _ in xy.values()) + 0.5)
    ax.set_ylim(-depth - 0.5, 0.6)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(title or type(model).__name__, fontsize=9)
    return ax.figure


# --- chapter 7: comparing models ---------------------------------------------------------------

def plot_comparison(rows: list[dict], metric: str = "mean_iou", models=None, datasets=None, size=(4.2, 3.6)):
    """One panel per dataset: a bar per model at its mean over seeds, one dot per seed.

    With a handful of seeds a standard deviation says little; the dots show every run, so the
    reader sees at once whether two bars differ by more than the seeds do. ``rows`` is the output
    of :func:`segedu.experiments.compare`.
    """
    import matplotlib.pyplot as plt

    models = list(models or dict.fromkeys(r["model"] for r in rows))
    datasets = list(datasets or dict.fromkeys(r["dataset"] for r in rows))
    fig, axes = plt.subplots(1, len(datasets), figsize=(size[0] * len(datasets), size[1] * len(models) / 11 + 0.8),
                             sharey=True, squeeze=False)
    for ax, dname in zip(axes[0], datasets):
        for i, m in enumerate(models):
            vals = [r[metric] for r in rows if r["dataset"] == dname and r["model"] == m]
            if not vals:
                continue
            ax.barh(i, float(np.mean(vals)), color=CLASS_COLORS[5], alpha=0.45)
            ax.plot(vals, [i] * len(vals), "o", color="black", markersize=3.5)
        ax.set_yticks(range(len(models)), models, fontsize=8)
        ax.set_xlabel(f"{metric.replace('_', ' ')} (bar: mean, dots: seeds)", fontsize=8)
        ax.set_title(dname), ax.grid(axis="x", alpha=0.3)
    axes[0, 0].invert_yaxis()
    fig.tight_layout()
    return fig


def plot_pareto(summary: list[dict], cost: str = "infer_ms_per_image", score: str = "mean_iou", datasets=None,
                size=(5.2, 4.4)):
    """Score against cost, one panel per dataset, with the Pareto front drawn and its models in blue.

    ``summary`` is the output of :func:`segedu.experiments.summarize`; the cost axis is logarithmic.
    """
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    datasets = list(datasets or dict.fromkeys(r["dataset"] for r in summary))
    fig, axes = plt.subplots(1, len(datasets), figsize=(size[0] * len(datasets), size[1]), squeeze=False)
    for ax, dname in zip(axes[0], datasets):
        rs = [r for r in summary if r["dataset"] == dname]
        front = pareto_front(rs, cost, score)
        for r in rs:
            on = r["model"] in front
            ax.scatter(r[cost], r[score], color="C0" if on else "0.6", zorder=3, s=22 if on else 14)
            ax.annotate(r["model"], (r[cost], r[score]), fontsize=6.5, textcoords="offset points", xytext=(3, 2),
                        color="black" if on else "0.45")
        pts = sorted((r[cost], r[score]) for r in rs if r["model"] in front)
        ax.plot(*zip(*pts), "--", color="C0", label="Pareto front")
        ax.set_xscale("log"), ax.set_xlabel(cost.replace("_", " ") + " (log scale)"), ax.set_ylabel(score.replace("_", " "))
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))  # 2, 3, 5 rather than 2x10^0
        ax.xaxis.set_minor_formatter(ticker.FormatStrFormatter("%g"))
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_title(dname), ax.legend(fontsize=8, loc="best"), ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def compare_predictions(images, masks, preds: dict, class_names=None, size: float = 1.25):
    """One row per image: the image, its ground truth, then every model's prediction (labels or scores).

    ``preds`` maps a model name to predictions for all ``images`` (``[N, H, W]`` labels or
    ``[N, K, H, W]`` scores). Column titles are the model names.
    """
    import matplotlib.pyplot as plt

    n, names = len(images), list(preds)
    labels = {name: as_labels(torch.as_tensor(p)) for name, p in preds.items()}
    for name, lab in labels.items():
        if len(lab) != n:
            raise ValueError(f"preds[{name!r}] holds {len(lab)} predictions for {n} images")
    cols = len(names) + 2
    fig, axes = plt.subplots(n, cols, figsize=(size * cols, size * n + 0.9), squeeze=False)
    for r in range(n):
        img = to_image(images[r])
        axes[r, 0].imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
        axes[r, 1].imshow(colorize(masks[r]), interpolation="nearest")
        for c, name in enumerate(names):
            axes[r, c + 2].imshow(colorize(labels[name][r]), interpolation="nearest")
    for c, title in enumerate(["image", "truth"] + names):
        axes[0, c].set_title(title, fontsize=6.5, rotation=35, ha="left", va="bottom", x=0.1)
    for ax in axes.flat:
        ax.set_xticks([]), ax.set_yticks([])
    if class_names is not None:
        class_legend(fig, class_names, loc="lower center")
    fig.tight_layout(rect=(0, 0.07 if class_names is not None else 0, 1, 1))
    return fig


# Verdict colours, from the same Okabe-Ito palette: blue when the first model wins, vermillion when
# the second does (a pair colour-blind readers can tell apart), grey when the seeds cannot tell.
# The marker fill repeats the message (hollow = unresolved) so the figure survives greyscale print.
_VERDICT_STYLE = {"a>b": (CLASS_COLORS[5], "a > b (interval above 0)"),
                  "b>a": (CLASS_COLORS[6], "b > a (interval below 0)"),
                  "unresolved": (np.array([0.5, 0.5, 0.5]), "unresolved (interval holds 0)")}


def plot_forest(verdicts, ax=None, title=None):
    """A forest plot of paired verdicts: one row per comparison, its mean difference and interval.

    ``verdicts`` are the dicts of :func:`segedu.summary.paired_verdict` (or one of them). Each row
    is a dot at the mean paired difference a - b and a bar over its confidence interval; the dashed
    line is zero, so a bar that crosses it is a comparison the seeds do not settle. Rows are
    labelled "a vs b (metric[, dataset])" and annotated with the seed count and a's wins. Rows of
    different metrics share the axis, so compare bars with the zero line, not with each other.
    """
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.transforms import ScaledTranslation

    if isinstance(verdicts, dict):
        verdicts = [verdicts]
    verdicts = list(verdicts)
    if not verdicts:
        raise ValueError("plot_forest needs at least one verdict")
    own_figure = ax is None
    if own_figure:
        _, ax = plt.subplots(figsize=(7.5, 1.2 + 0.42 * len(verdicts)))
    ax.axvline(0.0, color="0.3", lw=0.9, ls="--", zorder=1)
    labels = []
    for i, v in enumerate(verdicts):
        colour, _ = _VERDICT_STYLE[v["verdict"]]
        has_ci = not (np.isnan(v["ci_low"]) or np.isnan(v["ci_high"]))
        # errorbar wants distances from the dot, not the interval's ends
        xerr = [[v["mean_diff"] - v["ci_low"]], [v["ci_high"] - v["mean_diff"]]] if has_ci else None
        ax.errorbar([v["mean_diff"]], [i], xerr=xerr, fmt="o", color=colour, ecolor=colour, capsize=3, lw=1.6,
                    markersize=6, markerfacecolor="white" if v["verdict"] == "unresolved" else colour, zorder=3)
        where = f", {v['dataset']}" if v.get("dataset") is not None else ""
        labels.append(f"{v['a']} vs {v['b']} ({v['metric']}{where})")
        # the seed count sits just right of the axes, at the row's height, whatever the x range
        note = f"n={v['n']}, wins {v['wins']}/{v['n']}" + ("" if has_ci else " (no CI)")
        ax.annotate(note, (1.01, i), xycoords=("axes fraction", "data"), va="center", fontsize=7.5, color="0.25")
    ax.set_yticks(range(len(verdicts)), labels, fontsize=8)
    ax.set_ylim(len(verdicts) - 0.5, -0.5)  # first verdict on top, as it reads in a list
    levels = {v.get("level", 0.95) for v in verdicts}
    ci = f"{100 * levels.pop():g}% CI" if len(levels) == 1 else "CI"
    ax.set_xlabel(f"paired difference a − b over seeds (dot: mean, bar: {ci})", fontsize=8)
    present = list(dict.fromkeys(v["verdict"] for v in verdicts))
    handles = [Line2D([], [], marker="o", ls="-", color=_VERDICT_STYLE[k][0], label=_VERDICT_STYLE[k][1],
                      markerfacecolor="white" if k == "unresolved" else _VERDICT_STYLE[k][0]) for k in present]
    # under the x label (a fixed 34 points below the axes), where it can never cover a row
    below = ax.transAxes + ScaledTranslation(0, -34 / 72, ax.figure.dpi_scale_trans)
    ax.legend(handles=handles, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below,
              ncol=len(handles), frameon=False)
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title)
    if own_figure:  # a caller's axes keep the caller's layout
        ax.figure.tight_layout()
    return ax.figure
