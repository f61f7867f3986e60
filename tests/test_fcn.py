"""Chapter 2's claims about fully convolutional networks.

* an FCN maps ``[N, C, H, W]`` images to ``[N, K, H, W]`` scores, for any input size;
* FCN-32s / 16s / 8s differ only in the skips they fuse, by summation, at 1/16 and 1/8;
* skip score layers start at zero and every upsampling starts as bilinear interpolation,
  so at initialisation the three variants predict the same thing;
* pixel-wise cross entropy is the mean of per-pixel cross entropies, with ``ignore_index``
  and class weights;
* the encoder-decoder of chapter 3 maps images to same-size scores with every upsampling.
"""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from segedu.losses import pixel_cross_entropy
from segedu.models import FCN
from segedu.models.encoder_decoder import UPSAMPLINGS, EncoderDecoder
from segedu.models.fcn import FCNConfig

TINY = dict(widths=(4, 4, 8, 8, 8), depths=(1, 1, 1, 1, 1), fc_channels=8)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
@pytest.mark.parametrize("size", [(64, 64), (50, 70), (33, 32)])
def test_fcn_outputs_one_score_per_class_and_pixel(variant, size):
    model = FCN(5, variant=variant, **TINY).eval()
    x = torch.rand(2, 3, *size)
    assert model(x).shape == (2, 5, *size)


def test_fcn_default_is_8s_and_in_channels():
    model = FCN(3, in_channels=1, **TINY)
    assert model.variant == "8s"
    assert model(torch.rand(1, 1, 32, 32)).shape == (1, 3, 32, 32)


def test_fcn_variants_differ_in_skip_fusion():
    layers = {v: {n for n, _ in FCN(4, v, **TINY).named_children()} for v in ("32s", "16s", "8s")}
    assert {"score_pool4", "score_pool3", "upscore2"}.isdisjoint(layers["32s"])
    assert {"score_pool4", "upscore2"} <= layers["16s"] and "score_pool3" not in layers["16s"]
    assert {"score_pool4", "score_pool3", "upscore2", "upscore_pool4"} <= layers["8s"]
    ups = {v: FCN(4, v, **TINY).upscore_final for v in ("32s", "16s", "8s")}
    assert [ups[v].stride[0] for v in ("32s", "16s", "8s")] == [32, 16, 8]
    assert [ups[v].kernel_size[0] for v in ("32s", "16s", "8s")] == [64, 32, 16]


def test_fcn_skips_are_summed_at_1_16_and_1_8():
    """Record the shapes meeting at each fusion: both operands have the same size and K channels."""
    model = FCN(4, "8s", **TINY).eval()
    seen = {}
    for name in ("upscore2", "score_pool4", "upscore_pool4", "score_pool3", "score_fr"):
        getattr(model, name).register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape)))
    model(torch.rand(1, 3, 64, 64))
    assert seen["score_fr"] == (1, 4, 2, 2)            # 1/32
    assert seen["upscore2"] == seen["score_pool4"] == (1, 4, 4, 4)       # 1/16
    assert seen["upscore_pool4"] == seen["score_pool3"] == (1, 4, 8, 8)  # 1/8


def test_fcn_skip_scores_start_at_zero_so_a_new_skip_changes_nothing():
    model = FCN(3, "8s", **TINY).eval()
    for name in ("score_pool4", "score_pool3"):
        assert torch.all(getattr(model, name).weight == 0) and torch.all(getattr(model, name).bias == 0)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        feats = x
        for stage in model.stages:
            feats = stage(feats)
        coarse_only = model.upscore_final(model.upscore_pool4(model.upscore2(model.score_fr(model.fc(feats)))))
        torch.testing.assert_close(model(x), coarse_only)


def test_fcn_upsamplings_start_as_bilinear_interpolation():
    model = FCN(2, "8s", **TINY)
    up = model.upscore2
    assert (up.kernel_size, up.stride, up.padding) == ((4, 4), (2, 2), (1, 1))
    x = torch.rand(1, 2, 6, 6)
    with torch.no_grad():
        ref = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        torch.testing.assert_close(up(x)[..., 2:-2, 2:-2], ref[..., 2:-2, 2:-2])


def test_fcn_gradients_reach_every_parameter():
    model = FCN(4, "8s", **TINY)
    out = model(torch.rand(2, 3, 32, 32))
    pixel_cross_entropy(out, torch.randint(0, 4, (2, 32, 32))).backward()
    # the zero-initialised skip layers get gradients (their inputs are not zero)
    assert all(p.grad is not None for p in model.parameters())
    assert model.score_pool3.weight.grad.abs().sum() > 0


def test_fcn_vgg16_has_the_paper_widths_and_134M_parameters():
    with torch.device("meta"):  # no memory for 134M parameters is allocated
        model = FCN.vgg16(21, "8s")
    n = sum(p.numel() for p in model.parameters())
    assert 133e6 < n < 135e6  # the paper's Table 1: 134M
    convs = [m for m in model.stages.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 13 and [c.out_channels for c in convs][-1] == 512
    assert model.fc[0].kernel_size == (7, 7) and model.fc[0].out_channels == 4096


def test_fcn_config_defaults_are_the_small_course_model():
    cfg = FCN(4).config
    assert cfg == FCNConfig()
    assert cfg.depths == (2, 2, 3, 3, 3)


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(num_classes=0), ValueError, "num_classes must be a positive integer"),
    (dict(num_classes=4, variant="4s"), ValueError, r"variant must be one of \('32s', '16s', '8s'\)"),
    (dict(num_classes=4, variant=8), ValueError, "variant must be one of"),
    (dict(num_classes=4, in_channels=0), ValueError, "in_channels must be a positive integer"),
    (dict(num_classes=4, widths=(4, 4)), ValueError, "5 positive numbers"),
    (dict(num_classes=4, fc_kernel=2), ValueError, "fc_kernel must be odd"),
    (dict(num_classes=4, norm="layer"), ValueError, "norm must be None"),
])
def test_fcn_bad_arguments(kwargs, error, words):
    with pytest.raises(error, match=words):
        FCN(**kwargs)


def test_fcn_bad_input_names_the_expected_shape():
    model = FCN(4, **TINY)
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        model(torch.rand(3, 32, 32))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        model(torch.rand(1, 1, 32, 32))


def test_fcn_norm_batch_and_training_step_reduces_loss():
    torch.manual_seed(0)
    model = FCN(2, "8s", norm="batch", **TINY)
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    x = torch.rand(4, 3, 32, 32)
    y = (x[:, 0] > 0.5).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = pixel_cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


# ------------------------------------------------------------------------------------------------
# Pixel-wise cross entropy
# ------------------------------------------------------------------------------------------------

def _per_pixel_by_hand(logits, target):
    """-log softmax(logits[n, :, y, x])[target[n, y, x]], one pixel at a time."""
    n, k, h, w = logits.shape
    out = torch.zeros(n, h, w, dtype=logits.dtype)
    for i in range(n):
        for y in range(h):
            for x in range(w):
                out[i, y, x] = -torch.log_softmax(logits[i, :, y, x], 0)[target[i, y, x]]
    return out


def test_pixel_cross_entropy_is_the_mean_over_pixels_of_a_classification_loss():
    torch.manual_seed(0)
    logits, target = torch.randn(2, 4, 3, 5, dtype=torch.float64), torch.randint(0, 4, (2, 3, 5))
    by_hand = _per_pixel_by_hand(logits, target)
    torch.testing.assert_close(pixel_cross_entropy(logits, target), by_hand.mean())
    # the same as flattening every pixel into one big batch of classification problems
    flat = F.cross_entropy(logits.permute(0, 2, 3, 1).reshape(-1, 4), target.reshape(-1))
    torch.testing.assert_close(pixel_cross_entropy(logits, target), flat)


@pytest.mark.parametrize("ignore_index", [-100, 255, 0])
def test_pixel_cross_entropy_ignore_index_leaves_pixels_out(ignore_index):
    torch.manual_seed(1)
    logits, target = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randint(0, 3, (2, 4, 4))
    target[0, :2] = ignore_index
    keep = target != ignore_index
    by_hand = _per_pixel_by_hand(logits, target.clamp(0, 2))[keep].mean()
    torch.testing.assert_close(pixel_cross_entropy(logits, target, ignore_index=ignore_index), by_hand)
    # changing the scores of ignored pixels changes nothing
    logits2 = logits.clone()
    logits2[0, :, :2] += 100
    torch.testing.assert_close(pixel_cross_entropy(logits2, target, ignore_index=ignore_index),
                               pixel_cross_entropy(logits, target, ignore_index=ignore_index))


def test_pixel_cross_entropy_class_weights_are_a_weighted_mean():
    torch.manual_seed(2)
    logits, target = torch.randn(1, 3, 4, 4, dtype=torch.float64), torch.randint(0, 3, (1, 4, 4))
    cw = torch.tensor([0.2, 1.0, 5.0], dtype=torch.float64)
    w = cw[target]
    expected = (w * _per_pixel_by_hand(logits, target)).sum() / w.sum()
    torch.testing.assert_close(pixel_cross_entropy(logits, target, class_weights=cw), expected)
    torch.testing.assert_close(pixel_cross_entropy(logits, target, class_weights=cw), F.cross_entropy(logits, target, weight=cw))


def test_pixel_cross_entropy_class_weights_with_ignore_index_below_zero():
    torch.manual_seed(3)
    logits, target = torch.randn(1, 3, 4, 4, dtype=torch.float64), torch.randint(0, 3, (1, 4, 4))
    target[0, 0] = -100
    cw = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(pixel_cross_entropy(logits, target, class_weights=cw),
                               F.cross_entropy(logits, target, weight=cw))


def test_pixel_cross_entropy_class_weights_with_ignore_index_255():
    logits, target = torch.randn(1, 3, 4, 4, dtype=torch.float64), torch.randint(0, 3, (1, 4, 4))
    target[0, 0] = 255
    cw = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(pixel_cross_entropy(logits, target, ignore_index=255, class_weights=cw),
                               F.cross_entropy(logits, target, weight=cw, ignore_index=255))


def test_pixel_cross_entropy_bad_input():
    logits = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"logits must be \[N, K, H, W\]"):
        pixel_cross_entropy(torch.randn(2, 3, 4), torch.zeros(2, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"target must be \[N, H, W\] = \(2, 4, 4\)"):
        pixel_cross_entropy(logits, torch.zeros(2, 3, 4, 4, dtype=torch.long))  # one-hot target
    with pytest.raises(TypeError, match="integer class indices"):
        pixel_cross_entropy(logits, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        pixel_cross_entropy(logits, torch.full((2, 4, 4), 3))


# ------------------------------------------------------------------------------------------------
# The chapter-3 encoder-decoder (only its upsampling varies)
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("up", UPSAMPLINGS)
def test_encoder_decoder_outputs_input_size_for_every_upsampling(up):
    model = EncoderDecoder(4, 3, up=up, width=4, levels=2)
    out = model(torch.rand(2, 3, 16, 24))
    assert out.shape == (2, 4, 16, 24)
    out.mean().backward()
    # only the transposed convolution adds parameters to the upsampling
    up_params = sum(p.numel() for p in model.ups.parameters())
    assert (up_params > 0) == (up == "transpose")


def test_encoder_decoder_max_unpool_uses_the_indices_of_the_mirrored_pooling():
    model = EncoderDecoder(2, 1, up="max_unpool", width=2, levels=2).eval()
    seen = []
    for u in model.ups:
        u.register_forward_hook(lambda m, i, o: seen.append((tuple(i[0].shape), tuple(o.shape))))
    model(torch.rand(1, 1, 16, 16))
    assert seen == [((1, 4, 4, 4), (1, 4, 8, 8)), ((1, 2, 8, 8), (1, 2, 16, 16))]


def test_encoder_decoder_bad_arguments_and_input():
    with pytest.raises(ValueError, match="up must be one of"):
        EncoderDecoder(up="bicubic")
    with pytest.raises(ValueError, match="levels must be an integer >= 1"):
        EncoderDecoder(levels=0)
    with pytest.raises(ValueError, match="norm must be None or 'batch'"):
        EncoderDecoder(norm="group")
    model = EncoderDecoder(4, 3, width=2, levels=3)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*levels = 8"):
        model(torch.rand(1, 3, 20, 16))
    with pytest.raises(ValueError, match=r"\[N, 3, H, W\]"):
        model(torch.rand(1, 1, 16, 16))
