"""Benchmark ``fit_throughput``: does a whole ``fit()`` keep up with its own training step?

``train_step`` times the step alone, on a batch that is already on the device. A reader's run is
a whole :func:`segedu.train.fit`: items read from a data set, collated into batches, checked for
NaN, copied to the device, the loss read back for the progress line. If any of that is slow, the
processor (or the GPU) waits for data, and the step's speed is never reached.

For each chapter configuration, on its chapter's data set, the benchmark times, interleaved:

* **fit**: ``fit(model, data, max_steps=S)`` from the same initial weights, end to end
  (``end_to_end_images_per_s``);
* **bare step**: the same ``S`` batches, collated beforehand and already on the device, through
  :func:`segedu.train.train_step` with the same optimizer (``step_images_per_s``);
* **data**: reading the same ``S`` batches from the data set's loader alone (``data_ms_per_batch``).

``fit_vs_step`` is the ratio of the first two: the share of the step's speed a real run keeps
(the target: at least 0.90 on the CPU, 0.80 on a GPU). The data sets are read once before timing
(synthetic items are cached after their first read, :mod:`segedu.data.synthetic`), so this is the
steady state of a run's second and later epochs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
from torch.utils.data import DataLoader

from ...runtime import synchronize
from ..measure import Context
from ..registry import register

__all__ = ["FitCase", "bench_fit_throughput", "TARGET"]

#: The share of the bare step's images/s that ``fit`` must keep (issue: performance).
TARGET = {"cpu": 0.90, "cuda": 0.80}


@dataclass
class FitCase:
    """One chapter configuration: a model, its data set, its loss and its batch size."""

    name: str
    build: Callable[[], torch.nn.Module]
    data: Callable[[int], torch.utils.data.Dataset]  # data(size) -> training set
    batch_size: int
    loss: Callable | None = None


def _cases(ctx) -> list[FitCase]:
    from ...data import Binary, Cells, Shapes
    from ...losses import DeepSupervisionLoss
    from ...models import FCN, SlidingWindowClassifier, UNet, UNetPlusPlus
    from ...models.sliding_window import CenterPixelPatches
    from ...train import default_loss

    n = ctx.pick(tiny=8, quick=64, full=256)
    return [
        FitCase("patch classifier, 25² patches (ch. 1)", lambda: SlidingWindowClassifier(3, 4, patch_size=25),
                lambda s: CenterPixelPatches(Shapes(n, size=s, seed=0), patch_size=25, n=128 * 64, seed=0), 128),
        FitCase("FCN-8s on Shapes (ch. 2)", lambda: FCN(4, variant="8s", in_channels=3),
                lambda s: Shapes(n, size=s, seed=0), 8),
        FitCase("U-Net valid + weight map on Cells (ch. 5b)",
                lambda: UNet(1, 2, depth=2, base_channels=8, norm="batch"),
                lambda s: Cells(n, size=s + 40, seed=0, cells=30, weights=True), 8),
        FitCase("U-Net same, base 16, on Cells (ch. 5)",
                lambda: UNet(1, 2, depth=4, base_channels=16, padding="same"),
                lambda s: Cells(n, size=s, seed=0), 8),
        FitCase("UNet++ deep supervision, base 16, binary Shapes (ch. 6)",
                lambda: UNetPlusPlus(3, 1, base_channels=16, deep_supervision=True),
                lambda s: Binary(Shapes(n, size=s, seed=0)), 8, DeepSupervisionLoss(default_loss)),
    ]


def _batches(data, batch_size: int, steps: int, seed: int = 0) -> list:
    """The first ``steps`` batches a shuffling loader with this seed gives (as ``fit`` reads them)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    while len(out) < steps:
        for batch in DataLoader(data, batch_size=batch_size, shuffle=True, generator=g):
            out.append(batch)
            if len(out) == steps:
                break
    return out


def _plot(result):
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 0.6 + 0.5 * len(rows)))
    names = [r["config"] for r in rows]
    ax.barh(range(len(rows)), [r["fit_vs_step"] for r in rows], color="tab:blue")
    target = TARGET["cuda" if result.get("device", "").startswith("cuda") else "cpu"]
    ax.axvline(target, color="k", ls="--", lw=0.8, label=f"target {target:.2f}")
    ax.axvline(1, color="0.6", lw=0.8)
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("fit() images/s ÷ bare training step images/s")
    ax.set_title("Does a whole fit() keep up with its training step?", fontsize=10)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    return fig


def _highlight(b):
    rows = b["rows"]
    if not rows:
        return []
    worst = min(rows, key=lambda r: r["fit_vs_step"])
    out = [f"A whole `fit()` kept between {worst['fit_vs_step']:.2f} ({worst['config']}) and "
           f"{max(r['fit_vs_step'] for r in rows):.2f} of its bare training step's images/s "
           f"(target {b['summary'].get('target', 0.9):.2f})."]
    slow = [r for r in rows if r["fit_vs_step"] < b["summary"].get("target", 0.9)]
    if slow:
        out.append("Below the target: " + ", ".join(f"{r['config']} ({r['data_ms_per_batch']:.2f} ms of data per "
                                                    f"batch, {r['step_ms']:.2f} ms per step)" for r in slow) + ".")
    return out


@register("fit_throughput", "Whole fit() runs vs the bare training step, per chapter configuration",
          columns=[("config", "configuration", "s"), ("batch_size", "batch", "d"), ("steps", "steps", "d"),
                   ("end_to_end_images_per_s", "fit img/s", ".4g"), ("step_images_per_s", "step img/s", ".4g"),
                   ("fit_vs_step", "fit / step", ".3f"), ("data_ms_per_batch", "data ms/batch", ".3g"),
                   ("step_ms", "step ms", ".3g")],
          requires=("segedu.models.UNetPlusPlus",), plot=_plot, highlight=_highlight)
def bench_fit_throughput(ctx: Context):
    from ...train import default_loss, fit, train_step

    size = ctx.pick(tiny=32, quick=64, full=96)
    steps = ctx.pick(tiny=3, quick=24, full=100)
    target = TARGET["cuda" if ctx.cuda else "cpu"]
    worst = None
    for case in ctx.track(_cases(ctx), "fit throughput"):
        data = case.data(size)
        for i in range(len(data)):  # read every item once: the steady state of a run's later epochs
            data[i]
        torch.manual_seed(0)
        init = case.build()
        loss = case.loss or default_loss
        batches = _batches(data, case.batch_size, steps)
        on_device = [tuple(t.to(ctx.device) for t in b) for b in batches]
        if ctx.device.type in ("cuda", "cpu"):
            on_device = [(b[0].contiguous(memory_format=torch.channels_last), *b[1:]) if b[0].dim() == 4 else b
                         for b in on_device]

        def run_fit():
            model = copy.deepcopy(init)
            fit(model, data, loss=case.loss, epochs=10**6, batch_size=case.batch_size, max_steps=steps,
                device=ctx.device, progress=False, seed=0)

        def run_steps():
            model = copy.deepcopy(init).to(ctx.device)
            if ctx.device.type in ("cuda", "cpu"):
                model.to(memory_format=torch.channels_last)
            model.train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            for k, (x, *targets) in enumerate(on_device):
                value, _ = train_step(model, x, targets, opt, loss, step=k)
            synchronize(ctx.device)
            float(value)

        def read_data():
            _batches(data, case.batch_size, steps)

        t = ctx.time({"fit": run_fit, "step": run_steps, "data": read_data})
        images = steps * case.batch_size
        fit_s, step_s, data_s = t["fit"]["median"], t["step"]["median"], t["data"]["median"]
        row = ctx.row(config=case.name, batch_size=case.batch_size, steps=steps,
                      end_to_end_images_per_s=images / fit_s, step_images_per_s=images / step_s,
                      fit_vs_step=step_s / fit_s, data_ms_per_batch=1000 * data_s / steps,
                      step_ms=1000 * step_s / steps, fit_samples=t["fit"]["samples"],
                      step_samples=t["step"]["samples"])
        worst = row["fit_vs_step"] if worst is None else min(worst, row["fit_vs_step"])
    ctx.summary.update(target=target, worst_fit_vs_step=worst, meets_target=worst is not None and worst >= target)
