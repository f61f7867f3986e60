"""Datasets of the course.

Every dataset returns ``(image, mask)`` pairs: ``image`` is ``float32 [C, H, W]`` with values in
``[0, 1]`` and ``mask`` is ``int64 [H, W]`` of class indices. Synthetic data is the default
everywhere, so every chapter runs offline and deterministically.

Introduced in chapter 1 (``Shapes``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["Shapes", "Cells", "elastic_deform", "ISBI2012", "RandomCrops", "data_root", "Binary"]


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class Shapes(Dataset):
    """Synthetic multi-class scenes: circles, squares and triangles on a textured background.

    Classes: ``0`` background, ``1`` circle, ``2`` square, ``3`` triangle.

    The colours of the shapes are drawn from the *same* distribution for every class and the
    background carries a random low-frequency texture plus pixel noise, so a pixel's class cannot
    be read off its own colour: a model has to look at the neighbourhood (the shape's outline).
    That is exactly what makes it a segmentation problem rather than a colour lookup.

    Sample ``i`` depends only on ``(seed, i)``, so datasets are reproducible and cheap: images
    are generated on the fly, nothing is stored.

    Args:
        n: number of images.
        size: height and width in pixels (images are square).
        seed: base seed; different seeds give disjoint-looking datasets (use one per split).
        max_shapes: each image holds between 1 and ``max_shapes`` shapes.
        noise: standard deviation of the additive Gaussian pixel noise.
    """

    CLASSES = ("background", "circle", "square", "triangle")
    num_classes = 4
    in_channels = 3

    def __init__(self, n: int, size: int = 64, seed: int = 0, max_shapes: int = 4, noise: float = 0.06):
        self.n = _check_positive_int("n", n)
        self.size = _check_positive_int("size", size, minimum=16)
        self.seed = int(seed)
        self.max_shapes = _check_positive_int("max_shapes", max_shapes)
        if noise < 0:
            raise ValueError(f"noise must be >= 0, got {noise}")
        self.noise = float(noise)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for Shapes of length {self.n}")
        i = i % self.n
        image, mask = self.generate(np.random.default_rng([self.seed, i]))
        return torch.from_numpy(image), torch.from_numpy(mask)

    def generate(self, rng: np.random.Generator):
        s = self.size
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        # Background: a smooth random texture in random colours (sum of a few sinusoids).
        image = np.empty((3, s, s), np.float32)
        for c in range(3):
            base = rng.uniform(0.25, 0.75)
            tex = np.zeros((s, s), np.float32)
            for _ in range(3):
                fx, fy = rng.uniform(0.5, 4.0, 2) * 2 * np.pi / s
                tex += np.sin(fx * xx + fy * yy + rng.uniform(0, 2 * np.pi))
            image[c] = base + 0.08 * tex
        mask = np.zeros((s, s), np.int64)
        for _ in range(rng.integers(1, self.max_shapes + 1)):
            cls = int(rng.integers(1, 4))
            r = rng.uniform(0.08, 0.2) * s  # "radius" of the shape
            cy, cx = rng.uniform(r, s - r, 2)
            if cls == 1:  # circle
                inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
            elif cls == 2:  # axis-aligned square
                inside = (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
            else:  # upward triangle: below the two slanted edges, above the base
                top, base_y = cy - r, cy + r * 0.8
                half_w = (yy - top) / (base_y - top) * r
                inside = (yy >= top) & (yy <= base_y) & (np.abs(xx - cx) <= half_w)
            # Colour independent of the class; later shapes occlude earlier ones.
            colour = rng.uniform(0.0, 1.0, 3).astype(np.float32)
            image[:, inside] = colour[:, None] * 0.8 + 0.1
            mask[inside] = cls
        image += rng.normal(0, self.noise, image.shape).astype(np.float32)
        return np.clip(image, 0.0, 1.0), mask

    def __repr__(self) -> str:
        return f"Shapes(n={self.n}, size={self.size}, seed={self.seed})"


# ---------------------------------------------------------------------------------------------
# Chapter 5: synthetic touching cells, and elastic deformation
# ---------------------------------------------------------------------------------------------

def elastic_deform(arrays, rng: np.random.Generator, grid: int = 3, sigma: float = 10.0, orders=None):
    """The U-Net paper's augmentation: a smooth random deformation, the same for every array.

    "We generate smooth deformations using random displacement vectors on a coarse 3 by 3 grid.
    The displacements are sampled from a Gaussian distribution with 10 pixels standard deviation.
    Per-pixel displacements are then computed using bicubic interpolation." (Ronneberger et al.)

    Args:
        arrays: 2-D arrays of the same shape (image, labels, ...).
        rng: NumPy generator (so augmentation is reproducible).
        grid: the coarse grid is ``grid x grid``; sigma: standard deviation of its displacements.
        orders: interpolation order per array (default 3 = bicubic for the first, 0 = nearest for
            the rest, so label maps keep integer labels).
    """
    from scipy import ndimage

    h, w = arrays[0].shape
    coarse = rng.normal(0.0, sigma, size=(2, grid, grid))
    # Bicubic upsampling of the coarse displacement grid to every pixel.
    dy = ndimage.zoom(coarse[0], (h / grid, w / grid), order=3, mode="nearest")[:h, :w]
    dx = ndimage.zoom(coarse[1], (h / grid, w / grid), order=3, mode="nearest")[:h, :w]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    coords = np.stack([yy + dy, xx + dx])
    orders = orders or [3] + [0] * (len(arrays) - 1)
    return [ndimage.map_coordinates(a, coords, order=o, mode="reflect").astype(a.dtype) for a, o in zip(arrays, orders)]


class Cells(Dataset):
    """Synthetic microscopy: many touching cells separated by thin gaps, with instance labels.

    Built to exercise exactly what the U-Net paper's weight map is for: cells of the same class
    that touch, so the only thing between two instances is a gap of one or two pixels. Each image
    is a Voronoi tessellation of random seed points (neighbouring cells share long borders); the
    border between two cells is a dark gap; some cells are removed to leave background. Cell
    interiors have a random brightness and texture, the whole image is blurred and noisy.

    Items are ``(image float32 [1, H, W], mask int64 [H, W])`` with ``mask`` 1 for cell and 0 for
    background/gap — the same two classes as the ISBI 2012 EM data. ``instances(i)`` gives the
    instance labels (0 = background, 1..n = cells). With ``weights=True`` items are
    ``(image, mask, weight)`` where ``weight`` is :func:`segedu.losses.unet_weight_map` of the
    instances (pass it through :func:`segedu.train.fit` to train with the weighted loss).

    Args:
        n: number of images. size: side in pixels. seed: base seed.
        cells: mean number of cells per image. gap: width of the gap between touching cells.
        augment: apply the paper's elastic deformation (a new one each time an item is read,
            seeded by ``(seed, i, read count)`` so runs reproduce).
        weights: also return the U-Net weight map; ``w0``, ``sigma``: its parameters.
    """

    CLASSES = ("background", "cell")
    num_classes = 2
    in_channels = 1

    def __init__(self, n: int, size: int = 96, seed: int = 0, cells: int = 24, gap: int = 2, augment: bool = False,
                 weights: bool = False, w0: float = 10.0, sigma: float = 5.0, noise: float = 0.08):
        self.n = _check_positive_int("n", n)
        self.size = _check_positive_int("size", size, minimum=16)
        self.cells = _check_positive_int("cells", cells, minimum=2)
        self.gap = _check_positive_int("gap", gap)
        self.seed, self.augment, self.weights = int(seed), bool(augment), bool(weights)
        self.w0, self.sigma, self.noise = float(w0), float(sigma), float(noise)
        self._reads = {}
        self._weights = {}  # weight maps of un-augmented items, computed once

    def __len__(self) -> int:
        return self.n

    def _generate(self, i: int):
        from scipy import ndimage

        rng = np.random.default_rng([self.seed, i, 7])
        s = self.size
        count = int(rng.poisson(self.cells)) + 2
        seeds = np.zeros((s, s), bool)
        seeds[rng.integers(0, s, count), rng.integers(0, s, count)] = True
        # Voronoi regions: every pixel takes the label of its nearest seed point.
        _, (iy, ix) = ndimage.distance_transform_edt(~seeds, return_indices=True)
        point_label = np.zeros((s, s), np.int64)
        point_label[seeds] = np.arange(1, seeds.sum() + 1)
        regions = point_label[iy, ix]
        # Gaps: pixels whose neighbourhood holds another region, widened to `gap` pixels.
        border = np.zeros((s, s), bool)
        border[:-1] |= regions[:-1] != regions[1:]
        border[1:] |= regions[:-1] != regions[1:]
        border[:, :-1] |= regions[:, :-1] != regions[:, 1:]
        border[:, 1:] |= regions[:, :-1] != regions[:, 1:]
        if self.gap > 1:
            border = ndimage.binary_dilation(border, iterations=self.gap - 1)
        instances = np.where(border, 0, regions)
        # Remove about a quarter of the cells to leave background.
        labels = np.unique(instances[instances > 0])
        drop = labels[rng.random(len(labels)) < 0.25]
        instances[np.isin(instances, drop)] = 0
        instances = self._relabel(instances)  # labels 1..n (not ndimage.label: it would merge touching cells)
        # Appearance: bright textured cells, dark gaps and background.
        brightness = rng.uniform(0.55, 0.9, instances.max() + 1)
        brightness[0] = 0.25
        image = brightness[instances].astype(np.float64)
        image += 0.06 * ndimage.gaussian_filter(rng.normal(size=(s, s)), 1.5)
        image = ndimage.gaussian_filter(image, 0.8)
        return image, instances

    @staticmethod
    def _relabel(instances):
        out = np.zeros_like(instances)
        for new, old in enumerate(np.unique(instances[instances > 0]), start=1):
            out[instances == old] = new
        return out

    def instances(self, i: int) -> np.ndarray:
        """Instance labels of image ``i`` (before augmentation): 0 background, 1..n cells."""
        return self._generate(i)[1]

    def __getitem__(self, i: int):
        if not -self.n <= i < self.n:
            raise IndexError(f"index {i} out of range for Cells of length {self.n}")
        i = i % self.n
        image, instances = self._generate(i)
        if self.augment:
            k = self._reads.get(i, 0)
            self._reads[i] = k + 1
            image, instances = elastic_deform([image, instances], np.random.default_rng([self.seed, i, k, 11]))
        rng = np.random.default_rng([self.seed, i, 13])
        image = np.clip(image + rng.normal(0, self.noise, image.shape), 0, 1).astype(np.float32)
        mask = (instances > 0).astype(np.int64)
        out = (torch.from_numpy(image)[None], torch.from_numpy(mask))
        if self.weights:
            from .losses import unet_weight_map

            if self.augment:  # the deformed instances need their own map
                w = unet_weight_map(instances, w0=self.w0, sigma=self.sigma)
            else:
                if i not in self._weights:
                    self._weights[i] = unet_weight_map(instances, w0=self.w0, sigma=self.sigma)
                w = self._weights[i]
            out += (torch.from_numpy(w).float(),)
        return out

    def __repr__(self) -> str:
        return f"Cells(n={self.n}, size={self.size}, seed={self.seed}, augment={self.augment}, weights={self.weights})"


# ---------------------------------------------------------------------------------------------
# Chapter 5: the real data — ISBI 2012 EM segmentation challenge (the U-Net paper's data)
# ---------------------------------------------------------------------------------------------

#: Public mirror of the 30 training slices as PNG files (the zhixuhao/unet repository).
ISBI2012_URL = "https://raw.githubusercontent.com/zhixuhao/unet/master/data/membrane/train/{name}"
ISBI2012_FOLDER = "isbi2012-em"
#: SHA-256 of every file; a download (or a local copy) that does not match is rejected.
ISBI2012_SHA256 = {
    "image/0.png": "12c0ed6f42fc09f512abf6b354f217c950e4c8223b57a0315449b62a14556523",
    "image/1.png": "2cfc7ee635a6f85d5faf5c82a71d3a37bf5af4784b554964e3e07193e3ee2166",
    "image/2.png": "fe60d8d4f93102666a23a18d718b4b59fab8e616987d11c5072f4a87fac7301f",
    "image/3.png": "636d16cbb02f99dda4c9fb6db98dfba066142afa981ffdcfaf54453982e8250c",
    "image/4.png": "991fb3a8e4abc73da1d6159ca28fa4397f0a8351f30a8ba3669c86414d2ce239",
    "image/5.png": "7e9d9fb787664336d6f2cd68b23986f04527e7f8f494410983b4d70c6de1de3b",
    "image/6.png": "7c0a87933ffc72f4ff02f5996d9c3f69fe9a0b5277507415743ad8afb5e5d308",
    "image/7.png": "19f2c25716107d41008c83ba8a814ae47a090e00dea766dde38dce1f00899270",
    "image/8.png": "a8979e4abd1a10af9ca75e614d97875659adbd8ee3a68eba483bf556cfe3023d",
    "image/9.png": "730ebf435ab0f6e625d342552ad03736799fd660d0c6af744674c61a46aa082a",
    "image/10.png": "7c3717bcd48c4b7e5c878d7f0b809b8687a4e6fac471f3863de320a82ee72b8a",
    "image/11.png": "dd7857b25ca1417f87c282750e22c50947f75e81fa032d4e0c96b902c9dc9757",
    "image/12.png": "9f8eff9239bb764d51524a998387a7babcff9f62161804651b030b81aabd5ab8",
    "image/13.png": "377e5cdbcd7f0ac7336f482fc7ead7446887863f26769b3841fe98aadca77dad",
    "image/14.png": "f50d2d77acd2df564c5f0f40b1b24cd929f5944460aa4cd90c422cb5cef33a59",
    "image/15.png": "3e13fdea09accc14f46fb2f3ffa1e882cdd9c53b28a6842c4c10229692c7d1a4",
    "image/16.png": "ffc951c12450f94129582c16fd0d4b165c4a31469b0c42d966f07c183d3132e2",
    "image/17.png": "0f4f7e8e0619e4c7d517ac68d3789a3b6248253747717eac418bb7d32bef4de3",
    "image/18.png": "1bb1edd50595861743d14e1955dfa5d3c9395fb87563eca6dc81433bf9df49de",
    "image/19.png": "999b55633f8d7082add72082656e9532c5c3d97203b376eb317f09ba88a5a5b7",
    "image/20.png": "9153d14bfd15955fab576ea23281c4f23104b45dceed6e03e0b254607f50a1b2",
    "image/21.png": "9ad07cf4f67984f17a08aa63e6d92d395ce55f5132e6ff4fa6d95d6890ea7f97",
    "image/22.png": "6278609b4c42a7cb43212de0e2e2ceded758bafe0856fb56214ce658a61668e4",
    "image/23.png": "9ef4e9fbc838b9791af83a36918d729a0ea2e90ebc71c4a3c4554059f9379756",
    "image/24.png": "f0f917b9c3e9c96d16ea287aff9b05ecf4de88bc61d478e4aefcb64932fba70c",
    "image/25.png": "e0154737e76392e8bf94fb2c0dfa5ddad4b53aeec942a0a8cdd8ba63443e6072",
    "image/26.png": "d0ff11e09b0ee0c817334946e746a38ab621161d5f9c46af95c68b851f8d9a1a",
    "image/27.png": "eed8e8bee1db8fe7af39b5b43ecf14282c5c33eca0959726eea06f662027eacc",
    "image/28.png": "974df4b51e8905bdaabe61e80496cbf331f5c9aa9ddc2cb94113f58c2b7d2837",
    "image/29.png": "d9ae868509c610a69acbf3d69cde4f36a8e344cbbc444f93c917bf7b9f3e784f",
    "label/0.png": "13b67edd7607a1f284c09170c96a27d38422b0ffaf88024ea5b689acb5e1b4b0",
    "label/1.png": "cff60a00de2901e67165c91d7708d784e4c5bcc9d1c8c677922c905d63bbc3d1",
    "label/2.png": "a578af998c017f56763b81941c4dc612dde5731809b2cea0e8ebc37aecb84dbb",
    "label/3.png": "c8ae3b843fed02e09411a24c10850160922c331041b17c2674025f05a99b8834",
    "label/4.png": "a2f19c01b5d982a97923a0d29e64127a05e3f496731480ac9d9d302b5427f7ff",
    "label/5.png": "2dd5779118f6f4d87f88ec112f1cea20663b50acb8c748b0db1f23eda82b5118",
    "label/6.png": "2b0984e9f31fb41d4c5f4a754a3e080036b7321a0cbd9591a62010d20a574ce7",
    "label/7.png": "2ebc8c835999589bfd7d80d81f83d24e5c41138362b0faafef0f009e1ce82144",
    "label/8.png": "db979010ca4fbdb38c8b32d455aed0da90d598153f2a0046b63d02a6efa32b9e",
    "label/9.png": "8ee6c79adbb740595c4d61776e065e7164c00d52c7dd7562b5279041e7f3567b",
    "label/10.png": "b0156cc8186b0ee521927ac95645b406a42d27564607a6fea3a59c34add78f7c",
    "label/11.png": "e47b3aa0cfb3106476af1666e631d45bd16dbf2aff88260ee65d16e4134332db",
    "label/12.png": "85a7a899c0b72b81633ad122887ba5161d650385d7775a5b3074eb00131b3620",
    "label/13.png": "88549c22fd647312d6b37e17d33e90800d347d60ccb1156a8dde5e67394f9f3d",
    "label/14.png": "bcd775017eb4fdbdfe7ad6cc6420b2f16aa9d0576894d08370edcf564b46680a",
    "label/15.png": "59a854887b504ff00a5b4b93b2299bbc0bf0cbe54dea58d2b31969229b28b369",
    "label/16.png": "b34eb88cdc3313a6f4190f5753465df7f69d8f3c243a5c25427b1b99ecfe2499",
    "label/17.png": "4fa076cbeb744803d987dc46cf308dc3026408e7a5188838e30e25fe3ea67dbe",
    "label/18.png": "bd009dda57f204804732f592ed1d41ba18961d83c492413fe71548efa4a288d9",
    "label/19.png": "bf38407c55b6033c1677230228ecb100a11294aa74a7b92e5edfdc4abadcfef9",
    "label/20.png": "7af7296f2e892866669d4e4f9c0d4178987e6ec6e7d0751ec238d1bbe2da9c55",
    "label/21.png": "772c722acb2eac01769b53fa5037a3d62745e53102398bf9b2202df605cadda4",
    "label/22.png": "b19f5533ec24077a2395a085fe53af75dd350ef03798c4ff40ba9ebecb2ee0ad",
    "label/23.png": "2d8f1df5c9ee83e59eb2d709eb153b0570f12e726690f586154b01b0a88bb540",
    "label/24.png": "6ab02d922b5c937ecfe2a479be87a5d3e5ef950dc48da09d31f37b47d899ca9c",
    "label/25.png": "c5ea59aca7789dd507ac31c4a82bbd4c172f9e3544f8e040442c20d1dfa9e16d",
    "label/26.png": "b056fae9f358111b6c9e2494bdba645f206be581959b8d3763e97d62a65dd961",
    "label/27.png": "5be3823a57c82b632cead6eb09f438c6010a244dc0975f2a3e466f45d2c06840",
    "label/28.png": "c0b0e2a2b7aad46919d1afc980f7d5e39101fb07948ce65d9cac802d8b47682e",
    "label/29.png": "1e8839a97178914171defd6a97158f06fcac1fc3f0d45f2acdff9c49ab3fced9",
}


def data_root(root=None):
    """Where data sets live: ``root`` if given, else ``$SEGEDU_DATA``, else a per-user cache folder."""
    import os
    from pathlib import Path

    if root is not None:
        return Path(root)
    if os.environ.get("SEGEDU_DATA"):
        return Path(os.environ["SEGEDU_DATA"])
    import pooch

    return Path(pooch.os_cache("segedu"))


def _sha256(path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ISBI2012(Dataset):
    """The ISBI 2012 EM segmentation challenge's 30 training slices (512x512, grey-scale).

    Serial-section transmission electron microscopy of the *Drosophila* larva ventral nerve cord
    (Cardona et al., 2010) — the data the U-Net paper trained on. Labels: 1 = cell interior,
    0 = membrane (the cell border), read from the PNG labels (255 / 0).

    The files are looked up in ``root``, else ``$SEGEDU_DATA``, else a per-user cache, under
    ``isbi2012-em/{image,label}/N.png``. Every file is checked against its SHA-256. Missing files
    are downloaded (``download=True``) from the public mirror through ``pooch``, which writes to a
    temporary file and moves it into place only once the checksum matches — nothing half-written
    is ever left in the cache.

    Args:
        root: folder that contains ``isbi2012-em/``.
        split: ``"train"`` = slices 0-23, ``"val"`` = slices 24-29, ``"all"`` = 0-29.
        download: fetch missing files; if ``False`` (or offline) a clear error says what to
            download and where to put it.
    """

    CLASSES = ("membrane", "cell")
    num_classes = 2
    in_channels = 1
    SPLITS = {"train": range(0, 24), "val": range(24, 30), "all": range(0, 30)}

    def __init__(self, root=None, split: str = "train", download: bool = True):
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {sorted(self.SPLITS)}, got {split!r}")
        self.folder = data_root(root) / ISBI2012_FOLDER
        self.split, self.indices = split, list(self.SPLITS[split])
        self.files = []
        for i in self.indices:
            pair = []
            for kind in ("image", "label"):
                name = f"{kind}/{i}.png"
                pair.append(self._fetch(name, download))
            self.files.append(tuple(pair))
        self._cache = {}

    def _fetch(self, name: str, download: bool):
        path = self.folder / name
        expected = ISBI2012_SHA256[name]
        if path.exists():
            if _sha256(path) == expected:
                return path
            if not download:
                raise ValueError(f"{path} does not match its SHA-256 checksum (expected {expected}); delete it, or "
                                 "construct ISBI2012(download=True) to fetch a good copy")
        if not download:
            raise FileNotFoundError(
                f"ISBI 2012 file {name} not found in {self.folder}. Download the 30 training slices "
                f"({ISBI2012_URL.format(name='image/N.png')} and label/N.png, N = 0..29) into "
                f"{self.folder}/image and {self.folder}/label, set SEGEDU_DATA to the folder that contains "
                f"{ISBI2012_FOLDER}/, or use download=True")
        import pooch

        url = ISBI2012_URL.format(name=name)
        try:
            pooch.retrieve(url, known_hash=f"sha256:{expected}", fname=path.name, path=path.parent, progressbar=False)
        except ValueError as e:  # pooch: checksum mismatch (the temporary file is deleted)
            raise ValueError(f"downloaded {url} but its SHA-256 does not match the expected {expected}: "
                             f"the mirror changed or the transfer was corrupted; nothing was kept ({e})") from None
        except Exception as e:  # offline, DNS, HTTP errors
            raise OSError(f"could not download {url} ({type(e).__name__}: {e}). If you are offline, put the ISBI 2012 "
                          f"PNG slices into {self.folder}/image and {self.folder}/label (or set SEGEDU_DATA)") from None
        return path

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, k: int):
        from PIL import Image

        if k not in self._cache:
            image_path, label_path = self.files[k]
            image = np.asarray(Image.open(image_path).convert("L"), dtype=np.float32) / 255.0
            label = (np.asarray(Image.open(label_path).convert("L")) > 127).astype(np.int64)
            self._cache[k] = (torch.from_numpy(image)[None], torch.from_numpy(label))
        return self._cache[k]

    def __repr__(self) -> str:
        return f"ISBI2012(split={self.split!r}, {len(self)} slices from {self.folder})"


class RandomCrops(Dataset):
    """``n`` random ``size x size`` crops of a dataset's items (fixed by ``seed``): small training
    images cut from large ones, e.g. 96x96 patches of the 512x512 EM slices for a CPU run."""

    def __init__(self, dataset, size: int, n: int, seed: int = 0):
        self.dataset, self.size, self.n = dataset, _check_positive_int("size", size), _check_positive_int("n", n)
        rng = np.random.default_rng(seed)
        h, w = dataset[0][1].shape[-2:]
        if size > min(h, w):
            raise ValueError(f"crop size {size} is larger than the items ({h}x{w})")
        self.where = [(int(rng.integers(len(dataset))), int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1)))
                      for _ in range(n)]
        self.num_classes = getattr(dataset, "num_classes", None)
        self.in_channels = getattr(dataset, "in_channels", None)
        self.CLASSES = getattr(dataset, "CLASSES", None)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, k: int):
        i, y, x = self.where[k]
        s = self.size
        return tuple(t[..., y : y + s, x : x + s] for t in self.dataset[i])


class Binary(Dataset):
    """Foreground-vs-background view of a dataset: ``mask > 0`` becomes 1 (chapter 6's binary tasks).

    ``Binary(Shapes(n, max_shapes=1))`` is a strongly imbalanced task: a single small object.
    """

    CLASSES = ("background", "foreground")
    num_classes = 2

    def __init__(self, dataset):
        self.dataset = dataset
        self.in_channels = getattr(dataset, "in_channels", None)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        image, mask, *rest = self.dataset[i]
        return (image, (mask > 0).long(), *rest)


# ---------------------------------------------------------------------------------------------
# Beyond the course: your own images and masks
# ---------------------------------------------------------------------------------------------

#: File types :class:`ImageFolder` reads (through Pillow); other files in the folders are ignored.
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _list_images(folder):
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def _names(paths, limit: int = 8) -> str:
    shown = ", ".join(p if isinstance(p, str) else p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def read_image(path, channels: int | None = None) -> torch.Tensor:
    """An image file as ``float32 [C, H, W]`` in ``[0, 1]`` (8-bit / 255, 16-bit / 65535).

    ``channels``: 1 (grey-scale), 3 (RGB) or ``None`` (1 for grey-scale files, else 3).
    """
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        grey = im.mode in _GREY_MODES
        if channels is None:
            channels = 1 if grey else 3
        if channels == 3:
            a = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
        elif grey and im.mode.startswith("I"):
            a = np.asarray(im, dtype=np.float32) / 65535.0
        elif im.mode == "F":
            a = np.asarray(im, dtype=np.float32)
        else:
            a = np.asarray(im.convert("L"), dtype=np.float32) / 255.0
    a = np.clip(a, 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(a[None] if a.ndim == 2 else a.transpose(2, 0, 1)))


def read_mask(path) -> np.ndarray:
    """A mask file as an integer array ``[H, W]`` of class indices (single-channel files only)."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N"):
            raise ValueError(f"mask {path} has mode {im.mode}; a mask must be a single-channel image of class indices "
                             "(8-bit grey 'L', palette 'P' or 16-bit), not colours")
        return np.asarray(im).astype(np.int64)


class ImageFolder(Dataset):
    """Your own data: ``root/images/NAME.ext`` with ``root/masks/NAME.ext`` (PNG, TIFF, ...).

    Images and masks are paired by file name without extension (``a.tif`` goes with ``a.png``).
    A mask is a single-channel image whose pixel values are class indices ``0 .. num_classes - 1``
    (8-bit grey or palette PNG, 16-bit for more than 256 classes). Everything is checked once, when
    the dataset is built, and every problem is reported together with the files concerned:
    missing folders, unpaired names, unreadable files, an image and its mask of different sizes,
    colour masks and mask values outside the class range.

    Items are ``(image float32 [C, H, W] in [0, 1], mask int64 [H, W])``; images are read when an
    item is read (nothing is cached), so the folder may be larger than memory.

    Args:
        root: the folder holding ``images/`` and ``masks/``.
        num_classes: masks must hold values ``< num_classes``; default: the largest value + 1.
        binary: read every non-zero mask value as 1 (masks saved as 0 / 255).
        channels: 1 or 3; default: 1 when every image is grey-scale, else 3 (grey images are then
            repeated to RGB).

    Introduced in the appendix "Beyond the course: training on your data".
    """

    def __init__(self, root, num_classes: int | None = None, binary: bool = False, channels: int | None = None):
        from pathlib import Path

        from PIL import Image

        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"data folder {self.root} does not exist (expected {self.root}/images and "
                                    f"{self.root}/masks with matching file names)")
        folders = {kind: self.root / kind for kind in ("images", "masks")}
        for kind, folder in folders.items():
            if not folder.is_dir():
                raise FileNotFoundError(f"{self.root} has no {kind}/ folder (expected {self.root}/images and "
                                        f"{self.root}/masks with matching file names)")
        if num_classes is not None:
            num_classes = _check_positive_int("num_classes", num_classes, minimum=2)
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1, 3 or None (from the files), got {channels!r}")
        images, masks = (_list_images(folders[k]) for k in ("images", "masks"))
        if not images:
            raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folders['images']}")
        by_stem = {}
        for kind, files in (("images", images), ("masks", masks)):
            stems = {}
            for p in files:
                if p.stem in stems:
                    raise ValueError(f"two files in {folders[kind]} share the name {p.stem!r}: {stems[p.stem].name} "
                                     f"and {p.name}; images and masks are paired by name without extension")
                stems[p.stem] = p
            by_stem[kind] = stems
        lonely_images = [p for s, p in by_stem["images"].items() if s not in by_stem["masks"]]
        lonely_masks = [p for s, p in by_stem["masks"].items() if s not in by_stem["images"]]
        if lonely_images or lonely_masks:
            parts = []
            if lonely_images:
                parts.append(f"{len(lonely_images)} image(s) without a mask in {folders['masks']}: {_names(lonely_images)}")
            if lonely_masks:
                parts.append(f"{len(lonely_masks)} mask(s) without an image in {folders['images']}: {_names(lonely_masks)}")
            raise ValueError("images and masks do not match (they are paired by file name without extension): "
                             + "; ".join(parts))
        self.files = [(by_stem["images"][s], by_stem["masks"][s]) for s in sorted(by_stem["images"])]

        unreadable, wrong_size, grey, self.sizes, largest = [], [], True, [], (0, None)
        for image_path, mask_path in self.files:
            try:
                with Image.open(image_path) as im:
                    im.load()
                    image_size, grey = im.size[::-1], grey and im.mode in _GREY_MODES
            except Exception as e:  # PIL raises several types for corrupt or foreign files
                unreadable.append(f"{image_path.name} ({type(e).__name__})")
                continue
            try:
                mask = read_mask(mask_path)
            except ValueError:
                raise
            except Exception as e:
                unreadable.append(f"masks/{mask_path.name} ({type(e).__name__})")
                continue
            if mask.shape != image_size:
                wrong_size.append(f"{image_path.name} {image_size[0]}x{image_size[1]} vs mask "
                                  f"{mask.shape[0]}x{mask.shape[1]}")
                continue
            self.sizes.append(image_size)
            if binary:
                continue
            if mask.min() < 0 or (num_classes is not None and mask.max() >= num_classes):
                bad = int(mask.min()) if mask.min() < 0 else int(mask.max())
                raise ValueError(f"mask {mask_path} holds the value {bad}, outside the class range 0..{num_classes - 1} "
                                 f"(num_classes={num_classes}); for 0/255 masks read them as binary (binary=True, --binary-masks)")
            if mask.max() > largest[0]:
                largest = (int(mask.max()), mask_path)
        if unreadable:
            raise ValueError(f"{len(unreadable)} file(s) in {self.root} cannot be read as images: {_names(unreadable)}")
        if wrong_size:
            raise ValueError(f"{len(wrong_size)} image(s) and their masks differ in size: {_names(wrong_size)}")
        if binary:
            num_classes = 2
        elif num_classes is None:
            if largest[0] >= 64:
                raise ValueError(f"mask {largest[1]} holds the value {largest[0]}: masks must hold class indices "
                                 "0, 1, 2, ...; give the number of classes (num_classes, --num-classes), or read 0/255 masks as binary "
                                 "(binary=True, --binary-masks)")
            num_classes = max(largest[0] + 1, 2)
        self.binary, self.num_classes = bool(binary), num_classes
        self.in_channels = channels or (1 if grey else 3)
        self.CLASSES = tuple(f"class {k}" for k in range(num_classes))

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        image_path, mask_path = self.files[i]
        mask = read_mask(mask_path)
        if self.binary:
            mask = (mask > 0).astype(np.int64)
        return read_image(image_path, self.in_channels), torch.from_numpy(mask)

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.root)!r}, {len(self)} pairs, num_classes={self.num_classes})"


__all__ += ["ImageFolder", "read_image", "read_mask", "IMAGE_EXTENSIONS"]
