"""The modes a model can be trained in, and a runner that sets a model up in one of them.

A mode combines three independent switches, each a way to make a training step faster:

* ``channels_last``: the NHWC memory format, which many convolution kernels prefer;
* ``amp``: autocast to bfloat16 or float16 (the gradient scaler comes with float16);
* ``compile``: ``torch.compile``, which fuses operations into generated kernels. It needs a C++
  compiler on the CPU; :func:`compile_available` finds out once per process whether it works.

:class:`ModeRunner` holds a copy of a model set up for one mode, with the training step of
:func:`segedu.train.train_step` — the very step ``fit`` takes — and inference as
:func:`segedu.train.predict` runs it. The ``train_step`` and ``plain_unet`` benchmarks time those
two calls. A reduced-precision mode counts as *correct* when its first forward pass is within
:data:`TOLERANCE` of the float32 one. Which modes pay off on which machine is measured, not
assumed: see the generated Performance appendix (``book/performance.md``).
"""

from __future__ import annotations

import copy
import os
import shutil

import torch
from torch import nn
from torch.nn import functional as F

from ...sizes import center_crop
from ...train import train_step

__all__ = ["MODES", "CPU_MODES", "CUDA_MODES", "TOLERANCE", "compile_available", "ModeRunner"]

# Each mode is a combination of three independent switches.
MODES = {
    "fp32": dict(),
    "channels_last": dict(channels_last=True),
    "bf16": dict(amp=torch.bfloat16),
    "fp16": dict(amp=torch.float16),
    "bf16+channels_last": dict(amp=torch.bfloat16, channels_last=True),
    "compile": dict(compile=True),
    "compile+channels_last": dict(compile=True, channels_last=True),
    "compile+bf16": dict(compile=True, amp=torch.bfloat16),
    "compile+bf16+channels_last": dict(compile=True, amp=torch.bfloat16, channels_last=True),
}
CPU_MODES = ["fp32", "channels_last", "bf16", "compile", "compile+channels_last"]
CUDA_MODES = ["fp32", "channels_last", "bf16", "fp16", "bf16+channels_last", "compile+bf16+channels_last"]
# Largest relative difference of a first forward pass from the fp32 result that still counts as
# "correct": float32 rounding (and TF32 convolutions on recent GPUs) vs 8/11-bit mantissas.
TOLERANCE = {"fp32": 5e-3, "reduced": 6e-2}

_COMPILE_STATUS: dict = {}


def compile_available(device) -> tuple[bool, str]:
    """Whether ``torch.compile`` works here, and why not.

    The CPU backend (inductor) generates C++ and needs a C++ compiler; on CUDA it generates
    Triton kernels. A tiny function is compiled once per process to find out.
    """
    device = torch.device(device)
    if device.type in _COMPILE_STATUS:
        return _COMPILE_STATUS[device.type]
    if device.type == "cpu" and not (shutil.which(os.environ.get("CXX", "g++")) or shutil.which("c++")
                                     or shutil.which("clang++")):
        status = (False, "torch.compile on the CPU needs a C++ compiler (g++ or clang++) and none was found")
    else:
        try:
            f = torch.compile(lambda t: torch.relu(t) * 2 + 1)
            x = torch.randn(8, device=device)
            ok = torch.allclose(f(x), torch.relu(x) * 2 + 1)
            status = (bool(ok), "" if ok else "torch.compile gave a wrong result on a test function")
        except Exception as e:  # noqa: BLE001 - any backend failure means: skip, with the reason
            status = (False, f"torch.compile failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
    _COMPILE_STATUS[device.type] = status
    return status


def _loss(out, y):
    """Pixel-wise cross entropy (binary for one channel), averaged over deep-supervision heads;
    targets are centre-cropped to valid-padding outputs, as ``train.fit`` does."""
    outs = out if isinstance(out, (list, tuple)) else [out]
    total = 0.0
    for o in outs:
        o = o.float()
        t = y
        if o.dim() == 4 and t.shape[-2:] != o.shape[-2:]:
            t = center_crop(t, tuple(o.shape[-2:]))
        if o.dim() == 4 and o.shape[1] == 1:
            total = total + F.binary_cross_entropy_with_logits(o[:, 0], t.float())
        else:
            total = total + F.cross_entropy(o, t)
    return total / len(outs)


class ModeRunner:
    """A copy of a model set up for one mode, with a training step and an inference call."""

    def __init__(self, base: nn.Module, x, y, mode: str, device: torch.device):
        opts = MODES[mode]
        self.amp = opts.get("amp")
        self.model = copy.deepcopy(base).to(device).train()
        self.x, self.y = x, y
        if opts.get("channels_last"):
            self.model = self.model.to(memory_format=torch.channels_last)
            self.x = x.contiguous(memory_format=torch.channels_last)
        self.fn = torch.compile(self.model) if opts.get("compile") else self.model
        self.device = device
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-4)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp is torch.float16)

    def forward(self):
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            return self.fn(self.x)

    def step(self):
        """forward + loss + backward + optimizer step: :func:`segedu.train.train_step`, the body of
        ``train.fit``'s loop."""
        _, out = train_step(self.fn, self.x, [self.y], self.opt, _loss, scaler=self.scaler, amp_dtype=self.amp)
        return out

    def infer(self):
        """Inference as ``train.predict`` runs it: eval mode (batch norm uses its running
        statistics), no autograd."""
        self.model.eval()
        try:
            with torch.inference_mode():
                return self.forward()
        finally:
            self.model.train()
