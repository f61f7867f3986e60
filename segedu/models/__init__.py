"""The course's architectures, one per file.

    sliding_window.py  SlidingWindowClassifier (chapter 1)
    fcn.py             FCN-32s / 16s / 8s (chapter 2)
    encoder_decoder.py the small encoder-decoder that compares upsampling layers (chapter 3)
    unet.py            UNet (chapter 5)
    unetpp.py          UNetPlusPlus, UNetPlus, UNetE (chapter 6)
"""

from .encoder_decoder import EncoderDecoder
from .fcn import FCN
from .sliding_window import SlidingWindowClassifier
from .unet import UNet
from .unetpp import UNetE, UNetPlus, UNetPlusPlus

__all__ = ["SlidingWindowClassifier", "FCN", "EncoderDecoder", "UNet", "UNetPlusPlus", "UNetPlus", "UNetE"]
