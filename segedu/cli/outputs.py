"""The pictures the commands write: masks, colour overlays and the training preview.

* :func:`save_mask`: the predicted classes as a PNG of class indices, exactly the format
  :class:`segedu.data.ImageFolder` reads from ``masks/``, so predictions, once corrected, can
  become training data again;
* :func:`save_stack`: the pages of a multi-page input (a TIFF stack) as one multi-page TIFF, mask
  or overlay, so that a stack in gives a stack out;
* :func:`overlay_image`: class colours (:data:`segedu.viz.CLASS_COLORS`) blended over the image,
  for a person to look at;
* :func:`preview`: ``train``'s ``preview.png``, validation images over their true and predicted
  masks.

They are drawn with Pillow, not matplotlib: a command writes plain pixels, no figure. Every file is
written atomically (:func:`segedu.checkpoint.atomic_write`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import atomic_write
from ..inference import segment_image
from ..viz import CLASS_COLORS

__all__ = ["overlay_image", "save_png", "save_mask", "save_stack", "preview"]


def _colour(labels: np.ndarray) -> np.ndarray:
    return CLASS_COLORS[np.asarray(labels) % len(CLASS_COLORS)]


def _rgb(image: torch.Tensor) -> np.ndarray:
    a = image.detach().cpu().numpy()
    a = np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a[:3]
    return np.clip(a.transpose(1, 2, 0), 0, 1)


def overlay_image(image: torch.Tensor, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``uint8 [H, W, 3]``: class colours blended over the image (class 0 left as it is); ``0 <= alpha <= 1``."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha (the opacity of the overlay colours) must be between 0 and 1, got {alpha}")
    img = _rgb(image)
    labels = np.asarray(labels)
    fg = labels > 0
    img[fg] = (1 - alpha) * img[fg] + alpha * _colour(labels)[fg]
    return (img * 255 + 0.5).astype(np.uint8)


def save_png(array: np.ndarray, path: Path) -> None:
    """``array`` (``uint8``/``uint16`` ``[H, W]`` or ``uint8 [H, W, 3]``) as a PNG, written atomically."""
    from PIL import Image

    atomic_write(path, lambda tmp: Image.fromarray(array).save(tmp, format="PNG"))


def save_mask(labels: np.ndarray, path: Path) -> None:
    """A mask PNG of class indices (8-bit up to 256 classes, else 16-bit): valid ``masks/`` input again."""
    labels = np.asarray(labels)
    save_png(labels.astype(np.uint8) if labels.max(initial=0) < 256 else labels.astype(np.uint16), path)


def save_stack(pages, path: Path) -> None:
    """Arrays of one kind (``uint8``/``uint16`` ``[H, W]`` or ``uint8 [H, W, 3]``) as the pages of one
    multi-page TIFF, written atomically; :class:`segedu.data.ImageFolder` reads every page."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(p)) for p in pages]
    atomic_write(path, lambda tmp: images[0].save(tmp, format="TIFF", save_all=True, append_images=images[1:]))


def preview(model: nn.Module, samples, path: Path, cell: int = 128) -> None:
    """``preview.png``: one column per validation image; rows image / true mask / prediction."""
    from PIL import Image, ImageDraw

    rows = []
    for image, mask in samples:
        pred = segment_image(model, image).numpy()
        rows.append([(_rgb(image) * 255).astype(np.uint8), (_colour(mask.numpy()) * 255).astype(np.uint8),
                     (_colour(pred) * 255).astype(np.uint8)])
    label_w, gap = 80, 4
    canvas = Image.new("RGB", (label_w + len(rows) * (cell + gap), 3 * (cell + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, name in enumerate(("image", "truth", "prediction")):
        draw.text((4, r * (cell + gap) + cell // 2 - 6), name, fill="black")
        for c, panels in enumerate(rows):
            tile = Image.fromarray(panels[r]).resize((cell, cell), Image.NEAREST)
            canvas.paste(tile, (label_w + c * (cell + gap), r * (cell + gap)))
    atomic_write(path, lambda tmp: canvas.save(tmp, format="PNG"))
