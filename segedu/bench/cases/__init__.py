"""The benchmarks, one per file; importing this package registers them, in this order.

    sliding_window.py     the brute-force sliding window vs its convolutionalised network (chapter 1)
    activation_memory.py  activation memory of a full-resolution stack vs an encoder-decoder (chapter 2)
    tiling.py             overlap-tile vs whole-image inference of the valid U-Net (chapter 5)
    train_step.py         training step and inference of every model in every mode
    fit_throughput.py     whole fit() runs vs the bare training step: does the data keep up?
    unetpp_pruning.py     inference time and parameters of the pruned UNet++ L1..L4 (chapter 6)
    plain_unet.py         segedu's U-Net vs a plain implementation of the same network
    modes.py              the modes (precision, memory format, compilation) and their runner

Each file holds the measurement, its plot and the sentences the report writes about its results.
A new benchmark is a new file here, imported below: the import order is the order of ``--list``,
of a full run and of the appendix.
"""

# in the order of registration (not alphabetical): it is the order of --list, of a run and of the appendix
from .sliding_window import bench_sliding_window
from .activation_memory import (EncoderDecoderStack, FullResolutionStack, bench_activation_memory,
                                saved_activation_bytes)
from .tiling import bench_tiling
from .train_step import ModelCase, bench_train_step
from .fit_throughput import FitCase, bench_fit_throughput
from .unetpp_pruning import bench_unetpp_pruning
from .plain_unet import PlainUNet, bench_plain_unet, copy_weights_by_shape
from .modes import CPU_MODES, CUDA_MODES, MODES, TOLERANCE, ModeRunner, compile_available

__all__ = ["bench_sliding_window", "bench_activation_memory", "bench_tiling", "bench_train_step", "bench_fit_throughput",
           "FitCase",
           "bench_unetpp_pruning", "bench_plain_unet", "FullResolutionStack", "EncoderDecoderStack",
           "saved_activation_bytes", "ModelCase", "PlainUNet", "copy_weights_by_shape", "MODES", "CPU_MODES",
           "CUDA_MODES", "TOLERANCE", "ModeRunner", "compile_available"]
