"""The course's architectures, one per file.

    sliding_window.py  SlidingWindowClassifier (chapter 1)
    fcn.py             FCN-32s / 16s / 8s (chapter 2)
    encoder_decoder.py the small encoder-decoder that compares upsampling layers (chapter 3)
    unet.py            UNet (chapter 5)
    unetpp.py          UNetPlusPlus, UNetPlus, UNetE (chapter 6)
    blocks.py          DoubleConv, the building block they share
    utils.py           count_parameters, last_output (the prediction of a deeply supervised net),
                       check_input_dtype (the input check every model runs before its forward)
"""

from .encoder_decoder import EncoderDecoder
from .fcn import FCN
from .sliding_window import SlidingWindowClassifier
from .unet import UNet
from .unetpp import PrunedNestedUNet, UNetE, UNetPlus, UNetPlusPlus
from .utils import check_input_dtype, count_parameters, last_output

__all__ = ["SlidingWindowClassifier", "FCN", "EncoderDecoder", "UNet", "UNetPlusPlus", "UNetPlus", "UNetE",
           "PrunedNestedUNet", "count_parameters", "last_output", "check_input_dtype"]
