"""Dataset files: where they are, their integrity checks, binarization.

Every dataset lives under one root, `data_root()`: the environment variable `GPM_DATA`,
default `~/.cache/gpm_core/data`, laid out as torchvision expects (`MNIST/raw/...`,
`FashionMNIST/raw/...`, `cifar-10-batches-py/`, `cifar-100-python/`, `celeba/`) plus
`omniglot/chardata.mat`
(Burda et al.'s binarized Omniglot, used when present) or `omniglot-py/` (Lake et al.'s
originals, torchvision.datasets.Omniglot's layout). Nothing is downloaded unless
`GPM_DOWNLOAD=1` is set; then torchvision fetches what is missing (for Omniglot, Lake et
al.'s images: chardata.mat has no download).

Files made from the data (unpacked `.gz` IDX files, the 28x28 Omniglot and the resized
CelebA caches) go into the data root (`<root>/MNIST/raw/`, `<root>/gpm_cache/`) only when
it is writable; a read-only root (`read_only`: no write permission, no write bit in its
mode even for root, or a read-only mount) is never written to, and they go under
`cache_root()` instead: `GPM_CACHE`, default `~/.cache/gpm_core/cache`.

`load_images(name, split, cfg)` returns an `ImageSet`: uint8 images (N, C, H, W) with
values in {0, 1} (binarized) or 0..255, labels (N,), and a `meta` dict that says where the
images came from (`source`) and how they differ from the paper's data (`deviation`, text
or None; every result artifact carries it). Episodes drawn from an ImageSet are
`gpm_core.episodes`.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .config import DATASETS, DataConfig

OMNIGLOT_CACHE_VERSION = "omniglot28-v1"  # bump when the 105 -> 28 conversion changes

# Published md5 of the uncompressed IDX files (the .gz md5s are torchvision's own table).
IDX_MD5 = {
    "MNIST": {
        "train-images-idx3-ubyte": (47040016, "6bbc9ace898e44ae57da46a324031adb"),
        "train-labels-idx1-ubyte": (60008, "a25bea736e30d166cdddb491f175f624"),
        "t10k-images-idx3-ubyte": (7840016, "2646ac647ad5339dbf082846283269ea"),
        "t10k-labels-idx1-ubyte": (10008, "27ae3e4e09519cfbb04c329615203637"),
    },
    "FashionMNIST": {
        "train-images-idx3-ubyte": (47040016, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
        "train-labels-idx1-ubyte": (60008, "9018921c3c673c538a1fc5bad174d6f9"),
        "t10k-images-idx3-ubyte": (7840016, "8181f5470baa50b63fa0f6fddb340f0a"),
        "t10k-labels-idx1-ubyte": (10008, "15d484375f8d13e6eb1aabb0c3f46965"),
    },
}
# md5 of the two Omniglot .npz files (Lake et al.'s images as arrays, bitsandscraps/omniglot)
OMNIGLOT_NPZ_MD5 = {
    "images_background": "042c0a3e1688c4f4dc9d7213db63ee80",
    "images_evaluation": "a6277b6770b9241c6906fa797456e652",
}

OMNIGLOT_DEVIATION = (
    "Omniglot substitute: Burda et al.'s chardata.mat (24,345 train / 8,070 test) is not "
    "available, so the split is rebuilt from Lake et al.'s original 105x105 images: all 1,623 "
    "characters, drawings 1-15 -> train (24,345), drawings 16-20 -> test (8,115, not 8,070), "
    "ink = 1, 105 -> 28 by area averaging (torch adaptive average pooling), then the "
    "configured binarization (threshold 0.5). Close to, but not pixel-identical with, the "
    "paper's data."
)


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are not under the data root."""


class DataCorruptError(RuntimeError):
    """A dataset file exists but is damaged (wrong md5, truncated, wrong shape)."""


@dataclass
class ImageSet:
    """Images (N, C, H, W) uint8 in 0..max_value, labels (N,) int64, and provenance."""

    images: torch.Tensor
    labels: torch.Tensor
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    @property
    def max_value(self) -> int:
        return int(self.meta.get("max_value", 255))

    def as_float(self, index=slice(None)) -> torch.Tensor:
        """Images `index` as float32 in [0, 1]."""
        return self.images[index].float() / self.max_value


def data_root() -> Path:
    """The one data root: $GPM_DATA, default ~/.cache/gpm_core/data."""
    return Path(os.environ.get("GPM_DATA", "~/.cache/gpm_core/data")).expanduser()


def cache_root() -> Path:
    """Where files made from the data go when the data root is read-only: $GPM_CACHE,
    default ~/.cache/gpm_core/cache."""
    return Path(os.environ.get("GPM_CACHE", "~/.cache/gpm_core/cache")).expanduser()


def read_only(path: Path) -> bool:
    """True when nothing may be written into the existing folder `path`: this process may not
    write there, its mode has no write bit (root may write anyway; the mode says the owner
    does not want it), or it is on a read-only mount."""
    try:
        mode, flags = os.stat(path).st_mode, os.statvfs(path).f_flag
    except OSError:
        return True
    return (not os.access(path, os.W_OK) or not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
            or bool(flags & os.ST_RDONLY))


def _cache_dirs() -> list[Path]:
    """The cache folders to read, in order: <root>/gpm_cache, then cache_root()."""
    return [data_root() / "gpm_cache", cache_root()]


def _writable_in_root(sub: str) -> bool:
    """May files be made in <root>/sub? Not when the data root, or an existing folder on the
    way down to sub, is `read_only`."""
    folder = data_root()
    if read_only(folder):
        return False
    for part in Path(sub).parts:
        folder = folder / part
        if folder.exists() and read_only(folder):
            return False
    return True


def _cache_dir() -> Path:
    """The cache folder to write: <root>/gpm_cache unless the data root is read-only."""
    return data_root() / "gpm_cache" if _writable_in_root("gpm_cache") else cache_root()


def _save_cache(obj: dict, name: str, what: str) -> None:
    """torch.save `obj` atomically as <_cache_dir()>/name; warn (never fail) when it cannot."""
    cache = _cache_dir() / name
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".tmp{os.getpid()}")
        try:
            torch.save(obj, tmp)
            os.replace(tmp, cache)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as e:
        warnings.warn(f"could not write the {what} cache {cache} ({e}); it is rebuilt each time; "
                      f"set GPM_CACHE to a writable folder")


def _download_allowed() -> bool:
    return os.environ.get("GPM_DOWNLOAD", "") not in ("", "0")


def _md5(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _not_found(name: str, path: Path, todo: str) -> DatasetNotFoundError:
    return DatasetNotFoundError(
        f"{name}: nothing found at {path} (data root {data_root()}, set by GPM_DATA). {todo}")


_WHERE_HINT = ("Point GPM_DATA at the folder that holds the datasets (the README's Data section "
               "lists the files), or set GPM_DOWNLOAD=1 to let torchvision download them there.")


# --------------------------------------------------------------------------------------
# MNIST, FashionMNIST
# --------------------------------------------------------------------------------------

def _idx_class(folder: str):
    import torchvision  # deferred: torchvision's readers only load when these files are read

    return {"MNIST": torchvision.datasets.MNIST, "FashionMNIST": torchvision.datasets.FashionMNIST}[folder]


def _gz_md5(folder: str) -> dict[str, str]:
    """md5 of the .gz files of `folder` (torchvision's own table), by file name."""
    return {os.path.basename(url): md5 for url, md5 in _idx_class(folder).resources}


def _unpack_gz(gz: Path, dest: Path) -> None:
    """gunzip `gz` to `dest` atomically (temp file, then os.replace)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    try:
        with gzip.open(gz, "rb") as f_in, open(tmp, "wb") as f_out:
            shutil.copyfileobj(f_in, f_out)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _idx_file(folder: str, name: str) -> Path:
    """The unpacked IDX file `name` of `folder`: <root>/<folder>/raw/name, else the one
    unpacked under cache_root(), else unpacked now from name.gz (into raw/ when the data
    root is writable, else under cache_root()), else downloaded with GPM_DOWNLOAD=1."""
    root = data_root()
    raw, cached_raw = root / folder / "raw", cache_root() / folder / "raw"
    for path in (raw / name, cached_raw / name):
        if path.exists():
            return path
    writable = _writable_in_root(f"{folder}/raw")
    target = raw if writable else cached_raw
    gz = raw / (name + ".gz")
    if gz.exists():
        expected = _gz_md5(folder)[gz.name]
        if _md5(gz) != expected:
            raise DataCorruptError(f"{gz} has md5 {_md5(gz)}, expected {expected}: "
                                   f"the file is damaged; copy it again. {_WHERE_HINT}")
        try:
            _unpack_gz(gz, target / name)
        except (OSError, EOFError) as e:
            raise DatasetNotFoundError(f"{folder}: could not unpack {gz} into {target} ({e}); set GPM_CACHE "
                                       f"to a writable folder with free space") from None
        return target / name
    if _download_allowed():
        _idx_class(folder)(str(root if writable else cache_root()), train=name.startswith("train"), download=True)
        return target / name
    raise _not_found(folder, raw / name, f"{_WHERE_HINT} With GPM_DOWNLOAD=1, "
                     f"torchvision downloads it where the network allows.")


def _load_idx_dataset(folder: str, split: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    from torchvision.datasets.mnist import read_image_file, read_label_file  # deferred, as above

    prefix = "train" if split == "train" else "t10k"
    paths = {}
    for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"):
        path = paths[name] = _idx_file(folder, name)
        size, md5 = IDX_MD5[folder][name]
        if path.stat().st_size != size or _md5(path) != md5:
            raise DataCorruptError(
                f"{path} is damaged ({path.stat().st_size} bytes, expected {size} with md5 {md5}); "
                f"delete it and unpack it again. {_WHERE_HINT}")
    images = read_image_file(str(paths[f"{prefix}-images-idx3-ubyte"])).unsqueeze(1).contiguous()  # (N, 1, 28, 28)
    labels = read_label_file(str(paths[f"{prefix}-labels-idx1-ubyte"])).long()
    return images, labels, f"IDX files of {folder} ({paths[f'{prefix}-images-idx3-ubyte'].parent})"


# --------------------------------------------------------------------------------------
# Omniglot
# --------------------------------------------------------------------------------------

def _omniglot_burda(path: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Burda et al.'s chardata.mat: 'data' (784, 24345) / 'testdata' (784, 8070), grey levels
    in [0, 1]. Each column is a 28x28 image stored column-major (as the IWAE code reads it)."""
    try:
        import scipy.io  # deferred: scipy is optional, needed only for chardata.mat
    except ImportError:
        raise ImportError(f"reading {path} needs scipy: pip install scipy") from None
    try:
        mat = scipy.io.loadmat(str(path))
    except Exception as e:
        raise DataCorruptError(f"{path} cannot be read as a MATLAB file ({e}); fetch chardata.mat again") from None
    key, n = ("data", 24345) if split == "train" else ("testdata", 8070)
    tkey, ckey = ("target", "targetchar") if split == "train" else ("testtarget", "testtargetchar")
    if key not in mat or mat[key].shape != (784, n):
        got = mat[key].shape if key in mat else "missing"
        raise DataCorruptError(f"{path}: '{key}' has shape {got}, expected (784, {n}); fetch chardata.mat again")
    x = np.asarray(mat[key], dtype=np.float64).T.reshape(n, 28, 28, order="F")  # column-major images
    images = torch.from_numpy(np.floor(x * 255 + 0.5).clip(0, 255).astype(np.uint8)).unsqueeze(1)
    alphabet = np.argmax(mat[tkey], axis=0)
    char = np.asarray(mat[ckey]).reshape(-1)
    labels = torch.from_numpy((alphabet * 1000 + char).astype(np.int64))  # unique per character
    return images, labels


def _ink_28(ink: torch.Tensor) -> torch.Tensor:
    """(N, 105, 105) bool ink -> (N, 1, 28, 28) uint8 ink fraction, 105 -> 28 by area
    averaging (adaptive average pooling: windows of 4 or 5 pixels, overlapping by one).
    Rounding is half-down, so `threshold` (value/255 > 0.5) equals thresholding the
    exact average at 0.5."""
    out = []
    for chunk in ink.split(2048):
        avg = F.adaptive_avg_pool2d(chunk.unsqueeze(1).double(), (28, 28))
        out.append(torch.ceil(avg * 255 - 0.5).clamp(0, 255).to(torch.uint8))
    return torch.cat(out)


def _omniglot_lake_arrays(root: Path) -> tuple[torch.Tensor, str]:
    """All 1623 characters x 20 drawings as bool ink (1623, 20, 105, 105)."""
    base = root / "omniglot-py"
    npz = [base / f"{s}.npz" for s in ("images_background", "images_evaluation")]
    if all(p.exists() for p in npz):
        parts = []
        for p in npz:
            if _md5(p) != OMNIGLOT_NPZ_MD5[p.stem]:
                raise DataCorruptError(f"{p} has md5 {_md5(p)}, expected {OMNIGLOT_NPZ_MD5[p.stem]}: "
                                       f"the file is damaged; copy it again. {_WHERE_HINT}")
            try:
                images = np.load(p)["images"]  # bool, True = white background
            except Exception as e:
                raise DataCorruptError(f"{p} cannot be read ({e}); copy it again") from None
            parts.append(torch.from_numpy(~images))
        ink = torch.cat(parts)
        source = f"Lake et al. Omniglot, {npz[0]} + {npz[1].name}"
    elif all((base / s).is_dir() for s in ("images_background", "images_evaluation")) or _download_allowed():
        ink = _omniglot_png_tree(root, download=_download_allowed())
        source = f"Lake et al. Omniglot PNG tree under {base}"
    else:
        raise _not_found(
            "omniglot", root / "omniglot" / "chardata.mat",
            f"Neither Burda et al.'s chardata.mat (from github.com/yburda/iwae, datasets/OMNIGLOT; "
            f"put it at that path) nor Lake et al.'s images ({npz[0]}, {npz[1].name} or the images_* "
            f"PNG folders) are there. {_WHERE_HINT} (torchvision.datasets.Omniglot fetches Lake et al.'s "
            f"images, from which the split is rebuilt)")
    if ink.shape != (1623, 20, 105, 105):
        raise DataCorruptError(f"Omniglot under {base}: images have shape {tuple(ink.shape)}, "
                               f"expected (1623, 20, 105, 105); copy the files again")
    return ink, source


def _omniglot_png_tree(root: Path, download: bool = False) -> torch.Tensor:
    """Lake et al.'s PNGs under root/omniglot-py (torchvision's layout) as bool ink
    (1623, 20, 105, 105); with `download`, torchvision.datasets.Omniglot fetches the two
    zips (background and evaluation alphabets) first and checks their md5."""
    import torchvision  # deferred: torchvision's readers only load when these files are read
    from PIL import Image  # deferred with torchvision

    class LocalOmniglot(torchvision.datasets.Omniglot):
        # PNGs extracted elsewhere are exact but may lack the original zips, whose md5 torchvision checks
        def _check_integrity(self):
            return True

    ink = torch.zeros(1623, 20, 105, 105, dtype=torch.bool)
    for background in (True, False):
        if download:
            torchvision.datasets.Omniglot(str(root), background=background, download=True)
        ds = LocalOmniglot(str(root), background=background, download=False)
        for image_name, char_index in ds._flat_character_images:
            cid, drawing = (int(s) for s in Path(image_name).stem.split("_"))  # XXXX_YY.png
            path = os.path.join(ds.target_folder, ds._characters[char_index], image_name)
            try:
                with Image.open(path) as im:
                    ink[cid - 1, drawing - 1] = ~torch.from_numpy(np.array(im.convert("1"), dtype=bool))
            except Exception as e:
                raise DataCorruptError(f"{path} cannot be read as a 105x105 PNG ({e}); "
                                       f"extract the Omniglot images again") from None
    return ink


def _omniglot_lake(split: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """The closest split to Burda et al.'s from the original images (see OMNIGLOT_DEVIATION),
    cached as 28x28 uint8 in <root>/gpm_cache/omniglot28.pt (or under cache_root() when the
    data root is read-only)."""
    root = data_root()
    data, cache = None, None
    for folder in _cache_dirs():
        cache = folder / "omniglot28.pt"
        if cache.exists():
            try:
                data = torch.load(cache, weights_only=True)
                if data.get("version") == OMNIGLOT_CACHE_VERSION:
                    break
            except Exception:
                warnings.warn(f"{cache} is unreadable; rebuilding it")
            data = None
    if data is None:
        ink, source = _omniglot_lake_arrays(root)
        small = _ink_28(ink.reshape(-1, 105, 105)).reshape(1623, 20, 1, 28, 28)
        labels = torch.arange(1623).unsqueeze(1).expand(1623, 20)
        data = {
            "version": OMNIGLOT_CACHE_VERSION, "source": source,
            "train_images": small[:, :15].reshape(-1, 1, 28, 28).clone(),  # drawings 1-15
            "train_labels": labels[:, :15].reshape(-1).clone(),
            "test_images": small[:, 15:].reshape(-1, 1, 28, 28).clone(),  # drawings 16-20
            "test_labels": labels[:, 15:].reshape(-1).clone(),
        }
        _save_cache(data, "omniglot28.pt", "Omniglot")
        cache = _cache_dir() / "omniglot28.pt"
    return data[f"{split}_images"], data[f"{split}_labels"], data["source"] + f" (cache {cache})"


# --------------------------------------------------------------------------------------
# CIFAR, CelebA
# --------------------------------------------------------------------------------------

def _load_cifar(name: str, split: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """CIFAR10 / CIFAR100 (fine labels) from torchvision's python-version folders
    (`cifar-10-batches-py/`, `cifar-100-python/`); torchvision checks the md5 of every file."""
    import torchvision  # deferred: torchvision's readers only load when these files are read

    cls = torchvision.datasets.CIFAR10 if name == "cifar10" else torchvision.datasets.CIFAR100
    root = data_root()
    folder = root / cls.base_folder
    todo = ("Put the python-version tarball's folder there (https://www.cs.toronto.edu/~kriz/cifar.html); "
            "torchvision downloads it with download=True where the network allows: set GPM_DOWNLOAD=1.")
    if not folder.is_dir():
        if not _download_allowed():
            raise _not_found(name, folder, todo)
        if read_only(root):
            raise _not_found(name, folder, "GPM_DOWNLOAD=1 cannot download into a read-only data root; "
                             "download into a writable folder and point GPM_DATA at it.")
        cls(str(root), train=split == "train", download=True)
    try:
        ds = cls(str(root), train=split == "train", download=False)
    except RuntimeError as e:  # torchvision checks the md5 of every batch file and of the meta file
        files = [*cls.train_list, *cls.test_list, [cls.meta["filename"], cls.meta["md5"]]]
        bad = [f for f, md5 in files if not (folder / f).exists() or _md5(folder / f) != md5]
        raise DataCorruptError(f"{name}: {', '.join(str(folder / f) for f in bad) or folder} missing "
                               f"or damaged ({e}); copy the folder again. {todo}") from None
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 3, 32, 32)
    return images, torch.tensor(ds.targets, dtype=torch.long), f"torchvision.datasets.{cls.__name__} ({folder})"


CELEBA_CACHE_VERSION = "v2"  # bump when the crop / resize below changes
CELEBA_SPLITS = {"train": "train", "test": "test"}  # list_eval_partition.txt: 0 train, 1 valid, 2 test


def celeba_crop(image_size: int) -> int:
    """Side of the central square cut from the 178 x 218 aligned faces before resizing:
    148 (the usual VAE preprocessing) up to 148 pixels, else the whole width, 178, so that
    GPM Table 3's 192 x 192 is an 8 % upsampling of a 178 x 178 square, not 30 % of 148."""
    return 148 if image_size <= 148 else 178


def celeba_deviation(image_size: int) -> str:
    crop = celeba_crop(image_size)
    text = (f"CelebA preprocessing is not given in GPM: we take the central {crop} x {crop} square of "
            f"the 178 x 218 aligned faces and resize it to {image_size} x {image_size}")
    return text + ("." if image_size == 192 else "; GPM Table 3 is at 192 x 192.")


def _load_celeba(split: str, image_size: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """CelebA aligned faces: the central `celeba_crop(image_size)` square resized to
    image_size (bilinear, antialiased; the paper does not say how it preprocessed), uint8
    (N, 3, S, S), labels = identity; cached in gpm_cache/. torchvision.datasets.CelebA reads
    img_align_celeba/ and the five list_*.txt / identity_CelebA.txt files and checks the md5
    of the text files."""
    import torchvision  # deferred: torchvision's readers only load when these files are read
    from torchvision import transforms  # deferred with torchvision

    root = data_root()
    crop = celeba_crop(image_size)
    cache_name = f"celeba{image_size}-crop{crop}-{CELEBA_CACHE_VERSION}-{split}.pt"
    for folder in _cache_dirs():
        cache = folder / cache_name
        if cache.exists():
            try:
                d = torch.load(cache, weights_only=True)
                return d["images"], d["labels"], d["source"]
            except Exception:
                warnings.warn(f"{cache} is unreadable; rebuilding it")
    cls = torchvision.datasets.CelebA
    folder = root / cls.base_folder
    todo = ("Put img_align_celeba/ and the list_*.txt and identity_CelebA.txt files there "
            "(https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html); torchvision downloads them with "
            "download=True where the network allows (it needs gdown): set GPM_DOWNLOAD=1.")
    if not (folder / "img_align_celeba").is_dir() and not _download_allowed():
        raise _not_found("celeba", folder / "img_align_celeba", todo)
    tf = transforms.Compose([lambda im: im.convert("RGB"), transforms.CenterCrop(crop),
                             transforms.Resize(image_size, antialias=True), transforms.PILToTensor()])
    try:
        ds = cls(str(root), split=CELEBA_SPLITS[split], target_type="identity", transform=tf,
                 download=_download_allowed() and not read_only(root))
    except RuntimeError as e:  # a missing file or a text file whose md5 is not torchvision's
        bad = [f for _, md5, f in cls.file_list
               if not f.endswith(".zip") and (not (folder / f).exists() or _md5(folder / f) != md5)]
        raise DataCorruptError(f"celeba: {', '.join(str(folder / f) for f in bad) or folder} missing "
                               f"or damaged ({e}). {todo}") from None
    images = torch.empty(len(ds), 3, image_size, image_size, dtype=torch.uint8)  # no stack: 18 GB at 192
    for i in range(len(ds)):
        try:
            image = ds[i][0]
        except OSError as e:  # PIL: a truncated or missing JPEG
            raise DataCorruptError(f"celeba: {folder / 'img_align_celeba' / ds.filename[i]} cannot be "
                                   f"read ({e}); extract img_align_celeba again") from None
        images[i] = image
    labels = ds.identity.reshape(-1).long()
    source = (f"torchvision.datasets.CelebA ({folder}, split {CELEBA_SPLITS[split]}), central "
              f"{crop} x {crop} square, resized to {image_size} x {image_size}")
    _save_cache({"images": images, "labels": labels, "source": source}, cache_name, "CelebA")
    return images, labels, source


# --------------------------------------------------------------------------------------
# Synthetic (tests, smoke runs)
# --------------------------------------------------------------------------------------

def _synthetic(split: str, channels: int, size: int, n: int = 512) -> tuple[torch.Tensor, torch.Tensor, str]:
    """`n` smooth random blobs: 4x4 Gaussian noise upsampled bilinearly to size x size and
    squashed to 0..255, from 10 'classes' (10 fixed low-res prototypes plus noise)."""
    g = torch.Generator().manual_seed(0 if split == "train" else 1)
    protos = torch.randn(10, channels, 4, 4, generator=torch.Generator().manual_seed(2))
    labels = torch.randint(0, 10, (n,), generator=g)
    low = protos[labels] + 0.7 * torch.randn(n, channels, 4, 4, generator=g)
    x = torch.sigmoid(2 * F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False))
    return (x * 255).round().to(torch.uint8), labels, f"synthetic blobs ({n} images, seed {0 if split == 'train' else 1})"


# --------------------------------------------------------------------------------------
# load_images
# --------------------------------------------------------------------------------------

def _binarize(images: torch.Tensor, mode: str, seed: int, split: str) -> tuple[torch.Tensor, int]:
    """uint8 0..255 -> (uint8, max_value). threshold: x > 0.5 (the official GPM code:
    Normalize(0.5, 0.5) then x > 0); stochastic: one Bernoulli(x) sample drawn once at load
    time with `seed` (+1 for the test split); none: keep the grey levels."""
    if mode == "none":
        return images, 255
    if mode == "threshold":
        return (images > 127).to(torch.uint8), 1  # v/255 > 0.5  <=>  v >= 128
    g = torch.Generator().manual_seed(seed + (0 if split == "train" else 1))
    return torch.bernoulli(images.float() / 255, generator=g).to(torch.uint8), 1


def load_images(name: str, split: str = "train", cfg: DataConfig | None = None, **kwargs) -> ImageSet:
    """Load one split ("train" or "test") of dataset `name` as an ImageSet.

    `cfg` (a DataConfig) or keyword arguments give binarize, image_size, train_subset,
    test_subset, binarize_seed. Raises DatasetNotFoundError (names the path and what to do)
    or DataCorruptError (names the damaged file).
    """
    cfg = DataConfig(dataset=name, **kwargs) if cfg is None else cfg
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; valid: {', '.join(DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    deviation = None
    if name in ("mnist", "fashion_mnist"):
        images, labels, source = _load_idx_dataset("MNIST" if name == "mnist" else "FashionMNIST", split)
    elif name == "omniglot":
        mat = data_root() / "omniglot" / "chardata.mat"
        if mat.exists():
            images, labels = _omniglot_burda(mat, split)
            source = f"Burda et al. binarized Omniglot ({mat})"
        else:
            images, labels, source = _omniglot_lake(split)
            deviation = OMNIGLOT_DEVIATION
    elif name in ("cifar10", "cifar100"):
        images, labels, source = _load_cifar(name, split)
    elif name == "celeba":
        images, labels, source = _load_celeba(split, cfg.image_size)
        deviation = celeba_deviation(cfg.image_size)
    else:  # synthetic, synthetic_rgb
        images, labels, source = _synthetic(split, 3 if name == "synthetic_rgb" else 1, cfg.image_size)
        deviation = "synthetic images (tests and smoke runs only), not a dataset of the papers"
    subset = cfg.train_subset if split == "train" else cfg.test_subset
    if 0 < subset < len(images):  # a fixed random subset, the same for every run
        keep = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))[:subset].sort().values
        images, labels = images[keep], labels[keep]
    images, max_value = _binarize(images, cfg.binarize, cfg.binarize_seed, split)
    meta = {"dataset": name, "split": split, "n": len(images), "image_shape": list(images.shape[1:]),
            "binarize": cfg.binarize, "max_value": max_value, "subset": subset,
            "source": source.replace(str(data_root()), "$GPM_DATA"), "deviation": deviation}
    return ImageSet(images.contiguous(), labels, meta)
