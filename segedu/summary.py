"""Summaries of experiment rows: tables, spreads over seeds, the Pareto front, paired verdicts.

Pure functions of the rows that :func:`segedu.experiments.compare` returns (one dict per
dataset x model x seed): nothing here trains or imports a model, so the figures in
:mod:`segedu.viz` and the experiment runner can both use it without importing each other.

Introduced in chapter 7.
"""

from __future__ import annotations

import math
import statistics

__all__ = ["summarize", "format_table", "pareto_front", "student_t_quantile", "paired_verdict", "paired_verdicts",
           "format_verdict", "format_interval", "seeds_to_resolve"]


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


# --- evidence that holds: paired differences with an interval ---------------------------------
#
# "Model A beats model B" is a claim about *seeds*: train both again with other seeds and would A
# still win? Each seed trains both models on the same data split with the same initial random
# stream, so the honest unit of evidence is the *paired* difference a - b at one seed. With n such
# differences the mean difference has the Student t interval mean ± t · sd/√n: it is wide when the
# seeds disagree or are few, and a comparison is only called when the whole interval is on one
# side of zero.

# Metrics where a larger value is better: only for these does format_verdict say "better". For a
# cost (milliseconds, seconds, parameters) it says "higher" and lets the reader draw the conclusion.
_HIGHER_IS_BETTER = {"mean_iou", "dice", "pixel_accuracy", "foreground_iou", "membrane_dice", "membrane_iou",
                     "boundary_accuracy", "cells_recovered", "average_precision", "best_threshold_dice"}


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b), the regularized incomplete beta function, by its continued fraction.

    The continued fraction converges fast for ``x < (a + 1) / (a + b + 2)``; on the other side the
    symmetry I_x(a, b) = 1 - I_{1-x}(b, a) moves the argument there (Numerical Recipes, §6.4;
    evaluated with the modified Lentz method).
    """
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    if x > (a + 1.0) / (a + b + 2.0):
        return 1.0 - _regularized_beta(1.0 - x, b, a)
    # the prefactor x^a (1-x)^b / (a B(a, b)), in logs so that large a, b do not overflow
    log_beta = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    log_front = a * math.log(x) + b * math.log1p(-x) - math.log(a) - log_beta
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 1000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),            # even step
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):  # odd step
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return math.exp(log_front) * h


def _student_t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom.

    The tail beyond |t| is half of I_{df/(df+t²)}(df/2, 1/2): the textbook link between the t and
    the beta distribution.
    """
    tail = 0.5 * _regularized_beta(df / (df + t * t), df / 2.0, 0.5)
    return 1.0 - tail if t > 0 else tail


def student_t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t distribution with ``df`` degrees of freedom.

    ``student_t_quantile(0.975, n - 1)`` is the factor of a 95% interval from n seeds: 12.71 for
    two seeds, 2.26 for ten, 1.96 (the normal value) in the limit ``df = math.inf``. The CDF is
    monotone, so the quantile is found by bisection on it — slow by numerical standards (about a
    hundred CDF calls) but exact to ~1e-12 and free of any table or of scipy.
    """
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1, got p={p}")
    if not df > 0:
        raise ValueError(f"Student's t needs df > 0 degrees of freedom, got df={df}")
    if math.isinf(df):
        return statistics.NormalDist().inv_cdf(p)
    if p < 0.5:  # the distribution is symmetric about 0
        return -student_t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while _student_t_cdf(hi, df) < p:  # widen until the quantile is bracketed (63.66 for p=.995, df=1)
        lo, hi = hi, 2.0 * hi
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = 0.5 * (lo + hi)
        if _student_t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _metric_value(row: dict, metric: str) -> float:
    """The row's ``metric`` as a float, refusing NaN: a NaN is a failed run, never a data point."""
    value = row[metric]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"metric {metric!r} of model {row['model']!r} at seed {row.get('seed')!r} is "
                         f"{value!r}, not a number")
    if math.isnan(value):
        raise ValueError(f"metric {metric!r} is NaN for model {row['model']!r} at seed {row.get('seed')!r}: "
                         "rerun or drop that run; a NaN cannot be averaged into a difference")
    return float(value)


def _by_seed(rows: list[dict], model: str, metric: str) -> dict:
    """``{seed: value}`` for one model, refusing a seed that appears twice (pairing would be ambiguous)."""
    out = {}
    for r in rows:
        if r["model"] != model:
            continue
        if "seed" not in r:
            raise ValueError(f"a row of model {model!r} has no 'seed': runs are paired by seed")
        if r["seed"] in out:
            raise ValueError(f"model {model!r} has more than one row for seed {r['seed']!r}; "
                             "paired differences need one run per model and seed")
        out[r["seed"]] = _metric_value(r, metric)
    return out


def paired_verdict(rows: list[dict], a: str, b: str, metric: str = "mean_iou", dataset=None,
                   level: float = 0.95) -> dict:
    """Does model ``a`` beat model ``b`` on ``metric``, beyond what the seeds disagree on?

    Pairs the runs of ``a`` and ``b`` by seed (a seed only one of them has is left out), takes the
    differences a - b and returns::

        {"a", "b", "metric", "dataset", "level",
         "n":         paired seeds,
         "mean_diff": mean of a - b over them,
         "ci_low", "ci_high": the ``level`` Student t interval of that mean (NaN for n < 2),
         "wins":      seeds where a > b,
         "verdict":   "a>b" if ci_low > 0, "b>a" if ci_high < 0, else "unresolved"}

    ``rows`` is the output of :func:`segedu.experiments.compare`; with rows of several datasets
    name one with ``dataset=``. ``dataset`` in the result is ``None`` when the rows hold one
    dataset and none was named. "unresolved" is not "equal": it says this many seeds cannot tell
    the two apart — more seeds (or a larger real difference) might.
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level is a confidence level in (0, 1), e.g. 0.95; got {level}")
    datasets = list(dict.fromkeys(r.get("dataset") for r in rows))
    if dataset is None:
        if len(datasets) > 1:
            raise ValueError(f"the rows hold several datasets {datasets}; name one with dataset=")
    else:
        if dataset not in datasets:
            raise ValueError(f"dataset {dataset!r} is not in the rows; available: {datasets}")
        rows = [r for r in rows if r.get("dataset") == dataset]
    models = list(dict.fromkeys(r["model"] for r in rows))
    for name in (a, b):
        if name not in models:
            where = f" of dataset {dataset!r}" if dataset is not None else ""
            raise ValueError(f"model {name!r} is not in the rows{where}; available: {models}")
    pair_rows = [r for r in rows if r["model"] in (a, b)]
    missing = [r for r in pair_rows if metric not in r]
    if missing:
        numeric = sorted(k for k, v in pair_rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)
                         and k != "seed")
        raise ValueError(f"metric {metric!r} is missing from the rows of model {missing[0]['model']!r}; "
                         f"numeric keys there: {numeric}")
    values_a, values_b = _by_seed(rows, a, metric), _by_seed(rows, b, metric)
    seeds = [s for s in values_a if s in values_b]  # in a's order, so the result never depends on b's
    diffs = [values_a[s] - values_b[s] for s in seeds]
    n = len(diffs)
    mean_diff = statistics.fmean(diffs) if n else math.nan
    ci_low = ci_high = math.nan
    if n >= 2:
        half = student_t_quantile((1.0 + level) / 2.0, n - 1) * statistics.stdev(diffs) / math.sqrt(n)
        ci_low, ci_high = mean_diff - half, mean_diff + half
    # NaN compares False both ways, so an interval that could not be computed stays "unresolved"
    verdict = "a>b" if ci_low > 0 else "b>a" if ci_high < 0 else "unresolved"
    return {"a": a, "b": b, "metric": metric, "dataset": dataset, "level": level, "n": n, "mean_diff": mean_diff,
            "ci_low": ci_low, "ci_high": ci_high, "wins": sum(d > 0 for d in diffs), "verdict": verdict}


def paired_verdicts(rows: list[dict], comparisons, level: float = 0.95) -> list[dict]:
    """:func:`paired_verdict` for each ``(a, b, metric)`` or ``(a, b, metric, dataset)`` in ``comparisons``.

    Each verdict has its own ``level`` interval; with many comparisons some intervals will miss by
    chance alone (one in twenty at 95%), so a long list is a map of where to look, not a set of proofs.
    """
    out = []
    for c in comparisons:
        if not isinstance(c, (tuple, list)) or len(c) not in (3, 4):
            raise ValueError(f"a comparison is (a, b, metric) or (a, b, metric, dataset), got {c!r}")
        out.append(paired_verdict(rows, c[0], c[1], c[2], dataset=c[3] if len(c) == 4 else None, level=level))
    return out


def format_verdict(v: dict) -> str:
    """One line a reader can quote: the difference, its interval, the seed count and what follows.

    ``"BCE + Dice vs BCE, dice: +0.104 [+0.061, +0.147] (95% CI, 10 seeds; wins 9/10) -> BCE + Dice better"``
    """
    head = f"{v['a']} vs {v['b']}, {v['metric']}" + (f" ({v['dataset']})" if v.get("dataset") is not None else "")
    n, seeds = v["n"], "seed" if v["n"] == 1 else "seeds"
    if n == 0:
        return f"{head}: no seed has a run of both -> unresolved at this budget"
    level = f"{100 * v.get('level', 0.95):g}%"
    if math.isnan(v["ci_low"]):
        body = f"{v['mean_diff']:+.3f} (no {level} CI from {n} {seeds}; wins {v['wins']}/{n})"
    else:
        body = (f"{v['mean_diff']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}] "
                f"({level} CI, {n} {seeds}; wins {v['wins']}/{n})")
    if v["verdict"] == "unresolved":
        return f"{head}: {body} -> unresolved at this budget"
    winner = v["a"] if v["verdict"] == "a>b" else v["b"]
    word = "better" if v["metric"] in _HIGHER_IS_BETTER else "higher"
    return f"{head}: {body} -> {winner} {word}"


def format_interval(v: dict) -> str:
    """The numbers of a verdict in the short form prose quotes: ``"+0.103 [+0.042, +0.164], 10/10 seeds"``
    (mean paired difference, its interval, and the seeds where a beat b out of all paired seeds)."""
    if v["n"] == 0:
        return "no paired seeds"
    if math.isnan(v["ci_low"]):
        return f"{v['mean_diff']:+.3f} (no interval from {v['n']} seed), {v['wins']}/{v['n']} seeds"
    return f"{v['mean_diff']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}], {v['wins']}/{v['n']} seeds"


def seeds_to_resolve(v: dict, max_seeds: int = 10_000) -> int | None:
    """How many seeds an ``"unresolved"`` verdict would need, if the seed-to-seed spread and the mean
    difference stayed as measured: the smallest n whose t interval excludes 0. This is what "what
    budget would resolve it" means; ``None`` when the measured mean difference is 0 or more than
    ``max_seeds`` would be needed (the difference, if any, is too small to chase with seeds). A
    resolved verdict returns its own seed count."""
    n = v["n"]
    if n < 2 or math.isnan(v["ci_low"]):
        return None
    if v["verdict"] != "unresolved":
        return n
    if v["mean_diff"] == 0:
        return None
    # half-width = t(n-1) * sd / sqrt(n)  ->  recover sd from the stored interval
    p = (1 + v.get("level", 0.95)) / 2
    sd = (v["ci_high"] - v["ci_low"]) / 2 * math.sqrt(n) / student_t_quantile(p, n - 1)
    # t > z for every df, so no m below (z sd / |mean|)^2 can do: start the search there
    first = max(n + 1, math.ceil((statistics.NormalDist().inv_cdf(p) * sd / abs(v["mean_diff"])) ** 2))
    for m in range(first, max_seeds + 1):
        if student_t_quantile(p, m - 1) * sd / math.sqrt(m) < abs(v["mean_diff"]):
            return m
    return None
