"""Command line: ``python -m segedu COMMAND ...`` (also installed as ``segedu``).

    train    train a model of the course on synthetic, real or your own data (torchrun: several processes)
    predict  segment images with a trained checkpoint
    bench    the benchmark suite (see ``segedu.bench``)
    sizes    the valid input sizes of a valid-padding U-Net (chapter 5)

Each command has its own ``--help``.
"""

from __future__ import annotations

import argparse
import sys

COMMANDS = {
    "train": "train a model (python -m segedu train --help)",
    "predict": "segment images with a trained model (python -m segedu predict --help)",
    "bench": "run the benchmark suite (python -m segedu bench --help)",
    "sizes": "list the valid input sizes of a valid-padding U-Net",
}


def sizes_main(argv=None) -> int:
    """``python -m segedu sizes [--depth 4] [--max 1024] [--near N]``: the x = 16k + 124 table."""
    from .sizes import nearest_valid_input_size, unet_levels, valid_input_sizes

    p = argparse.ArgumentParser(prog="python -m segedu sizes",
                                description="Valid input sizes of a valid-padding U-Net and their output sizes.")
    p.add_argument("--depth", type=int, default=4, help="number of poolings (the paper: 4)")
    p.add_argument("--max", type=int, default=1024, dest="max_size", help="largest input side to list")
    p.add_argument("--near", type=int, default=None, help="only the valid sizes nearest to this side")
    args = p.parse_args(argv)
    for flag, value in (("--max", args.max_size), ("--near", args.near)):
        if value is not None and value < 1:
            p.error(f"{flag} must be a positive number of pixels, got {value}")
    try:
        if args.near is not None:
            below, above = nearest_valid_input_size(args.near, depth=args.depth)
            sizes = [s for s in (below, above) if s is not None]
        else:
            sizes = valid_input_sizes(depth=args.depth, max_size=args.max_size)
    except ValueError as e:
        p.error(str(e))
    print(f"{'input':>7} {'output':>7} {'k':>5}   (depth {args.depth})")
    for s in sizes:
        lv = unet_levels(s, args.depth)
        print(f"{s:>7} {lv.output_size:>7} {lv.k:>5}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "bench":
        from .bench import main as bench_main

        return bench_main(rest)
    if command == "sizes":
        return sizes_main(rest)
    if command == "train":
        from .cli import train_main

        return train_main(rest)
    if command == "predict":
        from .cli import predict_main

        return predict_main(rest)
    print(f"segedu: unknown command {command!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
