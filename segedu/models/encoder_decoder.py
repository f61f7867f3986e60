"""A plain encoder-decoder whose only varying part is the upsampling (the chapter-3 experiment).

Encoder: ``levels`` times (two 3x3 convolutions, then 2x2 max-pooling that remembers its argmax
indices). Decoder: ``levels`` times (upsample x2, then two 3x3 convolutions). There are **no skip
connections**, so everything the decoder knows about *where* things were must travel through
the upsampling — which is what makes the comparison of upsampling methods visible.

``up`` chooses the upsampling:

* ``"nearest"`` — :class:`segedu.layers.NearestUpsample`
* ``"bed_of_nails"`` — :class:`segedu.layers.BedOfNailsUpsample`
* ``"max_unpool"`` — :class:`segedu.layers.MaxUnpool` with the indices of the mirrored pooling
  (SegNet's decoder)
* ``"transpose"`` — a learnable ``nn.ConvTranspose2d(c, c, 2, stride=2)`` (chapter 4); the only
  choice that adds parameters
* ``"bilinear"`` — ``F.interpolate(mode="bilinear")``, a fixed smooth interpolation

Introduced in chapter 3.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import check_int_at_least
from ..layers import BedOfNailsUpsample, MaxUnpool, NearestUpsample
from .utils import check_input_dtype

__all__ = ["EncoderDecoder", "UPSAMPLINGS"]

UPSAMPLINGS = ("nearest", "bed_of_nails", "max_unpool", "transpose", "bilinear")


def _convs(c_in: int, c_out: int, norm) -> nn.Sequential:
    layers = []
    for c in (c_in, c_out):
        layers += [nn.Conv2d(c, c_out, 3, padding=1, bias=norm is None)]
        if norm == "batch":
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class _Bilinear(nn.Module):
    def forward(self, x):
        return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class EncoderDecoder(nn.Module):
    """Encoder-decoder without skips; only the upsampling varies.

    Args:
        num_classes, in_channels: output classes and image channels.
        up: one of :data:`UPSAMPLINGS`.
        width: channels of the first level; level ``i`` has ``width * 2**i``.
        levels: number of poolings; input sides must be divisible by ``2**levels``.
        norm: ``"batch"`` (default, trains quickly from scratch) or ``None``.
    """

    def __init__(self, num_classes: int = 4, in_channels: int = 3, up: str = "max_unpool", width: int = 16,
                 levels: int = 3, norm="batch"):
        super().__init__()
        if up not in UPSAMPLINGS:
            raise ValueError(f"up must be one of {UPSAMPLINGS}, got {up!r}")
        if norm not in (None, "batch"):
            raise ValueError(f"norm must be None or 'batch', got {norm!r}")
        check_int_at_least("levels", levels, 1)
        self.up_kind, self.levels, self.in_channels = up, levels, in_channels
        ch = [width * 2**i for i in range(levels + 1)]
        self.encoder = nn.ModuleList(_convs(in_channels if i == 0 else ch[i - 1], ch[i], norm) for i in range(levels))
        self.pool = nn.MaxPool2d(2, 2, return_indices=True)
        self.bottom = _convs(ch[levels - 1], ch[levels - 1], norm)
        ups, decoder = [], []
        for i in reversed(range(levels)):  # level i: upsample, then convolve down to ch[i-1] (or ch[0])
            c = ch[i]
            ups.append({"nearest": lambda: NearestUpsample(2), "bed_of_nails": lambda: BedOfNailsUpsample(2),
                        "max_unpool": lambda: MaxUnpool(2), "transpose": lambda: nn.ConvTranspose2d(c, c, 2, stride=2),
                        "bilinear": _Bilinear}[up]())
            decoder.append(_convs(c, ch[max(i - 1, 0)], norm))
        self.ups, self.decoder = nn.ModuleList(ups), nn.ModuleList(decoder)
        self.head = nn.Conv2d(ch[0], num_classes, 1)
        self.register_forward_pre_hook(check_input_dtype)  # float input of the weights' dtype

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected images [N, {self.in_channels}, H, W], got "
                             f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
        m = 2**self.levels
        if x.shape[-2] % m or x.shape[-1] % m:
            raise ValueError(f"input height and width must be divisible by 2**levels = {m}, got {tuple(x.shape[-2:])}")
        indices = []
        for enc in self.encoder:
            x, idx = self.pool(enc(x))
            indices.append(idx)
        x = self.bottom(x)
        for up, dec, idx in zip(self.ups, self.decoder, reversed(indices)):
            x = up(x, idx) if isinstance(up, MaxUnpool) else up(x)
            x = dec(x)
        return self.head(x)
