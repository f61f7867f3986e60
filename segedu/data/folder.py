"""Your own data: a folder of images and a folder of masks, paired by file name.

The course's datasets are generated or downloaded; this one reads what you bring. The hard part
is not reading a PNG but the ways a folder can be wrong: a mask without its image, an image
whose mask has another size, colour masks instead of class indices, masks saved as 0/255. All of
it is checked once, when the dataset is built, and reported together with the files concerned,
before any training starts.

* :func:`list_images`: the image files of a folder (the types in :data:`IMAGE_EXTENSIONS`);
  :func:`find_images`: the same, or an error saying what the folder holds instead.
* :func:`read_image`, :func:`read_mask`: one file (one page of a stack) as a ``float32 [C, H, W]``
  image in ``[0, 1]`` or an integer ``[H, W]`` mask of class indices.
* :class:`ImageFolder`: ``root/images`` with ``root/masks``, every pair checked.

Decoding a PNG or TIFF costs milliseconds per item, every epoch. So :class:`ImageFolder` decodes an
item once, on its first read, and keeps the result (``cache``): later reads cost a copy. A folder
can be larger than memory, so by default (``cache="auto"``) it keeps items only when the whole
folder, decoded, fits in :data:`CACHE_BYTES` (its size is known before anything is decoded: every
item's height and width are read when the folder is checked); ``cache=True`` keeps them whatever
the size, ``cache=False`` never. Caching changes no value: reads return copies, so changing a
returned item in place does not change the next read.

How pixel values become ``[0, 1]``, by the file's real bit depth and value range:

* 8-bit images (grey, RGB, palette, ...) are divided by 255, 16-bit ones by 65535 (also when
  they are repeated to 3 channels);
* float images (float TIFFs) with values in ``[0, 1]`` are kept; with values in ``0..255`` they
  are divided by 255; values above 255 or below 0 are refused (rescale the file), and so are
  NaN or infinite pixels, and 32-bit integer images;
* a multi-page TIFF (a stack, the format of the ISBI challenge) is every page: :func:`count_pages`
  counts them, ``read_image(path, page=k)`` reads one, and in :class:`ImageFolder` every page is an
  item (its mask is a stack of as many pages). ``read_image`` without ``page`` refuses a stack
  rather than silently reading its first page.

Every file that cannot be read is named, with the reason (empty, truncated, not an image, a
TIFF pixel type Pillow cannot read).

Introduced in the appendix "Beyond the course: training on your data".
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checks import check_int_at_least

__all__ = ["ImageFolder", "read_image", "read_mask", "list_images", "find_images", "count_pages", "IMAGE_EXTENSIONS",
           "CACHE_BYTES"]

#: File types :class:`ImageFolder` reads (through Pillow); other files in the folders are ignored.
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
_GREY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
_MASK_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")
#: With ``cache="auto"``, :class:`ImageFolder` keeps its decoded items when they take at most this
#: many bytes in all (float32 images, masks as 8-bit integers up to 256 classes, else 32-bit).
CACHE_BYTES = 1 * 2**30


def list_images(folder):
    """The image files of ``folder`` (types in :data:`IMAGE_EXTENSIONS`, hidden files left out), sorted."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS)


def find_images(folder) -> list:
    """:func:`list_images` of ``folder``; none is a ``FileNotFoundError`` saying what the folder holds instead
    (other files, or subfolders with images: subfolders are not searched)."""
    images = list_images(folder)
    if not images:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {folder}" + _what_else(folder))
    return images


def _names(paths, limit: int = 8) -> str:
    shown = ", ".join(p if isinstance(p, str) else p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


_MAGIC = (b"\x89PNG", b"II*\x00", b"MM\x00*", b"\xff\xd8", b"BM")


def _what_else(folder) -> str:
    """What a folder without images holds instead, for the error message."""
    entries = sorted(p for p in Path(folder).iterdir() if not p.name.startswith("."))
    sub = [p.name + "/" for p in entries if p.is_dir() and any(True for _ in _images_below(p))]
    other = [p.name for p in entries if p.is_file()]
    if sub:
        return f"; its subfolders hold images ({_names(sub, 4)}): give one of them (subfolders are not searched)"
    if other:
        return f"; it holds {len(other)} other file(s): {_names(other, 4)}"
    return ": the folder is empty"


def _images_below(folder):
    return (p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _naming_hint(images, masks) -> str:
    """A hint when the unpaired masks are the unpaired images' names plus one affix (``a.png`` / ``a_mask.png``)."""
    affixes = set()
    for m in masks:
        found = [m.stem[len(i.stem):] if m.stem.startswith(i.stem) else m.stem[: -len(i.stem)]
                 for i in images if i.stem != m.stem and (m.stem.startswith(i.stem) or m.stem.endswith(i.stem))]
        if len(found) != 1:
            return ""
        affixes.add(found[0])
    if len(affixes) != 1 or not masks:
        return ""
    affix = affixes.pop()
    return (f" (the masks seem to be named with {affix!r} added to the image names: rename them to the names of "
            "their images, e.g. " + f"{masks[0].name} -> {masks[0].name.replace(affix, '', 1)})")


def _tiff_kind(path) -> str | None:
    """``"64-bit float pixels (1 channel)"``: the pixel type of a TIFF's first page, read from its header."""
    import struct

    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
        end = "<" if data[:2] == b"II" else ">"
        (offset,) = struct.unpack(end + "I", data[4:8])
        (n,) = struct.unpack(end + "H", data[offset:offset + 2])
        tags = {}
        for i in range(n):
            tag, typ, count, value = struct.unpack(end + "HHI4s", data[offset + 2 + 12 * i:offset + 14 + 12 * i])
            size = {3: 2, 4: 4}.get(typ)
            if size is None:
                continue
            raw = value if count * size <= 4 else data[struct.unpack(end + "I", value)[0]:][:size]
            tags[tag] = struct.unpack(end + ("H" if size == 2 else "I"), raw[:size])[0]
        kind = {1: "integer", 2: "signed integer", 3: "float"}.get(tags.get(339, 1), "other")
        return f"{tags.get(258, 1)}-bit {kind} pixels ({tags.get(277, 1)} channel(s))"
    except (OSError, struct.error, IndexError):
        return None


def _reason(path, error: Exception) -> str:
    """Why Pillow could not read ``path``, in a few words."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        return e.strerror or type(e).__name__
    text = str(error)
    if "truncated" in text.lower() or isinstance(error, EOFError):
        return "truncated: the file was cut short"
    if type(error).__name__ == "UnidentifiedImageError":
        kind = _tiff_kind(path) if head[:4] in _MAGIC[1:3] else None
        if kind:
            return (f"a TIFF of {kind}, which Pillow (segedu's image reader) cannot read: save it with 8- or 16-bit "
                    "integer or 32-bit float pixels")
        if head.startswith(_MAGIC):
            return "damaged: its header is incomplete or corrupt"
        return "not an image file that Pillow can read"
    return f"damaged ({type(error).__name__}: {text.splitlines()[0][:100] if text else ''})"


def _open(path):
    """``PIL.Image.open(path)``; a file that is not a readable image is a ``ValueError`` saying why."""
    from PIL import Image

    try:
        return Image.open(path)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as e:
        raise ValueError(f"cannot read {path} as an image: {_reason(path, e)}") from None


def _pages(n: int) -> str:
    return f"{n} page" + ("" if n == 1 else "s")


def _seek(im, path, page) -> None:
    """Go to ``page`` of a (possibly multi-page) image and load it; a stack needs a page."""
    n = getattr(im, "n_frames", 1)
    if page is None:
        if n > 1:
            raise ValueError(f"{path} is a stack of {n} pages (a multi-page image): read one with page=0..{n - 1} "
                             "(count them with count_pages); ImageFolder and predict read every page")
        page = 0
    if not 0 <= page < n:
        raise ValueError(f"{path}: there is no page {page}; it has {_pages(n)} (0..{n - 1})")
    try:
        if page:
            im.seek(page)
        im.load()
    except Exception as e:
        raise ValueError(f"cannot read {path} as an image: {_reason(path, e)}") from None


def count_pages(path) -> int:
    """The number of pages of an image file: 1, or more for a multi-page TIFF (a stack)."""
    with _open(path) as im:
        return int(getattr(im, "n_frames", 1))


def _integer_bits(im) -> int:
    """The bits per pixel of a 32-bit-integer-mode (``I``) image as stored in the file."""
    tags = getattr(im, "tag_v2", None)
    if tags is not None and 258 in tags:  # TIFF BitsPerSample
        bits = tags[258]
        return int(bits[0] if isinstance(bits, tuple) else bits)
    return 16 if im.format == "PNG" else 32  # a PNG holds at most 16 bits (older Pillow: mode I)


def _not_finite(a: np.ndarray, path) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        r, c = np.argwhere(bad)[0][-2:]
        kinds = " and ".join(k for k, n in (("NaN", np.isnan(a).sum()), ("infinite", np.isinf(a).sum())) if n)
        raise ValueError(f"{path} has {int(bad.sum())} {kinds} pixel(s) (the first at row {r}, column {c}): "
                         "an image must hold finite numbers; fix or remove the file")


def _float_values(a: np.ndarray, path) -> np.ndarray:
    """A float image in ``[0, 1]``: kept if its values are in ``[0, 1]``, divided by 255 if in ``0..255``."""
    _not_finite(a, path)
    lo, hi = float(a.min(initial=0)), float(a.max(initial=0))
    if lo < -1e-3:
        raise ValueError(f"{path} holds values below 0 (down to {lo:g}): float images are read as [0, 1], or as "
                         "0..255 (divided by 255); rescale it to one of them")
    if hi > 255 + 1e-3:
        raise ValueError(f"{path} holds float values up to {hi:g}: float images are read as [0, 1], or as 0..255 "
                         "(divided by 255); rescale it to one of them")
    return np.clip(a if hi <= 1 + 1e-3 else a / np.float32(255), 0, 1)


def _grey_values(im, path) -> np.ndarray | None:
    """``float32 [H, W]`` in ``[0, 1]`` of a 16-bit, 32-bit or float grey image; ``None`` for 8-bit modes."""
    if im.mode.startswith("I;16"):
        return np.asarray(im).astype(np.float32) / np.float32(65535)
    if im.mode == "I":
        bits, a = _integer_bits(im), np.asarray(im)
        if bits > 16 or a.min(initial=0) < 0 or a.max(initial=0) > 65535:
            raise ValueError(f"{path} is a {bits}-bit integer image: segedu reads 8- and 16-bit images (divided by "
                             "255 or 65535) and float images; convert it to 16-bit, or to float in [0, 1]")
        return a.astype(np.float32) / np.float32(65535)
    if im.mode == "F":
        return _float_values(np.asarray(im, dtype=np.float32), path)
    return None


def read_image(path, channels: int | None = None, page: int | None = None) -> torch.Tensor:
    """An image file as ``float32 [C, H, W]`` in ``[0, 1]``, scaled by the file's real bit depth.

    8-bit images are divided by 255 and 16-bit ones by 65535; float images (float TIFFs) are kept
    if their values lie in ``[0, 1]`` and divided by 255 if they lie in ``0..255``; anything else
    (values above 255 or below 0, NaN or infinite pixels, 32-bit integers) is a ``ValueError``
    naming the file. A multi-page file (a TIFF stack) needs ``page`` (``0 .. count_pages(path) - 1``).

    ``channels``: 1 (grey-scale), 3 (RGB; grey images are repeated) or ``None`` (1 for grey-scale
    files, else 3).
    """
    with _open(path) as im:
        _seek(im, path, page)
        grey = im.mode in _GREY_MODES
        if channels is None:
            channels = 1 if grey else 3
        a = _grey_values(im, path)
        if a is not None:
            a = a[None].repeat(channels, axis=0) if channels == 3 else a[None]
        elif channels == 3:
            a = (np.asarray(im.convert("RGB"), dtype=np.float32) / np.float32(255)).transpose(2, 0, 1)
        else:
            a = (np.asarray(im.convert("L"), dtype=np.float32) / np.float32(255))[None]
    return torch.from_numpy(np.ascontiguousarray(a))


def read_mask(path, page: int | None = None) -> np.ndarray:
    """A mask file as an integer array ``[H, W]`` of class indices (single-channel files only).

    Float masks are accepted when every value is a whole number; negative values, fractions, NaN,
    colour images and JPEG masks (lossy: the values are not exact) are a ``ValueError`` naming the
    file. A stack needs ``page``.
    """
    with _open(path) as im:
        _seek(im, path, page)
        return _mask_values(im, path)


def _mask_values(im, path) -> np.ndarray:
    """The class indices of an opened, loaded mask image, checked."""
    if im.format == "JPEG":
        raise ValueError(f"mask {path} is a JPEG: JPEG compression changes pixel values (a 0/255 mask comes back with "
                         "values 0..17 and 243..255 near edges), so its class indices are not exact; save masks as PNG")
    if im.mode not in _MASK_MODES:
        hint = "not colours"
        if im.mode in ("RGB", "RGBA"):
            rgb = np.asarray(im)
            if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all():
                hint = ("its three channels are equal, so it is grey saved as colour: save it as a grey image "
                        "(PIL: Image.open(path).convert('L').save(path))")
        raise ValueError(f"mask {path} has mode {im.mode}; a mask must be a single-channel image of class indices "
                         f"(8-bit grey 'L', palette 'P' or 16-bit), {hint}")
    a = np.asarray(im)
    if a.dtype.kind == "f":
        if not np.isfinite(a).all():
            raise ValueError(f"mask {path} holds NaN or infinite values: a mask holds class indices 0, 1, 2, ...")
        frac = a[a != np.round(a)]
        if frac.size:
            raise ValueError(f"mask {path} holds non-integer values (e.g. {float(frac[0]):g}): a mask holds class "
                             "indices 0, 1, 2, ... (whole numbers), not probabilities or intensities")
    a = a.astype(np.int64)
    if a.size and a.min() < 0:
        raise ValueError(f"mask {path} holds the value {int(a.min())}: a mask holds class indices 0, 1, 2, ... "
                         "(never negative)")
    return a


@contextmanager
def _try_open(path, unreadable: list, prefix: str = ""):
    """The opened image, or ``None`` after adding ``path`` and the reason to ``unreadable``."""
    from PIL import Image

    try:
        im = Image.open(path)
    except Exception as e:  # PIL raises several types for corrupt or foreign files
        unreadable.append(f"{prefix}{Path(path).name} ({_reason(path, e)})")
        yield None
        return
    with im:
        yield im


def _load_page(im, page: int, path, unreadable: list, prefix: str = "") -> bool:
    try:
        if page:
            im.seek(page)
        im.load()
        return True
    except Exception as e:
        unreadable.append(f"{prefix}{Path(path).name} ({_reason(path, e)})")
        return False


class ImageFolder(Dataset):
    """Your own data: ``root/images/NAME.ext`` with ``root/masks/NAME.ext`` (PNG, TIFF, ...).

    Images and masks are paired by file name without extension (``a.tif`` goes with ``a.png``).
    A mask is a single-channel image whose pixel values are class indices ``0 .. num_classes - 1``
    (8-bit grey or palette PNG, 16-bit for more than 256 classes). Everything is checked once, when
    the dataset is built, and every problem is reported together with the files concerned:
    missing folders, unpaired names, unreadable files, an image and its mask of different sizes,
    colour masks and mask values outside the class range.

    A multi-page TIFF (a stack) pairs with a mask stack of as many pages, and each page is an item.
    Image values are checked too (NaN pixels, float values out of range: see the module's rules).

    Items are ``(image float32 [C, H, W] in [0, 1], mask int64 [H, W])``. An item is decoded on its
    first read and, if ``cache`` allows, kept for later reads (which return copies). ``files[i]``,
    ``pages[i]`` (``None`` for a single-page file) and ``sizes[i]`` describe item ``i``;
    ``decoded_bytes`` is what keeping every item takes, ``cached`` whether items are kept.

    Args:
        root: the folder holding ``images/`` and ``masks/``.
        num_classes: masks must hold values ``< num_classes``; default: the largest value + 1.
        binary: read every non-zero mask value as 1 (masks saved as 0 / 255).
        channels: 1 or 3; default: 1 when every image is grey-scale, else 3 (grey images are then
            repeated to RGB).
        cache: ``"auto"`` (keep decoded items when ``decoded_bytes <= CACHE_BYTES``, 1 GiB), ``True``
            (keep them, however large the folder), ``False`` (decode on every read: a folder larger
            than memory). Each ``DataLoader`` worker process keeps its own cache.

    Introduced in the appendix "Beyond the course: training on your data".
    """

    def __init__(self, root, num_classes: int | None = None, binary: bool = False, channels: int | None = None,
                 cache="auto"):
        if cache not in ("auto", True, False):
            raise ValueError(f"cache must be 'auto', True or False, got {cache!r}")
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
            num_classes = check_int_at_least("num_classes", num_classes, 2)
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1, 3 or None (from the files), got {channels!r}")
        images, masks = find_images(folders["images"]), list_images(folders["masks"])
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
                             + "; ".join(parts) + _naming_hint(lonely_images, lonely_masks))
        pairs = [(by_stem["images"][s], by_stem["masks"][s]) for s in sorted(by_stem["images"])]

        #: per item: (image file, mask file), the page of a stack (None: a single-page file), (h, w)
        self.files, self.pages, self.sizes = [], [], []
        unreadable, wrong_size, grey, largest = [], [], True, (0, None)
        for image_path, mask_path in pairs:
            with _try_open(image_path, unreadable) as im, _try_open(mask_path, unreadable, "masks/") as mk:
                if im is None or mk is None:
                    continue
                n, n_mask = getattr(im, "n_frames", 1), getattr(mk, "n_frames", 1)
                if n != n_mask:
                    raise ValueError(f"images/{image_path.name} has {_pages(n)} but its mask masks/{mask_path.name} has "
                                     f"{n_mask}: the mask of a stack (a multi-page TIFF) is a stack of as many pages")
                for k in range(n):
                    if not (_load_page(im, k, image_path, unreadable) and _load_page(mk, k, mask_path, unreadable,
                                                                                        "masks/")):
                        break
                    grey = grey and im.mode in _GREY_MODES
                    _grey_values(im, image_path)  # NaN, out-of-range floats, 32-bit integers: a ValueError now
                    try:
                        mask = _mask_values(mk, mask_path)
                    except ValueError as e:
                        raise ValueError(f"{e} (the mask of images/{image_path.name})") from None
                    image_size, where = im.size[::-1], f" page {k}" if n > 1 else ""
                    if mask.shape != image_size:
                        wrong_size.append(f"{image_path.name}{where} {image_size[0]}x{image_size[1]} vs mask "
                                          f"{mask.shape[0]}x{mask.shape[1]} (masks/{mask_path.name})")
                        break
                    self.files.append((image_path, mask_path))
                    self.pages.append(k if n > 1 else None)
                    self.sizes.append(image_size)
                    if binary or not mask.size:
                        continue
                    if num_classes is not None and mask.max() >= num_classes:
                        raise ValueError(f"mask {mask_path}{where} holds the value {int(mask.max())}, outside the class range "
                                         f"0..{num_classes - 1} (num_classes={num_classes}); for 0/255 masks read them as "
                                         "binary (binary=True, --binary-masks)")
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
        self._mask_dtype = torch.uint8 if num_classes <= 256 else torch.int32  # how a kept mask is stored
        self.decoded_bytes = sum(h * w * (4 * self.in_channels + self._mask_dtype.itemsize) for h, w in self.sizes)
        self.cached = cache is True or (cache == "auto" and self.decoded_bytes <= CACHE_BYTES)
        self._items = {}  # i -> (image float32, mask uint8/int32), filled on first read when cached

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        i = range(len(self.files))[i]  # negative indices count from the end; out of range raises IndexError
        if i in self._items:
            image, mask = self._items[i]
            return image.clone(), mask.long()  # copies: the caller may change them in place
        (image_path, mask_path), page = self.files[i], self.pages[i]
        mask = read_mask(mask_path, page)
        if self.binary:
            mask = (mask > 0).astype(np.int64)
        image, mask = read_image(image_path, self.in_channels, page), torch.from_numpy(mask)
        if self.cached:
            self._items[i] = (image.clone(), mask.to(self._mask_dtype))
        return image, mask

    def __repr__(self) -> str:
        return f"ImageFolder({str(self.root)!r}, {len(self)} pairs, num_classes={self.num_classes})"
