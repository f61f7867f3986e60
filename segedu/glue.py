"""Numbers in the prose come from the computation: MyST-NB's ``glue``, without needing MyST-NB.

A chapter that writes "BCE + Dice beats BCE by 0.103" in a Markdown cell has typed a number that
the next run may change. Instead, the code cell that computes it *glues* it under a name::

    glue("loss_dice", 0.1030131)

and the Markdown says ``{glue:text}`loss_dice:+.3f``` . When Jupyter Book renders the chapter, it
pastes the value the notebook computed, so prose and output cannot disagree. (A test,
``tests/test_glued_numbers.py``, fails if a chapter types a measured number instead.)

:func:`glue` writes exactly what ``myst_nb.glue(name, value, display=False)`` writes (a hidden
output with the value's text form under MyST-NB's mime prefix), so a notebook runs on Colab
without MyST-NB installed. :func:`glue_verdict` glues the parts of one paired verdict.
"""

from __future__ import annotations

import re

from .summary import format_interval, seeds_to_resolve

__all__ = ["glue", "glue_verdict", "verdict_words"]

#: MyST-NB's mime-type prefix of a hidden glued output (``myst_nb.ext.glue.GLUE_PREFIX``).
GLUE_PREFIX = "application/papermill.record/"
_KEY = re.compile(r"^[A-Za-z0-9_.\-]+$")


def glue(name: str, value, display: bool = False):
    """Store ``value`` under ``name`` in this cell's output for the book's ``{glue:text}`` role.

    Outside Jupyter (a plain ``python`` run) there is nowhere to store it, and nothing happens.
    Returns ``value``, so ``x = glue("x", compute())`` reads naturally.
    """
    if not _KEY.match(name):
        raise ValueError(f"glue names are letters, digits, '_', '.' and '-' (a ':' would end the name in "
                         f"{{glue:text}}`name:format`); got {name!r}")
    try:
        from IPython import get_ipython
        from IPython.core.formatters import format_display_data
        from IPython.display import display as ipy_display
    except ImportError:  # no IPython: not in a notebook
        return value
    if get_ipython() is None:
        return value
    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=prefix)
    ipy_display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
    return value


def verdict_words(v: dict) -> str:
    """A verdict in words: ``"BCE + Dice higher"``, or ``"unresolved at this budget"``."""
    if v["verdict"] == "unresolved":
        return "unresolved at this budget"
    return f"{v['a'] if v['verdict'] == 'a>b' else v['b']} higher"


def glue_verdict(name: str, v: dict) -> dict:
    """Glue one verdict of :func:`segedu.summary.paired_verdict` under ``name`` and ``name_*``:

    ===================  ==========================================================
    ``name``             ``"+0.103 [+0.042, +0.164], 10/10 seeds"`` (the quotable form)
    ``name_diff``        mean paired difference a - b (float; format it ``:+.3f``)
    ``name_lo``          lower end of its 95% interval
    ``name_hi``          upper end
    ``name_wins``        seeds where a > b (int)
    ``name_n``           paired seeds (int)
    ``name_verdict``     ``"a>b"``, ``"b>a"`` or ``"unresolved"``
    ``name_words``       :func:`verdict_words`
    ``name_seeds_needed`` for an unresolved verdict, the seeds it would take at the measured
                         spread (:func:`segedu.summary.seeds_to_resolve`; ``"more than 10000"``)
    ===================  ==========================================================

    Returns the verdict, for chaining.
    """
    glue(name, format_interval(v))
    for suffix, value in (("diff", v["mean_diff"]), ("lo", v["ci_low"]), ("hi", v["ci_high"]), ("wins", v["wins"]),
                          ("n", v["n"]), ("verdict", v["verdict"]), ("words", verdict_words(v))):
        glue(f"{name}_{suffix}", value)
    needed = seeds_to_resolve(v)
    glue(f"{name}_seeds_needed", str(needed) if needed is not None else "more than 10000")
    return v
