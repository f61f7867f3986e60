"""Bad input to the library: a clear refusal that names the problem, or a correct result (issue 17).

The library half of the reliability issue (``tests/test_bad_input_files.py`` has the files and
command-line half):

* metrics: undefined input (NaN or Inf scores, fractional masks, empty masks) gives NaN or a
  ``ValueError``, never a perfect score;
* invalid arguments: ``--width 0`` / ``--depth 0``, a batch size of 0 anywhere;
* resource blow-ups: a model too large for the machine is refused before it is allocated, and
  ``fit`` refuses a first batch whose step cannot fit; the size searches answer at once for any
  depth up to ``segedu.sizes.MAX_DEPTH``; padded U-Nets tile too, in bounded memory, with the
  labels of whole-image inference (a hypothesis property);
* NaN/Inf: in training and validation batches, in images to segment, and float64 / float16 /
  uint8 input to every model's forward.

Modules are imported whole and their new names read as attributes, so that on code without these
fixes each test fails on its own (rather than the file failing to import). Everything is tiny and
on the CPU; the few cases that would hang or exhaust memory on unfixed code run under an alarm or
in a subprocess with a memory limit.
"""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

import segedu.memory as memory
import segedu.metrics as M
import segedu.sizes as sizes
import segedu.tiling as tiling
from segedu.__main__ import main
from segedu.cli.errors import CLIError
from segedu.cli.registry import model_spec
from segedu.inference import segment_image
from segedu.models import FCN, EncoderDecoder, SlidingWindowClassifier, UNet, UNetE, UNetPlusPlus
from segedu.train import evaluate, fit, predict


@contextmanager
def within(seconds: float):
    """Fail (instead of hanging) if the block takes longer than ``seconds``. The alarm repeats every
    half second after that: an exception raised by a signal handler can be lost inside some C code
    (an ``isinstance`` check against an abstract class), and the next one then ends the block."""
    def alarm(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    except TimeoutError:  # reported without the traceback, which may point into the middle of a loop
        pytest.fail(f"took more than {seconds} s: a search that does not end?", pytrace=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def tiny_data(n=4, size=16, nan_at=None, value=float("nan"), weights=False):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 1, size, size, generator=g)
    y = (x[:, 0] > 0.5).long()
    if nan_at is not None:
        x[nan_at, 0, 3, 5] = value
    tensors = (x, y, torch.ones(n, size, size)) if weights else (x, y)
    return TensorDataset(*tensors)


def tiny_unet():
    torch.manual_seed(0)
    return UNet(1, 2, depth=1, base_channels=2, padding="same")


FIT = dict(epochs=1, batch_size=2, progress=False, device="cpu")

# ---------------------------------------------------------------------------------------------
# 1. metrics: undefined input is NaN or an error, never a perfect score
# ---------------------------------------------------------------------------------------------

TARGET = torch.zeros(1, 4, 4, dtype=torch.long)  # all background: argmax of all-NaN scores "matches" it
METRICS = {
    "mean_iou": lambda p, t: M.mean_iou(p, t, 2),
    "iou": lambda p, t: M.iou(p, t, 2),
    "dice": lambda p, t: M.dice(p, t, 2),
    "pixel_accuracy": lambda p, t: M.pixel_accuracy(p, t),
    "confusion_matrix": lambda p, t: M.confusion_matrix(p, t, 2),
}


@pytest.mark.parametrize("metric", METRICS)
def test_all_nan_scores_are_refused_not_a_perfect_score(metric):
    with pytest.raises(ValueError, match="NaN"):
        METRICS[metric](torch.full((1, 2, 4, 4), float("nan")), TARGET)


@pytest.mark.parametrize("value", [float("inf"), -float("inf")])
def test_infinite_scores_are_refused(value):
    scores = torch.zeros(1, 2, 4, 4)
    scores[0, 1, 0, 0] = value
    with pytest.raises(ValueError, match="Inf"):
        M.mean_iou(scores, TARGET, 2)


def test_a_nan_binary_logit_is_refused():
    logits = torch.zeros(1, 1, 4, 4)
    logits[0, 0, 2, 2] = float("nan")  # NaN > 0 is False: it would silently count as background
    with pytest.raises(ValueError, match="NaN"):
        M.mean_iou(logits, TARGET, 2)


def test_fractional_float_masks_are_refused():
    with pytest.raises(ValueError, match="integer class indices"):
        M.mean_iou(TARGET, torch.full((1, 4, 4), 0.6), 2)  # .long() would silently make it 0


def test_nan_in_float_masks_is_named():
    target = torch.zeros(1, 4, 4)
    target[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        M.confusion_matrix(TARGET, target, 2)


def test_whole_number_float_masks_give_the_same_result_as_long_ones():
    pred = torch.tensor([[[0, 1], [1, 1]]])
    target = torch.tensor([[[0, 1], [0, 1]]])
    assert M.mean_iou(pred, target.float(), 2) == M.mean_iou(pred, target, 2)


@pytest.mark.parametrize("case", ["empty batch", "every pixel ignored"])
def test_undefined_metrics_are_nan(case):
    if case == "empty batch":
        pred = target = torch.zeros(0, 4, 4, dtype=torch.long)
        ignore = None
    else:
        pred, target, ignore = torch.zeros(1, 4, 4, dtype=torch.long), torch.full((1, 4, 4), 255), 255
    assert math.isnan(M.mean_iou(pred, target, 2, ignore_index=ignore))
    assert math.isnan(M.pixel_accuracy(pred, target, ignore_index=ignore))
    assert torch.isnan(M.dice(pred, target, 2, ignore_index=ignore)).all()


def test_mean_iou_documents_what_undefined_input_gives():
    assert "NaN" in M.mean_iou.__doc__ and "ValueError" in M.mean_iou.__doc__

# ---------------------------------------------------------------------------------------------
# 2. invalid arguments are refused, not replaced by a default
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["unet", "unet-valid", "unetpp", "fcn8s", "sliding"])
@pytest.mark.parametrize("flag, value", [("width", 0), ("width", -3), ("depth", 0), ("depth", -1)])
def test_model_spec_refuses_non_positive_width_and_depth(model, flag, value):
    with pytest.raises(CLIError, match=f"--{flag} must be a positive integer, got {value}"):
        model_spec(model, 1, 2, **{flag: value})


def test_model_spec_still_fills_in_the_defaults():
    _, kwargs = model_spec("unet", 1, 2)
    assert kwargs["depth"] == 4 and kwargs["base_channels"] == 16


@pytest.mark.parametrize("flag", ["--width", "--depth"])
def test_cli_train_refuses_zero_in_one_line(tmp_path, capsys, flag):
    code = main(["train", "--model", "unet", "--out", str(tmp_path / "run"), "--epochs", "1", "--n-train", "2",
                 "--n-val", "1", "--size", "32", "--batch-size", "2", "--no-progress", "--device", "cpu", flag, "0"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{flag} must be a positive integer, got 0" in err
    assert not (tmp_path / "run").exists()


def test_cli_train_refuses_batch_size_zero_in_one_line(tmp_path, capsys):
    code = main(["train", "--model", "unet", "--out", str(tmp_path / "run"), "--batch-size", "0", "--device", "cpu"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "--batch-size must be a positive integer, got 0" in err


VALID = UNet(1, 2, depth=1, base_channels=2).eval()  # valid padding: smallest input 18


@pytest.mark.parametrize("call", ["segment_image tiled", "segment_image padded", "predict_tiled", "train.predict",
                                  "evaluate"])
def test_a_batch_size_of_zero_is_named(call):
    image = torch.rand(1, 30, 30)
    calls = {
        "segment_image tiled": lambda: segment_image(VALID, image, tiled=True, batch_size=0),
        "segment_image padded": lambda: segment_image(tiny_unet(), image, batch_size=0),
        "predict_tiled": lambda: tiling.predict_tiled(VALID, image, batch_size=0),
        "train.predict": lambda: predict(tiny_unet(), image[None, :, :16, :16], batch_size=0, device="cpu"),
        "evaluate": lambda: evaluate(tiny_unet(), tiny_data(), batch_size=0, device="cpu"),
    }
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        calls[call]()

# ---------------------------------------------------------------------------------------------
# 3. resource blow-ups: estimated and refused before allocating; bounded searches; tiling
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [12, 16, 20, 32])
def test_nearest_valid_size_answers_at_once_for_any_depth(depth):
    with within(5):
        lo, hi = sizes.nearest_valid_input_size(500, depth)
        cover = sizes.covering_input_size(5000, depth)
        listed = sizes.valid_input_sizes(depth, max_size=hi + 10 * 2**depth)
    assert lo is None and sizes.unet_levels(hi, depth).valid and listed[0] == hi and len(listed) == 11
    assert sizes.unet_levels(cover, depth).output_size >= 5000 > sizes.unet_levels(listed[0], depth).output_size


def test_the_closed_form_agrees_with_following_the_network():
    for depth in range(1, 6):
        brute = [s for s in range(1, 1500) if sizes.unet_levels(s, depth).valid]
        assert sizes.valid_input_sizes(depth, max_size=1499) == brute
        for n in (-2, 0, 1, 17, 100, 133, 500, 898):
            below = max((s for s in brute if s <= n), default=None)
            above = min(s for s in brute if s >= max(n, 1))
            assert sizes.nearest_valid_input_size(n, depth) == (below, above)
        for side in (1, 5, 40, 100):
            assert sizes.covering_input_size(side, depth) == min(
                s for s in brute if sizes.unet_levels(s, depth).output_size >= side)


def test_too_deep_is_refused_with_the_limit():
    with within(5), pytest.raises(ValueError, match=r"depth must be at most 32"):
        sizes.nearest_valid_input_size(500, 33)


def test_listing_too_many_sizes_is_refused():
    with within(5), pytest.raises(ValueError, match="more than"):
        sizes.valid_input_sizes(depth=1, max_size=10**12)


def test_cli_sizes_answers_at_once_for_depth_20(capsys):
    with within(10):
        assert main(["sizes", "--depth", "20", "--near", "500"]) == 0
    assert "12582908" in capsys.readouterr().out  # 2**20 * 4 + 2**23 - 4, the smallest valid side


def test_a_model_too_large_for_the_machine_is_refused_before_allocating(tmp_path):
    """``train --model unet-valid --depth 16``: 3e13 parameters. Run in a subprocess with a 4 GiB
    address-space limit, so that code that allocates instead of refusing fails fast and harmlessly."""
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30));"
            "from segedu.__main__ import main; sys.exit(main(sys.argv[1:]))")
    args = ["train", "--model", "unet-valid", "--depth", "16", "--out", str(tmp_path / "run"), "--n-train", "2",
            "--n-val", "1", "--size", "32", "--epochs", "1", "--no-progress", "--device", "cpu"]
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    err = proc.stderr.strip()
    assert proc.returncode == 1 and len(err.splitlines()) == 1, err
    assert "parameters" in err and "free" in err and "lower --depth or --width" in err
    assert time.perf_counter() - started < 60


def test_fit_refuses_a_first_step_that_cannot_fit(monkeypatch):
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device="cpu": 10_000)
    with pytest.raises(memory.InsufficientMemoryError, match=r"one training step on a batch of 2 images of 16x16.*"
                                                             r"lower the batch size"):
        fit(tiny_unet(), tiny_data(), **FIT)


def test_the_refusal_is_a_value_error_too():
    """So the command line reports it as one line, like every other problem with the input."""
    assert issubclass(memory.InsufficientMemoryError, ValueError)
    assert issubclass(memory.InsufficientMemoryError, MemoryError)


def test_unknown_free_memory_refuses_nothing():
    memory.check_memory(10**30, "meta", "anything")  # free memory of the meta device: unknown


@pytest.mark.parametrize("make, side", [(lambda: UNet(1, 2, depth=2, base_channels=4), 92),
                                        (lambda: UNetPlusPlus(1, 2, depth=2, base_channels=4), 32),
                                        (lambda: FCN(3, in_channels=1, widths=(4, 4, 8, 8, 8), fc_channels=16), 64)])
def test_the_activation_estimate_is_close_to_the_measurement(make, side):
    model = make().train()
    x = torch.rand(2, 1, side, side)
    estimate = memory.estimate_activation_bytes(model, x.shape)
    assert 0.7 < estimate / memory.activation_bytes(model, x) < 1.5
    assert all(p.device.type == "cpu" for p in model.parameters())  # the model itself is untouched


def test_meta_parameter_count_allocates_nothing():
    assert memory.meta_parameter_count(lambda: UNet(depth=2, base_channels=4)) == \
        sum(p.numel() for p in UNet(depth=2, base_channels=4).parameters())
    with within(10):
        assert memory.meta_parameter_count(lambda: UNet(depth=16, base_channels=16)) > 10**13


def _padded_models():
    torch.manual_seed(0)
    models = {"unet": UNet(1, 3, depth=2, base_channels=3, padding="same"),
              "unet bilinear": UNet(1, 3, depth=2, base_channels=3, padding="same", up="bilinear"),
              "unet++ deep supervision": UNetPlusPlus(1, 3, depth=2, base_channels=3, deep_supervision=True),
              "unet-e batchnorm": UNetE(1, 3, depth=2, base_channels=3, norm="batch"),
              "unet++ depth 3 bilinear": UNetPlusPlus(1, 3, depth=3, base_channels=2, up="bilinear")}
    for m in models.values():
        for p in m.parameters():  # small positive biases keep ReLUs alive, so the output varies in space
            if p.dim() == 1:
                p.data.fill_(0.05)
    return {k: m.double().eval() for k, m in models.items()}


PADDED = _padded_models()
SMALL_TILE = 2 * tiling.same_padding_margin(2) + 8 if hasattr(tiling, "same_padding_margin") else 80


def _whole(model, image):
    H, W = image.shape[-2:]
    cell = 2**model.depth
    with torch.no_grad():
        out = model(tiling.mirror_pad(image[None], 0, -H % cell, 0, -W % cell))
    return (out[-1] if isinstance(out, list) else out)[0, :, :H, :W]


@pytest.mark.parametrize("name", PADDED)
def test_tiles_of_a_padded_model_equal_whole_image_inference(name):
    model = PADDED[name]
    image = torch.rand(1, 45, 61, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    tile = 2 * tiling.same_padding_margin(model.depth) + 2**model.depth  # the smallest: a core of one cell
    tiled = tiling.predict_tiled_same(model, image, tile_size=tile, batch_size=7)
    whole = _whole(model, image)
    assert tiled.shape == whole.shape == (3, 45, 61) and whole.std() > 0
    assert (tiled - whole).abs().max() < 1e-9


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 70), st.integers(1, 70), st.integers(0, 1000))
def test_any_image_size_tiled_gives_the_labels_of_whole_image_inference(H, W, seed):
    model = PADDED["unet"]
    image = torch.rand(1, H, W, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    tiled = segment_image(model, image, tiled=True, tile_size=SMALL_TILE)
    assert tiled.shape == (H, W)
    assert torch.equal(tiled, segment_image(model, image))
    assert (tiling.predict_tiled_same(model, image, tile_size=SMALL_TILE) - _whole(model, image)).abs().max() < 1e-9


def test_tiled_inference_of_a_padded_model_runs_in_bounded_memory():
    """``predict --tiled`` with a padded model: no forward pass ever sees more than one tile."""
    model = UNet(1, 2, depth=2, base_channels=2, padding="same").eval()
    seen = []
    handle = model.register_forward_pre_hook(lambda m, args: seen.append(tuple(args[0].shape[-2:])))
    try:
        labels = segment_image(model, torch.rand(1, 300, 250), tiled=True, tile_size=SMALL_TILE + 56)
    finally:
        handle.remove()
    assert labels.shape == (300, 250)
    assert len(seen) > 1 and max(max(s) for s in seen) <= SMALL_TILE + 56


@pytest.mark.parametrize("tile_size, why", [(SMALL_TILE + 2, "multiple of 2\\*\\*depth = 4"),
                                            (8, "at least 76"), (True, "multiple")])
def test_a_bad_tile_size_for_a_padded_model_is_named(tile_size, why):
    with pytest.raises(ValueError, match=f"tile_size.*{why}"):
        tiling.predict_tiled_same(PADDED["unet"], torch.rand(1, 20, 20, dtype=torch.float64), tile_size=tile_size)


def test_predict_tiled_same_refuses_a_valid_padding_model():
    with pytest.raises(ValueError, match="predict_tiled"):
        tiling.predict_tiled_same(VALID, torch.rand(1, 30, 30))

# ---------------------------------------------------------------------------------------------
# 4. NaN / Inf in the data, and input of the wrong dtype
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, word", [(float("nan"), "1 NaN"), (float("inf"), "1 Inf")])
def test_fit_names_nan_or_inf_in_the_training_images(value, word):
    with pytest.raises(ValueError, match=f"train_data .*{word}.* images"):
        fit(tiny_unet(), tiny_data(nan_at=1, value=value), **FIT)


def test_fit_names_nan_in_weight_maps():
    data = tiny_data(weights=True)
    data.tensors[2][0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN .*weight maps"):
        fit(tiny_unet(), data, **FIT)


def test_nan_only_in_the_validation_data_is_not_silently_scored():
    with pytest.raises(ValueError, match="validation batch 0 holds 1 NaN"):
        fit(tiny_unet(), tiny_data(), tiny_data(n=2, nan_at=0), **FIT)


def test_a_diverged_model_is_named_in_validation():
    model = tiny_unet()
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    with pytest.raises(ValueError, match="diverged"):
        evaluate(model, tiny_data(), device="cpu")


@pytest.mark.parametrize("where", ["train_data", "val_data", "evaluate", "drop_last loader"])
def test_empty_data_is_named(where):
    empty = TensorDataset(torch.zeros(0, 1, 16, 16), torch.zeros(0, 16, 16, dtype=torch.long))
    with pytest.raises(ValueError, match="empty|no batches"):
        if where == "train_data":
            fit(tiny_unet(), empty, **FIT)
        elif where == "val_data":
            fit(tiny_unet(), tiny_data(), empty, **FIT)
        elif where == "evaluate":
            evaluate(tiny_unet(), empty, device="cpu")
        else:
            fit(tiny_unet(), DataLoader(tiny_data(n=1), batch_size=2, drop_last=True), **FIT)


@pytest.mark.parametrize("model", ["valid", "padded", "padded tiled", "fcn"])
def test_nan_pixels_in_an_image_to_segment_are_named(model):
    image = torch.rand(1, 40, 40)
    image[0, 7, 9] = float("nan")
    net = {"valid": VALID, "padded": tiny_unet(), "padded tiled": tiny_unet(),
           "fcn": FCN(2, in_channels=1, widths=(2, 2, 2, 2, 2), fc_channels=4)}[model]
    with pytest.raises(ValueError, match="1 NaN and 0 Inf pixel values"):
        segment_image(net, image, tiled=model == "padded tiled")


def test_nan_in_images_to_predict_is_named():
    images = torch.rand(2, 1, 16, 16)
    images[1, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="1 Inf"):
        predict(tiny_unet(), images, device="cpu")
    with pytest.raises(ValueError, match="1 Inf"):
        tiling.predict_tiled(VALID, images[1])


MODELS = {
    "unet valid": (lambda: UNet(1, 2, depth=1, base_channels=2), (1, 1, 20, 20)),
    "unet same": (lambda: UNet(1, 2, depth=1, base_channels=2, padding="same"), (1, 1, 16, 16)),
    "unet++": (lambda: UNetPlusPlus(1, 2, depth=1, base_channels=2), (1, 1, 16, 16)),
    "unet-e": (lambda: UNetE(1, 2, depth=2, base_channels=2), (1, 1, 16, 16)),
    "fcn": (lambda: FCN(2, in_channels=1, widths=(2, 2, 2, 2, 2), fc_channels=4), (1, 1, 32, 32)),
    "encoder-decoder": (lambda: EncoderDecoder(2, in_channels=1, width=2, levels=1), (1, 1, 16, 16)),
    "sliding window": (lambda: SlidingWindowClassifier(1, 2, patch_size=13, width=2), (1, 1, 13, 13)),
}


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_input_of_another_float_dtype_is_named_with_the_fix(name, dtype):
    make, shape = MODELS[name]
    with pytest.raises(TypeError, match=rf"{dtype}.*weights are torch.float32.*x\.float\(\)"):
        make().eval()(torch.rand(shape).to(dtype))


@pytest.mark.parametrize("name", MODELS)
def test_uint8_input_is_named_with_the_fix(name):
    make, shape = MODELS[name]
    with pytest.raises(TypeError, match=r"float tensor.*torch.uint8.*x\.float\(\) / 255"):
        make().eval()(torch.zeros(shape, dtype=torch.uint8))


@pytest.mark.parametrize("name", MODELS)
def test_a_float64_model_still_takes_float64_input(name):
    make, shape = MODELS[name]
    out = make().double().eval()(torch.rand(shape, dtype=torch.float64))
    assert (out[-1] if isinstance(out, list) else out).dtype == torch.float64
