"""``python -m segedu train`` / ``predict``: the round trip, resuming, your own folders, bad input.

Everything is tiny (a few 32x32 images, models 4 channels wide) so the whole file runs in seconds.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from segedu.__main__ import main
from segedu.cli import load_model
from segedu.data import ImageFolder, Shapes
from segedu.inference import segment_image

TINY = ["--width", "4", "--depth", "2", "--batch-size", "4", "--n-train", "8", "--n-val", "4", "--size", "32",
        "--no-progress", "--device", "cpu"]


def train(out, *args, model="unet", epochs=2):
    return main(["train", "--model", model, "--epochs", str(epochs), "--out", str(out), *TINY, *args])


def one_line_error(capsys, *words):
    """The command failed with exactly one line on stderr, no traceback, naming ``words``."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for w in words:
        assert w in err, err
    return err


def write_png(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def make_folder(root, n=4, size=(32, 32), values=(0, 1, 2), tif=False):
    """``root/images`` (RGB PNG or grey TIFF) and ``root/masks`` (8-bit class indices) from Shapes."""
    data = Shapes(n, size=max(size), seed=3)
    for i in range(n):
        x, m = data[i]
        img = (x.numpy().transpose(1, 2, 0)[: size[0], : size[1]] * 255).astype(np.uint8)
        mask = np.asarray(values, np.uint8)[np.minimum(m.numpy(), len(values) - 1)][: size[0], : size[1]]
        if tif:
            Image.fromarray(img[..., 0]).save(_mk(root / "images" / f"s{i}.tif"))
        else:
            write_png(root / "images" / f"s{i}.png", img)
        write_png(root / "masks" / f"s{i}.png", mask)
    return root


def _mk(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny U-Net run shared by the tests that only read its outputs."""
    out = tmp_path_factory.mktemp("run")
    assert train(out) == 0
    return out


# --------------------------------------------------------------------------------------------
# train -> checkpoint -> predict
# --------------------------------------------------------------------------------------------

def test_train_writes_metrics_checkpoints_and_preview(trained):
    metrics = json.loads((trained / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == [1, 2]
    assert {"loss", "val_loss", "val_mean_iou"} <= set(metrics["epochs"][0])
    assert metrics["best"]["epoch"] == metrics["best_epoch"]
    ckpt = torch.load(trained / "best.pt", weights_only=True)  # plain data and tensors only
    assert ckpt["model"] == "UNet" and ckpt["model_args"]["base_channels"] == 4
    assert ckpt["epoch"] == metrics["best_epoch"] and ckpt["num_classes"] == 4
    last = torch.load(trained / "last.pt", weights_only=True)
    assert last["epoch"] == 2 and {"optimizer", "rng", "history"} <= set(last["state"])
    model, _ = load_model(trained)  # rebuilt from the class name and arguments
    assert sum(p.numel() for p in model.parameters()) > 0
    with Image.open(trained / "preview.png") as im:
        assert im.mode == "RGB" and im.size[0] > 3 * 128
    assert not list(trained.glob("*.tmp*"))


def test_predict_writes_full_size_masks_and_overlays(trained, tmp_path, capsys):
    images = tmp_path / "in"
    for name, (h, w) in {"a": (37, 45), "b": (64, 30)}.items():  # sizes not divisible by 2**depth
        write_png(images / f"{name}.png", np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8))
    assert main(["predict", "--checkpoint", str(trained), "--input", str(images), "--out", str(tmp_path / "p"),
                 "--no-progress"]) == 0
    assert "wrote 2 mask(s)" in capsys.readouterr().out
    for name, (h, w) in {"a": (37, 45), "b": (64, 30)}.items():
        mask = np.asarray(Image.open(tmp_path / "p" / "masks" / f"{name}.png"))
        assert mask.shape == (h, w) and mask.max() < 4
        overlay = Image.open(tmp_path / "p" / "overlays" / f"{name}.png")
        assert overlay.mode == "RGB" and overlay.size == (w, h)
    # the written masks are valid training masks again: predictions + images form a folder dataset
    os.rename(tmp_path / "p" / "masks", tmp_path / "p" / "m")
    (tmp_path / "ds").mkdir()
    os.rename(images, tmp_path / "ds" / "images")
    os.rename(tmp_path / "p" / "m", tmp_path / "ds" / "masks")
    assert len(ImageFolder(tmp_path / "ds", num_classes=4)) == 2


def test_valid_unet_predicts_any_size_with_overlap_tile(tmp_path):
    out = tmp_path / "run"
    # depth 2, valid padding: inputs 40 + 4k; 52 -> 12x12 outputs (targets are centre-cropped)
    assert main(["train", "--model", "unet-valid", "--epochs", "1", "--out", str(out), "--width", "4", "--depth", "2",
                 "--size", "52", "--n-train", "4", "--n-val", "2", "--batch-size", "2", "--no-progress"]) == 0
    write_png(tmp_path / "big.png", np.random.default_rng(1).integers(0, 255, (70, 91, 3), dtype=np.uint8))
    for extra in ([], ["--tiled", "--tile-size", "48"]):
        assert main(["predict", "--checkpoint", str(out / "best.pt"), "--input", str(tmp_path / "big.png"),
                     "--out", str(tmp_path / "p"), *extra]) == 0
        assert np.asarray(Image.open(tmp_path / "p" / "masks" / "big.png")).shape == (70, 91)


@pytest.mark.parametrize("model, extra", [("sliding", ["--patches", "64", "--patch-size", "13"]), ("fcn8s", []),
                                          ("unetpp", ["--deep-supervision"]), ("unete", [])])
def test_every_model_family_trains_and_predicts(tmp_path, model, extra):
    assert main(["train", "--model", model, "--epochs", "1", "--out", str(tmp_path), *TINY, *extra]) == 0
    net, ckpt = load_model(tmp_path)
    assert ckpt["cli_model"] == model
    labels = segment_image(net, torch.rand(3, 33, 35))
    assert labels.shape == (33, 35) and labels.max() < 4


def test_subprocess_run_shows_progress_and_exits_zero(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "segedu", "train", "--model", "unet", "--epochs", "1",
                           "--out", str(tmp_path), *[a for a in TINY if a != "--no-progress"]],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "epoch   1/1" in proc.stdout and "best val_mean_iou" in proc.stdout
    assert (tmp_path / "best.pt").exists()


# --------------------------------------------------------------------------------------------
# resume
# --------------------------------------------------------------------------------------------

def test_resume_continues_exactly_where_the_run_stopped(tmp_path):
    args = ["--weight-decay", "1e-4", "--lr", "3e-3"]
    assert train(tmp_path / "straight", *args, epochs=3) == 0
    assert train(tmp_path / "stopped", *args, epochs=1) == 0
    assert main(["train", "--resume", str(tmp_path / "stopped"), "--epochs", "3", "--no-progress"]) == 0
    a = json.loads((tmp_path / "straight" / "metrics.json").read_text())["epochs"]
    b = json.loads((tmp_path / "stopped" / "metrics.json").read_text())["epochs"]
    assert [e["epoch"] for e in b] == [1, 2, 3]  # the epoch count continues
    for x, y in zip(a, b):  # and so does the loss curve, exactly (CPU)
        assert {k: v for k, v in x.items() if k != "time"} == {k: v for k, v in y.items() if k != "time"}
    wa = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)["state_dict"]
    wb = torch.load(tmp_path / "stopped" / "last.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_resume_of_a_finished_run_says_so(trained, capsys):
    assert main(["train", "--resume", str(trained), "--no-progress"]) == 0
    assert "already trained 2 epochs" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# folder:PATH data
# --------------------------------------------------------------------------------------------

def test_folder_data_trains_with_tiff_images_and_binary_masks(tmp_path):
    make_folder(tmp_path / "d", n=5, values=(0, 255, 255), tif=True)
    ds = ImageFolder(tmp_path / "d", binary=True)
    x, m = ds[0]
    assert x.shape == (1, 32, 32) and x.dtype == torch.float32 and set(m.unique().tolist()) <= {0, 1}
    assert ds.num_classes == 2 and ds.in_channels == 1
    assert main(["train", "--model", "unet", "--data", f"folder:{tmp_path / 'd'}", "--binary-masks", "--epochs", "1",
                 "--out", str(tmp_path / "run"), "--width", "4", "--depth", "2", "--batch-size", "2",
                 "--no-progress"]) == 0
    ckpt = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert ckpt["in_channels"] == 1 and ckpt["num_classes"] == 2


def test_folder_of_mixed_sizes_trains_on_crops(tmp_path):
    make_folder(tmp_path / "d", n=2, size=(40, 36))
    make_folder(tmp_path / "e", n=2, size=(48, 48))
    for p in (tmp_path / "e").rglob("*.png"):
        os.rename(p, tmp_path / "d" / p.parent.name / f"x{p.name}")
    args = ["train", "--model", "unet", "--data", f"folder:{tmp_path / 'd'}", "--epochs", "1", "--out",
            str(tmp_path / "run"), "--width", "4", "--depth", "2", "--no-progress", "--batch-size", "2"]
    assert main(args) != 0  # different sizes and no --size
    assert main(args + ["--size", "32", "--n-train", "4"]) == 0


def test_folder_errors_name_the_files(tmp_path):
    root = make_folder(tmp_path / "d", n=3)
    ImageFolder(root)  # fine as made
    (root / "masks" / "s1.png").unlink()
    write_png(root / "masks" / "zzz.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"1 image\(s\) without a mask.*s1\.png.*1 mask\(s\) without an image.*zzz\.png"):
        ImageFolder(root)

    root = make_folder(tmp_path / "u", n=3)
    (root / "images" / "s2.png").write_bytes(b"not a png at all")
    with pytest.raises(ValueError, match=r"cannot be read as images: s2\.png"):
        ImageFolder(root)

    root = make_folder(tmp_path / "s", n=2)
    write_png(root / "masks" / "s0.png", np.zeros((30, 32), np.uint8))
    with pytest.raises(ValueError, match=r"differ in size: s0\.png 32x32 vs mask 30x32"):
        ImageFolder(root)

    root = make_folder(tmp_path / "v", n=2, values=(0, 1, 7))
    with pytest.raises(ValueError, match=r"s\d\.png holds the value 7, outside the class range 0\.\.2"):
        ImageFolder(root, num_classes=3)
    assert ImageFolder(root).num_classes == 8  # without num_classes: the largest value + 1

    root = make_folder(tmp_path / "b", n=2, values=(0, 255, 255))
    with pytest.raises(ValueError, match="holds the value 255.*binary"):
        ImageFolder(root)

    root = make_folder(tmp_path / "c", n=1)
    write_png(root / "masks" / "s0.png", np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="mode RGB; a mask must be a single-channel"):
        ImageFolder(root)

    with pytest.raises(FileNotFoundError, match="no masks/ folder"):
        (tmp_path / "m" / "images").mkdir(parents=True)
        ImageFolder(tmp_path / "m")


# --------------------------------------------------------------------------------------------
# bad input: one line on stderr, exit status != 0, no traceback
# --------------------------------------------------------------------------------------------

def test_bad_input_is_one_line_without_traceback(trained, tmp_path, capsys):
    assert train(tmp_path / "a", model="unet3") == 1
    one_line_error(capsys, "unknown model 'unet3'", "unetpp")

    assert train(tmp_path / "b", "--data", f"folder:{tmp_path / 'nowhere'}") == 1
    one_line_error(capsys, "nowhere", "does not exist")

    root = make_folder(tmp_path / "d", n=2)
    write_png(root / "masks" / "s0.png", np.zeros((16, 32), np.uint8))
    assert train(tmp_path / "c", "--data", f"folder:{root}") == 1
    one_line_error(capsys, "s0.png 32x32 vs mask 16x32")

    (root / "images" / "s1.png").write_bytes(b"\x89PNG broken")
    write_png(root / "masks" / "s0.png", np.zeros((32, 32), np.uint8))
    assert train(tmp_path / "c", "--data", f"folder:{root}") == 1
    one_line_error(capsys, "cannot be read", "s1.png")

    assert main(["train", "--resume", str(trained), "--model", "fcn8s", "--epochs", "3"]) == 1
    one_line_error(capsys, "that run used --model unet, not fcn8s")

    assert main(["train", "--model", "unet-valid", "--epochs", "1", "--out", str(tmp_path / "v"), *TINY]) == 1
    one_line_error(capsys, "do not fit unet-valid", "nearest valid sizes")

    assert train(trained) == 1  # would overwrite a run
    one_line_error(capsys, "already holds a run", "--resume")

    assert main(["train", "--model", "unet", "--epochs", "x", "--out", str(tmp_path)]) == 1
    one_line_error(capsys, "--epochs", "invalid int value")


def test_predict_bad_input(trained, tmp_path, capsys):
    write_png(tmp_path / "img.png", np.zeros((32, 32, 3), np.uint8))
    predict = ["predict", "--out", str(tmp_path / "p")]

    assert main(predict + ["--checkpoint", str(trained), "--input", str(tmp_path / "missing.png")]) == 1
    one_line_error(capsys, "missing.png does not exist")

    (tmp_path / "junk.png").write_bytes(b"junk")
    assert main(predict + ["--checkpoint", str(trained), "--input", str(tmp_path / "junk.png")]) == 1
    one_line_error(capsys, "cannot read image", "junk.png")

    assert main(predict + ["--checkpoint", str(tmp_path / "nope"), "--input", str(tmp_path / "img.png")]) == 1
    one_line_error(capsys, "not found")

    # a checkpoint whose weights belong to another model than the one it names
    ckpt = torch.load(trained / "best.pt", weights_only=True)
    ckpt["model_args"] = dict(ckpt["model_args"], base_channels=8)
    torch.save(ckpt, tmp_path / "other.pt")
    assert main(predict + ["--checkpoint", str(tmp_path / "other.pt"), "--input", str(tmp_path / "img.png")]) == 1
    one_line_error(capsys, "do not fit", "another model")

    ckpt["model"], ckpt["model_args"] = "FCN", {"num_classes": 4, "in_channels": 3}
    torch.save(ckpt, tmp_path / "fcn.pt")
    assert main(predict + ["--checkpoint", str(tmp_path / "fcn.pt"), "--input", str(tmp_path / "img.png")]) == 1
    one_line_error(capsys, "another model")

    torch.save({"state_dict": ckpt["state_dict"]}, tmp_path / "bare.pt")  # e.g. fit(checkpoint=...)
    assert main(predict + ["--checkpoint", str(tmp_path / "bare.pt"), "--input", str(tmp_path / "img.png")]) == 1
    one_line_error(capsys, "not which model")


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(Exception, match="unknown model"):
        train(tmp_path, "--debug", model="nope")


@pytest.mark.parametrize("distributed", [False, True])
def test_fit_state_resumes_exactly(distributed):
    """``fit(state=...)`` itself: the shuffling generator (or the sampler's epoch), Adam and the RNGs."""
    from segedu.models import UNet
    from segedu.train import TrainState, fit

    def run(epochs_before_stop):
        torch.manual_seed(0)
        model = UNet(3, 4, depth=1, base_channels=4, padding="same")
        kw = dict(batch_size=4, lr=3e-3, device="cpu", progress=False, seed=5, distributed=distributed)
        state = TrainState()
        if epochs_before_stop:
            fit(model, Shapes(12, size=32), epochs=epochs_before_stop, state=state, **kw)
            saved = {k: v.clone() for k, v in model.state_dict().items()}
            torch.manual_seed(123)  # a fresh process: other RNG states, weights reloaded
            model = UNet(3, 4, depth=1, base_channels=4, padding="same")
            model.load_state_dict(saved)
            state = TrainState.from_dict(state.to_dict())
        history = fit(model, Shapes(12, size=32), epochs=3, state=state, **kw)
        return history["loss"], model.state_dict()

    (loss_a, wa), (loss_b, wb) = run(0), run(1)
    assert loss_a == loss_b and len(loss_b) == 3
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
