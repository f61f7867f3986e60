"""Benchmark ``unetpp_pruning``: inference time and size of UNet++ pruned to L1..L4.

A deeply supervised UNet++ has a head at every depth, and chapter 6 prunes it at inference: the
network cut at level ``L`` keeps only what the head ``X^{0,L}`` needs. The claims to check: the
pruned network computes exactly that head of the full network, with a fraction of the parameters
and of the time. The measured speed-ups are in the generated Performance appendix
(``book/performance.md``).
"""

from __future__ import annotations

import torch

from ...models import UNetPlusPlus, count_parameters, last_output
from ..measure import Context, max_abs_diff
from ..registry import register

__all__ = ["bench_unetpp_pruning"]


def _plot_pruning(result):
    import matplotlib.pyplot as plt

    rows = result["rows"]
    fig, ax = plt.subplots(figsize=(5, 3))
    levels = [f"L{r['level']}" for r in rows]
    ax.bar(levels, [r["infer_s"] * 1e3 for r in rows], color="tab:blue")
    ax.set_ylabel("inference (ms per batch)")
    ax2 = ax.twinx()
    ax2.plot(levels, [r["parameters"] / 1e6 for r in rows], "o-", color="tab:orange")
    ax2.set_ylabel("parameters (millions)", color="tab:orange")
    ax.set_title("Pruned UNet++: time and size", fontsize=10)
    fig.tight_layout()
    return fig


def _hl_unetpp_pruning(b):
    rows = {r["level"]: r for r in b["rows"]}
    if 1 not in rows or 4 not in rows:
        return []
    exact = all(r["max_abs_diff"] is not None and r["max_abs_diff"] < 1e-5 for r in rows.values())
    return [f"UNet++ L1 runs **{rows[1]['speedup_vs_L4']:.1f}x faster** than the full L4 with "
            f"{100 * rows[1]['parameters'] / rows[4]['parameters']:.1f}% of its parameters; "
            + ("every pruned network reproduces the full network's head of its level exactly." if exact else
               "the pruned networks' outputs differ from the full network's heads (see max |diff|).")]


@register("unetpp_pruning", "UNet++ pruned to L1..L4: inference time and parameter count",
          columns=[("level", "level", "d"), ("parameters", "parameters", "count"), ("infer_s", "inference", "ms"),
                   ("speedup_vs_L4", "speed-up vs L4", "x"), ("max_abs_diff", "max |diff| vs head", "e")],
          requires=("segedu.models.UNetPlusPlus",), plot=_plot_pruning, highlight=_hl_unetpp_pruning)
def bench_unetpp_pruning(ctx: Context):
    base, shape = ctx.pick((8, (2, 1, 32, 32)), (16, (4, 1, 96, 96)), (32, (4, 1, 96, 96)))
    torch.manual_seed(0)
    full = UNetPlusPlus(in_channels=1, num_classes=1, depth=4, base_channels=base, deep_supervision=True)
    full = full.to(ctx.device).eval()
    ctx.summary.update(base_channels=base, input=list(shape))
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(ctx.device)
    with torch.inference_mode():
        heads = full(x)
    pruned = {level: full.pruned(level).to(ctx.device).eval() for level in range(1, 5)}
    with torch.inference_mode():
        outs = {level: last_output(m(x)) for level, m in pruned.items()}
        t = ctx.time({level: (lambda m=m: m(x)) for level, m in pruned.items()})
    for level, m in pruned.items():
        ctx.row(level=level, parameters=count_parameters(m), infer_s=t[level]["median"],
                speedup_vs_L4=t[4]["median"] / t[level]["median"],
                # the pruned network must compute exactly the full network's head X^{0,level}
                max_abs_diff=max_abs_diff(outs[level], heads[level - 1]), samples=t[level]["samples"])
