"""Building blocks shared by the encoder-decoder models (U-Net and the UNet++ family).

Introduced in chapter 5.
"""

from __future__ import annotations

from torch import nn

__all__ = ["DoubleConv", "check_padding", "check_norm"]


def check_padding(padding: str) -> str:
    if padding not in ("valid", "same"):
        raise ValueError(f"padding must be 'valid' (the paper: unpadded 3x3 convolutions) or 'same', got {padding!r}")
    return padding


def check_norm(norm):
    if norm not in (None, "batch"):
        raise ValueError(f"norm must be None (the paper) or 'batch', got {norm!r}")
    return norm


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by (optional BatchNorm and) ReLU.

    ``padding="valid"`` is the U-Net paper's choice: every convolution trims one pixel from each
    border, so the block shrinks a map by 4 pixels in height and width. ``padding="same"`` keeps
    the size (zero padding of 1), the choice of UNet++ and most modern code.
    """

    def __init__(self, in_channels: int, out_channels: int, padding: str = "valid", norm=None):
        pad = 0 if check_padding(padding) == "valid" else 1
        layers = []
        for c_in in (in_channels, out_channels):
            layers.append(nn.Conv2d(c_in, out_channels, 3, padding=pad, bias=check_norm(norm) is None))
            if norm == "batch":
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)
