"""Saving what a run made, so that a crash or a full disk never leaves a half-written file.

Every file segedu writes (checkpoints, ``metrics.json``, predicted masks, benchmark results) goes
through :func:`atomic_write`: the bytes go to a temporary file beside the target, which is then
renamed onto it. A rename within one folder is atomic, so a reader (or the next run, resuming)
sees either the old file or the new one, never a torn mix of both.

Checkpoints are plain dicts ``{"state_dict": ..., **extra}`` of tensors and plain data, loaded
with ``torch.load(weights_only=True)``: loading a checkpoint can never run code from it.

A leaf module: it imports nothing else from segedu.

Introduced in chapter 1 (``fit(checkpoint=...)``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

__all__ = ["atomic_write", "save_checkpoint", "load_checkpoint"]


def atomic_write(path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it onto ``path``.

    The temporary file is ``path`` + ``.tmp`` (``best.pt`` -> ``best.pt.tmp``): a writer that
    picks its format from the file's extension (Pillow) must be told the format. If ``write``
    fails, the temporary file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save_checkpoint(path, model: nn.Module, /, **extra) -> None:
    """Save ``state_dict`` (plus plain-data extras) atomically: write to a temp file, then rename."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda tmp: torch.save({"state_dict": model.state_dict(), **extra}, tmp))


def load_checkpoint(path, model: nn.Module | None = None, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code); fill ``model`` if given."""
    ckpt = torch.load(os.fspath(path), map_location=map_location, weights_only=True)
    if model is not None:
        model.load_state_dict(ckpt["state_dict"])
    return ckpt
