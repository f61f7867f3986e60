"""Segmenting one image of any size with any model of the course.

Every architecture of the course accepts only some input sizes, and each for a different reason,
so each needs its own way to label every pixel of an arbitrary ``H x W`` image:

* a valid-padding U-Net (chapter 5) predicts a smaller square than it sees: it goes through
  overlap-tile (:func:`segedu.tiling.predict_tiled`), either as one tile whose output covers the
  whole image (:func:`segedu.sizes.covering_input_size`) or, with ``tiled=True``, tile by tile;
* a padded ("same") U-Net and the UNet++ family (chapter 6) pool ``depth`` times, so their input
  sides must be multiples of ``2**depth``: the image is mirror-padded up to one and the output
  cropped back (a deeply supervised net predicts with its last head,
  :func:`segedu.models.last_output`); with ``tiled=True`` tile by tile
  (:func:`segedu.tiling.predict_tiled_same`), in memory bounded by the tile, with the same result;
* an FCN (chapter 2) takes any size and returns the input size;
* the sliding-window classifier (chapter 1) runs as its fully convolutional form
  (:meth:`~segedu.models.SlidingWindowClassifier.to_fcn`), which also takes any size.

Scores become labels by ``argmax`` over the classes, or ``score > 0`` for a one-channel
(binary) model. ``python -m segedu predict`` and the preview that ``train`` writes both segment
through :func:`segment_image`.

Introduced in chapter 5 (overlap-tile), used by the appendix "Beyond the course: training on
your data".
"""

from __future__ import annotations

import torch
from torch import nn

from .checks import check_positive_int
from .models import SlidingWindowClassifier, last_output
from .sizes import covering_input_size
from .tiling import check_image, mirror_pad, predict_tiled, predict_tiled_same

__all__ = ["segment_image", "confusion_over"]


@torch.no_grad()
def segment_image(model: nn.Module, image: torch.Tensor, *, tiled: bool = False, tile_size=None,
                  batch_size: int = 4) -> torch.Tensor:
    """Class labels ``[H, W]`` for an image ``[C, H, W]`` of any size, whatever the model.

    Valid-padding U-Nets go through overlap-tile with mirror padding (one tile covering the whole
    image, or tiles of ``tile_size`` with ``tiled=True``); padded U-Nets / UNet++ get the image
    mirror-padded to a multiple of ``2**depth`` (with ``tiled=True``: tiles of ``tile_size``, see
    :func:`segedu.tiling.predict_tiled_same`, same labels in bounded memory); FCNs take any size; the
    sliding-window classifier runs as its fully convolutional form (``tiled`` changes nothing for
    these two). An image that is not a float ``[C, H, W]`` of finite values is refused.
    """
    if not torch.is_tensor(image) or image.dim() != 3:
        raise ValueError(f"image must be a tensor [C, H, W], got {getattr(image, 'shape', type(image))}")
    check_image(image, getattr(model, "in_channels", None))
    check_positive_int("batch_size", batch_size)
    dev = next(model.parameters()).device
    model.eval()
    H, W = image.shape[-2:]
    if isinstance(model, SlidingWindowClassifier):
        scores = model.to_fcn()(image[None].to(dev))[0]
    elif getattr(model, "padding", None) == "valid":
        if tiled:
            scores = predict_tiled(model, image, tile_size=tile_size, batch_size=batch_size)
        else:
            scores = predict_tiled(model, image, tile_size=covering_input_size(max(H, W), model.depth), batch_size=1)
    elif tiled and isinstance(getattr(model, "depth", None), int) and getattr(model, "padding", None) == "same":
        scores = predict_tiled_same(model, image, tile_size=tile_size, batch_size=batch_size)
    elif isinstance(getattr(model, "depth", None), int):  # padded U-Net family: sides divisible by 2**depth
        m = 2**model.depth
        x = mirror_pad(image[None], 0, -H % m, 0, -W % m).to(dev)
        scores = last_output(model(x))[0, :, :H, :W]
    else:
        scores = model(image[None].to(dev))[0]
    scores = scores.float().cpu()
    return (scores[0] > 0).long() if scores.shape[0] == 1 else scores.argmax(0)


@torch.no_grad()
def confusion_over(model: nn.Module, images: torch.Tensor, masks: torch.Tensor, num_classes: int, *,
                   ignore_index: int | None = None, batch_size: int = 16) -> torch.Tensor:
    """Confusion matrix ``[num_classes, num_classes]`` (rows: true class) of ``model`` over a stack of images.

    The model runs at the images' size (any model that returns scores of its input's size: an FCN,
    a same-padding U-Net); when ``masks`` are larger (labels kept at full size, images shrunk),
    the scores are upsampled bilinearly to the masks' size before the argmax, so the labels are
    measured at the size they were drawn. Pixels labelled ``ignore_index`` are not counted.
    """
    from .metrics import confusion_matrix

    if images.dim() != 4 or masks.dim() != 3 or len(images) != len(masks):
        raise ValueError(f"images must be [N, C, H, W] and masks [N, H, W] with the same N, "
                         f"got {tuple(images.shape)} and {tuple(masks.shape)}")
    model.eval()
    device = next(model.parameters()).device
    conf = torch.zeros(num_classes, num_classes, dtype=torch.long)
    for i in range(0, len(images), batch_size):
        scores = model(images[i:i + batch_size].to(device)).float().cpu()
        if scores.shape[-2:] != masks.shape[-2:]:
            scores = torch.nn.functional.interpolate(scores, size=masks.shape[-2:], mode="bilinear",
                                                     align_corners=False)
        conf += confusion_matrix(scores.argmax(1), masks[i:i + batch_size].long(), num_classes,
                                 ignore_index=ignore_index)
    return conf
