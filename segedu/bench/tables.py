"""How the benchmarks' numbers look: in ``results.json``, in the terminal and in the appendix.

A benchmark declares its table once, as columns ``(key, header, format)``; the same declaration
prints the rows on the terminal as they are measured (:func:`format_header`, :func:`format_row`)
and renders them as markdown for the Performance appendix (:func:`markdown_table`). The formats:

==========  ============================================================
``"ms"``    seconds, shown as milliseconds below one second (``"12.3 ms"``)
``"bytes"`` a byte count in binary units (``"1.5 MiB"``)
``"x"``     a ratio (``"2.1x"``)
``"count"`` an integer with thousands separators
``"e"``     a small difference in scientific notation (``"3.1e-07"``)
``"s"``     text, left-aligned in a wide column (model names, configurations)
other       any Python format spec (``"d"``, ``".4g"``); ``""`` for yes/no
==========  ============================================================

:func:`plain` turns what a benchmark measured into JSON-friendly values (floats rounded to six
significant digits: more would only record noise).
"""

from __future__ import annotations

import math
import sys

import torch

__all__ = ["print_line", "plain", "format_value", "human_bytes", "format_row", "format_header", "markdown_table"]


def print_line(line: str) -> None:
    """Print a line without breaking a progress bar that is on screen."""
    try:
        from tqdm.auto import tqdm

        tqdm.write(line, file=sys.stdout)
    except ImportError:  # pragma: no cover - tqdm is a dependency
        print(line)
    sys.stdout.flush()


def plain(v):
    """JSON-friendly value: floats rounded to 6 significant digits, tensors to Python numbers."""
    if torch.is_tensor(v):
        v = v.item()
    if isinstance(v, float):
        return float(f"{v:.6g}") if math.isfinite(v) else None
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    return v


def format_value(value, spec: str) -> str:
    """One cell: ``value`` in the column format ``spec`` (see the module docstring); ``-`` for None."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if spec == "bytes":
        return human_bytes(value)
    if spec == "ms":
        return f"{value * 1e3:.3g} ms" if value < 1 else f"{value:.3g} s"
    if spec == "x":
        return f"{value:.3g}x"
    if spec == "count":
        return f"{value:,}"
    if spec == "e":
        return f"{value:.1e}"
    try:
        return format(value, spec)
    except (TypeError, ValueError):
        return str(value)


def human_bytes(n) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return str(n)  # pragma: no cover


def _widths(columns) -> list[int]:
    # text columns (model names, configurations) are wide and left-aligned; numbers right-aligned
    return [40 if spec == "s" else max(12, len(h)) for _, h, spec in columns]


def format_row(columns, row) -> str:
    """One row of the terminal table."""
    cells = [format_value(row.get(key), spec) for key, _, spec in columns]
    return "  ".join(c.ljust(w) if spec == "s" else c.rjust(w)
                     for c, w, (_, _, spec) in zip(cells, _widths(columns), columns))


def format_header(columns) -> str:
    """The header line of the terminal table."""
    return "  ".join(h.ljust(w) if spec == "s" else h.rjust(w)
                     for (_, h, spec), w in zip(columns, _widths(columns)))


def markdown_table(columns, rows) -> str:
    """The rows as a markdown table, for the appendix."""
    def cell(text):  # a "|" inside a cell (e.g. "max |diff|") would end the cell
        return str(text).replace("|", "\\|")

    lines = ["| " + " | ".join(cell(h) for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        lines.append("| " + " | ".join(cell(format_value(r.get(k), spec)) for k, _, spec in columns) + " |")
    return "\n".join(lines)
