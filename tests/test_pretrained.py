"""The reference models (segedu.pretrained): what ships, that it is what its record says, and that it
still scores what its record says on held-out data (when SEGEDU_DATA has the data).

The course's targets (membrane Dice >= 0.80 on ISBI slices 24-29, CamVid test mean IoU >= 0.50 over
the 11 classes at full size) are checked on the recorded scores, which the reproduce tests check
against a live measurement."""

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from segedu import pretrained
from segedu.pretrained import recipes

DATA = Path(os.environ.get("SEGEDU_DATA", "/nonexistent"))
needs_isbi = pytest.mark.skipif(not (DATA / "isbi2012-em").exists(), reason="ISBI 2012 slices not found (SEGEDU_DATA)")
needs_camvid = pytest.mark.skipif(not (DATA / "camvid").exists(), reason="CamVid not found (SEGEDU_DATA)")
NAMES = ("unet-isbi2012", "unet-camvid")


def test_both_reference_models_ship():
    assert set(NAMES) <= set(pretrained.available())


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_is_small_verified_and_recorded(name):
    path = pretrained.weights_path(name)
    assert path.stat().st_size <= 10_000_000
    rec = pretrained.record(name)
    assert rec["name"] == name and rec["bytes"] == path.stat().st_size
    assert rec["command"].startswith(f"python -m segedu.pretrained train {name}")
    assert rec["steps"] == recipes.RECIPES[name].steps  # trained with the recipe as it stands, not a quick check
    assert rec["recipe"]["model"] == recipes.RECIPES[name].model
    assert rec["train_seconds"] > 0 and rec["hardware"]["processor"] and rec["held_out_scores"]["held_out"]
    state = torch.load(path, map_location="cpu", weights_only=True)  # plain tensors only
    assert all(v.dtype in (torch.float16, torch.int64) for v in state.values())
    model = pretrained.load(name)
    assert not model.training and all(p.dtype == torch.float32 for p in model.parameters())


def test_a_changed_weights_file_is_refused(tmp_path, monkeypatch):
    name = "unet-isbi2012"
    for suffix in (".pt", ".json"):
        shutil.copy(pretrained.WEIGHTS / f"{name}{suffix}", tmp_path / f"{name}{suffix}")
    data = bytearray((tmp_path / f"{name}.pt").read_bytes())
    data[-100] ^= 1
    (tmp_path / f"{name}.pt").write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path)
    with pytest.raises(pretrained.ChecksumError, match="does not match"):
        pretrained.load(name)


def test_unknown_and_missing_models_are_explained(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="unknown reference model 'unet-voc'"):
        pretrained.load("unet-voc")
    monkeypatch.setattr(pretrained, "WEIGHTS", tmp_path)
    assert pretrained.available() == []
    with pytest.raises(FileNotFoundError, match="make pretrained"):
        pretrained.load("unet-camvid")


def test_predict_gives_full_size_labels():
    torch.manual_seed(0)
    em = torch.rand(1, 100, 130)  # any size: overlap-tile
    labels = pretrained.predict("unet-isbi2012", em)
    assert labels.shape == (100, 130) and set(labels.unique().tolist()) <= {0, 1}
    frames = torch.rand(2, 3, 360, 480)
    labels = pretrained.predict("unet-camvid", frames)
    assert labels.shape == (2, 360, 480) and labels.dtype == torch.int64
    assert 0 <= labels.min() and labels.max() <= 10
    odd = pretrained.predict("unet-camvid", torch.rand(3, 101, 77))  # not a multiple of anything
    assert odd.shape == (101, 77)


def test_predict_refuses_bad_images():
    with pytest.raises(ValueError, match="3 channel"):
        pretrained.predict("unet-camvid", torch.rand(1, 1, 64, 64))
    with pytest.raises(ValueError, match="float tensor"):
        pretrained.predict("unet-camvid", torch.zeros(1, 3, 64, 64, dtype=torch.uint8))


def test_train_refuses_to_overwrite(tmp_path):
    from segedu.pretrained.__main__ import main

    (tmp_path / "unet-camvid.pt").write_bytes(b"mine")
    with pytest.raises(SystemExit):
        main(["train", "unet-camvid", "--out", str(tmp_path)])
    assert (tmp_path / "unet-camvid.pt").read_bytes() == b"mine"


def _check_reproduces(name):
    recorded = pretrained.record(name)["held_out_scores"]
    live = pretrained.evaluate(name, progress=False)
    for key, value in recorded.items():
        if isinstance(value, float):
            # float16 weights, float32 arithmetic: another processor rounds differently, and a
            # pixel whose two best scores tie may flip; 1e-3 is far below any gap the course reads.
            assert live[key] == pytest.approx(value, abs=1e-3), key
    return live


@needs_isbi
def test_unet_isbi2012_reproduces_its_recorded_scores():
    _check_reproduces("unet-isbi2012")


@needs_camvid
def test_unet_camvid_reproduces_its_recorded_scores():
    live = _check_reproduces("unet-camvid")
    recorded = pretrained.record("unet-camvid")["held_out_scores"]
    for cls, value in recorded["class_iou"].items():
        assert live["class_iou"][cls] == pytest.approx(value, abs=2e-3), cls


@needs_camvid
def test_a_quick_training_run_trains(tmp_path):
    model, record = recipes.train("unet-camvid", steps=2, progress=False)
    assert record["steps"] == 2 and not model.training
    path = pretrained.save(model, "unet-camvid", record, tmp_path)
    again = pretrained.load("unet-camvid", path=path)
    x = torch.rand(1, 3, 96, 128)
    assert torch.allclose(again(x), model(x), atol=0.05)  # float16 storage: close, not equal
    assert json.loads((tmp_path / "unet-camvid.json").read_text())["sha256"]


TARGETS = {"unet-isbi2012": ("membrane_dice", 0.80), "unet-camvid": ("mean_iou", 0.50)}


@pytest.mark.parametrize("name", NAMES)
def test_recorded_scores_meet_the_targets(name):
    key, target = TARGETS[name]
    assert pretrained.record(name)["held_out_scores"][key] >= target


def test_the_isbi_offset_was_chosen_on_the_training_slices():
    rec = pretrained.record("unet-isbi2012")
    cal = rec["calibration"]
    assert cal["chosen_on"].startswith("training slices 0-23") and "24" not in cal["chosen_on"]
    assert rec["class_offsets"] == [0.0, cal["offset_added_to_cell_score"]] == pretrained.class_offsets("unet-isbi2012")
    assert cal["train_membrane_dice_with"] >= cal["train_membrane_dice_without"]


def test_the_camvid_offsets_were_chosen_on_the_val_split():
    rec = pretrained.record("unet-camvid")
    cal = rec["calibration"]
    assert cal["chosen_on"].startswith("CamVid val split") and len(rec["class_offsets"]) == 11
    assert cal["val_mean_iou_with"] >= cal["val_mean_iou_without"]
    assert rec["held_out_scores_without_offsets"]["mean_iou"] > 0  # the raw network's score is kept beside


def test_offsets_move_the_decision():
    em = torch.rand(1, 1, 64, 64)
    all_cell = pretrained.predict("unet-isbi2012", em, offsets=[0.0, 1e6])
    assert (all_cell == 1).all()
    assert (pretrained.predict("unet-isbi2012", em, offsets=[1e6, 0.0]) == 0).all()
    with pytest.raises(ValueError, match="offsets"):
        pretrained.predict("unet-isbi2012", em, offsets="shipped")


def test_calibrate_picks_the_best_offset_of_its_grid(monkeypatch):
    """calibrate() on a tiny valid U-Net and two fake slices: its choice is the grid's argmax of the
    membrane Dice, recomputed here by brute force."""
    import segedu.data
    from segedu.models import UNet
    from segedu.sizes import covering_input_size
    from segedu.tiling import predict_tiled

    torch.manual_seed(0)
    slices = [(torch.rand(1, 40, 40), (torch.rand(40, 40) > 0.3).long()) for _ in range(2)]

    class FakeISBI(list):
        def __init__(self, root=None, split="train"):
            super().__init__(slices)

    monkeypatch.setattr(segedu.data, "ISBI2012", FakeISBI)
    model = UNet(in_channels=1, num_classes=2, depth=1, base_channels=4, padding="valid").eval()
    offsets, cal = recipes.calibrate("unet-isbi2012", model, progress=False)
    with torch.no_grad():
        margin = torch.cat([(lambda s: (s[1] - s[0]).flatten())(
            predict_tiled(model, x, tile_size=covering_input_size(40, 1), batch_size=1)) for x, _ in slices])
    truth = torch.cat([(y == 0).flatten() for _, y in slices])

    def dice(b):
        called = margin + b < 0
        return 2 * int((called & truth).sum()) / (int(called.sum()) + int(truth.sum()))

    best = max(dice(round(-2 + 0.05 * i, 2)) for i in range(101))
    assert dice(offsets[1]) == pytest.approx(best) and cal["train_membrane_dice_with"] == pytest.approx(best, abs=1e-6)
