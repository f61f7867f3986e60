"""How the reference models were trained: one recipe per model, short enough to read in one go.

Each recipe names its network, its data, its augmentation, its loss and its schedule, and
:func:`train` runs it: plain mini-batch steps (:func:`segedu.train.train_step`, the heart of
``fit``) with AdamW and a one-cycle learning rate, which is what a reference run wants and what
``fit`` (Adam, a fixed rate: the chapters' quick runs) does not do.

Both train with the forward pass in bfloat16 autocast (``amp="bfloat16"``): on a CPU with AMX or
AVX-512 BF16 units it ran 2.2 times (16 base channels) to 4 times (32) faster than float32 here,
which paid for a wider network and twice the steps; the weights, the optimiser and the loss stay
float32.

``unet-isbi2012``: the U-Net paper's recipe on ISBI 2012 slices 0-23: a valid-padding U-Net
(narrower than the paper's: 24 base channels instead of 64, so the checkpoint stays under 10 MB),
input tiles of 380x380 (x = 16k + 124) cut from the mirror-padded slices, so every pixel of a
slice can be an output pixel (overlap-tile), random flips and the elastic deformation, and the
loss weighted by the paper's weight map (``w0 = 10``, ``sigma = 5``, cells = connected cell
interiors; without the class-balancing term, see the recipe). Held out: slices 24-29, whole,
segmented by overlap-tile.

``unet-camvid``: a same-padding U-Net with batch norm on CamVid's train split (367 frames), at
half resolution (180x240: four times less compute per frame than full size), random
scaling, 176x176 crops, flips and a little brightness/contrast jitter, cross entropy weighted by
the median-frequency weights of the train split with the unlabelled pixels ignored. Predictions
are made at half resolution and their scores upsampled to the full 360x480 frame, so the test
scores are measured against the original labels.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from ..models import UNet
from ..train import train_step

__all__ = ["Recipe", "RECIPES", "build_model", "train", "calibrate"]


@dataclass(frozen=True)
class Recipe:
    name: str
    model: dict                 # UNet(**model)
    steps: int
    batch_size: int
    lr: float                   # the one-cycle schedule's peak
    weight_decay: float
    crop: int                   # training input side
    scale: float = 1.0          # frames are trained on and predicted at this scale of their full size
    seed: int = 0
    amp: str | None = None      # "bfloat16": the forward pass in bfloat16 autocast (2-4x faster on CPUs with AMX)
    extra: dict = field(default_factory=dict)


RECIPES = {
    "unet-isbi2012": Recipe(
        name="unet-isbi2012",
        model=dict(in_channels=1, num_classes=2, depth=4, base_channels=24, padding="valid", norm="batch"),
        steps=3000, batch_size=2, lr=2e-3, weight_decay=1e-4, crop=380, amp="bfloat16",
        # class_balance=False: the weight map's border term without its class-balancing w_c. With
        # w_c (the paper's equation 2 in full) a first run over-predicted the membrane (29% of the
        # held-out pixels against 18% true; membrane Dice 0.745): w_c scales the membrane's loss by
        # about 3.4, and the argmax follows (see the record's "earlier_runs").
        # calibrate: the weight map's border term (w0 = 10) makes the network draw membranes wider than
        # the truth's (26% of the held-out pixels against 20%); an offset added to the cell score,
        # chosen on the training slices by membrane Dice, corrects the bias (see calibrate()).
        extra=dict(w0=10.0, sigma=5.0, class_balance=False, elastic_grid=3, elastic_sigma=10.0,
                   calibrate="membrane_dice")),
    "unet-camvid": Recipe(
        name="unet-camvid",
        model=dict(in_channels=3, num_classes=11, depth=4, base_channels=24, padding="same", norm="batch"),
        steps=6000, batch_size=8, lr=3e-3, weight_decay=1e-4, crop=176, scale=0.5, amp="bfloat16",
        # calibrate: median-frequency weights make the network draw the rare classes where they are not
        # (chapter 7 measures it); per-class offsets chosen on the val split correct it (see calibrate()).
        extra=dict(scale_jitter=(0.75, 1.5), brightness=0.2, contrast=0.2, calibrate="mean_iou_val")),
}


def build_model(recipe: Recipe) -> UNet:
    return UNet(**recipe.model)


# ---------------------------------------------------------------------------------------------
# ISBI 2012: overlap-tile training with the weight map
# ---------------------------------------------------------------------------------------------

def _isbi_tensors(recipe: Recipe, root=None):
    """Slices 0-23 mirror-padded by the network's margin: images, labels, weight maps."""
    from scipy import ndimage

    from ..data import ISBI2012
    from ..losses import unet_weight_map
    from ..sizes import unet_output_size
    from ..tiling import mirror_pad

    data = ISBI2012(root=root, split="train")
    margin = (recipe.crop - unet_output_size(recipe.crop, recipe.model["depth"])) // 2  # 92 for 380 -> 196
    xs, ys, ws = [], [], []
    for image, mask in (data[i] for i in range(len(data))):
        cells, _ = ndimage.label(mask.numpy() == 1)  # instances: the connected cell interiors
        w = torch.as_tensor(unet_weight_map(cells, w0=recipe.extra["w0"], sigma=recipe.extra["sigma"],
                                            class_balance=recipe.extra["class_balance"]),
                            dtype=torch.float32)
        xs.append(mirror_pad(image, margin, margin, margin, margin))
        ys.append(mirror_pad(mask[None].float(), margin, margin, margin, margin)[0].long())
        ws.append(mirror_pad(w[None], margin, margin, margin, margin)[0])
    return torch.stack(xs), torch.stack(ys), torch.stack(ws)


def _isbi_batches(recipe: Recipe, generator: torch.Generator, root=None):
    from ..data import BatchAugment

    x, y, w = _isbi_tensors(recipe, root)
    augment = BatchAugment(crop=recipe.crop, flips=True, elastic=True, grid=recipe.extra["elastic_grid"],
                           sigma=recipe.extra["elastic_sigma"], seed=int(torch.randint(2**31, (1,), generator=generator)))
    while True:
        idx = torch.randint(len(x), (recipe.batch_size,), generator=generator)
        images, masks, weights = augment(x[idx], y[idx], w[idx])
        yield images, [masks.long(), weights]


def _isbi_loss(output, mask, weight):
    from ..losses import pixel_cross_entropy

    return pixel_cross_entropy(output, mask, weight)


# ---------------------------------------------------------------------------------------------
# CamVid: half resolution, scale jitter, class weights, unlabelled ignored
# ---------------------------------------------------------------------------------------------

def _camvid_batches(recipe: Recipe, generator: torch.Generator, root=None):
    from ..data import CamVid

    data = CamVid("train", root=root)
    frames = torch.stack([data[i][0] for i in range(len(data))])       # [367, 3, 360, 480]
    labels = torch.stack([data[i][1] for i in range(len(data))])       # [367, 360, 480]
    lo, hi = recipe.extra["scale_jitter"]
    c = recipe.crop
    while True:
        idx = torch.randint(len(frames), (recipe.batch_size,), generator=generator)
        s = recipe.scale * math.exp(float(torch.empty(1).uniform_(math.log(lo), math.log(hi), generator=generator)))
        h, w = max(c, round(360 * s)), max(c, round(480 * s))
        x = F.interpolate(frames[idx], size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        y = F.interpolate(labels[idx, None].float(), size=(h, w), mode="nearest")[:, 0].long()
        top = torch.randint(h - c + 1, (recipe.batch_size,), generator=generator)
        left = torch.randint(w - c + 1, (recipe.batch_size,), generator=generator)
        x = torch.stack([x[k, :, t:t + c, l:l + c] for k, (t, l) in enumerate(zip(top.tolist(), left.tolist()))])
        y = torch.stack([y[k, t:t + c, l:l + c] for k, (t, l) in enumerate(zip(top.tolist(), left.tolist()))])
        flip = torch.rand(recipe.batch_size, generator=generator) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None], y.flip(-1), y)
        b = 1 + recipe.extra["brightness"] * (2 * torch.rand(recipe.batch_size, 1, 1, 1, generator=generator) - 1)
        k = 1 + recipe.extra["contrast"] * (2 * torch.rand(recipe.batch_size, 1, 1, 1, generator=generator) - 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = ((x - mean) * k + mean * b).clamp(0, 1)
        yield x.contiguous(), [y]


def _camvid_loss(class_weights):
    from ..data import CamVid
    from ..losses import pixel_cross_entropy

    def loss(output, mask):
        return pixel_cross_entropy(output, mask, class_weights=class_weights, ignore_index=CamVid.IGNORE_INDEX)

    return loss


# ---------------------------------------------------------------------------------------------
# the loop
# ---------------------------------------------------------------------------------------------

def train(name: str, *, steps: int | None = None, root=None, progress: bool = True, log=print):
    """Train reference model ``name`` from scratch on the CPU; returns ``(model, record)``.

    ``steps`` overrides the recipe's (for a quick check); the record holds the recipe, the
    training loss every 100 steps, the seconds and the machine.
    """
    from tqdm.auto import tqdm

    from ..runtime import hardware, seed_everything

    recipe = RECIPES[name]
    steps = steps or recipe.steps
    seed_everything(recipe.seed)
    generator = torch.Generator().manual_seed(recipe.seed)
    model = build_model(recipe).train().to(memory_format=torch.channels_last)  # the faster layout on the CPU
    if name == "unet-isbi2012":
        batches, loss = _isbi_batches(recipe, generator, root), _isbi_loss
    else:
        from ..data import CamVid

        weights = CamVid("train", root=root).median_frequency_weights()
        batches, loss = _camvid_batches(recipe, generator, root), _camvid_loss(weights)
    amp_dtype = getattr(torch, recipe.amp) if recipe.amp else None
    opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps, pct_start=0.1)
    losses, running, start = [], 0.0, time.perf_counter()
    bar = tqdm(range(steps), desc=name, disable=not progress, mininterval=5)
    for step in bar:
        x, targets = next(batches)
        x = x.contiguous(memory_format=torch.channels_last)
        value, _ = train_step(model, x, targets, opt, loss, step=step, amp_dtype=amp_dtype)
        schedule.step()
        running += float(value)
        if (step + 1) % 100 == 0:
            losses.append(round(running / 100, 5))
            running = 0.0
            bar.set_postfix(loss=losses[-1])
            if not progress:
                log(f"{name} step {step + 1}/{steps} loss {losses[-1]:.4f} ({time.perf_counter() - start:.0f} s)")
    model.eval()
    record = dict(recipe=asdict(recipe), steps=steps, train_seconds=round(time.perf_counter() - start, 1),
                  train_loss_every_100_steps=losses, hardware=hardware("cpu"))
    return model, record


# ---------------------------------------------------------------------------------------------
# after training: a decision threshold chosen on the training data
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def calibrate(name: str, model, *, root=None, progress: bool = True):
    """``(class_offsets, calibration)`` for ``name``'s predictions, or ``(None, None)`` if its recipe has none.

    ``unet-camvid`` (``calibrate="mean_iou_val"``): per-class offsets chosen on the val split by
    mean IoU (:func:`_calibrate_mean_iou`); the test split only measures the result.

    ``unet-isbi2012`` (``calibrate="membrane_dice"``): the offset ``b`` added to the cell score
    before the argmax that gives the highest membrane Dice over the *training* slices 0-23, from a
    grid of steps of 0.05 in [-2, 3] (``b > 0`` calls fewer pixels membrane). The held-out slices
    are never looked at: they measure the result.
    """
    from tqdm.auto import tqdm

    recipe = RECIPES[name]
    if recipe.extra.get("calibrate") == "mean_iou_val":
        return _calibrate_mean_iou(name, model, root=root, progress=progress)
    if recipe.extra.get("calibrate") != "membrane_dice":
        return None, None
    from ..data import ISBI2012
    from ..sizes import covering_input_size
    from ..tiling import predict_tiled

    data = ISBI2012(root=root, split="train")
    model.eval()
    margins, membrane = [], []
    for k in tqdm(range(len(data)), desc=f"{name} calibration (slices 0-23)", disable=not progress):
        image, mask = data[k]
        scores = predict_tiled(model, image, tile_size=covering_input_size(max(image.shape[-2:]), model.depth),
                               batch_size=1).float().cpu()
        margins.append((scores[1] - scores[0]).flatten())   # cell score minus membrane score
        membrane.append(mask.flatten() == 0)
    margin, truth = torch.cat(margins), torch.cat(membrane)
    grid = [round(-2 + 0.05 * i, 2) for i in range(101)]

    def dice(b):
        called = margin + b < 0                               # membrane where it still wins after the offset
        tp = int((called & truth).sum())
        return 2 * tp / (int(called.sum()) + int(truth.sum()))

    scores = {b: dice(b) for b in grid}
    best = max(grid, key=lambda b: (scores[b], -abs(b)))       # ties: the smaller correction
    calibration = {"chosen_on": "training slices 0-23 (overlap-tile, whole slices)",
                   "criterion": "membrane Dice", "grid": "-2.00 to 3.00 in steps of 0.05",
                   "offset_added_to_cell_score": best, "train_membrane_dice_without": round(scores[0.0], 6),
                   "train_membrane_dice_with": round(scores[best], 6),
                   "train_membrane_share_true": round(float(truth.float().mean()), 6),
                   "train_membrane_share_called_without": round(float((margin < 0).float().mean()), 6),
                   "train_membrane_share_called_with": round(float((margin + best < 0).float().mean()), 6)}
    return [0.0, best], calibration


@torch.no_grad()
def _calibrate_mean_iou(name: str, model, *, root=None, progress: bool = True, rounds: int = 2):
    """Per-class offsets that maximise the mean IoU on CamVid's *val* split (never the test split).

    Coordinate ascent: class by class, the offset from a grid of steps of 0.1 in [-3, 3] that
    gives the highest val mean IoU with the others held, ``rounds`` times over the classes. Scores
    at the model's training scale, labels shrunk by nearest neighbour (every second pixel of those).
    """
    from tqdm.auto import tqdm

    from ..data import CamVid
    from ..metrics import confusion_matrix, iou_from_confusion
    from .scoring import scaled_scores

    recipe = RECIPES[name]
    data = CamVid("val", root=root)
    scores, labels = [], []
    for k in tqdm(range(len(data)), desc=f"{name} calibration (val split)", disable=not progress):
        image, mask = data[k]
        s = scaled_scores(model, image[None], recipe.scale)[0]          # [11, h, w] at the training scale
        h, w = s.shape[-2:]
        y = F.interpolate(mask[None, None].float(), size=(h, w), mode="nearest")[0, 0].long()
        scores.append(s[:, ::2, ::2].half()), labels.append(y[::2, ::2])
    scores, labels = torch.stack(scores).float(), torch.stack(labels)
    K = CamVid.num_classes

    def miou(b):
        pred = (scores + b[None, :, None, None]).argmax(1)
        return float(iou_from_confusion(confusion_matrix(pred, labels, K, ignore_index=CamVid.IGNORE_INDEX)).mean())

    b = torch.zeros(K)
    start = best = miou(b)
    grid = [round(-3 + 0.1 * i, 1) for i in range(61)]
    for _ in range(rounds):
        for c in range(K):
            for v in grid:
                trial = b.clone()
                trial[c] = v
                m = miou(trial)
                if m > best + 1e-6:
                    best, b = m, trial
    calibration = {"chosen_on": "CamVid val split (101 frames; the test split is never used)",
                   "criterion": "mean IoU at the training scale, every second pixel",
                   "grid": f"-3.0 to 3.0 in steps of 0.1, coordinate ascent over the classes, {rounds} rounds",
                   "val_mean_iou_without": round(start, 6), "val_mean_iou_with": round(best, 6)}
    return [round(float(v), 2) for v in b], calibration
