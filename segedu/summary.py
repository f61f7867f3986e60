"""Summaries of experiment rows: tables, spreads over seeds, the Pareto front.

Pure functions of the rows that :func:`segedu.experiments.compare` returns (one dict per
dataset x model x seed): nothing here trains or imports a model, so the figures in
:mod:`segedu.viz` and the experiment runner can both use it without importing each other.

Introduced in chapter 7.
"""

from __future__ import annotations

import math
import statistics

__all__ = ["summarize", "format_table", "pareto_front"]


def summarize(rows: list[dict], metrics=("mean_iou", "dice", "pixel_accuracy", "infer_ms_per_image",
                                         "train_seconds")) -> list[dict]:
    """Mean and spread (sample standard deviation; 0 for one seed) over seeds, per (dataset, model)."""
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["model"]), []).append(r)
    out = []
    for (d, m), rs in groups.items():
        row = {"dataset": d, "model": m, "seeds": len(rs), "parameters": rs[0]["parameters"]}
        for key in metrics:
            vals = [r[key] for r in rs]
            row[key] = statistics.fmean(vals)
            row[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        out.append(row)
    return out


def format_table(summary: list[dict], metrics=("mean_iou", "dice", "pixel_accuracy", "infer_ms_per_image")) -> str:
    """A plain-text table of :func:`summarize`'s output (mean ± std), one line per model."""
    head = f"{'dataset':<10} {'model':<22} {'params':>9} " + " ".join(f"{m:>18}" for m in metrics)
    lines = [head, "-" * len(head)]
    for r in summary:
        cells = " ".join(f"{r[m]:>10.3f} ± {r[m + '_std']:<5.3f}" for m in metrics)
        lines.append(f"{r['dataset']:<10} {r['model']:<22} {r['parameters']:>9,} {cells}")
    return "\n".join(lines)


def pareto_front(summary: list[dict], cost: str = "infer_ms_per_image", score: str = "mean_iou") -> list[str]:
    """The models no other model beats on both axes: lower ``cost`` *and* higher ``score``.

    Walk the models from cheapest to most expensive and keep each one that scores higher than every
    cheaper one: anything else is *dominated* (some cheaper model is at least as good). Returns the
    model names on the front, cheapest first. ``summary`` holds the rows of one dataset (e.g.
    ``[r for r in summarize(rows) if r["dataset"] == "Cells"]``).
    """
    datasets = {r["dataset"] for r in summary}
    if len(datasets) > 1:
        raise ValueError(f"pareto_front compares the models of one dataset, got rows of {sorted(datasets)}; "
                         "filter the summary by dataset first")
    front, best = [], -math.inf
    for r in sorted(summary, key=lambda r: (r[cost], -r[score])):
        if r[score] > best:
            front.append(r["model"])
            best = r[score]
    return front
