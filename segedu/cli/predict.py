"""``python -m segedu predict``: segment images with a model trained by ``python -m segedu train``.

The checkpoint rebuilds its own model (:func:`segedu.cli.registry.load_model`), so the command
needs only the file and the images. Each image, of any size, is segmented whole by
:func:`segedu.inference.segment_image` (``--tiled``: tile by tile with overlap-tile, for large
images and valid-padding U-Nets), and two files are written for it: ``masks/NAME.png``, the class
indices, and ``overlays/NAME.png``, the classes coloured over the image
(:mod:`segedu.cli.outputs`). A multi-page input (a TIFF stack, the format of the ISBI challenge)
has every page segmented, and gives a stack: ``masks/NAME.tif`` and ``overlays/NAME.tif``.

Nothing is overwritten that ``predict`` did not write:

* inputs that share a name without extension (``scan.png`` and ``scan.tif``) would write the same
  mask, so they are refused, before anything is written;
* ``OUT/predict.json`` lists the files predict wrote into ``OUT`` with their SHA-256. Predicting
  into ``OUT`` again replaces those, but if ``OUT/masks`` or ``OUT/overlays`` holds any other image
  (the ground truth of a data set, a mask corrected by hand since) the command refuses unless
  ``--overwrite`` is given, and then replaces only the files of the same names.

Every file is written atomically; an image that cannot be read (damaged, NaN pixels, values out of
range, see :func:`segedu.data.read_image`) is one line naming it.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
import time
from pathlib import Path

import numpy as np

from ..checkpoint import FolderLockedError, RunLock, write_json
from ..data.folder import count_pages, find_images, list_images, read_image
from ..inference import segment_image
from ..runtime import resolve_device
from .errors import CLIError, CLIParser, run_command
from .outputs import overlay_image, save_mask, save_png, save_stack
from .registry import load_model

__all__ = ["MANIFEST", "predict_parser", "predict_command", "predict_main"]

#: The file in ``--out`` listing what predict wrote there (name -> input and SHA-256).
MANIFEST = "predict.json"
_FORMAT = "segedu-predict/1"


def predict_parser() -> argparse.ArgumentParser:
    """``predict``'s options."""
    p = CLIParser(prog="python -m segedu predict",
                  description="Segment images with a model trained by 'python -m segedu train'.")
    p.add_argument("--checkpoint", required=True, help="a training run's folder (its best.pt) or a .pt file")
    p.add_argument("--input", required=True, help="an image file or a folder of images (PNG, TIFF, JPEG, BMP; "
                   "multi-page TIFFs: every page)")
    p.add_argument("--out", required=True, help="writes OUT/masks/NAME.png (class indices) and OUT/overlays/NAME.png "
                   "(NAME.tif for a multi-page input), and OUT/predict.json, the list of what it wrote")
    p.add_argument("--overwrite", action="store_true", help="replace files in OUT/masks and OUT/overlays that "
                   "predict did not write (e.g. a data set's own masks), when they have the names of its outputs")
    p.add_argument("--tiled", action="store_true", help="the U-Net family: images of any size in tiles of "
                   "--tile-size (overlap-tile), in bounded memory")
    p.add_argument("--tile-size", type=int, default=None, help="input tile side for --tiled (a valid U-Net input size; "
                   "default: at most 572)")
    p.add_argument("--batch-size", type=int, default=4, help="tiles per forward pass")
    p.add_argument("--device", default="auto", help="auto (default), cpu, cuda, mps")
    p.add_argument("--alpha", type=float, default=0.5, help="opacity of the overlay colours, 0 to 1")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return p


def _inputs(source: Path) -> list[tuple[Path, int]]:
    """``(file, number of pages)`` of every input image; unreadable files are an error naming them."""
    if source.is_dir():
        try:
            files = find_images(source)
        except FileNotFoundError as e:
            raise CLIError(str(e)) from None
    elif source.is_file():
        files = [source]
    else:
        raise CLIError(f"input {source} does not exist (give an image file or a folder of images)")
    out = []
    for path in files:
        try:
            out.append((path, count_pages(path)))
        except (ValueError, OSError) as e:
            raise CLIError(f"cannot read image {path}: {str(e).split(' as an image: ', 1)[-1]}") from None
    return out


def _output_names(inputs) -> list[str]:
    """The file name each input's mask and overlay get; two inputs getting one name is an error."""
    names, seen = [], {}
    for path, pages in inputs:
        name = path.stem + (".tif" if pages > 1 else ".png")
        key = name.casefold()  # scan.png and SCAN.png are one file on macOS and Windows
        if key in seen:
            raise CLIError(f"the inputs {seen[key].name} and {path.name} have the same name without extension: both "
                           f"masks would be masks/{name}; rename one, or predict them into different --out folders")
        seen[key] = path
        names.append(name)
    return names


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_manifest(out: Path) -> dict | None:
    """``{relative path: entry}`` of ``OUT/predict.json``; ``{}`` if there is none; ``None`` if it is not predict's."""
    import json

    path = out / MANIFEST
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
        if data.get("format") == _FORMAT and isinstance(data.get("files"), dict):
            return dict(data["files"])
    except (ValueError, OSError, AttributeError):
        pass
    return None


def _check_out(out: Path, overwrite: bool) -> dict:
    """Refuse an ``--out`` holding files predict did not write (unless ``overwrite``); the manifest's entries."""
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is not a folder (a file of that name exists); give a folder")
    manifest = _read_manifest(out)
    if manifest is None:
        if not overwrite:
            raise CLIError(f"{out / MANIFEST} exists but was not written by predict: choose another --out, or pass "
                           "--overwrite to replace it")
        manifest = {}
    foreign = []
    for kind in ("masks", "overlays"):
        if (out / kind).is_dir():
            for p in list_images(out / kind):
                rel = f"{kind}/{p.name}"
                if manifest.get(rel, {}).get("sha256") != _sha256(p):
                    foreign.append(rel)
    if foreign and not overwrite:
        shown = ", ".join(foreign[:4]) + (f" and {len(foreign) - 4} more" if len(foreign) > 4 else "")
        raise CLIError(f"{out} already holds {len(foreign)} image file(s) not written by predict, or changed since "
                       f"({shown}): choose another --out, or pass --overwrite to replace those with the names of this "
                       "run's outputs (the others are left as they are)")
    return {k: v for k, v in manifest.items() if (out / k).exists()}


def _write(target: Path, write) -> None:
    try:
        write()
    except OSError as e:
        raise CLIError(f"cannot write {target}: {e.strerror or e}; the files written before it are complete (listed "
                       f"in {target.parent.parent / MANIFEST}): fix that, then run the command again") from None


def predict_command(argv) -> int:
    """Run ``predict`` with the options ``argv``; raises :class:`CLIError` for bad input."""
    args = predict_parser().parse_args(argv)
    for flag in ("checkpoint", "input", "out"):
        if not getattr(args, flag).strip():
            raise CLIError(f"--{flag} needs a path, got an empty name")
    if args.tile_size is not None and not args.tiled:
        raise CLIError("--tile-size goes with --tiled")
    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be a positive integer, got {args.batch_size}")
    if not (math.isfinite(args.alpha) and 0 <= args.alpha <= 1):
        raise CLIError(f"--alpha (the opacity of the overlay colours) must be between 0 and 1, got {args.alpha}")
    inputs = _inputs(Path(args.input))
    names = _output_names(inputs)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is not a folder (a file of that name exists); give a folder")
    lock = RunLock(out)
    try:  # one command at a time writes into a folder
        try:
            lock.acquire()
        except FolderLockedError as e:
            raise CLIError(str(e)) from None
        if lock.stale_pid is not None:
            print(f"segedu predict: note: replaced the stale lock of process {lock.stale_pid}, which no longer runs",
                  file=sys.stderr)
        return _predict(args, inputs, names, out, _check_out(out, args.overwrite))
    finally:
        lock.release()


def _predict(args, inputs, names, out: Path, manifest: dict) -> int:
    """Segment every input (page) and write its mask and overlay into ``out`` (locked, checked)."""
    model, ckpt = load_model(args.checkpoint)
    if args.tiled and getattr(model, "padding", None) not in ("valid", "same"):
        print(f"segedu predict: note: --tiled changes nothing for this {ckpt['model']}: it segments whole images of "
              "any size (tiling is for the U-Net family)", file=sys.stderr)
    device = resolve_device(args.device)
    model.to(device)
    new_folders = [out / kind for kind in ("masks", "overlays") if not (out / kind).exists()]
    for folder in new_folders:
        folder.mkdir()
    items = list(zip(inputs, names))
    if args.progress and len(items) > 1:
        from tqdm.auto import tqdm

        items = tqdm(items, desc="predict", leave=False, mininterval=0.5)
    written, saved_at, pages_total = dict(manifest), time.monotonic(), 0
    try:
        for (path, pages), name in items:
            masks, overlays = [], []
            for page in range(pages):
                try:
                    image = read_image(path, channels=ckpt["in_channels"], page=page if pages > 1 else None)
                except (ValueError, OSError) as e:
                    raise CLIError(f"cannot read image {path}: {str(e).split(' as an image: ', 1)[-1]}"
                                   if " as an image: " in str(e) else str(e)) from None
                try:
                    labels = segment_image(model, image, tiled=args.tiled, tile_size=args.tile_size,
                                           batch_size=args.batch_size).numpy()
                except ValueError as e:
                    raise CLIError(f"{path.name}: {e}") from e
                masks.append(labels)
                overlays.append(overlay_image(image, labels, args.alpha))
            for kind, arrays in (("masks", masks), ("overlays", overlays)):
                target = out / kind / name
                if pages > 1:
                    if kind == "masks":
                        arrays = [a.astype(np.uint16 if max(m.max(initial=0) for m in masks) >= 256 else np.uint8)
                                  for a in arrays]
                    _write(target, lambda: save_stack(arrays, target))
                elif kind == "masks":
                    _write(target, lambda: save_mask(arrays[0], target))
                else:
                    _write(target, lambda: save_png(arrays[0], target))
                written[f"{kind}/{name}"] = dict(input=str(path.resolve()), pages=pages, sha256=_sha256(target))
            pages_total += pages
            if time.monotonic() - saved_at > 2:  # a run stopped half-way still lists what it wrote
                _save_manifest(out, written, args.checkpoint)
                saved_at = time.monotonic()
    except BaseException:
        if written != manifest:
            _save_manifest(out, written, args.checkpoint, quiet=True)
        for folder in new_folders:  # left empty: nothing was written
            if not any(folder.iterdir()):
                folder.rmdir()
        raise
    if written != manifest:
        _save_manifest(out, written, args.checkpoint)
    stacks = f" ({pages_total} pages)" if pages_total != len(inputs) else ""
    print(f"wrote {len(inputs)} mask(s){stacks} to {out / 'masks'} and overlay(s) to {out / 'overlays'}")
    return 0


def _save_manifest(out: Path, files: dict, checkpoint, quiet: bool = False) -> None:
    try:
        write_json(out / MANIFEST, dict(format=_FORMAT, checkpoint=str(checkpoint), files=files))
    except OSError as e:
        if not quiet:
            raise CLIError(f"cannot write {out / MANIFEST}: {e.strerror or e}") from None


def predict_main(argv=None) -> int:
    """``python -m segedu predict ...`` (see ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        predict_parser().print_help()
        return 0
    return run_command(predict_command, argv, "segedu predict")
