"""Saving what a run made, so that a crash or a full disk never leaves a half-written file.

Every file segedu writes (checkpoints, ``metrics.json``, predicted masks, benchmark results) goes
through :func:`atomic_write`: the bytes go to a temporary file of its own beside the target, which
is flushed to the disk and then renamed onto it. A rename within one folder is atomic, so a reader
(or the next run, resuming) sees either the old file or the new one, never a torn mix of both; a
write that fails (a full disk) leaves the old file as it was.

* :func:`write_json`: strict JSON, written atomically. ``NaN`` and infinite numbers (a metric
  undefined on the data, e.g. the IoU of a class absent from it) are written as ``null``: Python's
  ``json`` would write ``NaN``, which strict parsers (JavaScript, ``jq``, most other languages)
  refuse.
* :class:`RunLock`: one writer per folder. A lock file created atomically (``O_CREAT | O_EXCL``)
  holds the writer's process id and host; a second writer is refused while the first runs; a lock
  left by a process that no longer runs (killed) is stale, and replaced.

Checkpoints are plain dicts ``{"state_dict": ..., **extra}`` of tensors and plain data, loaded
with ``torch.load(weights_only=True)``: loading a checkpoint can never run code. A file that is
not one — damaged, truncated, empty, a pickled model, a tensor — is a ``ValueError`` that says so.

A leaf module: it imports nothing else from segedu.

Introduced in chapter 1 (``fit(checkpoint=...)``).
"""

from __future__ import annotations

import json
import math
import os
import socket
import uuid
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["atomic_write", "write_json", "save_checkpoint", "load_checkpoint", "RunLock", "FolderLockedError"]


def atomic_write(path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it onto ``path``.

    The temporary file is ``path`` + ``.XXXXXXXX.tmp`` (``best.pt`` -> ``best.pt.3f9ac2e1.tmp``), unique to
    this call, so two writers of the same file never share it; a writer that picks its format from
    the file's extension (Pillow) must be told the format. The bytes are flushed to the disk before
    the rename. If ``write`` fails (a full disk: ``OSError`` ``ENOSPC``), the temporary file is
    removed and ``path`` is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")  # created by ``write``: the usual permissions
    try:
        write(tmp)
        try:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        except OSError:  # a file system without fsync: the rename is still atomic
            pass
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _plain(value):
    """``value`` as strict-JSON data: NaN and infinities -> ``None``; numpy / torch numbers -> Python's."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        value = value.tolist()  # a Python number, or nested lists of them
        if isinstance(value, list):
            return _plain(value)
    if value is None or isinstance(value, (bool, int, str)):
        return value
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    return value if math.isfinite(value) else None


def write_json(path, data, indent: int = 1) -> None:
    """``data`` as strict JSON, written atomically; ``NaN`` and infinite numbers are written as ``null``."""
    text = json.dumps(_plain(data), indent=indent, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text))


def save_checkpoint(path, model: nn.Module, /, **extra) -> None:
    """Save ``state_dict`` (plus plain-data extras) atomically: write to a temp file, then rename."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write(path, lambda tmp: torch.save({"state_dict": model.state_dict(), **extra}, tmp))


def _kind(obj) -> str:
    name = type(obj).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _read(path: str, map_location):
    """``torch.load(path, weights_only=True)``, every failure a ``ValueError`` (or ``OSError``) that says what is wrong."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"checkpoint {path} is a folder, not a file")
    size = os.path.getsize(path)  # FileNotFoundError: clear as it is
    if size == 0:
        raise ValueError(f"checkpoint {path} is damaged: the file is empty (0 bytes; a copy or a save that did "
                         "not finish?): use another checkpoint, or train again")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as e:  # a truncated file: RuntimeError, EOFError or OSError [Errno 22]
        text = str(e)
        if "Unsupported global" in text:
            culprit = text.split("Unsupported global:", 1)[1].split(" was not", 1)[0].strip()
            raise ValueError(f"checkpoint {path} holds pickled Python objects ({culprit}; e.g. a whole model saved "
                             "with torch.save(model)), which segedu does not load because loading them could run code: "
                             "save model.state_dict() instead") from None
        other = _other_format(path)
        if other:
            raise ValueError(f"{path} is not a checkpoint: it is {other}; give a .pt file written by training (best.pt "
                             "or last.pt)") from None
        zipped = zipfile.is_zipfile(path)
        reason = ("it was cut short (truncated: a copy or a save that did not finish?)" if not zipped
                  and _starts_like_zip(path) else "it is not a PyTorch file" if not zipped else
                  f"{type(e).__name__}: {text.splitlines()[0][:120] if text else ''}")
        raise ValueError(f"checkpoint {path} is damaged or not a checkpoint: {reason} ({size} bytes); use another "
                         "checkpoint, or train again") from None


_FORMATS = ((b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"II*\x00", "a TIFF image"),
            (b"MM\x00*", "a TIFF image"), (b"BM", "a BMP image"), (b"{", "a JSON file"), (b"[", "a JSON file"))


def _other_format(path: str) -> str | None:
    """What a file that is not a checkpoint is, guessed from its first bytes (an image, JSON), if anything."""
    with open(path, "rb") as f:
        head = f.read(8).lstrip()
    return next((what for magic, what in _FORMATS if head.startswith(magic)), None)


def _starts_like_zip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PK\x03\x04"


def load_checkpoint(path, model: nn.Module | None = None, map_location="cpu") -> dict:
    """Load a checkpoint with ``weights_only=True`` (no arbitrary code); fill ``model`` if given.

    A bare ``state_dict`` (what ``torch.save(model.state_dict(), path)`` writes) is returned as
    ``{"state_dict": it}``. A file that is not a checkpoint is a ``ValueError`` naming the file and
    what is wrong with it (empty, truncated, damaged, pickled objects, a tensor, a dict without
    ``state_dict``).
    """
    path = os.fspath(path)
    ckpt = _read(path, map_location)
    if isinstance(ckpt, dict) and "state_dict" not in ckpt and ckpt and all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in ckpt.items()):
        ckpt = {"state_dict": ckpt}  # a bare state_dict
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path} holds {_kind(ckpt)}, not a segedu checkpoint (a dict with a state_dict)")
    if "state_dict" not in ckpt:
        keys = ", ".join(map(str, list(ckpt)[:6])) + (", ..." if len(ckpt) > 6 else "")
        raise ValueError(f"{path} is not a segedu checkpoint: a dict with no state_dict (its keys: {keys or 'none'})")
    if model is not None:
        model.load_state_dict(ckpt["state_dict"])
    return ckpt


class FolderLockedError(OSError):
    """The folder is locked by another run (:class:`RunLock`)."""


class RunLock:
    """One writer per folder: ``with RunLock(folder): ...`` holds ``folder/run.lock`` while it runs.

    The lock file is created atomically (``O_CREAT | O_EXCL``: of two processes creating it at once,
    exactly one succeeds) and holds ``PID HOST``. Another process asking for the lock gets a
    :class:`FolderLockedError` naming the holder, while the holder runs. A lock whose process no
    longer runs on this host (it was killed, or the machine restarted) is stale: it is replaced,
    and :attr:`stale_pid` tells whose it was. A lock from another host cannot be checked; the error
    says to delete it if no run is using the folder. :meth:`release` removes the file, if it is
    still this lock's.
    """

    NAME = "run.lock"

    def __init__(self, folder, name: str | None = None):
        self.path = Path(folder) / (name or self.NAME)
        self.stale_pid: int | None = None
        self._content = f"{os.getpid()} {socket.gethostname()}\n"
        self._held = False
        self._created: list[Path] = []

    def _create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, self._content.encode())
        finally:
            os.close(fd)
        return True

    def _holder(self) -> tuple[int | None, str | None]:
        try:
            words = self.path.read_text().split()
        except FileNotFoundError:
            return None, None
        try:
            return int(words[0]), (words[1] if len(words) > 1 else None)
        except (IndexError, ValueError):
            return None, None

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # it runs, as another user
            return True
        except OSError:
            return True
        return True

    def acquire(self) -> "RunLock":
        """Take the lock, or raise :class:`FolderLockedError` saying who holds it and what to do.

        The folder (and its parents) is created if it does not exist; :meth:`release` removes the
        folders it created if they are still empty then (a command that failed before writing).
        """
        folder = self.path.parent
        while not folder.exists() and folder != folder.parent:
            self._created.append(folder)
            folder = folder.parent
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._acquire()
        except BaseException:
            self._remove_created()
            raise

    def _acquire(self) -> "RunLock":
        for _ in range(2):
            if self._create():
                self._held = True
                return self
            pid, host = self._holder()
            here = host is None or host == socket.gethostname()
            if pid is not None and here and not self._alive(pid):
                self.stale_pid = pid  # its process is gone: a stale lock
                self.path.unlink(missing_ok=True)
                continue
            break
        pid, host = self._holder()
        if pid is None:
            who = "another run (its lock file is being written, or unreadable)"
        else:
            who = f"another run (process {pid}" + (f" on {host}" if host and host != socket.gethostname() else "") + ")"
        raise FolderLockedError(f"{self.path.parent} is in use by {who}: wait for it to finish, or use another "
                                f"folder; if no run is using it, delete {self.path}")

    def release(self) -> None:
        """Remove the lock file, if this lock holds it, and the folders :meth:`acquire` created, if empty."""
        if self._held:
            self._held = False
            try:
                if self.path.read_text() == self._content:
                    self.path.unlink()
            except FileNotFoundError:
                pass
        self._remove_created()

    def _remove_created(self) -> None:
        for folder in self._created:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        self._created = []

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
