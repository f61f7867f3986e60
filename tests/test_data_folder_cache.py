"""ImageFolder decodes an item once and keeps it, within a memory bound; caching changes no value (issue: performance)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import segedu.data.folder as folder
from segedu.data import ImageFolder


@pytest.fixture
def root(tmp_path):
    """Three 8-bit RGB images of two sizes with masks of classes 0..2."""
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    for k, (h, w) in enumerate([(12, 10), (12, 10), (9, 14)]):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{k}.png")
        Image.fromarray(rng.integers(0, 3, (h, w), dtype=np.uint8)).save(tmp_path / "masks" / f"{k}.png")
    return tmp_path


def _count_reads(monkeypatch):
    calls = []
    read = folder.read_image
    monkeypatch.setattr(folder, "read_image", lambda *a, **k: calls.append(a[0]) or read(*a, **k))
    return calls


def test_a_cached_folder_gives_the_same_items_as_an_uncached_one(root, monkeypatch):
    cached, fresh = ImageFolder(root), ImageFolder(root, cache=False)
    assert cached.cached and not fresh.cached
    assert cached.decoded_bytes == sum(h * w * (4 * 3 + 1) for h, w in cached.sizes)
    calls = _count_reads(monkeypatch)
    for _ in range(2):  # the first pass fills the cache, the second reads it
        for i in [*range(len(cached)), -1]:
            a, b = cached[i], fresh[i]
            assert [t.dtype for t in a] == [torch.float32, torch.int64]
            assert all(torch.equal(u, v) for u, v in zip(a, b)), i
    assert len(calls) == len(cached) + 2 * (len(cached) + 1)  # cached: decoded once each; fresh: every read
    with pytest.raises(IndexError):
        cached[len(cached)]


def test_changing_a_read_item_in_place_does_not_reach_the_cache(root):
    ds = ImageFolder(root)
    first = ds[0]  # the read that fills the cache
    first[0].zero_()
    first[1].fill_(2)
    second = ds[0]
    assert second[0].abs().sum() > 0 and (second[1] != 2).any()
    second[0].zero_()  # a read from the cache is a copy too
    assert ds[0][0].abs().sum() > 0


def test_auto_keeps_items_only_within_the_memory_bound(root, monkeypatch):
    monkeypatch.setattr(folder, "CACHE_BYTES", ImageFolder(root).decoded_bytes - 1)
    large = ImageFolder(root)
    assert not large.cached
    large[0]
    assert not large._items
    assert ImageFolder(root, cache=True).cached  # True: whatever the size
    with pytest.raises(ValueError, match="cache"):
        ImageFolder(root, cache="yes")
