"""Benchmark ``plain_unet``: segedu's U-Net vs a plain, straightforward implementation of it.

:class:`PlainUNet` is the U-Net as it is usually written in tutorials and public repositories: a
DoubleConv module, Down = max-pool + DoubleConv, Up = transposed convolution + pad-to-match +
concatenate + DoubleConv, four levels written out by hand. It is here only to be measured
against; the course's U-Net is :class:`segedu.models.UNet`.

The claims to check: the two are the same network (equal parameter counts, and equal outputs once
:func:`copy_weights_by_shape` has copied segedu's weights over), and segedu's generality (any
depth, padding, normalisation, upsampling) costs nothing measurable in a training step. The
measured ratios are in the generated Performance appendix (``book/performance.md``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ...models import UNet, count_parameters
from ..measure import Context, max_abs_diff
from ..registry import register
from ..tables import format_value
from .modes import ModeRunner

__all__ = ["PlainUNet", "copy_weights_by_shape", "bench_plain_unet"]


class _PlainDoubleConv(nn.Module):
    """(convolution => BN => ReLU) * 2"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)


class _PlainDown(nn.Module):
    """Downscaling with maxpool then double conv"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), _PlainDoubleConv(in_channels, out_channels))

    def forward(self, x):
        return self.maxpool_conv(x)


class _PlainUp(nn.Module):
    """Upscaling then double conv"""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, kernel_size=2, stride=2)
        self.conv = _PlainDoubleConv(in_channels, out_channels)

    def forward(self, x1, x2):
        x1 = self.up(x1)
        diff_y = x2.size()[2] - x1.size()[2]
        diff_x = x2.size()[3] - x1.size()[3]
        x1 = F.pad(x1, [diff_x // 2, diff_x - diff_x // 2, diff_y // 2, diff_y - diff_y // 2])
        x = torch.cat([x2, x1], dim=1)
        return self.conv(x)


class PlainUNet(nn.Module):
    """A U-Net written the usual straightforward way (same padding, batch norm, transposed
    convolutions, four levels) — the baseline of the ``plain_unet`` benchmark.

    Same architecture as ``segedu.models.UNet(in_channels, num_classes, depth=4,
    base_channels=base, padding="same", norm="batch", up="transpose")``; the benchmark checks that
    the parameter counts are equal and that, with the weights copied over, the outputs agree.
    """

    def __init__(self, n_channels=1, n_classes=2, base=64):
        super().__init__()
        self.inc = _PlainDoubleConv(n_channels, base)
        self.down1 = _PlainDown(base, base * 2)
        self.down2 = _PlainDown(base * 2, base * 4)
        self.down3 = _PlainDown(base * 4, base * 8)
        self.down4 = _PlainDown(base * 8, base * 16)
        self.up1 = _PlainUp(base * 16, base * 8)
        self.up2 = _PlainUp(base * 8, base * 4)
        self.up3 = _PlainUp(base * 4, base * 2)
        self.up4 = _PlainUp(base * 2, base)
        self.outc = nn.Conv2d(base, n_classes, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x5 = self.down4(x4)
        x = self.up1(x5, x4)
        x = self.up2(x, x3)
        x = self.up3(x, x2)
        x = self.up4(x, x1)
        return self.outc(x)


def copy_weights_by_shape(src: nn.Module, dst: nn.Module) -> bool:
    """Copy a ``segedu.models.UNet``'s parameters and buffers into a :class:`PlainUNet`.

    Both register the same tensors, in a different order: segedu keeps the encoder blocks, the
    up-convolutions and the decoder blocks in three lists, the plain network interleaves each
    up-convolution with its decoder block. The segedu tensors are put in the plain order and
    copied one by one; returns ``False`` if the shapes do not line up (different architectures).
    """
    state = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    depth = len(getattr(src, "up", []))
    groups = [f"down.{i}." for i in range(depth + 1)]
    groups += [g for k in range(depth) for g in (f"up.{k}.", f"decode.{k}.")] + ["head."]
    a = [v for g in groups for k, v in state.items() if k.startswith(g)]
    b = [v for k, v in dst.state_dict().items() if not k.endswith("num_batches_tracked")]
    if len(a) != len(state) or len(a) != len(b) or any(va.shape != vb.shape for va, vb in zip(a, b)):
        return False
    with torch.no_grad():
        for va, vb in zip(a, b):
            vb.copy_(va)
    return True


def _plot_plain(result):
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(5.6, 0.9 + 0.5 * len(rows)))
    y = np.arange(len(rows))
    ax.barh(y - 0.2, [r["plain_step_s"] * 1e3 for r in rows], 0.4, label="plain implementation")
    ax.barh(y + 0.2, [r["segedu_step_s"] * 1e3 for r in rows], 0.4, label="segedu.models.UNet")
    ax.set_yticks(y, [r["config"] for r in rows], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("training step (ms, median)")
    ax.set_title("Same U-Net, two implementations", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _hl_plain_unet(b):
    out = []
    for r in b["rows"]:
        rel = "faster" if r["step_ratio"] >= 1 else "slower"
        out.append(f"{r['config']}: same architecture ({r['parameters']:,} parameters in both; outputs with "
                   f"copied weights differ by at most {r['max_abs_diff']:.1e}); segedu's training step is "
                   f"**{abs(r['step_ratio'] - 1) * 100:.0f}% {rel}** than the plain implementation's "
                   f"({format_value(r['segedu_step_s'], 'ms')} vs {format_value(r['plain_step_s'], 'ms')}), "
                   f"inference {r['infer_ratio']:.2f}x.")
    return out


@register("plain_unet", "segedu's U-Net vs a plain implementation of the same architecture",
          columns=[("config", "config", "s"), ("parameters", "parameters", "count"),
                   ("same_parameters", "equal params", ""), ("max_abs_diff", "max |diff|", "e"),
                   ("plain_step_s", "plain step", "ms"), ("segedu_step_s", "segedu step", "ms"),
                   ("step_ratio", "plain/segedu", "x"), ("infer_ratio", "infer plain/segedu", "x")],
          requires=("segedu.models.UNet",), plot=_plot_plain, highlight=_hl_plain_unet)
def bench_plain_unet(ctx: Context):
    configs = ctx.pick(
        [("base 8, 32², batch 2", 3, 4, 8, (2, 3, 32, 32))],
        [("chapter size: base 16, 64², batch 8", 3, 4, 16, (8, 3, 64, 64))],
        [("chapter size: base 16, 64², batch 8", 3, 4, 16, (8, 3, 64, 64)),
         ("paper widths: base 64, 256², batch 2", 1, 2, 64, (2, 1, 256, 256))],
    )
    ratios = []
    for config, c_in, k, base, shape in ctx.track(configs, "plain vs segedu"):
        torch.manual_seed(0)
        ours = UNet(in_channels=c_in, num_classes=k, depth=4, base_channels=base, padding="same", norm="batch",
                    up="transpose").to(ctx.device)
        plain = PlainUNet(c_in, k, base).to(ctx.device)
        n_ours, n_plain = count_parameters(ours), count_parameters(plain)
        copied = copy_weights_by_shape(ours, plain)
        g = torch.Generator().manual_seed(0)
        x = torch.rand(shape, generator=g).to(ctx.device)
        y = torch.randint(0, k, (shape[0], *shape[2:]), generator=g).to(ctx.device)
        diff = None
        if copied:
            with torch.no_grad():
                diff = max_abs_diff(ours.eval()(x), plain.eval()(x))
            ours.train(), plain.train()
        r_ours = ModeRunner(ours, x, y, "fp32", ctx.device)
        r_plain = ModeRunner(plain, x, y, "fp32", ctx.device)
        # The claim checked here is a ratio close to 1, so it gets more repeats than the rest.
        budget = ctx.pick(2, 20, 150)
        t = ctx.time({"plain": r_plain.step, "segedu": r_ours.step}, repeats=max(ctx.repeats, 7), max_seconds=budget)
        ti = ctx.time({"plain": r_plain.infer, "segedu": r_ours.infer}, repeats=max(ctx.repeats, 7),
                      max_seconds=budget)
        ratio = t["plain"]["median"] / t["segedu"]["median"]
        ratios.append(ratio)
        ctx.row(config=config, parameters=n_ours, plain_parameters=n_plain, same_parameters=n_ours == n_plain,
                weights_copied=copied, max_abs_diff=diff, plain_step_s=t["plain"]["median"],
                segedu_step_s=t["segedu"]["median"], step_ratio=ratio,
                plain_infer_s=ti["plain"]["median"], segedu_infer_s=ti["segedu"]["median"],
                infer_ratio=ti["plain"]["median"] / ti["segedu"]["median"], samples={"step": t, "infer": ti})
    ctx.summary["step_ratio_min"] = min(ratios) if ratios else None
