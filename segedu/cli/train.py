"""``python -m segedu train``: train a model of the course and keep what a run needs.

The command is a thin layer over :func:`segedu.train.fit`: it parses the options, builds the
data (:mod:`segedu.cli.datasets`) and the model (:mod:`segedu.cli.registry`), checks with one
forward pass that they fit each other, and writes into ``--out``, after every epoch,

* ``best.pt`` (the best validation mean IoU so far) and ``last.pt`` (with the optimizer and
  random-number-generator state, :class:`segedu.train.TrainState`), written atomically
  (:func:`segedu.checkpoint.atomic_write`);
* ``metrics.json``: the run's settings and one record per epoch, strict JSON: a value that is NaN
  or infinite (a metric undefined on the data) is written as ``null``
  (:func:`segedu.checkpoint.write_json`);

and, at the end, ``preview.png`` (:func:`segedu.cli.outputs.preview`).

A run's settings (:data:`RUN_DEFAULTS`) are stored in its checkpoints, so ``--resume DIR`` reuses
them: only :data:`RESUME_MAY_CHANGE` may differ, and the run continues exactly where it stopped.
Under ``torchrun`` it trains data-parallel (:mod:`segedu.distributed`) and only rank 0 writes.

Nothing is lost:

* while a run writes into ``--out`` it holds ``run.lock`` there (:class:`segedu.checkpoint.RunLock`):
  a second run into the same folder is refused, and a lock left by a killed run is replaced with a
  note;
* a new run refuses a folder that holds any of :data:`RUN_FILES` (``--overwrite`` replaces them);
  ``--resume`` refuses a folder whose ``best.pt`` is missing or belongs to another run than its
  ``last.pt``;
* every epoch writes ``best.pt``, ``metrics.json`` and then ``last.pt``, each atomically: ``last.pt``
  is the commit point, and a failed write (a full disk) leaves every file as it was, with a
  message saying which epoch ``last.pt`` holds and to continue with ``--resume``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch

from .. import __version__
from .. import distributed as dist
from ..checkpoint import FolderLockedError, RunLock, atomic_write, save_checkpoint, write_json
from ..losses import DeepSupervisionLoss
from ..models.sliding_window import CenterPixelPatches
from ..runtime import resolve_device, seed_everything
from ..train import TrainState, default_loss, fit
from .datasets import load_data
from .errors import CLIError, CLIParser, run_command
from .outputs import preview
from .registry import MODELS, build_model, check_model_name, load_model, load_weights, model_spec, read_checkpoint

__all__ = ["RUN_DEFAULTS", "OTHER_DEFAULTS", "RESUME_MAY_CHANGE", "RUN_FILES", "train_parser", "train_command",
           "train_main"]

#: What ``train`` records about a run (and ``--resume`` reuses); the defaults of the options.
RUN_DEFAULTS = dict(model=None, data="shapes", size=None, n_train=64, n_val=16, val_fraction=0.2, num_classes=None,
                    binary_masks=False, width=None, depth=None, norm="none", deep_supervision=False, patch_size=25,
                    patches=4096, epochs=10, batch_size=8, lr=1e-3, weight_decay=0.0, seed=0, device="auto", amp=None)
OTHER_DEFAULTS = dict(progress=True, out=None, resume=None, overwrite=False, debug=False)
#: Options ``--resume`` may change (the run continues on the device it was started on unless told
#: otherwise; the same device and precision reproduce it exactly). The rest must match.
RESUME_MAY_CHANGE = ("epochs", "device", "amp")


def train_parser() -> argparse.ArgumentParser:
    """``train``'s options. Every default is ``None``: :data:`RUN_DEFAULTS` fills in what was not given."""
    p = CLIParser(prog="python -m segedu train", description="Train a model of the course on synthetic, real or your "
                  "own data. Under torchrun it trains data-parallel (DistributedDataParallel).",
                  argument_default=None)
    p.add_argument("--model", help="one of: " + ", ".join(f"{k} ({v[1]})" for k, v in MODELS.items()))
    p.add_argument("--data", help="shapes (default), cells, isbi2012, or folder:PATH with PATH/images and PATH/masks")
    p.add_argument("--out", help="folder for metrics.json, best.pt, last.pt, preview.png (default with --resume: DIR)")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR exactly where it stopped "
                   "(raise --epochs to train longer)")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, help="total number of epochs (default 10)")
    g.add_argument("--batch-size", type=int, help="images per step, over all processes (default 8)")
    g.add_argument("--lr", type=float, help="Adam's learning rate (default 1e-3)")
    g.add_argument("--weight-decay", type=float, help="(default 0)")
    g.add_argument("--seed", type=int, help="seeds weights, data order and synthetic data (default 0)")
    g.add_argument("--device", help="auto (CUDA > MPS > CPU, the default), cpu, cuda, cuda:1, mps")
    g.add_argument("--amp", action=argparse.BooleanOptionalAction,
                   help="mixed precision (default: off, measured faster at these sizes; --amp uses bfloat16, or "
                   "float16 on GPUs without bfloat16)")
    g.add_argument("--progress", action=argparse.BooleanOptionalAction, help="progress bars and epoch lines (default on)")
    g = p.add_argument_group("model")
    g.add_argument("--width", type=int, help="channels of the first level (default: 16; sliding: 32)")
    g.add_argument("--base-channels", type=int, dest="width", help="the same as --width")
    g.add_argument("--depth", type=int, help="poolings of the U-Net family (default 4)")
    g.add_argument("--norm", choices=("none", "batch"), help="normalisation after convolutions (default none)")
    g.add_argument("--deep-supervision", action=argparse.BooleanOptionalAction, help="UNet++ family: train every head")
    g.add_argument("--patch-size", type=int, help="sliding: patch side (odd, default 25)")
    g.add_argument("--patches", type=int, help="sliding: training patches (default 4096)")
    g = p.add_argument_group("data")
    g.add_argument("--size", type=int, help="image side of synthetic data (shapes 64, cells 96); for isbi2012 and "
                   "folders: train on random SIZE x SIZE crops (default: whole images)")
    g.add_argument("--n-train", type=int, help="synthetic training images / crops (default 64)")
    g.add_argument("--n-val", type=int, help="synthetic validation images / crops (default 16)")
    g.add_argument("--val-fraction", type=float, help="folder data: fraction held out for validation (default 0.2)")
    g.add_argument("--num-classes", type=int, help="folder data: number of classes (default: largest mask value + 1)")
    g.add_argument("--binary-masks", action=argparse.BooleanOptionalAction, help="folder data: any non-zero mask "
                   "value is class 1 (masks saved as 0/255)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def _settings(argv) -> tuple[dict, dict]:
    """Parse ``train``'s options: ``(run settings, other options)``, applying ``--resume``."""
    args = vars(train_parser().parse_args(argv))
    explicit = {k: v for k, v in args.items() if v is not None and (v is not False or k == "amp")}
    other = {k: args[k] if args[k] is not None else d for k, d in OTHER_DEFAULTS.items()}
    for flag in ("out", "resume"):
        if other[flag] is not None and not str(other[flag]).strip():
            raise CLIError(f"--{flag} needs a folder, got an empty name")
    if other["resume"]:
        last = Path(other["resume"]) / "last.pt"
        if not last.exists():
            raise CLIError(f"--resume {other['resume']}: no last.pt there (give the --out folder of a training run)")
        saved = read_checkpoint(last)
        if not isinstance(saved.get("run"), dict) or not isinstance(saved.get("state"), dict):
            raise CLIError(f"--resume {other['resume']}: {last} is not the last.pt of a 'python -m segedu train' run (it "
                           "holds no run settings or training state); give the --out folder of a training run")
        run = dict(saved["run"])
        for k, v in explicit.items():
            if k in run and k not in RESUME_MAY_CHANGE and v != run[k]:
                raise CLIError(f"--resume {other['resume']}: that run used --{k.replace('_', '-')} {run[k]}, not {v} "
                               f"(a checkpoint from another {'model' if k == 'model' else 'run'}; only "
                               f"{', '.join('--' + x for x in RESUME_MAY_CHANGE)} may change)")
        run.update({k: explicit[k] for k in RESUME_MAY_CHANGE if k in explicit})
        other["out"] = other["out"] or other["resume"]
        other["last"], other["last_stat"] = saved, _stat(last)
    else:
        run = {k: args[k] if args[k] is not None else d for k, d in RUN_DEFAULTS.items()}
        if run["model"] is None:
            raise CLIError("--model is required: one of " + ", ".join(MODELS))
        if other["out"] is None:
            raise CLIError("--out DIR is required (where the checkpoint, metrics and preview go)")
    check_model_name(run["model"])
    for k in ("epochs", "batch_size", "n_train", "n_val", "patches"):
        if run[k] is None or run[k] < 1:
            raise CLIError(f"--{k.replace('_', '-')} must be a positive integer, got {run[k]}")
    if not (run["lr"] > 0 and math.isfinite(run["lr"])):
        raise CLIError(f"--lr must be a positive number, got {run['lr']}")
    if not (run["weight_decay"] >= 0 and math.isfinite(run["weight_decay"])):
        raise CLIError(f"--weight-decay must be a number >= 0, got {run['weight_decay']}")
    if run["size"] is not None and run["size"] < 1:
        raise CLIError(f"--size must be a positive integer, got {run['size']}")
    if not 0 <= run["val_fraction"] < 1:  # checked for every --data, not only where it is used
        raise CLIError(f"--val-fraction must be in [0, 1), got {run['val_fraction']}")
    return run, other


def _stat(path: Path) -> tuple:
    st = path.stat()
    return st.st_mtime_ns, st.st_size


def _score(record: dict) -> float:
    """What "best" means: validation mean IoU, or (without validation data) the lowest loss; NaN: the worst."""
    score = record.get("val_mean_iou", -record["loss"])
    return score if score == score else -math.inf


#: The files a run writes into its folder.
RUN_FILES = ("best.pt", "last.pt", "metrics.json", "preview.png")


def _check_new_run_folder(out: Path, overwrite: bool) -> None:
    """A new run may write into ``out`` only if it holds no run files (or ``--overwrite``)."""
    if overwrite:
        return
    if (out / "last.pt").exists():
        raise CLIError(f"{out} already holds a run (last.pt): continue it with --resume {out}, or pass --overwrite")
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found:
        raise CLIError(f"{out} already holds {', '.join(found)} (not written by a run of this folder: no last.pt); "
                       "choose another --out, or pass --overwrite to replace them")


def _same_record(a: dict, b: dict) -> bool:
    return json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str)


def _check_resume_folder(folder: Path, last: dict) -> None:
    """``--resume``: the folder's best.pt must be there and belong to the same run as its last.pt."""
    best_path = folder / "best.pt"
    if not best_path.exists():
        raise CLIError(f"cannot resume {folder}: its best.pt is missing (deleted or moved?), and the run keeps the best "
                       "epoch's weights there; put it back, or start a new run (another --out, or --overwrite)")
    best = read_checkpoint(best_path)
    mixed = [k for k in set(last["run"]) | set(best.get("run") or {})
             if k not in RESUME_MAY_CHANGE and (best.get("run") or {}).get(k) != last["run"].get(k)]
    history, epoch = last["state"].get("history", []), best.get("epoch")
    if not mixed and isinstance(epoch, int) and 1 <= epoch <= len(history) and epoch <= last.get("epoch", 0):
        mixed = [] if _same_record(history[epoch - 1], best.get("metrics", {})) else ["their epoch-%d records" % epoch]
    if mixed:
        k = sorted(mixed)[0]
        what = f"{k} differ" if k.startswith("their") else (f"--{k.replace('_', '-')} {last['run'].get(k)} in last.pt, "
                                                            f"{(best.get('run') or {}).get(k)} in best.pt")
        raise CLIError(f"cannot resume {folder}: its last.pt and best.pt come from different runs ({what}); "
                       "a file was copied from another run's folder? Put back this run's own files, or start a new run "
                       "(another --out, or --overwrite)")


def _write_failed(error: OSError, target: Path, epoch: int, saved: dict) -> CLIError:
    kept = (f"{saved['folder'] / 'last.pt'} still holds epoch {saved['epoch']}: fix that (free some space), then "
            f"continue with --resume {saved['folder']}") if saved["epoch"] else \
        "nothing was saved: fix that (free some space) and run again"
    return CLIError(f"cannot write {target} after epoch {epoch}: {error.strerror or error}; {kept}")


def train_command(argv) -> int:
    """Run ``train`` with the options ``argv``; raises :class:`CLIError` for bad input."""
    run, opts = _settings(argv)
    out = Path(opts["out"])
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is not a folder (a file of that name exists); give a folder")
    device = dist.init_from_env(run["device"]) if dist.launched() else resolve_device(run["device"])
    lock = None
    try:
        rank, world = dist.rank_and_world_size()
        main_process = rank == 0
        if main_process:  # one run at a time in a folder: the lock first, then every check of its files
            lock = RunLock(out)
            try:
                lock.acquire()
            except FolderLockedError as e:
                lock = None
                raise CLIError(str(e)) from None
            if lock.stale_pid is not None:
                print(f"segedu train: note: replaced the stale lock of process {lock.stale_pid}, which no longer runs "
                      f"(a run that was killed?)", file=sys.stderr)
            for name in RUN_FILES:  # temporary files of a writer that was killed (we hold the lock: no one writes)
                for tmp in out.glob(f"{name}.*.tmp"):
                    tmp.unlink(missing_ok=True)
            if opts["resume"]:
                resume = Path(opts["resume"])
                if _stat(resume / "last.pt") != opts["last_stat"]:  # another run wrote it meanwhile: read it again
                    run, opts = _settings(argv)
                _check_resume_folder(resume, opts["last"])
                if out.resolve() != resume.resolve():
                    _check_new_run_folder(out, opts["overwrite"])
            else:
                _check_new_run_folder(out, opts["overwrite"])
        if run["batch_size"] % world:
            raise CLIError(f"--batch-size {run['batch_size']} (the global batch) must be divisible by the {world} processes")

        if not main_process:
            dist.barrier()  # rank 0 first: it may download data (isbi2012) into the cache
        train, val, info = load_data(run["data"], size=run["size"], n_train=run["n_train"], n_val=run["n_val"],
                                     val_fraction=run["val_fraction"], num_classes=run["num_classes"],
                                     binary_masks=run["binary_masks"], seed=run["seed"])
        if main_process:
            dist.barrier()
        val_images = val if val is not None else train
        preview_samples = [val_images[i][:2] for i in range(min(4, len(val_images)))]

        seed_everything(run["seed"])
        class_name, model_args = model_spec(run["model"], info["in_channels"], info["num_classes"], width=run["width"],
                                            depth=run["depth"], norm=run["norm"],
                                            deep_supervision=run["deep_supervision"], patch_size=run["patch_size"])
        model = build_model(class_name, model_args)
        if class_name == "SlidingWindowClassifier":  # chapter 1: it learns from patches around labelled pixels
            patch = run["patch_size"]
            train = CenterPixelPatches(train, patch, n=run["patches"], seed=run["seed"])
            val = CenterPixelPatches(val, patch, n=max(run["patches"] // 4, 1), seed=run["seed"] + 1, balanced=False) \
                if val is not None else None
        x = train[0][0]
        try:  # one forward pass before training: a size or channel problem is reported now, clearly
            with torch.no_grad():
                model.eval()(x[None])
        except (ValueError, TypeError) as e:
            hint = ""
            if run["model"] == "unet-valid":
                hint = (f"; pass a valid --size (python -m segedu sizes --depth {model_args['depth']} lists them) "
                        "or use --model unet")
            raise CLIError(f"the training images ({'x'.join(map(str, x.shape[-2:]))}) do not fit {run['model']}: "
                           f"{e}{hint}") from None

        state = TrainState()
        if opts["resume"]:
            last = opts["last"]
            load_weights(model, last["state_dict"], Path(opts["resume"]) / "last.pt", class_name)
            state = TrainState.from_dict(last["state"])
            if state.epoch >= run["epochs"]:
                if main_process:
                    print(f"{out}: already trained {state.epoch} epochs; pass --epochs N > {state.epoch} to train longer")
                return 0
        if main_process and opts["resume"] and out.resolve() != Path(opts["resume"]).resolve():
            best = (Path(opts["resume"]) / "best.pt").read_bytes()  # the run goes on in --out: its best so far too
            atomic_write(out / "best.pt", lambda tmp: tmp.write_bytes(best))
        saved = {"epoch": opts["last"]["epoch"] if opts["resume"] else None, "fresh": not opts["resume"],
                 "folder": Path(opts["resume"] or out)}  # where the last good last.pt is
        describe = dict(format="segedu-checkpoint/1", segedu_version=__version__, model=class_name,
                        model_args=model_args, cli_model=run["model"], in_channels=info["in_channels"],
                        num_classes=info["num_classes"], classes=info["classes"], run=run)

        def on_epoch_end(record):
            """best.pt, metrics.json, then last.pt: last.pt is the commit point, what comes before it is redone
            by --resume; a failed write (a full disk) leaves every file as it was."""
            if not main_process:
                return
            if saved["fresh"]:  # --overwrite: the earlier run's preview would describe another model
                (out / "preview.png").unlink(missing_ok=True)
                saved["fresh"] = False
            earlier = [_score(r) for r in state.history[:-1]]
            best = max(state.history, key=_score)
            target = out / "best.pt"
            try:
                if not earlier or _score(record) > max(earlier):
                    save_checkpoint(target, model, epoch=record["epoch"], metrics=record, **describe)
                target = out / "metrics.json"
                write_json(target, dict(run=run, device=str(device), world_size=world, best_epoch=best["epoch"],
                                        best=best, epochs=state.history))
                target = out / "last.pt"
                save_checkpoint(target, model, epoch=record["epoch"], metrics=record, state=state.to_dict(),
                                **describe)
            except OSError as e:
                raise _write_failed(e, target, record["epoch"], saved) from None
            saved["epoch"], saved["folder"] = record["epoch"], out

        amp = {None: "auto", True: True, False: False}[run["amp"]]
        loss = DeepSupervisionLoss(default_loss) if run["deep_supervision"] else default_loss
        history = fit(model, train, val, loss=loss, epochs=run["epochs"], batch_size=run["batch_size"], lr=run["lr"],
                      weight_decay=run["weight_decay"], device=device, amp=amp, progress=opts["progress"],
                      seed=run["seed"], num_classes=info["num_classes"], on_epoch_end=on_epoch_end, state=state,
                      distributed=True)
        if main_process:
            best_model, ckpt = load_model(out / "best.pt")
            try:
                preview(best_model, preview_samples, out / "preview.png")
            except OSError as e:
                raise CLIError(f"the run is complete and saved (best.pt, last.pt, metrics.json), but "
                               f"{out / 'preview.png'} could not be written: {e.strerror or e}") from None
            key = "val_mean_iou" if "val_mean_iou" in ckpt["metrics"] else "loss"
            print(f"trained {history.last['epoch']} epochs on {device}" + (f" x {world} processes" if world > 1 else "")
                  + f"; best {key} {ckpt['metrics'][key]:.4f} at epoch {ckpt['epoch']}; wrote {out}/best.pt, "
                  f"last.pt, metrics.json, preview.png")
        return 0
    finally:
        if lock is not None:
            lock.release()  # and the folders it created, if the run failed before writing into them
        dist.cleanup()


def train_main(argv=None) -> int:
    """``python -m segedu train ...`` (see ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        train_parser().print_help()
        return 0
    return run_command(train_command, argv, "segedu train")
