"""Chapter 2's memory claim, measured: a stack that keeps full resolution saves
``depth x width x H x W`` activations for backward; an encoder-decoder with the same number of
convolutions saves less, and the saved bytes match the arithmetic exactly."""

import pytest
import torch
from torch import nn

from segedu.memory import (activation_bytes, cuda_peak_bytes, encoder_decoder_stack, expected_activation_bytes,
                           full_resolution_stack)


@pytest.mark.parametrize("depth", [3, 4, 5, 6])
@pytest.mark.parametrize("size", [16, 32])
def test_measured_bytes_equal_the_arithmetic(depth, size):
    x = torch.rand(2, 3, size, size)
    for kind, build in (("full", full_resolution_stack), ("encoder_decoder", encoder_decoder_stack)):
        model = build(depth, 8)
        assert model(x).shape == (2, 4, size, size)
        measured = activation_bytes(model, x)
        assert measured == expected_activation_bytes(kind, depth, 8, size, batch=2)


def test_full_resolution_grows_with_depth_times_pixels():
    x32, x64 = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 64, 64)
    full = [activation_bytes(full_resolution_stack(d, 8), x32) for d in (2, 4, 8)]
    assert full == [d * 8 * 32 * 32 * 4 for d in (2, 4, 8)]  # depth x width x H x W float32 values
    assert activation_bytes(full_resolution_stack(4, 8), x64) == 4 * full[1]  # 2x the side, 4x the bytes


def test_encoder_decoder_saves_less_and_the_gap_grows_with_depth():
    x = torch.rand(1, 3, 64, 64)
    ratios = []
    for depth in (3, 5, 7, 9):
        full = activation_bytes(full_resolution_stack(depth, 8), x)
        ed = activation_bytes(encoder_decoder_stack(depth, 8), x)
        assert ed < full
        ratios.append(full / ed)
    assert ratios == sorted(ratios)


def test_activation_bytes_counts_shared_storage_once_and_excludes_input_and_parameters():
    # an in-place ReLU saves the very tensor the next convolution saves as its input
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(2, 1, 1))
    assert activation_bytes(net, torch.rand(1, 1, 8, 8)) == 2 * 8 * 8 * 4
    # a single layer: it saves only its input (excluded) and weight (excluded)
    assert activation_bytes(nn.Conv2d(1, 1, 3), torch.rand(1, 1, 8, 8)) == 0
    # without anything that needs a gradient nothing is saved
    frozen = full_resolution_stack(2, 4).requires_grad_(False)
    assert activation_bytes(frozen, torch.rand(1, 3, 8, 8)) == 0


def test_activation_bytes_works_under_no_grad():
    net = full_resolution_stack(3, 4)
    with torch.no_grad():
        assert activation_bytes(net, torch.rand(1, 3, 8, 8)) == 3 * 4 * 64 * 4


def test_bad_arguments():
    with pytest.raises(TypeError, match="nn.Module"):
        activation_bytes(lambda x: x, torch.rand(1))
    with pytest.raises(TypeError, match="torch.Tensor"):
        activation_bytes(nn.Identity(), [1.0])
    with pytest.raises(ValueError, match="depth must be an integer >= 3"):
        encoder_decoder_stack(2, 8)
    with pytest.raises(ValueError, match="width must be an integer >= 1"):
        full_resolution_stack(3, 0)
    with pytest.raises(ValueError, match="kind must be 'full' or 'encoder_decoder'"):
        expected_activation_bytes("unet", 3, 8, 32)
    with pytest.raises(ValueError, match="divisible by 4"):
        expected_activation_bytes("encoder_decoder", 5, 8, 30)


def test_cuda_peak_bytes_is_none_without_a_gpu_and_positive_with_one():
    peak = cuda_peak_bytes(full_resolution_stack(2, 4), torch.rand(1, 3, 16, 16))
    if torch.cuda.is_available():
        assert peak > 0
    else:
        assert peak is None
