"""The registry: which benchmarks exist, and what each one needs.

A benchmark is a function ``run(ctx)`` that measures and records rows through its
:class:`~segedu.bench.measure.Context`. :func:`register` adds it to :data:`BENCHMARKS` with what
the rest of the suite needs to know about it: its title, the columns of its table, the models it
requires, how to plot its results, and how to say in words what the results show (the highlight
sentences of the Performance appendix). All of it sits next to the measurement, in one file per
benchmark under ``segedu/bench/cases/``.

:data:`BENCHMARKS` keeps the order of registration: ``--list``, a full run and the appendix show
the benchmarks in that order.

A benchmark (or one case of it) that cannot run here — its model is not written, a backend is
missing — raises :class:`Skip` with the reason; the suite records the reason and goes on.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

__all__ = ["Benchmark", "BENCHMARKS", "register", "Skip", "resolve"]


@dataclass
class Benchmark:
    """One benchmark: a function ``run(ctx)`` that measures and calls ``ctx.row(...)``.

    Args:
        name: the command-line name.
        title: one line for tables and the appendix.
        columns: ``[(key, header, format), ...]`` of the table printed as rows arrive.
        requires: dotted names (``"segedu.models.UNet"``) that must import; otherwise skipped.
        plot: optional ``plot(result_dict) -> matplotlib Figure``.
        highlight: optional ``highlight(result_dict) -> [sentence, ...]``: what the results show,
            in words, for the report (generated from the rows, so text and numbers agree).
    """

    name: str
    title: str
    run: Callable
    columns: list
    requires: tuple = ()
    plot: Callable | None = None
    highlight: Callable | None = None


BENCHMARKS: dict[str, Benchmark] = {}


def register(name: str, title: str, columns, requires=(), plot=None, highlight=None):
    """Decorator: add ``fn(ctx)`` to the suite under ``name``."""

    def deco(fn):
        BENCHMARKS[name] = Benchmark(name, title, fn, list(columns), tuple(requires), plot, highlight)
        return fn

    return deco


class Skip(Exception):
    """Raised by a benchmark (or one of its cases) that cannot run here; the message says why."""


def resolve(dotted: str):
    """Import ``package.module.attr`` (or a module); raise :class:`Skip` saying what is missing."""
    module, _, attr = dotted.rpartition(".")
    try:
        mod = importlib.import_module(dotted)
        return mod
    except ImportError:
        pass
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise Skip(f"{dotted} is not available ({e.__class__.__name__}: {e})") from None
