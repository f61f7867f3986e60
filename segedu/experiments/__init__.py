"""Experiments: train models side by side under one budget, and name every comparison the course makes.

    runner.py    ModelSpec, compare: every model trained and evaluated the same way (chapter 7)
    registry.py  Experiment, EXPERIMENTS, run, reproduce: named, stored, re-runnable comparisons with verdicts

Introduced in chapter 6.
"""

from __future__ import annotations

from ..models.utils import count_parameters
from ..runtime import resolve_device, seed_everything  # noqa: F401  (old import path: segedu.experiments was a module)
from ..train import fit  # noqa: F401  (old import path)
from ..summary import format_table, pareto_front, summarize
from .registry import EXPERIMENTS, STORE, Experiment, ExperimentResult, StoredResultDrift, register, reproduce, run
from .runner import ModelSpec, compare
from . import catalog  # noqa: F401  (registers the named experiments)

__all__ = ["ModelSpec", "compare", "Experiment", "ExperimentResult", "EXPERIMENTS", "register", "run", "reproduce",
           "StoredResultDrift", "STORE", "count_parameters", "summarize", "format_table", "pareto_front"]
