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

Guards against asking for more memory than the machine has (a user's ``--depth 16``), all
*before* anything is allocated:

* :func:`available_memory_bytes`: what the CPU (psutil, ``/proc/meminfo`` or ``os.sysconf``, and a
  cgroup's limit) or a CUDA GPU (``torch.cuda.mem_get_info``) still has free;
* :func:`meta_parameter_count`: the parameters a constructor would allocate, counted by building the
  model on PyTorch's ``meta`` device (shapes only, no storage);
* :func:`estimate_activation_bytes`: the activations one forward pass keeps, from a forward pass on
  the ``meta`` device;
* :func:`check_memory` / :func:`check_training_memory` raise :class:`InsufficientMemoryError`, with
  the estimate, when it exceeds what is free. ``fit`` checks its first batch; the command line
  checks a model's weights before building it.

Introduced in chapter 2.
"""

from __future__ import annotations

import itertools
import os
from typing import Callable

import torch
from torch import nn

from .checks import check_int_at_least
from .runtime import synchronize

__all__ = ["activation_bytes", "cuda_peak_bytes", "full_resolution_stack", "encoder_decoder_stack",
           "expected_activation_bytes", "peak_memory_bytes", "InsufficientMemoryError", "available_memory_bytes",
           "format_bytes", "check_memory", "meta_parameter_count", "estimate_activation_bytes",
           "check_training_memory"]


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


# --------------------------------------------------------------------------------------------
# guards: estimate before allocating
# --------------------------------------------------------------------------------------------

class InsufficientMemoryError(MemoryError, ValueError):
    """An estimate says the work needs more memory than is free; raised before allocating it.

    A ``MemoryError``, and a ``ValueError`` too: it is a problem with the input (a depth, a width,
    an image size), which the command line reports as one line.
    """


def format_bytes(n: float) -> str:
    """``n`` bytes in binary units: ``'1.5 GiB'``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def _cpu_available_bytes() -> int | None:
    free = None
    try:
        import psutil

        free = int(psutil.virtual_memory().available)
    except ImportError:
        try:
            with open("/proc/meminfo") as f:
                info = {line.split(":")[0]: line.split()[1] for line in f}
            free = int(info["MemAvailable"]) * 1024
        except (OSError, KeyError, ValueError, IndexError):
            try:
                free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            except (ValueError, OSError, AttributeError):
                free = None
    try:  # a container's cgroup (v2) limit may be lower than what the host has free
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                left = int(limit) - int(f.read().strip())
            free = left if free is None else min(free, left)
    except (OSError, ValueError):
        pass
    return None if free is None else max(int(free), 0)


def available_memory_bytes(device="cpu") -> int | None:
    """Bytes ``device`` can still allocate: free RAM for the CPU, free GPU memory (plus what
    PyTorch's caching allocator holds unused) for CUDA; ``None`` when unknown (e.g. MPS)."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return None
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    if device.type == "cpu":
        return _cpu_available_bytes()
    return None


def check_memory(needed: int, device, what: str, advice: str = "") -> None:
    """Raise :class:`InsufficientMemoryError` if ``needed`` bytes exceed what ``device`` has free.

    The message reads "WHAT needs about X, but DEVICE has only Y free; ADVICE". Nothing happens when
    the free memory is unknown (:func:`available_memory_bytes` returns ``None``).
    """
    free = available_memory_bytes(device)
    if free is not None and needed > free:
        where = "this machine" if torch.device(device).type == "cpu" else f"the GPU ({torch.device(device)})"
        raise InsufficientMemoryError(f"{what} needs about {format_bytes(needed)}, but {where} has only "
                                      f"{format_bytes(free)} free" + (f"; {advice}" if advice else ""))


def meta_parameter_count(build: Callable[[], nn.Module]) -> int:
    """The number of parameters ``build()`` would allocate, counted without allocating them.

    The model is built on PyTorch's ``meta`` device, whose tensors have shapes but no storage. A
    model too large for even that (more than ``2**63`` values in one tensor) counts as ``2**63``.
    """
    try:
        with torch.device("meta"):
            model = build()
    except RuntimeError as e:
        if "overflow" in str(e):
            return 2**63
        raise
    return sum(p.numel() for p in model.parameters())


def estimate_activation_bytes(model: nn.Module, shape, dtype=torch.float32) -> int | None:
    """Bytes of the feature maps one forward pass of ``model`` on a batch of ``shape`` produces,
    estimated without allocating anything; ``None`` if the model cannot run on the ``meta`` device.

    The forward pass runs on ``meta`` copies of the parameters (:func:`torch.func.functional_call`;
    the model itself is untouched) and adds up every distinct tensor that goes into or comes out of
    a layer, the input excluded — what autograd keeps for the backward pass, about (compare
    :func:`activation_bytes`, which measures it). A layer's errors (a bad input size) are left to the
    real forward pass to report.
    """
    params = {n: torch.empty_like(t, device="meta") for n, t in
              itertools.chain(model.named_parameters(), model.named_buffers())}
    x = torch.empty(tuple(shape), dtype=dtype, device="meta")
    seen: dict[int, torch.Tensor] = {id(x): x}  # kept alive, so that ids stay unique
    total = 0

    def count(module, args, out):
        nonlocal total
        for t in itertools.chain(args, out if isinstance(out, (tuple, list)) else (out,)):
            if torch.is_tensor(t) and id(t) not in seen:
                seen[id(t)] = t
                total += t.numel() * t.element_size()

    handles = [m.register_forward_hook(count) for m in model.modules() if next(m.children(), None) is None]
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.func.functional_call(model, params, (x,), strict=False)
    except Exception:  # noqa: BLE001 — not meta-compatible, or a bad input: the real forward will say
        return None
    finally:
        for h in handles:
            h.remove()
    return total


def check_training_memory(model: nn.Module, shape, device, dtype=torch.float32, what: str | None = None) -> int | None:
    """Refuse (:class:`InsufficientMemoryError`) a training step that cannot fit in ``device``'s memory.

    The estimate is the activations of one batch of ``shape`` (:func:`estimate_activation_bytes`)
    plus, per trainable parameter, its gradient and Adam's two moments (the weights are already
    allocated). Returns the estimate in bytes (``None`` when the model cannot be estimated).
    """
    activations = estimate_activation_bytes(model, shape, dtype)
    if activations is None:
        return None
    state = 3 * sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    n, _, *size = tuple(shape)
    what = what or (f"one training step on a batch of {n} images of {'x'.join(map(str, size))} "
                    f"(activations {format_bytes(activations)}, gradients and Adam's state {format_bytes(state)})")
    check_memory(activations + state, device, what,
                 "lower the batch size, the image size, or the model's depth or width")
    return activations + state
