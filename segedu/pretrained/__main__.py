"""``python -m segedu.pretrained train NAME`` / ``evaluate NAME``: (re)build and measure the reference models.

``train`` runs NAME's recipe from scratch (about an hour on a 2-core CPU, one thread each so two
models can train side by side), measures the held-out scores, and writes the float16 weights and
their record to ``--out`` (default: the package's ``weights/`` folder, which it refuses to
overwrite without ``--force``). ``evaluate`` measures a weights file on its held-out data.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import torch

from . import RECIPES, WEIGHTS, evaluate, load, save


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m segedu.pretrained", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a reference model from scratch, measure it, store it")
    t.add_argument("name", choices=sorted(RECIPES))
    t.add_argument("--steps", type=int, default=None, help="override the recipe's steps (a quick check)")
    t.add_argument("--out", type=Path, default=WEIGHTS, help="folder for NAME.pt and NAME.json")
    t.add_argument("--force", action="store_true", help="replace existing weights in --out")
    t.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads (default 1)")
    e = sub.add_parser("evaluate", help="held-out scores of a reference model")
    e.add_argument("name", choices=sorted(RECIPES))
    e.add_argument("--weights", type=Path, default=None, help="another weights file of the same recipe")
    args = parser.parse_args(argv)

    if args.command == "evaluate":
        print(json.dumps(evaluate(args.name, model=load(args.name, path=args.weights)), indent=1))
        return 0

    from .recipes import train

    target = args.out / f"{args.name}.pt"
    if target.exists() and not args.force:
        parser.error(f"{target} exists; pass --force to replace it, or --out another folder")
    torch.set_num_threads(args.threads)
    model, record = train(args.name, steps=args.steps)
    record["held_out_scores"] = evaluate(args.name, model=model)
    record["command"] = "python -m segedu.pretrained train " + " ".join(sys.argv[1:] if argv is None else argv)
    record["date"] = datetime.date.today().isoformat()
    path = save(model, args.name, record, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); held-out scores:")
    print(json.dumps({k: v for k, v in record["held_out_scores"].items() if k != "confusion"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
