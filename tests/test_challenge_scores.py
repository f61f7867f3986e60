"""The ISBI 2012 challenge's scores (segedu.metrics.isbi_challenge_scores) on hand-made cell maps."""

import numpy as np
import pytest

from segedu.metrics import UNET_PAPER_ISBI2012, cells_of, isbi_challenge_scores


def two_cells():
    """A 20x20 slice cut by one vertical membrane into two cells of 10x20 and 9x20 pixels."""
    cells = np.ones((20, 20), bool)
    cells[:, 10] = False
    return cells


def test_a_perfect_prediction_scores_zero_errors():
    s = isbi_challenge_scores(two_cells(), two_cells())
    assert s["rand_error"] == 0 and s["vi"] == 0 and s["pixel_error"] == 0
    assert s["rand_split_score"] == 1 and s["rand_merge_score"] == 1


def test_a_one_pixel_gap_merges_two_cells_costs_rand_not_pixels():
    true = two_cells()
    pred = true.copy()
    pred[5, 10] = True  # one missed membrane pixel: the two cells become one
    s = isbi_challenge_scores(pred, true)
    assert cells_of(pred).max() == 1 and cells_of(true).max() == 2
    assert s["pixel_error"] == pytest.approx(1 / 400)
    assert s["rand_error"] > 0.3  # half of the same-cell pairs of the prediction are wrong
    assert s["rand_merge_score"] < 0.6 and s["rand_split_score"] == 1
    # H(true | pred): one bit (which of two equal-ish cells?) up to the gap pixel; nothing split.
    assert s["vi_merge"] == pytest.approx(1.0, abs=0.01) and s["vi_split"] == 0


def test_a_spurious_membrane_splits_a_cell():
    true = two_cells()
    pred = true.copy()
    pred[10, :] = False  # a membrane across both cells: four cells instead of two
    s = isbi_challenge_scores(pred, true)
    assert s["rand_split_score"] < 0.6 and s["rand_merge_score"] > 0.99
    assert s["vi_split"] > 0.9 and s["vi_merge"] < 0.1
    assert s["vi"] == pytest.approx(s["vi_split"] + s["vi_merge"])


def test_diagonal_touch_does_not_join_cells():
    m = np.zeros((4, 4), bool)
    m[0, 0] = m[1, 1] = True
    assert cells_of(m).max() == 2


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        isbi_challenge_scores(np.ones((4, 4), bool), np.ones((4, 5), bool))
    with pytest.raises(ValueError, match=r"\[H, W\]"):
        cells_of(np.ones((2, 4, 4), bool))


def test_the_paper_numbers_are_the_published_table():
    assert UNET_PAPER_ISBI2012 == {"warping_error": 0.000353, "rand_error": 0.0382, "pixel_error": 0.0611}


def test_iou_and_dice_from_a_summed_confusion_matrix():
    import torch

    from segedu.metrics import confusion_matrix, dice_from_confusion, iou, iou_from_confusion

    pred = torch.tensor([[[0, 1], [1, 1]], [[0, 0], [2, 2]]])
    target = torch.tensor([[[0, 1], [0, 1]], [[0, 0], [1, 1]]])
    conf = confusion_matrix(pred[:1], target[:1], 3) + confusion_matrix(pred[1:], target[1:], 3)
    # the data set's IoU (summed matrix) equals the IoU of all pixels at once
    assert torch.equal(iou_from_confusion(conf).nan_to_num(-1), iou(pred, target, 3).nan_to_num(-1))
    # class 0: TP 3, FN 1 -> IoU 3/4, Dice 6/7; class 2: never true, predicted twice -> IoU 0
    assert iou_from_confusion(conf)[0] == 0.75 and abs(float(dice_from_confusion(conf)[0]) - 6 / 7) < 1e-12
    assert iou_from_confusion(conf)[2] == 0
    assert torch.isnan(iou_from_confusion(torch.zeros(2, 2, dtype=torch.long))).all()
