"""The brute-force sliding window, and how convolutionalising it removes the waste.

The oldest way to segment with a classifier: to label pixel ``(y, x)``, cut the ``P x P`` patch
centred on it, classify the patch, and give its class to the centre pixel. Repeat for every
pixel. Neighbouring patches overlap almost completely, so the same convolutions are computed
again and again — this is the redundancy the chapter measures.

The cure (Long et al., FCN, 2015): a network made only of convolutions accepts an image of
*any* size. Its fully connected layers are convolutions whose kernel covers the whole feature
map they used to flatten, so ``to_fcn()`` rewrites them as such and the network slides itself
over the image, sharing every intermediate result between neighbouring windows. The output is
the same as the sliding window's, up to floating-point rounding.

The classifier deliberately has no pooling: with stride-1 layers only, the dense network gives
one output per input pixel directly (pooling would need the FCN paper's shift-and-stitch or
dilated "à trous" filters — see the exercises).

Introduced in chapter 1.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from .utils import check_input_dtype

__all__ = ["SlidingWindowClassifier", "DenseSlidingWindow", "CenterPixelPatches"]


def _check_images(images: torch.Tensor, in_channels: int) -> None:
    if not torch.is_tensor(images):
        raise TypeError(f"images must be a torch.Tensor [N, C, H, W], got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images must have shape [N, C, H, W] (add a batch dimension with x[None]), "
                         f"got {tuple(images.shape)}")
    if images.shape[1] != in_channels:
        raise ValueError(f"images have {images.shape[1]} channels but the model expects {in_channels}")
    if not images.is_floating_point():
        raise TypeError(f"images must be float (e.g. in [0, 1]), got {images.dtype}")


class SlidingWindowClassifier(nn.Module):
    """A small CNN that classifies the centre pixel of a ``patch_size x patch_size`` patch.

    Layers: ``num_convs`` unpadded 3x3 convolutions (each trims one pixel per border), a 1x1
    convolution that squeezes the channels to ``bottleneck`` (so the fully connected layer that
    follows stays small), then two fully connected layers, the last one giving one score per
    class.

    Args:
        in_channels: image channels (3 for Shapes).
        num_classes: number of classes.
        patch_size: side ``P`` of the square patch; must be odd so the centre pixel exists.
        width: channels of the 3x3 convolutions.
        num_convs: number of 3x3 convolutions.
        bottleneck: channels after the 1x1 convolution.
        hidden: units of the first fully connected layer.
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 4, patch_size: int = 25, width: int = 32,
                 num_convs: int = 6, bottleneck: int = 4, hidden: int = 32):
        super().__init__()
        if not isinstance(patch_size, int) or patch_size < 3 or patch_size % 2 == 0:
            raise ValueError(f"patch_size must be an odd integer >= 3 (the centre pixel must exist), got {patch_size!r}")
        if patch_size - 2 * num_convs < 1:
            raise ValueError(f"patch_size={patch_size} is too small for {num_convs} unpadded 3x3 convolutions; "
                             f"use patch_size >= {2 * num_convs + 1}")
        self.in_channels, self.num_classes, self.patch_size = in_channels, num_classes, patch_size
        self.config = dict(in_channels=in_channels, num_classes=num_classes, patch_size=patch_size, width=width,
                           num_convs=num_convs, bottleneck=bottleneck, hidden=hidden)
        layers, c = [], in_channels
        for _ in range(num_convs):
            layers += [nn.Conv2d(c, width, 3), nn.ReLU(inplace=True)]
            c = width
        layers += [nn.Conv2d(c, bottleneck, 1), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.feature_size = patch_size - 2 * num_convs  # side of the map the classifier flattens
        self.fc1 = nn.Linear(bottleneck * self.feature_size**2, hidden)
        self.fc2 = nn.Linear(hidden, num_classes)
        self.register_forward_pre_hook(check_input_dtype)  # float input of the weights' dtype

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        """Patches ``[N, C, P, P]`` -> class scores ``[N, K]`` (one per patch centre)."""
        _check_images(patches, self.in_channels)
        if patches.shape[-2:] != (self.patch_size, self.patch_size):
            raise ValueError(f"the classifier takes {self.patch_size}x{self.patch_size} patches, got "
                             f"{tuple(patches.shape[-2:])}; to segment a whole image use .segment(images) "
                             "or the dense network .to_fcn()")
        h = self.features(patches).flatten(1)  # [N, bottleneck * m * m]
        return self.fc2(F.relu(self.fc1(h)))

    # -- brute force ---------------------------------------------------------------------------
    @torch.no_grad()
    def segment(self, images: torch.Tensor, stride: int = 1, batch_size: int = 2048, progress=None) -> torch.Tensor:
        """Segment whole images the brute-force way: one patch per (strided) pixel.

        The image is mirror-padded by ``P // 2`` so border pixels get a full patch. With
        ``stride=s`` only every ``s``-th pixel in each direction is classified and its label
        fills the ``s x s`` block it starts (fewer patches, blockier result).

        Returns scores ``[N, K, H, W]``. ``progress``: show a progress bar (default: for
        runs of more than 20 000 patches).
        """
        _check_images(images, self.in_channels)
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        n, _, H, W = images.shape
        r = self.patch_size // 2
        if min(H, W) <= r:
            raise ValueError(f"images must be larger than half a patch ({r} pixels) to be mirror-padded, got {H}x{W}")
        padded = F.pad(images, (r, r, r, r), mode="reflect")
        ys, xs = range(0, H, stride), range(0, W, stride)
        total = n * len(ys) * len(xs)
        if progress is None:
            progress = total > 20_000
        rows = [(i, y) for i in range(n) for y in ys]
        if progress:
            from tqdm.auto import tqdm

            rows = tqdm(rows, desc=f"sliding window ({total} patches)", leave=False, mininterval=0.5)
        scores = torch.empty(n, self.num_classes, len(ys), len(xs))
        pending, where = [], []

        def flush():
            out = self(torch.cat(pending))
            k = 0
            for i, y, count in where:
                scores[i, :, y // stride] = out[k : k + count].T
                k += count
            pending.clear(), where.clear()

        for i, y in rows:
            # One row of centres: patches padded[i, :, y : y + P, x : x + P] for x = 0, s, 2s, ...
            strip = padded[i, :, y : y + self.patch_size]  # [C, P, W + 2r]
            patches = strip.unfold(2, self.patch_size, stride)[:, :, : len(xs)]  # [C, P, Wc, P]
            pending.append(patches.permute(2, 0, 1, 3).contiguous())  # [Wc, C, P, P]
            where.append((i, y, len(xs)))
            if sum(len(p) for p in pending) >= batch_size:
                flush()
        if pending:
            flush()
        if stride > 1:  # each classified centre labels the block it starts
            scores = scores.repeat_interleave(stride, 2).repeat_interleave(stride, 3)[:, :, :H, :W]
        return scores

    def patches_per_pixel(self, stride: int = 1) -> tuple[int, int]:
        """How many stride-``s`` patches contain an interior pixel, as ``(fewest, most)``.

        Along one axis a pixel is covered by ``floor(P / s)`` or ``ceil(P / s)`` windows, depending
        on where it falls relative to the stride grid; for ``s = 1`` every interior pixel is in
        exactly ``P ** 2`` patches.
        """
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"stride must be a positive integer, got {stride!r}")
        lo, hi = self.patch_size // stride, -(-self.patch_size // stride)
        return lo * lo, hi * hi

    # -- convolutionalised -----------------------------------------------------------------------
    def to_fcn(self) -> "DenseSlidingWindow":
        """The same network with its fully connected layers rewritten as convolutions.

        ``fc1`` looked at the whole ``bottleneck x m x m`` feature map of a patch; as a
        convolution with an ``m x m`` kernel it looks at every ``m x m`` window of a larger
        map. ``fc2`` becomes a 1x1 convolution. Weights are copied, not retrained.
        """
        m, b = self.feature_size, self.features[-2].out_channels
        conv1 = nn.Conv2d(b, self.fc1.out_features, m)
        conv1.weight.data.copy_(self.fc1.weight.data.view(self.fc1.out_features, b, m, m))
        conv1.bias.data.copy_(self.fc1.bias.data)
        conv2 = nn.Conv2d(self.fc2.in_features, self.fc2.out_features, 1)
        conv2.weight.data.copy_(self.fc2.weight.data[:, :, None, None])
        conv2.bias.data.copy_(self.fc2.bias.data)
        import copy

        net = nn.Sequential(copy.deepcopy(self.features), conv1, nn.ReLU(), conv2)
        return DenseSlidingWindow(net, self.patch_size, self.in_channels).to(self.fc1.weight.device)


class DenseSlidingWindow(nn.Module):
    """Fully convolutional form of a :class:`SlidingWindowClassifier`.

    Mirror-pads the image by ``P // 2`` (as ``segment`` does) and applies the convolutional
    network once; output ``[N, K, H, W]``, one score vector per pixel.
    """

    def __init__(self, net: nn.Sequential, patch_size: int, in_channels: int):
        super().__init__()
        self.net, self.patch_size, self.in_channels = net, patch_size, in_channels
        self.register_forward_pre_hook(check_input_dtype)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.in_channels)
        r = self.patch_size // 2
        if min(images.shape[-2:]) <= r:
            raise ValueError(f"images must be larger than {r} pixels to be mirror-padded, got {tuple(images.shape[-2:])}")
        return self.net(F.pad(images, (r, r, r, r), mode="reflect"))


class CenterPixelPatches(Dataset):
    """``(patch, label)`` pairs cut from a segmentation dataset: the label of the centre pixel.

    Patches are cut from the mirror-padded images around ``n`` random centres. With
    ``balanced=True`` the centres are drawn so that every class is equally frequent — without it
    the background, which covers most pixels, would dominate training.
    """

    fixed_items = True  # the patches are cut once, here (segedu.loading may hold them on the device)

    def __init__(self, dataset, patch_size: int = 25, n: int = 10_000, seed: int = 0, balanced: bool = True):
        if patch_size % 2 == 0:
            raise ValueError(f"patch_size must be odd, got {patch_size}")
        self.patch_size, r = patch_size, patch_size // 2
        images, masks = zip(*(dataset[i] for i in range(len(dataset))))
        self.images = F.pad(torch.stack(images), (r, r, r, r), mode="reflect")
        masks = torch.stack(masks)
        g = torch.Generator().manual_seed(seed)
        flat = masks.flatten()
        if balanced:
            classes = flat.unique()
            per_class = [torch.nonzero(flat == c)[:, 0] for c in classes]
            picks = [idx[torch.randint(len(idx), (n // len(classes) + 1,), generator=g)] for idx in per_class]
            chosen = torch.cat(picks)[torch.randperm(len(classes) * (n // len(classes) + 1), generator=g)][:n]
        else:
            chosen = torch.randint(len(flat), (n,), generator=g)
        h, w = masks.shape[1:]
        self.index = torch.stack([chosen // (h * w), chosen % (h * w) // w, chosen % w], 1)
        self.labels = flat[chosen]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, k: int):
        i, y, x = self.index[k].tolist()
        p = self.patch_size
        return self.images[i, :, y : y + p, x : x + p], self.labels[k]
