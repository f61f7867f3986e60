"""Benchmark ``sliding_window``: the brute-force sliding window vs its convolutionalised network.

Chapter 1 classifies every pixel from the patch around it, one patch at a time, then rewrites
the same classifier as a fully convolutional network that computes every pixel's scores in one
pass. The claim to check: both give the same output, and the one-pass network is orders of
magnitude faster (each convolution is computed once per pixel, not once per overlapping patch).
The measured speed-ups are in the generated Performance appendix (``book/performance.md``).
"""

from __future__ import annotations

import math

import torch

from ...models import SlidingWindowClassifier
from ..measure import Context, max_abs_diff
from ..registry import register
from ..tables import format_value

__all__ = ["bench_sliding_window"]


def _plot_sliding_window(result):
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r.get("sliding_s")]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    sizes = [r["size"] for r in rows]
    ax.loglog(sizes, [r["sliding_s"] for r in rows], "o-", label="sliding window (one patch per pixel)")
    ax.loglog(sizes, [r["dense_s"] for r in rows], "s-", label="convolutionalised (one pass)")
    for r in rows:
        ax.annotate(f"{r['speedup']:.0f}x", (r["size"], math.sqrt(r["sliding_s"] * r["dense_s"])), ha="center",
                    fontsize=8)
    ax.set_xticks(sizes, [f"{s}²" for s in sizes])
    ax.minorticks_off()
    ax.set_xlabel("image size (pixels)")
    ax.set_ylabel("seconds per image")
    ax.set_title("Sliding window vs dense network", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _hl_sliding_window(b):
    out = []
    for r in b["rows"]:
        if r["size"] == 128 or r is b["rows"][-1]:
            out.append(f"At {r['size']}², the convolutionalised network is **{r['speedup']:.0f}x faster** than the "
                       f"sliding window ({format_value(r['sliding_s'], 'ms')} vs {format_value(r['dense_s'], 'ms')} "
                       f"per image), and the outputs are {'equal' if r['equal'] else '**not** equal'} (max |diff| "
                       f"{r['max_abs_diff']:.1e}).")
    return out[:1] + ([out[-1]] if len(out) > 1 else [])


@register("sliding_window", "Sliding window vs its convolutionalised network: time per image, equality",
          columns=[("size", "size", "d"), ("patches", "patches", "count"), ("sliding_s", "sliding", "ms"),
                   ("dense_s", "dense", "ms"), ("speedup", "speed-up", "x"), ("max_abs_diff", "max |diff|", "e")],
          requires=("segedu.models.SlidingWindowClassifier",), plot=_plot_sliding_window,
          highlight=_hl_sliding_window)
def bench_sliding_window(ctx: Context):
    torch.manual_seed(0)
    clf = SlidingWindowClassifier().eval().to(ctx.device)  # chapter 1's default classifier
    dense = clf.to_fcn().eval()
    ctx.summary["model"] = dict(clf.config)
    sizes = ctx.pick([16], [32, 64, 128], [32, 64, 128, 256])
    speedups = {}
    for s in ctx.track(sizes, "sliding window"):
        x = torch.rand(1, clf.in_channels, s, s, generator=torch.Generator().manual_seed(s)).to(ctx.device)
        with torch.inference_mode():
            a, b = clf.segment(x, progress=False), dense(x)
            # The brute force takes seconds per image: few repeats, no separate warm-up (the
            # equality run above already warmed both up).
            t = ctx.time({"sliding": lambda: clf.segment(x, progress=False), "dense": lambda: dense(x)},
                         repeats=ctx.pick(1, 2, 3), warmup=0)
        speedup = t["sliding"]["median"] / t["dense"]["median"]
        speedups[s] = speedup
        ctx.row(size=s, patches=s * s, sliding_s=t["sliding"]["median"], dense_s=t["dense"]["median"],
                speedup=speedup, max_abs_diff=max_abs_diff(a, b),
                equal=bool(torch.allclose(a.cpu(), b.cpu(), atol=1e-4)),
                samples=t)
    ctx.summary["speedup_at"] = speedups
    ctx.summary["all_equal"] = all(r["equal"] for r in ctx.rows)
