"""Measuring: what a benchmark gets to time its calls, probe their memory and record the results.

Each benchmark receives a :class:`Context`. Its rules make the numbers comparable:

* **Warm up, then take the median.** Every timed function runs ``warmup`` times first (one-off
  costs: memory pools, oneDNN/cuDNN kernel selection, compilation), then up to ``repeats`` times;
  the median is reported, which one slow run (another process waking up) does not move.
* **Interleave what is compared.** :meth:`Context.time` times several functions in one loop —
  A, B, A, B, ... — so a change in the machine's load during the run hits both alike, and their
  ratio is measured side by side.
* **Wait for the GPU.** CUDA calls return before the work is done; the timer brackets each call
  with :func:`segedu.runtime.synchronize`.
* **Peak memory** is :func:`segedu.memory.peak_memory_bytes`: the allocator's peak on CUDA, the
  replayed allocations of ``torch.profiler`` on the CPU.

The context also knows the scale (``tiny``, ``quick``, ``full``: :meth:`Context.pick` chooses the
sizes), keeps the table's rows, the summary and the notes, and stops starting new cases after a
deadline. The numbers it measured on the course's machines are in the generated Performance
appendix (``book/performance.md``).
"""

from __future__ import annotations

import statistics
import sys
import time

import torch

from ..memory import peak_memory_bytes
from ..runtime import synchronize
from .tables import format_row, plain, print_line

__all__ = ["Context", "max_abs_diff"]


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
        self.columns: list = []  # the benchmark's table columns (the runner sets them): rows print as they come
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
        synchronize(self.device)
        samples = {k: [] for k in fns}
        start = time.perf_counter()
        for _ in range(max(1, repeats)):
            for name, fn in fns.items():
                synchronize(self.device)
                t0 = time.perf_counter()
                fn()
                synchronize(self.device)
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
        fields = {k: plain(v) for k, v in fields.items()}
        self.rows.append(fields)
        if self.progress and self.columns:
            print_line(format_row(self.columns, fields))
        if self.on_row is not None:
            self.on_row()
        return fields

    def note(self, text: str) -> None:
        """A remark that belongs with the results (printed, and stored in ``notes``)."""
        self.notes.append(text)
        if self.progress:
            print_line(f"  note: {text}")


def max_abs_diff(a, b) -> float:
    """Largest absolute difference of two outputs, compared on the CPU in float32 (some outputs
    come back there, e.g. the sliding window's scores)."""
    return float((a.detach().float().cpu() - b.detach().float().cpu()).abs().max())
