"""Your own data: a folder of images and a folder of masks, paired by file name.

The course's datasets are generated or downloaded; this one reads what you bring. The hard part
is not reading a PNG but the ways a folder can be wrong: a mask without its image, an image
whose mask has another size, colour masks instead of class indices, masks saved as 0/255. All of
it is checked once, when the dataset is built, and reported together with the files concerned,
before any training starts.

* :func:`list_images`: the image files of a folder (the types in :data:`IMAGE_EXTENSIONS`).
* :func:`read_image`, :func:`read_mask`: one file as a ``float32 [C, H, W]`` image in ``[0, 1]``
  or an integer ``[H, W]`` mask of class indices.
* :class:`ImageFolder`: ``root/images`` with ``root/masks``, every pair checked.

Introduced in the appendix "Beyond the course: training on your data".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..checks import check_int_at_least

__all__ = ["ImageFolder", "read_image", "read_mask", "list_images", "IMAGE_EXTENSIONS"]

#: File types :class:`ImageFolder` reads (through Pillow); other files in the folders are ignored.
IMAGE_EXTENSIONS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def list_images(folder):
    """The image files of ``folder`` (types in :data:`IMAGE_EXTENSIONS`, hidden files left out), sorted."""
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
            num_classes = check_int_at_least("num_classes", num_classes, 2)
        if channels not in (None, 1, 3):
            raise ValueError(f"channels must be 1, 3 or None (from the files), got {channels!r}")
        images, masks = (list_images(folders[k]) for k in ("images", "masks"))
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
