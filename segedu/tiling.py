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

A padded ("same") U-Net or UNet++ takes any side divisible by ``2**depth`` whole, but its memory
grows with the image (a 5000x5000 image needs gigabytes). :func:`predict_tiled_same` bounds it:
tiles of the image (mirror-padded to a multiple of ``2**depth``, as whole-image inference pads it)
are cut on the pooling grid with a margin of context around each tile's core, and only the cores
are kept. A tile that reaches the image's border stops there, so it sees the image border exactly
as the whole image does; elsewhere the margin (:func:`same_padding_margin`, larger than the
network's receptive field) keeps the zero padding of the tile's edges out of the core. So the
stitched scores equal whole-image inference (up to float rounding of different-sized
convolutions), checked in ``tests/test_bad_input_library.py``.

Introduced in chapter 5.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .checks import check_positive_int
from .models.utils import last_output
from .sizes import covering_input_size, nearest_valid_input_size, unet_output_size, valid_input_sizes

__all__ = ["TileLayout", "tile_layout", "mirror_pad", "predict_tiled", "same_padding_margin", "predict_tiled_same",
           "check_image"]


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


def _model_depth(model, padding: str = "valid") -> int:
    depth = getattr(model, "depth", None)
    name = "predict_tiled" if padding == "valid" else "predict_tiled_same"
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(f"{name} needs a U-Net-like model with an integer .depth (number of poolings)")
    if padding == "valid" and getattr(model, "padding", "valid") != "valid":
        raise ValueError("overlap-tile is for valid-padding networks; a padding='same' network takes the whole "
                         "image directly (sizes divisible by 2**depth), or tiles through predict_tiled_same")
    if padding == "same" and getattr(model, "padding", None) != "same":
        raise ValueError("predict_tiled_same is for padded ('same') networks; a valid-padding U-Net tiles "
                         "through predict_tiled (overlap-tile)")
    return depth


def check_image(image, in_channels=None, what: str = "image") -> None:
    """Refuse an image that is not a float tensor ``[C, H, W]`` or ``[N, C, H, W]`` of finite values
    (NaN or Inf pixels would spread through every convolution into the prediction)."""
    if not torch.is_tensor(image) or image.dim() not in (3, 4):
        raise ValueError(f"{what} must be a tensor [C, H, W] or [N, C, H, W], "
                         f"got {getattr(image, 'shape', type(image))}")
    if not image.is_floating_point():
        raise TypeError(f"{what} must be a float tensor (e.g. scaled to [0, 1]), got {image.dtype}"
                        + (": convert 8-bit images with x.float() / 255" if image.dtype == torch.uint8 else ""))
    if in_channels is not None and image.shape[-3] != in_channels:
        raise ValueError(f"{what} has {image.shape[-3]} channels but the model expects in_channels={in_channels}")
    if min(image.shape[-2:]) < 1:
        raise ValueError(f"{what} is empty: {tuple(image.shape[-2:])} pixels")
    if not bool(torch.isfinite(image).all()):
        nan, inf = int(torch.isnan(image).sum()), int(torch.isinf(image).sum())
        raise ValueError(f"{what} holds {nan} NaN and {inf} Inf pixel values, which would spread through the "
                         "network into the prediction: replace them first (e.g. torch.nan_to_num(image))")


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
    check_image(image, getattr(model, "in_channels", None))
    check_positive_int("batch_size", batch_size)
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


def same_padding_margin(depth: int) -> int:
    """Context (pixels per side) :func:`predict_tiled_same` gives each tile's core: ``9 * 2**depth``.

    It bounds the receptive field's radius of the course's padded U-Net family of ``depth``
    poolings: two 3x3 convolutions per level on the way down and up add ``2 * 2**i`` at level
    ``i``, each pooling ``2**i``, each 2x2 up-convolution ``2**i`` (a bilinear upsampling
    ``2**(i + 1)``), at most ``2**(depth + 3) + 2**depth - 7`` in all; UNet++'s longest path is the
    U-Net's. A multiple of ``2**depth``, so tiles stay on the pooling grid.
    """
    depth = check_positive_int("depth", depth)
    return 9 * 2**depth


def _cores(n: int, core: int, margin: int):
    """Along a side of ``n`` (a multiple of the pooling cell): ``(core start, core end, window start, window end)``."""
    return [(s, min(s + core, n), max(0, s - margin), min(n, s + core + margin)) for s in range(0, n, core)]


@torch.no_grad()
def predict_tiled_same(model, image: torch.Tensor, tile_size: int | None = None, batch_size: int = 4,
                       margin: int | None = None) -> torch.Tensor:
    """Segment ``image`` (``[C, H, W]`` or ``[N, C, H, W]``, any size) with a padded ("same") U-Net
    or UNet++ tile by tile, in memory bounded by the tile (plus the output itself).

    Args:
        model: a padded U-Net-family model in eval mode (``.depth`` and ``padding="same"``).
        tile_size: the input window side of a tile: a multiple of ``2**depth`` larger than
            ``2 * margin``; each tile keeps its central ``tile_size - 2 * margin`` pixels. Default:
            ``2 * margin + 512`` (rounded to the pooling cell).
        batch_size: tiles per forward pass (tiles of equal size share a batch).
        margin: context per side; default :func:`same_padding_margin` ``(depth)``, enough for the
            course's models. Another model needs a margin at least its receptive field's radius.

    Returns:
        scores ``[N, K, H, W]`` (``[K, H, W]`` for one image) equal to whole-image inference
        ``model(mirror_pad(image, 0, -H % 2**depth, 0, -W % 2**depth))[..., :H, :W]`` up to float
        rounding (the last head for a deeply supervised model).
    """
    depth = _model_depth(model, "same")
    check_image(image, getattr(model, "in_channels", None))
    check_positive_int("batch_size", batch_size)
    cell = 2**depth
    margin = same_padding_margin(depth) if margin is None else margin
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0 or margin % cell:
        raise ValueError(f"margin must be a multiple of 2**depth = {cell} (>= 0), got {margin!r}")
    smallest = 2 * margin + cell
    if tile_size is None:
        tile_size = 2 * margin + max(cell, 512 // cell * cell)
    if isinstance(tile_size, bool) or not isinstance(tile_size, int) or tile_size < smallest or tile_size % cell:
        raise ValueError(f"tile_size for a padded model of depth {depth} must be a multiple of 2**depth = {cell} "
                         f"and at least {smallest} (twice the {margin}-pixel margin, plus one pooling cell), "
                         f"got {tile_size!r}; e.g. {2 * margin + max(cell, 512 // cell * cell)}")
    core = tile_size - 2 * margin
    single = image.dim() == 3
    x = image[None] if single else image
    H, W = x.shape[-2:]
    padded = mirror_pad(x, 0, -H % cell, 0, -W % cell)  # what whole-image inference does
    Hp, Wp = padded.shape[-2:]
    device = next(model.parameters()).device
    rows, cols = _cores(Hp, core, margin), _cores(Wp, core, margin)
    jobs = [(n, ty, tx) for n in range(x.shape[0]) for ty in rows for tx in cols]
    shape_of = lambda job: (job[1][3] - job[1][2], job[2][3] - job[2][2])  # noqa: E731
    jobs.sort(key=shape_of)  # tiles of one size share batches
    canvas = None
    start = 0
    while start < len(jobs):
        chunk = [j for j in jobs[start : start + batch_size] if shape_of(j) == shape_of(jobs[start])]
        start += len(chunk)
        tiles = torch.stack([padded[n, :, ty[2] : ty[3], tx[2] : tx[3]] for n, ty, tx in chunk]).to(device)
        out = last_output(model(tiles)).to("cpu")
        if canvas is None:
            canvas = out.new_empty(x.shape[0], out.shape[1], Hp, Wp)
        for (n, ty, tx), tile_out in zip(chunk, out):
            core_out = tile_out[:, ty[0] - ty[2] : ty[1] - ty[2], tx[0] - tx[2] : tx[1] - tx[2]]  # the margins dropped
            canvas[n, :, ty[0] : ty[1], tx[0] : tx[1]] = core_out
    result = canvas[:, :, :H, :W]
    return result[0] if single else result
