"""``python -m segedu train`` and ``python -m segedu predict``: the course's models on your data.

``train`` builds a model by name, trains it with :func:`segedu.train.fit` on a named dataset or on
a folder of your images and masks, and writes into ``--out``:

* ``metrics.json`` — the run's settings and one record per epoch, rewritten after every epoch;
* ``best.pt`` — the weights with the best validation mean IoU, plus the model's class name and
  constructor arguments, so ``predict`` (or you) can rebuild it; plain data and tensors only,
  loadable with ``torch.load(path, weights_only=True)``;
* ``last.pt`` — the latest weights with the optimizer and random-number-generator state:
  ``--resume DIR`` continues the run exactly where it stopped;
* ``preview.png`` — validation images, their masks and the best model's predictions.

Started by ``torchrun --nproc_per_node=N -m segedu train ...`` it trains data-parallel
(:mod:`segedu.distributed`); ``--batch-size`` is then the global batch, split over the processes,
and only rank 0 writes files.

``predict`` loads a checkpoint and writes a mask PNG (class indices) and a colour overlay for every
input image; ``--tiled`` segments large images tile by tile with overlap-tile
(:func:`segedu.tiling.predict_tiled`).

Bad input ends with one line on stderr and exit status 1 (``--debug`` shows the traceback).

Introduced in the appendix "Beyond the course: training on your data".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["MODELS", "DATASETS", "model_spec", "build_model", "load_model", "load_data", "segment_image",
           "train_main", "predict_main"]

#: ``--model`` names: the class each builds and what it is.
MODELS = {
    "sliding": ("SlidingWindowClassifier", "chapter 1: a patch classifier, run densely as a fully convolutional net"),
    "fcn32s": ("FCN", "chapter 2: FCN-32s"),
    "fcn16s": ("FCN", "chapter 2: FCN-16s"),
    "fcn8s": ("FCN", "chapter 2: FCN-8s"),
    "fcn": ("FCN", "chapter 2: FCN-8s"),
    "unet": ("UNet", "chapter 5: U-Net with padded ('same') convolutions: output size = input size"),
    "unet-valid": ("UNet", "chapter 5: the paper's U-Net, unpadded convolutions (input sizes 16k + 124 at depth 4)"),
    "unetpp": ("UNetPlusPlus", "chapter 6: UNet++"),
    "unetplus": ("UNetPlus", "chapter 6: UNet+"),
    "unete": ("UNetE", "chapter 6: UNet-e"),
}
#: ``--data`` names (plus ``folder:PATH``).
DATASETS = ("shapes", "cells", "isbi2012")

#: What ``train`` records about a run (and ``--resume`` reuses); the defaults of the options.
RUN_DEFAULTS = dict(model=None, data="shapes", size=None, n_train=64, n_val=16, val_fraction=0.2, num_classes=None,
                    binary_masks=False, width=None, depth=None, norm="none", deep_supervision=False, patch_size=25,
                    patches=4096, epochs=10, batch_size=8, lr=1e-3, weight_decay=0.0, seed=0, device="auto", amp=None)
OTHER_DEFAULTS = dict(progress=True, out=None, resume=None, overwrite=False, debug=False)
#: Options ``--resume`` may change (the run continues on the device it was started on unless told
#: otherwise; the same device and precision reproduce it exactly). The rest must match.
RESUME_MAY_CHANGE = ("epochs", "device", "amp")


class CLIError(Exception):
    """A problem with the command's input: reported as one line, without a traceback."""


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------

def _model_classes() -> dict:
    from .models import FCN, SlidingWindowClassifier, UNet, UNetE, UNetPlus, UNetPlusPlus

    return {c.__name__: c for c in (SlidingWindowClassifier, FCN, UNet, UNetPlusPlus, UNetPlus, UNetE)}


def _check_model_name(name: str) -> str:
    if name not in MODELS:
        raise CLIError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return name


def model_spec(name: str, in_channels: int, num_classes: int, width=None, depth=None, norm="none",
               deep_supervision: bool = False, patch_size: int = 25) -> tuple[str, dict]:
    """``(class name, constructor keyword arguments)`` of ``--model name``: what a checkpoint stores."""
    cls = MODELS[_check_model_name(name)][0]
    norm = None if norm in (None, "none") else norm
    if cls == "SlidingWindowClassifier":
        return cls, dict(in_channels=in_channels, num_classes=num_classes, patch_size=patch_size, width=width or 32)
    if cls == "FCN":
        w = width or 16
        return cls, dict(num_classes=num_classes, variant=name[3:] if name != "fcn" else "8s", in_channels=in_channels,
                         widths=[w, 2 * w, 4 * w, 8 * w, 8 * w], fc_channels=16 * w, norm=norm)
    common = dict(in_channels=in_channels, num_classes=num_classes, depth=depth or 4, base_channels=width or 16, norm=norm)
    if cls == "UNet":
        return cls, dict(common, padding="valid" if name == "unet-valid" else "same")
    return cls, dict(common, deep_supervision=bool(deep_supervision))


def build_model(class_name: str, kwargs: dict) -> nn.Module:
    """The model a checkpoint describes (only the course's classes: nothing is imported by name)."""
    classes = _model_classes()
    if class_name not in classes:
        raise CLIError(f"unknown model class {class_name!r} in the checkpoint; known: {', '.join(classes)}")
    kwargs = dict(kwargs)
    if class_name == "FCN":
        return classes[class_name](kwargs.pop("num_classes"), **kwargs)
    return classes[class_name](**kwargs)


def _checkpoint_file(path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.exists():
        raise CLIError(f"checkpoint {path} not found (give the --out folder of a training run, or a .pt file)")
    return path


def _read_checkpoint(path: Path) -> dict:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CLIError(f"cannot read checkpoint {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CLIError(f"{path} is not a segedu checkpoint (no state_dict)")
    if "model" not in ckpt or "model_args" not in ckpt:
        raise CLIError(f"{path} holds weights but not which model they belong to (it was not written by "
                       "'python -m segedu train'); rebuild the model in Python and load_state_dict it")
    return ckpt


def _load_weights(model: nn.Module, state_dict: dict, path, what: str) -> None:
    from .distributed import strip_module_prefix

    state_dict = strip_module_prefix(state_dict)
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state_dict.items()
             if k in own and own[k].shape != v.shape]
    if wrong:
        raise CLIError(f"the weights in {path} do not fit {what}: {len(wrong)} tensors differ in shape, e.g. "
                       f"{wrong[0]} (a checkpoint from another model?)")
    result = model.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CLIError(f"the weights in {path} are not those of {what} (missing {len(result.missing_keys)} tensors, "
                       f"e.g. {result.missing_keys[:2]}; unexpected {len(result.unexpected_keys)}, e.g. "
                       f"{result.unexpected_keys[:2]}): a checkpoint from another model?")


def load_model(path) -> tuple[nn.Module, dict]:
    """Rebuild the model a ``train`` checkpoint (file or run folder) describes; ``(model in eval mode, checkpoint)``."""
    path = _checkpoint_file(path)
    ckpt = _read_checkpoint(path)
    model = build_model(ckpt["model"], ckpt["model_args"])
    _load_weights(model, ckpt["state_dict"], path, f"the {ckpt['model']} it describes")
    return model.eval(), ckpt


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------

class _RandomCrops(torch.utils.data.Dataset):
    """``n`` random ``size x size`` crops of items that may differ in size (fixed by ``seed``)."""

    def __init__(self, dataset, sizes, size: int, n: int, seed: int):
        small = [i for i, (h, w) in enumerate(sizes) if min(h, w) < size]
        if small:
            names = [Path(dataset.files[i][0]).name if hasattr(dataset, "files") else str(i) for i in small[:5]]
            raise CLIError(f"--size {size} is larger than {len(small)} image(s), e.g. {', '.join(names)} "
                           f"({sizes[small[0]][0]}x{sizes[small[0]][1]}); use a smaller --size")
        rng = np.random.default_rng(seed)
        self.dataset, self.size, self.where = dataset, size, []
        for _ in range(n):
            i = int(rng.integers(len(dataset)))
            h, w = sizes[i]
            self.where.append((i, int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))))

    def __len__(self):
        return len(self.where)

    def __getitem__(self, k):
        i, y, x = self.where[k]
        return tuple(t[..., y : y + self.size, x : x + self.size] for t in self.dataset[i])


def _item_sizes(dataset) -> list:
    if hasattr(dataset, "sizes"):
        return list(dataset.sizes)
    return [tuple(dataset[i][1].shape[-2:]) for i in range(len(dataset))]


def _split(n: int, val_fraction: float, seed: int):
    if not 0 <= val_fraction < 1:
        raise CLIError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    order = np.random.default_rng([seed, 99]).permutation(n).tolist()
    n_val = min(int(round(n * val_fraction)), n - 1) if n > 1 else 0
    if val_fraction > 0 and n > 1:
        n_val = max(n_val, 1)
    return sorted(order[n_val:]), sorted(order[:n_val])


def load_data(data: str, *, size=None, n_train: int = 64, n_val: int = 16, val_fraction: float = 0.2,
              num_classes=None, binary_masks: bool = False, seed: int = 0):
    """``(train, val, info)`` for ``--data``; ``info`` has ``in_channels``, ``num_classes``, ``classes``.

    ``val`` may be ``None`` (a folder too small to split, or ``--val-fraction 0``).
    """
    from torch.utils.data import Subset

    from . import data as D

    if data == "shapes":
        base = D.Shapes(1)
        train, val = D.Shapes(n_train, size=size or 64, seed=seed), D.Shapes(n_val, size=size or 64, seed=seed + 10_000)
    elif data == "cells":
        base = D.Cells(1)
        train, val = D.Cells(n_train, size=size or 96, seed=seed), D.Cells(n_val, size=size or 96, seed=seed + 10_000)
    elif data == "isbi2012":
        train, val = D.ISBI2012(split="train"), D.ISBI2012(split="val")
        base = train
        if size:
            train = D.RandomCrops(train, size, n_train, seed=seed)
            val = D.RandomCrops(val, size, n_val, seed=seed + 10_000)
    elif data.startswith("folder:"):
        path = data[len("folder:"):]
        if not path:
            raise CLIError("--data folder:PATH needs a PATH (the folder holding images/ and masks/)")
        folder = D.ImageFolder(path, num_classes=num_classes, binary=binary_masks)
        base = folder
        train_idx, val_idx = _split(len(folder), val_fraction, seed)
        sizes = folder.sizes
        if size:
            train = _RandomCrops(Subset(folder, train_idx), [sizes[i] for i in train_idx], size, n_train, seed)
            val = _RandomCrops(Subset(folder, val_idx), [sizes[i] for i in val_idx], size, n_val, seed + 10_000) \
                if val_idx else None
        else:
            if len(set(sizes)) > 1:
                listed = sorted(set(sizes))[:3]
                raise CLIError(f"the images in {path} differ in size ({', '.join(f'{h}x{w}' for h, w in listed)}, ...): "
                               "pass --size N to train on random N x N crops")
            train = Subset(folder, train_idx)
            val = Subset(folder, val_idx) if val_idx else None
    else:
        raise CLIError(f"unknown data {data!r}; choose one of {', '.join(DATASETS)} or folder:PATH")
    if num_classes is not None and not data.startswith("folder:") and num_classes != base.num_classes:
        raise CLIError(f"--num-classes is for folder data; {data} has {base.num_classes} classes")
    info = dict(in_channels=base.in_channels, num_classes=base.num_classes, classes=list(base.CLASSES))
    return train, val, info


# --------------------------------------------------------------------------------------------
# inference
# --------------------------------------------------------------------------------------------

def _whole_image_tile(depth: int, side: int) -> int:
    """The smallest valid input of a valid-padding U-Net whose output covers ``side`` pixels."""
    from .sizes import nearest_valid_input_size, unet_output_size

    size = side
    while True:
        _, above = nearest_valid_input_size(size, depth)
        if unet_output_size(above, depth) >= side:
            return above
        size = above + 1


@torch.no_grad()
def segment_image(model: nn.Module, image: torch.Tensor, *, tiled: bool = False, tile_size=None,
                  batch_size: int = 4) -> torch.Tensor:
    """Class labels ``[H, W]`` for an image ``[C, H, W]`` of any size, whatever the model.

    Valid-padding U-Nets go through overlap-tile with mirror padding (one tile covering the whole
    image, or tiles of ``tile_size`` with ``tiled=True``); padded U-Nets / UNet++ get the image
    mirror-padded to a multiple of ``2**depth``; FCNs take any size; the sliding-window classifier
    runs as its fully convolutional form.
    """
    from .models import SlidingWindowClassifier
    from .tiling import mirror_pad, predict_tiled

    dev = next(model.parameters()).device
    model.eval()
    H, W = image.shape[-2:]
    if isinstance(model, SlidingWindowClassifier):
        scores = model.to_fcn()(image[None].to(dev))[0]
    elif getattr(model, "padding", None) == "valid":
        if tiled:
            scores = predict_tiled(model, image, tile_size=tile_size, batch_size=batch_size)
        else:
            scores = predict_tiled(model, image, tile_size=_whole_image_tile(model.depth, max(H, W)), batch_size=1)
    elif isinstance(getattr(model, "depth", None), int):  # padded U-Net family: sides divisible by 2**depth
        m = 2**model.depth
        x = mirror_pad(image[None], 0, -H % m, 0, -W % m).to(dev)
        out = model(x)
        scores = (out[-1] if isinstance(out, (list, tuple)) else out)[0, :, :H, :W]
    else:
        scores = model(image[None].to(dev))[0]
    scores = scores.float().cpu()
    return (scores[0] > 0).long() if scores.shape[0] == 1 else scores.argmax(0)


def _colour(labels: np.ndarray) -> np.ndarray:
    from .viz import CLASS_COLORS

    return CLASS_COLORS[np.asarray(labels) % len(CLASS_COLORS)]


def _rgb(image: torch.Tensor) -> np.ndarray:
    a = image.detach().cpu().numpy()
    a = np.repeat(a, 3, axis=0) if a.shape[0] == 1 else a[:3]
    return np.clip(a.transpose(1, 2, 0), 0, 1)


def overlay_image(image: torch.Tensor, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """``uint8 [H, W, 3]``: class colours blended over the image (class 0 left as it is)."""
    img = _rgb(image)
    labels = np.asarray(labels)
    fg = labels > 0
    img[fg] = (1 - alpha) * img[fg] + alpha * _colour(labels)[fg]
    return (img * 255 + 0.5).astype(np.uint8)


def _save_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    tmp = path.with_name(path.name + ".tmp.png")
    Image.fromarray(array).save(tmp)
    os.replace(tmp, path)


def save_mask(labels: np.ndarray, path: Path) -> None:
    """A mask PNG of class indices (8-bit up to 256 classes, else 16-bit): valid ``masks/`` input again."""
    labels = np.asarray(labels)
    _save_png(labels.astype(np.uint8) if labels.max(initial=0) < 256 else labels.astype(np.uint16), path)


def preview(model: nn.Module, samples, path: Path, cell: int = 128) -> None:
    """``preview.png``: one column per validation image; rows image / true mask / prediction."""
    from PIL import Image, ImageDraw

    rows = []
    for image, mask in samples:
        pred = segment_image(model, image).numpy()
        rows.append([(_rgb(image) * 255).astype(np.uint8), (_colour(mask.numpy()) * 255).astype(np.uint8),
                     (_colour(pred) * 255).astype(np.uint8)])
    label_w, gap = 80, 4
    canvas = Image.new("RGB", (label_w + len(rows) * (cell + gap), 3 * (cell + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, name in enumerate(("image", "truth", "prediction")):
        draw.text((4, r * (cell + gap) + cell // 2 - 6), name, fill="black")
        for c, panels in enumerate(rows):
            tile = Image.fromarray(panels[r]).resize((cell, cell), Image.NEAREST)
            canvas.paste(tile, (label_w + c * (cell + gap), r * (cell + gap)))
    tmp = path.with_name(path.name + ".tmp.png")
    canvas.save(tmp)
    os.replace(tmp, path)


# --------------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (and raises instead of exiting)."""

    def error(self, message):
        raise CLIError(f"{message} (see {self.prog} --help)")


def _train_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m segedu train", description="Train a model of the course on synthetic, real or your "
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
                   help="mixed precision (default: off, measured faster at these sizes; --amp uses bfloat16, or float16 on GPUs without bfloat16)")
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


def _predict_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m segedu predict",
                description="Segment images with a model trained by 'python -m segedu train'.")
    p.add_argument("--checkpoint", required=True, help="a training run's folder (its best.pt) or a .pt file")
    p.add_argument("--input", required=True, help="an image file or a folder of images (PNG, TIFF, JPEG, BMP)")
    p.add_argument("--out", required=True, help="writes OUT/masks/NAME.png (class indices) and OUT/overlays/NAME.png")
    p.add_argument("--tiled", action="store_true", help="overlap-tile (valid-padding U-Nets): images of any size in "
                   "tiles of --tile-size")
    p.add_argument("--tile-size", type=int, default=None, help="input tile side for --tiled (a valid U-Net input size; "
                   "default: at most 572)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of the overlay colours")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def _run(fn, argv, prog: str) -> int:
    """Run a command; bad input -> one line on stderr and status 1 (``--debug``: the traceback)."""
    debug = "--debug" in argv
    try:
        return fn(argv)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # noqa: BLE001 — every failure becomes one readable line
        if debug:
            raise
        known = isinstance(e, (CLIError, ValueError, TypeError, FileNotFoundError, OSError))
        text = " ".join(str(e).split()) or type(e).__name__
        hint = "" if known else f" ({type(e).__name__}; run with --debug for the traceback)"
        print(f"{prog}: error: {text}{hint}", file=sys.stderr)
        return 1


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------

def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=float))
    os.replace(tmp, path)


def _save_checkpoint(path: Path, net: nn.Module, **extra) -> None:
    """``{"state_dict": ..., **extra}`` written atomically (a temporary file, then a rename)."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"state_dict": net.state_dict(), **extra}, tmp)
    os.replace(tmp, path)


def _score(record: dict) -> float:
    return record.get("val_mean_iou", -record["loss"])


def _settings(argv) -> tuple[dict, dict]:
    """Parse ``train``'s options: ``(run settings, other options)``, applying ``--resume``."""
    args = vars(_train_parser().parse_args(argv))
    explicit = {k: v for k, v in args.items() if v is not None and (v is not False or k == "amp")}
    other = {k: args[k] if args[k] is not None else d for k, d in OTHER_DEFAULTS.items()}
    if other["resume"]:
        last = Path(other["resume"]) / "last.pt"
        if not last.exists():
            raise CLIError(f"--resume {other['resume']}: no last.pt there (give the --out folder of a training run)")
        saved = _read_checkpoint(last)
        run = dict(saved["run"])
        for k, v in explicit.items():
            if k in run and k not in RESUME_MAY_CHANGE and v != run[k]:
                raise CLIError(f"--resume {other['resume']}: that run used --{k.replace('_', '-')} {run[k]}, not {v} "
                               f"(a checkpoint from another {'model' if k == 'model' else 'run'}; only "
                               f"{', '.join('--' + x for x in RESUME_MAY_CHANGE)} may change)")
        run.update({k: explicit[k] for k in RESUME_MAY_CHANGE if k in explicit})
        other["out"] = other["out"] or other["resume"]
        other["last"] = saved
    else:
        run = {k: args[k] if args[k] is not None else d for k, d in RUN_DEFAULTS.items()}
        if run["model"] is None:
            raise CLIError("--model is required: one of " + ", ".join(MODELS))
        if other["out"] is None:
            raise CLIError("--out DIR is required (where the checkpoint, metrics and preview go)")
    _check_model_name(run["model"])
    for k in ("epochs", "batch_size", "n_train", "n_val", "patches"):
        if run[k] is None or run[k] < 1:
            raise CLIError(f"--{k.replace('_', '-')} must be a positive integer, got {run[k]}")
    if not run["lr"] > 0:
        raise CLIError(f"--lr must be > 0, got {run['lr']}")
    return run, other


def train_command(argv) -> int:
    from . import __version__
    from . import distributed as dist
    from .losses import DeepSupervisionLoss
    from .train import TrainState, default_loss, fit, resolve_device, seed_everything

    run, opts = _settings(argv)
    out = Path(opts["out"])
    if not opts["resume"] and (out / "last.pt").exists() and not opts["overwrite"]:
        raise CLIError(f"{out} already holds a run (last.pt): continue it with --resume {out}, or pass --overwrite")
    device = dist.init_from_env(run["device"]) if dist.launched() else resolve_device(run["device"])
    try:
        rank, world = dist.rank_and_world_size()
        main_process = rank == 0
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
            from .models.sliding_window import CenterPixelPatches

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
            _load_weights(model, last["state_dict"], Path(opts["resume"]) / "last.pt", class_name)
            state = TrainState.from_dict(last["state"])
            if state.epoch >= run["epochs"]:
                if main_process:
                    print(f"{out}: already trained {state.epoch} epochs; pass --epochs N > {state.epoch} to train longer")
                return 0
        if main_process:
            out.mkdir(parents=True, exist_ok=True)
        describe = dict(format="segedu-checkpoint/1", segedu_version=__version__, model=class_name,
                        model_args=model_args, cli_model=run["model"], in_channels=info["in_channels"],
                        num_classes=info["num_classes"], classes=info["classes"], run=run)

        def on_epoch_end(record):
            if not main_process:
                return
            earlier = [_score(r) for r in state.history[:-1]]
            if not earlier or _score(record) > max(earlier):
                _save_checkpoint(out / "best.pt", model, epoch=record["epoch"], metrics=record, **describe)
            _save_checkpoint(out / "last.pt", model, epoch=record["epoch"], metrics=record, state=state.to_dict(),
                            **describe)
            best = max(state.history, key=_score)
            _write_json(out / "metrics.json", dict(run=run, device=str(device), world_size=world,
                                                   best_epoch=best["epoch"], best=best, epochs=state.history))

        amp = {None: "auto", True: True, False: False}[run["amp"]]
        loss = DeepSupervisionLoss(default_loss) if run["deep_supervision"] else default_loss
        history = fit(model, train, val, loss=loss, epochs=run["epochs"], batch_size=run["batch_size"], lr=run["lr"],
                      weight_decay=run["weight_decay"], device=device, amp=amp, progress=opts["progress"],
                      seed=run["seed"], num_classes=info["num_classes"], on_epoch_end=on_epoch_end, state=state,
                      distributed=True)
        if main_process:
            best_model, ckpt = load_model(out / "best.pt")
            preview(best_model, preview_samples, out / "preview.png")
            key = "val_mean_iou" if "val_mean_iou" in ckpt["metrics"] else "loss"
            print(f"trained {history.last['epoch']} epochs on {device}" + (f" x {world} processes" if world > 1 else "")
                  + f"; best {key} {ckpt['metrics'][key]:.4f} at epoch {ckpt['epoch']}; wrote {out}/best.pt, "
                  f"last.pt, metrics.json, preview.png")
        return 0
    finally:
        dist.cleanup()


def train_main(argv=None) -> int:
    """``python -m segedu train ...`` (see ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        _train_parser().print_help()
        return 0
    return _run(train_command, argv, "segedu train")


# --------------------------------------------------------------------------------------------
# predict
# --------------------------------------------------------------------------------------------

def predict_command(argv) -> int:
    from .data import IMAGE_EXTENSIONS, _list_images, read_image
    from .train import resolve_device

    args = _predict_parser().parse_args(argv)
    source = Path(args.input)
    if source.is_dir():
        files = _list_images(source)
        if not files:
            raise CLIError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) in {source}")
    elif source.is_file():
        files = [source]
    else:
        raise CLIError(f"input {source} does not exist (give an image file or a folder of images)")
    if args.tile_size is not None and not args.tiled:
        raise CLIError("--tile-size goes with --tiled")
    model, ckpt = load_model(args.checkpoint)
    if args.tiled and getattr(model, "padding", None) != "valid":
        print(f"segedu predict: note: --tiled (overlap-tile) is for valid-padding U-Nets; this {ckpt['model']} "
              "segments whole images of any size", file=sys.stderr)
    device = resolve_device(args.device)
    model.to(device)
    out = Path(args.out)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    (out / "overlays").mkdir(parents=True, exist_ok=True)
    items = files
    if args.progress and len(files) > 1:
        from tqdm.auto import tqdm

        items = tqdm(files, desc="predict", leave=False, mininterval=0.5)
    for path in items:
        try:
            image = read_image(path, channels=ckpt["in_channels"])
        except Exception as e:
            raise CLIError(f"cannot read image {path}: {type(e).__name__}") from e
        try:
            labels = segment_image(model, image, tiled=args.tiled, tile_size=args.tile_size,
                                   batch_size=args.batch_size).numpy()
        except ValueError as e:
            raise CLIError(f"{path.name}: {e}") from e
        save_mask(labels, out / "masks" / f"{path.stem}.png")
        _save_png(overlay_image(image, labels, args.alpha), out / "overlays" / f"{path.stem}.png")
    print(f"wrote {len(files)} mask(s) to {out / 'masks'} and overlay(s) to {out / 'overlays'}")
    return 0


def predict_main(argv=None) -> int:
    """``python -m segedu predict ...`` (see ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        _predict_parser().print_help()
        return 0
    return _run(predict_command, argv, "segedu predict")
