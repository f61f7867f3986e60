"""``python -m segedu.experiments [NAME ...] [--list] [--force] [--seeds S ...] [--memory-format F]``: run and store the named experiments.

Each result goes to ``book/_data/experiments/NAME.json``. An experiment whose stored result is
current (same configuration, same seeds) is skipped unless ``--force``. ``make experiments``
runs them all; they take long on a CPU (the catalog lists each one's cost), so run them in the
background: ``nohup make experiments > experiments.log 2>&1 &``.
"""

from __future__ import annotations

import argparse
import sys

from .registry import EXPERIMENTS, STORE, run
from ..summary import format_verdict


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m segedu.experiments", description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="NAME", help="experiments to run (default: all)")
    p.add_argument("--list", action="store_true", help="list the named experiments and exit")
    p.add_argument("--force", action="store_true", help="re-run even when the stored result is current")
    p.add_argument("--store", default=str(STORE), help="folder of the stored results (default: %(default)s)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds to run instead of the spec's (e.g. seeds it never used)")
    p.add_argument("--memory-format", choices=("channels_last", "contiguous"),
                   help="force this memory format for every model (the rounding check; default: the spec's). "
                        "Store such runs apart: --store book/_data/experiments/contiguous")
    args = p.parse_args(argv)
    if args.list:
        for name, exp in EXPERIMENTS.items():
            print(f"{name:26} {len(exp.seeds):>2} seeds  {exp.question}")
        return 0
    unknown = [n for n in args.names if n not in EXPERIMENTS]
    if unknown:
        p.error(f"unknown experiment(s) {', '.join(unknown)}; choose from {', '.join(EXPERIMENTS)}")
    for name in args.names or list(EXPERIMENTS):
        cl = None if args.memory_format is None else args.memory_format == "channels_last"
        result = run(name, seeds=args.seeds, cache=not args.force, save=True, store=args.store, device=args.device,
                     channels_last=cl)
        if result.from_store:
            print(f"{name}: stored result is current ({len(result.seeds)} seeds)")
            continue
        print(f"{name}: {len(result.rows)} runs in {result.seconds:.0f} s")
        for v in result.verdicts:
            print("  " + format_verdict(v))
    return 0


if __name__ == "__main__":
    sys.exit(main())
