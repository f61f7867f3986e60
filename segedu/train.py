"""``fit()``: the one training loop of the course.

Every chapter trains its models with this function, so a reader learns it once. It does the
plain thing — mini-batch gradient descent with Adam — plus what a reader's machine needs:

* ``device="auto"`` picks CUDA, then Apple MPS, then the CPU; nothing assumes a GPU.
* The defaults are the fastest settings measured for the course's models (Performance appendix):
  on CUDA the channels-last memory format and float32 — on an H100, autocast made six of the seven
  models' training steps slower. ``amp=True``/``"bf16"``/``"fp16"`` turns mixed precision on
  (float16 with a gradient scaler); ``amp="bf16"`` works on the CPU too, which is how the tests
  exercise the mixed-precision path without a GPU.
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

Introduced in chapter 1.
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from dataclasses import dataclass, field, fields

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import metrics as M
from .sizes import center_crop

__all__ = ["fit", "History", "TrainState", "resolve_device", "seed_everything", "predict", "evaluate",
           "save_checkpoint", "load_checkpoint", "default_loss", "rng_state", "set_rng_state"]


# --------------------------------------------------------------------------------------------
# devices, seeds, precision
# --------------------------------------------------------------------------------------------

def resolve_device(device="auto") -> torch.device:
    """``"auto"`` -> CUDA, else MPS, else CPU. An explicit device that is missing is an error."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu', 'cuda', got {type(device).__name__}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)  # raises a clear RuntimeError for nonsense strings
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but no CUDA GPU is available; use device='auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device='mps' was requested but Apple MPS is not available; use device='auto' or 'cpu'")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_amp(amp, device: torch.device):
    """Return the autocast dtype to use, or ``None`` for full float32.

    ``"auto"`` (the default of :func:`fit`) is float32 everywhere. That is a measurement, not a
    guess (Performance appendix):

    * on an H100, autocast made the training step of six of the seven models the course trains
      *slower* (0.74x to 0.88x of float32) — at these sizes the casts cost more than the faster
      matrix units save — and only the paper's full U-Net at 572x572 gained (bfloat16 with
      channels_last, 1.21x);
    * on the CPU, bfloat16 depends on the hardware. On the course's CI machine (AMD EPYC with
      AVX-512 bfloat16 instructions) a training step was 1.31x to 2.07x faster (a whole UNet-L3
      run 1.26x); on the same machine with oneDNN limited to AVX2, as on a CPU without those
      instructions, it was 5.2x *slower* (UNet-L3, 100 steps: 18.2 s against 3.5 s). Nor is it
      shown to train as well: over 3 seeds a deeply supervised UNet++ on binary Shapes reached
      mean IoU 0.788 in bfloat16 against 0.839 in float32 (one bfloat16 seed below every float32
      seed), while UNet-L3 on Cells matched (0.835 vs 0.832).

    Run ``python -m segedu bench train_step`` to see what your machine gains, and ask for it with:

    * ``True``: bfloat16 on CUDA GPUs that support it (Ampere and newer), else float16; bfloat16
      on the CPU;
    * ``"bf16"`` / ``"fp16"``: that dtype (float16 needs a GPU);
    * ``False`` / ``None`` / ``"off"`` / ``"auto"``: float32.
    """
    if amp in (False, None, "off", "fp32", "auto"):
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type == "cpu":
            raise ValueError("amp='fp16' needs a GPU; on the CPU use amp='bf16'")
        return torch.float16
    if amp is True:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" else None
    raise ValueError(f"amp must be 'auto', True, False, 'bf16' or 'fp16', got {amp!r}")


def resolve_channels_last(channels_last, device: torch.device) -> bool:
    """Whether :func:`fit` uses the NHWC memory format (``channels_last``).

    ``"auto"``: on CUDA and on the CPU, yes; elsewhere (Apple MPS, unmeasured), no. ``True`` /
    ``False`` force it. Measured (Performance appendix):

    * on an H100 it was the fastest training mode for six of the seven models (1.06x to 1.19x of
      the default NCHW layout) and the fastest for inference for all seven;
    * on the CI machine's CPU it trained 1.10x to 1.24x faster (``bench train_step``), and a
      UNet-L3 training run 1.30x faster both with oneDNN's full AVX-512 kernels and limited to
      AVX2 (3.1 s against 4.0 s for 100 steps), with the same quality over 3 seeds.

    Like any change of kernels it changes the rounding, and a few hundred steps of training
    amplify that: the same seed then ends at a different, equally good, model. (So does running
    on a CPU with another instruction set, even in float32.)
    """
    if channels_last == "auto":
        return device.type in ("cuda", "cpu")
    if isinstance(channels_last, bool):
        return channels_last
    raise ValueError(f"channels_last must be 'auto', True or False, got {channels_last!r}")


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


def _last(output):
    return output[-1] if isinstance(output, (list, tuple)) else output


def _crop_targets(output, extras):
    """Centre-crop targets/weights to the prediction size (valid-padding networks)."""
    if _last(output).dim() == 2:  # a classifier's [N, K] scores: nothing to crop
        return list(extras)
    h, w = _last(output).shape[-2:]
    return [center_crop(t, (h, w)) if t.shape[-2:] != (h, w) else t for t in extras]


def _num_classes(output) -> int:
    k = _last(output).shape[1]
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
        from .viz import plot_history

        return plot_history({label or "model": self}, keys=keys, ax=ax)

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={v:.4g}" for k, v in self.last.items() if isinstance(v, float))
        return f"History({len(self.epochs)} epochs on {self.device}: {last})"


# --------------------------------------------------------------------------------------------
# resumable state
# --------------------------------------------------------------------------------------------

def rng_state(loader_generator: torch.Generator | None = None) -> dict:
    """The state of every random number generator a run uses, as plain data and tensors (so a
    checkpoint holding it still loads with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def set_rng_state(state: dict, loader_generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])


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
        return data
    raise TypeError(f"{name} must be a torch Dataset of (image, mask) pairs, got {type(data).__name__}")


def _loader(data, batch_size, shuffle, seed):
    if isinstance(data, DataLoader):
        return data
    g = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=g, num_workers=0)


@torch.no_grad()
def evaluate(model: nn.Module, data, *, loss=None, batch_size: int = 8, device="auto",
             num_classes: int | None = None, amp=False) -> dict:
    """Loss, pixel accuracy, mean IoU and mean foreground Dice of ``model`` on ``data``."""
    dev = resolve_device(device)
    loss = loss or default_loss
    amp_dtype = resolve_amp(amp, dev)
    model.eval()
    total_loss, n_batches, conf = 0.0, 0, None
    for batch in _loader(data, batch_size, False, 0):
        x, *extras = (t.to(dev) for t in batch)
        with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
        out = [o.float() for o in out] if isinstance(out, (list, tuple)) else out.float()
        extras = _crop_targets(out, extras)
        total_loss += float(loss(out, *extras))
        n_batches += 1
        k = num_classes or _num_classes(out)
        c = M.confusion_matrix(_last(out), extras[0], k)
        conf = c if conf is None else conf + c
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
    dev = resolve_device(device)
    model.eval().to(dev)
    outs = [_last(model(images[i : i + batch_size].to(dev))).float().cpu() for i in range(0, len(images), batch_size)]
    return torch.cat(outs)


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------

def save_checkpoint(path, model: nn.Module, **extra) -> None:
    """Save ``state_dict`` (plus plain-data extras) atomically: write to a temp file, then rename."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save({"state_dict": model.state_dict(), **extra}, tmp)
    os.replace(tmp, path)


def load_checkpoint(path, model: nn.Module | None = None, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code); fill ``model`` if given."""
    ckpt = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
    if model is not None:
        model.load_state_dict(ckpt["state_dict"])
    return ckpt


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------

def fit(model: nn.Module, train_data, val_data=None, *, loss=None, epochs: int = 5, batch_size: int = 8,
        lr: float = 1e-3, weight_decay: float = 0.0, device="auto", amp="auto", progress: bool = True,
        seed: int = 0, max_steps: int | None = None, max_seconds: float | None = None,
        num_classes: int | None = None,
        checkpoint=None, channels_last="auto", on_epoch_end=None, state: TrainState | None = None,
        distributed: bool = False) -> History:
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
        amp: mixed precision, see :func:`resolve_amp`; ``"auto"`` = float32 (measured faster at
            the course's sizes); ``True``, ``"bf16"`` or ``"fp16"`` turn autocast on.
        progress: show a progress bar per epoch and print one line per epoch.
        seed: seeds weights' data order (and anything random in the loop); CPU runs reproduce.
        max_steps: stop after this many optimizer steps in total (a fixed compute budget).
        max_seconds: stop after the first step that ends this many seconds after training began
            (a wall-clock budget; validation time is not counted). Unlike ``max_steps`` it does
            not reproduce: how many steps fit depends on the machine and its load.
        num_classes: for the metrics; default: read off the model's output channels.
        checkpoint: path; the weights with the best ``val_mean_iou`` (or lowest training loss
            without validation data) are saved there, loadable with ``weights_only=True``.
        channels_last: the NHWC memory format; ``"auto"`` = on for CUDA and the CPU (measured
            faster on both, see :func:`resolve_channels_last`), ``False`` turns it off.
        on_epoch_end: optional ``callback(epoch_dict)``.
        state: a :class:`TrainState` that ``fit`` keeps current at every epoch's end (save it to
            resume later); if its ``epoch > 0``, ``fit`` continues that run from epoch
            ``state.epoch + 1`` (the returned History holds the earlier epochs too).
        distributed: train data-parallel over the processes of ``torch.distributed``'s default
            group (one process if none is initialised): each process takes ``batch_size / world
            size`` images of every global batch (a ``DistributedSampler``, reshuffled per epoch from
            ``seed``), the model is wrapped in ``DistributedDataParallel`` when there are several,
            and only rank 0 shows progress and writes ``checkpoint``. See :mod:`segedu.distributed`.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    train_data = _check_dataset(train_data, "train_data")
    val_data = _check_dataset(val_data, "val_data")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
    if max_seconds is not None and (isinstance(max_seconds, bool) or not isinstance(max_seconds, (int, float))
                                    or not max_seconds > 0):
        raise ValueError(f"max_seconds must be a positive number of seconds or None, got {max_seconds!r}")
    rank, world = 0, 1
    if distributed:
        from . import distributed as D

        rank, world = D.rank_and_world_size()
        if isinstance(train_data, DataLoader):
            raise TypeError("distributed=True makes its own DistributedSampler loader: pass a Dataset, not a DataLoader")
        if batch_size % world:
            raise ValueError(f"batch_size={batch_size} (the global batch) must be divisible by the {world} processes")
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
        loader, net = _loader(train_data, batch_size, True, seed), model
    loader_rng = getattr(loader, "generator", None)  # the shuffling generator, if the loader has one
    history = History(device=str(dev), amp=str(amp_dtype).replace("torch.", "") if amp_dtype else None)
    best, step, first, start = -math.inf, 0, 1, time.perf_counter()
    train_seconds = 0.0  # time spent in training steps only (what max_seconds budgets)
    if state is not None and state.epoch > 0:  # resume: continue exactly where that run stopped
        if state.optimizer is not None:
            opt.load_state_dict(state.optimizer)
        if state.scaler:
            scaler.load_state_dict(state.scaler)
        if state.rng is not None:
            set_rng_state(state.rng, loader_rng)
        best, step, first = state.best, state.step, state.epoch + 1
        history.epochs = list(state.history)
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
            x, *extras = (t.to(dev, non_blocking=True) for t in batch)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                out = net(x)
            out = [o.float() for o in out] if isinstance(out, (list, tuple)) else out.float()
            value = loss(out, *_crop_targets(out, extras))
            if not torch.isfinite(value):
                raise FloatingPointError(f"loss became {float(value)} at step {step}; lower lr (now {lr})")
            opt.zero_grad(set_to_none=True)
            scaler.scale(value).backward()
            scaler.step(opt)
            scaler.update()
            total += float(value.detach()) * len(x)
            n += len(x)
            step += 1
            if bar_cls:
                batches.set_postfix(loss=f"{float(value.detach()):.4f}", refresh=False)
            if max_steps is not None and step >= max_steps:
                break
            if max_seconds is not None and train_seconds + time.perf_counter() - t0 >= max_seconds:
                break
        train_seconds += time.perf_counter() - t0
        if world > 1:  # the epoch's loss over all processes' images
            total, n = D.all_sum([total, n], dev)
        record = {"epoch": epoch, "loss": total / max(n, 1), "time": time.perf_counter() - t0}
        if val_data is not None:  # every process evaluates the whole validation set (same weights)
            record.update(evaluate(model, val_data, loss=loss, batch_size=batch_size, device=dev,
                                   num_classes=num_classes, amp=amp if amp_dtype is not None else False))
        history.epochs.append(record)
        if progress and rank == 0:
            print(f"epoch {epoch:>3}/{epochs}  " + "  ".join(
                f"{k}={v:.4f}" for k, v in record.items() if k not in ("epoch",) and isinstance(v, float)))
        score = record.get("val_mean_iou", -record["loss"])
        if score > best:
            best = score
            if checkpoint is not None and rank == 0:
                save_checkpoint(checkpoint, model, epoch=epoch, metrics=record)
        if state is not None:
            state.epoch, state.step, state.best, state.history = epoch, step, best, list(history.epochs)
            state.optimizer = copy.deepcopy(opt.state_dict())
            state.scaler = scaler.state_dict() if scaler.is_enabled() else None
            state.rng = rng_state(loader_rng)
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
