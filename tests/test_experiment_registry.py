"""Named experiments: run, store, reuse only what matches, never lose a larger stored result."""

from __future__ import annotations

import dataclasses
import json

import pytest

from segedu.data import Binary, Shapes
from segedu.experiments import EXPERIMENTS, Experiment, ExperimentResult, ModelSpec, register, run
from segedu.models import UNet


def _models():
    return {"wide": ModelSpec(lambda c, k: UNet(c, k, depth=1, base_channels=8, padding="same")),
            "narrow": ModelSpec(lambda c, k: UNet(c, k, depth=1, base_channels=2, padding="same"))}


def _data():
    return {"shapes": (Binary(Shapes(8, size=32, seed=1)), Binary(Shapes(6, size=32, seed=2)))}


TINY = Experiment(name="test-tiny", question="Does a wider U-Net learn more in 3 steps?", chapter="tests",
                  models=_models, data=_data, comparisons=(("wide", "narrow", "mean_iou"),), seeds=(0, 1, 2),
                  steps=3, batch_size=4, n_test=6)


@pytest.fixture
def tiny():
    register(TINY)
    yield TINY
    EXPERIMENTS.pop(TINY.name)


def test_run_trains_every_model_and_seed_and_judges_the_pairs(tiny, tmp_path):
    result = run(tiny.name, cache=False, store=tmp_path, progress=False, device="cpu")
    assert isinstance(result, ExperimentResult) and not result.from_store
    assert sorted((r["model"], r["seed"]) for r in result.rows) == sorted(
        (m, s) for m in ("wide", "narrow") for s in (0, 1, 2))
    (v,) = result.verdicts
    assert {"a", "b", "metric", "n", "mean_diff", "ci_low", "ci_high", "wins", "verdict"} <= set(v)
    assert (v["a"], v["b"], v["n"]) == ("wide", "narrow", 3)
    assert v["verdict"] in ("a>b", "b>a", "unresolved")
    assert result.hardware["device"] == "cpu" and result.seconds > 0
    assert not (tmp_path / "test-tiny.json").exists()  # save=False writes nothing


def test_a_saved_result_is_reused_for_its_seeds_and_their_subsets(tiny, tmp_path):
    first = run(tiny.name, cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    stored = json.loads((tmp_path / "test-tiny.json").read_text())
    assert stored["seeds"] == [0, 1, 2] and stored["config"] == tiny.config()
    again = run(tiny.name, store=tmp_path, progress=False)
    assert again.from_store and again.rows == json.loads(json.dumps(first.rows))
    two = run(tiny.name, seeds=[0, 2], store=tmp_path, progress=False)
    assert two.from_store and {r["seed"] for r in two.rows} == {0, 2} and two.verdicts[0]["n"] == 2


def test_a_live_run_reproduces_its_stored_row(tiny, tmp_path):
    run(tiny.name, cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    stored = run(tiny.name, seeds=[1], store=tmp_path, progress=False)
    live = run(tiny.name, seeds=[1], cache=False, store=tmp_path, progress=False, device="cpu")
    for s, r in zip(sorted(stored.rows, key=lambda r: r["model"]), sorted(live.rows, key=lambda r: r["model"])):
        assert s["mean_iou"] == pytest.approx(r["mean_iou"], abs=1e-6)


def test_a_stale_store_is_not_reused(tiny, tmp_path):
    run(tiny.name, cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    EXPERIMENTS[tiny.name] = dataclasses.replace(tiny, steps=4)  # the budget changed: the store is stale
    result = run(tiny.name, seeds=[0], store=tmp_path, progress=False, device="cpu")
    assert not result.from_store


def test_more_seeds_than_stored_trains(tiny, tmp_path):
    run(tiny.name, seeds=[0], cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    assert not run(tiny.name, seeds=[0, 1], store=tmp_path, progress=False, device="cpu").from_store


def test_saving_fewer_seeds_never_replaces_a_larger_result(tiny, tmp_path):
    run(tiny.name, cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    before = (tmp_path / "test-tiny.json").read_bytes()
    with pytest.raises(ValueError, match="more seeds"):
        run(tiny.name, seeds=[0], cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    assert (tmp_path / "test-tiny.json").read_bytes() == before


def test_bad_names_and_seeds_are_refused(tiny, tmp_path):
    with pytest.raises(ValueError, match="unknown experiment 'nope'.*test-tiny"):
        run("nope", store=tmp_path)
    with pytest.raises(ValueError, match="seeds is empty"):
        run(tiny.name, seeds=[], store=tmp_path)
    with pytest.raises(ValueError, match="already registered"):
        register(tiny)
    with pytest.raises(TypeError, match="Experiment"):
        register("test-tiny")


def test_a_store_of_another_schema_is_refused(tiny, tmp_path):
    (tmp_path / "test-tiny.json").write_text(json.dumps({"schema": 999, "name": "test-tiny"}))
    with pytest.raises(ValueError, match="schema 999.*make experiments"):
        run(tiny.name, store=tmp_path)


def test_the_config_fingerprints_the_code_that_builds_models_and_data():
    def other_models():
        return {"wide": ModelSpec(lambda c, k: UNet(c, k, depth=1, base_channels=16, padding="same"))}

    assert TINY.config() == dataclasses.replace(TINY).config()  # deterministic
    assert TINY.config()["code"] != dataclasses.replace(TINY, models=other_models).config()["code"]
    assert TINY.config()["code"] != dataclasses.replace(TINY, data=lambda: {}).config()["code"]


_CACHE: dict = {}
SETTING = dict(width=8)


def test_the_fingerprint_ignores_caches_and_follows_settings():
    def models():
        _CACHE.setdefault("x", 1)
        return {"wide": ModelSpec(lambda c, k: UNet(c, k, depth=1, base_channels=SETTING["width"], padding="same"))}

    exp = dataclasses.replace(TINY, models=models)
    before = exp.config()["code"]
    models()  # fills the cache: a run must not change its own fingerprint
    assert exp.config()["code"] == before
    SETTING["width"] = 16
    try:
        assert exp.config()["code"] != before
    finally:
        SETTING["width"] = 8


def test_reproduce_retrains_one_stored_run_and_detects_drift(tiny, tmp_path):
    from segedu.experiments import StoredResultDrift, reproduce

    run(tiny.name, cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    same = reproduce(tiny.name, "narrow", seed=1, store=tmp_path, strict=True)
    assert (same["model"], same["seed"], same["dataset"]) == ("narrow", 1, "shapes")
    assert same["max_abs_diff"] <= 1e-4 and same["same_machine"]
    assert same["live"]["mean_iou"] == pytest.approx(same["stored"]["mean_iou"], abs=1e-4)
    # the store drifts from the code: one stored number is off
    path = tmp_path / "test-tiny.json"
    stored = json.loads(path.read_text())
    row = next(r for r in stored["rows"] if r["model"] == "narrow" and r["seed"] == 1)
    row["dice"] += 0.01
    path.write_text(json.dumps(stored))
    with pytest.raises(StoredResultDrift, match=r"narrow on shapes, seed 1: live dice .* --force"):
        reproduce(tiny.name, "narrow", seed=1, store=tmp_path, strict=True)
    relaxed = reproduce(tiny.name, "narrow", seed=1, store=tmp_path, strict=False)  # another machine: reported only
    assert relaxed["max_abs_diff"] == pytest.approx(0.01, abs=1e-4)


def test_on_another_machine_reproduce_checks_the_seeds_spread(tiny, tmp_path):
    """Elsewhere a live run is in effect another seed: within CROSS_MACHINE_SDS standard deviations
    of the stored seeds (or CROSS_MACHINE_FLOOR) passes, a pipeline that moved further fails."""
    from segedu.experiments import StoredResultDrift, reproduce
    from segedu.experiments.registry import CROSS_MACHINE_FLOOR

    run(tiny.name, cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    path = tmp_path / "test-tiny.json"
    stored = json.loads(path.read_text())
    stored["hardware"]["processor"] = "a processor this is not"
    seed_row = next(r for r in stored["rows"] if r["model"] == "narrow" and r["seed"] == 1)
    seed_row["dice"] += CROSS_MACHINE_FLOOR / 4  # rounding elsewhere: the stored seed differs a little
    path.write_text(json.dumps(stored))
    other = reproduce(tiny.name, "narrow", seed=1, store=tmp_path, strict=True)
    assert not other["same_machine"] and other["max_abs_diff"] > 1e-4
    for r in stored["rows"]:  # every stored seed far from what the code computes now
        if r["model"] == "narrow":
            r["dice"] += 0.5
    path.write_text(json.dumps(stored))
    with pytest.raises(StoredResultDrift, match=r"live dice .* stored seeds' mean .* another machine"):
        reproduce(tiny.name, "narrow", seed=1, store=tmp_path, strict=True)


def test_reproduce_explains_what_is_missing(tiny, tmp_path):
    from segedu.experiments import reproduce

    with pytest.raises(FileNotFoundError, match="python -m segedu.experiments test-tiny"):
        reproduce(tiny.name, store=tmp_path)
    run(tiny.name, cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    with pytest.raises(ValueError, match="no stored row for seed 9"):
        reproduce(tiny.name, seed=9, store=tmp_path)
    with pytest.raises(ValueError, match="no stored model 'huge'"):
        reproduce(tiny.name, "huge", store=tmp_path)


def test_the_other_memory_format_is_its_own_configuration(tiny, tmp_path):
    default = run(tiny.name, seeds=[0], cache=False, save=True, store=tmp_path, progress=False, device="cpu")
    other = run(tiny.name, seeds=[0], store=tmp_path / "contiguous", save=True, progress=False, device="cpu",
                channels_last=False)
    assert not other.from_store and other.config == {**default.config, "channels_last": False}
    assert run(tiny.name, seeds=[0], store=tmp_path / "contiguous", progress=False, channels_last=False).from_store
    # a default-format run never reads the other format's store as its own
    assert not run(tiny.name, seeds=[0], store=tmp_path / "contiguous", progress=False, device="cpu").from_store


def test_a_result_hands_out_one_verdict_by_name(tiny, tmp_path):
    result = run(tiny.name, cache=False, store=tmp_path, progress=False, device="cpu")
    assert result.verdict("wide", "narrow", "mean_iou") is result.verdicts[0]
    assert result.verdict("wide", "narrow", "mean_iou", dataset=None) is result.verdicts[0]
    with pytest.raises(ValueError, match="no verdict for 'narrow' vs 'wide' on 'mean_iou'; its verdicts"):
        result.verdict("narrow", "wide", "mean_iou")
    with pytest.raises(ValueError, match="several verdicts"):
        dataclasses.replace(result, verdicts=result.verdicts * 2).verdict("wide", "narrow", "mean_iou")
