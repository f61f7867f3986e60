"""The stored experiment results can never drift from the code: each one's cheapest model is
trained again, live, for its first stored seed, and must give the stored row's numbers.

Runs on the CPU the results were stored on (the CI machine); another CPU's kernels round
differently, and a few hundred training steps amplify that, so the tolerance below is for the
same machine. A stored result must also be complete: the spec's seeds and test-set size.
"""

from __future__ import annotations

import json

import pytest

from segedu.experiments import EXPERIMENTS, STORE, run

STORED = sorted(p.stem for p in STORE.glob("*.json")) if STORE.exists() else []
TOLERANCE = 1e-4  # same seed, same machine: equal up to float noise in the evaluation


def test_every_stored_result_names_a_registered_experiment():
    assert set(STORED) <= set(EXPERIMENTS), f"stored results without a spec: {set(STORED) - set(EXPERIMENTS)}"


@pytest.mark.parametrize("name", STORED)
def test_stored_result_is_complete_and_current(name):
    stored = json.loads((STORE / f"{name}.json").read_text())
    exp = EXPERIMENTS[name]
    assert stored["config"] == exp.config(), f"{name}.json is stale: re-run `python -m segedu.experiments {name}`"
    assert stored["seeds"] == list(exp.seeds) and len(stored["seeds"]) >= 8
    assert stored["n_test"] >= 200 or stored["complete_real_split"]
    assert {v["verdict"] for v in stored["verdicts"]} <= {"a>b", "b>a", "unresolved"}
    assert len(stored["verdicts"]) == len(exp.comparisons)


@pytest.mark.parametrize("name", STORED)
def test_a_live_run_reproduces_the_stored_row(name):
    stored = json.loads((STORE / f"{name}.json").read_text())
    seed = stored["seeds"][0]
    rows = [r for r in stored["rows"] if r["seed"] == seed]
    cheapest = min(rows, key=lambda r: r["train_seconds"])
    live = run(name, seeds=[seed], models=[cheapest["model"]], device="cpu", progress=False)
    (again,) = [r for r in live.rows if r["model"] == cheapest["model"] and r["dataset"] == cheapest["dataset"]]
    for key in ("mean_iou", "dice", "pixel_accuracy", "foreground_iou"):
        assert again[key] == pytest.approx(cheapest[key], abs=TOLERANCE), (name, key)
