"""segedu — the library behind *Semantic Segmentation from Scratch*.

The course, one idea per module (each says which chapter introduces it):

    metrics      pixel accuracy, IoU, Dice                                     (ch. 1)
    memory       activation memory, peak memory of any call                    (ch. 2)
    layers       upsampling layers: nearest, bed of nails, max unpooling       (ch. 3)
    transposed   transposed convolution, derived by hand                       (ch. 4)
    sizes        U-Net size arithmetic: 572 -> 388, x = 16k + 124              (ch. 5)
    tiling       overlap-tile inference                                        (ch. 5)
    losses       pixel cross entropy, U-Net weight map, soft Dice, BCE + Dice  (ch. 2, 5, 6)
    models/      sliding window, FCN, encoder-decoder, U-Net, UNet++ family    (ch. 1-6)

Training and evaluation, in import order (a module here imports the course modules and those
listed before it, never one after it; tests/test_architecture.py checks every import, also those
inside functions, so there are no import cycles):

    runtime      device, seeds, RNG state, mixed precision and memory format
    checks       the shared argument checks
    checkpoint   atomic file writes; checkpoints saved and loaded with weights_only
    summary      tables, spreads over seeds, the Pareto front, paired verdicts: pure functions of rows
    viz          figures drawn from real objects
    glue         numbers in the prose come from the computation (MyST-NB glue, without MyST-NB)
    distributed  multi-GPU (and multi-process CPU) training under torchrun
    loading      how fit reads batches: a DataLoader, or a whole data set held on the device
    train        fit() and its levels (train_step, evaluate, predict, History, TrainState)
    inference    segment an image of any size with any model of the course
    experiments  the side-by-side runner (ModelSpec, compare) and the named, stored experiments

Data, demos and tools (packages):

    data/        synthetic Shapes / Cells, the ISBI 2012 EM slices, views (crops, binary), your folders
    widgets/     interactive demos, live (ipywidgets) and kernel-free (the book)
    cli/         python -m segedu train / predict: your own data
    bench/       the benchmark suite (python -m segedu bench), one file per benchmark in bench/cases/
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
