"""The named experiments: one for every comparative claim of chapters 3, 5b, 6, 6b and 7.

    common.py   register (which also lists the names in order), N_TEST, the extra metrics
    data.py     the dataset views some experiments need (paired crops, mosaics, membrane foreground)
    ch3.py ch5b.py ch6.py ch6b.py ch7.py   the experiments of each chapter, in the course's order

Each :class:`~segedu.experiments.registry.Experiment` below says which models, on which data,
under which budget, with which seeds, and which paired comparisons decide its question. Importing
this module registers them in :data:`~segedu.experiments.registry.EXPERIMENTS`;
``segedu.experiments.run("ch6-loss")`` reads the stored result (or trains it with
``cache=False``).

Design rules, from the evidence issue:

* at least 8 seeds per verdict (10 where the effect is known to be of the size of the seed
  spread), and at least 200 test images per synthetic data set, or the whole held-out split of
  real data (ISBI 2012: the 6 validation slices, whole, by overlap-tile where the model needs it);
* every data set is built lazily inside ``data()`` from fixed seeds, so nothing is computed at
  import and every run sees the same pixels;
* an experiment tests its question only on data where the question can be answered: chapter 3's
  upsamplings on touching cells (a no-skip decoder has to put 2-pixel gaps back where they were),
  chapter 6's depths on shapes and on noisy cells (the noiseless Cells of the chapter were a
  ceiling), chapter 7's valid-vs-same padding under *equal supervised pixels* (the valid network
  gets larger input tiles whose output is exactly the same-padding network's crop), and on ISBI
  the foreground is the **membrane**: :class:`~segedu.data.ISBI2012` labels it 0, so the catalog
  reads the slices through :class:`MembraneForeground` (membrane = 1), which makes a row's
  ``dice`` and ``foreground_iou`` the membrane's, and adds ``membrane_dice`` and
  ``membrane_iou`` columns that say so by name;
* the budget is small enough for a CPU: narrow networks (8 filters in the first layer), 48 to 96
  pixel images, 120 to 300 optimizer steps; one seed of an experiment (all its models and data
  sets) costs between half a minute and three minutes of one CPU core, and ``make experiments``
  stores them all.

Introduced in chapter 6.
"""

from __future__ import annotations

from . import ch3, ch5b, ch6, ch6b, ch7  # noqa: F401  (importing a chapter registers its experiments)
from . import common
from .common import N_TEST, boundary_accuracy, cells_recovered, membrane_dice, membrane_iou
from .data import MembraneForeground, Mosaic, PairedCrops, isbi2012_splits

#: The names the catalog registers, in the course's order.
NAMES = common.NAMES

__all__ = ["NAMES", "N_TEST", "PairedCrops", "Mosaic", "MembraneForeground", "boundary_accuracy", "cells_recovered",
           "membrane_dice", "membrane_iou", "isbi2012_splits"]
