"""Measuring activation memory: why segmentation networks downsample.

Training needs, for the backward pass, the activations of the forward pass: autograd *saves*
some tensors (a convolution saves its input, a ReLU its output). For a network that keeps the
full resolution, these grow as ``depth x width x H x W``. An encoder-decoder works at lower
resolutions in the middle and saves far less.

* :func:`activation_bytes` measures — it counts the bytes of every tensor autograd saves for
  backward, through :func:`torch.autograd.graph.saved_tensors_hooks` (each storage once; the
  input and the parameters are not activations).
* :func:`cuda_peak_bytes` measures the peak of a forward + backward pass on a GPU
  (``torch.cuda.max_memory_allocated``), which also holds gradients and workspaces.
* :func:`peak_memory_bytes` measures the peak memory of any call, on the CPU too (chapter 5
  uses it to compare tiled and whole-image inference).
* :func:`expected_activation_bytes` is the arithmetic for the two stacks built by
  :func:`full_resolution_stack` and :func:`encoder_decoder_stack`, to compare with the measurement.

Introduced in chapter 2.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .checks import check_int_at_least
from .runtime import synchronize

__all__ = ["activation_bytes", "cuda_peak_bytes", "full_resolution_stack", "encoder_decoder_stack",
           "expected_activation_bytes", "peak_memory_bytes"]


def activation_bytes(model: nn.Module, x: torch.Tensor) -> int:
    """Bytes of the tensors autograd saves for backward during ``model(x)``.

    Every saved tensor is counted by its storage, each storage once (a ReLU applied in place
    saves the very tensor the next convolution saves as its input). Parameters and ``x`` itself
    are excluded. Gradients must be enabled and the model must have parameters that need them
    (or ``x.requires_grad``), otherwise nothing is saved and the result is 0.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not torch.is_tensor(x):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    exclude = {p.untyped_storage().data_ptr() for p in model.parameters()} | {x.untyped_storage().data_ptr()}
    seen: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in exclude:
            seen[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.enable_grad(), torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = model(x)
    del out
    return sum(seen.values())


def cuda_peak_bytes(model: nn.Module, x: torch.Tensor) -> int | None:
    """Peak GPU memory (bytes above what was allocated before) of one forward + backward pass.

    Returns ``None`` when CUDA is not available. ``model`` and ``x`` are moved to the GPU.
    """
    if not torch.cuda.is_available():
        return None
    model, x = model.cuda(), x.cuda()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    model(x).float().square().mean().backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated() - base
    model.zero_grad(set_to_none=True)
    return int(peak)


def _check(depth, width, minimum_depth=1):
    for name, v, lo in (("depth", depth, minimum_depth), ("width", width, 1)):
        check_int_at_least(name, v, lo)


def full_resolution_stack(depth: int, width: int, in_channels: int = 3, num_classes: int = 4) -> nn.Sequential:
    """``depth`` 3x3 convolutions (+ ReLU) of ``width`` channels, all at the input's resolution,
    then a 1x1 classifier: the "never downsample" design."""
    _check(depth, width)
    layers, c = [], in_channels
    for _ in range(depth):
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(inplace=True)]
        c = width
    return nn.Sequential(*layers, nn.Conv2d(width, num_classes, 1))


def encoder_decoder_stack(depth: int, width: int, in_channels: int = 3, num_classes: int = 4) -> nn.Sequential:
    """The same number (``depth``) of 3x3 convolutions, but most of them at lower resolution.

    One convolution at full resolution, ``L = (depth - 1) // 2`` stride-2 convolutions that halve
    the size and double the channels (``width * 2**i`` at ``1 / 2**i`` of the size), one more
    convolution at the bottom when ``depth`` is even, then ``L`` transposed convolutions
    (kernel 2, stride 2) back up, and the same 1x1 classifier. Input sides must be divisible by
    ``2**L``. ``depth >= 3``.
    """
    _check(depth, width, minimum_depth=3)
    levels = (depth - 1) // 2
    layers = [nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True)]
    for i in range(levels):
        layers += [nn.Conv2d(width * 2**i, width * 2 ** (i + 1), 3, stride=2, padding=1), nn.ReLU(inplace=True)]
    if (depth - 1) % 2:
        c = width * 2**levels
        layers += [nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True)]
    for i in reversed(range(levels)):
        layers += [nn.ConvTranspose2d(width * 2 ** (i + 1), width * 2**i, 2, stride=2), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.Conv2d(width, num_classes, 1))


def expected_activation_bytes(kind: str, depth: int, width: int, height: int, width_px: int | None = None,
                              batch: int = 1, bytes_per_value: int = 4) -> int:
    """The arithmetic: bytes the two stacks should save, one ReLU output per convolution.

    Each (transposed) convolution saves its input, which is the previous ReLU's output (the
    first one's input is the image, excluded), and each in-place ReLU saves its output — the
    same storage. So the saved bytes are the sum over the ``depth`` ReLU outputs:

    * ``"full"``: ``depth * width * H * W`` values;
    * ``"encoder_decoder"``: ``width * H * W * (1 + sum_i 2**-i [down] + bottom + sum_i 2**-(i-1) [up])``
      — a map with ``2**i`` times the channels at ``4**-i`` of the pixels holds ``2**-i`` of the values.

    ``width_px`` defaults to ``height`` (square inputs).
    """
    _check(depth, width, 3 if kind == "encoder_decoder" else 1)
    w_px = height if width_px is None else width_px
    pixels = batch * height * w_px
    if kind == "full":
        values = depth * width * pixels
    elif kind == "encoder_decoder":
        levels = (depth - 1) // 2
        if height % 2**levels or w_px % 2**levels:
            raise ValueError(f"the encoder-decoder of depth {depth} halves the size {levels} times: "
                             f"height and width must be divisible by {2**levels}")
        values = width * pixels  # the full-resolution stem
        for i in range(1, levels + 1):
            values += width * 2**i * pixels // 4**i  # down-convolution i
            values += width * 2 ** (i - 1) * pixels // 4 ** (i - 1)  # transposed convolution back to level i-1
        if (depth - 1) % 2:
            values += width * 2**levels * pixels // 4**levels  # the extra bottom convolution
    else:
        raise ValueError(f"kind must be 'full' or 'encoder_decoder', got {kind!r}")
    return values * bytes_per_value


def peak_memory_bytes(fn: Callable[[], object], device="cpu") -> int:
    """Peak bytes allocated by PyTorch while ``fn()`` runs, above what was allocated before.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: PyTorch keeps no CPU peak counter, so the
    allocations and frees that ``torch.profiler`` records (``profile_memory=True``) are replayed
    in time order and their running sum's maximum is taken. What ``fn`` returns is dropped
    before the measurement ends, so the result counts the call's working memory.
    """
    device = torch.device(device)
    if device.type == "cuda":
        synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        synchronize(device)
        del out
        return int(torch.cuda.max_memory_allocated(device) - base)
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out = fn()
        del out
    events = sorted((e.time_range.start, e.self_cpu_memory_usage) for e in prof.profiler.function_events
                    if e.self_cpu_memory_usage)
    current = peak = 0
    for _, nbytes in events:
        current += nbytes
        peak = max(peak, current)
    return int(peak)
