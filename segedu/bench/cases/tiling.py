"""Benchmark ``tiling``: overlap-tile vs whole-image inference of the valid U-Net.

Chapter 5 segments large images tile by tile (:func:`segedu.tiling.predict_tiled`), as the U-Net
paper does. The alternative is one pass over the whole image, mirror-padded to the smallest valid
input whose output covers it (:func:`segedu.sizes.covering_input_size`). The claims to check:
both give the same output; tiling needs less peak memory for large images (and only there); and
it costs some extra time, because the context around each tile is computed again by its
neighbours. Whole-image inference is skipped when it would exceed the memory budget. The measured
numbers are in the generated Performance appendix (``book/performance.md``).
"""

from __future__ import annotations

import torch

from ...models import UNet
from ...sizes import covering_input_size, unet_output_size
from ...tiling import mirror_pad, predict_tiled, tile_layout
from ..measure import Context, max_abs_diff
from ..registry import register
from ..tables import format_value, human_bytes

__all__ = ["bench_tiling"]


def _whole_image(model, x):
    """Whole-image inference of a valid-padding U-Net: mirror-pad the image to the smallest valid
    input whose output covers it, run the network once, crop to the image."""
    H, W = x.shape[-2:]
    size = covering_input_size(max(H, W), model.depth)
    margin = (size - unet_output_size(size, model.depth)) // 2
    padded = mirror_pad(x, margin, size - H - margin, margin, size - W - margin)
    return model(padded)[..., :H, :W]


def _plot_tiling(result):
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(7.5, 3))
    sizes = [r["size"] for r in rows]
    whole = [(r["size"], r) for r in rows if r.get("whole_s")]
    a1.loglog(sizes, [r["tiled_s"] for r in rows], "o-", label="overlap-tile")
    a1.loglog([s for s, _ in whole], [r["whole_s"] for _, r in whole], "s-", label="whole image")
    a1.set_ylabel("seconds per image")
    a2.loglog(sizes, [r["tiled_peak"] / 2**20 for r in rows], "o-", label="overlap-tile")
    a2.loglog([s for s, _ in whole], [r["whole_peak"] / 2**20 for _, r in whole], "s-", label="whole image")
    a2.set_ylabel("peak memory (MiB)")
    for ax in (a1, a2):
        ax.set_xticks(sizes, [f"{s}²" for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel("image size (pixels)")
        ax.legend(fontsize=7)
    fig.suptitle("Valid U-Net: overlap-tile vs whole-image inference", fontsize=10)
    fig.tight_layout()
    return fig


def _hl_tiling(b):
    out = []
    for r in b["rows"]:
        if r.get("whole_peak") and r["size"] >= 2048:
            out.append(f"At {r['size']}², overlap-tile ({r['tiles']} tiles) gives the "
                       f"{'same output as' if r['equal'] else '**a different output from**'} whole-image inference "
                       f"(max |diff| {r['max_abs_diff']:.1e}) with **{r['memory_ratio']:.1f}x less peak memory** "
                       f"({human_bytes(r['tiled_peak'])} vs {human_bytes(r['whole_peak'])}), and takes "
                       f"{r['tiled_s'] / r['whole_s']:.2f}x the time (the context around each tile is computed again "
                       "by its neighbours).")
    for r in b["rows"]:
        if not r.get("whole_peak"):
            out.append(f"At {r['size']}², only overlap-tile ran: {format_value(r['tiled_s'], 'ms')} with a peak of "
                       f"{human_bytes(r['tiled_peak'])}.")
    small = [r for r in b["rows"] if r.get("memory_ratio") and r["memory_ratio"] < 1]
    if small:
        out.append(f"For images up to {max(r['size'] for r in small)}² a single whole-image pass needs less memory "
                   "than tiles of the paper's size: tiling pays off only for large images.")
    return out


@register("tiling", "Overlap-tile vs whole-image inference of the valid U-Net: time, peak memory, equality",
          columns=[("size", "size", "d"), ("tiles", "tiles", "d"), ("tiled_s", "tiled", "ms"),
                   ("whole_s", "whole", "ms"), ("tiled_peak", "tiled peak", "bytes"),
                   ("whole_peak", "whole peak", "bytes"), ("memory_ratio", "whole/tiled mem", "x"),
                   ("max_abs_diff", "max |diff|", "e")],
          requires=("segedu.models.UNet", "segedu.tiling.predict_tiled"), plot=_plot_tiling, highlight=_hl_tiling)
def bench_tiling(ctx: Context):
    # The chapter's U-Net on the CPU (the paper's 64 base channels on a GPU at full scale): valid
    # padding, depth 4, the paper's 572x572 tile (smaller at the tiny scale).
    base = 64 if (ctx.cuda and ctx.scale == "full") else ctx.pick(4, 16, 16)
    tile = ctx.pick(252, 572, 572)
    torch.manual_seed(0)
    model = UNet(in_channels=1, num_classes=2, depth=4, base_channels=base, padding="valid").to(ctx.device).eval()
    ctx.summary.update(base_channels=base, tile_size=tile, tile_batch_size=4,
                       memory_budget_bytes=ctx.memory_budget)
    sizes = ctx.pick([100, 200], [256, 512, 1024], [256, 512, 1024, 2048, 4096])
    estimate = None  # whole-image peak bytes per pixel, from the last size measured
    for s in ctx.track(sizes, "tiling"):
        x = torch.rand(1, 1, s, s, generator=torch.Generator().manual_seed(s)).to(ctx.device)
        tiles = tile_layout((s, s), tile, model.depth).num_tiles
        fns = {"tiled": lambda: predict_tiled(model, x, tile_size=tile)}
        run_whole = estimate is None or estimate * s * s <= ctx.memory_budget
        if run_whole:
            fns["whole"] = lambda: _whole_image(model, x)
        else:
            ctx.note(f"{s}²: whole-image inference skipped: about {human_bytes(estimate * s * s)} estimated "
                     f"(peak per pixel at the previous size), over the {human_bytes(ctx.memory_budget)} budget")
        outs = {}

        def keep(name):  # run once under the memory probe, keeping the output for the equality check
            return lambda: outs.__setitem__(name, fns[name]())

        with torch.inference_mode():
            peaks = {k: ctx.peak_memory(keep(k)) for k in fns}
            t = ctx.time(fns, warmup=0, repeats=ctx.pick(1, 2, 3))
        diff = max_abs_diff(outs["tiled"].to(ctx.device), outs["whole"]) if run_whole else None
        if run_whole:
            estimate = peaks["whole"] / (s * s)
        ctx.row(size=s, tiles=tiles, tiled_s=t["tiled"]["median"], whole_s=t["whole"]["median"] if run_whole else None,
                tiled_peak=peaks["tiled"], whole_peak=peaks.get("whole"),
                memory_ratio=peaks["whole"] / peaks["tiled"] if run_whole else None, max_abs_diff=diff,
                equal=bool(diff is not None and diff < 1e-4) if run_whole else None, samples=t)
