"""Augmentation on the training device: flips, crops and the U-Net paper's elastic deformation, a batch at a time.

:func:`~segedu.data.elastic_deform` deforms one image at a time with SciPy, on the CPU, inside
``dataset[i]``; a GPU then waits for its data. This module does the same to a whole batch
``[N, C, H, W]`` with PyTorch, on whatever device the batch is on, and is checked against the
NumPy path on the same random numbers (``tests/test_augment.py``).

The elastic deformation has three steps, each followed here exactly as the NumPy path does it:

1. **Coarse displacements** ``d`` of shape ``[N, 2, grid, grid]`` (row ``dy`` then column ``dx``),
   Gaussian with ``sigma`` = 10 pixels on a 3x3 grid (the paper). :func:`coarse_displacements`
   draws them from a NumPy generator exactly as ``elastic_deform`` does, so the two paths can be
   given the *same* deformation; :func:`random_coarse_displacements` draws them with ``torch``.
2. **Per-pixel displacements** (:func:`elastic_field`): the paper's "bicubic interpolation" of the
   coarse grid. ``elastic_deform`` uses ``scipy.ndimage.zoom(order=3, mode="nearest")``, which puts
   coarse node ``k`` on pixel ``k (H - 1) / (grid - 1)`` (corners on corners) and interpolates with
   a cubic B-spline through the nodes (after padding the grid by repeating its edge). That map is
   linear, so it is a matrix ``A_H`` of shape ``[H, grid]``, and the field is
   ``dy = A_H d_y A_W^T`` (likewise ``dx``): two small matrix products per image, equal to SciPy's
   to about 1e-13 pixel in float64.
3. **Resampling** (:func:`warp`): output pixel ``(y, x)`` takes the input's value at
   ``(y + dy, x + dx)``, bicubic for images and nearest for labels (so labels stay labels). Both
   paths treat pixel centres as integer coordinates and mirror the image beyond its border about
   the outer pixel edges (``d c b a | a b c d``): SciPy's ``mode="reflect"`` is
   ``F.grid_sample(..., padding_mode="reflection", align_corners=False)``.

"Bicubic" names two different interpolations, and the image is where they part:

* SciPy's ``order=3`` is **cubic B-spline interpolation**: the image is first turned into spline
  coefficients (a "prefilter", a linear system along each axis) and the coefficients are blended
  with the smooth, positive B-spline weights.
* ``F.grid_sample(mode="bicubic")`` is **Keys' cubic convolution** (``a = -0.75``): the pixel
  values themselves are blended with weights that go negative. No prefilter: cheaper.

Both pass exactly through the pixel values and agree on smooth images, but not between pixels
near sharp edges (by a few hundredths on the course's images, ``tests/test_augment.py``). So
:func:`warp` offers both: ``interpolation="spline"`` (the default) reproduces ``elastic_deform``
to float rounding, the prefilter as two matrix products and the 4x4 B-spline taps as four
bilinear ``F.grid_sample`` lookups; ``"bicubic"`` is one ``F.grid_sample`` call, about half the
cost. Labels use ``F.grid_sample(mode="nearest")``: they can differ from SciPy's only where a
sampling point lies within float rounding of a half-pixel (ties go up in SciPy, to even in PyTorch).

:func:`random_flips` and :func:`random_crops` draw one choice per image and apply it alike to the
image and its maps. Random numbers come from a ``torch.Generator`` (the CPU's default generator
if none is given) and are moved to the batch's device, so a seed gives the same augmentation on
every device. :class:`BatchAugment` chains them into one callable for a training loop:
``images, masks = augment(images, masks)``.

Introduced in chapter 5 (the paper's augmentation); the Performance appendix times it.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from ..checks import check_int_at_least

__all__ = ["coarse_displacements", "random_coarse_displacements", "elastic_field", "warp", "elastic_deform_batch",
           "random_flips", "random_crops", "BatchAugment"]

#: The U-Net paper's settings: a 3x3 grid of displacements with 10 pixels standard deviation.
GRID, SIGMA = 3, 10.0
_PAD = 12  # scipy.ndimage.zoom(mode="nearest") pads the grid by 12 repeated edge values before its spline filter


# ---------------------------------------------------------------------------------------------
# Step 1: coarse displacements
# ---------------------------------------------------------------------------------------------

def coarse_displacements(rng, n: int | None = None, grid: int = GRID, sigma: float = SIGMA) -> np.ndarray:
    """Coarse displacements ``float64 [N, 2, grid, grid]`` drawn exactly as :func:`~segedu.data.elastic_deform` draws them.

    ``rng``: one ``numpy.random.Generator`` per image (a list, as ``Cells`` seeds every read), or
    one generator and ``n``: image ``k`` then gets the ``k``-th of ``n`` consecutive draws, what
    ``n`` calls of ``elastic_deform(..., rng)`` in a row would use. Channel 0 is the row
    displacement ``dy``, channel 1 the column displacement ``dx``.
    """
    grid = check_int_at_least("grid", grid, 2)
    if isinstance(rng, np.random.Generator):
        if n is None:
            raise ValueError("give n (the number of images) with a single generator, or a list of generators")
        return np.stack([rng.normal(0.0, sigma, size=(2, grid, grid)) for _ in range(check_int_at_least("n", n, 1))])
    rngs = list(rng)
    if n is not None and n != len(rngs):
        raise ValueError(f"n={n} but {len(rngs)} generators were given (one per image)")
    if not rngs:
        raise ValueError("no generators given: one per image")
    return np.stack([r.normal(0.0, sigma, size=(2, grid, grid)) for r in rngs])


def _draw_device(generator):
    return generator.device if generator is not None else torch.device("cpu")


def random_coarse_displacements(n: int, grid: int = GRID, sigma: float = SIGMA, generator: torch.Generator | None = None,
                                device=None, dtype=torch.float32) -> torch.Tensor:
    """Coarse displacements ``[n, 2, grid, grid]`` drawn with ``torch`` (on the generator's device,
    then moved to ``device``): Gaussian, ``sigma`` pixels standard deviation."""
    n, grid = check_int_at_least("n", n, 1), check_int_at_least("grid", grid, 2)
    d = torch.randn(n, 2, grid, grid, generator=generator, device=_draw_device(generator), dtype=torch.float32)
    return (d * float(sigma)).to(device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# Step 2: the per-pixel field
# ---------------------------------------------------------------------------------------------

def _bspline3(t: torch.Tensor) -> torch.Tensor:
    """The cubic B-spline ``beta3(t)``: ``2/3 - t^2 + |t|^3/2`` for ``|t| < 1``, ``(2 - |t|)^3 / 6`` up to 2, else 0."""
    t = t.abs()
    return torch.where(t < 1, 2 / 3 - t**2 + t**3 / 2, torch.where(t < 2, (2 - t).clamp(min=0) ** 3 / 6, 0.0))


def _spline_system(n: int, boundary: str) -> torch.Tensor:
    """The matrix ``M [n, n]`` with ``values = M @ coefficients`` for a cubic B-spline sampled at its
    knots: 1/6, 4/6, 1/6 on three diagonals, and the rows at the ends folded by the boundary rule
    (``"mirror"``: about the end sample, ``c[-1] = c[1]``; ``"reflect"``: about the end pixel's
    outer edge, ``c[-1] = c[0]``)."""
    i = torch.arange(n)
    m = torch.zeros(n, n, dtype=torch.float64)
    m[i, i] = 4 / 6
    m[i[:-1], i[:-1] + 1] = 1 / 6
    m[i[1:], i[1:] - 1] = 1 / 6
    if n == 1:
        m[0, 0] = 1.0
    elif boundary == "mirror":
        m[0, 1] = m[-1, -2] = 2 / 6
    else:
        m[0, 0] = m[-1, -1] = 5 / 6
    return m


@lru_cache(maxsize=64)
def _zoom_matrix(size: int, grid: int) -> torch.Tensor:
    """``A [size, grid]`` (float64, CPU): ``scipy.ndimage.zoom(v, size / grid, order=3, mode="nearest")`` is ``A @ v``."""
    n = grid + 2 * _PAD
    pad = torch.zeros(n, grid, dtype=torch.float64)  # repeat the edge values (np.pad mode="edge")
    pad[torch.arange(n), (torch.arange(n) - _PAD).clamp(0, grid - 1)] = 1.0
    coefficients = torch.linalg.solve(_spline_system(n, "mirror"), pad)  # the spline filter, [n, grid]
    where = _PAD + torch.arange(size, dtype=torch.float64) * (grid - 1) / (size - 1)  # corners on corners
    return _bspline3(where[:, None] - torch.arange(n, dtype=torch.float64)[None]) @ coefficients


def elastic_field(coarse, size, *, device=None, dtype=None) -> torch.Tensor:
    """Per-pixel displacements ``[N, 2, H, W]`` (``dy``, ``dx`` in pixels) from coarse ones ``[N, 2, g, g]``.

    The same numbers as ``elastic_deform``'s ``ndimage.zoom(..., order=3, mode="nearest")`` (see
    the module's step 2): ``dy = A_H d_y A_W^T``. ``coarse``: a tensor or NumPy array (from
    :func:`coarse_displacements` or :func:`random_coarse_displacements`); ``size``: ``(H, W)`` or
    one int, each at least 2. The result is on ``device`` (default: ``coarse``'s) in ``dtype``
    (default: ``coarse``'s floating type; float64 for NumPy input).
    """
    coarse = torch.as_tensor(coarse)
    if coarse.ndim != 4 or coarse.shape[1] != 2 or coarse.shape[2] != coarse.shape[3]:
        raise ValueError(f"coarse displacements must be [N, 2, grid, grid], got {tuple(coarse.shape)}")
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    check_int_at_least("height", h, 2)
    check_int_at_least("width", w, 2)
    grid = coarse.shape[-1]
    device = coarse.device if device is None else torch.device(device)
    if dtype is None:
        dtype = coarse.dtype if coarse.is_floating_point() else torch.float32
    a_h = _zoom_matrix(h, grid).to(device=device, dtype=dtype)
    a_w = _zoom_matrix(w, grid).to(device=device, dtype=dtype)
    return torch.einsum("hi,nkij,wj->nkhw", a_h, coarse.to(device=device, dtype=dtype), a_w)


# ---------------------------------------------------------------------------------------------
# Step 3: resampling
# ---------------------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _prefilter_matrix(n: int) -> torch.Tensor:
    """``P [n, n]`` (float64, CPU): the B-spline coefficients of a row of ``n`` pixels are ``P @ row``
    (SciPy's ``spline_filter1d(order=3, mode="reflect")``)."""
    return torch.linalg.inv(_spline_system(n, "reflect"))


def _spline_taps(p: torch.Tensor):
    """For sampling positions ``p`` along one axis: the cubic B-spline's four knot weights folded
    into two linear lookups, ``[(position, weight), (position, weight)]``.

    Knots ``i - 1 .. i + 2`` (``i = floor(p)``) carry the weights ``beta3(p - k)``, all positive,
    so a pair of neighbouring knots is one linear interpolation at a position between them, scaled
    by the pair's total weight (Sigg and Hadwiger's trick for GPU texture units).
    """
    i = torch.floor(p)
    t = p - i
    t2, t3 = t * t, t * t * t
    # beta3(t + 1), beta3(t), beta3(1 - t), beta3(2 - t) for t in [0, 1)
    w0, w1, w3 = (1 - t) ** 3 / 6, (3 * t3 - 6 * t2 + 4) / 6, t3 / 6
    w2 = 1 - w0 - w1 - w3
    g0, g1 = w0 + w1, w2 + w3  # each at least 1/6
    return [(i - 1 + w1 / g0, g0), (i + 1 + w3 / g1, g1)]


def _spline_sample(x: torch.Tensor, y: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
    """Cubic B-spline interpolation of ``x [N, C, H, W]`` at rows ``y`` and columns ``xx`` (``[N, H', W']``),
    the image mirrored about its outer pixel edges: SciPy's ``map_coordinates(order=3, mode="reflect")``.

    The prefilter is two matrix products; the 4x4 B-spline taps are four bilinear lookups (one
    ``F.grid_sample`` call). A bilinear lookup with ``padding_mode="reflection"`` interpolates the
    mirrored image linearly, so the folded taps near the border are exact too. The prefilter's
    matrices are dense (``H x H`` and ``W x W``): right for training crops, not for whole slides.
    """
    n, c, h, w = x.shape
    p_h = _prefilter_matrix(h).to(device=x.device, dtype=x.dtype)
    p_w = _prefilter_matrix(w).to(device=x.device, dtype=x.dtype)
    coeff = p_h @ x @ p_w.T  # the B-spline coefficients
    grids, weights = [], []
    across = _spline_taps(xx)
    for ty, gy in _spline_taps(y):
        for tx, gx in across:
            grids.append(torch.stack([(2 * tx + 1) / w - 1, (2 * ty + 1) / h - 1], dim=-1))
            weights.append(gy * gx)
    hh, ww = y.shape[1:]
    taps = F.grid_sample(coeff, torch.cat(grids, dim=1), mode="bilinear", padding_mode="reflection",
                         align_corners=False).reshape(n, c, 4, hh, ww)
    return (taps * torch.stack(weights, dim=1)[:, None]).sum(dim=2)


def warp(x: torch.Tensor, field: torch.Tensor, interpolation: str = "spline") -> torch.Tensor:
    """``x`` sampled at ``(y + dy, x + dx)``: output pixel ``(y, x)`` of ``warp(x, field)`` is input
    pixel ``(y + dy[y, x], x + dx[y, x])``, the image mirrored beyond its border (SciPy's ``mode="reflect"``).

    ``x``: ``[N, C, H, W]`` or ``[N, H, W]`` (a label map or a weight map); ``field``:
    ``[N, 2, H, W]`` from :func:`elastic_field`. ``interpolation``: ``"spline"`` (cubic B-spline:
    SciPy's ``order=3``), ``"bicubic"`` (Keys' cubic convolution, ``F.grid_sample``) or
    ``"nearest"`` (SciPy's ``order=0``). An integer ``x`` (labels) must use ``"nearest"`` and keeps
    its dtype; a float ``x`` keeps its dtype too. Runs on ``x``'s device.
    """
    if interpolation not in ("bicubic", "spline", "nearest"):
        raise ValueError(f"interpolation must be 'bicubic', 'spline' or 'nearest', got {interpolation!r}")
    maps = x.ndim == 3
    if maps:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"expected images [N, C, H, W] or maps [N, H, W], got shape {tuple(x.shape)}")
    n, _, h, w = x.shape
    if field.shape != (n, 2, h, w):
        raise ValueError(f"field must be [N, 2, H, W] = {[n, 2, h, w]} for this batch, got {list(field.shape)}")
    integer = not x.is_floating_point()
    if integer and interpolation != "nearest":
        raise ValueError(f"integer maps (labels) are warped with interpolation='nearest', not {interpolation!r}")
    # Integer maps are sampled in the field's precision (exact for labels below 2**24 in float32).
    dtype = x.dtype if x.is_floating_point() else field.dtype if field.is_floating_point() else torch.float32
    work = x.to(dtype)
    field = field.to(device=x.device, dtype=dtype)
    ys = torch.arange(h, device=x.device, dtype=dtype)[:, None] + field[:, 0]  # sampling rows, [N, H, W]
    xs = torch.arange(w, device=x.device, dtype=dtype)[None, :] + field[:, 1]
    if interpolation == "spline":
        out = _spline_sample(work, ys, xs)
    else:
        # Pixel p sits at the normalised coordinate (2p + 1) / size - 1 (align_corners=False: pixel edges at -1, 1).
        grid = torch.stack([(2 * xs + 1) / w - 1, (2 * ys + 1) / h - 1], dim=-1)
        out = F.grid_sample(work, grid, mode=interpolation, padding_mode="reflection", align_corners=False)
    if integer:
        out = out.round().to(x.dtype)
    return out[:, 0] if maps else out


def _as_maps(labels):
    """``(list of maps, how to give them back)`` for ``None``, one tensor, or a tuple/list of tensors."""
    if labels is None:
        return [], lambda maps: None
    if torch.is_tensor(labels):
        return [labels], lambda maps: maps[0]
    return list(labels), lambda maps: type(labels)(maps)


def elastic_deform_batch(images: torch.Tensor, labels=None, coarse=None, *, grid: int = GRID, sigma: float = SIGMA,
                         generator: torch.Generator | None = None, interpolation: str = "spline"):
    """The U-Net paper's elastic deformation of a batch, on the batch's device: ``(images, labels)``.

    ``images [N, C, H, W]`` (float) are resampled with ``interpolation`` (``"spline"``: SciPy's
    cubic B-spline, reproducing ``elastic_deform``; ``"bicubic"``: Keys' kernel, cheaper),
    ``labels`` (``None``, one ``[N, H, W]`` tensor, or a tuple of them: masks, weight maps) with
    nearest neighbours, so integer labels stay integers of the same values. ``coarse``
    ``[N, 2, grid, grid]``: the coarse displacements to use (e.g. from
    :func:`coarse_displacements`, the NumPy path's draws); default: drawn from ``generator``.
    Image ``k`` with coarse displacements ``coarse[k]`` becomes what
    ``elastic_deform([image_k, labels_k], ...)`` makes of it with the same draws.
    """
    if images.ndim != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor [N, C, H, W], got {images.dtype} {tuple(images.shape)}")
    n, _, h, w = images.shape
    maps, give_back = _as_maps(labels)
    for m in maps:
        if tuple(m.shape) != (n, h, w):
            raise ValueError(f"labels must be [N, H, W] = {[n, h, w]} like the images, got {list(m.shape)}")
    if coarse is None:
        coarse = random_coarse_displacements(n, grid, sigma, generator, dtype=torch.float64)
    elif len(coarse) != n:
        raise ValueError(f"{len(coarse)} coarse displacement grids for {n} images")
    field = elastic_field(coarse, (h, w), device=images.device, dtype=images.dtype)
    return warp(images, field, interpolation), give_back([warp(m, field, "nearest") for m in maps])


# ---------------------------------------------------------------------------------------------
# Flips and crops
# ---------------------------------------------------------------------------------------------

def random_flips(images: torch.Tensor, labels=None, generator: torch.Generator | None = None, *,
                 horizontal: bool = True, vertical: bool = True, p: float = 0.5):
    """Flip each image (and its labels alike) left-right and/or up-down, each with probability ``p``: ``(images, labels)``.

    ``images [N, C, H, W]``; ``labels``: ``None``, ``[N, H, W]`` or a tuple of such maps. One draw
    per image and direction from ``generator`` (default: the CPU's global generator).
    """
    n = images.shape[0]
    maps, give_back = _as_maps(labels)
    draws = torch.rand(2, n, generator=generator, device=_draw_device(generator)).to(images.device) < p
    for dim, on, flip in ((-1, horizontal, draws[0]), (-2, vertical, draws[1])):
        if not on:
            continue
        images = torch.where(flip[:, None, None, None], images.flip(dim), images)
        maps = [torch.where(flip[:, None, None], m.flip(dim), m) for m in maps]
    return images, give_back(maps)


def random_crops(images: torch.Tensor, labels=None, size=None, generator: torch.Generator | None = None):
    """A ``size x size`` (or ``(h, w)``) crop of each image at its own random place, labels alike: ``(images, labels)``."""
    n, _, h, w = images.shape
    ch, cw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    if not (1 <= ch <= h and 1 <= cw <= w):
        raise ValueError(f"crop size {ch}x{cw} does not fit the {h}x{w} images")
    maps, give_back = _as_maps(labels)
    dev = _draw_device(generator)
    top = torch.randint(0, h - ch + 1, (n,), generator=generator, device=dev).to(images.device)
    left = torch.randint(0, w - cw + 1, (n,), generator=generator, device=dev).to(images.device)
    rows = (top[:, None] + torch.arange(ch, device=images.device))[:, :, None]  # [N, ch, 1]
    cols = (left[:, None] + torch.arange(cw, device=images.device))[:, None, :]  # [N, 1, cw]
    k = torch.arange(n, device=images.device)[:, None, None]
    crop = images.permute(0, 2, 3, 1)[k, rows, cols].permute(0, 3, 1, 2).contiguous()
    return crop, give_back([m[k, rows, cols] for m in maps])


class BatchAugment:
    """Crops, flips and the elastic deformation of a batch in one call: ``images, *maps = augment(images, *maps)``.

    Meant for a training loop, after the batch has been moved to the device: every step gets new
    random choices from the augmenter's own ``torch.Generator`` (seeded by ``seed``, on the CPU), so
    a run reproduces and does not disturb the global random state. Order: crop (``crop``: a side
    or ``(h, w)``; ``None``: no crop), flips, elastic deformation (``elastic``; ``grid``, ``sigma``,
    ``interpolation`` as :func:`elastic_deform_batch`). Maps (masks, weight maps) follow their image.
    """

    def __init__(self, *, flips: bool = True, elastic: bool = True, crop=None, grid: int = GRID, sigma: float = SIGMA,
                 interpolation: str = "spline", seed: int = 0):
        if interpolation not in ("bicubic", "spline"):
            raise ValueError(f"interpolation must be 'bicubic' or 'spline', got {interpolation!r}")
        self.flips, self.elastic, self.crop = bool(flips), bool(elastic), crop
        self.grid, self.sigma, self.interpolation = check_int_at_least("grid", grid, 2), float(sigma), interpolation
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self, images: torch.Tensor, *maps: torch.Tensor):
        maps = tuple(maps)
        if self.crop is not None:
            images, maps = random_crops(images, maps, self.crop, self.generator)
        if self.flips:
            images, maps = random_flips(images, maps, self.generator)
        if self.elastic:
            images, maps = elastic_deform_batch(images, maps, grid=self.grid, sigma=self.sigma,
                                                generator=self.generator, interpolation=self.interpolation)
        return (images, *maps)

    def __repr__(self) -> str:
        return (f"BatchAugment(flips={self.flips}, elastic={self.elastic}, crop={self.crop}, grid={self.grid}, "
                f"sigma={self.sigma}, interpolation={self.interpolation!r})")
