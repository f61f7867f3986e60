"""The course's architectures, one per file.

    sliding_window.py  SlidingWindowClassifier (chapter 1)
    fcn.py             FCN-32s / 16s / 8s (chapter 2)
    unet.py            UNet (chapter 5)
    unetpp.py          UNetPlusPlus, UNetPlus, UNetE (chapter 6)
"""

from .sliding_window import SlidingWindowClassifier
from .unet import UNet
from .unetpp import UNetE, UNetPlus, UNetPlusPlus

__all__ = ["SlidingWindowClassifier", "UNet", "UNetPlusPlus", "UNetPlus", "UNetE"]

try:  # chapter 2 (being written)
    from .fcn import FCN  # noqa: F401

    __all__.append("FCN")
except ImportError:  # pragma: no cover
    pass
