"""Datasets of the course.

Every dataset returns ``(image, mask)`` pairs: ``image`` is ``float32 [C, H, W]`` with values in
``[0, 1]`` and ``mask`` is ``int64 [H, W]`` of class indices. Synthetic data is the default
everywhere, so every chapter runs offline and deterministically.

    synthetic.py  Shapes (chapter 1), Cells and elastic_deform (chapter 5): generated on the fly
    isbi2012.py   ISBI2012, the U-Net paper's EM slices, downloaded and checksummed (chapter 5)
    camvid.py     CamVid, SegNet's 11-class street scenes, downloaded and checksummed likewise
    views.py      RandomCrops, Binary, resized: other views of a dataset (chapters 2, 3, 5 and 6)
    folder.py     ImageFolder, read_image, read_mask: your own images and masks (appendix)
    augment.py    BatchAugment: flips, crops and the elastic deformation, batched in torch on the device

Introduced in chapter 1 (``Shapes``).
"""

from __future__ import annotations

from .camvid import CAMVID_FOLDER, CAMVID_SHA256, CAMVID_URL, CamVid
from .folder import IMAGE_EXTENSIONS, ImageFolder, list_images, read_image, read_mask
from .isbi2012 import ISBI2012, ISBI2012_FOLDER, ISBI2012_SHA256, ISBI2012_URL, data_root
from .synthetic import Cells, Shapes, elastic_deform
from .views import Binary, RandomCrops, Resized, resized
from .augment import (BatchAugment, coarse_displacements, elastic_deform_batch, elastic_field, random_crops,
                      random_flips, warp)


__all__ = ["Shapes", "Cells", "elastic_deform", "ISBI2012", "RandomCrops", "data_root", "Binary", "ImageFolder",
           "read_image", "read_mask", "list_images", "IMAGE_EXTENSIONS", "ISBI2012_URL", "ISBI2012_SHA256",
           "ISBI2012_FOLDER", "CamVid", "CAMVID_URL", "CAMVID_SHA256", "CAMVID_FOLDER",
           "resized", "Resized", "BatchAugment", "coarse_displacements", "elastic_deform_batch", "elastic_field", "random_crops",
           "random_flips", "warp"]
