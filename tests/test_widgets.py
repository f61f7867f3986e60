"""The Explorer demos: static (kernel-free) HTML that swaps pre-rendered frames."""

import json
import re

import pytest


def _render(a, b):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1, 1))
    ax.text(0.5, 0.5, f"{a}{b}")
    return fig


def test_explorer_precomputes_every_combination():
    from segedu.widgets import Explorer

    e = Explorer(_render, {"a": [1, 2, 3], "b": ["x", "y"]}, title="demo")
    frames = e.frames()
    assert set(frames) == {f"{i}|{j}" for i in range(3) for j in range(2)}
    assert len(set(frames.values())) == 6  # every setting draws something different
    html = e.to_html()
    assert html.count('data-control="a"') == 1 and 'type="range"' in html and "<select" in html
    embedded = json.loads(re.search(r'class="segedu-frames">(.*?)</script>', html, re.S).group(1))
    assert embedded == frames
    assert "http" not in html.replace("data:image/png", "")  # no CDN, no network
    bundle = e._repr_mimebundle_()
    assert "text/html" in bundle and "text/plain" in bundle


def test_explorer_bad_input():
    from segedu.widgets import Explorer

    with pytest.raises(TypeError):
        Explorer(42, {"a": [1]})
    with pytest.raises(ValueError, match="control"):
        Explorer(_render, {})
    with pytest.raises(ValueError, match="no values"):
        Explorer(_render, {"a": []})
    with pytest.raises(ValueError, match="at most"):
        Explorer(_render, {"a": list(range(100)), "b": list(range(100))})
    with pytest.raises(ValueError, match="default"):
        Explorer(_render, {"a": [1, 2]}, defaults={"a": 5})


def test_explorer_live_form_builds_real_widgets():
    import ipywidgets as W

    from segedu.widgets import Explorer

    box = Explorer(_render, {"a": [1, 2], "b": ["x", "y"]}, title="demo").live()
    assert isinstance(box, W.VBox)
    kinds = {type(c).__name__ for c in box.children}
    assert {"SelectionSlider", "Dropdown", "Output"} <= kinds


def test_upsampling_and_transposed_conv_explorers_draw_every_setting():
    import matplotlib

    matplotlib.use("Agg")
    import torch

    from segedu.widgets import transposed_conv_explorer, upsampling_explorer

    e = upsampling_explorer({"ramp": torch.linspace(0, 1, 64).view(1, 1, 8, 8)})
    frames = e.frames()
    assert len(frames) == 3 * 2 * 1 and len(set(frames.values())) == 6  # every method and pool size differs
    t = transposed_conv_explorer(n=4, kernel_sizes=(2, 3), strides=(1, 2), paddings=(0,))
    assert len(set(t.frames().values())) == 4
    with pytest.raises(ValueError, match="divisible by 4"):
        upsampling_explorer({"odd": torch.rand(1, 1, 6, 6)})
