"""The course's architectures, one per file.

    sliding_window.py  SlidingWindowClassifier (chapter 1)
    fcn.py             FCN-32s / 16s / 8s (chapter 2)
    unet.py            UNet (chapter 5)
    unetpp.py          UNetPlusPlus, UNetPlus, UNetE (chapter 6)
"""

from .sliding_window import SlidingWindowClassifier

__all__ = ["SlidingWindowClassifier"]

# Later chapters' models register themselves here as their files land.
try:  # chapter 2
    from .fcn import FCN  # noqa: F401

    __all__.append("FCN")
except ImportError:  # pragma: no cover - file not written yet
    pass
try:  # chapter 5
    from .unet import UNet  # noqa: F401

    __all__.append("UNet")
except ImportError:  # pragma: no cover
    pass
try:  # chapter 6
    from .unetpp import UNetE, UNetPlus, UNetPlusPlus  # noqa: F401

    __all__ += ["UNetPlusPlus", "UNetPlus", "UNetE"]
except ImportError:  # pragma: no cover
    pass
