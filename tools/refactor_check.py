"""Fingerprint what a behaviour-neutral refactoring must not change, to compare two commits.

    python tools/refactor_check.py > before.json      # on the old commit
    python tools/refactor_check.py > after.json       # on the new one
    python tools/refactor_check.py --compare before.json after.json

It records:

* ``fit``: SHA-256 of the trained weights and the exact loss curve of five short runs (a
  same-padding U-Net, a deeply supervised UNet++, a valid U-Net with the weight map, a run
  interrupted and resumed from its TrainState, and a bfloat16 run), all on the CPU with one thread;
* ``help``: the exact ``--help`` text of every command line (``python -m segedu ...``);
* ``api``: every public name each module of ``segedu`` had (``--compare`` checks that each one
  still imports from the same path: old import paths must keep working).

Fingerprints of weights are only comparable on one machine (another CPU's kernels round
differently); the help texts and the API are comparable anywhere.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import pkgutil
import subprocess
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _digest(model) -> str:
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def fit_fingerprints() -> dict:
    import torch

    torch.set_num_threads(1)
    from segedu.data import Binary, Cells, Shapes
    from segedu.losses import DeepSupervisionLoss
    from segedu.models import UNet, UNetPlusPlus
    from segedu.train import TrainState, fit

    def run(name, make_model, data, **kw):
        torch.manual_seed(0)
        model = make_model()
        hist = fit(model, data, epochs=kw.pop("epochs", 2), batch_size=4, progress=False, seed=1, device="cpu", **kw)
        return name, {"weights": _digest(model), "loss": [e["loss"] for e in hist.epochs],
                      "val": [e.get("val_mean_iou") for e in hist.epochs], "steps": hist.steps}

    out = dict([
        run("unet_same", lambda: UNet(1, 2, depth=2, base_channels=8, padding="same"), Cells(12, size=48, seed=3),
            val_data=Cells(4, size=48, seed=9)),
        run("unetpp_ds", lambda: UNetPlusPlus(3, 1, depth=3, base_channels=4, deep_supervision=True),
            Binary(Shapes(12, size=32, seed=4)), loss=DeepSupervisionLoss()),
        run("unet_valid_weight_map", lambda: UNet(1, 2, depth=1, base_channels=8, padding="valid"),
            Cells(8, size=60, seed=5, weights=True)),
        run("bf16", lambda: UNet(1, 2, depth=2, base_channels=8, padding="same"), Cells(8, size=32, seed=6),
            amp="bf16"),
    ])
    # A run interrupted after epoch 1 and resumed to epoch 3 (the model's weights travel with it).
    torch.manual_seed(0)
    model = UNet(1, 2, depth=2, base_channels=8, padding="same")
    data = Cells(8, size=32, seed=7)
    state = TrainState()
    fit(model, data, epochs=1, batch_size=4, progress=False, seed=2, device="cpu", state=state)
    hist = fit(model, data, epochs=3, batch_size=4, progress=False, seed=2, device="cpu", state=state)
    out["resumed"] = {"weights": _digest(model), "loss": [e["loss"] for e in hist.epochs], "steps": hist.steps}
    return out


HELP_COMMANDS = [[], ["--help"], ["train", "--help"], ["predict", "--help"], ["sizes", "--help"], ["bench", "--help"]]


def help_texts() -> dict:
    texts = {}
    for args in HELP_COMMANDS + [["-m", "segedu.bench", "--help"]]:
        cmd = [sys.executable] + (args if args[:1] == ["-m"] else ["-m", "segedu", *args])
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "COLUMNS": "100"})
        texts[" ".join(cmd[1:])] = {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr}
    return texts


def _ours(value) -> bool:
    """Defined in segedu (a function, a class) or a plain constant; not a name imported from elsewhere."""
    if isinstance(value, type(sys)):
        return False
    module = getattr(value, "__module__", None)
    if module is None or not callable(value):
        return not callable(value) and not hasattr(value, "__origin__")  # constants, not typing aliases
    return module.startswith("segedu")


def public_api() -> dict:
    import segedu

    api = {}
    for info in pkgutil.walk_packages(segedu.__path__, "segedu."):
        if info.name.endswith("__main__"):
            continue
        mod = importlib.import_module(info.name)
        api[info.name] = sorted(n for n, v in vars(mod).items() if not n.startswith("_") and _ours(v))
    return api


def compare(before: dict, after: dict) -> int:
    problems = []
    for name, fp in before["fit"].items():
        if after["fit"].get(name) != fp:
            problems.append(f"fit {name}: {fp} != {after['fit'].get(name)}")
    for cmd, text in before["help"].items():
        if after["help"].get(cmd) != text:
            problems.append(f"help text of {cmd!r} changed")
    for module, names in before["api"].items():
        try:
            mod = importlib.import_module(module)
        except ImportError as e:
            problems.append(f"{module} no longer imports: {e}")
            continue
        missing = [n for n in names if not hasattr(mod, n)]
        if missing:
            problems.append(f"{module} lost {missing}")
    print("\n".join(problems) or f"identical: {len(before['fit'])} fit runs, {len(before['help'])} help texts, "
          f"{sum(map(len, before['api'].values()))} public names in {len(before['api'])} modules")
    return 1 if problems else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compare", nargs=2, metavar=("BEFORE", "AFTER"))
    args = p.parse_args()
    if args.compare:
        before, after = (json.load(open(f)) for f in args.compare)
        return compare(before, after)
    json.dump({"fit": fit_fingerprints(), "help": help_texts(), "api": public_api()}, sys.stdout, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
