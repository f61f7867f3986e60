"""Benchmark ``train_step``: a training step and inference of every model, in every mode.

Every chapter's default model (and, at ``--full`` scale, the papers' configurations) is trained
for a few steps in each mode of :mod:`segedu.bench.cases.modes` — float32, channels-last,
bfloat16/float16 autocast, ``torch.compile`` — from the same weights on the same batch. For each
mode the benchmark reports the training step's time and its speed relative to float32, inference
throughput, and whether the first forward pass agrees with float32 within the mode's tolerance.
It is the measurement behind ``fit``'s defaults (:func:`segedu.runtime.resolve_amp`,
:func:`segedu.runtime.resolve_channels_last`); the numbers are in the generated Performance
appendix (``book/performance.md``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from ... import models as M
from ...models import count_parameters, last_output
from ...runtime import synchronize
from ..measure import Context
from ..registry import Skip, register, resolve
from .modes import CPU_MODES, CUDA_MODES, MODES, TOLERANCE, ModeRunner, compile_available

__all__ = ["ModelCase", "bench_train_step"]


@dataclass
class ModelCase:
    """A model at one configuration: ``build()`` -> module, input ``[N, C, H, W]``, classes."""

    name: str
    build: Callable[[], nn.Module]
    shape: tuple
    num_classes: int
    requires: str
    patches: bool = False  # a patch classifier: targets are one class per sample
    paper: bool = False  # a paper's configuration (large on a CPU)


def _model_cases(ctx) -> list[ModelCase]:
    """The chapters' default configurations, then (``full`` scale) the papers' configurations."""
    def get(name):
        return lambda *a, **k: getattr(M, name)(*a, **k)

    tiny = ctx.scale == "tiny"
    s = 32 if tiny else 64
    cases = [
        ModelCase("sliding-window classifier (ch. 1)", lambda: get("SlidingWindowClassifier")(),
                  (8 if tiny else 64, 3, 25, 25), 4, "segedu.models.SlidingWindowClassifier", patches=True),
        ModelCase("FCN-8s (ch. 2)", lambda: get("FCN")(num_classes=4, variant="8s", in_channels=3),
                  (2 if tiny else 8, 3, s, s), 4, "segedu.models.FCN"),
        ModelCase("U-Net, same padding, base 16 (ch. 5)",
                  lambda: get("UNet")(in_channels=3, num_classes=4, base_channels=16, padding="same"),
                  (2 if tiny else 8, 3, s, s), 4, "segedu.models.UNet"),
        ModelCase("UNet++ deep supervision, base 16 (ch. 6)",
                  lambda: get("UNetPlusPlus")(in_channels=3, num_classes=4, base_channels=16, deep_supervision=True),
                  (2 if tiny else 8, 3, s, s), 4, "segedu.models.UNetPlusPlus"),
    ]
    if ctx.scale == "full":
        cases += [
            ModelCase("U-Net paper (valid, base 64, 572²)",
                      lambda: get("UNet")(in_channels=1, num_classes=2, depth=4, base_channels=64, padding="valid"),
                      (1, 1, 572, 572), 2, "segedu.models.UNet", paper=True),
            ModelCase("UNet++ paper widths (base 32, 96²)",
                      lambda: get("UNetPlusPlus")(in_channels=1, num_classes=1, depth=4, base_channels=32,
                                                  deep_supervision=True),
                      (8, 1, 96, 96), 1, "segedu.models.UNetPlusPlus", paper=True),
            ModelCase("FCN-8s paper input (500²)", lambda: get("FCN")(num_classes=21, variant="8s", in_channels=3),
                      (1, 3, 500, 500), 21, "segedu.models.FCN", paper=True),
        ]
    return cases


def _rel_diff(out, ref) -> float:
    out, ref = last_output(out).float(), last_output(ref).float()
    return float((out - ref).abs().max() / ref.abs().max().clamp(min=1e-12))


def _plot_train_step(result):
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r.get("step_s")]
    models = list(dict.fromkeys(r["model"] for r in rows))
    modes = list(dict.fromkeys(r["mode"] for r in rows))
    fig, ax = plt.subplots(figsize=(6.4, 0.5 + 0.45 * len(models) * max(1, len(modes)) / 2.2))
    h = 0.8 / max(1, len(modes))
    for j, mode in enumerate(modes):
        speed = []
        for m in models:
            ref = next((r for r in rows if r["model"] == m and r["mode"] == "fp32"), None)
            r = next((r for r in rows if r["model"] == m and r["mode"] == mode), None)
            speed.append(ref["step_s"] / r["step_s"] if (r and ref) else np.nan)
        ax.barh(np.arange(len(models)) + j * h, speed, height=h, label=mode)
    ax.axvline(1, color="k", lw=0.8)
    ax.set_yticks(np.arange(len(models)) + h * (len(modes) - 1) / 2, [m.split(" (")[0] + "\n(" + m.split(" (", 1)[1]
                                                                     if " (" in m else m for m in models],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("training-step speed relative to fp32 (higher is faster)")
    ax.set_title("Training step: precision, memory format, compilation", fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _hl_train_step(b):
    out = []
    best = b["summary"].get("fastest_correct", {})
    by_model = {}
    for r in b["rows"]:
        by_model.setdefault(r["model"], {})[r["mode"]] = r
    for model, modes in by_model.items():
        fp32, fast = modes.get("fp32"), best.get(model)
        if fp32 and fast:
            others = ", ".join(f"{m} {r['vs_fp32']:.2f}x" for m, r in modes.items() if m != "fp32")
            out.append(f"{model}: fastest correct mode **{fast}** ({modes[fast]['vs_fp32']:.2f}x the speed of "
                       f"fp32; {others}).")
    wrong = [f"{r['model']} / {r['mode']}" for r in b["rows"] if not r["correct"]]
    if wrong:
        out.append("Outside the tolerance (not counted as correct): " + ", ".join(wrong) + ".")
    return out


def _modes_to_run(ctx) -> list[str]:
    """The modes asked for (or the device's default list), less those that cannot run here."""
    modes = ctx.modes or (CUDA_MODES if ctx.cuda else CPU_MODES)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown train_step mode(s) {unknown}; choose from {list(MODES)}")
    if not ctx.cuda and "fp16" in modes:
        ctx.note("fp16 autocast is a GPU mode; skipped on the CPU")
        modes = [m for m in modes if "fp16" not in m]
    compile_ok, why = compile_available(ctx.device)
    if any("compile" in m for m in modes):
        if not compile_ok:
            ctx.note(f"compile modes skipped: {why}")
            modes = [m for m in modes if "compile" not in m]
        elif ctx.scale != "full" and ctx.modes is None:
            ctx.note("compile modes are measured only at --full scale (compiling takes about a minute per model)")
            modes = [m for m in modes if "compile" not in m]
    return modes


@register("train_step", "Training step (forward + loss + backward + Adam) and inference, per model and mode",
          columns=[("model", "model", "s"), ("mode", "mode", "s"), ("step_s", "train step", "ms"),
                   ("vs_fp32", "speed vs fp32", "x"), ("images_per_s", "inference img/s", ".4g"),
                   ("rel_diff", "rel. diff", "e"), ("correct", "correct", "")],
          requires=("segedu.models",), plot=_plot_train_step, highlight=_hl_train_step)
def bench_train_step(ctx: Context):
    modes = _modes_to_run(ctx)
    best = {}
    for case in ctx.track(_model_cases(ctx), "train step"):
        try:
            resolve(case.requires)
        except Skip as e:
            ctx.note(f"{case.name}: skipped, {e}")
            continue
        case_modes = modes
        if case.paper and not ctx.cuda and ctx.modes is None:
            # On 2 CPU cores one compilation of a paper-sized network takes minutes; the
            # chapter-sized models above already show what compilation gains on the CPU.
            case_modes = [m for m in modes if "compile" not in m]
        torch.manual_seed(0)
        base = case.build()
        g = torch.Generator().manual_seed(0)
        x = torch.rand(case.shape, generator=g).to(ctx.device)
        y_shape = case.shape[:1] if case.patches else (case.shape[0], *case.shape[2:])
        y = torch.randint(0, max(2, case.num_classes), y_shape, generator=g).to(ctx.device)
        if case.num_classes == 1:
            y = y.clamp(max=1)
        runners, refs, first_s = {}, {}, {}
        for mode in case_modes:
            t0 = time.perf_counter()
            try:
                r = ModeRunner(base, x, y, mode, ctx.device)
                # The first forward: same weights, same batch in every mode (with autograd on, as
                # in training, so that a compiled model is compiled once for training).
                refs[mode] = last_output(r.forward()).detach()
            except Exception as e:  # noqa: BLE001 - a mode that fails here is reported, not fatal
                if "compile" not in mode or mode == "fp32":
                    raise
                ctx.note(f"{case.name}, {mode}: failed ({type(e).__name__}: {str(e).splitlines()[0][:160]})")
                continue
            synchronize(ctx.device)
            first_s[mode] = time.perf_counter() - t0
            runners[mode] = r
        t_step = ctx.time({m: r.step for m, r in runners.items()})
        t_inf = ctx.time({m: r.infer for m, r in runners.items()})
        params = count_parameters(base)
        ok = []
        for mode in runners:
            reduced = MODES[mode].get("amp") is not None
            rel = _rel_diff(refs[mode], refs["fp32"]) if "fp32" in refs else None
            correct = rel is not None and rel <= TOLERANCE["reduced" if reduced else "fp32"]
            if correct:
                ok.append(mode)
            ctx.row(model=case.name, mode=mode, input=list(case.shape), parameters=params,
                    step_s=t_step[mode]["median"],
                    vs_fp32=t_step["fp32"]["median"] / t_step[mode]["median"] if "fp32" in t_step else None,
                    images_per_s=case.shape[0] / t_inf[mode]["median"], infer_s=t_inf[mode]["median"],
                    rel_diff=rel, correct=correct, first_call_s=first_s[mode],
                    step_samples=t_step[mode]["samples"], infer_samples=t_inf[mode]["samples"])
        best[case.name] = min(ok, key=lambda m: t_step[m]["median"]) if ok else None
        del runners, refs
    if not ctx.cuda and ctx.modes is None and any(c.paper for c in _model_cases(ctx)):
        ctx.note("on the CPU the papers' configurations are not compiled (minutes per compilation on 2 cores); "
                 "the chapter-sized models show what compilation gains")
    ctx.summary["modes"] = modes
    ctx.summary["fastest_correct"] = best
