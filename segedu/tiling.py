"""Overlap-tile inference: segment an image of any size with a valid-padding U-Net.

A valid-padding U-Net predicts a smaller square than it sees: 572x572 in, the central 388x388
out. To segment a whole image, the U-Net paper slides the *input* window (its Figure 2, blue) so
that the *output* tiles (yellow) cover the image; the context a border tile needs beyond the
image is filled by mirroring the image.

One subtlety makes the tiles stitch *exactly*: the network contains 2x2 poolings, so it is only
equivariant to shifts that are multiples of ``2**depth`` (16 for the paper's U-Net). Tiles are
therefore placed at offsets that are multiples of 16 — the output step is the largest multiple of
16 not exceeding the output tile (384 for 388) — and every tile then computes exactly what the
whole mirror-padded image would compute at that place. ``predict_tiled`` checks nothing at run
time for this; ``tests/test_tiling.py`` checks it (float64, random sizes).

Introduced in chapter 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .models.utils import last_output
from .sizes import covering_input_size, nearest_valid_input_size, unet_output_size, valid_input_sizes

__all__ = ["TileLayout", "tile_layout", "mirror_pad", "predict_tiled"]


@dataclass(frozen=True)
class TileLayout:
    """Where the tiles go, in the coordinates of the original image (output) and of the padded image (input)."""

    image_size: tuple[int, int]
    tile_size: int          # input window side (blue)
    out_size: int           # output tile side (yellow)
    step: int               # distance between tiles: a multiple of 2**depth
    margin: int             # context on each side: (tile_size - out_size) / 2
    offsets: tuple[tuple[int, ...], tuple[int, ...]]  # tile origins along y and x (output coordinates)
    padded_size: tuple[int, int]

    @property
    def num_tiles(self) -> int:
        return len(self.offsets[0]) * len(self.offsets[1])


def tile_layout(image_size, tile_size: int = 572, depth: int = 4) -> TileLayout:
    """Plan the tiles for an ``(H, W)`` image and a valid-padding U-Net of ``depth``."""
    H, W = (image_size, image_size) if isinstance(image_size, int) else map(int, image_size)
    if H < 1 or W < 1:
        raise ValueError(f"image size must be positive, got {(H, W)}")
    out = unet_output_size(tile_size, depth)  # raises with the nearest valid sizes if invalid
    grid = 2**depth
    step = (out // grid) * grid
    if step < 1:
        lo, hi = nearest_valid_input_size(tile_size + grid * 4, depth)
        raise ValueError(f"tile_size {tile_size} gives an output of only {out} pixels, less than one pooling cell "
                         f"({grid}); use a larger tile, e.g. {hi}")
    margin = (tile_size - out) // 2

    def offsets(n):
        count = max(1, -(-(n - out) // step) + 1) if n > out else 1
        return tuple(i * step for i in range(count))

    oy, ox = offsets(H), offsets(W)
    padded = (oy[-1] + tile_size, ox[-1] + tile_size)
    return TileLayout((H, W), tile_size, out, step, margin, (oy, ox), padded)


def mirror_pad(image: torch.Tensor, top: int, bottom: int, left: int, right: int) -> torch.Tensor:
    """Mirror (reflect) the last two dimensions by any amount, also more than the image's size.

    ``torch.nn.functional.pad(mode="reflect")`` refuses pads larger than the image; NumPy's
    ``reflect`` keeps reflecting, which is what a small image inside a large tile needs.
    """
    pad = [(0, 0)] * (image.dim() - 2) + [(top, bottom), (left, right)]
    if min(image.shape[-2:]) == 1:  # a single row/column cannot be reflected: repeat it
        return torch.from_numpy(np.pad(image.detach().cpu().numpy(), pad, mode="edge")).to(image.device)
    return torch.from_numpy(np.pad(image.detach().cpu().numpy(), pad, mode="reflect")).to(image.device)


def _model_depth(model) -> int:
    depth = getattr(model, "depth", None)
    if not isinstance(depth, int):
        raise TypeError("predict_tiled needs a U-Net-like model with an integer .depth (number of poolings)")
    if getattr(model, "padding", "valid") != "valid":
        raise ValueError("overlap-tile is for valid-padding networks; a padding='same' network can take the "
                         "whole image directly (sizes divisible by 2**depth)")
    return depth


@torch.no_grad()
def predict_tiled(model, image: torch.Tensor, tile_size: int | None = None, batch_size: int = 4,
                  return_layout: bool = False, progress: bool = False):
    """Segment ``image`` (``[C, H, W]`` or ``[N, C, H, W]``, any ``H, W``) tile by tile.

    Args:
        model: a valid-padding U-Net in eval mode (anything with ``.depth`` and ``padding="valid"``).
        tile_size: input window side; must be a valid input size (572 for the paper's network).
            Default: the smallest valid size whose tiles cover the image in one tile, capped at 572.
        batch_size: tiles per forward pass.
        return_layout: also return the :class:`TileLayout` (for figures).

    Returns:
        scores ``[N, K, H, W]`` (``[K, H, W]`` for a single image) — identical to running the model
        once on the whole mirror-padded image and cropping.
    """
    depth = _model_depth(model)
    if not torch.is_tensor(image) or image.dim() not in (3, 4):
        raise ValueError(f"image must be a tensor [C, H, W] or [N, C, H, W], got {getattr(image, 'shape', type(image))}")
    if not image.is_floating_point():
        raise TypeError(f"image must be a float tensor (e.g. scaled to [0, 1]), got {image.dtype}")
    expected = getattr(model, "in_channels", None)
    if expected is not None and image.shape[-3] != expected:
        raise ValueError(f"image has {image.shape[-3]} channels but the model expects in_channels={expected}")
    single = image.dim() == 3
    x = image[None] if single else image
    H, W = x.shape[-2:]
    if tile_size is None:  # one tile for the whole image, but no larger than the paper's 572 (or the smallest valid)
        sizes = valid_input_sizes(depth, max_size=572) or [nearest_valid_input_size(572, depth)[1]]
        tile_size = min(covering_input_size(max(H, W), depth), sizes[-1])
    layout = tile_layout((H, W), tile_size, depth)
    m, t, o = layout.margin, layout.tile_size, layout.out_size
    Py, Px = layout.padded_size
    padded = mirror_pad(x, m, Py - H - m, m, Px - W - m)
    device = next(model.parameters()).device
    # One list of jobs over all images and tile positions, so a batch may mix images.
    jobs = [(n, y, xo) for n in range(x.shape[0]) for y in layout.offsets[0] for xo in layout.offsets[1]]
    starts = range(0, len(jobs), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"overlap-tile ({len(jobs)} tiles)", leave=False, mininterval=0.5)
    canvas = None
    for start in starts:
        chunk = jobs[start : start + batch_size]
        tiles = torch.stack([padded[n, :, y : y + t, xo : xo + t] for n, y, xo in chunk]).to(device)
        out = model(tiles)
        out = last_output(out).to("cpu")  # deep supervision: the last head
        if canvas is None:
            canvas = out.new_empty(x.shape[0], out.shape[1], Py - 2 * m, Px - 2 * m)
        for (n, y, xo), tile_out in zip(chunk, out):
            canvas[n, :, y : y + o, xo : xo + o] = tile_out  # overlapping tiles hold equal values there
    result = canvas[:, :, :H, :W]
    scores = result[0] if single else result
    return (scores, layout) if return_layout else scores
