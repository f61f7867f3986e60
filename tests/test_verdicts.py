"""Paired verdicts: a comparison of two models is stated with its paired difference, interval and seeds.

Every number checked here is computed by hand from hand-built rows (the shape of the rows that
:func:`segedu.experiments.compare` returns), and the Student t quantile is checked against
printed tables, so nothing depends on training.
"""

from __future__ import annotations

import math

import matplotlib
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from segedu.summary import format_verdict, paired_verdict, paired_verdicts, student_t_quantile  # noqa: E402
from segedu.viz import plot_forest  # noqa: E402

# --- the t quantile ------------------------------------------------------------------------------


@pytest.mark.parametrize("p, df, expected", [
    (0.975, 7, 2.3646), (0.975, 9, 2.2622), (0.975, 2, 4.3027), (0.975, 1, 12.7062), (0.975, 4, 2.7764),
    (0.95, 10, 1.8125), (0.995, 30, 2.7500), (0.975, 60, 2.0003), (0.9, 3, 1.6377), (0.975, math.inf, 1.9600),
])
def test_t_quantile_matches_the_printed_tables(p, df, expected):
    assert student_t_quantile(p, df) == pytest.approx(expected, abs=1e-4)


def test_t_quantile_is_symmetric_and_tends_to_the_normal():
    assert student_t_quantile(0.5, 3) == pytest.approx(0.0, abs=1e-9)
    assert student_t_quantile(0.025, 5) == pytest.approx(-student_t_quantile(0.975, 5), rel=1e-12)
    assert student_t_quantile(0.975, 1e6) == pytest.approx(1.959964, abs=1e-5)
    # fewer degrees of freedom, heavier tails, wider intervals
    factors = [student_t_quantile(0.975, df) for df in (1, 2, 5, 10, 30, 1000)]
    assert factors == sorted(factors, reverse=True)


def test_t_quantile_agrees_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (0.5, 1, 2, 3, 7, 19, 59, 250):
        for p in (0.001, 0.05, 0.4, 0.8, 0.975, 0.9995):
            assert student_t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-8, abs=1e-10)


@pytest.mark.parametrize("p, df", [(0.0, 5), (1.0, 5), (1.2, 5), (0.975, 0), (0.975, -1)])
def test_t_quantile_refuses_nonsense(p, df):
    with pytest.raises(ValueError, match="p=|df="):
        student_t_quantile(p, df)


# --- hand-built rows -----------------------------------------------------------------------------

T_975_4 = 2.7764451052  # t quantile for a 95% interval from 5 seeds (df = 4)
T_975_2 = 4.3026527297  # ... from 3 seeds (df = 2)


def _rows(model, values, dataset="Cells", metric="mean_iou"):
    """One row per ``seed: value`` of ``values``, like compare's rows (the other keys only go along)."""
    return [{"dataset": dataset, "model": model, "seed": s, "dice": v / 2, "parameters": 10, "infer_ms_per_image": 1.0,
             metric: v} for s, v in values.items()]


# A beats B at every one of five seeds by 0.10, 0.12, 0.08, 0.11, 0.09: mean 0.10, and the
# deviations 0, .02, -.02, .01, -.01 give sd = sqrt(0.001 / 4) = 0.0158114.
A = {0: 0.60, 1: 0.72, 2: 0.58, 3: 0.71, 4: 0.69}
B = {0: 0.50, 1: 0.60, 2: 0.50, 3: 0.60, 4: 0.60}
CLEAR = _rows("A", A) + _rows("B", B)
HALF = T_975_4 * math.sqrt(0.001 / 4) / math.sqrt(5)  # 0.019632


def test_a_clear_win_by_hand():
    v = paired_verdict(CLEAR, "A", "B")
    assert set(v) == {"a", "b", "metric", "dataset", "level", "n", "mean_diff", "ci_low", "ci_high", "wins", "verdict"}
    assert (v["a"], v["b"], v["metric"], v["dataset"], v["level"]) == ("A", "B", "mean_iou", None, 0.95)
    assert v["n"] == 5 and v["wins"] == 5
    assert v["mean_diff"] == pytest.approx(0.10, abs=1e-12)
    assert v["ci_low"] == pytest.approx(0.10 - HALF, rel=1e-8)
    assert v["ci_high"] == pytest.approx(0.10 + HALF, rel=1e-8)
    assert v["verdict"] == "a>b"


def test_swapping_the_models_mirrors_the_verdict():
    v = paired_verdict(CLEAR, "B", "A")
    assert v["mean_diff"] == pytest.approx(-0.10, abs=1e-12)
    assert (v["ci_low"], v["ci_high"]) == pytest.approx((-0.10 - HALF, -0.10 + HALF), rel=1e-8)
    assert v["wins"] == 0 and v["verdict"] == "b>a"


def test_pairing_is_by_seed_whatever_the_order_and_a_lone_seed_is_left_out():
    # B's rows in another order, a seed 9 only A has and a seed 7 only B has: same five pairs
    shuffled = _rows("B", {4: 0.60, 7: 0.10, 2: 0.50, 0: 0.50, 3: 0.60, 1: 0.60}) + _rows("A", {**A, 9: 0.99})
    v, w = paired_verdict(shuffled, "A", "B"), paired_verdict(CLEAR, "A", "B")
    assert v["n"] == 5
    for key in ("mean_diff", "ci_low", "ci_high"):
        assert v[key] == pytest.approx(w[key], rel=1e-12)


def test_an_unresolved_verdict_by_hand():
    # differences 0.1, 0.2, 0.3 at seeds 0..2: mean 0.2, sd 0.1, but three seeds give t = 4.30
    rows = _rows("A", {0: 0.6, 1: 0.7, 2: 0.8}) + _rows("B", {2: 0.5, 0: 0.5, 1: 0.5})
    v = paired_verdict(rows, "A", "B")
    half = T_975_2 * 0.1 / math.sqrt(3)  # 0.2484, more than the mean difference
    assert v["n"] == 3 and v["wins"] == 3
    assert (v["ci_low"], v["ci_high"]) == pytest.approx((0.2 - half, 0.2 + half), rel=1e-8)
    assert v["verdict"] == "unresolved"  # A won every seed, yet three seeds do not settle it


def test_a_wider_level_gives_a_wider_interval():
    v95, v99 = paired_verdict(CLEAR, "A", "B"), paired_verdict(CLEAR, "A", "B", level=0.99)
    assert v99["level"] == 0.99
    assert v99["ci_low"] < v95["ci_low"] < v95["ci_high"] < v99["ci_high"]
    with pytest.raises(ValueError, match="level"):
        paired_verdict(CLEAR, "A", "B", level=95)


def test_one_or_no_paired_seed_is_unresolved():
    one = paired_verdict(_rows("A", {0: 0.9, 1: 0.8}) + _rows("B", {1: 0.1}), "A", "B")
    assert one["n"] == 1 and one["mean_diff"] == pytest.approx(0.7) and one["wins"] == 1
    assert math.isnan(one["ci_low"]) and math.isnan(one["ci_high"]) and one["verdict"] == "unresolved"
    none = paired_verdict(_rows("A", {0: 0.9}) + _rows("B", {1: 0.1}), "A", "B")
    assert none["n"] == 0 and none["wins"] == 0 and math.isnan(none["mean_diff"]) and none["verdict"] == "unresolved"


def test_datasets_are_chosen_explicitly():
    rows = CLEAR + _rows("A", B, dataset="Shapes") + _rows("B", A, dataset="Shapes")
    with pytest.raises(ValueError, match=r"several datasets \['Cells', 'Shapes'\]; name one with dataset="):
        paired_verdict(rows, "A", "B")
    v = paired_verdict(rows, "A", "B", dataset="Shapes")
    assert v["dataset"] == "Shapes" and v["verdict"] == "b>a"
    assert paired_verdict(rows, "A", "B", dataset="Cells")["verdict"] == "a>b"
    with pytest.raises(ValueError, match=r"dataset 'CamVid' is not in the rows; available: \['Cells', 'Shapes'\]"):
        paired_verdict(rows, "A", "B", dataset="CamVid")


def test_the_error_messages_say_what_is_wrong():
    with pytest.raises(ValueError, match=r"model 'C' is not in the rows; available: \['A', 'B'\]"):
        paired_verdict(CLEAR, "A", "C")
    with pytest.raises(ValueError, match=r"metric 'miou' is missing .* numeric keys there: .*'mean_iou'"):
        paired_verdict(CLEAR, "A", "B", metric="miou")
    broken = _rows("A", {**A, 3: math.nan}) + _rows("B", B)
    with pytest.raises(ValueError, match=r"NaN for model 'A' at seed 3"):
        paired_verdict(broken, "A", "B")
    twice = CLEAR + _rows("B", {2: 0.4})
    with pytest.raises(ValueError, match=r"model 'B' has more than one row for seed 2"):
        paired_verdict(twice, "A", "B")
    with pytest.raises(ValueError, match=r"\(a, b, metric\) or \(a, b, metric, dataset\)"):
        paired_verdicts(CLEAR, [("A", "B")])


def test_paired_verdicts_takes_three_or_four_tuples():
    rows = CLEAR + _rows("A", B, dataset="Shapes") + _rows("B", A, dataset="Shapes")
    vs = paired_verdicts(rows, [("A", "B", "mean_iou", "Cells"), ("A", "B", "dice", "Shapes")], level=0.9)
    assert [(v["metric"], v["dataset"], v["verdict"], v["level"]) for v in vs] == [
        ("mean_iou", "Cells", "a>b", 0.9), ("dice", "Shapes", "b>a", 0.9)]
    assert paired_verdicts(CLEAR, [("B", "A", "dice")])[0]["dataset"] is None


# --- format_verdict ------------------------------------------------------------------------------


def test_format_verdict_states_difference_interval_seeds_and_outcome():
    lo, hi = 0.10 - HALF, 0.10 + HALF
    assert format_verdict(paired_verdict(CLEAR, "A", "B")) == (
        f"A vs B, mean_iou: +0.100 [+{lo:.3f}, +{hi:.3f}] (95% CI, 5 seeds; wins 5/5) -> A better")
    assert format_verdict(paired_verdict(CLEAR, "B", "A")).endswith("(95% CI, 5 seeds; wins 0/5) -> A better")
    rows = _rows("A", {0: 0.6, 1: 0.7, 2: 0.8}) + _rows("B", {0: 0.5, 1: 0.5, 2: 0.5})
    assert format_verdict(paired_verdict(rows, "A", "B")).endswith(
        "(95% CI, 3 seeds; wins 3/3) -> unresolved at this budget")
    # at 90% the factor is t = 2.92, the half-width 0.169 < 0.2: the same seeds settle a weaker claim
    assert format_verdict(paired_verdict(rows, "A", "B", level=0.9)).endswith("(90% CI, 3 seeds; wins 3/3) -> A better")


def test_format_verdict_for_costs_dataset_and_too_few_seeds():
    slow = _rows("A", A, metric="infer_ms_per_image") + _rows("B", B, metric="infer_ms_per_image")
    line = format_verdict(paired_verdict(slow, "A", "B", metric="infer_ms_per_image", dataset="Cells"))
    assert line.startswith("A vs B, infer_ms_per_image (Cells): +0.100 [")
    assert line.endswith("-> A higher")  # a larger cost is not "better"
    one = paired_verdict(_rows("A", {0: 0.9}) + _rows("B", {0: 0.8}), "A", "B")
    assert format_verdict(one) == (
        "A vs B, mean_iou: +0.100 (no 95% CI from 1 seed; wins 1/1) -> unresolved at this budget")
    none = paired_verdict(_rows("A", {0: 0.9}) + _rows("B", {1: 0.8}), "A", "B")
    assert format_verdict(none).endswith("no seed has a run of both -> unresolved at this budget")


# --- the forest plot -----------------------------------------------------------------------------


def test_plot_forest_draws_one_errorbar_per_verdict():
    rows = CLEAR + _rows("C", {0: 0.6, 1: 0.7, 2: 0.8})
    verdicts = paired_verdicts(rows, [("A", "B", "mean_iou"), ("B", "A", "dice"), ("C", "B", "mean_iou"),
                                      ("C", "A", "mean_iou")])
    verdicts.append(paired_verdict(_rows("A", {0: 0.9}) + _rows("B", {0: 0.8}), "A", "B"))  # one seed: no bar
    assert [v["verdict"] for v in verdicts] == ["a>b", "b>a", "unresolved", "unresolved", "unresolved"]
    fig = plot_forest(verdicts, title="forest")
    try:
        ax = fig.axes[0]
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == len(verdicts)
        for i, (bar, v) in enumerate(zip(bars, verdicts)):
            dot = bar.lines[0]
            assert list(dot.get_xdata()) == pytest.approx([v["mean_diff"]]) and list(dot.get_ydata()) == [i]
            if math.isnan(v["ci_low"]):
                assert not bar.has_xerr
            else:
                (x0, y0), (x1, y1) = bar.lines[2][0].get_segments()[0]
                assert (x0, x1) == pytest.approx((v["ci_low"], v["ci_high"])) and y0 == y1 == i
        assert any(list(line.get_xdata()) == [0, 0] for line in ax.get_lines())  # the zero line
        assert [t.get_text() for t in ax.get_yticklabels()][:3] == [
            "A vs B (mean_iou)", "B vs A (dice)", "C vs B (mean_iou)"]
        notes = [t.get_text() for t in ax.texts]
        assert "n=5, wins 5/5" in notes and "n=1, wins 1/1 (no CI)" in notes
        # the colour says the verdict: a win, a loss and the unresolved rows all differ
        colours = [tuple(bar.lines[0].get_color()) for bar in bars]
        assert len({colours[0], colours[1], colours[2]}) == 3 and colours[2] == colours[3]
        assert ax.get_title() == "forest"
    finally:
        plt.close(fig)


def test_plot_forest_draws_into_a_given_axes_and_accepts_one_verdict():
    fig, ax = plt.subplots()
    try:
        v = paired_verdict(CLEAR + _rows("A", B, dataset="Shapes") + _rows("B", A, dataset="Shapes"), "A", "B",
                           dataset="Shapes")
        assert plot_forest(v, ax=ax) is fig
        assert [t.get_text() for t in ax.get_yticklabels()] == ["A vs B (mean_iou, Shapes)"]
        with pytest.raises(ValueError, match="at least one verdict"):
            plot_forest([])
    finally:
        plt.close(fig)
