"""Small facts about any model of the course, used wherever models are trained or compared.

* :func:`count_parameters`: the size the papers quote ("7.8M parameters").
* :func:`last_output`: the prediction. A deeply supervised UNet++ returns a list of heads
  ``[X^{0,1}, ..., X^{0,L}]``; its prediction is the last (deepest) head, as in the paper's
  accurate mode. Any other model returns one tensor, which is its prediction.
* :func:`check_input_dtype`: every model of the course checks, before its forward pass, that its
  input is a float tensor of its weights' dtype (a float64 image into a float32 model would
  otherwise fail deep inside a convolution with a message about "bias type").

Introduced in chapter 6.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["count_parameters", "last_output", "check_input_dtype"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights and biases) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def last_output(output):
    """The final prediction of a model's output: the last head of a list (deep supervision), else
    the output itself."""
    return output[-1] if isinstance(output, (list, tuple)) else output


def check_input_dtype(module: nn.Module, args) -> None:
    """A forward pre-hook (``module.register_forward_pre_hook(check_input_dtype)``): refuse an input
    that is not float (``uint8`` images: ``x.float() / 255``) or whose float dtype differs from the
    weights' (``x.float()``, or ``model.double()`` for a float64 model). Under autocast mixed
    dtypes are autocast's to handle, so only the integer check applies. Anything not a tensor is
    left to the forward pass."""
    x = args[0] if args else None
    if not torch.is_tensor(x):
        return
    name = type(module).__name__
    if not x.is_floating_point():
        fix = "x.float() / 255 for 8-bit images" if x.dtype == torch.uint8 else "x.float()"
        raise TypeError(f"{name} input must be a float tensor (e.g. an image scaled to [0, 1]), got {x.dtype}: "
                        f"convert it with {fix}")
    weight = next(module.parameters(), None)
    if weight is None or weight.dtype == x.dtype or torch.is_autocast_enabled(x.device.type):
        return
    raise TypeError(f"{name} input is {x.dtype} but the model's weights are {weight.dtype}: convert the input with "
                    f"x.to({weight.dtype}) (e.g. x.float()), or the model with model.to({x.dtype})")
