"""Bad files, images and folders: a clear refusal or a correct result, and nothing is lost (issue 17).

The file / image / command-line half of the reliability issue:

* silent overwrites: ``predict`` inputs sharing a name, an ``--out`` holding files the run did not
  write, two ``train`` runs in one folder (the run-folder lock), a full disk;
* images read with wrong values: 16-bit and float images, multi-page TIFF stacks, NaN pixels,
  masks of the wrong type or size;
* unclear messages: damaged checkpoints, checkpoints of another kind, resuming a folder that lost
  its ``best.pt`` or mixes two runs, empty and corrupted data;
* ``metrics.json`` is strict JSON.

Every refusal is one line on stderr naming the problem, and every test that involves files checks
that nothing outside the run's own files changed (a snapshot of the folder's bytes before and
after). Everything is tiny (models 4 channels wide, one pooling, 32x32 images).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from segedu.__main__ import main
from segedu.checkpoint import atomic_write, load_checkpoint
from segedu.cli import load_model
from segedu.data import ImageFolder, Shapes, read_image, read_mask

TINY = ["--width", "4", "--depth", "1", "--batch-size", "4", "--n-train", "4", "--n-val", "2", "--size", "32",
        "--no-progress", "--device", "cpu"]


def train(out, *args, epochs=1):
    return main(["train", "--model", "unet", "--epochs", str(epochs), "--out", str(out), *TINY, *args])


def predict(checkpoint, source, out, *args):
    return main(["predict", "--checkpoint", str(checkpoint), "--input", str(source), "--out", str(out),
                 "--no-progress", "--device", "cpu", *args])


def one_line_error(capsys, *words):
    """The command failed with exactly one line on stderr, no traceback, naming every one of ``words``
    (looked for in the line with the folders of paths left out: the test's own folder names do not count)."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert len(lines) == 1, err
    text = re.sub(r"/\S*/", "", lines[0]).lower()
    for w in words:
        assert w.lower() in text, err
    return lines[0]


def snapshot(folder) -> dict:
    """Every file under ``folder``: relative path -> bytes (what must not change)."""
    folder = Path(folder)
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def save(path, array, **kw):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kw)
    return path


def save_stack(path, pages):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ims = [Image.fromarray(p) for p in pages]
    ims[0].save(path, save_all=True, append_images=ims[1:])
    return path


def make_folder(root, n=4, size=32):
    """``root/images`` (RGB PNG) and ``root/masks`` (8-bit class indices 0..3) from Shapes."""
    data = Shapes(n, size=size, seed=3)
    for i in range(n):
        x, m = data[i]
        save(Path(root) / "images" / f"s{i}.png", (x.numpy().transpose(1, 2, 0) * 255).astype(np.uint8))
        save(Path(root) / "masks" / f"s{i}.png", m.numpy().astype(np.uint8))
    return Path(root)


def grey(seed=0, shape=(32, 32), dtype=np.uint8, high=None):
    high = high if high is not None else np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, high, shape, endpoint=True).astype(dtype)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny grey-scale (1-channel) run: the checkpoint for the predict tests."""
    root = tmp_path_factory.mktemp("greydata")
    for i in range(3):
        save(root / "images" / f"g{i}.png", grey(i))
        save(root / "masks" / f"g{i}.png", (grey(i + 10, high=1)).astype(np.uint8))
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--model", "unet", "--data", f"folder:{root}", "--epochs", "1", "--out", str(out),
                 "--width", "4", "--depth", "1", "--batch-size", "2", "--no-progress", "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="module")
def rgb_run(tmp_path_factory):
    """One tiny RGB (3-channel) run on the synthetic shapes."""
    out = tmp_path_factory.mktemp("rgbrun")
    assert train(out) == 0
    return out


# ==============================================================================================
# 1. Nothing is overwritten that the run did not write
# ==============================================================================================

def test_predict_refuses_inputs_that_share_a_name(run, tmp_path, capsys):
    save(tmp_path / "in" / "scan.png", grey(1))
    save(tmp_path / "in" / "scan.tif", grey(2))
    assert predict(run, tmp_path / "in", tmp_path / "p") == 1
    one_line_error(capsys, "scan.png", "scan.tif", "same name")
    assert snapshot(tmp_path / "p") == {}


def test_predict_refuses_an_out_folder_holding_files_it_did_not_write(run, tmp_path, capsys):
    data = make_folder(tmp_path / "data", n=2)  # the data set's own ground truth in data/masks
    save(tmp_path / "new" / "s0.png", grey(3))
    before = snapshot(data)
    assert predict(run, tmp_path / "new", data) == 1
    one_line_error(capsys, "masks", "--overwrite", "not written by")
    assert snapshot(data) == before


def test_predict_overwrite_replaces_only_the_files_of_the_same_name(run, tmp_path, capsys):
    data = make_folder(tmp_path / "data", n=2)
    save(tmp_path / "new" / "s0.png", grey(3))
    before = snapshot(data)
    assert predict(run, tmp_path / "new", data, "--overwrite") == 0
    after = snapshot(data)
    assert after["masks/s1.png"] == before["masks/s1.png"] and after["images/s0.png"] == before["images/s0.png"]
    assert after["masks/s0.png"] != before["masks/s0.png"]


def test_predict_again_into_its_own_out_replaces_its_own_files(run, tmp_path):
    save(tmp_path / "in" / "a.png", grey(1))
    assert predict(run, tmp_path / "in", tmp_path / "p") == 0
    assert predict(run, tmp_path / "in", tmp_path / "p") == 0
    assert {"masks/a.png", "overlays/a.png"} <= set(snapshot(tmp_path / "p"))


def test_predict_refuses_to_replace_a_mask_corrected_by_hand(run, tmp_path, capsys):
    save(tmp_path / "in" / "a.png", grey(1))
    assert predict(run, tmp_path / "in", tmp_path / "p") == 0
    save(tmp_path / "p" / "masks" / "a.png", np.ones((32, 32), np.uint8))  # a person corrected it
    before = snapshot(tmp_path / "p")
    assert predict(run, tmp_path / "in", tmp_path / "p") == 1
    one_line_error(capsys, "a.png", "--overwrite")
    assert snapshot(tmp_path / "p") == before


def test_predict_refuses_an_out_that_is_a_file(run, tmp_path, capsys):
    save(tmp_path / "a.png", grey(1))
    (tmp_path / "out").write_text("my notes")
    assert predict(run, tmp_path / "a.png", tmp_path / "out") == 1
    one_line_error(capsys, "out", "not a folder")
    assert (tmp_path / "out").read_text() == "my notes"


def test_train_refuses_an_out_folder_holding_files_of_no_run(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "metrics.json").write_text('{"mine": 1}')
    (out / "preview.png").write_bytes(b"my picture")
    before = snapshot(out)
    assert train(out) == 1
    one_line_error(capsys, "metrics.json", "--overwrite")
    assert snapshot(out) == before


def test_train_refuses_an_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "out").write_text("my notes")
    assert train(tmp_path / "out") == 1
    one_line_error(capsys, "out", "not a folder")
    assert (tmp_path / "out").read_text() == "my notes"


def test_a_second_train_run_into_the_same_folder_refuses_while_the_first_runs(tmp_path, capsys):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "segedu", "train", "--model", "unet", "--epochs", "40",
                              "--out", str(out), *TINY], env={**os.environ, "OMP_NUM_THREADS": "1"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        def holder():
            try:
                return (out / "run.lock").read_text()
            except FileNotFoundError:
                return ""

        while str(first.pid) not in holder() and first.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert str(first.pid) in holder(), "the first run never locked its folder"
        assert train(out, "--overwrite") == 1
        one_line_error(capsys, "in use", str(first.pid), "run.lock")
    finally:
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert not (out / "run.lock").exists()  # removed at exit
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["epochs"]) == 40 and metrics["run"]["epochs"] == 40  # one run's files only


def test_a_lock_held_by_a_live_process_refuses(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.lock").write_text(f"{os.getppid()} {socket.gethostname()}\n")
    before = snapshot(out)
    assert train(out) == 1
    one_line_error(capsys, "in use", str(os.getppid()))
    assert snapshot(out) == before


def test_a_stale_lock_of_a_dead_process_is_reported_and_replaced(tmp_path, capsys):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    out.mkdir()
    (out / "run.lock").write_text(f"{dead.pid} {socket.gethostname()}\n")
    assert train(out) == 0
    err = capsys.readouterr().err
    assert "stale" in err and str(dead.pid) in err
    assert not (out / "run.lock").exists() and (out / "last.pt").exists()


def test_a_failed_run_leaves_no_lock_and_no_folder(tmp_path, capsys):
    out = tmp_path / "new" / "run"
    assert train(out, "--data", f"folder:{tmp_path / 'nowhere'}") == 1
    one_line_error(capsys, "nowhere")
    assert not out.exists()


def _full_disk_after(n_ok, monkeypatch, target="torch"):
    """Make the (n_ok + 1)-th write fail with ENOSPC after writing a few bytes (a half-written file)."""
    calls = {"n": 0}

    def failing(write):
        def wrapped(obj, f, *a, **k):
            calls["n"] += 1
            if calls["n"] > n_ok:
                Path(f).write_bytes(b"half")
                raise OSError(errno.ENOSPC, "No space left on device", str(f))
            return write(obj, f, *a, **k)
        return wrapped

    if target == "torch":
        monkeypatch.setattr(torch, "save", failing(torch.save))
    else:
        real = Path.write_text
        monkeypatch.setattr(Path, "write_text", lambda self, text, *a, **k: failing(
            lambda t, f, *a2, **k2: real(Path(f), t, *a2, **k2))(text, self, *a, **k))


@pytest.mark.parametrize("target", ["torch", "metrics"])
def test_a_full_disk_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch, target):
    out = tmp_path / "run"
    assert train(out) == 0
    capsys.readouterr()
    before = snapshot(out)
    _full_disk_after(0, monkeypatch, target)
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 1
    one_line_error(capsys, "no space left", "--resume", "epoch 1")
    monkeypatch.undo()
    after = snapshot(out)
    assert not [p for p in after if p.endswith(".tmp") or p == "run.lock"]
    assert after["last.pt"] == before["last.pt"]  # the last good checkpoint, intact
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] == 1
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 0  # and it resumes


def test_a_full_disk_in_predict_is_one_line_and_leaves_no_partial_file(run, tmp_path, capsys, monkeypatch):
    save(tmp_path / "in" / "a.png", grey(1))
    import PIL.Image

    real = PIL.Image.Image.save

    def full(self, fp, *a, **k):
        Path(fp).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PIL.Image.Image, "save", full)
    assert predict(run, tmp_path / "in", tmp_path / "p") == 1
    monkeypatch.setattr(PIL.Image.Image, "save", real)
    one_line_error(capsys, "no space left", "a.png")
    assert not [p for p in snapshot(tmp_path / "p") if p.endswith(".png") or p.endswith(".tmp")]


def test_atomic_write_uses_a_temporary_file_of_its_own(tmp_path):
    target = tmp_path / "x.json"

    def outer(tmp):
        Path(tmp).write_text("outer")
        atomic_write(target, lambda t: Path(t).write_text("inner"))  # a second writer of the same file
        assert Path(tmp).read_text() == "outer"  # did not touch this writer's temporary file

    atomic_write(target, outer)
    assert target.read_text() == "outer"
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


# ==============================================================================================
# 2. Images are read with their real values
# ==============================================================================================

@pytest.mark.parametrize("ext", ["png", "tif"])
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_16_bit_grey_images_are_scaled_by_65535(tmp_path, ext, channels):
    a = grey(0, dtype=np.uint16)
    x = read_image(save(tmp_path / f"a.{ext}", a), channels=channels)
    assert x.shape == ((channels or 1), 32, 32)
    assert torch.allclose(x, torch.from_numpy(a / 65535.0).float().expand_as(x), atol=1e-6)


@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize("scale, expected", [(1.0, 1.0), (255.0, 1 / 255)])
def test_float_tiffs_in_0_1_are_kept_and_in_0_255_are_divided_by_255(tmp_path, channels, scale, expected):
    a = np.random.default_rng(0).random((32, 32)).astype(np.float32) * np.float32(scale)
    x = read_image(save(tmp_path / "f.tif", a), channels=channels)
    assert torch.allclose(x, torch.from_numpy(a * np.float32(expected)).expand_as(x), atol=1e-6)


@pytest.mark.parametrize("value, words", [(1000.0, ["1000", "[0, 1]", "255"]), (-3.0, ["-3", "below 0"]),
                                          (float("nan"), ["NaN"]), (float("inf"), ["infinite"])])
def test_float_images_out_of_range_or_not_finite_are_refused_naming_the_file(tmp_path, value, words):
    a = np.full((32, 32), 0.5, np.float32)
    a[3, 4] = value
    with pytest.raises(ValueError) as e:
        read_image(save(tmp_path / "odd.tif", a))
    for w in ["odd.tif", *words]:
        assert w in str(e.value), e.value


def test_a_32_bit_integer_image_is_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match=r"i32\.tif.*32-bit"):
        read_image(save(tmp_path / "i32.tif", np.arange(1024, dtype=np.int32).reshape(32, 32) * 1000))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bits=st.sampled_from([8, 16]), ext=st.sampled_from(["png", "tif"]), channels=st.sampled_from([None, 1, 3]),
       h=st.integers(1, 9), w=st.integers(1, 9), seed=st.integers(0, 2**16))
def test_any_8_or_16_bit_grey_image_round_trips_to_its_values_over_the_maximum(bits, ext, channels, h, w, seed):
    dtype = np.uint8 if bits == 8 else np.uint16
    a = grey(seed, (h, w), dtype)
    with tempfile.TemporaryDirectory() as d:
        x = read_image(save(Path(d) / f"a.{ext}", a), channels=channels)
    assert x.dtype == torch.float32 and x.shape == ((channels or 1), h, w)
    assert float(x.min()) >= 0 and float(x.max()) <= 1
    assert torch.allclose(x, torch.from_numpy(a / float(2**bits - 1)).float().expand_as(x), atol=1e-6)


def test_a_multi_page_tiff_is_refused_by_read_image_without_a_page_and_read_with_one(tmp_path):
    pages = [grey(k) for k in range(3)]
    path = save_stack(tmp_path / "stack.tif", pages)
    with pytest.raises(ValueError, match=r"stack\.tif.*3 pages.*page="):
        read_image(path)
    for k in range(3):
        assert torch.allclose(read_image(path, page=k)[0], torch.from_numpy(pages[k] / 255.0).float())
    with pytest.raises(ValueError, match="page 3.*3 pages"):
        read_image(path, page=3)


def test_an_image_folder_reads_every_page_of_a_stack(tmp_path):
    pages = [grey(k) for k in range(3)]
    save_stack(tmp_path / "d" / "images" / "vol.tif", pages)
    save_stack(tmp_path / "d" / "masks" / "vol.tif", [(p > 128).astype(np.uint8) for p in pages])
    ds = ImageFolder(tmp_path / "d")
    assert len(ds) == 3 and ds.sizes == [(32, 32)] * 3
    for k in range(3):
        x, m = ds[k]
        assert torch.allclose(x[0], torch.from_numpy(pages[k] / 255.0).float())
        assert torch.equal(m, torch.from_numpy((pages[k] > 128).astype(np.int64)))


def test_a_stack_image_with_a_single_page_mask_is_refused_naming_both(tmp_path):
    save_stack(tmp_path / "d" / "images" / "vol.tif", [grey(k) for k in range(3)])
    save(tmp_path / "d" / "masks" / "vol.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"vol\.tif.*3 pages.*vol\.png.*1"):
        ImageFolder(tmp_path / "d")


def test_predict_segments_every_page_of_a_stack(run, tmp_path):
    pages = [grey(k) for k in range(3)]
    save_stack(tmp_path / "in" / "vol.tif", pages)
    save(tmp_path / "in" / "one.png", grey(7))
    assert predict(run, tmp_path / "in", tmp_path / "p") == 0
    model, _ = load_model(run)
    from segedu.inference import segment_image

    with Image.open(tmp_path / "p" / "masks" / "vol.tif") as im:
        assert im.n_frames == 3
        for k in range(3):
            im.seek(k)
            expected = segment_image(model, torch.from_numpy(pages[k] / 255.0).float()[None]).numpy()
            assert np.array_equal(np.asarray(im), expected)
    assert (tmp_path / "p" / "masks" / "one.png").exists()


def test_an_image_folder_of_16_bit_and_rgb_images_reads_both_by_their_depth(tmp_path):
    a = grey(0, dtype=np.uint16)
    save(tmp_path / "d" / "images" / "a.png", a)
    save(tmp_path / "d" / "images" / "b.png", np.zeros((32, 32, 3), np.uint8))
    for n in "ab":
        save(tmp_path / "d" / "masks" / f"{n}.png", np.zeros((32, 32), np.uint8))
    ds = ImageFolder(tmp_path / "d")
    assert ds.in_channels == 3
    x, _ = ds[0]
    assert torch.allclose(x, torch.from_numpy(a / 65535.0).float().expand(3, -1, -1), atol=1e-6)


def test_an_image_folder_refuses_a_nan_image_naming_it(tmp_path):
    root = tmp_path / "d"
    for i in range(2):
        a = np.full((32, 32), 0.5, np.float32)
        if i == 1:
            a[5, 5] = np.nan
        save(root / "images" / f"f{i}.tif", a)
        save(root / "masks" / f"f{i}.png", np.zeros((32, 32), np.uint8))
    with pytest.raises(ValueError, match=r"f1\.tif.*NaN"):
        ImageFolder(root)


def test_train_on_a_folder_with_a_nan_image_is_one_line_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / "d"
    for i in range(3):
        a = np.full((32, 32), 0.5, np.float32)
        a[i, i] = np.nan if i == 2 else 0.5
        save(root / "images" / f"f{i}.tif", a)
        save(root / "masks" / f"f{i}.png", np.zeros((32, 32), np.uint8))
    before = snapshot(root)
    assert main(["train", "--model", "unet", "--data", f"folder:{root}", "--out", str(tmp_path / "run"), *TINY]) == 1
    one_line_error(capsys, "f2.tif", "NaN")
    assert snapshot(root) == before and not (tmp_path / "run").exists()


def test_predict_refuses_a_nan_image_naming_it(run, tmp_path, capsys):
    a = np.full((32, 32), 0.5, np.float32)
    a[0, 0] = np.inf
    save(tmp_path / "in" / "bad.tif", a)
    assert predict(run, tmp_path / "in", tmp_path / "p") == 1
    one_line_error(capsys, "bad.tif", "infinite")
    assert not (tmp_path / "p" / "masks" / "bad.png").exists()


def test_a_float_mask_with_fractions_is_refused_naming_mask_and_image(tmp_path):
    root = make_folder(tmp_path / "d", n=2)
    (root / "masks" / "s1.png").unlink()
    m = np.zeros((32, 32), np.float32)
    m[:4] = 0.5
    save(root / "masks" / "s1.tif", m)
    with pytest.raises(ValueError) as e:
        ImageFolder(root)
    for w in ("s1.tif", "s1.png", "0.5", "class indices"):
        assert w in str(e.value), e.value


def test_a_float_mask_of_whole_numbers_is_read_as_class_indices(tmp_path):
    root = make_folder(tmp_path / "d", n=2)
    m = np.asarray(Image.open(root / "masks" / "s1.png")).astype(np.float32)
    (root / "masks" / "s1.png").unlink()
    save(root / "masks" / "s1.tif", m)
    assert np.array_equal(read_mask(root / "masks" / "s1.tif"), m.astype(np.int64))
    assert ImageFolder(root).num_classes == 4


def test_a_mask_of_another_size_is_refused_naming_both_files(tmp_path):
    root = make_folder(tmp_path / "d", n=2)
    (root / "masks" / "s0.png").unlink()
    save(root / "masks" / "s0.tif", np.zeros((30, 32), np.uint8))
    with pytest.raises(ValueError, match=r"s0\.png 32x32 vs mask 30x32.*s0\.tif"):
        ImageFolder(root)


def test_negative_mask_values_are_refused_clearly(tmp_path):
    root = make_folder(tmp_path / "d", n=2)
    save(root / "masks" / "s0.tif", np.full((32, 32), -1, np.int32))
    (root / "masks" / "s0.png").unlink()
    with pytest.raises(ValueError, match=r"s0\.tif holds the value -1.*class indices"):
        ImageFolder(root)


# ==============================================================================================
# 3. Clear messages
# ==============================================================================================

def _damaged(path, how):
    data = path.read_bytes()
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "empty":
        path.write_bytes(b"")
    else:
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())


@pytest.mark.parametrize("how", ["truncated", "empty", "garbage"])
def test_a_damaged_checkpoint_is_one_clear_line(run, tmp_path, capsys, how):
    ckpt = tmp_path / "best.pt"
    ckpt.write_bytes((run / "best.pt").read_bytes())
    _damaged(ckpt, how)
    save(tmp_path / "a.png", grey(1))
    assert predict(ckpt, tmp_path / "a.png", tmp_path / "p") == 1
    line = one_line_error(capsys, "best.pt", "damaged")
    assert "errno" not in line.lower() and "EOFError" not in line
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("how", ["truncated", "empty"])
def test_load_checkpoint_names_a_damaged_file(run, tmp_path, how):
    ckpt = tmp_path / "c.pt"
    ckpt.write_bytes((run / "best.pt").read_bytes())
    _damaged(ckpt, how)
    with pytest.raises(ValueError, match=r"c\.pt.*damaged"):
        load_checkpoint(ckpt)


@pytest.mark.parametrize("content, words", [
    (torch.zeros(3), ["a Tensor", "not a segedu checkpoint"]),
    ([1, 2, 3], ["a list", "not a segedu checkpoint"]),
    ({"weights": torch.zeros(3), "epoch": 3}, ["no state_dict", "weights, epoch"]),
    ({"conv.weight": torch.zeros(3), "conv.bias": torch.zeros(1)}, ["weights but not which model"]),
])
def test_a_checkpoint_of_another_kind_says_what_it_holds(run, tmp_path, capsys, content, words):
    torch.save(content, tmp_path / "other.pt")
    save(tmp_path / "a.png", grey(1))
    assert predict(tmp_path / "other.pt", tmp_path / "a.png", tmp_path / "p") == 1
    one_line_error(capsys, "other.pt", *words)


def test_a_pickled_whole_model_is_refused_with_a_reason(tmp_path, capsys):
    torch.save(torch.nn.Conv2d(1, 2, 3), tmp_path / "model.pt")
    save(tmp_path / "a.png", grey(1))
    assert predict(tmp_path / "model.pt", tmp_path / "a.png", tmp_path / "p") == 1
    one_line_error(capsys, "model.pt", "pickled", "state_dict")


def test_resume_without_best_pt_is_refused_and_changes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out) == 0
    (out / "best.pt").unlink()
    before = snapshot(out)
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 1
    one_line_error(capsys, "best.pt", "missing")
    assert snapshot(out) == before


def test_resume_from_another_runs_last_pt_is_refused(tmp_path, capsys):
    assert train(tmp_path / "a") == 0
    assert train(tmp_path / "b", "--lr", "3e-3", epochs=2) == 0
    (tmp_path / "a" / "last.pt").write_bytes((tmp_path / "b" / "last.pt").read_bytes())
    before = snapshot(tmp_path / "a")
    assert main(["train", "--resume", str(tmp_path / "a"), "--epochs", "3", "--no-progress"]) == 1
    one_line_error(capsys, "last.pt", "best.pt", "different runs")
    assert snapshot(tmp_path / "a") == before


def test_resume_from_a_damaged_last_pt_is_one_clear_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert train(out) == 0
    _damaged(out / "last.pt", "truncated")
    before = snapshot(out)
    assert main(["train", "--resume", str(out), "--epochs", "2", "--no-progress"]) == 1
    one_line_error(capsys, "last.pt", "damaged")
    assert snapshot(out) == before


def test_an_empty_data_folder_names_the_folder(tmp_path, capsys):
    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "masks").mkdir()
    (tmp_path / "d" / "images" / "readme.txt").write_text("images go here")
    assert main(["train", "--model", "unet", "--data", f"folder:{tmp_path / 'd'}", "--out", str(tmp_path / "r"),
                 *TINY]) == 1
    one_line_error(capsys, "no images", "images", "readme.txt")
    assert not (tmp_path / "r").exists()


def test_predict_on_a_folder_of_subfolders_says_where_the_images_are(run, tmp_path, capsys):
    save(tmp_path / "in" / "day1" / "a.png", grey(1))
    assert predict(run, tmp_path / "in", tmp_path / "p") == 1
    one_line_error(capsys, "no images", "day1")


@pytest.mark.parametrize("how, reason", [("empty", "empty file"), ("truncated", "truncated"),
                                         ("garbage", "not an image")])
def test_a_corrupted_image_in_a_data_folder_is_named_with_the_reason(tmp_path, capsys, how, reason):
    root = make_folder(tmp_path / "d", n=3)
    _damaged(root / "images" / "s1.png", how)
    before = snapshot(root)
    assert main(["train", "--model", "unet", "--data", f"folder:{root}", "--out", str(tmp_path / "r"), *TINY]) == 1
    one_line_error(capsys, "s1.png", reason)
    assert snapshot(root) == before and not (tmp_path / "r").exists()


@pytest.mark.parametrize("how, reason", [("truncated", "truncated"), ("garbage", "not an image")])
def test_predict_names_a_corrupted_image_with_the_reason(run, tmp_path, capsys, how, reason):
    path = save(tmp_path / "in" / "c.png", grey(1, (64, 64)))
    _damaged(path, how)
    assert predict(run, tmp_path / "in", tmp_path / "p") == 1
    one_line_error(capsys, "c.png", reason)


# ==============================================================================================
# 4. metrics.json is strict JSON
# ==============================================================================================

def _strict(text):
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_write_json_writes_nan_and_infinity_as_null(tmp_path):
    from segedu.checkpoint import write_json

    write_json(tmp_path / "m.json", {"a": float("nan"), "b": [1.0, float("inf"), -float("inf")],
                                     "c": np.float32(0.5), "d": torch.tensor(2.0), "e": {"f": np.float64("nan")}})
    assert _strict((tmp_path / "m.json").read_text()) == {"a": None, "b": [1.0, None, None], "c": 0.5, "d": 2.0,
                                                         "e": {"f": None}}


def test_metrics_json_is_strict_when_a_metric_is_undefined(tmp_path, monkeypatch):
    import segedu.cli.train as cli_train

    real_fit = cli_train.fit

    def fit_with_undefined_metrics(*a, on_epoch_end, **k):
        def callback(record):
            record["val_dice"] = float("nan")  # e.g. a class absent from the validation data
            record["val_loss"] = float("inf")
            on_epoch_end(record)
        return real_fit(*a, on_epoch_end=callback, **k)

    monkeypatch.setattr(cli_train, "fit", fit_with_undefined_metrics)
    assert train(tmp_path / "run") == 0
    metrics = _strict((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["epochs"][0]["val_dice"] is None and metrics["epochs"][0]["val_loss"] is None
    assert not math.isnan(metrics["epochs"][0]["loss"])


# ==============================================================================================
# 5. Found by trying the command line as a new user (each was accepted or unclear before)
# ==============================================================================================

@pytest.mark.parametrize("args, words", [
    (["--out", ""], ["--out", "empty name"]),
    (["--weight-decay", "nan"], ["--weight-decay", "nan"]),
    (["--lr", "inf"], ["--lr", "inf"]),
    (["--size", "0"], ["--size", "positive"]),
])
def test_train_refuses_empty_or_non_finite_options(tmp_path, capsys, monkeypatch, args, words):
    monkeypatch.chdir(tmp_path)  # --out "" used to write the run into the current folder
    assert main(["train", "--model", "unet", *TINY, "--out", "run", *args]) == 1
    one_line_error(capsys, *words)
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize("args, words", [
    (["--out", ""], ["--out", "empty name"]),
    (["--alpha", "5"], ["--alpha", "between 0 and 1"]),
    (["--batch-size", "0"], ["--batch-size", "positive"]),
])
def test_predict_refuses_empty_or_out_of_range_options(run, tmp_path, capsys, monkeypatch, args, words):
    save(tmp_path / "in" / "a.png", grey(1))
    monkeypatch.chdir(tmp_path)
    assert main(["predict", "--checkpoint", str(run), "--input", "in", "--out", "p", "--no-progress", *args]) == 1
    one_line_error(capsys, *words)
    assert set(snapshot(tmp_path)) == {"in/a.png"}


@pytest.mark.parametrize("name, write, words", [
    ("metrics.json", lambda p: p.write_text('{"run": {}}'), ["metrics.json", "JSON file"]),
    ("a.png", lambda p: save(p, grey(1)), ["a.png", "PNG image"]),
])
def test_a_file_of_another_format_given_as_checkpoint_says_what_it_is(run, tmp_path, capsys, name, write, words):
    write(tmp_path / name)
    save(tmp_path / "in" / "b.png", grey(1))
    assert predict(tmp_path / name, tmp_path / "in", tmp_path / "p") == 1
    one_line_error(capsys, "not a checkpoint", *words)


def test_resume_from_a_folder_whose_last_pt_is_a_best_pt_copy(run, tmp_path, capsys):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "last.pt").write_bytes((run / "best.pt").read_bytes())  # no training state in it
    before = snapshot(tmp_path / "r")
    assert main(["train", "--resume", str(tmp_path / "r"), "--epochs", "2", "--no-progress"]) == 1
    one_line_error(capsys, "last.pt", "no run settings or training state")
    assert snapshot(tmp_path / "r") == before


def test_jpeg_masks_are_refused_as_lossy(tmp_path):
    root = make_folder(tmp_path / "d", n=2)
    m = np.asarray(Image.open(root / "masks" / "s0.png")) * 60
    (root / "masks" / "s0.png").unlink()
    save(root / "masks" / "s0.jpg", m.astype(np.uint8))
    with pytest.raises(ValueError, match=r"s0\.jpg is a JPEG.*not exact.*PNG"):
        ImageFolder(root, binary=True)


def test_masks_named_after_their_images_plus_a_suffix_get_a_hint(tmp_path):
    root = make_folder(tmp_path / "d", n=2)
    for i in range(2):
        os.rename(root / "masks" / f"s{i}.png", root / "masks" / f"s{i}_mask.png")
    with pytest.raises(ValueError, match=r"'_mask' added to the image names.*s0_mask\.png -> s0\.png"):
        ImageFolder(root)


def test_a_tiff_of_a_pixel_type_pillow_cannot_read_is_named_with_its_type(tmp_path):
    import struct

    data = np.linspace(0, 1, 64).reshape(8, 8).astype("<f8").tobytes()  # a float64 TIFF, written by hand
    tags = [(256, 4, 8), (257, 4, 8), (258, 3, 64), (259, 3, 1), (262, 3, 1), (273, 4, 8), (277, 3, 1),
            (278, 4, 8), (279, 4, len(data)), (339, 3, 3)]
    ifd = struct.pack("<H", len(tags)) + b"".join(
        struct.pack("<HHI", t, k, 1) + (struct.pack("<HH", v, 0) if k == 3 else struct.pack("<I", v))
        for t, k, v in tags) + struct.pack("<I", 0)
    (tmp_path / "f64.tif").write_bytes(b"II*\x00" + struct.pack("<I", 8 + len(data)) + data + ifd)
    with pytest.raises(ValueError, match=r"f64\.tif.*64-bit float pixels.*cannot read"):
        read_image(tmp_path / "f64.tif")


def test_predict_refuses_a_predict_json_it_did_not_write(run, tmp_path, capsys):
    save(tmp_path / "in" / "a.png", grey(1))
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "predict.json").write_text("my notes")
    assert predict(run, tmp_path / "in", tmp_path / "p") == 1
    one_line_error(capsys, "predict.json", "not written by predict", "--overwrite")
    assert snapshot(tmp_path / "p") == {"predict.json": b"my notes"}


def test_sigterm_stops_a_command_cleanly_releasing_its_lock_and_temporary_file(tmp_path, capsys):
    import signal

    from segedu.checkpoint import RunLock
    from segedu.cli.errors import run_command

    def command(argv):
        with RunLock(tmp_path):
            def killed_while_writing(tmp):
                Path(tmp).write_bytes(b"half")
                os.kill(os.getpid(), signal.SIGTERM)  # `kill PID`, or a scheduler's time limit
                time.sleep(5)
            atomic_write(tmp_path / "last.pt", killed_while_writing)
        return 0

    assert run_command(command, [], "segedu train") == 143
    assert "terminated" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # no lock, no half-written temporary file


# Found by trying the CLI as a new user (not written as tests first): nonsense numbers that were
# accepted silently.
@pytest.mark.parametrize("args, message", [
    (["sizes", "--near", "-5"], "--near must be a positive number of pixels, got -5"),
    (["sizes", "--max", "-4"], "--max must be a positive number of pixels, got -4"),
])
def test_sizes_refuses_nonsense_sides(args, message, capsys):
    from segedu.__main__ import main

    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_train_refuses_a_val_fraction_out_of_range_for_every_data_set(tmp_path, capsys):
    from segedu.cli import train_main

    assert train_main(["--model", "unet", "--data", "shapes", "--val-fraction", "1.5", "--out", str(tmp_path / "r")]) == 1
    assert "--val-fraction must be in [0, 1), got 1.5" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
