"""Soft Dice, BCE + Dice and deep supervision: definitions checked by hand."""

import math

import pytest
import torch

from segedu.losses import BCEDiceLoss, DeepSupervisionLoss, soft_dice_loss


def test_perfect_prediction_has_zero_dice_loss():
    target = torch.tensor([[[0, 1], [1, 1]]])
    logits = (target[:, None].float() * 2 - 1) * 50  # saturated, correct
    assert soft_dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-6)


def test_empty_vs_empty_is_defined_and_zero():
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    logits = torch.full((1, 1, 4, 4), -50.0, requires_grad=True)
    loss = soft_dice_loss(logits, target)
    assert math.isfinite(loss.item()) and loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_gradients_flow():
    logits = torch.zeros(2, 1, 4, 4, requires_grad=True)
    target = torch.randint(0, 2, (2, 4, 4))
    BCEDiceLoss()(logits, target).backward()
    assert logits.grad.abs().sum() > 0


def test_bce_dice_hand_computed():
    # one image, two pixels: logits 0 (p = 0.5) and log(3) (p = 0.75); targets 1 and 0
    logits = torch.tensor([[[[0.0, math.log(3.0)]]]])
    target = torch.tensor([[[1, 0]]])
    bce = -(math.log(0.5) + math.log(1 - 0.75)) / 2
    dice = (2 * 0.5 + 1) / ((0.5 + 0.75) + 1 + 1)
    assert BCEDiceLoss()(logits, target).item() == pytest.approx(0.5 * bce + (1 - dice), rel=1e-6)


def test_multiclass_dice_uses_softmax():
    target = torch.tensor([[[0, 1], [2, 2]]])
    logits = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(logits, target).item() == pytest.approx(0.0, abs=1e-6)
    assert BCEDiceLoss()(logits, target).item() == pytest.approx(0.0, abs=1e-5)


def test_deep_supervision_is_the_mean_of_head_losses():
    target = torch.randint(0, 2, (2, 4, 4))
    outs = [torch.randn(2, 1, 4, 4) for _ in range(4)]
    base = BCEDiceLoss()
    expected = sum(base(o, target) for o in outs) / 4
    assert DeepSupervisionLoss(base)(outs, target).item() == pytest.approx(expected.item(), rel=1e-6)
    weighted = DeepSupervisionLoss(base, weights=[0, 0, 0, 1])(outs, target)
    assert weighted.item() == pytest.approx(base(outs[-1], target).item(), rel=1e-6)
    with pytest.raises(ValueError, match="weights"):
        DeepSupervisionLoss(base, weights=[1, 1])(outs, target)


def test_bad_input():
    with pytest.raises(ValueError, match="0s and 1s"):
        soft_dice_loss(torch.zeros(1, 1, 2, 2), torch.full((1, 2, 2), 3))
    with pytest.raises(ValueError, match=r"\[N, H, W\]"):
        soft_dice_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 3, 3, dtype=torch.long))


# ---------------------------------------------------------------------------------------------
# reduction="image" (one Dice per image, averaged: the default) vs "batch" (one Dice over the
# whole flattened batch: the official UNet++ implementation)
# ---------------------------------------------------------------------------------------------

def _two_images():
    """Image 0: 4 foreground pixels, all predicted p = 0.75; image 1: 1 foreground pixel, missed (p = 0.25);
    background pixels of both predicted p = 0.25. 2x2 images."""
    target = torch.tensor([[[1, 1], [1, 1]], [[1, 0], [0, 0]]])
    p = torch.tensor([[[0.75, 0.75], [0.75, 0.75]], [[0.25, 0.25], [0.25, 0.25]]])
    return torch.log(p / (1 - p))[:, None], target, p


def test_image_and_batch_reductions_by_hand():
    logits, target, p = _two_images()
    s = 1.0
    # per image: (2 sum(p y) + s) / (sum(p) + sum(y) + s)
    d0 = (2 * 3.0 + s) / (3.0 + 4 + s)
    d1 = (2 * 0.25 + s) / (1.0 + 1 + s)
    assert soft_dice_loss(logits, target).item() == pytest.approx(1 - (d0 + d1) / 2, rel=1e-6)
    assert soft_dice_loss(logits, target, reduction="image").item() == pytest.approx(1 - (d0 + d1) / 2, rel=1e-6)
    # whole batch: the sums run over both images at once
    d = (2 * (3.0 + 0.25) + s) / ((3.0 + 1.0) + (4 + 1) + s)
    assert soft_dice_loss(logits, target, reduction="batch").item() == pytest.approx(1 - d, rel=1e-6)


def test_batch_reduction_weighs_images_by_their_foreground():
    # a missed small object costs a whole image's Dice per image, but little in the batch's sums
    logits, target, _ = _two_images()
    assert soft_dice_loss(logits, target, reduction="batch") < soft_dice_loss(logits, target, reduction="image")


def test_reductions_agree_on_one_image_and_on_copies():
    logits, target, _ = _two_images()
    for i in range(2):
        one = slice(i, i + 1)
        assert soft_dice_loss(logits[one], target[one], reduction="batch").item() == pytest.approx(
            soft_dice_loss(logits[one], target[one], reduction="image").item(), rel=1e-6)
    # the same image twice: per image, the mean of two equal Dice; per batch, sums doubled (smoothing aside)
    x, y = logits[:1].repeat(2, 1, 1, 1), target[:1].repeat(2, 1, 1)
    assert soft_dice_loss(x, y, smooth=0.0, reduction="batch").item() == pytest.approx(
        soft_dice_loss(x, y, smooth=0.0, reduction="image").item(), rel=1e-6)


def test_batch_reduction_multiclass_and_perfect():
    target = torch.tensor([[[0, 1], [2, 2]], [[0, 0], [0, 1]]])
    logits = torch.nn.functional.one_hot(target, 3).permute(0, 3, 1, 2).float() * 50
    assert soft_dice_loss(logits, target, reduction="batch").item() == pytest.approx(0.0, abs=1e-6)
    assert BCEDiceLoss(reduction="batch")(logits, target).item() == pytest.approx(0.0, abs=1e-5)


def test_bce_dice_batch_reduction_is_half_bce_plus_batch_dice():
    logits, target, _ = _two_images()
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], target.float())
    expected = 0.5 * bce + soft_dice_loss(logits, target, reduction="batch")
    assert BCEDiceLoss(reduction="batch")(logits, target).item() == pytest.approx(expected.item(), rel=1e-6)
    assert BCEDiceLoss()(logits, target).item() == pytest.approx(
        (0.5 * bce + soft_dice_loss(logits, target)).item(), rel=1e-6)
    assert "reduction='batch'" in repr(BCEDiceLoss(reduction="batch"))


def test_batch_reduction_gradients_flow_and_empty_batch_is_defined():
    logits = torch.full((2, 1, 4, 4), -50.0, requires_grad=True)
    target = torch.zeros(2, 4, 4, dtype=torch.long)
    loss = BCEDiceLoss(reduction="batch")(logits, target)
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_unknown_reduction_is_refused():
    with pytest.raises(ValueError, match="reduction"):
        soft_dice_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long), reduction="mean")
    with pytest.raises(ValueError, match="reduction"):
        BCEDiceLoss(reduction="sum")
