"""U-Net (Ronneberger, Fischer & Brox, 2015), as in the paper's Figure 1, plus named variants.

The network is a "U": a contracting path (encoder) that halves the resolution and doubles the
channels at every level, and an expansive path (decoder) that does the reverse. At every level
of the decoder the encoder's feature map of the same level is copied across the U, centre-cropped
to the decoder's (smaller) size, and concatenated — the skip connection that lets the decoder
place fine detail precisely.

With the paper's settings (the defaults) every 3x3 convolution is unpadded ("valid"), so each
one trims a pixel from every border: a 572x572 input gives a 388x388 output, and only some input
sizes work at all (see :mod:`segedu.sizes`). Options give the modern variants:

* ``padding="same"``: zero-padded convolutions, output size = input size (UNet++ uses this);
* ``norm="batch"``: BatchNorm after every convolution;
* ``skip="sum"``: add the skip instead of concatenating it (the FCN way; for the ablation);
* ``up="bilinear"``: bilinear upsampling followed by a 1x1 convolution instead of the 2x2
  up-convolution;
* ``depth=L``: the number of poolings; ``depth=4`` is the paper's network, ``depth=1..4`` are the
  UNet-L1..L4 of the UNet++ paper.

Introduced in chapter 5.
"""

from __future__ import annotations

import torch
from torch import nn

from ..checks import check_positive_int
from ..sizes import center_crop, check_unet_input_size
from .blocks import DoubleConv, check_norm, check_padding
from .utils import check_input_dtype

__all__ = ["UNet", "UpConv"]


class UpConv(nn.Module):
    """Double the resolution and halve the channels.

    ``"transpose"``: the paper's "up-convolution", a 2x2 transposed convolution with stride 2.
    ``"bilinear"``: bilinear upsampling, then a 1x1 convolution to halve the channels.
    """

    def __init__(self, in_channels: int, out_channels: int, mode: str = "transpose"):
        super().__init__()
        if mode == "transpose":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        elif mode == "bilinear":
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    nn.Conv2d(in_channels, out_channels, kernel_size=1))
        else:
            raise ValueError(f"up must be 'transpose' (the paper's 2x2 up-convolution) or 'bilinear', got {mode!r}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class UNet(nn.Module):
    """U-Net; the defaults are the paper's network (23 convolutional layers, 572 -> 388).

    Args:
        in_channels: channels of the input image (1 for the paper's grey-scale EM slices).
        num_classes: output channels of the final 1x1 convolution (2 in the paper: cell / border).
        depth: number of 2x2 max-poolings (4 in the paper).
        base_channels: channels of the first level (64 in the paper); doubled at every level.
        padding: ``"valid"`` (paper) or ``"same"``.
        skip: ``"concat"`` (paper) or ``"sum"``.
        norm: ``None`` (paper) or ``"batch"``.
        up: ``"transpose"`` (paper) or ``"bilinear"``.
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 2, depth: int = 4, base_channels: int = 64,
                 padding: str = "valid", skip: str = "concat", norm=None, up: str = "transpose"):
        super().__init__()
        check_positive_int("depth", depth, note=" (4 in the paper)")
        if skip not in ("concat", "sum"):
            raise ValueError(f"skip must be 'concat' (the paper) or 'sum' (FCN-style), got {skip!r}")
        for name, value in (("in_channels", in_channels), ("num_classes", num_classes), ("base_channels", base_channels)):
            check_positive_int(name, value)
        self.config = dict(in_channels=in_channels, num_classes=num_classes, depth=depth, base_channels=base_channels,
                           padding=check_padding(padding), skip=skip, norm=check_norm(norm), up=up)
        self.in_channels, self.num_classes, self.depth = in_channels, num_classes, depth
        self.padding, self.skip = padding, skip
        widths = [base_channels * 2**i for i in range(depth + 1)]  # 64, 128, 256, 512, 1024

        # Contracting path: a double convolution per level; 2x2 max pooling between levels.
        self.down = nn.ModuleList()
        c = in_channels
        for w in widths:
            self.down.append(DoubleConv(c, w, padding, norm))
            c = w
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)

        # Expansive path: up-convolution (halves the channels), then crop-and-concatenate the
        # skip (channels double again) and a double convolution back to the level's width.
        self.up = nn.ModuleList()
        self.decode = nn.ModuleList()
        for w in reversed(widths[:-1]):
            self.up.append(UpConv(2 * w, w, up))
            self.decode.append(DoubleConv(2 * w if skip == "concat" else w, w, padding, norm))

        # Final 1x1 convolution: one score per class and pixel.
        self.head = nn.Conv2d(widths[0], num_classes, kernel_size=1)
        self.register_forward_pre_hook(check_input_dtype)  # float input of the weights' dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_unet_input_size(x, self.in_channels, self.depth, self.padding)
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < self.depth:
                skips.append(x)  # copied across the U
                x = self.pool(x)
        for up, block, skip in zip(self.up, self.decode, reversed(skips)):
            x = up(x)
            skip = center_crop(skip, x.shape[-2:])  # "copy and crop": the skip is larger (valid convs)
            x = torch.cat([skip, x], dim=1) if self.skip == "concat" else skip + x
            x = block(x)
        return self.head(x)

    def output_size(self, input_size: int) -> int:
        """Output side for an input side (see :func:`segedu.sizes.unet_output_size`)."""
        from ..sizes import unet_output_size

        return unet_output_size(input_size, self.depth) if self.padding == "valid" else input_size
