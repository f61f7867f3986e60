"""The chapter-7 runner: schema and determinism on a tiny budget."""

import pytest
import torch

from segedu.data import Shapes
from segedu.experiments import ModelSpec, compare, format_table, summarize


def tiny(in_ch, k):
    return torch.nn.Sequential(torch.nn.Conv2d(in_ch, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, k, 1))


def valid(in_ch, k):
    return torch.nn.Conv2d(in_ch, k, 5)  # predicts 4 pixels less per side: needs a predict=


DATA = {"shapes": (Shapes(8, size=32, seed=0), Shapes(4, size=32, seed=1))}


def test_compare_schema_and_determinism():
    kw = dict(seeds=(0, 1), steps=3, batch_size=4, device="cpu", progress=False)
    models = {}
    rows = compare({"tiny": tiny}, DATA, trained=models, **kw)
    assert set(models) == {("shapes", "tiny", 0), ("shapes", "tiny", 1)}
    again = compare({"tiny": tiny}, DATA, **kw)
    assert len(rows) == 2
    keys = {"dataset", "model", "seed", "parameters", "train_steps", "train_seconds", "infer_ms_per_image", "pixel_accuracy",
            "mean_iou", "dice", "foreground_iou", "iou_per_class", "dice_per_class"}
    assert set(rows[0]) == keys
    assert rows[0]["parameters"] == sum(p.numel() for p in tiny(3, 4).parameters())
    assert len(rows[0]["iou_per_class"]) == 4
    assert rows[0]["train_steps"] == 3
    for a, b in zip(rows, again):  # same seed, same numbers on the CPU
        for k in ("pixel_accuracy", "mean_iou", "dice", "iou_per_class"):
            assert a[k] == b[k]
    assert rows[0]["mean_iou"] != rows[1]["mean_iou"]  # different seeds, different runs
    summary = summarize(rows)
    assert len(summary) == 1 and summary[0]["seeds"] == 2 and summary[0]["mean_iou_std"] >= 0
    assert "tiny" in format_table(summary)


def test_compare_uses_a_spec_predictor_for_valid_models():
    def pad_predict(model, x):
        return model(torch.nn.functional.pad(x, (2, 2, 2, 2), mode="reflect"))

    rows = compare({"valid": ModelSpec(valid, predict=pad_predict)}, DATA, steps=2, batch_size=4, device="cpu",
                   progress=False)
    x = torch.rand(2, 3, 32, 32)
    assert ModelSpec(valid, predict=pad_predict).scores(valid(3, 4), x).shape == (2, 4, 32, 32)
    assert ModelSpec(valid).scores(valid(3, 4), x).shape == (2, 4, 28, 28)  # no predict=: the model itself
    assert 0 <= rows[0]["pixel_accuracy"] <= 1
    with pytest.raises(ValueError, match="predict="):
        compare({"valid": valid}, DATA, steps=1, batch_size=4, device="cpu", progress=False)


def test_after_training_replaces_the_evaluated_model():
    def first_layer_only(model):
        return torch.nn.Sequential(model[0], torch.nn.Conv2d(4, 4, 1))

    rows = compare({"cut": ModelSpec(tiny, after_training=first_layer_only)}, DATA, steps=1, batch_size=4,
                   device="cpu", progress=False)
    assert rows[0]["parameters"] == 3 * 4 * 9 + 4 + 4 * 4 + 4


def test_compare_bad_input():
    with pytest.raises(ValueError, match="models"):
        compare({}, DATA)
    with pytest.raises(ValueError, match="steps"):
        compare({"tiny": tiny}, DATA, steps=0)
    with pytest.raises(TypeError, match="ModelSpec"):
        compare({"x": 3}, DATA, steps=1)
    with pytest.raises(ValueError, match="no budget"):
        compare({"tiny": tiny}, DATA, steps=None)
    with pytest.raises(ValueError, match="seconds"):
        compare({"tiny": tiny}, DATA, steps=None, seconds=-1)


def test_a_seconds_budget_trains_each_model_for_that_long():
    """With seconds= every run stops after the first step past the budget; how many steps that is
    depends on the model's cost (the cheaper model takes at least as many steps here)."""
    def wide(in_ch, k):
        return torch.nn.Sequential(torch.nn.Conv2d(in_ch, 64, 3, padding=1), torch.nn.ReLU(),
                                   torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(64, k, 1))

    rows = compare({"tiny": tiny, "wide": wide}, DATA, steps=None, seconds=0.5, batch_size=4, device="cpu",
                   progress=False)
    by = {r["model"]: r for r in rows}
    for r in rows:
        assert r["train_seconds"] >= 0.5 and r["train_steps"] >= 1
    assert by["tiny"]["train_steps"] >= by["wide"]["train_steps"]
    capped = compare({"tiny": tiny}, DATA, steps=2, seconds=60, batch_size=4, device="cpu", progress=False)
    assert capped[0]["train_steps"] == 2  # both budgets: whichever comes first


def test_same_training_as_evaluates_the_already_trained_model():
    """A derived entry (e.g. a pruned network) reuses the weights trained for another entry with the
    same seed: its scores equal those of evaluating a copy of that model through after_training."""
    def head_only(model):
        return torch.nn.Sequential(model[0], model[1], model[2])  # the identity cut: same network

    models = {}
    rows = compare({"tiny": tiny, "tiny again": ModelSpec(tiny, same_training_as="tiny", after_training=head_only)},
                   DATA, seeds=(0, 1), steps=3, batch_size=4, device="cpu", progress=False, trained=models)
    by = {(r["model"], r["seed"]): r for r in rows}
    for seed in (0, 1):
        assert by[("tiny again", seed)]["mean_iou"] == by[("tiny", seed)]["mean_iou"]
        assert by[("tiny again", seed)]["train_seconds"] == by[("tiny", seed)]["train_seconds"]
        a, b = models[("shapes", "tiny", seed)], models[("shapes", "tiny again", seed)]
        assert a[0].weight is not b[0].weight and torch.equal(a[0].weight, b[0].weight)  # a copy, same weights
    with pytest.raises(ValueError, match="listed before"):
        compare({"late": ModelSpec(tiny, same_training_as="tiny"), "tiny": tiny}, DATA, steps=1, device="cpu",
                progress=False)


def test_pareto_front_keeps_the_undominated_models():
    rows = [{"dataset": "d", "model": m, "infer_ms_per_image": t, "mean_iou": s}
            for m, t, s in [("fast bad", 1, 0.5), ("slow good", 10, 0.9), ("slow worse", 12, 0.8),
                            ("middle", 5, 0.7), ("dominated", 6, 0.6), ("tie slower", 5, 0.7)]]
    from segedu.experiments import pareto_front

    assert pareto_front(rows) == ["fast bad", "middle", "slow good"]
    with pytest.raises(ValueError, match="one dataset"):
        pareto_front(rows + [dict(rows[0], dataset="e")])


def test_comparison_figures_are_drawn_from_the_rows():
    import matplotlib

    matplotlib.use("Agg")
    from segedu import viz

    rows = compare({"tiny": tiny, "again": ModelSpec(tiny, same_training_as="tiny")}, DATA, seeds=(0, 1), steps=1,
                   batch_size=4, device="cpu", progress=False)
    fig = viz.plot_comparison(rows, "mean_iou")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["tiny", "again"]
    assert len(ax.patches) == 2 and len(ax.lines) == 2  # a bar per model, a row of seed dots per model
    assert ax.patches[0].get_width() == pytest.approx((rows[0]["mean_iou"] + rows[1]["mean_iou"]) / 2)
    fig = viz.plot_pareto(summarize(rows))
    assert fig.axes[0].get_title() == "shapes"
    x, y = torch.stack([DATA["shapes"][1][i][0] for i in range(2)]), torch.stack([DATA["shapes"][1][i][1] for i in range(2)])
    fig = viz.compare_predictions(x, y, {"a": y, "b": torch.zeros(2, 4, 32, 32)}, class_names=Shapes.CLASSES)
    assert len(fig.axes) == 2 * 4
    with pytest.raises(ValueError, match="predictions for 2 images"):
        viz.compare_predictions(x, y, {"a": y[:1]})


def test_extra_metrics_become_columns_and_foreground_iou_is_the_mean_over_foreground_classes():
    rows = compare({"tiny": tiny}, DATA, seeds=(0,), steps=2, batch_size=4, device="cpu", progress=False,
                   timing_repeats=1, metrics={"n_test": lambda scores, masks, test: len(test)})
    for r in rows:
        assert r["n_test"] == len(DATA[r["dataset"]][1])
        fg = [v for v in r["iou_per_class"][1:] if v is not None]
        assert r["foreground_iou"] == pytest.approx(sum(fg) / len(fg), abs=1e-5)
