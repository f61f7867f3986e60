"""segedu.glue: MyST-NB's glue without MyST-NB, and the verdict helpers."""

from __future__ import annotations

import math

import pytest

from segedu.glue import GLUE_PREFIX, glue, glue_verdict, verdict_words
from segedu.summary import format_interval, seeds_to_resolve

V = {"a": "BCE + Dice", "b": "BCE", "metric": "dice", "dataset": None, "level": 0.95, "n": 10, "mean_diff": 0.103,
     "ci_low": 0.042, "ci_high": 0.164, "wins": 10, "verdict": "a>b"}


def test_outside_a_notebook_glue_returns_the_value_and_stores_nothing():
    assert glue("ch0_x", 0.5) == 0.5


@pytest.mark.parametrize("name", ["a:b", "with space", "", "ü"])
def test_a_name_the_role_could_not_read_is_refused(name):
    with pytest.raises(ValueError, match="glue names"):
        glue(name, 1)


def test_inside_ipython_glue_writes_what_myst_nb_reads(monkeypatch):
    shown = []
    import IPython
    import IPython.display

    monkeypatch.setattr(IPython, "get_ipython", lambda: object())
    monkeypatch.setattr(IPython.display, "display", lambda data, raw, metadata: shown.append((data, metadata)))
    glue("ch0_iou", 0.75)
    ((data, metadata),) = shown
    assert data == {GLUE_PREFIX + "text/plain": "0.75"}
    assert metadata["scrapbook"] == {"name": "ch0_iou", "mime_prefix": GLUE_PREFIX}
    try:  # the same output as MyST-NB's own glue, where it is installed
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    shown.clear()
    monkeypatch.setattr("myst_nb.ext.glue.ipy_display", lambda data, raw, metadata: shown.append((data, metadata)))
    myst_glue("ch0_iou", 0.75, display=False)
    assert shown == [(data, metadata)]


def test_glue_verdict_glues_every_part(monkeypatch):
    glued = {}
    monkeypatch.setattr("segedu.glue.glue", lambda name, value, display=False: glued.setdefault(name, value))
    assert glue_verdict("ch6_loss", V) is V
    assert glued["ch6_loss"] == "+0.103 [+0.042, +0.164], 10/10 seeds"
    assert (glued["ch6_loss_diff"], glued["ch6_loss_lo"], glued["ch6_loss_hi"]) == (0.103, 0.042, 0.164)
    assert (glued["ch6_loss_wins"], glued["ch6_loss_n"], glued["ch6_loss_verdict"]) == (10, 10, "a>b")
    assert glued["ch6_loss_words"] == "BCE + Dice higher" and glued["ch6_loss_seeds_needed"] == "10"


def test_verdict_words():
    assert verdict_words(V) == "BCE + Dice higher"
    assert verdict_words({**V, "verdict": "b>a"}) == "BCE higher"
    assert verdict_words({**V, "verdict": "unresolved"}) == "unresolved at this budget"


def test_format_interval():
    assert format_interval(V) == "+0.103 [+0.042, +0.164], 10/10 seeds"
    assert format_interval({**V, "n": 1, "wins": 1, "ci_low": math.nan, "ci_high": math.nan}) == \
        "+0.103 (no interval from 1 seed), 1/1 seeds"
    assert format_interval({**V, "n": 0}) == "no paired seeds"


def test_seeds_to_resolve_follows_the_t_interval():
    from segedu.summary import student_t_quantile

    # an unresolved verdict: mean 0.01, sd 0.02 over 8 seeds
    n, mean, sd = 8, 0.01, 0.02
    half = student_t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    v = {**V, "n": n, "mean_diff": mean, "ci_low": mean - half, "ci_high": mean + half, "verdict": "unresolved"}
    m = seeds_to_resolve(v)
    assert student_t_quantile(0.975, m - 1) * sd / math.sqrt(m) < mean
    assert student_t_quantile(0.975, m - 2) * sd / math.sqrt(m - 1) >= mean  # the smallest such m
    assert 17 <= m <= 20  # (1.96 * 0.02 / 0.01)^2 = 15.4, plus the t correction
    assert seeds_to_resolve(V) == 10  # resolved: its own seed count
    assert seeds_to_resolve({**v, "mean_diff": 0.0}) is None
    assert seeds_to_resolve({**v, "mean_diff": 1e-6}) is None  # more than 10000 seeds
