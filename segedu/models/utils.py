"""Two small facts about any model of the course, used wherever models are trained or compared.

* :func:`count_parameters`: the size the papers quote ("7.8M parameters").
* :func:`last_output`: the prediction. A deeply supervised UNet++ returns a list of heads
  ``[X^{0,1}, ..., X^{0,L}]``; its prediction is the last (deepest) head, as in the paper's
  accurate mode. Any other model returns one tensor, which is its prediction.

Introduced in chapter 6.
"""

from __future__ import annotations

from torch import nn

__all__ = ["count_parameters", "last_output"]


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (weights and biases) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def last_output(output):
    """The final prediction of a model's output: the last head of a list (deep supervision), else
    the output itself."""
    return output[-1] if isinstance(output, (list, tuple)) else output
