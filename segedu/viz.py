"""Figures drawn from real objects: images, masks, predictions, training curves.

One fixed class colour map is used throughout the course, built from the Okabe-Ito palette,
which stays distinguishable for the common forms of colour blindness. Every mask figure gets a
legend naming the classes.

Introduced in chapter 1; later chapters add architecture drawings.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["CLASS_COLORS", "colorize", "to_image", "overlay", "class_legend", "show_samples",
           "plot_history", "figure_to_png"]

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

    from .metrics import as_labels

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
