"""The stored experiment results are complete, current, and can never drift from the code.

* **Complete and current**: every stored result has its spec's seeds (at least 8), at least 200
  test images or a whole real split, and the configuration the code has now.
* **Reproduced live**: each chapter that shows an experiment trains one of its runs again with
  :func:`segedu.experiments.reproduce`, which raises when the live numbers differ from the stored
  row by more than 1e-4 on the machine that stored it, or elsewhere lie further than four standard
  deviations from the stored seeds' mean (``make test`` sets ``SEGEDU_STRICT_REPRODUCE=1``, and the
  notebooks run under nbval). Here we check that every stored experiment has such a cell.
* **Stable under rounding**: ``contiguous/NAME.json`` holds a re-run of NAME in the other memory
  format (NCHW instead of channels_last: other kernels, other rounding). Every verdict must be
  the same: a verdict that flips with the rounding would have been noise.
* **Stable under new seeds**: ``other-seeds/NAME.json`` holds a re-run with seeds the spec never
  used. A resolved verdict may become unresolved (fewer seeds, or a smaller effect) but must never
  point the other way.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from segedu.experiments import EXPERIMENTS, STORE

ROOT = Path(__file__).resolve().parents[1]
STORED = sorted(p.stem for p in STORE.glob("*.json")) if STORE.exists() else []
CONTIGUOUS = sorted(p.stem for p in (STORE / "contiguous").glob("*.json"))
OTHER_SEEDS = sorted(p.stem for p in (STORE / "other-seeds").glob("*.json"))


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _labels(result: dict) -> dict:
    return {(v["a"], v["b"], v["metric"], v.get("dataset")): v["verdict"] for v in result["verdicts"]}


def test_every_stored_result_names_a_registered_experiment():
    assert set(STORED) <= set(EXPERIMENTS), f"stored results without a spec: {set(STORED) - set(EXPERIMENTS)}"
    assert set(CONTIGUOUS + OTHER_SEEDS) <= set(STORED)


@pytest.mark.parametrize("name", STORED)
def test_stored_result_is_complete_and_current(name):
    stored = _load(STORE / f"{name}.json")
    exp = EXPERIMENTS[name]
    assert stored["config"] == exp.config(), f"{name}.json is stale: re-run `python -m segedu.experiments {name}`"
    assert stored["seeds"] == list(exp.seeds) and len(stored["seeds"]) >= 8
    assert stored["n_test"] >= 200 or stored["complete_real_split"]
    assert {v["verdict"] for v in stored["verdicts"]} <= {"a>b", "b>a", "unresolved"}
    assert len(stored["verdicts"]) == len(exp.comparisons)


@pytest.mark.parametrize("name", STORED)
def test_its_chapter_reproduces_a_stored_run_live(name):
    source = (ROOT / "notebooks" / "src" / f"{EXPERIMENTS[name].chapter}.py").read_text()
    cells = re.split(r"^# %%", source, flags=re.M)
    # reproduce("name", ...) itself, or a cell that calls reproduce over a list that names it
    assert any("reproduce(" in cell and re.search(rf"""["']{re.escape(name)}["']""", cell) for cell in cells), (
        f"chapter {EXPERIMENTS[name].chapter} shows {name} but never re-trains one of its runs with "
        f"segedu.experiments.reproduce({name!r})")


@pytest.mark.parametrize("name", CONTIGUOUS)
def test_the_verdicts_survive_the_other_memory_format(name):
    main, other = _load(STORE / f"{name}.json"), _load(STORE / "contiguous" / f"{name}.json")
    assert other["config"] == {**main["config"], "channels_last": False}
    assert other["seeds"] == main["seeds"]
    assert _labels(other) == _labels(main)


def test_the_rounding_check_covers_at_least_two_experiments():
    assert len(CONTIGUOUS) >= 2, f"only {CONTIGUOUS} re-run in the other memory format"


@pytest.mark.parametrize("name", OTHER_SEEDS)
def test_no_resolved_verdict_flips_with_unseen_seeds(name):
    main, other = _load(STORE / f"{name}.json"), _load(STORE / "other-seeds" / f"{name}.json")
    assert other["config"] == main["config"] and not set(other["seeds"]) & set(main["seeds"])
    assert len(other["seeds"]) >= 8
    flipped = {k: (v, other_v) for k, v in _labels(main).items()
               if (other_v := _labels(other)[k]) != "unresolved" and v != "unresolved" and other_v != v}
    assert not flipped, f"{name}: verdicts point the other way with unseen seeds: {flipped}"


def test_the_unseen_seeds_check_covers_at_least_two_experiments():
    assert len(OTHER_SEEDS) >= 2, f"only {OTHER_SEEDS} re-run with unseen seeds"
