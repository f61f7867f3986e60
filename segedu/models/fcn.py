"""FCN-32s, FCN-16s and FCN-8s (Long, Shelhamer & Darrell, "Fully Convolutional Networks for
Semantic Segmentation", CVPR 2015).

The network in the paper's words: a classification network (VGG16) whose fully connected
layers are rewritten as convolutions, so it outputs a coarse map of class scores (1/32 of the
input); a learnable upsampling (a transposed convolution initialised to bilinear interpolation)
brings the scores back to the input size. The coarse map gives blobby boundaries, so the
"skip" architecture adds finer predictions: 1x1 score layers on ``pool4`` (1/16) and ``pool3``
(1/8), **summed** with the upsampled coarse scores:

* FCN-32s: ``up32(score(fc7))``
* FCN-16s: ``up16(up2(score(fc7)) + score(pool4))``
* FCN-8s:  ``up8(up2(up2(score(fc7)) + score(pool4)) + score(pool3))``

How this implementation differs from the paper, and why (every difference is an argument):

* **Widths.** The paper's backbone is VGG16: stages of ``(2, 2, 3, 3, 3)`` 3x3 convolutions with
  ``(64, 128, 256, 512, 512)`` channels, ``fc6`` a 7x7 convolution to 4096 channels, ``fc7`` 1x1
  to 4096. The default here keeps the layer counts but is 4x narrower (``(16, 32, 64, 128, 128)``,
  ``fc`` 256 channels, ``fc6`` 3x3) so that it trains on 64x64 ``Shapes`` images on a CPU in
  minutes. :meth:`FCN.vgg16` builds the paper's widths (134M parameters with 21 classes, the
  paper's Table 1 reports 134M).
* **Alignment.** The Caffe reference pads ``conv1_1`` by 100 pixels, uses ``ceil`` pooling and
  unpadded ``fc6``, and crops each fused map by hand-computed offsets. Here every convolution is
  "same"-padded and the input is zero-padded (bottom/right) to a multiple of 32, so all maps
  align exactly (``1/8``, ``1/16``, ``1/32``); the output is cropped back to the input size.
* **Training.** The paper starts from ImageNet weights, trains FCN-32s first and initialises
  FCN-16s from it (and FCN-8s from FCN-16s). The course trains each variant from scratch on
  synthetic data; optional BatchNorm (``norm="batch"``) makes that faster but is not the paper's.
* Like the paper, score layers start at zero and every upsampling starts as bilinear
  interpolation; here all of them stay learnable (the reference net freezes the last one).

Introduced in chapter 2.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_positive_int
from ..transposed import bilinear_kernel
from .utils import check_input_dtype

__all__ = ["FCN", "FCNConfig"]

VARIANTS = ("32s", "16s", "8s")


@dataclass
class FCNConfig:
    """Sizes of the backbone. The defaults are the course's small model; see :meth:`FCN.vgg16`."""

    widths: tuple = (16, 32, 64, 128, 128)  # channels of the five VGG stages (paper: 64 ... 512)
    depths: tuple = (2, 2, 3, 3, 3)         # 3x3 convolutions per stage (paper: the same)
    fc_channels: int = 256                  # channels of fc6 and fc7 (paper: 4096)
    fc_kernel: int = 3                      # fc6 kernel size (paper: 7)
    dropout: float = 0.0                    # after fc6 and fc7 (paper: 0.5)
    norm: str | None = None                 # None (paper) or "batch"


def _vgg_stage(c_in: int, c_out: int, n_convs: int, norm) -> nn.Sequential:
    layers = []
    for i in range(n_convs):
        layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=norm is None))
        if norm == "batch":
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
    layers.append(nn.MaxPool2d(2, 2))  # halves the size: the stage's output is pool1 ... pool5
    return nn.Sequential(*layers)


def _upsample(num_classes: int, factor: int) -> nn.ConvTranspose2d:
    """A learnable ``factor`` x upsampling initialised to bilinear interpolation (kernel ``2 factor``)."""
    up = nn.ConvTranspose2d(num_classes, num_classes, 2 * factor, stride=factor, padding=factor // 2, bias=False)
    with torch.no_grad():
        up.weight.copy_(bilinear_kernel(2 * factor, num_classes))
    return up


def _score(in_channels: int, num_classes: int) -> nn.Conv2d:
    """A 1x1 convolution that turns features into class scores; zero-initialised as in the paper,
    so a newly added skip starts by changing nothing."""
    score = nn.Conv2d(in_channels, num_classes, 1)
    nn.init.zeros_(score.weight)
    nn.init.zeros_(score.bias)
    return score


class FCN(nn.Module):
    """Fully convolutional network with skip fusion by summation.

    Args:
        num_classes: number of classes ``K``; the output is ``[N, K, H, W]`` for an ``[N, C, H, W]`` input.
        variant: ``"32s"``, ``"16s"`` or ``"8s"`` — the stride of the finest prediction that is fused.
        in_channels: image channels.
        widths, depths, fc_channels, fc_kernel, dropout, norm: backbone sizes (see :class:`FCNConfig`);
            the defaults are the course's small model, :meth:`FCN.vgg16` gives the paper's.

    Any input size works: it is zero-padded to a multiple of 32 and the output cropped back.
    """

    def __init__(self, num_classes: int, variant: str = "8s", in_channels: int = 3, *,
                 widths=FCNConfig.widths, depths=FCNConfig.depths, fc_channels: int = FCNConfig.fc_channels,
                 fc_kernel: int = FCNConfig.fc_kernel, dropout: float = FCNConfig.dropout, norm=None):
        super().__init__()
        check_positive_int("num_classes", num_classes)
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS} (the stride of the finest fused prediction), "
                             f"got {variant!r}")
        check_positive_int("in_channels", in_channels)
        widths, depths = tuple(widths), tuple(depths)
        if len(widths) != 5 or len(depths) != 5 or min(widths) < 1 or min(depths) < 1:
            raise ValueError(f"widths and depths must each give 5 positive numbers (the five VGG stages, "
                             f"pool1 ... pool5), got widths={widths}, depths={depths}")
        if fc_kernel < 1 or fc_kernel % 2 == 0:
            raise ValueError(f"fc_kernel must be odd (a 'same'-padded convolution), got {fc_kernel}")
        if norm not in (None, "batch"):
            raise ValueError(f"norm must be None (the paper) or 'batch', got {norm!r}")
        self.num_classes, self.variant, self.in_channels = num_classes, variant, in_channels
        self.config = FCNConfig(widths, depths, fc_channels, fc_kernel, dropout, norm)

        # Backbone: VGG's five stages; stage i ends with pool_i at 1 / 2**i of the input.
        chans = (in_channels,) + widths
        self.stages = nn.ModuleList(_vgg_stage(chans[i], chans[i + 1], depths[i], norm) for i in range(5))
        # fc6 and fc7, "convolutionalized": the classifier's dense layers as convolutions.
        self.fc = nn.Sequential(
            nn.Conv2d(widths[4], fc_channels, fc_kernel, padding=fc_kernel // 2), nn.ReLU(inplace=True),
            nn.Dropout2d(dropout),
            nn.Conv2d(fc_channels, fc_channels, 1), nn.ReLU(inplace=True), nn.Dropout2d(dropout),
        )
        self.score_fr = _score(fc_channels, num_classes)       # the coarse prediction, 1/32
        if variant in ("16s", "8s"):
            self.score_pool4 = _score(widths[3], num_classes)
            self.upscore2 = _upsample(num_classes, 2)          # 1/32 -> 1/16
        if variant == "8s":
            self.score_pool3 = _score(widths[2], num_classes)
            self.upscore_pool4 = _upsample(num_classes, 2)     # 1/16 -> 1/8
        final = {"32s": 32, "16s": 16, "8s": 8}[variant]
        self.upscore_final = _upsample(num_classes, final)     # back to the input size
        self.register_forward_pre_hook(check_input_dtype)  # float input of the weights' dtype

    @classmethod
    def vgg16(cls, num_classes: int = 21, variant: str = "8s", in_channels: int = 3, dropout: float = 0.5) -> "FCN":
        """The paper's widths: VGG16 (64, 128, 256, 512, 512), fc6 7x7 to 4096, fc7 4096, dropout 0.5."""
        return cls(num_classes, variant, in_channels, widths=(64, 128, 256, 512, 512), depths=(2, 2, 3, 3, 3),
                   fc_channels=4096, fc_kernel=7, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != self.in_channels:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"FCN expects images [N, {self.in_channels}, H, W], got {shape}")
        H, W = x.shape[-2:]
        # Pad bottom/right to a multiple of 32 so that pool3/pool4/pool5 are exactly 1/8, 1/16, 1/32.
        x = F.pad(x, (0, -W % 32, 0, -H % 32))
        pools = []
        for stage in self.stages:
            x = stage(x)
            pools.append(x)
        score = self.score_fr(self.fc(pools[4]))                        # 1/32
        if self.variant in ("16s", "8s"):
            score = self.upscore2(score) + self.score_pool4(pools[3])   # fuse at 1/16 by summation
        if self.variant == "8s":
            score = self.upscore_pool4(score) + self.score_pool3(pools[2])  # fuse at 1/8
        return self.upscore_final(score)[..., :H, :W]

    def extra_repr(self) -> str:
        return f"variant={self.variant!r}, num_classes={self.num_classes}"
