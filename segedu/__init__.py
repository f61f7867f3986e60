"""segedu — the library behind *Semantic Segmentation from Scratch*.

Every model and algorithm the course teaches lives here, one idea per module:

    data        synthetic Shapes / Cells and the real ISBI 2012 EM slices
    layers      upsampling layers (nearest, bed of nails, max unpooling)
    transposed  transposed convolution, derived by hand
    sizes       U-Net size arithmetic
    models      sliding window, FCN, U-Net, UNet++ family
    losses      pixel cross entropy, U-Net weight map, soft Dice, BCE + Dice
    metrics     pixel accuracy, IoU, Dice
    tiling      overlap-tile inference
    train       fit(): the one training loop of the course
    viz         figures drawn from real objects
    widgets     interactive demos, live and kernel-free
    experiments the side-by-side runner of chapter 7
    bench       the benchmark suite (python -m segedu bench)
    cli         python -m segedu train / predict: your own data
    distributed multi-GPU (and multi-process CPU) training under torchrun
"""

__version__ = "0.1.0"
