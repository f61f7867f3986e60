"""Synthetic items are generated once and cached; caching changes no value (issue: performance)."""

from __future__ import annotations

import pytest
import torch

from segedu.data import Cells, Shapes

MAKERS = {
    "Shapes": lambda cache: Shapes(12, size=48, seed=3, cache=cache),
    "Cells + weights": lambda cache: Cells(8, size=48, seed=5, cells=10, weights=True, cache=cache),
    "Cells, augmented": lambda cache: Cells(4, size=48, seed=5, cells=10, augment=True, weights=True, cache=cache),
}


@pytest.mark.parametrize("name", MAKERS)
def test_a_cached_data_set_gives_the_same_items_on_every_read(name):
    cached, fresh = MAKERS[name](True), MAKERS[name](False)
    for _ in range(2):  # first read fills the cache, the second reads it (augmented: a new deformation each time)
        for i in range(len(cached)):
            a, b = cached[i], fresh[i]
            assert len(a) == len(b) and all(torch.equal(u, v) for u, v in zip(a, b)), (name, i)


@pytest.mark.parametrize("name", MAKERS)
def test_changing_a_read_item_in_place_does_not_reach_the_cache(name):
    ds = MAKERS[name](True)
    first = ds[0]
    first[0].zero_()
    assert ds[0][0].abs().sum() > 0


def test_instances_are_copies():
    ds = Cells(2, size=48, seed=5, cells=10)
    ds.instances(0)[:] = 0
    assert ds.instances(0).max() > 0
