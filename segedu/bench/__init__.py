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

# The package, one concern per module:
#
#     registry.py  Benchmark, register, BENCHMARKS, Skip: which benchmarks exist
#     measure.py   Context: timing (warm-up, median, interleaved), the memory probe, rows and notes
#     tables.py    how values look in results.json, on the terminal and in markdown
#     runner.py    run(): checks the request, runs the benchmarks, writes results.json
#     report.py    the appendix's markdown (render_results, write_report)
#     cli.py       the command line (main)
#     cases/       one file per benchmark: its measurement, plot and highlight sentences

from __future__ import annotations

from ..memory import activation_bytes, peak_memory_bytes
from .cases import (CPU_MODES, CUDA_MODES, MODES, TOLERANCE, EncoderDecoderStack, FullResolutionStack, ModelCase,
                    PlainUNet, bench_activation_memory, bench_plain_unet, bench_sliding_window, bench_tiling,
                    bench_train_step, bench_unetpp_pruning, compile_available, copy_weights_by_shape,
                    saved_activation_bytes)
from .cli import main
from .measure import Context
from .registry import BENCHMARKS, Benchmark, Skip, register
from .report import BOOK_BENCH, ROOT, render_notebook_times, render_results, write_report
from .runner import SCALES, SCHEMA_VERSION, resolve_bench_device, run

__all__ = ["BENCHMARKS", "Benchmark", "Context", "register", "Skip", "run", "main", "write_report",
           "render_results", "render_notebook_times", "PlainUNet", "copy_weights_by_shape", "FullResolutionStack",
           "EncoderDecoderStack", "saved_activation_bytes", "activation_bytes", "peak_memory_bytes", "SCALES",
           "SCHEMA_VERSION", "ROOT", "BOOK_BENCH", "MODES", "CPU_MODES", "CUDA_MODES", "TOLERANCE", "ModelCase",
           "compile_available", "resolve_bench_device", "bench_sliding_window", "bench_activation_memory",
           "bench_tiling", "bench_train_step", "bench_unetpp_pruning", "bench_plain_unet"]
