"""Benchmark ``activation_memory``: a full-resolution stack vs an encoder-decoder, vs input size.

Chapter 2 argues that a segmentation network must downsample: training keeps, for the backward
pass, the activations of every layer, and a network that keeps the full resolution keeps
``depth x width x H x W`` values of them. This benchmark builds the two designs with the same
number of convolutions (:func:`segedu.memory.full_resolution_stack` and
:func:`segedu.memory.encoder_decoder_stack`) and measures, at growing input sizes, the bytes
autograd saves (:func:`segedu.memory.activation_bytes`) and the peak memory of a forward and
backward pass. The measured ratios are in the generated Performance appendix
(``book/performance.md``).
"""

from __future__ import annotations

import torch
from torch import nn

from ...memory import activation_bytes, encoder_decoder_stack, full_resolution_stack
from ...models import count_parameters
from ..measure import Context
from ..registry import register
from ..tables import human_bytes

__all__ = ["FullResolutionStack", "EncoderDecoderStack", "bench_activation_memory"]


class FullResolutionStack(nn.Sequential):
    """``layers`` 3x3 convolutions of ``width`` channels, all at the input's resolution, then a
    1x1 classifier: the "just keep the resolution" design chapter 2 argues against.

    The network of :func:`segedu.memory.full_resolution_stack` (``depth=layers``), under the
    benchmark's older name and argument order.
    """

    def __init__(self, in_channels=3, num_classes=4, width=64, layers=7):
        super().__init__(*full_resolution_stack(layers, width, in_channels, num_classes))


class EncoderDecoderStack(nn.Sequential):
    """The same number of layers, but the middle ones work at 1/2, 1/4, 1/8 resolution: one 3x3
    convolution at full resolution, ``levels`` stride-2 convolutions that halve the size and
    double the channels, ``levels`` transposed convolutions back up, then a 1x1 classifier.

    The network of :func:`segedu.memory.encoder_decoder_stack` (``depth=2 * levels + 1``), under
    the benchmark's older name and argument order.
    """

    def __init__(self, in_channels=3, num_classes=4, width=64, levels=3):
        super().__init__(*encoder_decoder_stack(2 * levels + 1, width, in_channels, num_classes))


# The bytes autograd keeps for backward: the same measurement chapter 2 makes (segedu.memory); the
# benchmark's older name for it, kept importable (not in __all__: it is defined in segedu.memory).
saved_activation_bytes = activation_bytes


def _plot_activation_memory(result):
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sizes = [r["size"] for r in rows]
    ax.loglog(sizes, [r["full_res_bytes"] / 2**20 for r in rows], "o-", label="full-resolution stack")
    ax.loglog(sizes, [r["enc_dec_bytes"] / 2**20 for r in rows], "s-", label="encoder-decoder")
    ax.set_xticks(sizes, [f"{s}²" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("input size (pixels)")
    ax.set_ylabel("activations saved for backward (MiB)")
    ax.set_title("Activation memory of one image", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _hl_activation_memory(b):
    rows = b["rows"]
    ratios = [r["ratio"] for r in rows]
    per_px = [r["full_res_bytes_per_pixel"] for r in rows]
    linear = max(per_px) / min(per_px) < 1.01
    last = rows[-1]
    span = f"{min(ratios):.2f}x" if f"{min(ratios):.2f}" == f"{max(ratios):.2f}" else \
        f"{min(ratios):.2f}-{max(ratios):.2f}x"
    return [f"The full-resolution stack keeps **{span}** the activations of the "
            f"encoder-decoder ({human_bytes(last['full_res_bytes'])} vs {human_bytes(last['enc_dec_bytes'])} "
            f"for one {last['size']}² image); "
            + ("both grow exactly in proportion to the number of pixels." if linear else
               "the bytes per pixel are not constant across sizes.")]


@register("activation_memory", "Activation memory of a full-resolution stack vs an encoder-decoder, vs input size",
          columns=[("size", "size", "d"), ("full_res_bytes", "full-res saved", "bytes"),
                   ("enc_dec_bytes", "enc-dec saved", "bytes"), ("ratio", "full/enc-dec", "x"),
                   ("full_res_peak", "full-res peak", "bytes"), ("enc_dec_peak", "enc-dec peak", "bytes")],
          plot=_plot_activation_memory, highlight=_hl_activation_memory)
def bench_activation_memory(ctx: Context):
    width = ctx.pick(8, 64, 64)
    full = FullResolutionStack(width=width).to(ctx.device)
    encdec = EncoderDecoderStack(width=width).to(ctx.device)
    ctx.summary.update(width=width, full_res_parameters=count_parameters(full),
                       enc_dec_parameters=count_parameters(encdec))
    ctx.note(f"both networks have 7 convolutions of width {width} and a 1x1 classifier; the encoder-decoder "
             "runs 3 of them at 1/2, 1/4, 1/8 resolution with 2x, 4x, 8x the channels; one image per batch")
    sizes = ctx.pick([32, 64], [64, 128, 256, 512], [64, 128, 256, 512, 1024])
    for s in ctx.track(sizes, "activation memory"):
        x = torch.rand(1, 3, s, s, generator=torch.Generator().manual_seed(s)).to(ctx.device)
        a, b = saved_activation_bytes(full, x), saved_activation_bytes(encdec, x)

        def step(model):
            out = model(x)
            out.float().square().mean().backward()
            model.zero_grad(set_to_none=True)

        # peak of a forward + backward pass (activations, gradients of activations, workspaces)
        pa, pb = ctx.peak_memory(lambda: step(full)), ctx.peak_memory(lambda: step(encdec))
        ctx.row(size=s, full_res_bytes=a, enc_dec_bytes=b, ratio=a / b, full_res_peak=pa, enc_dec_peak=pb,
                full_res_bytes_per_pixel=a / (s * s), enc_dec_bytes_per_pixel=b / (s * s))
