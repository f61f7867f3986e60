"""``python -m segedu train`` and ``python -m segedu predict``: the course's models on your data.

``train`` builds a model by name, trains it with :func:`segedu.train.fit` on a named dataset or on
a folder of your images and masks, and writes into ``--out``:

* ``metrics.json`` — the run's settings and one record per epoch, rewritten after every epoch;
* ``best.pt`` — the weights with the best validation mean IoU, plus the model's class name and
  constructor arguments, so ``predict`` (or you) can rebuild it; plain data and tensors only,
  loadable with ``torch.load(path, weights_only=True)``;
* ``last.pt`` — the latest weights with the optimizer and random-number-generator state:
  ``--resume DIR`` continues the run exactly where it stopped;
* ``preview.png`` — validation images, their masks and the best model's predictions.

Started by ``torchrun --nproc_per_node=N -m segedu train ...`` it trains data-parallel
(:mod:`segedu.distributed`); ``--batch-size`` is then the global batch, split over the processes,
and only rank 0 writes files.

``predict`` loads a checkpoint and writes a mask PNG (class indices) and a colour overlay for every
input image; ``--tiled`` segments large images tile by tile with overlap-tile
(:func:`segedu.tiling.predict_tiled`).

Bad input ends with one line on stderr and exit status 1 (``--debug`` shows the traceback).

One concern per module:

    errors.py    CLIError and the one-line error handling both commands share
    registry.py  the --model names; rebuilding a model from a checkpoint (load_model)
    datasets.py  the --data names; load_data (and random crops of images of differing sizes)
    outputs.py   the PNGs the commands write: masks, overlays, the training preview
    train.py     the train command
    predict.py   the predict command

Segmenting one image of any size with any model is :func:`segedu.inference.segment_image`,
re-exported here.

Introduced in the appendix "Beyond the course: training on your data".
"""

from __future__ import annotations

from ..inference import segment_image
from .datasets import DATASETS, load_data
from .errors import CLIError
from .outputs import overlay_image, preview, save_mask
from .predict import predict_command, predict_main
from .registry import MODELS, build_model, load_model, model_spec
from .train import OTHER_DEFAULTS, RESUME_MAY_CHANGE, RUN_DEFAULTS, train_command, train_main

__all__ = ["MODELS", "DATASETS", "RUN_DEFAULTS", "OTHER_DEFAULTS", "RESUME_MAY_CHANGE", "CLIError", "model_spec",
           "build_model", "load_model", "load_data", "segment_image", "overlay_image", "save_mask", "preview",
           "train_command", "train_main", "predict_command", "predict_main"]
