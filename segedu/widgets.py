"""Interactive demos that work everywhere: live in Jupyter/Colab, and kernel-free in the book.

The problem: ipywidgets need a running Python kernel (and, in a static web page, JavaScript
from a CDN). A reader of the rendered book has neither. So every demo of the course is an
:class:`Explorer`: a function ``render(**controls) -> matplotlib Figure`` plus the list of
values each control can take.

* In the **static book** the explorer pre-renders every combination of control values once,
  when the notebook is executed, and embeds the PNGs in a small self-contained HTML/JS block;
  moving a slider swaps the picture in the browser. No kernel, no network.
* In a **live notebook** (Jupyter, Colab) it also offers a real ipywidgets interface that calls
  ``render`` on demand. The notebook output carries both forms; front ends that can run widgets
  show the live one, the book shows the static one (``_config.yml`` lowers the widget view's
  priority for the HTML builder).

Introduced in chapter 1; each chapter adds its own demos below.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import uuid
from typing import Callable, Sequence

__all__ = ["Explorer"]

MAX_FRAMES = 240  # keep notebooks (and the book's pages) small


def _label(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


class Explorer:
    """A demo with a few discrete controls.

    Args:
        render: ``render(**values)`` -> a matplotlib ``Figure`` (closed after use).
        controls: ``{name: [value, value, ...]}``; numbers become sliders, anything else a menu.
        title: shown above the demo.
        defaults: optional ``{name: value}`` to start from (default: first value of each list).
        dpi: resolution of the pre-rendered frames.

    ``Explorer`` renders nothing until it is displayed (or :meth:`to_html` is called).
    """

    def __init__(self, render: Callable, controls: dict[str, Sequence], title: str = "", defaults=None, dpi: int = 72):
        if not callable(render):
            raise TypeError("render must be a function render(**controls) -> matplotlib Figure")
        if not controls:
            raise ValueError("an Explorer needs at least one control, e.g. controls={'stride': [1, 2, 3]}")
        self.render, self.title, self.dpi = render, title, dpi
        self.controls = {}
        for name, values in controls.items():
            values = list(values)
            if not values:
                raise ValueError(f"control {name!r} has no values")
            self.controls[name] = values
        n = 1
        for values in self.controls.values():
            n *= len(values)
        if n > MAX_FRAMES:
            raise ValueError(f"{n} combinations of control values would be pre-rendered; at most {MAX_FRAMES} are "
                             "allowed to keep pages small. Offer fewer values per control.")
        self.defaults = {k: v[0] for k, v in self.controls.items()}
        for k, v in (defaults or {}).items():
            if k not in self.controls or v not in self.controls[k]:
                raise ValueError(f"default {k}={v!r} is not one of the control's values")
            self.defaults[k] = v
        self._frames = None

    # -- static form ---------------------------------------------------------------------------
    @staticmethod
    def _key(indices) -> str:
        return "|".join(str(i) for i in indices)

    def frames(self) -> dict[str, str]:
        """``{"i|j|...": data-URI PNG}`` for every combination of control indices."""
        if self._frames is None:
            from .viz import figure_to_png

            names = list(self.controls)
            frames = {}
            for idx in itertools.product(*(range(len(self.controls[n])) for n in names)):
                fig = self.render(**{n: self.controls[n][i] for n, i in zip(names, idx)})
                png = figure_to_png(fig, dpi=self.dpi)
                frames[self._key(idx)] = "data:image/png;base64," + base64.b64encode(png).decode()
            self._frames = frames
        return self._frames

    def to_html(self) -> str:
        """A self-contained block of HTML + JS: controls that swap pre-rendered frames."""
        uid = "segedu-" + uuid.uuid4().hex[:8]
        frames = self.frames()
        names = list(self.controls)
        start = [self.controls[n].index(self.defaults[n]) for n in names]
        rows = []
        for n, i0 in zip(names, start):
            values = self.controls[n]
            numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            labels = json.dumps([_label(v) for v in values])
            if numeric:
                ctl = (f'<input type="range" min="0" max="{len(values) - 1}" step="1" value="{i0}" '
                       f'data-control="{html.escape(n)}" data-labels=\'{html.escape(labels)}\' '
                       f'aria-label="{html.escape(n)}" style="width:14em;vertical-align:middle">'
                       f' <output style="font-family:monospace">{html.escape(_label(values[i0]))}</output>')
            else:
                opts = "".join(f'<option value="{j}"{" selected" if j == i0 else ""}>{html.escape(_label(v))}</option>'
                               for j, v in enumerate(values))
                ctl = f'<select data-control="{html.escape(n)}" aria-label="{html.escape(n)}">{opts}</select>'
            rows.append(f'<label style="display:block;margin:2px 0"><b style="display:inline-block;min-width:7em">'
                        f'{html.escape(n)}</b> {ctl}</label>')
        title = f'<div style="font-weight:bold;margin-bottom:4px">{html.escape(self.title)}</div>' if self.title else ""
        return f"""<div class="segedu-explorer" id="{uid}" style="border:1px solid #ccc;border-radius:6px;padding:8px;margin:8px 0">
{title}{''.join(rows)}
<img class="segedu-frame" alt="{html.escape(self.title or 'interactive demo')}: {html.escape(', '.join(names))}" src="{frames[self._key(start)]}" style="max-width:100%;display:block;margin-top:6px">
<div style="font-size:80%;color:#555">Static demo: every setting was pre-computed when the notebook ran, so it works without a kernel. Run the notebook for the live version.</div>
<script type="application/json" class="segedu-frames">{json.dumps(frames)}</script>
<script>
(function () {{
  var root = document.getElementById("{uid}");
  if (!root) return;
  var frames = JSON.parse(root.querySelector("script.segedu-frames").textContent);
  var ctls = root.querySelectorAll("[data-control]");
  var img = root.querySelector("img.segedu-frame");
  function update() {{
    var key = [];
    ctls.forEach(function (c) {{
      key.push(c.value);
      if (c.type === "range") {{ c.nextElementSibling.textContent = JSON.parse(c.dataset.labels)[c.value]; }}
    }});
    var src = frames[key.join("|")];
    if (src) {{ img.src = src; }}
  }}
  ctls.forEach(function (c) {{ c.addEventListener("input", update); c.addEventListener("change", update); }});
}})();
</script>
</div>"""

    # -- live form -----------------------------------------------------------------------------
    def live(self):
        """An ipywidgets interface that re-renders on demand (needs a running kernel)."""
        import ipywidgets as W
        import matplotlib.pyplot as plt
        from IPython.display import display

        widgets = {}
        for n, values in self.controls.items():
            opts = [(_label(v), v) for v in values]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                widgets[n] = W.SelectionSlider(options=opts, value=self.defaults[n], description=n)
            else:
                widgets[n] = W.Dropdown(options=opts, value=self.defaults[n], description=n)
        out = W.Output()

        def redraw(**values):
            with out:
                out.clear_output(wait=True)
                fig = self.render(**values)
                display(fig)
                plt.close(fig)

        W.interactive_output(redraw, widgets)
        box = W.VBox([W.HTML(f"<b>{html.escape(self.title)}</b>")] + list(widgets.values()) + [out])
        return box

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": f"<Explorer {self.title!r}: {', '.join(self.controls)}>", "text/html": self.to_html()}
        try:
            from IPython import get_ipython

            ip = get_ipython()
            if ip is not None and getattr(ip, "kernel", None) is not None:
                box = self.live()
                # Written out by hand so that it works with ipywidgets 7 (Colab) and 8 alike.
                bundle["application/vnd.jupyter.widget-view+json"] = {
                    "model_id": box.model_id, "version_major": 2, "version_minor": 0}
        except Exception:  # no ipywidgets / no kernel: the static form is complete on its own
            pass
        return bundle


# --- chapter 5 demos ---------------------------------------------------------------------------

def _draw_unet_levels(levels, ax):
    """The U of a valid-padding U-Net drawn from :func:`segedu.sizes.unet_levels` (arithmetic only)."""
    import matplotlib.pyplot as plt

    d = levels.depth
    bad = "#D55E00"

    def box(x, y, text, colour):
        ax.add_patch(plt.Rectangle((x - 0.46, y - 0.2), 0.92, 0.4, facecolor=colour, edgecolor="k", lw=0.7))
        ax.text(x, y, text, ha="center", va="center", fontsize=8.5)

    for rec in levels.down:  # contracting path: input -> conv -> conv, then pool
        lv = rec["level"]
        box(lv, -lv, "→".join(str(v) for v in [rec["input"]] + rec["convs"]), "#56B4E9")
        if rec["pooled"] is not None:
            colour = bad if rec["odd"] else "C3"
            ax.annotate("", xy=(lv + 0.85, -lv - 0.8), xytext=(lv + 0.15, -lv - 0.2),
                        arrowprops=dict(arrowstyle="->", color=colour))
            note = f"pool: {rec['convs'][-1]} is odd!" if rec["odd"] else "pool ÷2"
            ax.text(lv + 0.62, -lv - 0.42, note, fontsize=8, color=colour, ha="left")
    for rec in levels.up:  # expansive path: up-conv, crop-and-concatenate, conv -> conv
        lv = rec["level"]
        x = 2 * d - lv
        ax.annotate("", xy=(x - 0.15, -lv - 0.2), xytext=(x - 0.85, -lv - 0.8), arrowprops=dict(arrowstyle="->", color="C2"))
        box(x, -lv, "→".join(str(v) for v in [rec["upconv"]] + rec["convs"]), "#E69F00")
        crop = rec["crop"]
        ok = crop >= 0 and crop % 2 == 0
        label = ("copy" if crop == 0 else f"crop {rec['skip']}→{rec['upconv']} ({crop // 2} per side)") if ok else \
            f"crop {rec['skip']}→{rec['upconv']}\n{crop} px: uneven!"
        ax.annotate("", xy=(x - 0.5, -lv), xytext=(lv + 0.5, -lv),
                    arrowprops=dict(arrowstyle="->", color="0.45" if ok else bad, ls="--"))
        ax.text((x + lv) / 2, -lv + 0.06, label, ha="center", va="bottom", fontsize=8, color="0.25" if ok else bad)
    ax.set_xlim(-0.6, 2 * d + 0.6)
    ax.set_ylim(-d - 0.45, 0.45)
    ax.axis("off")


def unet_size_calculator(sides=None, depth: int = 4, default: int | None = None) -> Explorer:
    """Demo: pick an input side and follow it down and up the valid-padding U-Net.

    Every level shows its sides (input → conv → conv), every skip the crop it needs, and the
    title says whether the side is valid — with the nearest valid sides when it is not. The
    numbers come from :func:`segedu.sizes.unet_levels`, the same arithmetic the model's input
    check uses. Introduced in chapter 5.

    Args:
        sides: the input sides offered (default: 140, 148, ..., 452 and 500, 508, 572 for depth 4).
        depth: the number of poolings (4 in the paper).
        default: the side shown first (default: 572 if offered, else the first).
    """
    import textwrap

    import matplotlib.pyplot as plt

    from .sizes import nearest_valid_input_size, unet_levels

    if sides is None:
        sides = list(range(140, 460, 8)) + [500, 508, 572] if depth == 4 else \
            [s for s in range(8, 8 * 2**depth + 8, 2**(depth - 1))][:48]
    sides = [int(s) for s in sides]
    if default is None:
        default = 572 if 572 in sides else sides[0]

    def render(side):
        levels = unet_levels(side, depth)
        fig, ax = plt.subplots(figsize=(0.6 + 0.95 * (2 * depth + 1), 0.9 + 0.62 * (depth + 1)))
        _draw_unet_levels(levels, ax)
        if levels.valid:
            msg = (f"input {side}: valid → output {levels.output_size}×{levels.output_size}, "
                   f"k = {levels.k} (side before the first up-conv), {side} = {2**depth}·{levels.k} + {side - 2**depth * levels.k}")
        else:
            lo, hi = nearest_valid_input_size(side, depth)
            msg = "\n".join(textwrap.wrap(f"input {side}: NOT valid — {levels.problem}.", 95)
                            + [f"Nearest valid sides: {lo} (smaller) and {hi} (larger)" if lo else
                               f"The smallest valid side is {hi}"])
        ax.set_title("\n".join(textwrap.wrap(msg, 95)) if "\n" not in msg else msg, fontsize=9, color="k" if levels.valid else "#D55E00")
        fig.tight_layout()
        return fig

    return Explorer(render, {"side": sides}, title=f"U-Net size calculator (valid padding, depth {depth})",
                    defaults={"side": default}, dpi=60)


def weight_map_explorer(instances, w0s=(0, 2, 5, 10, 20), sigmas=(2, 3, 5, 8), image=None) -> Explorer:
    """Demo: the U-Net weight map of an instance map under different ``w0`` and ``sigma``.

    Left: the cells (or ``image``); right: :func:`segedu.losses.unet_weight_map` with the chosen
    parameters, on a fixed colour scale so that settings can be compared. Introduced in chapter 5.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    from .losses import unet_weight_map

    instances = np.asarray(instances)
    unet_weight_map(instances, w0=1.0, sigma=1.0)  # validate the map once, before any frame is drawn
    vmax = max(float(unet_weight_map(instances, w0=max(w0s), sigma=max(sigmas)).max()), 1.0)

    def render(w0, sigma):
        w = unet_weight_map(instances, w0=float(w0), sigma=float(sigma))
        fig, axes = plt.subplots(1, 2, figsize=(5.0, 2.4))
        if image is not None:
            axes[0].imshow(np.asarray(image), cmap="gray")
        else:
            axes[0].imshow(instances, cmap="tab20", interpolation="nearest")
        axes[0].set_title(f"{len(np.unique(instances[instances > 0]))} cells", fontsize=8)
        im = axes[1].imshow(w, cmap="viridis", vmin=0, vmax=vmax)
        fig.colorbar(im, ax=axes[1], fraction=0.046)
        axes[1].set_title(f"w0 = {w0:g}, σ = {sigma:g}: max weight {w.max():.1f}", fontsize=8)
        for ax in axes:
            ax.set_xticks([]), ax.set_yticks([])
        fig.tight_layout()
        return fig

    return Explorer(render, {"w0": list(w0s), "sigma": list(sigmas)}, title="U-Net weight map: w0 and σ",
                    defaults={"w0": 10 if 10 in w0s else w0s[0], "sigma": 5 if 5 in sigmas else sigmas[0]}, dpi=60)


# --- chapter 6 demos ---------------------------------------------------------------------------

def inference_ms(model, image_size: int = 256, batch: int = 4, repeats: int = 5, in_channels: int | None = None) -> float:
    """Median wall-clock milliseconds per image of ``model`` on random ``image_size``² inputs (CPU).

    One warm-up call, then the median of ``repeats`` timed calls on a batch of ``batch`` images.
    Introduced in chapter 6 (the pruning trade-off).
    """
    import statistics
    import time

    import torch

    c = in_channels or getattr(model, "in_channels", 1)
    x = torch.rand(batch, c, image_size, image_size, generator=torch.Generator().manual_seed(0))
    model.eval()
    times = []
    with torch.no_grad():
        model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times) / batch


def pruning_explorer(model, images, masks, sample: int = 0, times_ms=None) -> Explorer:
    """Demo: prune a deeply supervised UNet++ to L1..L4 and see its grid, output, IoU and speed.

    Args:
        model: a trained UNet++ (or UNet-e / UNet+) built with ``deep_supervision=True``.
        images, masks: held-out ``[N, C, H, W]`` images and ``[N, H, W]`` binary masks; the IoU shown
            is the foreground IoU over all of them, the picture shows image ``sample``.
        times_ms: optional ``{level: ms per image}`` measured beforehand (else measured here with
            :func:`inference_ms`).

    Introduced in chapter 6.
    """
    import matplotlib.pyplot as plt
    import torch

    from . import metrics as M
    from .viz import draw_nested_grid

    if not getattr(model, "deep_supervision", False):
        raise ValueError("pruning_explorer needs a model built with deep_supervision=True (one head per level)")
    levels = list(range(1, model.depth + 1))
    subs = {L: model.pruned(L).eval() for L in levels}
    with torch.no_grad():
        outs = {L: subs[L](images) for L in levels}
    ious = {L: M.iou(outs[L], masks, 2)[1].item() for L in levels}
    times_ms = dict(times_ms or {L: inference_ms(subs[L]) for L in levels})
    params = {L: sum(p.numel() for p in subs[L].parameters()) for L in levels}

    def render(level):
        fig, axes = plt.subplots(1, 3, figsize=(8.4, 2.8), gridspec_kw={"width_ratios": [1.5, 1, 1]})
        draw_nested_grid(subs[level], ax=axes[0], title=f"UNet++ L{level}: {params[level]:,} parameters")
        axes[1].imshow(images[sample].permute(1, 2, 0).squeeze(-1).clamp(0, 1).numpy(), cmap="gray")
        axes[1].set_title("image", fontsize=9)
        axes[2].imshow(M.as_labels(outs[level][sample : sample + 1])[0].numpy(), cmap="gray", interpolation="nearest")
        axes[2].set_title(f"IoU {ious[level]:.3f} (test set)\n{times_ms[level]:.1f} ms / 256² image", fontsize=9)
        for ax in axes[1:]:
            ax.set_xticks([]), ax.set_yticks([])
        fig.tight_layout()
        return fig

    return Explorer(render, {"level": levels}, title="Pruning UNet++: level L", defaults={"level": levels[-1]}, dpi=60)


def family_explorer(models: dict) -> Explorer:
    """Demo: switch between members of the UNet++ family (``{name: model}``) and see their grids.

    Introduced in chapter 6.
    """
    import matplotlib.pyplot as plt

    from .viz import draw_nested_grid

    if not models:
        raise ValueError("family_explorer needs at least one {name: model}")

    def render(member):
        fig, ax = plt.subplots(figsize=(4.2, 3.4))
        m = models[member]
        n = sum(p.numel() for p in m.parameters())
        draw_nested_grid(m, ax=ax, title=f"{member} ({n:,} parameters)")
        fig.tight_layout()
        return fig

    return Explorer(render, {"member": list(models)}, title="The UNet++ family", dpi=60)


def upsampling_explorer(images: dict) -> Explorer:
    """Demo: max-pool an image, upsample it back with each method, and see what is lost.

    ``images``: ``{name: tensor [1, 1, H, W]}`` with values in [0, 1] and H, W divisible by 4.
    Controls: the method (nearest neighbour, bed of nails, max unpooling with the pooling's
    indices), the pooling size (2 or 4) and the image. Introduced in chapter 3.
    """
    import matplotlib.pyplot as plt
    import torch
    from torch import nn

    from .layers import BedOfNailsUpsample, MaxUnpool, NearestUpsample

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
    import torch

    from .transposed import conv_matrix, overlap_count, transposed_output_size

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
