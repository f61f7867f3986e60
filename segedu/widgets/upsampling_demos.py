"""Demos of chapters 3 and 4: how a network gets its resolution back.

* :func:`upsampling_explorer` (chapter 3): max-pool an image, upsample it back with nearest
  neighbour, bed of nails or max unpooling, and see what each one loses.
* :func:`transposed_conv_explorer` (chapter 4): kernel size, stride and padding of a transposed
  convolution, seen as the matrix X^T and as the overlap counts that cause checkerboard patterns.

Each returns an :class:`~segedu.widgets.Explorer`; matplotlib is imported when a frame is drawn.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import BedOfNailsUpsample, MaxUnpool, NearestUpsample
from ..transposed import conv_matrix, overlap_count, transposed_output_size
from .explorer import Explorer

__all__ = ["upsampling_explorer", "transposed_conv_explorer"]


def upsampling_explorer(images: dict) -> Explorer:
    """Demo: max-pool an image, upsample it back with each method, and see what is lost.

    ``images``: ``{name: tensor [1, 1, H, W]}`` with values in [0, 1] and H, W divisible by 4.
    Controls: the method (nearest neighbour, bed of nails, max unpooling with the pooling's
    indices), the pooling size (2 or 4) and the image. Introduced in chapter 3.
    """
    import matplotlib.pyplot as plt

    if not images:
        raise ValueError("upsampling_explorer needs at least one {name: image tensor [1, 1, H, W]}")
    for name, x in images.items():
        if not torch.is_tensor(x) or x.dim() != 4 or x.shape[:2] != (1, 1) or x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"image {name!r} must be a tensor [1, 1, H, W] with H and W divisible by 4, "
                             f"got {getattr(x, 'shape', type(x))}")

    def render(method, pool_size, image):
        x = images[image]
        pooled, idx = nn.MaxPool2d(pool_size, return_indices=True)(x)
        layer = {"nearest": NearestUpsample, "bed of nails": BedOfNailsUpsample, "max unpool": MaxUnpool}[method](pool_size)
        out = layer(pooled, idx) if method == "max unpool" else layer(pooled)
        fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
        for ax, img, title in zip(axes, (x, pooled, out), ("original", f"{pool_size}x{pool_size} max-pooled", method)):
            ax.imshow(img[0, 0], cmap="gray", vmin=0, vmax=1), ax.set_title(title, fontsize=9)
        diff = (out - x).abs()[0, 0]
        axes[3].imshow(diff, cmap="Reds", vmin=0, vmax=1)
        axes[3].set_title(f"|upsampled - original|\nMSE {float((diff ** 2).mean()):.4f}", fontsize=9)
        for ax in axes:
            ax.set_xticks([]), ax.set_yticks([])
        fig.tight_layout()
        return fig

    return Explorer(render, {"method": ["nearest", "bed of nails", "max unpool"], "pool_size": [2, 4],
                            "image": list(images)}, title="Pool, then upsample")


def transposed_conv_explorer(n: int = 6, kernel_sizes=(2, 3, 4, 5), strides=(1, 2, 3), paddings=(0, 1)) -> Explorer:
    """Demo: kernel size, stride and padding of a transposed convolution of an ``n``-long input ->
    the matrix X^T (one column per stamped kernel copy) and the 2D overlap counts of an n x n input.

    Introduced in chapter 4.
    """
    import matplotlib.pyplot as plt

    def render(kernel_size, stride, padding):
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8.5, 3.6), gridspec_kw={"width_ratios": [1.2, 1]})
        try:
            out_len = transposed_output_size(n, kernel_size, stride, padding, 0)
            Xt = conv_matrix(torch.ones(kernel_size), out_len, stride, padding).T
        except ValueError as err:  # e.g. the padding crops away more than the layer produces
            ax1.text(0.5, 0.5, str(err)[:60] + "...", ha="center", va="center", wrap=True, fontsize=8)
            ax1.axis("off")
            Xt = None
        if Xt is not None and Xt.shape[1] == n:
            ax1.imshow(Xt, cmap="Greys", vmin=0, vmax=1.5)
            ax1.set_title(f"X^T: {Xt.shape[1]} inputs -> {Xt.shape[0]} outputs\n(column = one kernel copy)", fontsize=9)
            ax1.set_xlabel("input position"), ax1.set_ylabel("output position")
        elif Xt is not None:
            ax1.text(0.5, 0.5, "padding removes everything", ha="center", va="center"), ax1.axis("off")
        try:
            counts = overlap_count(n, kernel_size, stride, padding)
            ax2.imshow(counts, cmap="viridis", vmin=0)
            ax2.set_title(f"overlap counts, {n}x{n} -> {counts.shape[0]}x{counts.shape[1]}\n"
                          f"values {sorted(set(counts.int().flatten().tolist()))}", fontsize=9)
        except ValueError:
            ax2.text(0.5, 0.5, "padding removes everything", ha="center", va="center")
        ax2.set_xticks([]), ax2.set_yticks([])
        fig.suptitle(f"kernel {kernel_size}, stride {stride}, padding {padding}", fontsize=10)
        fig.tight_layout()
        return fig

    return Explorer(render, {"kernel_size": list(kernel_sizes), "stride": list(strides), "padding": list(paddings)},
                    title="Transposed convolution: the matrix X^T and the overlap counts",
                    defaults={"kernel_size": 3, "stride": 2})
