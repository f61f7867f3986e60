"""The real data of the U-Net paper: the ISBI 2012 EM segmentation challenge, checked byte by byte.

Chapter 5 trains on 30 slices of electron microscopy (512x512, grey-scale) where the membranes
between cells are the thin class to find. Real data brings two problems synthetic data does not:
it has to be fetched, and a fetched file can be wrong (a mirror that changed, a transfer cut
short). So every file is compared with its SHA-256 before it is used, and a download goes to a
temporary file that is moved into place only once its checksum matches: the cache never holds a
half-written or foreign file.

Where the files live: ``root`` if given, else ``$SEGEDU_DATA``, else a per-user cache folder
(:func:`data_root`), under ``isbi2012-em/{image,label}/N.png``.

Introduced in chapter 5.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

__all__ = ["ISBI2012", "data_root", "ISBI2012_URL", "ISBI2012_SHA256", "ISBI2012_FOLDER"]

#: Public mirror of the 30 training slices as PNG files (the zhixuhao/unet repository).
ISBI2012_URL = "https://raw.githubusercontent.com/zhixuhao/unet/master/data/membrane/train/{name}"
ISBI2012_FOLDER = "isbi2012-em"
#: SHA-256 of every file; a download (or a local copy) that does not match is rejected.
ISBI2012_SHA256 = {
    "image/0.png": "12c0ed6f42fc09f512abf6b354f217c950e4c8223b57a0315449b62a14556523",
    "image/1.png": "2cfc7ee635a6f85d5faf5c82a71d3a37bf5af4784b554964e3e07193e3ee2166",
    "image/2.png": "fe60d8d4f93102666a23a18d718b4b59fab8e616987d11c5072f4a87fac7301f",
    "image/3.png": "636d16cbb02f99dda4c9fb6db98dfba066142afa981ffdcfaf54453982e8250c",
    "image/4.png": "991fb3a8e4abc73da1d6159ca28fa4397f0a8351f30a8ba3669c86414d2ce239",
    "image/5.png": "7e9d9fb787664336d6f2cd68b23986f04527e7f8f494410983b4d70c6de1de3b",
    "image/6.png": "7c0a87933ffc72f4ff02f5996d9c3f69fe9a0b5277507415743ad8afb5e5d308",
    "image/7.png": "19f2c25716107d41008c83ba8a814ae47a090e00dea766dde38dce1f00899270",
    "image/8.png": "a8979e4abd1a10af9ca75e614d97875659adbd8ee3a68eba483bf556cfe3023d",
    "image/9.png": "730ebf435ab0f6e625d342552ad03736799fd660d0c6af744674c61a46aa082a",
    "image/10.png": "7c3717bcd48c4b7e5c878d7f0b809b8687a4e6fac471f3863de320a82ee72b8a",
    "image/11.png": "dd7857b25ca1417f87c282750e22c50947f75e81fa032d4e0c96b902c9dc9757",
    "image/12.png": "9f8eff9239bb764d51524a998387a7babcff9f62161804651b030b81aabd5ab8",
    "image/13.png": "377e5cdbcd7f0ac7336f482fc7ead7446887863f26769b3841fe98aadca77dad",
    "image/14.png": "f50d2d77acd2df564c5f0f40b1b24cd929f5944460aa4cd90c422cb5cef33a59",
    "image/15.png": "3e13fdea09accc14f46fb2f3ffa1e882cdd9c53b28a6842c4c10229692c7d1a4",
    "image/16.png": "ffc951c12450f94129582c16fd0d4b165c4a31469b0c42d966f07c183d3132e2",
    "image/17.png": "0f4f7e8e0619e4c7d517ac68d3789a3b6248253747717eac418bb7d32bef4de3",
    "image/18.png": "1bb1edd50595861743d14e1955dfa5d3c9395fb87563eca6dc81433bf9df49de",
    "image/19.png": "999b55633f8d7082add72082656e9532c5c3d97203b376eb317f09ba88a5a5b7",
    "image/20.png": "9153d14bfd15955fab576ea23281c4f23104b45dceed6e03e0b254607f50a1b2",
    "image/21.png": "9ad07cf4f67984f17a08aa63e6d92d395ce55f5132e6ff4fa6d95d6890ea7f97",
    "image/22.png": "6278609b4c42a7cb43212de0e2e2ceded758bafe0856fb56214ce658a61668e4",
    "image/23.png": "9ef4e9fbc838b9791af83a36918d729a0ea2e90ebc71c4a3c4554059f9379756",
    "image/24.png": "f0f917b9c3e9c96d16ea287aff9b05ecf4de88bc61d478e4aefcb64932fba70c",
    "image/25.png": "e0154737e76392e8bf94fb2c0dfa5ddad4b53aeec942a0a8cdd8ba63443e6072",
    "image/26.png": "d0ff11e09b0ee0c817334946e746a38ab621161d5f9c46af95c68b851f8d9a1a",
    "image/27.png": "eed8e8bee1db8fe7af39b5b43ecf14282c5c33eca0959726eea06f662027eacc",
    "image/28.png": "974df4b51e8905bdaabe61e80496cbf331f5c9aa9ddc2cb94113f58c2b7d2837",
    "image/29.png": "d9ae868509c610a69acbf3d69cde4f36a8e344cbbc444f93c917bf7b9f3e784f",
    "label/0.png": "13b67edd7607a1f284c09170c96a27d38422b0ffaf88024ea5b689acb5e1b4b0",
    "label/1.png": "cff60a00de2901e67165c91d7708d784e4c5bcc9d1c8c677922c905d63bbc3d1",
    "label/2.png": "a578af998c017f56763b81941c4dc612dde5731809b2cea0e8ebc37aecb84dbb",
    "label/3.png": "c8ae3b843fed02e09411a24c10850160922c331041b17c2674025f05a99b8834",
    "label/4.png": "a2f19c01b5d982a97923a0d29e64127a05e3f496731480ac9d9d302b5427f7ff",
    "label/5.png": "2dd5779118f6f4d87f88ec112f1cea20663b50acb8c748b0db1f23eda82b5118",
    "label/6.png": "2b0984e9f31fb41d4c5f4a754a3e080036b7321a0cbd9591a62010d20a574ce7",
    "label/7.png": "2ebc8c835999589bfd7d80d81f83d24e5c41138362b0faafef0f009e1ce82144",
    "label/8.png": "db979010ca4fbdb38c8b32d455aed0da90d598153f2a0046b63d02a6efa32b9e",
    "label/9.png": "8ee6c79adbb740595c4d61776e065e7164c00d52c7dd7562b5279041e7f3567b",
    "label/10.png": "b0156cc8186b0ee521927ac95645b406a42d27564607a6fea3a59c34add78f7c",
    "label/11.png": "e47b3aa0cfb3106476af1666e631d45bd16dbf2aff88260ee65d16e4134332db",
    "label/12.png": "85a7a899c0b72b81633ad122887ba5161d650385d7775a5b3074eb00131b3620",
    "label/13.png": "88549c22fd647312d6b37e17d33e90800d347d60ccb1156a8dde5e67394f9f3d",
    "label/14.png": "bcd775017eb4fdbdfe7ad6cc6420b2f16aa9d0576894d08370edcf564b46680a",
    "label/15.png": "59a854887b504ff00a5b4b93b2299bbc0bf0cbe54dea58d2b31969229b28b369",
    "label/16.png": "b34eb88cdc3313a6f4190f5753465df7f69d8f3c243a5c25427b1b99ecfe2499",
    "label/17.png": "4fa076cbeb744803d987dc46cf308dc3026408e7a5188838e30e25fe3ea67dbe",
    "label/18.png": "bd009dda57f204804732f592ed1d41ba18961d83c492413fe71548efa4a288d9",
    "label/19.png": "bf38407c55b6033c1677230228ecb100a11294aa74a7b92e5edfdc4abadcfef9",
    "label/20.png": "7af7296f2e892866669d4e4f9c0d4178987e6ec6e7d0751ec238d1bbe2da9c55",
    "label/21.png": "772c722acb2eac01769b53fa5037a3d62745e53102398bf9b2202df605cadda4",
    "label/22.png": "b19f5533ec24077a2395a085fe53af75dd350ef03798c4ff40ba9ebecb2ee0ad",
    "label/23.png": "2d8f1df5c9ee83e59eb2d709eb153b0570f12e726690f586154b01b0a88bb540",
    "label/24.png": "6ab02d922b5c937ecfe2a479be87a5d3e5ef950dc48da09d31f37b47d899ca9c",
    "label/25.png": "c5ea59aca7789dd507ac31c4a82bbd4c172f9e3544f8e040442c20d1dfa9e16d",
    "label/26.png": "b056fae9f358111b6c9e2494bdba645f206be581959b8d3763e97d62a65dd961",
    "label/27.png": "5be3823a57c82b632cead6eb09f438c6010a244dc0975f2a3e466f45d2c06840",
    "label/28.png": "c0b0e2a2b7aad46919d1afc980f7d5e39101fb07948ce65d9cac802d8b47682e",
    "label/29.png": "1e8839a97178914171defd6a97158f06fcac1fc3f0d45f2acdff9c49ab3fced9",
}


def data_root(root=None):
    """Where data sets live: ``root`` if given, else ``$SEGEDU_DATA``, else a per-user cache folder."""
    if root is not None:
        return Path(root)
    if os.environ.get("SEGEDU_DATA"):
        return Path(os.environ["SEGEDU_DATA"])
    import pooch

    return Path(pooch.os_cache("segedu"))


def _sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class ISBI2012(Dataset):
    """The ISBI 2012 EM segmentation challenge's 30 training slices (512x512, grey-scale).

    Serial-section transmission electron microscopy of the *Drosophila* larva ventral nerve cord
    (Cardona et al., 2010) — the data the U-Net paper trained on. Labels: 1 = cell interior,
    0 = membrane (the cell border), read from the PNG labels (255 / 0).

    The files are looked up in ``root``, else ``$SEGEDU_DATA``, else a per-user cache, under
    ``isbi2012-em/{image,label}/N.png``. Every file is checked against its SHA-256. Missing files
    are downloaded (``download=True``) from the public mirror through ``pooch``, which writes to a
    temporary file and moves it into place only once the checksum matches — nothing half-written
    is ever left in the cache.

    Args:
        root: folder that contains ``isbi2012-em/``.
        split: ``"train"`` = slices 0-23, ``"val"`` = slices 24-29, ``"all"`` = 0-29.
        download: fetch missing files; if ``False`` (or offline) a clear error says what to
            download and where to put it.
    """

    CLASSES = ("membrane", "cell")
    num_classes = 2
    in_channels = 1
    fixed_items = True  # decoded once, the same slices on every read (segedu.loading may hold them on the device)
    SPLITS = {"train": range(0, 24), "val": range(24, 30), "all": range(0, 30)}

    def __init__(self, root=None, split: str = "train", download: bool = True):
        if split not in self.SPLITS:
            raise ValueError(f"split must be one of {sorted(self.SPLITS)}, got {split!r}")
        self.folder = data_root(root) / ISBI2012_FOLDER
        self.split, self.indices = split, list(self.SPLITS[split])
        self.files = []
        for i in self.indices:
            pair = []
            for kind in ("image", "label"):
                name = f"{kind}/{i}.png"
                pair.append(self._fetch(name, download))
            self.files.append(tuple(pair))
        self._cache = {}

    def _fetch(self, name: str, download: bool):
        path = self.folder / name
        expected = ISBI2012_SHA256[name]
        if path.exists():
            if _sha256(path) == expected:
                return path
            if not download:
                raise ValueError(f"{path} does not match its SHA-256 checksum (expected {expected}); delete it, or "
                                 "construct ISBI2012(download=True) to fetch a good copy")
        if not download:
            raise FileNotFoundError(
                f"ISBI 2012 file {name} not found in {self.folder}. Download the 30 training slices "
                f"({ISBI2012_URL.format(name='image/N.png')} and label/N.png, N = 0..29) into "
                f"{self.folder}/image and {self.folder}/label, set SEGEDU_DATA to the folder that contains "
                f"{ISBI2012_FOLDER}/, or use download=True")
        import pooch

        url = ISBI2012_URL.format(name=name)
        corrupted = path.exists()  # here only when the cached copy failed its checksum
        # pooch makes the folders before it downloads: a failed first download must not leave them behind
        new_folders = [f for f in (path.parent, self.folder) if not f.exists()]
        try:
            try:
                pooch.retrieve(url, known_hash=f"sha256:{expected}", fname=path.name, path=path.parent,
                               progressbar=False)
            except Exception:
                for folder in new_folders:  # innermost first
                    if folder.is_dir() and not any(folder.iterdir()):
                        folder.rmdir()
                raise
        except ValueError as e:  # pooch: checksum mismatch (the temporary file is deleted)
            raise ValueError(f"downloaded {url} but its SHA-256 does not match the expected {expected}: "
                             f"the mirror changed or the transfer was corrupted; nothing was kept ({e})") from None
        except Exception as e:  # offline, DNS, HTTP errors
            if corrupted:
                raise OSError(f"the cached file {path} is corrupted (its SHA-256 is not the expected {expected}) and "
                              f"a fresh copy could not be downloaded ({type(e).__name__}: {e}): delete it and run "
                              "again online, or put a good copy of the ISBI 2012 slice there") from None
            raise OSError(f"could not download {url} ({type(e).__name__}: {e}). If you are offline, put the ISBI 2012 "
                          f"PNG slices into {self.folder}/image and {self.folder}/label (or set SEGEDU_DATA)") from None
        return path

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, k: int):
        from PIL import Image

        if k not in self._cache:
            image_path, label_path = self.files[k]
            image = np.asarray(Image.open(image_path).convert("L"), dtype=np.float32) / 255.0
            label = (np.asarray(Image.open(label_path).convert("L")) > 127).astype(np.int64)
            self._cache[k] = (torch.from_numpy(image)[None], torch.from_numpy(label))
        return tuple(t.clone() for t in self._cache[k])  # a copy: the caller may change it in place

    def __repr__(self) -> str:
        return f"ISBI2012(split={self.split!r}, {len(self)} slices from {self.folder})"
