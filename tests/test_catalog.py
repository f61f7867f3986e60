"""The named experiments of the catalog: registered, powered as the evidence issue asks, honest
about their test sets, consistent between comparisons and models, and runnable end to end."""

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from segedu.experiments import EXPERIMENTS, run
from segedu.experiments import catalog
from segedu.experiments.runner import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
ROW_COLUMNS = {"pixel_accuracy", "mean_iou", "dice", "foreground_iou", "train_seconds", "infer_ms_per_image",
               "parameters", "train_steps"}
CATALOG = catalog.NAMES


def _data(exp):
    """The experiment's data, or a skip when it needs real data that is absent here."""
    try:
        return exp.data()
    except FileNotFoundError as e:
        if exp.complete_real_split:
            pytest.skip(f"{exp.name} needs real data: {str(e)[:120]}")
        raise


def test_at_least_six_named_experiments_with_a_question_and_a_chapter():
    assert len(CATALOG) >= 6
    for name in ("ch3-upsampling", "ch5b-weight-map", "ch5b-skips", "ch6-loss", "ch6-depth", "ch6b-deep-supervision",
                 "ch6b-nesting", "ch7-synthetic", "ch7-isbi", "ch7-valid-vs-same"):
        assert name in CATALOG, name
    for name in CATALOG:
        e = EXPERIMENTS[name]
        assert e.question.strip().endswith("?") and e.question.count("?") == 1, name
        assert (ROOT / "notebooks" / "src" / f"{e.chapter}.py").exists(), (name, e.chapter)
        assert e.comparisons, name


def test_every_experiment_has_the_power_the_issue_asks_for():
    for name in CATALOG:
        e = EXPERIMENTS[name]
        assert len(set(e.seeds)) >= 8 and len(set(e.seeds)) == len(e.seeds), name
        assert e.n_test >= 200 or e.complete_real_split, name
        assert e.steps > 0 and e.batch_size > 0


@pytest.mark.parametrize("name", CATALOG)
def test_data_holds_n_test_images_and_comparisons_name_what_the_spec_builds(name):
    e = EXPERIMENTS[name]
    models = e.models()
    assert all(isinstance(s, ModelSpec) for s in models.values())
    metrics = set(e.metrics()) if e.metrics else set()
    data = _data(e)
    for dname, (train, test) in data.items():
        assert len(test) == e.n_test, (name, dname, len(test), e.n_test)
        assert len(train) > 0
    for c in e.comparisons:
        a, b, metric = c[:3]
        assert a in models and b in models and a != b, (name, c)
        assert metric in ROW_COLUMNS or metric in metrics, (name, c)
        if len(c) == 4:
            assert c[3] in data, (name, c)
        else:
            assert len(data) == 1, (name, c)  # a comparison without a dataset needs a one-dataset experiment


@pytest.mark.parametrize("name", CATALOG)
def test_every_model_predicts_full_size_scores_for_its_test_images(name):
    """Each untrained model, built as compare builds it, returns [1, K, H, W] for a test image of
    its data (the valid-padding models through their overlap-tile predictor)."""
    e = EXPERIMENTS[name]
    models = e.models()
    for dname, (train, test) in _data(e).items():
        x, y = (t[..., :128, :128] for t in test[0][:2])  # a corner of a whole ISBI slice is enough here
        k = train.num_classes
        trained = {}
        for mname, spec in models.items():
            torch.manual_seed(0)
            if spec.same_training_as:
                model = trained[spec.same_training_as]
            else:
                model = spec.build(x.shape[0], k)
                trained[mname] = model
            if spec.after_training:
                model = spec.after_training(model)
            with torch.no_grad():
                scores = spec.scores(model.eval(), x[None])
            assert scores.shape[0] == 1 and scores.shape[-2:] == y.shape[-2:], (name, dname, mname, scores.shape)


def test_data_is_built_lazily_and_deterministically():
    e = EXPERIMENTS["ch6-depth"]
    first, again = e.data(), e.data()
    for dname in first:
        for split in (0, 1):
            a, b = first[dname][split][3], again[dname][split][3]
            assert all(torch.equal(u, v) for u, v in zip(a, b))


class _FakeEM(torch.utils.data.Dataset):
    """Two 8x8 "slices" labelled like ISBI2012: 0 = membrane (one column), 1 = cell."""

    CLASSES, num_classes, in_channels = ("membrane", "cell"), 2, 1

    def __len__(self):
        return 2

    def __getitem__(self, i):
        mask = torch.ones(8, 8, dtype=torch.long)
        mask[:, 3 + i] = 0
        return torch.rand(1, 8, 8), mask


def test_the_isbi_foreground_is_the_membrane():
    view = catalog.MembraneForeground(_FakeEM())
    assert view.CLASSES == ("cell", "membrane") and len(view) == 2
    masks = torch.stack([view[i][1] for i in range(2)])
    assert masks.float().mean() == 1 / 8 and bool((masks[0, :, 3] == 1).all())  # the membrane is class 1
    perfect = torch.nn.functional.one_hot(masks, 2).permute(0, 3, 1, 2).float()
    all_cell = torch.stack([torch.ones(2, 8, 8), torch.zeros(2, 8, 8)], 1)
    assert catalog.membrane_dice(perfect, masks, view) == 1.0 and catalog.membrane_iou(perfect, masks, view) == 1.0
    assert catalog.membrane_dice(all_cell, masks, view) == 0.0  # "cell everywhere" finds no membrane
    with pytest.raises(ValueError, match="membrane"):
        catalog.membrane_dice(perfect, masks, object())
    with pytest.raises(ValueError, match="CLASSES"):
        catalog.MembraneForeground(view)  # swapping twice would make the membrane class 0 again


def test_real_isbi_membrane_is_the_minority_foreground():
    try:
        train, val = catalog.isbi2012_splits("test")
    except FileNotFoundError as e:
        pytest.skip(f"ISBI 2012 not available: {str(e)[:100]}")
    assert len(val) == 6 and val[0][1].shape == (512, 512)
    fraction = torch.stack([val[i][1] for i in range(len(val))]).float().mean()
    assert 0.1 < fraction < 0.35  # class 1 (foreground) is the membrane, about a fifth of the pixels


def test_boundary_accuracy_and_cells_recovered_on_perfect_and_empty_predictions():
    from segedu.data import Cells

    test = Cells(3, size=48, seed=5, cells=10)
    masks = torch.stack([test[i][1] for i in range(3)])
    perfect = torch.nn.functional.one_hot(masks, 2).permute(0, 3, 1, 2).float()
    assert catalog.boundary_accuracy(perfect, masks) == 1.0
    assert catalog.cells_recovered(perfect, masks, test) == 1.0
    nothing = torch.stack([torch.ones_like(masks), torch.zeros_like(masks)], 1).float()
    assert catalog.cells_recovered(nothing, masks, test) == 0.0
    assert 0.0 <= catalog.boundary_accuracy(nothing, masks) < 1.0


def test_paired_crops_supervise_the_same_pixels_at_every_margin():
    from segedu.data import Cells

    base = catalog.PairedCrops(Cells(4, size=96, seed=0, cells=30), 48, n=5, seed=3, max_margin=20)
    wide = base.with_margin(20)
    for k in range(len(base)):
        (x, y), (wx, wy) = base[k], wide[k]
        assert x.shape[-2:] == (48, 48) and wx.shape[-2:] == (88, 88)
        assert torch.equal(wx[..., 20:68, 20:68], x) and torch.equal(wy[20:68, 20:68], y)
    with pytest.raises(ValueError, match="margin"):
        base.with_margin(21)


def test_a_mosaic_tiles_small_images_into_large_ones():
    from segedu.data import Binary, Shapes

    small = Binary(Shapes(8, size=48, seed=0))
    big = catalog.Mosaic(small, 2, k=2)
    x, y = big[1]
    assert x.shape == (3, 96, 96) and y.shape == (96, 96) and len(big) == 2
    assert torch.equal(x[:, :48, 48:], small[5][0]) and torch.equal(y[48:, :48], small[6][1])
    with pytest.raises(ValueError, match="need"):
        catalog.Mosaic(small, 3, k=2)


def test_real_data_experiments_say_clearly_when_the_data_is_absent(monkeypatch, tmp_path):
    monkeypatch.setenv("SEGEDU_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="ch7-isbi.*SEGEDU_DATA"):
        EXPERIMENTS["ch7-isbi"].data()


def test_the_cheapest_experiment_runs_end_to_end(monkeypatch, tmp_path):
    """``run`` of a catalog experiment with its own models and data, at a budget of 3 steps (the
    stored runs use the spec's budget): rows per model x dataset x seed, verdict keys, the store."""
    name = "ch6-loss"
    monkeypatch.setitem(EXPERIMENTS, name, dataclasses.replace(EXPERIMENTS[name], steps=3))
    exp = EXPERIMENTS[name]
    result = run(name, seeds=[0], cache=False, save=True, store=tmp_path, device="cpu", progress=False)
    models, datasets = exp.models(), exp.data()
    assert len(result.rows) == len(models) * len(datasets)
    assert {(r["model"], r["seed"]) for r in result.rows} == {(m, 0) for m in models}
    assert all(r["train_steps"] == 3 for r in result.rows)
    assert result.n_test == exp.n_test and (tmp_path / f"{name}.json").exists()
    assert len(result.verdicts) == len(exp.comparisons)
    for v, c in zip(result.verdicts, exp.comparisons):
        assert {"a", "b", "metric", "n", "mean_diff", "ci_low", "ci_high", "wins", "verdict"} <= set(v)
        assert (v["a"], v["b"], v["metric"]) == c[:3]
        assert v["n"] == 1 and not math.isnan(v["mean_diff"])
        assert v["verdict"] == "unresolved"  # one seed gives no interval: never a verdict
