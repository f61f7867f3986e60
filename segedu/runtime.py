"""Where and how a run computes: the device, the seeds, the precision and the memory format.

A leaf module (it imports nothing else from segedu), so that training, the distributed helpers,
the experiments and the benchmarks can all share it without importing each other.

* :func:`resolve_device`: ``"auto"`` picks CUDA, then Apple MPS, then the CPU;
* :func:`seed_everything`, :func:`rng_state`, :func:`set_rng_state`: reproducible runs, and
  resumable ones (every generator's state as plain data);
* :func:`resolve_amp`, :func:`resolve_channels_last`: what ``fit``'s ``amp="auto"`` and
  ``channels_last="auto"`` mean on each kind of device. Both defaults were chosen by measurement;
  the measurements live in the generated Performance appendix (``book/performance.md``, from
  ``python -m segedu bench train_step``), not here, so that they cannot drift apart.

Introduced in chapter 1 (with ``fit``).
"""

from __future__ import annotations

import os
import platform
import random
from pathlib import Path

import numpy as np
import torch

__all__ = ["resolve_device", "seed_everything", "rng_state", "set_rng_state", "resolve_amp",
           "resolve_channels_last", "synchronize", "hardware"]


def resolve_device(device="auto") -> torch.device:
    """``"auto"`` -> CUDA, else MPS, else CPU. An explicit device that is missing is an error."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu', 'cuda', got {type(device).__name__}")
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)  # raises a clear RuntimeError for nonsense strings
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but no CUDA GPU is available; use device='auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device='mps' was requested but Apple MPS is not available; use device='auto' or 'cpu'")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state(loader_generator: torch.Generator | None = None) -> dict:
    """The state of every random number generator a run uses, as plain data and tensors (so a
    checkpoint holding it still loads with ``torch.load(weights_only=True)``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "torch": torch.get_rng_state(),
             "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                       "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if loader_generator is not None:
        state["loader"] = loader_generator.get_state()
    return state


def set_rng_state(state: dict, loader_generator: torch.Generator | None = None) -> None:
    """Restore what :func:`rng_state` captured."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    if loader_generator is not None and "loader" in state:
        loader_generator.set_state(state["loader"])


def resolve_amp(amp, device: torch.device):
    """Return the autocast dtype to use, or ``None`` for full float32.

    ``"auto"`` (the default of :func:`segedu.train.fit`) is float32 everywhere. That is a
    measurement, not a guess: at the course's sizes autocast made most models' training steps
    slower on a GPU, and on the CPU bfloat16 is fast only where the processor has bfloat16
    instructions (and was not shown to train as well). The numbers are in the Performance appendix;
    run ``python -m segedu bench train_step`` to see what your machine gains, and ask for it with:

    * ``True``: bfloat16 on CUDA GPUs that support it (Ampere and newer), else float16; bfloat16
      on the CPU;
    * ``"bf16"`` / ``"fp16"``: that dtype (float16 needs a GPU);
    * ``False`` / ``None`` / ``"off"`` / ``"auto"``: float32.
    """
    if amp in (False, None, "off", "fp32", "auto"):
        return None
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type == "cpu":
            raise ValueError("amp='fp16' needs a GPU; on the CPU use amp='bf16'")
        return torch.float16
    if amp is True:
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if device.type == "cpu" else None
    raise ValueError(f"amp must be 'auto', True, False, 'bf16' or 'fp16', got {amp!r}")


def resolve_channels_last(channels_last, device: torch.device) -> bool:
    """Whether :func:`segedu.train.fit` uses the NHWC memory format (``channels_last``).

    ``"auto"``: on CUDA and on the CPU, yes; elsewhere (Apple MPS, unmeasured), no. ``True`` /
    ``False`` force it. It was the faster layout for the course's models on both a GPU and the CI
    machine's CPU, with the same quality over several seeds (Performance appendix, ``bench
    train_step``).

    Like any change of kernels it changes the rounding, and a few hundred steps of training
    amplify that: the same seed then ends at a different, equally good, model. (So does running
    on a CPU with another instruction set, even in float32.)
    """
    if channels_last == "auto":
        return device.type in ("cuda", "cpu")
    if isinstance(channels_last, bool):
        return channels_last
    raise ValueError(f"channels_last must be 'auto', True or False, got {channels_last!r}")


def synchronize(device) -> None:
    """Wait for a GPU's queued work to finish (a no-op elsewhere): a timer must not stop before
    the work it times has run."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def hardware(device) -> dict:
    """What a measurement ran on: platform, processor, core count, Python, PyTorch, threads and the
    device (with its name, CUDA version and memory on a GPU). Stored with every benchmark and
    experiment result, so a number never loses its machine."""
    device = torch.device(device)
    info = {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": _cpu_name(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "device_name": _cpu_name(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(device_name=props.name, cuda=torch.version.cuda, gpu_memory_bytes=props.total_memory,
                    cudnn=torch.backends.cudnn.version())
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
