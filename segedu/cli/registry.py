"""The models ``--model`` names, and rebuilding a model from a checkpoint.

A checkpoint written by ``train`` stores, besides the weights, *which* model they belong to: the
class name and the constructor's keyword arguments (:func:`model_spec`). :func:`load_model`
rebuilds that model (:func:`build_model`) and loads the weights into it, so ``predict`` needs
nothing but the file. Only the course's own classes can be built: nothing is imported by a name
read from a file, and the file itself is read with ``torch.load(weights_only=True)``
(:func:`segedu.checkpoint.load_checkpoint`), which never runs code.

Every way a checkpoint can fail to fit (missing, unreadable, not segedu's, weights of another
model) is reported as one :class:`~segedu.cli.errors.CLIError` line that says what to do.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..checkpoint import load_checkpoint
from ..checks import is_int
from ..distributed import strip_module_prefix
from ..memory import check_memory, meta_parameter_count
from ..models import FCN, SlidingWindowClassifier, UNet, UNetE, UNetPlus, UNetPlusPlus
from .errors import CLIError

__all__ = ["MODELS", "check_model_name", "model_spec", "build_model", "read_checkpoint", "load_weights", "load_model"]

#: ``--model`` names: the class each builds and what it is.
MODELS = {
    "sliding": ("SlidingWindowClassifier", "chapter 1: a patch classifier, run densely as a fully convolutional net"),
    "fcn32s": ("FCN", "chapter 2: FCN-32s"),
    "fcn16s": ("FCN", "chapter 2: FCN-16s"),
    "fcn8s": ("FCN", "chapter 2: FCN-8s"),
    "fcn": ("FCN", "chapter 2: FCN-8s"),
    "unet": ("UNet", "chapter 5: U-Net with padded ('same') convolutions: output size = input size"),
    "unet-valid": ("UNet", "chapter 5: the paper's U-Net, unpadded convolutions (input sizes 16k + 124 at depth 4)"),
    "unetpp": ("UNetPlusPlus", "chapter 6: UNet++"),
    "unetplus": ("UNetPlus", "chapter 6: UNet+"),
    "unete": ("UNetE", "chapter 6: UNet-e"),
}

#: The classes a checkpoint may name, by class name.
_CLASSES = {c.__name__: c for c in (SlidingWindowClassifier, FCN, UNet, UNetPlusPlus, UNetPlus, UNetE)}


def check_model_name(name: str) -> str:
    """``name`` if it is a ``--model`` name, else a :class:`CLIError` listing them."""
    if name not in MODELS:
        raise CLIError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")
    return name


def model_spec(name: str, in_channels: int, num_classes: int, width=None, depth=None, norm="none",
               deep_supervision: bool = False, patch_size: int = 25) -> tuple[str, dict]:
    """``(class name, constructor keyword arguments)`` of ``--model name``: what a checkpoint stores.

    ``width``, ``depth`` and ``patch_size`` are refused (:class:`CLIError`) unless positive integers
    (``None``: the default), so what ``metrics.json`` records is what was built.
    """
    cls = MODELS[check_model_name(name)][0]
    for flag, value in (("--width", width), ("--depth", depth), ("--patch-size", patch_size)):
        if value is not None and (not is_int(value) or value < 1):
            raise CLIError(f"{flag} must be a positive integer, got {value}")
    norm = None if norm in (None, "none") else norm
    if cls == "SlidingWindowClassifier":
        return cls, dict(in_channels=in_channels, num_classes=num_classes, patch_size=patch_size, width=width or 32)
    if cls == "FCN":
        w = width or 16
        return cls, dict(num_classes=num_classes, variant=name[3:] if name != "fcn" else "8s", in_channels=in_channels,
                         widths=[w, 2 * w, 4 * w, 8 * w, 8 * w], fc_channels=16 * w, norm=norm)
    common = dict(in_channels=in_channels, num_classes=num_classes, depth=depth or 4, base_channels=width or 16, norm=norm)
    if cls == "UNet":
        return cls, dict(common, padding="valid" if name == "unet-valid" else "same")
    return cls, dict(common, deep_supervision=bool(deep_supervision))


def build_model(class_name: str, kwargs: dict) -> nn.Module:
    """The model a checkpoint describes (only the course's classes: nothing is imported by name).

    Its parameters are counted first without allocating them
    (:func:`segedu.memory.meta_parameter_count`): weights that would not fit in the memory this
    machine has free are refused (:class:`~segedu.memory.InsufficientMemoryError`, with the
    estimate) instead of being allocated until the system kills the process.
    """
    if class_name not in _CLASSES:
        raise CLIError(f"unknown model class {class_name!r} in the checkpoint; known: {', '.join(_CLASSES)}")
    kwargs = dict(kwargs)
    cls = _CLASSES[class_name]
    if class_name == "FCN":
        num_classes = kwargs.pop("num_classes")
        make = lambda: cls(num_classes, **kwargs)  # noqa: E731
    else:
        make = lambda: cls(**kwargs)  # noqa: E731
    n = meta_parameter_count(make)
    shown = ", ".join(f"{k}={kwargs[k]}" for k in ("depth", "base_channels", "widths") if k in kwargs)
    check_memory(4 * n, "cpu", f"{class_name}({shown}), {n:.3g} parameters in float32,", "lower --depth or --width")
    return make()


def _checkpoint_file(path) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "best.pt"
    if not path.exists():
        raise CLIError(f"checkpoint {path} not found (give the --out folder of a training run, or a .pt file)")
    return path


def read_checkpoint(path: Path) -> dict:
    """The checkpoint dict in ``path``, checked to be one ``train`` wrote (weights *and* model)."""
    try:
        ckpt = load_checkpoint(path)
    except Exception as e:
        raise CLIError(f"cannot read checkpoint {path}: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from e
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise CLIError(f"{path} is not a segedu checkpoint (no state_dict)")
    if "model" not in ckpt or "model_args" not in ckpt:
        raise CLIError(f"{path} holds weights but not which model they belong to (it was not written by "
                       "'python -m segedu train'); rebuild the model in Python and load_state_dict it")
    return ckpt


def load_weights(model: nn.Module, state_dict: dict, path, what: str) -> None:
    """Load ``state_dict`` (saved with or without DDP's ``module.`` prefix) into ``model``; weights
    that do not fit (another model's) are a :class:`CLIError` naming ``path`` and ``what``."""
    state_dict = strip_module_prefix(state_dict)
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state_dict.items()
             if k in own and own[k].shape != v.shape]
    if wrong:
        raise CLIError(f"the weights in {path} do not fit {what}: {len(wrong)} tensors differ in shape, e.g. "
                       f"{wrong[0]} (a checkpoint from another model?)")
    result = model.load_state_dict(state_dict, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise CLIError(f"the weights in {path} are not those of {what} (missing {len(result.missing_keys)} tensors, "
                       f"e.g. {result.missing_keys[:2]}; unexpected {len(result.unexpected_keys)}, e.g. "
                       f"{result.unexpected_keys[:2]}): a checkpoint from another model?")


def load_model(path) -> tuple[nn.Module, dict]:
    """Rebuild the model a ``train`` checkpoint (file or run folder) describes; ``(model in eval mode, checkpoint)``."""
    path = _checkpoint_file(path)
    ckpt = read_checkpoint(path)
    model = build_model(ckpt["model"], ckpt["model_args"])
    load_weights(model, ckpt["state_dict"], path, f"the {ckpt['model']} it describes")
    return model.eval(), ckpt
