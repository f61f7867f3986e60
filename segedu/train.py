"""``fit()``: the one training loop of the course.

Every chapter trains its models with this function, so a reader learns it once. It does the
plain thing — mini-batch gradient descent with Adam — plus what a reader's machine needs:

* ``device="auto"`` picks CUDA, then Apple MPS, then the CPU; nothing assumes a GPU.
* The defaults are the fastest settings measured for the course's models: the channels-last
  memory format on CUDA and the CPU, and float32 (autocast did not pay at these sizes). The
  measurements are in the generated Performance appendix; :mod:`segedu.runtime` resolves
  ``"auto"``. ``amp=True``/``"bf16"``/``"fp16"`` turns mixed precision on (float16 with a
  gradient scaler); ``amp="bf16"`` works on the CPU too, which is how the tests exercise the
  mixed-precision path without a GPU.
* ``seed`` makes a CPU run reproducible: the same seed gives the same History.
* Valid-padding networks (the paper U-Net) predict a smaller map than their input: the target
  (and any per-pixel weight map) is centre-cropped to the prediction, as in the U-Net paper.
* Deep supervision: a model may return a list of outputs; the loss receives the list and the
  metrics are computed on the last one.
* ``state=TrainState()`` keeps everything needed to continue a run exactly where it stopped
  (optimizer, random number generators, epoch, loss curve); ``fit`` resumes from a filled one.
* ``distributed=True`` shards each global batch over the processes of ``torch.distributed``
  (``DistributedDataParallel`` + ``DistributedSampler``, see :mod:`segedu.distributed`); with one
  process it gives the same data order, so 1 and N processes train the same run.

The module reads top-down in the order of a run: the loss, what a run records (:class:`History`,
:class:`TrainState`), evaluation, one optimizer step (:func:`train_step`, the heart of it all),
and :func:`fit`, which repeats that step over epochs.

Introduced in chapter 1.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, fields

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import distributed as D
from . import metrics as M
from .checkpoint import load_checkpoint, save_checkpoint  # noqa: F401  (load_checkpoint: re-exported)
from .checks import check_positive_int
from .loading import batches as batch_source
from .memory import check_training_memory
from .models.utils import last_output
from .runtime import (resolve_amp, resolve_channels_last, resolve_device, rng_state, seed_everything,  # noqa: F401
                      set_rng_state)
from .sizes import center_crop
from .viz import plot_history

__all__ = ["fit", "train_step", "History", "TrainState", "evaluate", "predict", "default_loss"]
# Kept importable from here, where the chapters first import them: resolve_device, seed_everything,
# rng_state, set_rng_state, resolve_amp, resolve_channels_last (segedu.runtime), save_checkpoint,
# load_checkpoint (segedu.checkpoint).


# --------------------------------------------------------------------------------------------
# loss and outputs
# --------------------------------------------------------------------------------------------

def default_loss(output: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Pixel-wise cross entropy (one logit per class), or binary cross entropy for one channel.

    ``output`` is ``[N, K, H, W]``, ``target`` ``[N, H, W]``; an optional per-pixel ``weight``
    ``[N, H, W]`` scales each pixel's term (the U-Net weight map), normalised by its sum.
    """
    if output.shape[1] == 1:
        per_pixel = nn.functional.binary_cross_entropy_with_logits(output[:, 0], target.float(), reduction="none")
    else:
        per_pixel = nn.functional.cross_entropy(output, target, reduction="none")
    if weight is None:
        return per_pixel.mean()
    return (per_pixel * weight).sum() / weight.sum().clamp(min=1e-12)


def _crop_targets(output, extras):
    """Centre-crop targets/weights to the prediction size (valid-padding networks)."""
    if last_output(output).dim() == 2:  # a classifier's [N, K] scores: nothing to crop
        return list(extras)
    h, w = last_output(output).shape[-2:]
    return [center_crop(t, (h, w)) if t.shape[-2:] != (h, w) else t for t in extras]


def _num_classes(output) -> int:
    k = last_output(output).shape[1]
    return 2 if k == 1 else k


# --------------------------------------------------------------------------------------------
# History
# --------------------------------------------------------------------------------------------

@dataclass
class History:
    """What ``fit`` measured, one entry per epoch.

    ``epochs`` is a list of dicts with keys ``epoch``, ``loss`` (mean training loss), ``time``
    (seconds) and, when validation data was given, ``val_loss``, ``val_pixel_accuracy``,
    ``val_mean_iou``, ``val_dice`` (mean over foreground classes).
    """

    epochs: list = field(default_factory=list)
    device: str = "cpu"
    amp: str | None = None
    seconds: float = 0.0
    steps: int = 0  # optimizer steps taken in all (with max_seconds, how many fitted the budget)

    def __getitem__(self, key: str) -> list:
        return [e[key] for e in self.epochs if key in e]

    @property
    def last(self) -> dict:
        return self.epochs[-1] if self.epochs else {}

    def best(self, key: str = "val_mean_iou") -> float:
        values = self[key]
        return max(values) if values else float("nan")

    def to_dict(self) -> dict:
        return {"epochs": self.epochs, "device": self.device, "amp": self.amp, "seconds": self.seconds,
                "steps": self.steps}

    def plot(self, ax=None, keys=("loss", "val_loss"), label=None):
        return plot_history({label or "model": self}, keys=keys, ax=ax)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last.items() if isinstance(v, float))
        return f"History({len(self.epochs)} epochs on {self.device}: {last})"


# --------------------------------------------------------------------------------------------
# resumable state
# --------------------------------------------------------------------------------------------

@dataclass
class TrainState:
    """Where a run stands: enough to continue it exactly where it stopped.

    Pass one to :func:`fit` as ``state=``: ``fit`` keeps it current (at the end of every epoch,
    before ``on_epoch_end`` is called, it holds the optimizer's state, the random number
    generators, the epoch count, the step count, the best score and the loss curve), and a
    ``fit`` given a state with ``epoch > 0`` resumes from it: it loads the optimizer and the
    generators and trains epochs ``epoch + 1 .. epochs``. The model's weights are the caller's
    to save and load (with the state, e.g. in one checkpoint: ``state.to_dict()`` is plain data).
    On the CPU a resumed run equals the uninterrupted one exactly.
    """

    epoch: int = 0
    step: int = 0
    best: float = -math.inf
    history: list = field(default_factory=list)
    optimizer: dict | None = None
    scaler: dict | None = None
    rng: dict | None = None

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["history"] = list(self.history)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TrainState":
        return cls(**{f.name: d[f.name] for f in fields(cls) if f.name in d})


# --------------------------------------------------------------------------------------------
# evaluation
# --------------------------------------------------------------------------------------------

def _check_dataset(data, name: str):
    if data is None:
        return None
    if isinstance(data, (DataLoader, Dataset)) or hasattr(data, "__getitem__"):
        try:
            empty = len(data) == 0
        except TypeError:  # an iterable dataset has no length: nothing to check up front
            empty = False
        if empty:
            raise ValueError(f"{name} is empty (0 {'batches' if isinstance(data, DataLoader) else 'samples'}): "
                             "check the data set's folder, size or split")
        return data
    raise TypeError(f"{name} must be a torch Dataset of (image, mask) pairs, got {type(data).__name__}")


def _check_batch(tensors, where: str) -> None:
    """Refuse NaN or Inf in a batch's images, masks or weight maps, saying where they are: they
    would turn the loss (or, in validation data, the score that picks the best weights) into NaN."""
    for label, t in zip(("images", "masks", "weight maps"), tensors):
        if torch.is_tensor(t) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            raise ValueError(f"{where} holds {nan} NaN and {inf} Inf values in its {label}: clean the data "
                             "(e.g. torch.nan_to_num) or leave those samples out")


@torch.no_grad()
def evaluate(model: nn.Module, data, *, loss=None, batch_size: int = 8, device="auto",
             num_classes: int | None = None, amp=False) -> dict:
    """Loss, pixel accuracy, mean IoU and mean foreground Dice of ``model`` on ``data``.

    Refused with a ``ValueError`` naming the batch, rather than returning corrupt scores: empty
    ``data``, NaN or Inf in its images, masks or weight maps, and a model whose output is not
    finite (diverged weights).
    """
    check_positive_int("batch_size", batch_size)
    data = _check_dataset(data, "the validation data")
    dev = resolve_device(device)
    loss = loss or default_loss
    amp_dtype = resolve_amp(amp, dev)
    model.eval()
    total_loss, n_batches, conf = 0.0, 0, None
    for batch in batch_source(data, batch_size, False, 0, dev, preload=False):
        x, *extras = (t.to(dev) for t in batch)
        _check_batch([x, *extras], f"validation batch {n_batches}")
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
        out = [o.float() for o in out] if isinstance(out, (list, tuple)) else out.float()
        if not bool(torch.isfinite(last_output(out)).all()):
            raise ValueError(f"the model's output on validation batch {n_batches} holds NaN or Inf values although "
                             "its images are finite: the weights have diverged (lower the learning rate, or use "
                             "amp=False)")
        extras = _crop_targets(out, extras)
        total_loss += float(loss(out, *extras))
        n_batches += 1
        k = num_classes or _num_classes(out)
        c = M.confusion_matrix(last_output(out), extras[0], k)
        conf = c if conf is None else conf + c
    if conf is None:
        raise ValueError("the validation data gave no batches")
    conf = conf.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    iou = torch.where(union > 0, tp / union.clamp(min=1), torch.full_like(tp, float("nan")))
    dice = torch.where(union > 0, 2 * tp / (union + tp).clamp(min=1), torch.full_like(tp, float("nan")))
    return {
        "val_loss": total_loss / max(n_batches, 1),
        "val_pixel_accuracy": float(tp.sum() / conf.sum()),
        "val_mean_iou": float(torch.nanmean(iou)),
        "val_dice": float(torch.nanmean(dice[1:])) if len(dice) > 1 else float("nan"),
    }


@torch.no_grad()
def predict(model: nn.Module, images, *, batch_size: int = 8, device="auto") -> torch.Tensor:
    """Raw outputs (logits) of ``model`` for a tensor of images ``[N, C, H, W]`` (last head if a list)."""
    if not torch.is_tensor(images) or images.dim() != 4:
        raise ValueError(f"images must be a tensor [N, C, H, W], got {getattr(images, 'shape', type(images))}")
    check_positive_int("batch_size", batch_size)
    _check_batch([images], "images")
    dev = resolve_device(device)
    model.eval().to(dev)
    outs = [last_output(model(images[i : i + batch_size].to(dev))).float().cpu()
            for i in range(0, len(images), batch_size)]
    return torch.cat(outs)


# --------------------------------------------------------------------------------------------
# one step
# --------------------------------------------------------------------------------------------

def train_step(model: nn.Module, x: torch.Tensor, targets, optimizer: torch.optim.Optimizer, loss, *,
               scaler: torch.amp.GradScaler | None = None, amp_dtype: torch.dtype | None = None,
               step: int = 0):
    """One step of mini-batch gradient descent: forward, loss, backward, update.

    ``targets`` are what the loss takes after the output: ``[mask]`` or ``[mask, weight]``. They
    are centre-cropped to the output's size (a valid-padding U-Net predicts a smaller map than
    its input). Under ``amp_dtype`` the forward pass runs in autocast; the outputs are cast back to
    float32 before the loss. A float16 ``scaler`` scales the loss so small gradients survive.
    ``step`` only names the step in the error raised when the loss is not finite (before any
    weight is touched).

    Returns ``(loss value, output)``, the value detached from the graph.
    """
    with torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        out = model(x)
    out = [o.float() for o in out] if isinstance(out, (list, tuple)) else out.float()
    value = loss(out, *_crop_targets(out, targets))
    if not torch.isfinite(value):
        raise FloatingPointError(f"loss became {float(value)} at step {step}; "
                                 f"lower lr (now {optimizer.param_groups[0]['lr']})")
    optimizer.zero_grad(set_to_none=True)
    if scaler is None:
        value.backward()
        optimizer.step()
    else:
        scaler.scale(value).backward()
        scaler.step(optimizer)
        scaler.update()
    return value.detach(), out


# --------------------------------------------------------------------------------------------
# fit and its levels: argument checks, resume, one epoch, snapshot
# --------------------------------------------------------------------------------------------

def _check_fit_args(model, epochs, batch_size, lr, max_steps, max_seconds) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    check_positive_int("epochs", epochs)
    check_positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    check_positive_int("max_steps", max_steps, or_none=True)
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                    or not max_seconds > 0):
        raise ValueError(f"max_seconds must be a positive number of seconds or None, got {max_seconds!r}")


def _distributed_setup(train_data, batch_size) -> tuple[int, int]:
    """This process's rank and the number of processes, after checking the global batch splits."""
    rank, world = D.rank_and_world_size()
    if isinstance(train_data, DataLoader):
        raise TypeError("distributed=True makes its own DistributedSampler loader: pass a Dataset, not a DataLoader")
    if batch_size % world:
        raise ValueError(f"batch_size={batch_size} (the global batch) must be divisible by the {world} processes")
    return rank, world


def _resume(state, opt, scaler, loader_rng, history) -> tuple[float, int, int]:
    """Load a filled :class:`TrainState` into the optimizer, the scaler and the generators;
    return ``(best score, steps taken, first epoch to train)``."""
    if state is None or state.epoch == 0:
        return -math.inf, 0, 1
    if state.optimizer is not None:
        opt.load_state_dict(state.optimizer)
    if state.scaler:
        scaler.load_state_dict(state.scaler)
    if state.rng is not None:
        set_rng_state(state.rng, loader_rng)
    history.epochs = list(state.history)
    return state.best, state.step, state.epoch + 1


def _snapshot(state, epoch, step, best, history, opt, scaler, loader_rng) -> None:
    """Fill ``state`` with everything needed to continue after ``epoch``."""
    state.epoch, state.step, state.best, state.history = epoch, step, best, list(history.epochs)
    state.optimizer = copy.deepcopy(opt.state_dict())
    state.scaler = scaler.state_dict() if scaler.is_enabled() else None
    state.rng = rng_state(loader_rng)


def _epoch_line(epoch, epochs, record) -> str:
    return f"epoch {epoch:>3}/{epochs}  " + "  ".join(
        f"{k}={v:.4f}" for k, v in record.items() if k not in ("epoch",) and isinstance(v, float))


def fit(model: nn.Module, train_data, val_data=None, *, loss=None, epochs: int = 5, batch_size: int = 8,
        lr: float = 1e-3, weight_decay: float = 0.0, device="auto", amp="auto", progress: bool = True,
        seed: int = 0, max_steps: int | None = None, max_seconds: float | None = None,
        num_classes: int | None = None,
        checkpoint=None, channels_last="auto", on_epoch_end=None, state: TrainState | None = None,
        distributed: bool = False, preload="auto", augment=None) -> History:
    """Train ``model`` on ``train_data`` with Adam and return a :class:`History`.

    Args:
        model: any ``nn.Module`` mapping ``[N, C, H, W]`` images to ``[N, K, h, w]`` scores
            (``h, w`` may be smaller than ``H, W``: targets are centre-cropped), or to a list of
            such outputs (deep supervision).
        train_data, val_data: datasets of ``(image, mask)`` or ``(image, mask, weight)`` tuples.
        loss: ``loss(output, mask[, weight]) -> scalar``; default: pixel-wise cross entropy
            (binary cross entropy for one output channel).
        epochs, batch_size, lr, weight_decay: the usual.
        device: ``"auto"`` (CUDA > MPS > CPU), ``"cpu"``, ``"cuda"``, ...
        amp: mixed precision, see :func:`segedu.runtime.resolve_amp`; ``"auto"`` = float32 (the
            faster choice at the course's sizes, Performance appendix); ``True``, ``"bf16"`` or
            ``"fp16"`` turn autocast on.
        progress: show a progress bar per epoch and print one line per epoch.
        seed: seeds weights' data order (and anything random in the loop); CPU runs reproduce.
        max_steps: stop after this many optimizer steps in total (a fixed compute budget).
        max_seconds: stop after the first step that ends this many seconds after training began
            (a wall-clock budget; validation time is not counted). Unlike ``max_steps`` it does
            not reproduce: how many steps fit depends on the machine and its load.
        num_classes: for the metrics; default: read off the model's output channels.
        checkpoint: path; the weights with the best ``val_mean_iou`` (or lowest training loss
            without validation data) are saved there, loadable with ``weights_only=True``.
        channels_last: the NHWC memory format; ``"auto"`` = on for CUDA and the CPU (the faster
            layout on both, see :func:`segedu.runtime.resolve_channels_last`), ``False`` turns it off.
        on_epoch_end: optional ``callback(epoch_dict)``.
        state: a :class:`TrainState` that ``fit`` keeps current at every epoch's end (save it to
            resume later); if its ``epoch > 0``, ``fit`` continues that run from epoch
            ``state.epoch + 1`` (the returned History holds the earlier epochs too).
        distributed: train data-parallel over the processes of ``torch.distributed``'s default
            group (one process if none is initialised): each process takes ``batch_size / world
            size`` images of every global batch (a ``DistributedSampler``, reshuffled per epoch from
            ``seed``), the model is wrapped in ``DistributedDataParallel`` when there are several,
            and only rank 0 shows progress and writes ``checkpoint``. See :mod:`segedu.distributed`.
        preload: ``"auto"``: when the data set's items are fixed and fit in memory, hold it on the
            training device and cut the batches from there (:mod:`segedu.loading`; the same
            batches in the same order as the DataLoader it replaces); ``False``: always a DataLoader.
        augment: optional ``augment(x, *targets) -> (x, *targets)`` applied to every training
            batch on the device, e.g. :class:`segedu.data.BatchAugment` (flips, crops, the elastic
            deformation in torch): with ``preload`` the batches stay fixed and the augmentation is
            new at every step.

    Bad input is refused before it can do harm, with a message that names it: empty data sets,
    NaN or Inf in any batch's images, masks or weight maps (training and validation data: a NaN in
    the validation data would corrupt the score that picks the best weights), and a first batch
    whose training step would need more memory than the device has free
    (:func:`segedu.memory.check_training_memory`, raised as
    :class:`~segedu.memory.InsufficientMemoryError` with the estimate).
    """
    _check_fit_args(model, epochs, batch_size, lr, max_steps, max_seconds)
    train_data = _check_dataset(train_data, "train_data")
    val_data = _check_dataset(val_data, "val_data")
    rank, world = _distributed_setup(train_data, batch_size) if distributed else (0, 1)
    dev = resolve_device(device)
    amp_dtype = resolve_amp(amp, dev)
    channels_last = resolve_channels_last(channels_last, dev)
    loss = loss or default_loss
    seed_everything(seed)
    model.to(dev)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    # A gradient scaler is only needed for float16 (bfloat16 has float32's exponent range).
    scaler = torch.amp.GradScaler(dev.type, enabled=amp_dtype is torch.float16)
    if distributed:  # every process reads its own share of each global batch
        loader = D.sharded_loader(train_data, batch_size // world, seed=seed, rank=rank, world_size=world)
        net = D.wrap(model, dev) if world > 1 else model
    else:
        loader, net = batch_source(train_data, batch_size, True, seed, dev, preload), model
    loader_rng = getattr(loader, "generator", None)  # the shuffling generator, if the loader has one
    history = History(device=str(dev), amp=str(amp_dtype).replace("torch.", "") if amp_dtype else None)
    start, train_seconds = time.perf_counter(), 0.0  # train_seconds: training steps only (max_seconds)
    best, step, first = _resume(state, opt, scaler, loader_rng, history)
    memory_checked = False
    bar_cls = None
    if progress and rank == 0:
        from tqdm.auto import tqdm as bar_cls
    for epoch in range(first, epochs + 1):
        if hasattr(getattr(loader, "sampler", None), "set_epoch"):
            loader.sampler.set_epoch(epoch)  # a DistributedSampler reshuffles from (seed, epoch)
        net.train()
        t0, total, n = time.perf_counter(), 0.0, 0
        # mininterval and refresh=False below: redraw at most twice a second. A notebook sends one
        # message per redraw, and a long cell that redraws every step floods the kernel's output
        # channel (nbval then loses the cell's end and fails it).
        batches = bar_cls(loader, desc=f"epoch {epoch}/{epochs}", leave=False, mininterval=0.5) if bar_cls else loader
        for batch in batches:
            x, *targets = (t.to(dev, non_blocking=True) for t in batch)
            if augment is not None:
                x, *targets = augment(x, *targets)
            if not memory_checked:  # before the first step allocates anything: refuse what cannot fit
                check_training_memory(model, tuple(x.shape), dev, x.dtype if x.is_floating_point() else torch.float32)
                memory_checked = True
            _check_batch([x, *targets], f"train_data (epoch {epoch}, step {step + 1})")
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            value, _ = train_step(net, x, targets, opt, loss, scaler=scaler, amp_dtype=amp_dtype, step=step)
            total += float(value) * len(x)
            n += len(x)
            step += 1
            if bar_cls:
                batches.set_postfix(loss=f"{float(value):.4f}", refresh=False)
            if max_steps is not None and step >= max_steps:
                break
            if max_seconds is not None and train_seconds + time.perf_counter() - t0 >= max_seconds:
                break
        train_seconds += time.perf_counter() - t0
        if n == 0:
            raise ValueError(f"train_data gave no batches in epoch {epoch} (an empty data set, or a DataLoader "
                             "with drop_last=True and fewer samples than batch_size)")
        if world > 1:  # the epoch's loss over all processes' images
            total, n = D.all_sum([total, n], dev)
        record = {"epoch": epoch, "loss": total / max(n, 1), "time": time.perf_counter() - t0}
        if val_data is not None:  # every process evaluates the whole validation set (same weights)
            record.update(evaluate(model, val_data, loss=loss, batch_size=batch_size, device=dev,
                                   num_classes=num_classes, amp=amp if amp_dtype is not None else False))
        history.epochs.append(record)
        if progress and rank == 0:
            print(_epoch_line(epoch, epochs, record))
        score = record.get("val_mean_iou", -record["loss"])
        if score > best:
            best = score
            if checkpoint is not None and rank == 0:
                save_checkpoint(checkpoint, model, epoch=epoch, metrics=record)
        if state is not None:
            _snapshot(state, epoch, step, best, history, opt, scaler, loader_rng)
        if on_epoch_end is not None:
            on_epoch_end(record)
        if max_steps is not None and step >= max_steps:
            break
        if max_seconds is not None and train_seconds >= max_seconds:
            break
    history.seconds = time.perf_counter() - start
    history.steps = step
    model.eval()
    return history
