"""Interactive demos that work everywhere: live in Jupyter/Colab, and kernel-free in the book.

Every demo of the course is an :class:`Explorer`: a function that draws a figure from a few
controls, plus the values each control can take. The book shows pre-rendered frames (no kernel,
no network); a live notebook also gets real ipywidgets.

    explorer.py          Explorer, MAX_FRAMES (chapter 1)
    upsampling_demos.py  upsampling_explorer (chapter 3), transposed_conv_explorer (chapter 4)
    sizes_demos.py       unet_size_calculator, weight_map_explorer (chapter 5)
    unetpp_demos.py      family_explorer, pruning_explorer, inference_ms (chapter 6)

Introduced in chapter 1; each chapter adds its own demos.
"""

from __future__ import annotations

from .explorer import MAX_FRAMES, Explorer
from .sizes_demos import unet_size_calculator, weight_map_explorer
from .unetpp_demos import family_explorer, inference_ms, pruning_explorer
from .upsampling_demos import transposed_conv_explorer, upsampling_explorer

__all__ = ["Explorer", "MAX_FRAMES", "upsampling_explorer", "transposed_conv_explorer", "unet_size_calculator",
           "weight_map_explorer", "family_explorer", "pruning_explorer", "inference_ms"]
