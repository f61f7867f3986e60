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
