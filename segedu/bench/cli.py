"""The command line of :mod:`segedu.bench` (``python -m segedu bench`` and ``python -m segedu.bench``).

Its ``--help`` description is the first paragraph of the package's docstring, read at run time
from the package (always loaded before this module is), so the two cannot drift apart. Usage
errors — an unknown benchmark or mode, a missing GPU, an unwritable output folder — end with
argparse's message and exit status 2, not a traceback; an error inside a benchmark is a bug and
keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..checks import check_positive_int
from .cases.modes import MODES
from .registry import BENCHMARKS
from .report import write_report
from .runner import SCALES, check_names, check_out_dir, resolve_bench_device, run

__all__ = ["main"]


def _package_doc() -> str:
    """The docstring of segedu.bench: a submodule runs only after its package has been imported."""
    return sys.modules[__package__].__doc__


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m segedu bench", description=_package_doc().split("\n\n")[0],
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
        check_names(args.names)
        resolve_bench_device(args.device)
        check_out_dir(args.out)
        if modes and any(m not in MODES for m in modes):
            raise ValueError(f"unknown mode(s) {[m for m in modes if m not in MODES]}; choose from {list(MODES)}")
        if args.threads is not None:
            check_positive_int("--threads", args.threads)
    except (ValueError, TypeError) as e:
        p.error(str(e))
    run(args.names, device=args.device, scale=args.scale or "quick", out=args.out, repeats=args.repeats,
        warmup=args.warmup, threads=args.threads, plots=not args.no_plots, modes=modes, update=args.update,
        memory_budget=args.memory_budget * 2**30 if args.memory_budget else None, time_limit=args.time_limit)
    return 0
