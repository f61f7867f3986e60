"""The Explorer: a demo that works everywhere, live in Jupyter/Colab and kernel-free in the book.

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

Pre-rendering every combination costs one figure per frame, so an explorer allows at most
:data:`MAX_FRAMES` of them: that keeps notebooks and the book's pages small.

Introduced in chapter 1; the chapters' demos are built on it in the modules next to this one.
"""

from __future__ import annotations

import base64
import html
import itertools
import json
import uuid
from typing import Callable, Sequence

from ..viz import figure_to_png

__all__ = ["Explorer", "MAX_FRAMES"]

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
