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
    c = sub.add_parser("calibrate", help="choose the decision offsets of trained weights on the training data "
                                          "(train does it too), re-measure, and update their record in --out")
    c.add_argument("name", choices=sorted(RECIPES))
    c.add_argument("--out", type=Path, required=True, help="the folder holding NAME.pt and NAME.json")
    e = sub.add_parser("evaluate", help="held-out scores of a reference model")
    e.add_argument("name", choices=sorted(RECIPES))
    e.add_argument("--weights", type=Path, default=None, help="another weights file of the same recipe")
    args = parser.parse_args(argv)

    if args.command == "evaluate":
        print(json.dumps(evaluate(args.name, model=load(args.name, path=args.weights)), indent=1))
        return 0

    from .recipes import calibrate, train

    if args.command == "calibrate":
        path, record_path = args.out / f"{args.name}.pt", args.out / f"{args.name}.json"
        record = json.loads(record_path.read_text())
        model = load(args.name, path=path)
        offsets, calibration = calibrate(args.name, model)
        if offsets is None:
            print(f"{args.name}'s recipe has no calibration")
            return 0
        calibration["command"] = "python -m segedu.pretrained " + " ".join(sys.argv[1:] if argv is None else argv)
        record.update(class_offsets=offsets, calibration=calibration)
        record["held_out_scores_without_offsets"] = record.get("held_out_scores_without_offsets",
                                                               record["held_out_scores"])
        record["held_out_scores"] = evaluate(args.name, model=model, offsets=offsets)
        record = {k: v for k, v in record.items() if k not in ("name", "sha256", "bytes")}
        save(model, args.name, record, args.out)  # the same float16 weights: the file and its SHA-256 do not change
        print(json.dumps({"calibration": calibration, **{k: v for k, v in record["held_out_scores"].items()
                                                           if k != "confusion"}}, indent=1))
        return 0

    target = args.out / f"{args.name}.pt"
    if target.exists() and not args.force:
        parser.error(f"{target} exists; pass --force to replace it, or --out another folder")
    torch.set_num_threads(args.threads)
    model, record = train(args.name, steps=args.steps)
    record["command"] = "python -m segedu.pretrained " + " ".join(sys.argv[1:] if argv is None else argv)
    record["date"] = datetime.date.today().isoformat()
    path = save(model, args.name, record, args.out)
    # the scores of what ships: the float16 file read back (as load() reads it), not the float32 model in memory
    shipped = load(args.name, path=path)
    offsets, calibration = calibrate(args.name, shipped)  # on the training data only (None for most recipes)
    if offsets is not None:
        record.update(class_offsets=offsets, calibration=calibration)
        record["held_out_scores_without_offsets"] = evaluate(args.name, model=shipped, offsets=None)
    record["held_out_scores"] = evaluate(args.name, model=shipped, offsets=offsets)
    path = save(model, args.name, record, args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB); held-out scores:")
    print(json.dumps({k: v for k, v in record["held_out_scores"].items() if k != "confusion"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
