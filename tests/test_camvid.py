"""CamVid: the real frames (when SEGEDU_DATA has them), the shipped checksum table, median frequency
balancing, and the checksummed, resumable downloader, tested against a local HTTP server — never the
network."""

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

from segedu.data import CamVid, camvid

REAL = Path(os.environ.get("SEGEDU_DATA", "/nonexistent")) / "camvid"
needs_real = pytest.mark.skipif(not REAL.exists(), reason="real CamVid frames not found (set SEGEDU_DATA)")
SIZES = {"train": 367, "val": 101, "test": 233}


def test_class_attributes():
    assert len(CamVid.CLASSES) == CamVid.num_classes == 11 and CamVid.CLASSES[6] == "SignSymbol"
    assert CamVid.IGNORE_INDEX == 11 and CamVid.in_channels == 3
    assert CamVid.PALETTE.shape == (12, 3) and CamVid.PALETTE.dtype == np.uint8
    assert CamVid.PALETTE[3].tolist() == [128, 64, 128] and CamVid.PALETTE[11].tolist() == [0, 0, 0]  # road, void
    assert len({tuple(c) for c in CamVid.PALETTE.tolist()}) == 12
    assert isinstance(CamVid.MEDIAN_FREQUENCY_WEIGHTS, tuple) and len(CamVid.MEDIAN_FREQUENCY_WEIGHTS) == 11


def test_checksum_table_ships_with_the_package():
    table = camvid.CAMVID_SHA256
    assert len(table) == 2 * sum(SIZES.values()) == 1402
    for split, n in SIZES.items():
        frames = sorted(k.split("/")[1] for k in table if k.startswith(f"{split}/"))
        labels = sorted(k.split("/")[1] for k in table if k.startswith(f"{split}annot/"))
        assert len(frames) == n and frames == labels
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in table.values())
    sums = REAL / "SHA256SUMS"
    if sums.exists():  # the table is the data folder's SHA256SUMS
        listed = dict(reversed(line.split()) for line in sums.read_text().splitlines() if line.strip())
        assert {k.removeprefix("./"): v for k, v in listed.items()} == table


@needs_real
def test_real_splits_load():
    for split, n in SIZES.items():
        assert len(CamVid(split)) == n
    train = CamVid("train", download=False)
    assert train.names[0] == "0001TP_006690.png" and train.names == sorted(train.names)
    for ds, k in ((train, 0), (train, 200), (CamVid("val"), -1), (CamVid("test"), 100)):
        x, y = ds[k]
        assert x.shape == (3, 360, 480) and x.dtype == torch.float32 and 0 <= x.min() < x.max() <= 1
        assert y.shape == (360, 480) and y.dtype == torch.int64 and 0 <= y.min() and y.max() <= CamVid.IGNORE_INDEX
        assert len(y.unique()) >= 4  # a street scene, not a blank label
    with pytest.raises(IndexError):
        train[367]


@needs_real
def test_real_frames_are_decoded_once(monkeypatch):
    ds = CamVid("val")
    x, y = ds[3]
    x.zero_()  # the caller's copy: the cache keeps its own
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("decoded a cached frame again"))
    x2, y2 = ds[3]
    assert x2.max() > 0 and torch.equal(y2, y)


# SegNet's weights next to ours: up to a common factor (SegNet's median is not one of the 11
# frequencies: none of its weights is 1) ten classes agree within 21%; SignSymbol does not (ours 3.85,
# SegNet's 9.64), whatever the variant (train, train+val, all splits; median over 11 or 12 values).
MEASURED_WEIGHTS = (0.2793, 0.2017, 4.7865, 0.1490, 1.0000, 0.4217, 3.8467, 1.9736, 0.7889, 6.3747, 8.8587)


@needs_real
def test_real_median_frequency_weights_match_segnet():
    train = CamVid("train")
    freq = train.class_frequencies()
    assert freq.dtype == torch.float64 and freq.shape == (11,) and (freq > 0).all()
    assert freq[3] == freq.max() and freq[10] == freq.min()  # road most, bicyclist least
    w = train.median_frequency_weights()
    assert w.dtype == torch.float32 and w.shape == (11,) and w[4] == 1  # pavement has the median frequency
    assert torch.allclose(w, torch.tensor(MEASURED_WEIGHTS), atol=1e-3)
    ratio = w.double() / torch.tensor(CamVid.MEDIAN_FREQUENCY_WEIGHTS, dtype=torch.float64)
    others = torch.cat([ratio[:6], ratio[7:]])
    assert ((others - 1).abs() < 0.21).all(), ratio  # measured: 0.02 .. 0.203 (bicyclist)
    assert 0.39 < ratio[6] < 0.41  # SignSymbol: 3.85 here, 9.64 in SegNet's prototxt


# ---- the downloader, against a local mirror of a few fake frames ----

FAKE = {"train": ["b.png", "a.png", "c.png"], "val": ["v.png"]}
H, W = 4, 6


def _png(array):
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _fake_mask(name):
    m = np.full((H, W), 11, np.uint8)
    if name == "a.png":  # 12 pixels of sky, 12 of building
        m[:2], m[2:] = 0, 1
    elif name == "b.png":  # all sky
        m[:] = 0
    elif name == "c.png":  # 6 pixels of pole, the rest unlabelled
        m[0] = 2
    else:
        m[1:3, 1:3] = 9
    return m


class Mirror:
    """A local HTTP server holding fake CamVid files; it records the paths asked for."""

    def __init__(self, folder):
        self.folder, self.requests, self.sums = folder, [], {}
        for split, names in FAKE.items():
            for i, name in enumerate(names):
                image = np.zeros((H, W, 3), np.uint8)
                image[..., 0], image[..., 2] = 10 * i + 5, 255
                self.put(f"{split}/{name}", _png(image))
                self.put(f"{split}annot/{name}", _png(_fake_mask(name)))
        mirror = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(folder), **k)

            def do_GET(self):
                mirror.requests.append(self.path.lstrip("/"))
                super().do_GET()

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/{{name}}"

    def put(self, name, data):
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.sums[name] = hashlib.sha256(data).hexdigest()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    m = Mirror(tmp_path / "served")
    monkeypatch.setattr(camvid, "CAMVID_SHA256", dict(m.sums))
    monkeypatch.setattr(camvid, "CAMVID_URL", m.url)
    monkeypatch.delenv("SEGEDU_DATA", raising=False)
    yield m
    m.server.shutdown()


def test_download_verifies_and_caches(mirror, tmp_path):
    root = tmp_path / "cache"
    ds = CamVid("train", root=root, download=True)
    assert len(ds) == 3 and ds.names == ["a.png", "b.png", "c.png"]  # sorted file names
    assert sorted(mirror.requests) == sorted(f"{d}/{n}" for n in FAKE["train"] for d in ("train", "trainannot"))
    assert (root / "camvid" / "trainannot" / "c.png").exists() and not (root / "camvid" / "val").exists()
    x, y = ds[0]  # a.png, served second: its red channel is 15
    assert x.shape == (3, H, W) and x.dtype == torch.float32 and torch.allclose(x[0], torch.tensor(15 / 255))
    assert y.dtype == torch.int64 and torch.equal(y, torch.from_numpy(_fake_mask("a.png")).long())
    again = CamVid("train", root=root)  # now found locally, nothing fetched
    assert torch.equal(again[2][1], ds[2][1]) and len(mirror.requests) == 6


def test_download_resumes(mirror, tmp_path):
    root = tmp_path / "cache"
    CamVid("train", root=root, download=True)
    (root / "camvid" / "train" / "b.png").unlink()  # an interrupted download
    (root / "camvid" / "trainannot" / "a.png").write_bytes(b"half a file")  # a corrupted copy
    mirror.requests.clear()
    CamVid("train", root=root, download=True)
    assert sorted(mirror.requests) == ["train/b.png", "trainannot/a.png"]  # only what was missing or wrong
    mirror.requests.clear()
    CamVid("train", root=root, download=True)  # complete and verified: nothing to fetch
    assert mirror.requests == []


def test_checksum_mismatch_keeps_nothing(mirror, tmp_path):
    mirror.put("train/c.png", _png(np.ones((H, W, 3), np.uint8)))  # the mirror now serves other bytes
    root = tmp_path / "cache"
    with pytest.raises(ValueError, match="SHA-256") as e:
        CamVid("train", root=root, download=True)
    assert "\n" not in str(e.value) and "train/c.png" in str(e.value)
    folder = root / "camvid" / "train"
    assert not (folder / "c.png").exists() and not any(p.name.startswith("tmp") for p in folder.iterdir())


def test_offline_and_missing_files_give_clear_errors(tmp_path, monkeypatch):
    monkeypatch.delenv("SEGEDU_DATA", raising=False)
    monkeypatch.setattr(camvid, "CAMVID_URL", "http://127.0.0.1:9/{name}")  # nothing listens on port 9
    with pytest.raises(OSError, match="offline") as e:
        CamVid("val", root=tmp_path, download=True)
    assert "\n" not in str(e.value)
    assert not (tmp_path / "camvid").exists()  # the failed download left no empty folders behind
    with pytest.raises(FileNotFoundError, match="SEGEDU_DATA") as e:
        CamVid("val", root=tmp_path)
    assert str(tmp_path / "camvid") in str(e.value) and "download=True" in str(e.value)
    with pytest.raises(ValueError, match="'train', 'val', 'test'"):
        CamVid("all", root=tmp_path)


def test_median_frequency_weights_by_hand(mirror, tmp_path):
    ds = CamVid("train", root=tmp_path, download=True)
    # sky: (12 + 24) / (24 + 24) = 0.75; building: 12 / 24 = 0.5; pole: 6 / 24 = 0.25 (void pixels
    # count in the frame, not as a class); the other classes never appear
    expected = torch.zeros(11, dtype=torch.float64)
    expected[:3] = torch.tensor([0.75, 0.5, 0.25])
    assert torch.allclose(ds.class_frequencies(), expected)
    weights = torch.zeros(11)
    weights[:3] = torch.tensor([0.5 / 0.75, 1.0, 2.0])  # median 0.5 over the classes present
    assert torch.allclose(ds.median_frequency_weights(), weights)
    cached = CamVid("train", root=tmp_path)
    cached[0], cached[2]  # masks read from the cache give the same answer
    assert torch.allclose(cached.median_frequency_weights(), weights)


class _Tiny(torch.utils.data.Dataset):
    """Two 8x12 "frames" with known labels: 0 on the left half, 2 on the right, one unlabelled pixel."""
    num_classes = 3

    def __len__(self):
        return 2

    def __getitem__(self, k):
        mask = torch.zeros(8, 12, dtype=torch.long)
        mask[:, 6:] = 2
        mask[0, 0] = 3  # unlabelled
        return torch.full((3, 8, 12), float(k)), mask


def test_resized_stacks_a_split_and_keeps_labels_categorical():
    from segedu.data import resized

    r = resized(_Tiny(), (4, 6), keep_full=True)
    assert r.images.shape == (2, 3, 4, 6) and r.masks.shape == (2, 4, 6) and r.full_masks.shape == (2, 8, 12)
    assert set(r.masks.unique().tolist()) <= {0, 2, 3}  # nearest neighbour: never the invented class 1
    assert (r.masks[:, :, :3] != 2).all() and (r.masks[:, :, 3:] == 2).all()
    assert r.counts.tolist() == [2 * (48 - 1), 0, 2 * 48, 2]  # counted at full size, unlabelled last
    assert torch.allclose(r.images[1], torch.ones(3, 4, 6))
    assert resized(_Tiny(), (4, 6)).full_masks is None
    with pytest.raises(ValueError, match="height, width"):
        resized(_Tiny(), 4)


def test_confusion_over_measures_at_the_labels_size():
    from segedu.inference import confusion_over

    class Right(torch.nn.Module):  # scores class 2 on the right half of whatever it sees, class 0 elsewhere
        def __init__(self):
            super().__init__()
            self.p = torch.nn.Parameter(torch.zeros(1))

        def forward(self, x):
            s = torch.zeros(len(x), 3, *x.shape[-2:])
            s[:, 0, :, : x.shape[-1] // 2] = 1
            s[:, 2, :, x.shape[-1] // 2:] = 1
            return s

    data = _Tiny()
    small = torch.stack([data[k][0] for k in range(2)])[..., ::2, ::2]  # 4x6 images
    full = torch.stack([data[k][1] for k in range(2)])                   # 8x12 labels
    conf = confusion_over(Right(), small, full, 3, ignore_index=3)
    assert conf.tolist() == [[2 * 47, 0, 0], [0, 0, 0], [0, 0, 2 * 48]]  # upsampled, then compared; void left out
    with pytest.raises(ValueError, match="same N"):
        confusion_over(Right(), small, full[:1], 3)
