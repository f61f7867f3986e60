"""ISBI 2012: the real slices (when SEGEDU_DATA has them) and the checksummed downloader,
tested against a local HTTP server — never the network."""

import functools
import hashlib
import http.server
import io
import os
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from segedu.data import ISBI2012, RandomCrops, isbi2012

REAL = Path(os.environ.get("SEGEDU_DATA", "/nonexistent")) / "isbi2012-em"


@pytest.mark.skipif(not REAL.exists(), reason="real ISBI 2012 slices not found (set SEGEDU_DATA)")
def test_real_slices():
    train, val = ISBI2012(split="train", download=False), ISBI2012(split="val", download=False)
    assert len(train) == 24 and len(val) == 6
    x, y = train[0]
    assert x.shape == (1, 512, 512) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    assert y.shape == (512, 512) and set(y.unique().tolist()) == {0, 1}
    assert 0.6 < y.float().mean() < 0.9  # mostly cell interior, thin membranes
    crops = RandomCrops(train, 96, 5)
    assert crops[0][0].shape == (1, 96, 96)


def _png(value):
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local file server holding fake slices, with the checksums patched to match them."""
    served = tmp_path / "served"
    sums = {}
    for i in range(30):
        for kind, value in (("image", i), ("label", 255 * (i % 2))):
            p = served / kind / f"{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(_png(value))
            sums[f"{kind}/{i}.png"] = hashlib.sha256(p.read_bytes()).hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(isbi2012, "ISBI2012_SHA256", sums)
    monkeypatch.setattr(isbi2012, "ISBI2012_URL", f"http://127.0.0.1:{server.server_port}/{{name}}")
    monkeypatch.delenv("SEGEDU_DATA", raising=False)
    yield served
    server.shutdown()


def test_download_verifies_and_caches(mirror, tmp_path):
    root = tmp_path / "cache"
    ds = ISBI2012(root=root, split="val")
    assert len(ds) == 6 and (root / "isbi2012-em" / "image" / "24.png").exists()
    assert ds[0][1].unique().tolist() == [0] and ds[1][1].unique().tolist() == [1]  # label 0 -> membrane, 255 -> cell
    again = ISBI2012(root=root, split="val", download=False)  # now found locally
    assert torch.equal(again[0][0], ds[0][0])


def test_checksum_mismatch_keeps_nothing(mirror, tmp_path):
    (mirror / "image" / "24.png").write_bytes(_png(99))  # the mirror now serves different bytes
    root = tmp_path / "cache"
    with pytest.raises(ValueError, match="SHA-256"):
        ISBI2012(root=root, split="val")
    folder = root / "isbi2012-em" / "image"
    assert not (folder / "24.png").exists()
    assert not any(p.name.startswith("tmp") for p in folder.iterdir()) if folder.exists() else True


def test_corrupted_local_copy_is_rejected_without_download(mirror, tmp_path):
    root = tmp_path / "cache"
    ISBI2012(root=root, split="val")
    (root / "isbi2012-em" / "label" / "25.png").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="does not match"):
        ISBI2012(root=root, split="val", download=False)
    ISBI2012(root=root, split="val")  # download=True replaces the bad copy
    assert hashlib.sha256((root / "isbi2012-em" / "label" / "25.png").read_bytes()).hexdigest() == isbi2012.ISBI2012_SHA256["label/25.png"]


def test_offline_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(isbi2012, "ISBI2012_URL", "http://127.0.0.1:9/{name}")  # nothing listens on port 9
    with pytest.raises(OSError, match="offline"):
        ISBI2012(root=tmp_path, split="val")
    assert not (tmp_path / "isbi2012-em").exists()  # the failed download left no empty folders behind
    with pytest.raises(FileNotFoundError, match="SEGEDU_DATA"):
        ISBI2012(root=tmp_path, split="val", download=False)
    with pytest.raises(ValueError, match="split"):
        ISBI2012(root=tmp_path, split="test")


def test_a_corrupted_cached_file_offline_is_reported_as_corrupted_not_as_a_download_failure(tmp_path, monkeypatch):
    monkeypatch.setattr(isbi2012, "ISBI2012_URL", "http://127.0.0.1:9/{name}")  # offline: nothing listens on port 9
    bad = tmp_path / "isbi2012-em" / "image" / "24.png"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not the slice")
    with pytest.raises(OSError, match=r"cached file .*24\.png is corrupted .*SHA-256.*delete it"):
        ISBI2012(root=tmp_path, split="val")
    assert bad.read_bytes() == b"not the slice"  # nothing the run did not create was touched
