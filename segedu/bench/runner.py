"""Running the suite: check the request, run each benchmark, save ``results.json`` as it goes.

:func:`run` is what ``python -m segedu bench`` calls. Bad input (an unknown benchmark, a device
that is not there, an output folder that cannot be written) is refused before anything runs,
with a message that says what to do. Then each benchmark runs in a fresh
:class:`~segedu.bench.measure.Context`, and ``results.json`` is rewritten, atomically
(:func:`segedu.checkpoint.atomic_write`), after every row: a run stopped half-way keeps what it
measured.

``results.json`` records, next to the numbers, what they depend on: the hardware, the PyTorch
version, the thread count, the date and the machine's load average before and after each
benchmark (timings on a busy machine are noisy: compare ratios, not absolute times, across runs).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import sys
import time
from pathlib import Path

import torch

from ..checkpoint import atomic_write
from ..checks import check_positive_int
from ..runtime import hardware
from .measure import Context
from .registry import BENCHMARKS, Benchmark, Skip, resolve
from .tables import format_header, plain, print_line

__all__ = ["SCHEMA_VERSION", "SCALES", "run", "resolve_bench_device", "check_out_dir", "check_names"]

SCHEMA_VERSION = 1
SCALES = ("tiny", "quick", "full")


# --------------------------------------------------------------------------------------------
# where it runs: hardware, load, device
# --------------------------------------------------------------------------------------------

def _loadavg():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):  # pragma: no cover - Windows
        return None


def resolve_bench_device(device) -> torch.device:
    """``"auto"`` (CUDA if available, else the CPU), ``"cpu"`` or ``"cuda[:i]"`` as a device; a
    missing GPU or another kind of device is a ValueError that says what to pass instead."""
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


# --------------------------------------------------------------------------------------------
# what it writes and runs: the output folder, the names
# --------------------------------------------------------------------------------------------

def check_out_dir(out) -> Path:
    """Create ``out`` and make sure a file can be written in it (a ValueError otherwise)."""
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


def check_names(names) -> list[str]:
    """The benchmarks to run (all when ``names`` is empty); an unknown name is a ValueError."""
    names = list(names or BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ValueError(f"unknown benchmark name(s) {', '.join(map(repr, unknown))}; "
                         f"choose from: {', '.join(BENCHMARKS)}")
    return names


def _write_json(path: Path, data: dict) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(data, indent=1) + "\n"))


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


def _now() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------
# the run
# --------------------------------------------------------------------------------------------

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
    names = check_names(names)
    dev = resolve_bench_device(device)
    out = check_out_dir(out)
    if threads is not None:
        torch.set_num_threads(check_positive_int("threads", threads))
    repeats = repeats if repeats is not None else {"tiny": 2, "quick": 3, "full": 7}[scale]
    max_seconds = max_seconds if max_seconds is not None else {"tiny": 2.0, "quick": 6.0, "full": 30.0}[scale]
    results = {
        "schema": SCHEMA_VERSION,
        "meta": {
            **hardware(dev),
            "date": _now(),
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
        ctx.columns = b.columns
        if progress:
            print_line(f"\n== {name}: {b.title}")
            print_line(format_header(b.columns))
        t0 = time.perf_counter()
        # While it runs, the entry is saved after every row with status "incomplete", so a run
        # stopped half-way (a time limit) still leaves what it measured.
        entry = {"title": b.title, "status": "incomplete", "reason": "the run stopped before this benchmark ended",
                 "seconds": None, "columns": [list(c) for c in b.columns], "rows": ctx.rows, "summary": ctx.summary,
                 "notes": ctx.notes, "plot": None,
                 "measured": {"date": _now(), "scale": scale, "threads": torch.get_num_threads(), "repeats": repeats,
                              "warmup": warmup, "loadavg_start": _loadavg(),
                              "loadavg_end": None}}
        results["benchmarks"][name] = entry

        def save_partial():
            entry["seconds"] = round(time.perf_counter() - t0, 2)
            entry["measured"]["loadavg_end"] = _loadavg()
            entry["summary"] = plain(ctx.summary)
            _write_json(out / "results.json", results)

        ctx.on_row = save_partial
        try:
            for dotted in b.requires:
                resolve(dotted)
            torch.manual_seed(0)
            b.run(ctx)
            entry.update(status="ok", reason=None)
        except Skip as e:
            entry.update(status="skipped", reason=str(e))
            if progress:
                print_line(f"  skipped: {e}")
        entry.update(seconds=round(time.perf_counter() - t0, 2), summary=plain(ctx.summary))
        entry["measured"]["loadavg_end"] = _loadavg()
        if plots and b.plot is not None and entry["status"] == "ok" and ctx.rows:
            entry["plot"] = _save_plot(b, entry, out)
        results["benchmarks"][name] = entry
        results["meta"]["seconds"] = round(time.perf_counter() - t_start, 2)
        results["meta"]["loadavg_end"] = _loadavg()
        _write_json(out / "results.json", results)  # after every benchmark: a killed run keeps its results
    if progress:
        print_line(f"\nwrote {out / 'results.json'} ({results['meta']['seconds']:.0f} s)")
    return results
