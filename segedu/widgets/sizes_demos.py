"""Demos of chapter 5: the valid-padding U-Net's sizes, and its weight map.

* :func:`unet_size_calculator`: pick an input side and follow it down and up the U-Net: every
  level's sides, every skip's crop, and why most sides are not valid (an odd side before a
  pooling, an uneven crop), with the nearest valid sides. The arithmetic is
  :func:`segedu.sizes.unet_levels`, the same the model's input check uses.
* :func:`weight_map_explorer`: the paper's weight map of touching cells under different ``w0``
  and ``sigma`` (:func:`segedu.losses.unet_weight_map`).

Each returns an :class:`~segedu.widgets.Explorer`; matplotlib is imported when a frame is drawn.
"""

from __future__ import annotations

import textwrap

import numpy as np

from ..losses import unet_weight_map
from ..sizes import nearest_valid_input_size, unet_levels
from .explorer import Explorer

__all__ = ["unet_size_calculator", "weight_map_explorer"]


def _draw_unet_levels(levels, ax):
    """The U of a valid-padding U-Net drawn from :func:`segedu.sizes.unet_levels` (arithmetic only)."""
    import matplotlib.pyplot as plt

    d = levels.depth
    bad = "#D55E00"

    def box(x, y, text, colour):
        ax.add_patch(plt.Rectangle((x - 0.46, y - 0.2), 0.92, 0.4, facecolor=colour, edgecolor="k", lw=0.7))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)

    for rec in levels.down:  # contracting path: input -> conv -> conv, then pool
        lv = rec["level"]
        box(lv, -lv, "→".join(str(v) for v in [rec["input"]] + rec["convs"]), "#56B4E9")
        if rec["pooled"] is not None:
            colour = bad if rec["odd"] else "C3"
            ax.annotate("", xy=(lv + 0.85, -lv - 0.8), xytext=(lv + 0.15, -lv - 0.2),
                        arrowprops=dict(arrowstyle="->", color=colour))
            note = f"pool: {rec['convs'][-1]} is odd!" if rec["odd"] else "pool ÷2"
            ax.text(lv + 0.62, -lv - 0.42, note, fontsize=8, color=colour, ha="left")
    for rec in levels.up:  # expansive path: up-conv, crop-and-concatenate, conv -> conv
        lv = rec["level"]
        x = 2 * d - lv
        ax.annotate("", xy=(x - 0.15, -lv - 0.2), xytext=(x - 0.85, -lv - 0.8), arrowprops=dict(arrowstyle="->", color="C2"))
        box(x, -lv, "→".join(str(v) for v in [rec["upconv"]] + rec["convs"]), "#E69F00")
        crop = rec["crop"]
        ok = crop >= 0 and crop % 2 == 0
        label = ("copy" if crop == 0 else f"crop {rec['skip']}→{rec['upconv']} ({crop // 2} per side)") if ok else \
            f"crop {rec['skip']}→{rec['upconv']}\n{crop} px: uneven!"
        ax.annotate("", xy=(x - 0.5, -lv), xytext=(lv + 0.5, -lv),
                    arrowprops=dict(arrowstyle="->", color="0.45" if ok else bad, ls="--"))
        ax.text((x + lv) / 2, -lv + 0.06, label, ha="center", va="bottom", fontsize=8, color="0.25" if ok else bad)
    ax.set_xlim(-0.6, 2 * d + 0.6)
    ax.set_ylim(-d - 0.45, 0.45)
    ax.axis("off")


def unet_size_calculator(sides=None, depth: int = 4, default: int | None = None) -> Explorer:
    """Demo: pick an input side and follow it down and up the valid-padding U-Net.

    Every level shows its sides (input → conv → conv), every skip the crop it needs, and the
    title says whether the side is valid — with the nearest valid sides when it is not. The
    numbers come from :func:`segedu.sizes.unet_levels`, the same arithmetic the model's input
    check uses. Introduced in chapter 5.

    Args:
        sides: the input sides offered (default: 140, 148, ..., 452 and 500, 508, 572 for depth 4).
        depth: the number of poolings (4 in the paper).
        default: the side shown first (default: 572 if offered, else the first).
    """
    import matplotlib.pyplot as plt

    if sides is None:
        sides = list(range(140, 460, 8)) + [500, 508, 572] if depth == 4 else \
            [s for s in range(8, 8 * 2**depth + 8, 2**(depth - 1))][:48]
    sides = [int(s) for s in sides]
    if default is None:
        default = 572 if 572 in sides else sides[0]

    def render(side):
        levels = unet_levels(side, depth)
        fig, ax = plt.subplots(figsize=(0.6 + 0.95 * (2 * depth + 1), 0.9 + 0.62 * (depth + 1)))
        _draw_unet_levels(levels, ax)
        if levels.valid:
            msg = (f"input {side}: valid → output {levels.output_size}×{levels.output_size}, "
                   f"k = {levels.k} (side before the first up-conv), {side} = {2**depth}·{levels.k} + {side - 2**depth * levels.k}")
        else:
            lo, hi = nearest_valid_input_size(side, depth)
            msg = "\n".join(textwrap.wrap(f"input {side}: NOT valid — {levels.problem}.", 95)
                            + [f"Nearest valid sides: {lo} (smaller) and {hi} (larger)" if lo else
                               f"The smallest valid side is {hi}"])
        ax.set_title("\n".join(textwrap.wrap(msg, 95)) if "\n" not in msg else msg, fontsize=9, color="k" if levels.valid else "#D55E00")
        fig.tight_layout()
        return fig

    return Explorer(render, {"side": sides}, title=f"U-Net size calculator (valid padding, depth {depth})",
                    defaults={"side": default}, dpi=60)


def weight_map_explorer(instances, w0s=(0, 2, 5, 10, 20), sigmas=(2, 3, 5, 8), image=None) -> Explorer:
    """Demo: the U-Net weight map of an instance map under different ``w0`` and ``sigma``.

    Left: the cells (or ``image``); right: :func:`segedu.losses.unet_weight_map` with the chosen
    parameters, on a fixed colour scale so that settings can be compared. Introduced in chapter 5.
    """
    import matplotlib.pyplot as plt

    instances = np.asarray(instances)
    unet_weight_map(instances, w0=1.0, sigma=1.0)  # validate the map once, before any frame is drawn
    vmax = max(float(unet_weight_map(instances, w0=max(w0s), sigma=max(sigmas)).max()), 1.0)

    def render(w0, sigma):
        w = unet_weight_map(instances, w0=float(w0), sigma=float(sigma))
        fig, axes = plt.subplots(1, 2, figsize=(5.0, 2.4))
        if image is not None:
            axes[0].imshow(np.asarray(image), cmap="gray")
        else:
            axes[0].imshow(instances, cmap="tab20", interpolation="nearest")
        axes[0].set_title(f"{len(np.unique(instances[instances > 0]))} cells", fontsize=8)
        im = axes[1].imshow(w, cmap="viridis", vmin=0, vmax=vmax)
        fig.colorbar(im, ax=axes[1], fraction=0.046)
        axes[1].set_title(f"w0 = {w0:g}, σ = {sigma:g}: max weight {w.max():.1f}", fontsize=8)
        for ax in axes:
            ax.set_xticks([]), ax.set_yticks([])
        fig.tight_layout()
        return fig

    return Explorer(render, {"w0": list(w0s), "sigma": list(sigmas)}, title="U-Net weight map: w0 and σ",
                    defaults={"w0": 10 if 10 in w0s else w0s[0], "sigma": 5 if 5 in sigmas else sigmas[0]}, dpi=60)
