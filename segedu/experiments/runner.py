"""Train several models under the same budget and compare them on held-out data.

``compare`` is the experiment runner of chapter 7: every model gets the same data pipeline, the
same number of optimizer steps (or seconds) and the same evaluation; the result is a tidy table —
one row per (dataset, model, seed) — that ``summarize`` reduces to mean ± spread over seeds.

A model is described by a :class:`ModelSpec`: how to build it, and optionally how to turn the
training set into what it trains on (the sliding window trains on patches) and how to predict a
whole image (a valid-padding U-Net predicts with overlap-tile). Plain callables are accepted too.

Introduced in chapter 7.
"""

from __future__ import annotations

import copy

import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from .. import metrics as M
from ..checks import check_positive_int
from ..models.utils import count_parameters, last_output
from ..runtime import resolve_device, seed_everything
from ..train import fit

__all__ = ["ModelSpec", "compare"]


@dataclass
class ModelSpec:
    """How to build, train and run one model of a comparison.

    Args:
        build: ``build(in_channels, num_classes) -> nn.Module``.
        train_transform: optional ``f(train_dataset) -> dataset`` the model trains on instead.
        predict: optional ``predict(model, images [N, C, H, W]) -> scores [N, K, H, W]`` for
            whole images (default: ``model(images)``, last head if a list).
        fit_kwargs: extra keyword arguments for :func:`segedu.train.fit` (e.g. ``loss``, ``lr``).
        after_training: optional ``f(trained_model) -> model`` evaluated instead (e.g. pruning a
            deeply supervised UNet++: ``lambda m: m.pruned(3)``); parameters are counted on it.
        same_training_as: name of another model of the same comparison (listed before this one):
            instead of training its own copy, this entry evaluates a copy of the model trained
            for that entry with the same seed — e.g. the pruned UNet++ *is* the trained UNet++,
            cut back, so training it again would cost the same and give the same weights.
            ``build``, ``train_transform`` and ``fit_kwargs`` are then unused; ``train_seconds``
            is that entry's.
    """

    build: Callable[[int, int], nn.Module]
    train_transform: Callable | None = None
    predict: Callable | None = None
    fit_kwargs: dict = field(default_factory=dict)
    after_training: Callable | None = None
    same_training_as: str | None = None

    def scores(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        """Full-size class scores ``[N, K, H, W]`` of a model built (and trained) from this spec:
        ``predict`` if the spec has one, else ``model(images)`` (the last head of a list)."""
        return (self.predict or _default_predict)(model, images)


def _default_predict(model, images):
    return last_output(model(images))


def _as_spec(spec) -> ModelSpec:
    if isinstance(spec, ModelSpec):
        return spec
    if callable(spec):
        return ModelSpec(build=spec)
    raise TypeError(f"a model must be a ModelSpec or a callable build(in_channels, num_classes), got {type(spec).__name__}")


def _stack(dataset):
    xs, ys = zip(*(dataset[i][:2] for i in range(len(dataset))))
    return torch.stack(xs), torch.stack(ys)


@torch.no_grad()
def _predict_all(spec, model, images, batch_size, device):
    outs = []
    for i in range(0, len(images), batch_size):
        out = spec.scores(model, images[i : i + batch_size].to(device))
        outs.append(out.float().cpu())
    return torch.cat(outs)


def compare(models: dict, datasets: dict, seeds=(0,), *, steps: int | None = 200, seconds: float | None = None,
            batch_size: int = 8, lr: float = 1e-3, device="auto", num_classes: dict | None = None,
            progress: bool = True, timing_repeats: int = 3, trained: dict | None = None,
            metrics: dict | None = None) -> list[dict]:
    """Train every model on every dataset with every seed under the same budget.

    The budget is either ``steps`` (every run takes that many optimizer steps: reproducible, the
    papers' "same number of iterations") or ``seconds`` (every run trains for that much wall-clock
    time: cheaper models take more steps; the answer to "what is best for my compute", but it
    depends on the machine and its load, so it does not reproduce). Give ``seconds`` and
    ``steps=None`` for the second; with both, a run stops at whichever comes first.

    Args:
        models: ``{name: ModelSpec or build(in_channels, num_classes)}``.
        datasets: ``{name: (train_dataset, test_dataset)}``; items are ``(image, mask, ...)``.
        seeds: one run per seed (weights and data order).
        steps: optimizer steps per run — the shared budget (``None``: no step limit).
        seconds: wall-clock seconds of training per run (``None``: no time limit).
        batch_size, lr, device: passed to :func:`segedu.train.fit` (a spec's ``fit_kwargs`` win).
        num_classes: ``{dataset name: K}``; default: read off ``dataset.num_classes``.
        trained: optional dict that receives every trained model, keyed ``(dataset, model, seed)``
            (for figures of their predictions).
        metrics: optional ``{name: f(scores, masks, test_dataset) -> float}``: more columns per
            row (e.g. the cells an instance-aware metric recovers).

    Returns:
        A list of rows (dicts): ``dataset, model, seed, parameters, train_steps, train_seconds,
        infer_ms_per_image, pixel_accuracy, mean_iou, dice`` (mean over foreground classes),
        ``foreground_iou`` (mean over foreground classes), ``iou_per_class``, ``dice_per_class``,
        and one column per entry of ``metrics``.
    """
    if not models:
        raise ValueError("models is empty: give at least one {name: ModelSpec}")
    if not datasets:
        raise ValueError("datasets is empty: give at least one {name: (train, test)}")
    if steps is None and seconds is None:
        raise ValueError("no budget: give steps (optimizer steps per run) or seconds (training time per run)")
    check_positive_int("steps", steps, or_none=True)
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0):
        raise ValueError(f"seconds must be a positive number or None, got {seconds!r}")
    specs = {name: _as_spec(s) for name, s in models.items()}
    for i, (name, spec) in enumerate(specs.items()):
        if spec.same_training_as is not None and spec.same_training_as not in list(specs)[:i]:
            raise ValueError(f"{name!r}: same_training_as={spec.same_training_as!r} must name a model listed before it")
    dev = resolve_device(device)
    rows = []
    runs = [(d, m, s) for d in datasets for m in specs for s in seeds]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(runs), desc="compare")
    for dname, (train, test) in datasets.items():
        k = (num_classes or {}).get(dname) or getattr(train, "num_classes", None)
        if k is None:
            raise ValueError(f"dataset {dname!r} has no num_classes attribute; pass num_classes={{{dname!r}: K}}")
        in_ch = train[0][0].shape[0]
        images, masks = _stack(test)
        fitted = {}  # (model name, seed) -> (trained model, seconds), for same_training_as
        for mname, spec in specs.items():
            for seed in seeds:
                if spec.same_training_as is not None:
                    source, train_seconds, train_steps = fitted[(spec.same_training_as, seed)]
                    model = copy.deepcopy(source)
                else:
                    seed_everything(seed)
                    model = spec.build(in_ch, k)
                    data = spec.train_transform(train) if spec.train_transform else train
                    kwargs = dict(epochs=10_000_000, max_steps=steps, max_seconds=seconds, batch_size=batch_size, lr=lr,
                                  device=dev, progress=False, seed=seed)
                    kwargs.update(spec.fit_kwargs)
                    t0 = time.perf_counter()
                    history = fit(model, data, **kwargs)
                    train_seconds, train_steps = time.perf_counter() - t0, history.steps
                    if any(other.same_training_as == mname for other in specs.values()):
                        fitted[(mname, seed)] = (copy.deepcopy(model), train_seconds, train_steps)
                if spec.after_training is not None:
                    model = spec.after_training(model)
                model.eval()
                scores = _predict_all(spec, model, images, batch_size, dev)
                if scores.shape[-2:] != masks.shape[-2:]:
                    raise ValueError(f"{mname} predicts {tuple(scores.shape[-2:])} for {tuple(masks.shape[-2:])} images; "
                                     "give its ModelSpec a predict= that returns full-size scores (e.g. overlap-tile)")
                one = images[:1].to(dev)
                times = []
                for _ in range(timing_repeats + 1):
                    if dev.type == "cuda":
                        torch.cuda.synchronize()
                    t = time.perf_counter()
                    _predict_all(spec, model, one, 1, dev)
                    if dev.type == "cuda":
                        torch.cuda.synchronize()
                    times.append(time.perf_counter() - t)
                kk = max(k, 2)
                iou = M.iou(scores, masks, kk)
                dice = M.dice(scores, masks, kk)
                rows.append({
                    "dataset": dname, "model": mname, "seed": seed,
                    "parameters": count_parameters(model),
                    "train_steps": train_steps,
                    "train_seconds": train_seconds,
                    "infer_ms_per_image": 1e3 * statistics.median(times[1:]),
                    "pixel_accuracy": M.pixel_accuracy(scores, masks),
                    "mean_iou": float(torch.nanmean(iou)),
                    "dice": float(torch.nanmean(dice[1:])),
                    "foreground_iou": float(torch.nanmean(iou[1:])),
                    "iou_per_class": [None if math.isnan(v) else round(float(v), 6) for v in iou],
                    "dice_per_class": [None if math.isnan(v) else round(float(v), 6) for v in dice],
                })
                for name, fn in (metrics or {}).items():
                    rows[-1][name] = float(fn(scores, masks, test))
                if trained is not None:
                    trained[(dname, mname, seed)] = model.cpu()
                if bar is not None:
                    bar.set_postfix(dataset=dname, model=mname)
                    bar.update()
    if bar is not None:
        bar.close()
    return rows
