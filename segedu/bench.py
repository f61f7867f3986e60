"""The benchmark suite: ``python -m segedu bench [--quick] [--device auto|cpu|cuda] [--out DIR]``.

Readers run this course on a 2-core laptop CPU or a free Colab GPU, so speed decides whether they
finish a chapter. This module measures the claims about speed and memory that the chapters make,
and the choices behind the library's defaults:

==================  =============================================================================
sliding_window      the brute-force sliding window vs its convolutionalised network (chapter 1)
activation_memory   activation memory of a full-resolution stack vs an encoder-decoder (chapter 2)
tiling              overlap-tile vs whole-image inference of the valid U-Net (chapter 5)
train_step          training step and inference of every model under fp32, channels_last,
                    bfloat16/float16 autocast and ``torch.compile``
unetpp_pruning      inference time and parameters of the pruned UNet++ L1..L4 (chapter 6)
plain_unet          segedu's U-Net vs a plain, straightforward implementation of the same network
==================  =============================================================================

How the numbers are measured (the Performance appendix repeats this):

* Every timed function runs ``warmup`` times first (one-off costs: memory pools, oneDNN/cuDNN
  kernel selection, compilation), then up to ``repeats`` times; the table shows the **median**.
* Alternatives that are compared (sliding window vs dense, fp32 vs bf16, segedu vs plain) are
  timed **interleaved** in one loop — A, B, A, B, ... — so that a change in machine load during
  the run hits both alike, and the ratio is measured side by side.
* On CUDA, timing brackets the call with ``torch.cuda.synchronize()``; peak memory is
  ``torch.cuda.max_memory_allocated``. On the CPU, peak memory is the peak of the bytes held by
  PyTorch's allocator during the call, read from ``torch.profiler``'s memory events (it excludes
  the Python interpreter and the model's weights, which exist before the call).
* ``results.json`` records the hardware, PyTorch version, thread count, date and the load average
  of the machine before and after (timings on a busy machine are noisy: compare ratios, not
  absolute times, across runs).

Each benchmark is a function registered with :func:`register`; ``--list`` shows them and naming
some on the command line runs only those. A benchmark whose model is not available is reported as
skipped, with the reason, instead of failing the run.

Introduced in the Performance appendix.
"""

from __future__ import annotations

import argparse
import copy
import datetime as _dt
import importlib
import json
import math
import os
import platform
import shutil
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .memory import activation_bytes

__all__ = ["BENCHMARKS", "Benchmark", "Context", "register", "run", "main", "write_report", "PlainUNet",
           "FullResolutionStack", "EncoderDecoderStack", "saved_activation_bytes", "peak_memory_bytes", "SCALES",
           "SCHEMA_VERSION"]

SCHEMA_VERSION = 1
SCALES = ("tiny", "quick", "full")
ROOT = Path(__file__).resolve().parents[1]
BOOK_BENCH = ROOT / "book" / "_data" / "bench"


# --------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------

@dataclass
class Benchmark:
    """One benchmark: a function ``run(ctx)`` that measures and calls ``ctx.row(...)``.

    Args:
        name: the command-line name.
        title: one line for tables and the appendix.
        columns: ``[(key, header, format), ...]`` of the table printed as rows arrive.
        requires: dotted names (``"segedu.models.UNet"``) that must import; otherwise skipped.
        plot: optional ``plot(result_dict) -> matplotlib Figure``.
    """

    name: str
    title: str
    run: Callable
    columns: list
    requires: tuple = ()
    plot: Callable | None = None


BENCHMARKS: dict[str, Benchmark] = {}


def register(name: str, title: str, columns, requires=(), plot=None):
    """Decorator: add ``fn(ctx)`` to the suite under ``name``."""

    def deco(fn):
        BENCHMARKS[name] = Benchmark(name, title, fn, list(columns), tuple(requires), plot)
        return fn

    return deco


class Skip(Exception):
    """Raised by a benchmark (or one of its cases) that cannot run here; the message says why."""


def _resolve(dotted: str):
    """Import ``package.module.attr`` (or a module); raise :class:`Skip` saying what is missing."""
    module, _, attr = dotted.rpartition(".")
    try:
        mod = importlib.import_module(dotted)
        return mod
    except ImportError:
        pass
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise Skip(f"{dotted} is not available ({e.__class__.__name__}: {e})") from None


# --------------------------------------------------------------------------------------------
# measuring: time, peak memory
# --------------------------------------------------------------------------------------------

def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_bytes(fn: Callable[[], object], device="cpu") -> int:
    """Peak bytes allocated by PyTorch while ``fn()`` runs, above what was allocated before.

    CUDA: ``torch.cuda.max_memory_allocated``. CPU: PyTorch keeps no CPU peak counter, so the
    allocations and frees that ``torch.profiler`` records (``profile_memory=True``) are replayed
    in time order and their running sum's maximum is taken. What ``fn`` returns is dropped
    before the measurement ends, so the result counts the call's working memory.
    """
    device = torch.device(device)
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        out = fn()
        _sync(device)
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


class Context:
    """What a benchmark needs: the device, the scale, a timer, a memory probe and the table.

    Args:
        device: ``torch.device`` to measure on.
        scale: ``"tiny"`` (seconds; for tests), ``"quick"`` (< 3 min on 2 CPU cores) or ``"full"``.
        repeats: timed runs per measurement (the median is reported).
        warmup: untimed runs first.
        max_seconds: stop repeating a measurement once it has taken this long (>= 1 timed run).
        memory_budget: bytes; whole-image inference above it is not attempted (see ``tiling``).
        progress: show progress bars and print the table as it goes.
    """

    def __init__(self, device, scale="quick", repeats=5, warmup=1, max_seconds=20.0,
                 memory_budget=4 * 2**30, progress=True, modes=None):
        self.device = torch.device(device)
        self.scale = scale
        self.repeats, self.warmup, self.max_seconds = repeats, warmup, max_seconds
        self.memory_budget = memory_budget
        self.progress = progress
        self.modes = modes
        self.rows: list[dict] = []
        self.summary: dict = {}
        self.notes: list[str] = []
        self._columns: list = []
        self.on_row = None  # called after each row (the runner saves partial results)
        self.deadline = None  # time.perf_counter() value after which no new case starts

    # -- configuration by scale ---------------------------------------------------------------
    def pick(self, tiny, quick, full):
        """The value for the current scale."""
        return {"tiny": tiny, "quick": quick, "full": full}[self.scale]

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    # -- timing -------------------------------------------------------------------------------
    def time(self, fns: dict, repeats: int | None = None, warmup: int | None = None,
             max_seconds: float | None = None) -> dict:
        """Median seconds per call of each function in ``fns`` (``{name: fn}``), timed interleaved.

        Returns ``{name: {"median": s, "samples": [s, ...]}}``. All functions are warmed up, then
        each round calls every function once, in turn; rounds repeat until ``repeats`` rounds are
        done or ``max_seconds`` have passed (at least one round).
        """
        repeats = self.repeats if repeats is None else repeats
        warmup = self.warmup if warmup is None else warmup
        max_seconds = self.max_seconds if max_seconds is None else max_seconds
        for fn in fns.values():
            for _ in range(warmup):
                fn()
        _sync(self.device)
        samples = {k: [] for k in fns}
        start = time.perf_counter()
        for _ in range(max(1, repeats)):
            for name, fn in fns.items():
                _sync(self.device)
                t0 = time.perf_counter()
                fn()
                _sync(self.device)
                samples[name].append(time.perf_counter() - t0)
            if time.perf_counter() - start > max_seconds:
                break
        return {k: {"median": statistics.median(v), "samples": [round(s, 6) for s in v]} for k, v in samples.items()}

    def peak_memory(self, fn) -> int:
        return peak_memory_bytes(fn, self.device)

    # -- the table ----------------------------------------------------------------------------
    def track(self, items, desc: str):
        """Iterate with a progress bar (when ``progress``); stop, with a note, past the deadline."""
        items = list(items)
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(items), desc=desc, leave=False, file=sys.stderr)
        try:
            for i, item in enumerate(items):
                if self.deadline is not None and time.perf_counter() > self.deadline:
                    self.note(f"time limit reached: {len(items) - i} of {len(items)} cases not measured")
                    break
                yield item
                if bar is not None:
                    bar.update()
        finally:
            if bar is not None:
                bar.close()

    def row(self, **fields) -> dict:
        """Record one result row and print it as a table line."""
        fields = {k: _plain(v) for k, v in fields.items()}
        self.rows.append(fields)
        if self.progress and self._columns:
            _print(_format_row(self._columns, fields))
        if self.on_row is not None:
            self.on_row()
        return fields

    def note(self, text: str) -> None:
        """A remark that belongs with the results (printed, and stored in ``notes``)."""
        self.notes.append(text)
        if self.progress:
            _print(f"  note: {text}")


def _print(line: str) -> None:
    try:
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stdout)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(line)
    sys.stdout.flush()


def _plain(v):
    """JSON-friendly value: floats rounded to 6 significant digits, tensors to Python numbers."""
    if torch.is_tensor(v):
        v = v.item()
    if isinstance(v, float):
        return float(f"{v:.6g}") if math.isfinite(v) else None
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _fmt(value, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if spec == "bytes":
        return _human_bytes(value)
    if spec == "ms":
        return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"
    if spec == "x":
        return f"{value:.3g}x"
    if spec == "count":
        return f"{value:,}"
    if spec == "e":
        return f"{value:.1e}"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def _human_bytes(n) -> str:
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)  # pragma: no cover


def _widths(columns) -> list[int]:
    # text columns (model names, configurations) are wide and left-aligned; numbers right-aligned
    return [40 if spec == "s" else max(12, len(h)) for _, h, spec in columns]


def _format_row(columns, row) -> str:
    cells = [_fmt(row.get(key), spec) for key, _, spec in columns]
    return "  ".join(c.ljust(w) if spec == "s" else c.rjust(w)
                     for c, w, (_, _, spec) in zip(cells, _widths(columns), columns))


def _format_header(columns) -> str:
    return "  ".join(h.ljust(w) if spec == "s" else h.rjust(w)
                     for (_, h, spec), w in zip(columns, _widths(columns)))


# --------------------------------------------------------------------------------------------
# helpers shared by benchmarks
# --------------------------------------------------------------------------------------------

def _count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _last(out):
    return out[-1] if isinstance(out, (list, tuple)) else out


def _max_abs_diff(a, b) -> float:
    # compared on the CPU: some outputs come back there (e.g. the sliding window's scores)
    return float((a.detach().float().cpu() - b.detach().float().cpu()).abs().max())


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


# --------------------------------------------------------------------------------------------
# 1. sliding window vs its convolutionalised network
# --------------------------------------------------------------------------------------------

def _plot_sliding_window(result):
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r.get("sliding_s")]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sizes = [r["size"] for r in rows]
    ax.loglog(sizes, [r["sliding_s"] for r in rows], "o-", label="sliding window (one patch per pixel)")
    ax.loglog(sizes, [r["dense_s"] for r in rows], "s-", label="convolutionalised (one pass)")
    for r in rows:
        ax.annotate(f"{r['speedup']:.0f}x", (r["size"], math.sqrt(r["sliding_s"] * r["dense_s"])), ha="center",
                    fontsize=8)
    ax.set_xticks(sizes, [f"{s}²" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("image size (pixels)")
    ax.set_ylabel("seconds per image")
    ax.set_title("Sliding window vs dense network", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@register("sliding_window", "Sliding window vs its convolutionalised network: time per image, equality",
          columns=[("size", "size", "d"), ("patches", "patches", "count"), ("sliding_s", "sliding", "ms"),
                   ("dense_s", "dense", "ms"), ("speedup", "speed-up", "x"), ("max_abs_diff", "max |diff|", "e")],
          requires=("segedu.models.SlidingWindowClassifier",), plot=_plot_sliding_window)
def bench_sliding_window(ctx: Context):
    from .models import SlidingWindowClassifier

    torch.manual_seed(0)
    clf = SlidingWindowClassifier().eval().to(ctx.device)  # chapter 1's default classifier
    dense = clf.to_fcn().eval()
    ctx.summary["model"] = dict(clf.config)
    sizes = ctx.pick([16], [32, 64, 128], [32, 64, 128, 256])
    speedups = {}
    for s in ctx.track(sizes, "sliding window"):
        x = torch.rand(1, clf.in_channels, s, s, generator=torch.Generator().manual_seed(s)).to(ctx.device)
        with torch.inference_mode():
            a, b = clf.segment(x, progress=False), dense(x)
            # The brute force takes seconds per image: few repeats, no separate warm-up (the
            # equality run above already warmed both up).
            t = ctx.time({"sliding": lambda: clf.segment(x, progress=False), "dense": lambda: dense(x)},
                         repeats=ctx.pick(1, 2, 3), warmup=0)
        speedup = t["sliding"]["median"] / t["dense"]["median"]
        speedups[s] = speedup
        ctx.row(size=s, patches=s * s, sliding_s=t["sliding"]["median"], dense_s=t["dense"]["median"],
                speedup=speedup, max_abs_diff=_max_abs_diff(a, b),
                equal=bool(torch.allclose(a.cpu(), b.cpu(), atol=1e-4)),
                samples=t)
    ctx.summary["speedup_at"] = speedups
    ctx.summary["all_equal"] = all(r["equal"] for r in ctx.rows)


# --------------------------------------------------------------------------------------------
# 2. activation memory: a full-resolution stack vs an encoder-decoder
# --------------------------------------------------------------------------------------------

class FullResolutionStack(nn.Sequential):
    """``layers`` 3x3 convolutions of ``width`` channels, all at the input's resolution, then a
    1x1 classifier: the "just keep the resolution" design chapter 2 argues against."""

    def __init__(self, in_channels=3, num_classes=4, width=64, layers=7):
        mods, c = [], in_channels
        for _ in range(layers):
            mods += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(inplace=True)]
            c = width
        super().__init__(*mods, nn.Conv2d(width, num_classes, 1))


class EncoderDecoderStack(nn.Module):
    """The same number of layers, but the middle ones work at 1/2, 1/4, 1/8 resolution: one 3x3
    convolution at full resolution, ``levels`` stride-2 convolutions that halve the size and
    double the channels, ``levels`` transposed convolutions back up, then a 1x1 classifier."""

    def __init__(self, in_channels=3, num_classes=4, width=64, levels=3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(inplace=True))
        self.down = nn.Sequential(*[m for i in range(levels) for m in (
            nn.Conv2d(width * 2**i, width * 2 ** (i + 1), 3, stride=2, padding=1), nn.ReLU(inplace=True))])
        self.up = nn.Sequential(*[m for i in reversed(range(levels)) for m in (
            nn.ConvTranspose2d(width * 2 ** (i + 1), width * 2**i, 2, stride=2), nn.ReLU(inplace=True))])
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x):
        return self.head(self.up(self.down(self.stem(x))))


# The bytes autograd keeps for backward: the same measurement chapter 2 makes (segedu.memory).
saved_activation_bytes = activation_bytes


def _plot_activation_memory(result):
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sizes = [r["size"] for r in rows]
    ax.loglog(sizes, [r["full_res_bytes"] / 2**20 for r in rows], "o-", label="full-resolution stack")
    ax.loglog(sizes, [r["enc_dec_bytes"] / 2**20 for r in rows], "s-", label="encoder-decoder")
    ax.set_xticks(sizes, [f"{s}²" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("input size (pixels)")
    ax.set_ylabel("activations saved for backward (MiB)")
    ax.set_title("Activation memory of one image", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@register("activation_memory", "Activation memory of a full-resolution stack vs an encoder-decoder, vs input size",
          columns=[("size", "size", "d"), ("full_res_bytes", "full-res saved", "bytes"),
                   ("enc_dec_bytes", "enc-dec saved", "bytes"), ("ratio", "full/enc-dec", "x"),
                   ("full_res_peak", "full-res peak", "bytes"), ("enc_dec_peak", "enc-dec peak", "bytes")],
          plot=_plot_activation_memory)
def bench_activation_memory(ctx: Context):
    width = ctx.pick(8, 64, 64)
    full = FullResolutionStack(width=width).to(ctx.device)
    encdec = EncoderDecoderStack(width=width).to(ctx.device)
    ctx.summary.update(width=width, full_res_parameters=_count_parameters(full),
                       enc_dec_parameters=_count_parameters(encdec))
    ctx.note(f"both networks have 7 convolutions of width {width} and a 1x1 classifier; the encoder-decoder "
             "runs 3 of them at 1/2, 1/4, 1/8 resolution with 2x, 4x, 8x the channels; one image per batch")
    sizes = ctx.pick([32, 64], [64, 128, 256, 512], [64, 128, 256, 512, 1024])
    for s in ctx.track(sizes, "activation memory"):
        x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(s)).to(ctx.device)
        a, b = saved_activation_bytes(full, x), saved_activation_bytes(encdec, x)

        def step(model):
            out = model(x)
            out.float().square().mean().backward()
            model.zero_grad(set_to_none=True)

        # peak of a forward + backward pass (activations, gradients of activations, workspaces)
        pa, pb = ctx.peak_memory(lambda: step(full)), ctx.peak_memory(lambda: step(encdec))
        ctx.row(size=s, full_res_bytes=a, enc_dec_bytes=b, ratio=a / b, full_res_peak=pa, enc_dec_peak=pb,
                full_res_bytes_per_pixel=a / (s * s), enc_dec_bytes_per_pixel=b / (s * s))


# --------------------------------------------------------------------------------------------
# 3. overlap-tile vs whole-image inference of the valid U-Net
# --------------------------------------------------------------------------------------------

def _whole_image(model, x):
    """Whole-image inference of a valid-padding U-Net: mirror-pad the image to the smallest valid
    input whose output covers it, run the network once, crop to the image."""
    from .sizes import unet_output_size, valid_input_sizes
    from .tiling import mirror_pad

    H, W = x.shape[-2:]
    size = next(s for s in valid_input_sizes(model.depth, max_size=max(H, W) + 1024)
                if unet_output_size(s, model.depth) >= max(H, W))
    margin = (size - unet_output_size(size, model.depth)) // 2
    padded = mirror_pad(x, margin, size - H - margin, margin, size - W - margin)
    return model(padded)[..., :H, :W]


def _plot_tiling(result):
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(7.5, 3))
    sizes = [r["size"] for r in rows]
    whole = [(r["size"], r) for r in rows if r.get("whole_s")]
    a1.loglog(sizes, [r["tiled_s"] for r in rows], "o-", label=f"overlap-tile")
    a1.loglog([s for s, _ in whole], [r["whole_s"] for _, r in whole], "s-", label="whole image")
    a1.set_ylabel("seconds per image")
    a2.loglog(sizes, [r["tiled_peak"] / 2**20 for r in rows], "o-", label="overlap-tile")
    a2.loglog([s for s, _ in whole], [r["whole_peak"] / 2**20 for _, r in whole], "s-", label="whole image")
    a2.set_ylabel("peak memory (MiB)")
    for ax in (a1, a2):
        ax.set_xticks(sizes, [f"{s}²" for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("image size (pixels)")
        ax.legend(fontsize=7)
    fig.suptitle("Valid U-Net: overlap-tile vs whole-image inference", fontsize=10)
    fig.tight_layout()
    return fig


@register("tiling", "Overlap-tile vs whole-image inference of the valid U-Net: time, peak memory, equality",
          columns=[("size", "size", "d"), ("tiles", "tiles", "d"), ("tiled_s", "tiled", "ms"),
                   ("whole_s", "whole", "ms"), ("tiled_peak", "tiled peak", "bytes"),
                   ("whole_peak", "whole peak", "bytes"), ("memory_ratio", "whole/tiled mem", "x"),
                   ("max_abs_diff", "max |diff|", "e")],
          requires=("segedu.models.UNet", "segedu.tiling.predict_tiled"), plot=_plot_tiling)
def bench_tiling(ctx: Context):
    from .models import UNet
    from .tiling import predict_tiled, tile_layout

    # The chapter's U-Net on the CPU (the paper's 64 base channels on a GPU at full scale): valid
    # padding, depth 4, the paper's 572x572 tile (smaller at the tiny scale).
    base = 64 if (ctx.cuda and ctx.scale == "full") else ctx.pick(4, 16, 16)
    tile = ctx.pick(252, 572, 572)
    torch.manual_seed(0)
    model = UNet(in_channels=1, num_classes=2, depth=4, base_channels=base, padding="valid").to(ctx.device).eval()
    ctx.summary.update(base_channels=base, tile_size=tile, tile_batch_size=4,
                       memory_budget_bytes=ctx.memory_budget)
    sizes = ctx.pick([100, 200], [256, 512, 1024], [256, 512, 1024, 2048, 4096])
    estimate = None  # whole-image peak bytes per pixel, from the last size measured
    for s in ctx.track(sizes, "tiling"):
        x = torch.rand(1, 1, s, s, generator=torch.Generator().manual_seed(s)).to(ctx.device)
        tiles = tile_layout((s, s), tile, model.depth).num_tiles
        fns = {"tiled": lambda: predict_tiled(model, x, tile_size=tile)}
        run_whole = estimate is None or estimate * s * s <= ctx.memory_budget
        if run_whole:
            fns["whole"] = lambda: _whole_image(model, x)
        else:
            ctx.note(f"{s}²: whole-image inference skipped: about {_human_bytes(estimate * s * s)} estimated "
                     f"(peak per pixel at the previous size), over the {_human_bytes(ctx.memory_budget)} budget")
        outs = {}

        def keep(name):  # run once under the memory probe, keeping the output for the equality check
            return lambda: outs.__setitem__(name, fns[name]())

        with torch.inference_mode():
            peaks = {k: ctx.peak_memory(keep(k)) for k in fns}
            t = ctx.time(fns, warmup=0, repeats=ctx.pick(1, 2, 3))
        diff = _max_abs_diff(outs["tiled"].to(ctx.device), outs["whole"]) if run_whole else None
        if run_whole:
            estimate = peaks["whole"] / (s * s)
        ctx.row(size=s, tiles=tiles, tiled_s=t["tiled"]["median"], whole_s=t["whole"]["median"] if run_whole else None,
                tiled_peak=peaks["tiled"], whole_peak=peaks.get("whole"),
                memory_ratio=peaks["whole"] / peaks["tiled"] if run_whole else None, max_abs_diff=diff,
                equal=bool(diff is not None and diff < 1e-4) if run_whole else None, samples=t)

# --------------------------------------------------------------------------------------------
# 4. training step and inference under fp32 / channels_last / autocast / torch.compile
# --------------------------------------------------------------------------------------------

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


@dataclass
class ModelCase:
    """A model at one configuration: ``build()`` -> module, input ``[N, C, H, W]``, classes."""

    name: str
    build: Callable[[], nn.Module]
    shape: tuple
    num_classes: int
    requires: str
    patches: bool = False  # a patch classifier: targets are one class per sample
    paper: bool = False  # a paper's configuration (large on a CPU)


def _model_cases(ctx) -> list[ModelCase]:
    """The chapters' default configurations, then (``full`` scale) the papers' configurations."""
    from . import models as M

    def get(name):
        return lambda *a, **k: getattr(M, name)(*a, **k)

    tiny = ctx.scale == "tiny"
    s = 32 if tiny else 64
    cases = [
        ModelCase("sliding-window classifier (ch. 1)", lambda: get("SlidingWindowClassifier")(),
                  (8 if tiny else 64, 3, 25, 25), 4, "segedu.models.SlidingWindowClassifier", patches=True),
        ModelCase("FCN-8s (ch. 2)", lambda: get("FCN")(num_classes=4, variant="8s", in_channels=3),
                  (2 if tiny else 8, 3, s, s), 4, "segedu.models.FCN"),
        ModelCase("U-Net, same padding, base 16 (ch. 5)",
                  lambda: get("UNet")(in_channels=3, num_classes=4, base_channels=16, padding="same"),
                  (2 if tiny else 8, 3, s, s), 4, "segedu.models.UNet"),
        ModelCase("UNet++ deep supervision, base 16 (ch. 6)",
                  lambda: get("UNetPlusPlus")(in_channels=3, num_classes=4, base_channels=16, deep_supervision=True),
                  (2 if tiny else 8, 3, s, s), 4, "segedu.models.UNetPlusPlus"),
    ]
    if ctx.scale == "full":
        cases += [
            ModelCase("U-Net paper (valid, base 64, 572²)",
                      lambda: get("UNet")(in_channels=1, num_classes=2, depth=4, base_channels=64, padding="valid"),
                      (1, 1, 572, 572), 2, "segedu.models.UNet", paper=True),
            ModelCase("UNet++ paper widths (base 32, 96²)",
                      lambda: get("UNetPlusPlus")(in_channels=1, num_classes=1, depth=4, base_channels=32,
                                                  deep_supervision=True),
                      (8, 1, 96, 96), 1, "segedu.models.UNetPlusPlus", paper=True),
            ModelCase("FCN-8s paper input (500²)", lambda: get("FCN")(num_classes=21, variant="8s", in_channels=3),
                      (1, 3, 500, 500), 21, "segedu.models.FCN", paper=True),
        ]
    return cases


def _loss(out, y):
    """Pixel-wise cross entropy (binary for one channel), averaged over deep-supervision heads;
    targets are centre-cropped to valid-padding outputs, as ``train.fit`` does."""
    from .sizes import center_crop

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


class _Runner:
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
        """forward + loss + backward + optimizer step, the body of ``train.fit``'s loop."""
        out = self.forward()
        loss = _loss(out, self.y)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
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


def _rel_diff(out, ref) -> float:
    out, ref = _last(out).float(), _last(ref).float()
    return float((out - ref).abs().max() / ref.abs().max().clamp(min=1e-12))


def _plot_train_step(result):
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [r for r in result["rows"] if r.get("step_s")]
    models = list(dict.fromkeys(r["model"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(models) * max(1, len(modes)) / 2.2))
    h = 0.8 / max(1, len(modes))
    for j, mode in enumerate(modes):
        speed = []
        for m in models:
            ref = next((r for r in rows if r["model"] == m and r["mode"] == "fp32"), None)
            r = next((r for r in rows if r["model"] == m and r["mode"] == mode), None)
            speed.append(ref["step_s"] / r["step_s"] if (r and ref) else np.nan)
        ax.barh(np.arange(len(models)) + j * h, speed, height=h, label=mode)
    ax.axvline(1, color="k", lw=0.8)
    ax.set_yticks(np.arange(len(models)) + h * (len(modes) - 1) / 2, [m.split(" (")[0] + "\n(" + m.split(" (", 1)[1]
                                                                     if " (" in m else m for m in models],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("training-step speed relative to fp32 (higher is faster)")
    ax.set_title("Training step: precision, memory format, compilation", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


@register("train_step", "Training step (forward + loss + backward + Adam) and inference, per model and mode",
          columns=[("model", "model", "s"), ("mode", "mode", "s"), ("step_s", "train step", "ms"),
                   ("vs_fp32", "speed vs fp32", "x"), ("images_per_s", "inference img/s", ".4g"),
                   ("rel_diff", "rel. diff", "e"), ("correct", "correct", "")],
          requires=("segedu.models",), plot=_plot_train_step)
def bench_train_step(ctx: Context):
    modes = ctx.modes or (CUDA_MODES if ctx.cuda else CPU_MODES)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown train_step mode(s) {unknown}; choose from {list(MODES)}")
    if not ctx.cuda and "fp16" in modes:
        ctx.note("fp16 autocast is a GPU mode; skipped on the CPU")
        modes = [m for m in modes if "fp16" not in m]
    compile_ok, why = compile_available(ctx.device)
    if any("compile" in m for m in modes):
        if not compile_ok:
            ctx.note(f"compile modes skipped: {why}")
            modes = [m for m in modes if "compile" not in m]
        elif ctx.scale != "full" and ctx.modes is None:
            ctx.note("compile modes are measured only at --full scale (compiling takes about a minute per model)")
            modes = [m for m in modes if "compile" not in m]
    best = {}
    for case in ctx.track(_model_cases(ctx), "train step"):
        try:
            _resolve(case.requires)
        except Skip as e:
            ctx.note(f"{case.name}: skipped, {e}")
            continue
        case_modes = modes
        if case.paper and not ctx.cuda and ctx.modes is None:
            # On 2 CPU cores one compilation of a paper-sized network takes minutes; the
            # chapter-sized models above already show what compilation gains on the CPU.
            case_modes = [m for m in modes if "compile" not in m]
        torch.manual_seed(0)
        base = case.build()
        g = torch.Generator().manual_seed(0)
        x = torch.rand(case.shape, generator=g).to(ctx.device)
        y_shape = case.shape[:1] if case.patches else (case.shape[0], *case.shape[2:])
        y = torch.randint(0, max(2, case.num_classes), y_shape, generator=g).to(ctx.device)
        if case.num_classes == 1:
            y = y.clamp(max=1)
        runners, refs, first_s = {}, {}, {}
        for mode in case_modes:
            t0 = time.perf_counter()
            try:
                r = _Runner(base, x, y, mode, ctx.device)
                # The first forward: same weights, same batch in every mode (with autograd on, as
                # in training, so that a compiled model is compiled once for training).
                refs[mode] = _last(r.forward()).detach()
            except Exception as e:  # noqa: BLE001 - a mode that fails here is reported, not fatal
                if "compile" not in mode or mode == "fp32":
                    raise
                ctx.note(f"{case.name}, {mode}: failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
                continue
            _sync(ctx.device)
            first_s[mode] = time.perf_counter() - t0
            runners[mode] = r
        t_step = ctx.time({m: r.step for m, r in runners.items()})
        t_inf = ctx.time({m: r.infer for m, r in runners.items()})
        params = _count_parameters(base)
        ok = []
        for mode in runners:
            reduced = MODES[mode].get("amp") is not None
            rel = _rel_diff(refs[mode], refs["fp32"]) if "fp32" in refs else None
            correct = rel is not None and rel <= TOLERANCE["reduced" if reduced else "fp32"]
            if correct:
                ok.append(mode)
            ctx.row(model=case.name, mode=mode, input=list(case.shape), parameters=params,
                    step_s=t_step[mode]["median"],
                    vs_fp32=t_step["fp32"]["median"] / t_step[mode]["median"] if "fp32" in t_step else None,
                    images_per_s=case.shape[0] / t_inf[mode]["median"], infer_s=t_inf[mode]["median"],
                    rel_diff=rel, correct=correct, first_call_s=first_s[mode],
                    step_samples=t_step[mode]["samples"], infer_samples=t_inf[mode]["samples"])
        best[case.name] = min(ok, key=lambda m: t_step[m]["median"]) if ok else None
        del runners, refs
    if not ctx.cuda and ctx.modes is None and any(c.paper for c in _model_cases(ctx)):
        ctx.note("on the CPU the papers' configurations are not compiled (minutes per compilation on 2 cores); "
                 "the chapter-sized models show what compilation gains")
    ctx.summary["modes"] = modes
    ctx.summary["fastest_correct"] = best


# --------------------------------------------------------------------------------------------
# 5. UNet++ pruning: inference time and parameters of UNet++ L1..L4
# --------------------------------------------------------------------------------------------

def _plot_pruning(result):
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(5, 3))
    levels = [f"L{r['level']}" for r in rows]
    ax.bar(levels, [r["infer_s"] * 1e3 for r in rows], color="tab:blue")
    ax.set_ylabel("inference (ms per batch)")
    ax2 = ax.twinx()
    ax2.plot(levels, [r["parameters"] / 1e6 for r in rows], "o-", color="tab:orange")
    ax2.set_ylabel("parameters (millions)", color="tab:orange")
    ax.set_title("Pruned UNet++: time and size", fontsize=10)
    fig.tight_layout()
    return fig


@register("unetpp_pruning", "UNet++ pruned to L1..L4: inference time and parameter count",
          columns=[("level", "level", "d"), ("parameters", "parameters", "count"), ("infer_s", "inference", "ms"),
                   ("speedup_vs_L4", "speed-up vs L4", "x"), ("max_abs_diff", "max |diff| vs head", "e")],
          requires=("segedu.models.UNetPlusPlus",), plot=_plot_pruning)
def bench_unetpp_pruning(ctx: Context):
    from .models import UNetPlusPlus

    base, shape = ctx.pick((8, (2, 1, 32, 32)), (16, (4, 1, 96, 96)), (32, (4, 1, 96, 96)))
    torch.manual_seed(0)
    full = UNetPlusPlus(in_channels=1, num_classes=1, depth=4, base_channels=base, deep_supervision=True)
    full = full.to(ctx.device).eval()
    ctx.summary.update(base_channels=base, input=list(shape))
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(ctx.device)
    with torch.inference_mode():
        heads = full(x)
    pruned = {level: full.pruned(level).to(ctx.device).eval() for level in range(1, 5)}
    with torch.inference_mode():
        outs = {level: _last(m(x)) for level, m in pruned.items()}
        t = ctx.time({level: (lambda m=m: m(x)) for level, m in pruned.items()})
    for level, m in pruned.items():
        ctx.row(level=level, parameters=_count_parameters(m), infer_s=t[level]["median"],
                speedup_vs_L4=t[4]["median"] / t[level]["median"],
                # the pruned network must compute exactly the full network's head X^{0,level}
                max_abs_diff=_max_abs_diff(outs[level], heads[level - 1]), samples=t[level]["samples"])

# --------------------------------------------------------------------------------------------
# 6. segedu's U-Net vs a plain, straightforward implementation of the same network
# --------------------------------------------------------------------------------------------
# This is the U-Net as it is usually written in tutorials and public repositories: a DoubleConv
# module, Down = max-pool + DoubleConv, Up = transposed convolution + pad-to-match + concatenate
# + DoubleConv, four levels written out by hand. It is here only to be measured against; the
# course's U-Net is segedu.models.UNet.

class _PlainDoubleConv(nn.Module):
    """(convolution => BN => ReLU) * 2"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class _PlainDown(nn.Module):
    """Downscaling with maxpool then double conv"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), _PlainDoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class _PlainUp(nn.Module):
    """Upscaling then double conv"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = _PlainDoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diff_y = x2.size()[2] - x1.size()[2]
        diff_x = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class PlainUNet(nn.Module):
    """A U-Net written the usual straightforward way (same padding, batch norm, transposed
    convolutions, four levels) — the baseline of the ``plain_unet`` benchmark.

    Same architecture as ``segedu.models.UNet(in_channels, num_classes, depth=4,
    base_channels=base, padding="same", norm="batch", up="transpose")``; the benchmark checks that
    the parameter counts are equal and that, with the weights copied over, the outputs agree.
    """

    def __init__(self, n_channels=1, n_classes=2, base=64):
        super().__init__()
        self.inc = _PlainDoubleConv(n_channels, base)
        self.down1 = _PlainDown(base, base * 2)
        self.down2 = _PlainDown(base * 2, base * 4)
        self.down3 = _PlainDown(base * 4, base * 8)
        self.down4 = _PlainDown(base * 8, base * 16)
        self.up1 = _PlainUp(base * 16, base * 8)
        self.up2 = _PlainUp(base * 8, base * 4)
        self.up3 = _PlainUp(base * 4, base * 2)
        self.up4 = _PlainUp(base * 2, base)
        self.outc = nn.Conv2d(base, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)


def _copy_weights_by_shape(src: nn.Module, dst: nn.Module) -> bool:
    """Copy a ``segedu.models.UNet``'s parameters and buffers into a :class:`PlainUNet`.

    Both register the same tensors, in a different order: segedu keeps the encoder blocks, the
    up-convolutions and the decoder blocks in three lists, the plain network interleaves each
    up-convolution with its decoder block. The segedu tensors are put in the plain order and
    copied one by one; returns ``False`` if the shapes do not line up (different architectures).
    """
    state = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    depth = len(getattr(src, "up", []))
    groups = [f"down.{i}." for i in range(depth + 1)]
    groups += [g for k in range(depth) for g in (f"up.{k}.", f"decode.{k}.")] + ["head."]
    a = [v for g in groups for k, v in state.items() if k.startswith(g)]
    b = [v for k, v in dst.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(a) != len(state) or len(a) != len(b) or any(va.shape != vb.shape for va, vb in zip(a, b)):
        return False
    with torch.no_grad():
        for va, vb in zip(a, b):
            vb.copy_(va)
    return True


def _plot_plain(result):
    import matplotlib.pyplot as plt
    import numpy as np

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(5.6, 0.9 + 0.5 * len(rows)))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["plain_step_s"] * 1e3 for r in rows], 0.4, label="plain implementation")
    ax.barh(y + 0.2, [r["segedu_step_s"] * 1e3 for r in rows], 0.4, label="segedu.models.UNet")
    ax.set_yticks(y, [r["config"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("training step (ms, median)")
    ax.set_title("Same U-Net, two implementations", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


@register("plain_unet", "segedu's U-Net vs a plain implementation of the same architecture",
          columns=[("config", "config", "s"), ("parameters", "parameters", "count"),
                   ("same_parameters", "equal params", ""), ("max_abs_diff", "max |diff|", "e"),
                   ("plain_step_s", "plain step", "ms"), ("segedu_step_s", "segedu step", "ms"),
                   ("step_ratio", "plain/segedu", "x"), ("infer_ratio", "infer plain/segedu", "x")],
          requires=("segedu.models.UNet",), plot=_plot_plain)
def bench_plain_unet(ctx: Context):
    from .models import UNet

    configs = ctx.pick(
        [("base 8, 32², batch 2", 3, 4, 8, (2, 3, 32, 32))],
        [("chapter size: base 16, 64², batch 8", 3, 4, 16, (8, 3, 64, 64))],
        [("chapter size: base 16, 64², batch 8", 3, 4, 16, (8, 3, 64, 64)),
         ("paper widths: base 64, 256², batch 2", 1, 2, 64, (2, 1, 256, 256))],
    )
    ratios = []
    for config, c_in, k, base, shape in ctx.track(configs, "plain vs segedu"):
        torch.manual_seed(0)
        ours = UNet(in_channels=c_in, num_classes=k, depth=4, base_channels=base, padding="same", norm="batch",
                    up="transpose").to(ctx.device)
        plain = PlainUNet(c_in, k, base).to(ctx.device)
        n_ours, n_plain = _count_parameters(ours), _count_parameters(plain)
        copied = _copy_weights_by_shape(ours, plain)
        g = torch.Generator().manual_seed(0)
        x = torch.rand(shape, generator=g).to(ctx.device)
        y = torch.randint(0, k, (shape[0], *shape[2:]), generator=g).to(ctx.device)
        diff = None
        if copied:
            with torch.no_grad():
                diff = _max_abs_diff(ours.eval()(x), plain.eval()(x))
            ours.train(), plain.train()
        r_ours = _Runner(ours, x, y, "fp32", ctx.device)
        r_plain = _Runner(plain, x, y, "fp32", ctx.device)
        # The claim checked here is a ratio close to 1, so it gets more repeats than the rest.
        budget = ctx.pick(2, 20, 150)
        t = ctx.time({"plain": r_plain.step, "segedu": r_ours.step}, repeats=max(ctx.repeats, 7), max_seconds=budget)
        ti = ctx.time({"plain": r_plain.infer, "segedu": r_ours.infer}, repeats=max(ctx.repeats, 7),
                      max_seconds=budget)
        ratio = t["plain"]["median"] / t["segedu"]["median"]
        ratios.append(ratio)
        ctx.row(config=config, parameters=n_ours, plain_parameters=n_plain, same_parameters=n_ours == n_plain,
                weights_copied=copied, max_abs_diff=diff, plain_step_s=t["plain"]["median"],
                segedu_step_s=t["segedu"]["median"], step_ratio=ratio,
                plain_infer_s=ti["plain"]["median"], segedu_infer_s=ti["segedu"]["median"],
                infer_ratio=ti["plain"]["median"] / ti["segedu"]["median"], samples={"step": t, "infer": ti})
    ctx.summary["step_ratio_min"] = min(ratios) if ratios else None


# ============================================================================================
# running the suite
# ============================================================================================

def _hardware(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": _cpu_name(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=props.name, cuda=torch.version.cuda, gpu_memory_bytes=props.total_memory,
                    cudnn=torch.backends.cudnn.version())
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):  # pragma: no cover - Windows
        return None


def _resolve_bench_device(device) -> torch.device:
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be 'auto', 'cpu' or 'cuda', got {type(device).__name__}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.split(":")[0] not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: the benchmark runs on 'auto', 'cpu' or 'cuda'")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available here; "
                         "use --device auto (falls back to the CPU) or --device cpu")
    return torch.device(device)


def _check_out_dir(out) -> Path:
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ValueError(f"cannot write to the output folder {str(out)!r} ({e.strerror or e}); "
                         "choose a writable folder with --out DIR") from None
    return out


def _check_names(names) -> list[str]:
    names = list(names or BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark name(s) {', '.join(map(repr, unknown))}; "
                         f"choose from: {', '.join(BENCHMARKS)}")
    return names


def run(names=None, *, device="auto", scale="quick", out="bench-results", repeats=None, warmup=1,
        max_seconds=None, threads=None, memory_budget=None, progress=True, plots=True, modes=None,
        update=False, time_limit=None) -> dict:
    """Run the named benchmarks (default: all) and write ``results.json`` (and plots) into ``out``.

    Args:
        names: benchmark names (see ``BENCHMARKS``); ``None`` runs the whole suite.
        device: ``"auto"`` (CUDA if available, else CPU), ``"cpu"`` or ``"cuda"``.
        scale: ``"tiny"``, ``"quick"`` or ``"full"`` (sizes and models measured).
        out: output folder (created).
        repeats, warmup, max_seconds: see :class:`Context` (defaults depend on the scale).
        threads: ``torch.set_num_threads`` for the run (default: PyTorch's default).
        memory_budget: bytes; whole-image inference that would need more is skipped (default:
            4 GiB on the CPU, a laptop's spare memory; 15 GiB on CUDA, a free Colab T4's memory).
        progress: progress bars and the table on the terminal.
        plots: write one PNG per benchmark next to ``results.json``.
        modes: restrict ``train_step`` to these precision/compile modes.
        update: keep the other benchmarks' entries of an existing ``out/results.json`` (same
            device type) and replace only those run now.
        time_limit: seconds; past it no new case starts (what was measured is kept, with a note).

    Returns the results dictionary that was written.
    """
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}, got {scale!r}")
    names = _check_names(names)
    dev = _resolve_bench_device(device)
    out = _check_out_dir(out)
    if threads is not None:
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        torch.set_num_threads(threads)
    repeats = repeats if repeats is not None else {"tiny": 2, "quick": 3, "full": 7}[scale]
    max_seconds = max_seconds if max_seconds is not None else {"tiny": 2.0, "quick": 6.0, "full": 30.0}[scale]
    results = {
        "schema": SCHEMA_VERSION,
        "meta": {
            **_hardware(dev),
            "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
            "scale": scale, "repeats": repeats, "warmup": warmup, "max_seconds": max_seconds,
            # under ``python -m segedu bench`` sys.argv is [".../segedu/__main__.py", "bench", ...]
            "loadavg_start": _loadavg(),
            "command": "python -m segedu bench " + " ".join(sys.argv[2 if sys.argv[1:2] == ["bench"] else 1:])
            if sys.argv and sys.argv[0].endswith("__main__.py") else None,
        },
        "benchmarks": {},
    }
    if update and (out / "results.json").exists():
        # Keep the other benchmarks of an earlier run on the same kind of device; each entry
        # records when, and under what load, it was measured.
        old = json.loads((out / "results.json").read_text())
        if old.get("schema") == SCHEMA_VERSION and old["meta"].get("device", "").split(":")[0] == dev.type:
            kept = {k: v for k, v in old["benchmarks"].items() if k not in names and k in BENCHMARKS}
            results["benchmarks"] = {k: kept.get(k) for k in BENCHMARKS if k in kept or k in names}
            results["benchmarks"] = {k: v for k, v in results["benchmarks"].items() if v is not None}
    t_start = time.perf_counter()
    for name in names:
        b = BENCHMARKS[name]
        budget = memory_budget if memory_budget is not None else (15 if dev.type == "cuda" else 4) * 2**30
        ctx = Context(dev, scale, repeats, warmup, max_seconds, budget, progress, modes)
        ctx.deadline = t_start + time_limit if time_limit else None
        ctx._columns = b.columns
        if progress:
            _print(f"\n== {name}: {b.title}")
            _print(_format_header(b.columns))
        t0 = time.perf_counter()
        # While it runs, the entry is saved after every row with status "incomplete", so a run
        # stopped half-way (a time limit) still leaves what it measured.
        entry = {"title": b.title, "status": "incomplete", "reason": "the run stopped before this benchmark ended",
                 "seconds": None, "columns": [list(c) for c in b.columns], "rows": ctx.rows, "summary": ctx.summary,
                 "notes": ctx.notes, "plot": None,
                 "measured": {"date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                              "scale": scale, "threads": torch.get_num_threads(), "repeats": repeats,
                              "warmup": warmup, "loadavg_start": _loadavg(),
                              "loadavg_end": None}}
        results["benchmarks"][name] = entry

        def save_partial():
            entry["seconds"] = round(time.perf_counter() - t0, 2)
            entry["measured"]["loadavg_end"] = _loadavg()
            entry["summary"] = _plain(ctx.summary)
            _write_json(out / "results.json", results)

        ctx.on_row = save_partial
        try:
            for dotted in b.requires:
                _resolve(dotted)
            torch.manual_seed(0)
            b.run(ctx)
            entry.update(status="ok", reason=None)
        except Skip as e:
            entry.update(status="skipped", reason=str(e))
            if progress:
                _print(f"  skipped: {e}")
        entry.update(seconds=round(time.perf_counter() - t0, 2), summary=_plain(ctx.summary))
        entry["measured"]["loadavg_end"] = _loadavg()
        if plots and b.plot is not None and entry["status"] == "ok" and ctx.rows:
            entry["plot"] = _save_plot(b, entry, out)
        results["benchmarks"][name] = entry
        results["meta"]["seconds"] = round(time.perf_counter() - t_start, 2)
        results["meta"]["loadavg_end"] = _loadavg()
        _write_json(out / "results.json", results)  # after every benchmark: a killed run keeps its results
    if progress:
        _print(f"\nwrote {out / 'results.json'} ({results['meta']['seconds']:.0f} s)")
    return results


def _save_plot(b: Benchmark, entry: dict, out: Path) -> str | None:
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = b.plot(entry)
    if fig is None:
        return None
    name = f"{b.name}.png"
    fig.savefig(out / name, dpi=80)
    plt.close(fig)
    return name


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    os.replace(tmp, path)


# ============================================================================================
# the report: markdown tables for the Performance appendix
# ============================================================================================

def _markdown_table(columns, rows) -> str:
    def cell(text):  # a "|" inside a cell (e.g. "max |diff|") would end the cell
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(cell(_fmt(r.get(k), spec)) for k, _, spec in columns) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# what the measurements show, in words — generated from the rows, so text and numbers agree
# --------------------------------------------------------------------------------------------

def _hl_sliding_window(b):
    out = []
    for r in b["rows"]:
        if r["size"] == 128 or r is b["rows"][-1]:
            out.append(f"At {r['size']}², the convolutionalised network is **{r['speedup']:.0f}x faster** than the "
                       f"sliding window ({_fmt(r['sliding_s'], 'ms')} vs {_fmt(r['dense_s'], 'ms')} per image), and "
                       f"the outputs are {'equal' if r['equal'] else '**not** equal'} (max |diff| "
                       f"{r['max_abs_diff']:.1e}).")
    return out[:1] + ([out[-1]] if len(out) > 1 else [])


def _hl_activation_memory(b):
    rows = b["rows"]
    ratios = [r["ratio"] for r in rows]
    per_px = [r["full_res_bytes_per_pixel"] for r in rows]
    linear = max(per_px) / min(per_px) < 1.01
    last = rows[-1]
    span = f"{min(ratios):.2f}x" if f"{min(ratios):.2f}" == f"{max(ratios):.2f}" else \
        f"{min(ratios):.2f}-{max(ratios):.2f}x"
    return [f"The full-resolution stack keeps **{span}** the activations of the "
            f"encoder-decoder ({_human_bytes(last['full_res_bytes'])} vs {_human_bytes(last['enc_dec_bytes'])} "
            f"for one {last['size']}² image); "
            + ("both grow exactly in proportion to the number of pixels." if linear else
               "the bytes per pixel are not constant across sizes.")]


def _hl_tiling(b):
    out = []
    for r in b["rows"]:
        if r.get("whole_peak") and r["size"] >= 2048:
            out.append(f"At {r['size']}², overlap-tile ({r['tiles']} tiles) gives the "
                       f"{'same output as' if r['equal'] else '**a different output from**'} whole-image inference "
                       f"(max |diff| {r['max_abs_diff']:.1e}) with **{r['memory_ratio']:.1f}x less peak memory** "
                       f"({_human_bytes(r['tiled_peak'])} vs {_human_bytes(r['whole_peak'])}), and takes "
                       f"{r['tiled_s'] / r['whole_s']:.2f}x the time (the context around each tile is computed again "
                       "by its neighbours).")
    for r in b["rows"]:
        if not r.get("whole_peak"):
            out.append(f"At {r['size']}², only overlap-tile ran: {_fmt(r['tiled_s'], 'ms')} with a peak of "
                       f"{_human_bytes(r['tiled_peak'])}.")
    small = [r for r in b["rows"] if r.get("memory_ratio") and r["memory_ratio"] < 1]
    if small:
        out.append(f"For images up to {max(r['size'] for r in small)}² a single whole-image pass needs less memory "
                   "than tiles of the paper's size: tiling pays off only for large images.")
    return out


def _hl_train_step(b):
    out = []
    best = b["summary"].get("fastest_correct", {})
    by_model = {}
    for r in b["rows"]:
        by_model.setdefault(r["model"], {})[r["mode"]] = r
    for model, modes in by_model.items():
        fp32, fast = modes.get("fp32"), best.get(model)
        if fp32 and fast:
            others = ", ".join(f"{m} {r['vs_fp32']:.2f}x" for m, r in modes.items() if m != "fp32")
            out.append(f"{model}: fastest correct mode **{fast}** ({modes[fast]['vs_fp32']:.2f}x the speed of "
                       f"fp32; {others}).")
    wrong = [f"{r['model']} / {r['mode']}" for r in b["rows"] if not r["correct"]]
    if wrong:
        out.append("Outside the tolerance (not counted as correct): " + ", ".join(wrong) + ".")
    return out


def _hl_unetpp_pruning(b):
    rows = {r["level"]: r for r in b["rows"]}
    if 1 not in rows or 4 not in rows:
        return []
    exact = all(r["max_abs_diff"] is not None and r["max_abs_diff"] < 1e-5 for r in rows.values())
    return [f"UNet++ L1 runs **{rows[1]['speedup_vs_L4']:.1f}x faster** than the full L4 with "
            f"{100 * rows[1]['parameters'] / rows[4]['parameters']:.1f}% of its parameters; "
            + ("every pruned network reproduces the full network's head of its level exactly." if exact else
               "the pruned networks' outputs differ from the full network's heads (see max |diff|).")]


def _hl_plain_unet(b):
    out = []
    for r in b["rows"]:
        rel = "faster" if r["step_ratio"] >= 1 else "slower"
        out.append(f"{r['config']}: same architecture ({r['parameters']:,} parameters in both; outputs with "
                   f"copied weights differ by at most {r['max_abs_diff']:.1e}); segedu's training step is "
                   f"**{abs(r['step_ratio'] - 1) * 100:.0f}% {rel}** than the plain implementation's "
                   f"({_fmt(r['segedu_step_s'], 'ms')} vs {_fmt(r['plain_step_s'], 'ms')}), inference "
                   f"{r['infer_ratio']:.2f}x.")
    return out


_HIGHLIGHTS = {"sliding_window": _hl_sliding_window, "activation_memory": _hl_activation_memory,
               "tiling": _hl_tiling, "train_step": _hl_train_step, "unetpp_pruning": _hl_unetpp_pruning,
               "plain_unet": _hl_plain_unet}


def render_results(results: dict, images_relative_to: str = "") -> str:
    """Markdown for one ``results.json``: the hardware line, then one table (and plot) per benchmark."""
    m = results["meta"]
    extra = f", CUDA {m['cuda']}" if m.get("cuda") else ""
    lines = [
        f"Hardware: **{m['device_name']}** (device `{m['device']}`; host CPU {m['processor']}, {m['cpus']} cores), "
        f"PyTorch {m['torch']}{extra}, Python {m['python']}. Under each benchmark: when it was measured, at which "
        "scale, with how many PyTorch threads, and the load average (1, 5 and 15 minutes) at its start and end.",
        "",
    ]
    for name, b in results["benchmarks"].items():
        lines += [f"### `{name}`: {b['title']}", ""]
        if b["status"] == "skipped" or not b["rows"]:
            lines += [f"Not measured: {b['reason']}", ""]
            continue
        when = b.get("measured")
        if when:
            lines += [f"*Measured {when['date'][:16].replace('T', ' ')}, scale `{when['scale']}`, "
                      f"{when['threads']} threads, median of up to {when.get('repeats', '?')} timed runs after "
                      f"{when.get('warmup', '?')} warm-up, load average {when['loadavg_start']} -> "
                      f"{when['loadavg_end']}; took {b['seconds']:.0f} s.*", ""]
        if b["status"] == "incomplete":
            lines += [f"Incomplete: {b['reason']}; the rows below are what it measured.", ""]
        highlight = _HIGHLIGHTS.get(name)
        if highlight is not None:
            try:
                lines += [f"- {h}" for h in highlight(b)] + [""]
            except (KeyError, TypeError, ZeroDivisionError):  # an incomplete run: the table says it all
                pass
        lines += [_markdown_table(b["columns"], b["rows"]), ""]
        for n in b.get("notes", []):
            lines += [f"- {n}"]
        if b.get("notes"):
            lines += [""]
        if b.get("plot"):
            lines += [f"![{name}]({images_relative_to}{b['plot']})", ""]
    return "\n".join(lines)


def render_notebook_times(times: dict) -> str:
    if not times:
        return "No notebook has been timed yet (run `make notebooks`)."
    lines = ["| notebook | seconds | CPUs | threads | PyTorch | date |", "|---|---|---|---|---|---|"]
    for nb, t in sorted(times.items()):
        lines.append(f"| `{nb}` | {t['seconds']:.0f} | {t.get('cpus', '-')} | {t.get('threads', '-')} | "
                     f"{t.get('torch', '-')} | {t.get('date', '-')} |")
    total = sum(t["seconds"] for t in times.values())
    lines += ["", f"All {len(times)} notebooks together: {total / 60:.1f} minutes."]
    return "\n".join(lines)


def write_report(bench_dir=BOOK_BENCH, notebook_times=None) -> list[Path]:
    """Write the markdown the appendix includes: ``<bench_dir>/<kind>/report.md`` for each
    ``<kind>/results.json`` found, and ``<bench_dir>/notebook_times.md``. Returns the files written."""
    bench_dir = Path(bench_dir)
    notebook_times = Path(notebook_times) if notebook_times else bench_dir.parent / "notebook_times.json"
    written = []
    for kind in ("cpu", "cuda"):
        src = bench_dir / kind / "results.json"
        dst = bench_dir / kind / "report.md"
        if src.exists():
            text = render_results(json.loads(src.read_text()))
        else:
            text = f"No {kind.upper()} results have been committed yet."
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_text(_GENERATED + text + "\n")
        written.append(dst)
    times = json.loads(notebook_times.read_text()) if notebook_times.exists() else {}
    dst = bench_dir / "notebook_times.md"
    dst.write_text(_GENERATED + render_notebook_times(times) + "\n")
    written.append(dst)
    return written


_GENERATED = "<!-- generated by `python -m segedu bench --report` from the JSON next to it; do not edit -->\n\n"


# ============================================================================================
# command line
# ============================================================================================

def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m segedu bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all; see --list)")
    p.add_argument("--quick", action="store_const", const="quick", dest="scale",
                   help="small sizes: under 3 minutes on 2 CPU cores (the default)")
    p.add_argument("--full", action="store_const", const="full", dest="scale",
                   help="all sizes and the papers' configurations (tens of minutes on a CPU)")
    p.add_argument("--scale", choices=SCALES, default="quick", help="tiny (seconds, for tests), quick or full")
    p.add_argument("--device", default="auto", help="auto (CUDA if available, else CPU), cpu or cuda")
    p.add_argument("--out", default="bench-results", help="output folder for results.json and plots")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per measurement (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs before timing")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for the run")
    p.add_argument("--modes", default=None,
                   help="comma-separated train_step modes (e.g. fp32,channels_last,bf16,compile)")
    p.add_argument("--no-plots", action="store_true", help="write results.json only")
    p.add_argument("--memory-budget", type=float, default=None,
                   help="GiB; whole-image inference above it is skipped (default 4 on CPU, 15 on CUDA)")
    p.add_argument("--time-limit", type=float, default=None,
                   help="seconds; no new case starts after it (the results so far are kept)")
    p.add_argument("--update", action="store_true",
                   help="keep the other benchmarks already in DIR/results.json; replace only those run now")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--report", action="store_true",
                   help="write the appendix's markdown tables from the committed results and exit")
    return p


def main(argv=None) -> int:
    """Command-line entry point (``python -m segedu bench ...``)."""
    p = _parser()
    args = p.parse_args(argv)
    if args.list:
        for name, b in BENCHMARKS.items():
            print(f"{name:18} {b.title}")
        return 0
    if args.report:
        for path in write_report():
            print(f"wrote {path}")
        return 0
    modes = args.modes.split(",") if args.modes else None
    try:  # bad input is a usage error; an error inside a benchmark is a bug and keeps its traceback
        _check_names(args.names)
        _resolve_bench_device(args.device)
        _check_out_dir(args.out)
        if modes and any(m not in MODES for m in modes):
            raise ValueError(f"unknown mode(s) {[m for m in modes if m not in MODES]}; choose from {list(MODES)}")
        if args.threads is not None and args.threads < 1:
            raise ValueError(f"--threads must be a positive integer, got {args.threads}")
    except (ValueError, TypeError) as e:
        p.error(str(e))
    run(args.names, device=args.device, scale=args.scale or "quick", out=args.out, repeats=args.repeats,
        warmup=args.warmup, threads=args.threads, plots=not args.no_plots, modes=modes, update=args.update,
        memory_budget=args.memory_budget * 2**30 if args.memory_budget else None, time_limit=args.time_limit)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
