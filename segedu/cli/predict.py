"""``python -m segedu predict``: segment images with a model trained by ``python -m segedu train``.

The checkpoint rebuilds its own model (:func:`segedu.cli.registry.load_model`), so the command
needs only the file and the images. Each image, of any size, is segmented whole by
:func:`segedu.inference.segment_image` (``--tiled``: tile by tile with overlap-tile, for large
images and valid-padding U-Nets), and two PNGs are written for it: ``masks/NAME.png``, the class
indices, and ``overlays/NAME.png``, the classes coloured over the image
(:mod:`segedu.cli.outputs`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data import IMAGE_EXTENSIONS, list_images, read_image
from ..inference import segment_image
from ..runtime import resolve_device
from .errors import CLIError, CLIParser, run_command
from .outputs import overlay_image, save_mask, save_png
from .registry import load_model

__all__ = ["predict_parser", "predict_command", "predict_main"]


def predict_parser() -> argparse.ArgumentParser:
    """``predict``'s options."""
    p = CLIParser(prog="python -m segedu predict",
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


def predict_command(argv) -> int:
    """Run ``predict`` with the options ``argv``; raises :class:`CLIError` for bad input."""
    args = predict_parser().parse_args(argv)
    source = Path(args.input)
    if source.is_dir():
        files = list_images(source)
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
        save_png(overlay_image(image, labels, args.alpha), out / "overlays" / f"{path.stem}.png")
    print(f"wrote {len(files)} mask(s) to {out / 'masks'} and overlay(s) to {out / 'overlays'}")
    return 0


def predict_main(argv=None) -> int:
    """``python -m segedu predict ...`` (see ``--help``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        predict_parser().print_help()
        return 0
    return run_command(predict_command, argv, "segedu predict")
