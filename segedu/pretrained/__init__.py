"""Trained reference models: what the course's networks reach when they are trained to the end.

A chapter's quick run trains for a minute or two; the reference models were trained for about an
hour each (on a 2-core CPU, from scratch) with the recipes of :mod:`segedu.pretrained.recipes`,
so a reader sees a converged result at once and can measure the gap to their own run::

    from segedu import pretrained
    pretrained.available()                      # ['unet-camvid', 'unet-isbi2012']
    model = pretrained.load("unet-camvid")      # an eval-mode UNet on the CPU
    labels = pretrained.predict("unet-camvid", images)   # [N, H, W], images as CamVid returns them
    pretrained.record("unet-camvid")            # how it was trained, on what, and its held-out scores

The weights ship with the package (``weights/NAME.pt``, float16 to stay under 10 MB, loaded with
``weights_only=True``) next to their record (``weights/NAME.json``), which holds the SHA-256 of the
weights file: :func:`load` refuses a file that does not match. ``make pretrained`` (or
``python -m segedu.pretrained train NAME``) trains them again and ``python -m segedu.pretrained
evaluate NAME`` measures a checkpoint on its held-out data; ``tests/test_pretrained.py`` checks
that each checkpoint still scores what its record says.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from .recipes import RECIPES, build_model
from .scoring import scaled_scores as _scaled_scores

__all__ = ["available", "load", "predict", "record", "evaluate", "save", "weights_path", "class_offsets",
           "ChecksumError"]

WEIGHTS = Path(__file__).parent / "weights"


class ChecksumError(ValueError):
    """A weights file whose SHA-256 is not the one its record names."""


def available() -> list[str]:
    """The names of the reference models whose weights ship with this copy of the package."""
    return sorted(name for name in RECIPES if (WEIGHTS / f"{name}.pt").is_file())


def _check_name(name: str) -> None:
    if name not in RECIPES:
        raise ValueError(f"unknown reference model {name!r}; available: {available()}")
    if not (WEIGHTS / f"{name}.pt").is_file():
        raise FileNotFoundError(f"the weights of {name!r} are missing from {WEIGHTS}; train them with "
                                f"`python -m segedu.pretrained train {name}` (or `make pretrained`)")


def weights_path(name: str) -> Path:
    return WEIGHTS / f"{name}.pt"


def record(name: str) -> dict:
    """The training record of ``name``: recipe, command, seconds, machine, held-out scores, SHA-256."""
    _check_name(name)
    return json.loads((WEIGHTS / f"{name}.json").read_text())


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load(name: str, device="cpu", path=None) -> torch.nn.Module:
    """The reference model ``name`` in eval mode, its weights verified against the record's SHA-256.

    ``path`` loads another weights file of the same recipe (e.g. one you trained) without the
    checksum test.
    """
    _check_name(name)
    file = Path(path) if path is not None else weights_path(name)
    if path is None:
        expected = record(name)["sha256"]
        actual = _sha256(file)
        if actual != expected:
            raise ChecksumError(f"{file}: SHA-256 {actual} does not match the record's {expected}; the file was "
                                "changed or damaged. Reinstall segedu, or retrain it with `make pretrained`")
    state = torch.load(file, map_location="cpu", weights_only=True)
    model = build_model(RECIPES[name])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.to(device).eval()


def save(model: torch.nn.Module, name: str, train_record: dict, folder=None) -> Path:
    """Write ``model``'s weights in float16 and its record (with the file's SHA-256) under ``folder``."""
    from ..checkpoint import atomic_write, write_json

    folder = Path(folder) if folder is not None else WEIGHTS
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().half() if v.is_floating_point() else v.detach() for k, v in model.state_dict().items()}
    path = folder / f"{name}.pt"
    atomic_write(path, lambda p: torch.save(state, p))
    write_json(folder / f"{name}.json", {**train_record, "name": name, "sha256": _sha256(path),
                                         "bytes": path.stat().st_size})
    return path


_MODELS: dict = {}


def class_offsets(name: str):
    """The per-class score offsets of the shipped ``name`` (added to the scores before the argmax), or None.

    Both reference models have them, because both losses tilt the network towards some classes:
    ``unet-isbi2012``'s weight map's border term (w0 = 10) makes it draw membranes wider than the
    truth's (an offset on the cell score, chosen on the training slices 0-23); ``unet-camvid``'s
    median-frequency weights make it draw the rare classes where they are not (one offset per class,
    chosen on the val split). The held-out data (slices 24-29, the test split) never took part. The
    record's ``calibration`` says how they were chosen.
    """
    _check_name(name)
    offsets = record(name).get("class_offsets")
    return None if offsets is None else list(offsets)


@torch.no_grad()
def predict(name: str, images, *, model: torch.nn.Module | None = None, batch_size: int = 4,
            offsets="record") -> torch.Tensor:
    """Labels ``[N, H, W]`` for ``images`` ``[N, C, H, W]`` (or one ``[C, H, W]``), as the data set returns them.

    ``unet-isbi2012`` segments each whole slice by overlap-tile (labels: 0 = membrane, 1 = cell,
    as :class:`~segedu.data.ISBI2012`); ``unet-camvid`` scales each frame to the half size it was
    trained at, mirror-pads it to a multiple of 16, and upsamples its scores back to the frame's
    own size before the argmax (labels 0..10, :attr:`~segedu.data.CamVid.CLASSES`).

    ``offsets``: per-class numbers added to the scores before the argmax; ``"record"`` (default)
    takes the shipped model's :func:`class_offsets` (none for ``unet-camvid``), ``None`` adds none.
    """
    if model is None:
        if name not in _MODELS:
            _MODELS[name] = load(name)
        model = _MODELS[name]
    elif name not in RECIPES:
        raise ValueError(f"unknown reference model {name!r}; available: {available()}")
    if not torch.is_tensor(images) or images.dim() not in (3, 4) or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor [N, C, H, W] or [C, H, W] (as the data set returns them), "
                         f"got {getattr(images, 'dtype', type(images))} {tuple(getattr(images, 'shape', ()))}")
    single = images.dim() == 3
    images = images[None] if single else images
    c = RECIPES[name].model["in_channels"]
    if images.shape[1] != c:
        raise ValueError(f"{name} takes images with {c} channel(s), got {images.shape[1]} (shape {tuple(images.shape)})")
    if isinstance(offsets, str):
        if offsets != "record":
            raise ValueError(f"offsets must be 'record', None or one number per class, got {offsets!r}")
        offsets = class_offsets(name) if (WEIGHTS / f"{name}.json").is_file() else None
    bias = None if offsets is None else torch.as_tensor(offsets, dtype=torch.float32)[:, None, None]
    dev = next(model.parameters()).device
    if RECIPES[name].model["padding"] == "valid":
        labels = torch.stack([_tiled_labels(model, image.to(dev), bias).cpu() for image in images])
    else:
        labels = torch.cat([_scaled_labels(model, images[i:i + batch_size].to(dev), RECIPES[name].scale, bias).cpu()
                            for i in range(0, len(images), batch_size)])
    return labels[0] if single else labels


def _tiled_labels(model, image: torch.Tensor, bias=None) -> torch.Tensor:
    """Overlap-tile with one tile that covers the whole image (valid-padding models), then the argmax."""
    from ..sizes import covering_input_size
    from ..tiling import check_image, predict_tiled

    check_image(image, model.in_channels)
    model.eval()
    scores = predict_tiled(model, image, tile_size=covering_input_size(max(image.shape[-2:]), model.depth),
                           batch_size=1).float().cpu()
    return (scores if bias is None else scores + bias).argmax(0)


def _scaled_labels(model, x: torch.Tensor, scale: float, bias=None) -> torch.Tensor:
    """Argmax of the scores at ``scale``, upsampled to the input's size (same-padding models)."""
    scores = F.interpolate(_scaled_scores(model, x, scale), size=x.shape[-2:], mode="bilinear", align_corners=False)
    return (scores if bias is None else scores + bias.to(scores.device)).argmax(1)


def evaluate(name: str, *, model: torch.nn.Module | None = None, root=None, progress: bool = True,
             offsets="record") -> dict:
    """Held-out scores of ``name`` (the shipped weights, or ``model``), measured with the course's metrics.

    ``unet-isbi2012``: slices 24-29, whole: membrane Dice and IoU, pixel error, and the ISBI
    challenge's Rand error and variation of information (mean over the slices).
    ``unet-camvid``: the 233 test frames at full 360x480 size, unlabelled pixels ignored: IoU of
    each class and its mean, pixel accuracy, and the confusion matrix (rows: true class).
    """
    from tqdm.auto import tqdm

    from .. import metrics as M

    model = model if model is not None else load(name)
    if name == "unet-isbi2012":
        from ..data import ISBI2012

        data = ISBI2012(root=root, split="val")
        conf = torch.zeros(2, 2, dtype=torch.long)
        challenge = []
        for k in tqdm(range(len(data)), desc=f"{name} slices 24-29", disable=not progress):
            image, mask = data[k]
            pred = predict(name, image, model=model, offsets=offsets)
            conf += M.confusion_matrix(pred[None], mask[None], 2)
            challenge.append(M.isbi_challenge_scores(pred.numpy() == 1, mask.numpy() == 1))
        iou, dice = M.iou_from_confusion(conf).tolist(), M.dice_from_confusion(conf).tolist()
        scores = {"membrane_dice": dice[0], "membrane_iou": iou[0], "pixel_accuracy": _accuracy(conf)}
        scores.update({key: sum(c[key] for c in challenge) / len(challenge) for key in challenge[0]})
        return {"held_out": "ISBI 2012 slices 24-29, whole (overlap-tile)", **_rounded(scores)}
    if name == "unet-camvid":
        from ..data import CamVid

        data = CamVid("test", root=root)
        conf = torch.zeros(11, 11, dtype=torch.long)
        for i in tqdm(range(0, len(data), 8), desc=f"{name} test", disable=not progress):
            batch = [data[j] for j in range(i, min(i + 8, len(data)))]
            images, masks = torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])
            conf += M.confusion_matrix(predict(name, images, model=model, offsets=offsets), masks, 11,
                                       ignore_index=CamVid.IGNORE_INDEX)
        iou = M.iou_from_confusion(conf).tolist()
        scores = {"mean_iou": sum(iou) / len(iou), "pixel_accuracy": _accuracy(conf),
                  "class_iou": dict(zip(CamVid.CLASSES, iou))}
        return {"held_out": "CamVid test split (233 frames, 360x480, unlabelled ignored)", **_rounded(scores),
                "confusion": conf.tolist()}
    raise ValueError(f"unknown reference model {name!r}; available: {sorted(RECIPES)}")


def _accuracy(conf: torch.Tensor) -> float:
    return float(conf.diag().sum() / conf.sum())


def _rounded(scores: dict) -> dict:
    return {k: ({kk: round(vv, 6) for kk, vv in v.items()} if isinstance(v, dict) else round(v, 6))
            for k, v in scores.items()}
