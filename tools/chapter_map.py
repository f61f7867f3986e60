"""Draw the course's chapter map (book/_static/chapter_map.png) from the library's real objects.

Each box is a chapter; inside it, the segedu objects the chapter builds, with their parameter
counts computed from freshly constructed models (the chapter's default configuration or the
paper's). Run `python tools/chapter_map.py` after changing a model; tests/test_repository.py
checks that the committed picture is up to date with the numbers.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from segedu import models  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "book" / "_static" / "chapter_map.png"
NUMBERS = ROOT / "book" / "_static" / "chapter_map.json"


def n_params(m) -> int:
    return sum(p.numel() for p in m.parameters())


def chapters():
    fcn = getattr(models, "FCN", None)
    return [
        ("1", "Sliding\nwindow", ["SlidingWindowClassifier", f"{n_params(models.SlidingWindowClassifier()):,} params",
                                 "segment()  vs  to_fcn()"]),
        ("2", "Fully convolutional\nnetworks",
         [f"FCN-8s: {n_params(fcn(4)):,} params" if fcn else "FCN-32s/16s/8s", "pixel-wise", "cross entropy"]),
        ("3", "Upsampling", ["nearest", "bed of nails", "max unpooling"]),
        ("4", "Transposed\nconvolution", ["y = X a,  X^T y", "output sizes", "checkerboards"]),
        ("5", "U-Net", ["UNet (paper)", f"{n_params(models.UNet()):,} params", "572 -> 388", "x = 16k + 124",
                        "overlap-tile", "weight map"]),
        ("6", "UNet++", ["UNet++ (paper)", f"{n_params(models.UNetPlusPlus()):,} params",
                         "deep supervision", "BCE + Dice", "pruning L1..L4"]),
        ("7", "Side by\nside", ["every model", "one budget", "Shapes, Cells,", "ISBI 2012"]),
    ]


def main():
    items = chapters()
    fig, ax = plt.subplots(figsize=(12, 2.9))
    for k, (num, title, lines) in enumerate(items):
        x = k * 1.0
        ax.add_patch(plt.Rectangle((x + 0.04, 0.05), 0.9, 0.9, facecolor="#56B4E9" if k < 4 else "#E69F00",
                                   alpha=0.25, edgecolor="k", lw=0.8))
        ax.text(x + 0.49, 0.9, f"{num}. {title}", ha="center", va="top", fontsize=9, weight="bold")
        ax.text(x + 0.49, 0.42, "\n".join(lines), ha="center", va="center", fontsize=7.5)
        if k < len(items) - 1:
            ax.annotate("", xy=(x + 1.04, 0.5), xytext=(x + 0.94, 0.5), arrowprops=dict(arrowstyle="->"))
    ax.text(1.99, -0.06, "patch classifiers → fully convolutional", ha="center", fontsize=7, color="0.3")
    ax.text(5.49, -0.06, "encoder–decoders with skip connections", ha="center", fontsize=7, color="0.3")
    ax.set_xlim(0, len(items)), ax.set_ylim(-0.12, 1), ax.axis("off")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    NUMBERS.write_text(json.dumps({num: lines for num, _, lines in items}, indent=1) + "\n")
    print("wrote", OUT.relative_to(ROOT))


if __name__ == "__main__":
    main()
