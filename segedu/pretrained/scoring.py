"""How a reference model scores an image of any size: at the scale it was trained at, padded to what
its poolings need (same-padding models). Shared by :func:`segedu.pretrained.predict` and the
calibration of :mod:`segedu.pretrained.recipes`."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["scaled_scores"]


def scaled_scores(model, x: torch.Tensor, scale: float) -> torch.Tensor:
    """The scores of ``x`` at ``scale`` of its size (same-padding models), mirror-padded to a multiple
    of ``2**depth`` and cropped back: ``[N, K, h, w]`` at the scaled size."""
    from ..tiling import mirror_pad

    small = F.interpolate(x, scale_factor=scale, mode="bilinear", antialias=True, align_corners=False) if scale != 1 else x
    h, w = small.shape[-2:]
    m = 2 ** model.depth
    ph, pw = -h % m, -w % m
    padded = torch.stack([mirror_pad(img, ph // 2, ph - ph // 2, pw // 2, pw - pw // 2) for img in small])
    model.eval()
    return model(padded)[..., ph // 2:ph // 2 + h, pw // 2:pw // 2 + w]
