"""Specification of chapter 1's library slice: Shapes, metrics, the sliding window, fit, viz."""

import math

import numpy as np
import pytest
import torch

from segedu import metrics as M
from segedu.data import Shapes
from segedu.models import SlidingWindowClassifier
from segedu.models.sliding_window import CenterPixelPatches
from segedu.train import History, evaluate, fit, load_checkpoint, resolve_amp, resolve_device


# --- Shapes ---------------------------------------------------------------------------------

def test_shapes_types_ranges_and_determinism():
    ds = Shapes(5, size=48, seed=3)
    x, y = ds[2]
    assert x.dtype == torch.float32 and x.shape == (3, 48, 48)
    assert y.dtype == torch.int64 and y.shape == (48, 48)
    assert 0 <= x.min() and x.max() <= 1
    assert set(y.unique().tolist()) <= {0, 1, 2, 3}
    x2, y2 = Shapes(5, size=48, seed=3)[2]
    assert torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, Shapes(5, size=48, seed=4)[2][0])


def test_shapes_colour_does_not_reveal_class():
    """Shape colours are drawn independently of the class: mean colour per class is similar."""
    ds = Shapes(200, size=48, seed=0)
    means = {c: [] for c in (1, 2, 3)}
    for i in range(len(ds)):
        x, y = ds[i]
        for c in means:
            if (y == c).any():
                means[c].append(x[:, y == c].mean(1))
    centroids = torch.stack([torch.stack(v).mean(0) for v in means.values()])
    assert (centroids.max(0).values - centroids.min(0).values).max() < 0.1


@pytest.mark.parametrize("kwargs", [dict(n=0), dict(n=3, size=4), dict(n=2.5), dict(n=3, noise=-1)])
def test_shapes_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        Shapes(**kwargs)


def test_shapes_index_error():
    with pytest.raises(IndexError):
        Shapes(3)[3]


# --- metrics --------------------------------------------------------------------------------

def test_metrics_hand_computed():
    target = torch.tensor([[[0, 0, 1, 1]]])
    pred = torch.tensor([[[0, 1, 1, 1]]])
    assert M.pixel_accuracy(pred, target) == 0.75
    iou = M.iou(pred, target, 3)
    assert iou[0] == pytest.approx(0.5) and iou[1] == pytest.approx(2 / 3) and math.isnan(iou[2])
    assert M.mean_iou(pred, target, 3) == pytest.approx((0.5 + 2 / 3) / 2)
    d = M.dice(pred, target, 3)
    assert d[0] == pytest.approx(2 / 3) and d[1] == pytest.approx(0.8)


def test_metrics_accept_scores_and_ignore_index():
    target = torch.tensor([[[0, 1], [1, 255]]])
    scores = torch.zeros(1, 2, 2, 2)
    scores[0, 1] = torch.tensor([[-1.0, 1.0], [1.0, 1.0]])
    assert M.pixel_accuracy(scores, target, ignore_index=255) == 1.0
    assert M.mean_iou(scores, target, 2, ignore_index=255) == 1.0
    binary = torch.tensor([[[[-2.0, 3.0], [1.0, 1.0]]]])  # one logit channel
    assert M.as_labels(binary).tolist() == [[[0, 1], [1, 1]]]


def test_metrics_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        M.confusion_matrix(torch.zeros(1, 2, 2, dtype=torch.long), torch.zeros(1, 3, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        M.confusion_matrix(torch.zeros(1, 2, 2, dtype=torch.long), torch.full((1, 2, 2), 5), 2)
    with pytest.raises(ValueError, match="scores"):
        M.as_labels(torch.zeros(2, 3, 4))


# --- sliding window -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier():
    torch.manual_seed(0)
    return SlidingWindowClassifier(patch_size=11, width=8, num_convs=3, bottleneck=2, hidden=8).eval()


def test_sliding_window_equals_dense(classifier):
    x = torch.rand(2, 3, 21, 17)
    slow = classifier.segment(x)
    fast = classifier.to_fcn().eval()(x)
    assert slow.shape == fast.shape == (2, 4, 21, 17)
    assert (slow - fast).abs().max() <= 1e-5


def test_sliding_window_pixel_matches_patch_classification(classifier):
    """segment() really is 'classify the patch centred on the pixel'."""
    x = torch.rand(1, 3, 20, 20)
    r = classifier.patch_size // 2
    padded = torch.nn.functional.pad(x, (r, r, r, r), mode="reflect")
    y0, x0 = 7, 13
    patch = padded[:, :, y0 : y0 + 2 * r + 1, x0 : x0 + 2 * r + 1]
    with torch.no_grad():
        assert torch.allclose(classifier(patch)[0], classifier.segment(x)[0, :, y0, x0], atol=1e-6)


def test_sliding_window_stride(classifier):
    x = torch.rand(1, 3, 20, 20)
    full, strided = classifier.segment(x), classifier.segment(x, stride=3)
    assert strided.shape == full.shape
    assert torch.allclose(strided[..., ::3, ::3], full[..., ::3, ::3], atol=1e-6)
    assert torch.equal(strided[..., 1, 1], strided[..., 0, 0])  # block filled from its centre
    assert classifier.patches_per_pixel(1) == (121, 121) and classifier.patches_per_pixel(3) == (9, 16)


@pytest.mark.parametrize("bad, err", [
    (torch.rand(3, 20, 20), "N, C, H, W"),       # missing batch dimension
    (torch.rand(1, 1, 20, 20), "channels"),      # wrong channel count
    (torch.zeros(1, 3, 20, 20, dtype=torch.long), "float"),
    (torch.rand(1, 3, 4, 4), "larger"),          # too small to mirror-pad
])
def test_sliding_window_bad_images(classifier, bad, err):
    with pytest.raises((ValueError, TypeError), match=err):
        classifier.segment(bad)


def test_sliding_window_bad_arguments(classifier):
    with pytest.raises(ValueError, match="stride"):
        classifier.segment(torch.rand(1, 3, 20, 20), stride=0)
    with pytest.raises(ValueError, match="odd"):
        SlidingWindowClassifier(patch_size=24)
    with pytest.raises(ValueError, match="too small"):
        SlidingWindowClassifier(patch_size=5, num_convs=6)
    with pytest.raises(ValueError, match="patches"):
        classifier(torch.rand(2, 3, 12, 12))


def test_center_pixel_patches_are_balanced_and_correct():
    ds = Shapes(4, size=32, seed=1)
    patches = CenterPixelPatches(ds, patch_size=9, n=400, seed=0)
    counts = torch.bincount(patches.labels, minlength=4)
    present = counts[counts > 0]
    assert present.max() - present.min() <= 1 + len(present)
    p, label = patches[5]
    i, y, x = patches.index[5].tolist()
    assert p.shape == (3, 9, 9) and label == ds[i][1][y, x]
    assert torch.equal(p[:, 4, 4], ds[i][0][:, y, x])  # the centre of the patch is the pixel


# --- fit ------------------------------------------------------------------------------------

class TinySeg(torch.nn.Module):
    def __init__(self, k=4):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, k, 1))

    def forward(self, x):
        return self.net(x)


def test_fit_learns_and_is_reproducible(tmp_path):
    train, val = Shapes(32, size=32, seed=0), Shapes(8, size=32, seed=1)
    runs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = TinySeg()
        h = fit(model, train, val, epochs=3, batch_size=8, lr=1e-2, device="cpu", progress=False, seed=7,
                checkpoint=tmp_path / "best.pt")
        runs.append(h)
    assert isinstance(runs[0], History) and len(runs[0].epochs) == 3
    assert runs[0]["loss"] == runs[1]["loss"]  # same seed, same CPU run
    assert runs[0]["loss"][-1] < runs[0]["loss"][0]
    for key in ("val_loss", "val_pixel_accuracy", "val_mean_iou", "val_dice"):
        assert key in runs[0].last
    ckpt = load_checkpoint(tmp_path / "best.pt", TinySeg())
    assert "state_dict" in ckpt and ckpt["metrics"]["val_mean_iou"] == runs[0].best()


def test_fit_budgets_in_steps_and_seconds():
    data = Shapes(16, size=32, seed=0)
    h = fit(TinySeg(), data, epochs=100, batch_size=4, device="cpu", progress=False, max_steps=6)
    assert h.steps == 6 and len(h.epochs) == 2  # 4 steps per epoch: stopped inside the second
    h = fit(TinySeg(), data, epochs=10_000, batch_size=4, device="cpu", progress=False, max_seconds=0.3)
    assert h.steps >= 1 and 0.3 <= h.seconds < 30 and len(h.epochs) < 10_000
    for bad in (0, -1.5, "1s", True):
        with pytest.raises(ValueError, match="max_seconds"):
            fit(TinySeg(), data, max_seconds=bad)
    with pytest.raises(ValueError, match="max_steps"):
        fit(TinySeg(), data, max_steps=0)


def test_fit_crops_target_for_valid_networks():
    class Valid(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 4, 5)  # 32 -> 28

        def forward(self, x):
            return self.conv(x)

    h = fit(Valid(), Shapes(8, size=32), Shapes(4, size=32, seed=1), epochs=1, device="cpu", progress=False)
    assert math.isfinite(h.last["val_loss"])


def test_fit_trains_channels_last_on_the_cpu_by_default():
    model = TinySeg()
    fit(model, Shapes(8, size=32), epochs=1, device="cpu", progress=False)
    assert model.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain = TinySeg()
    fit(plain, Shapes(8, size=32), epochs=1, device="cpu", progress=False, channels_last=False)
    assert not plain.net[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_fit_bf16_autocast_path_on_cpu():
    """The mixed-precision path, exercised on the CPU (CI has no GPU)."""
    h = fit(TinySeg(), Shapes(8, size=32), epochs=1, device="cpu", amp="bf16", progress=False)
    assert h.amp == "bfloat16" and math.isfinite(h.last["loss"])


def test_fit_trains_patch_classifier():
    patches = CenterPixelPatches(Shapes(8, size=32), patch_size=9, n=256)
    model = SlidingWindowClassifier(patch_size=9, width=8, num_convs=2, bottleneck=2, hidden=8)
    h = fit(model, patches, patches, epochs=2, batch_size=64, device="cpu", progress=False)
    assert 0 <= h.last["val_pixel_accuracy"] <= 1


def test_fit_and_device_bad_input():
    with pytest.raises(TypeError, match="nn.Module"):
        fit(lambda x: x, Shapes(2))
    with pytest.raises(ValueError, match="epochs"):
        fit(TinySeg(), Shapes(2), epochs=0)
    with pytest.raises(TypeError, match="Dataset"):
        fit(TinySeg(), 42)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(ValueError, match="amp"):
        resolve_amp("sometimes", torch.device("cpu"))
    assert resolve_amp("auto", torch.device("cpu")) is None


def test_evaluate_matches_metrics():
    model = TinySeg().eval()
    data = Shapes(6, size=32, seed=2)
    res = evaluate(model, data, batch_size=6, device="cpu")
    x = torch.stack([data[i][0] for i in range(6)])
    y = torch.stack([data[i][1] for i in range(6)])
    with torch.no_grad():
        out = model(x)
    assert res["val_pixel_accuracy"] == pytest.approx(M.pixel_accuracy(out, y))
    assert res["val_mean_iou"] == pytest.approx(M.mean_iou(out, y, 4))


# --- viz ------------------------------------------------------------------------------------

def test_viz_colours_and_figures():
    import matplotlib

    matplotlib.use("Agg")
    from segedu import viz

    rgb = viz.colorize(torch.tensor([[0, 1], [2, 3]]))
    assert rgb.shape == (2, 2, 3) and len({tuple(c) for c in rgb.reshape(-1, 3)}) == 4
    with pytest.raises(ValueError, match="labels"):
        viz.colorize(np.array([[99]]))
    ds = Shapes(3, size=32)
    xs, ys = zip(*(ds[i] for i in range(3)))
    fig = viz.show_samples(xs, ys, preds=torch.stack(ys), class_names=Shapes.CLASSES)
    assert len(fig.axes) == 9 and fig.legends
    png = viz.figure_to_png(fig)
    assert png[:4] == b"\x89PNG"


def test_fit_defaults_follow_the_measurements():
    """amp="auto" is float32 and channels_last="auto" is on for CUDA and the CPU: the fastest
    correct settings measured for the course's models (Performance appendix)."""
    from segedu.train import resolve_channels_last

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert resolve_amp("auto", cuda) is None and resolve_amp("auto", cpu) is None
    assert resolve_amp(True, cpu) is torch.bfloat16 and resolve_amp("fp16", cuda) is torch.float16
    assert resolve_channels_last("auto", cuda) is True and resolve_channels_last("auto", cpu) is True
    assert resolve_channels_last("auto", torch.device("mps")) is False  # not measured there
    assert resolve_channels_last(False, cpu) is False
    with pytest.raises(ValueError, match="channels_last"):
        resolve_channels_last("yes", cpu)


def test_show_numbers_writes_every_value_and_outlines_the_marked_cells():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from segedu import viz

    fig, ax = plt.subplots()
    values = torch.tensor([[1.0, 6.0], [7.5, -1.0]])
    viz.show_numbers(ax, values, "demo", outline=values > 5)
    assert sorted(t.get_text() for t in ax.texts) == ["-1", "1", "6", "7.5"]
    assert len(ax.patches) == 2 and ax.get_title() == "demo"
    with pytest.raises(ValueError, match="2D grid"):
        viz.show_numbers(ax, torch.zeros(2, 2, 2))
    plt.close(fig)
