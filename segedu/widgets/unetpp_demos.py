"""Demos of chapter 6: the UNet++ family, and pruning a deeply supervised UNet++.

* :func:`family_explorer`: UNet-e, UNet+, UNet++ side by side: the same nested grid of nodes,
  with more or fewer skip connections between them.
* :func:`pruning_explorer`: a UNet++ trained with deep supervision can be cut back to its first
  ``L`` levels at inference time; see the pruned grid, its prediction, its IoU and its speed.
* :func:`inference_ms`: the speed in that trade-off (median milliseconds per image on the CPU).

The explorers return an :class:`~segedu.widgets.Explorer`; matplotlib is imported when a frame
is drawn.
"""

from __future__ import annotations

import statistics
import time

import torch

from .. import metrics as M
from ..models import count_parameters
from ..viz import draw_nested_grid
from .explorer import Explorer

__all__ = ["inference_ms", "pruning_explorer", "family_explorer"]


def inference_ms(model, image_size: int = 256, batch: int = 4, repeats: int = 5, in_channels: int | None = None) -> float:
    """Median wall-clock milliseconds per image of ``model`` on random ``image_size``² inputs (CPU).

    One warm-up call, then the median of ``repeats`` timed calls on a batch of ``batch`` images.
    Introduced in chapter 6 (the pruning trade-off).
    """
    c = in_channels or getattr(model, "in_channels", 1)
    x = torch.rand(batch, c, image_size, image_size, generator=torch.Generator().manual_seed(0))
    model.eval()
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times) / batch


def pruning_explorer(model, images, masks, sample: int = 0, times_ms=None) -> Explorer:
    """Demo: prune a deeply supervised UNet++ to L1..L4 and see its grid, output, IoU and speed.

    Args:
        model: a trained UNet++ (or UNet-e / UNet+) built with ``deep_supervision=True``.
        images, masks: held-out ``[N, C, H, W]`` images and ``[N, H, W]`` binary masks; the IoU shown
            is the foreground IoU over all of them, the picture shows image ``sample``.
        times_ms: optional ``{level: ms per image}`` measured beforehand (else measured here with
            :func:`inference_ms`).

    Introduced in chapter 6.
    """
    import matplotlib.pyplot as plt

    if not getattr(model, "deep_supervision", False):
        raise ValueError("pruning_explorer needs a model built with deep_supervision=True (one head per level)")
    levels = list(range(1, model.depth + 1))
    subs = {L: model.pruned(L).eval() for L in levels}
    with torch.no_grad():
        outs = {L: subs[L](images) for L in levels}
    ious = {L: M.iou(outs[L], masks, 2)[1].item() for L in levels}
    times_ms = dict(times_ms or {L: inference_ms(subs[L]) for L in levels})
    params = {L: count_parameters(subs[L]) for L in levels}

    def render(level):
        fig, axes = plt.subplots(1, 3, figsize=(8.4, 2.8), gridspec_kw={"width_ratios": [1.5, 1, 1]})
        draw_nested_grid(subs[level], ax=axes[0], title=f"UNet++ L{level}: {params[level]:,} parameters")
        axes[1].imshow(images[sample].permute(1, 2, 0).squeeze(-1).clamp(0, 1).numpy(), cmap="gray")
        axes[1].set_title("image", fontsize=9)
        axes[2].imshow(M.as_labels(outs[level][sample : sample + 1])[0].numpy(), cmap="gray", interpolation="nearest")
        axes[2].set_title(f"IoU {ious[level]:.3f} (test set)\n{times_ms[level]:.1f} ms / 256² image", fontsize=9)
        for ax in axes[1:]:
            ax.set_xticks([]), ax.set_yticks([])
        fig.tight_layout()
        return fig

    return Explorer(render, {"level": levels}, title="Pruning UNet++: level L", defaults={"level": levels[-1]}, dpi=60)


def family_explorer(models: dict) -> Explorer:
    """Demo: switch between members of the UNet++ family (``{name: model}``) and see their grids.

    Introduced in chapter 6.
    """
    import matplotlib.pyplot as plt

    if not models:
        raise ValueError("family_explorer needs at least one {name: model}")

    def render(member):
        fig, ax = plt.subplots(figsize=(4.2, 3.4))
        m = models[member]
        n = count_parameters(m)
        draw_nested_grid(m, ax=ax, title=f"{member} ({n:,} parameters)")
        fig.tight_layout()
        return fig

    return Explorer(render, {"member": list(models)}, title="The UNet++ family", dpi=60)
