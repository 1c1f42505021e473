"""Datasets and episodes: clear errors for missing or damaged files, the Omniglot split,
episode shapes and determinism."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from gpm_core import datasets as data
from gpm_core.datasets import DataCorruptError, DatasetNotFoundError, ImageSet, load_images
from gpm_core.episodes import EpisodeSampler, class_episodes, test_episodes, unwritten_query_episodes

REAL_ROOT = Path(os.environ.get("GPM_DATA", Path(__file__).resolve().parent.parent / ".data"))


def test_data_root_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("GPM_DATA", raising=False)
    assert data.data_root() == Path("~/.cache/gpm_core/data").expanduser()
    monkeypatch.setenv("GPM_DATA", str(tmp_path))
    assert data.data_root() == tmp_path


@pytest.mark.parametrize("name,expected", [
    ("mnist", "MNIST/raw/train-images-idx3-ubyte"),
    ("fashion_mnist", "FashionMNIST/raw/train-images-idx3-ubyte"),
    ("omniglot", "omniglot/chardata.mat"),
    ("cifar10", "cifar-10-batches-py"),
    ("celeba", "celeba/img_align_celeba"),
])
def test_missing_dataset_names_path_and_remedy(data_root, name, expected):
    with pytest.raises(DatasetNotFoundError) as e:
        load_images(name, "train")
    msg = str(e.value)
    assert str(data_root / expected) in msg and "GPM_DATA" in msg
    assert isinstance(e.value, FileNotFoundError)
    if name in ("cifar10", "celeba"):
        assert "download=True" in msg


def test_truncated_mnist_file_is_named(data_root):
    raw = data_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 100)  # an IDX header, then nothing
    with pytest.raises(DataCorruptError, match=f"{raw / 'train-images-idx3-ubyte'} is damaged"):
        load_images("mnist", "train")


def test_bad_gz_md5_is_named(data_root):
    raw = data_root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(b"not a gzip file")
    with pytest.raises(DataCorruptError, match="t10k-images-idx3-ubyte.gz has md5"):
        load_images("fashion_mnist", "test")


def test_corrupt_omniglot_npz_is_named(data_root):
    folder = data_root / "omniglot-py"
    folder.mkdir()
    for name in ("images_background.npz", "images_evaluation.npz"):
        (folder / name).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(DataCorruptError, match="images_background.npz has md5"):
        load_images("omniglot", "test")


def test_omniglot_downloads_lake_images_through_torchvision(data_root, monkeypatch):
    """With GPM_DOWNLOAD=1 and no Omniglot files, torchvision.datasets.Omniglot is asked for
    both alphabets (download=True) under the data root; without it the error says how to get
    the data (chardata.mat's path, or GPM_DOWNLOAD=1)."""
    import torchvision

    calls = []

    class Stop(Exception):
        pass

    class FakeOmniglot:  # offline: records the request instead of fetching
        def __init__(self, root, background=True, download=False, **kwargs):
            calls.append((root, background, download))
            raise Stop

    with pytest.raises(DatasetNotFoundError, match="GPM_DOWNLOAD=1") as e:
        load_images("omniglot", "train")
    assert str(data_root / "omniglot" / "chardata.mat") in str(e.value)
    monkeypatch.setattr(torchvision.datasets, "Omniglot", FakeOmniglot)
    monkeypatch.setenv("GPM_DOWNLOAD", "1")
    with pytest.raises(Stop):
        load_images("omniglot", "train")
    assert calls == [(str(data_root), True, True)]


def test_area_downsampling_then_threshold_is_exact():
    ink = torch.rand(6, 105, 105, generator=torch.Generator().manual_seed(0)) < 0.5
    small = data._ink_28(ink)  # (6, 1, 28, 28) uint8
    exact = torch.nn.functional.adaptive_avg_pool2d(ink.unsqueeze(1).double(), (28, 28))
    assert torch.equal(data._binarize(small, "threshold", 0, "train")[0].bool(), exact > 0.5)
    assert (small.double() / 255 - exact).abs().max() <= 0.5 / 255 + 1e-12


@pytest.mark.skipif(not (REAL_ROOT / "omniglot-py").exists() and not (REAL_ROOT / "omniglot").exists(),
                    reason="no Omniglot under GPM_DATA (or .data)")
def test_real_omniglot_split(monkeypatch):
    monkeypatch.setenv("GPM_DATA", str(REAL_ROOT))
    train, test = load_images("omniglot", "train"), load_images("omniglot", "test")
    assert train.images.shape[1:] == (1, 28, 28) and train.images.dtype == torch.uint8
    if train.meta["deviation"] is None:  # Burda et al.'s chardata.mat
        assert (len(train), len(test)) == (24345, 8070)
    else:  # the substitute: 1623 characters x drawings 1-15 / 16-20
        assert (len(train), len(test)) == (24345, 8115) == (1623 * 15, 1623 * 5)
        assert len(torch.unique(train.labels)) == len(torch.unique(test.labels)) == 1623
        assert "8,115" in train.meta["deviation"] and test.meta["deviation"] == train.meta["deviation"]
    assert set(torch.unique(train.images).tolist()) == {0, 1}
    assert 0.03 < train.as_float().mean() < 0.2  # ink is the minority: ink = 1


@pytest.mark.skipif(not (REAL_ROOT / "MNIST" / "raw").exists(), reason="no MNIST under GPM_DATA (or .data)")
def test_real_mnist_test_split(monkeypatch):
    monkeypatch.setenv("GPM_DATA", str(REAL_ROOT))
    test = load_images("mnist", "test", binarize="none")
    assert test.images.shape == (10000, 1, 28, 28) and test.meta["deviation"] is None
    assert test.labels[:4].tolist() == [7, 2, 1, 0]
    assert abs(test.as_float().mean().item() - 0.1325) < 1e-3


def test_binarization_modes():
    grey = load_images("synthetic", "train", binarize="none")
    assert grey.max_value == 255 and grey.images.max() > 1
    thr = load_images("synthetic", "train", binarize="threshold")
    assert torch.equal(thr.images, (grey.images >= 128).to(torch.uint8)) and thr.max_value == 1
    s1 = load_images("synthetic", "train", binarize="stochastic", binarize_seed=3)
    s2 = load_images("synthetic", "train", binarize="stochastic", binarize_seed=3)
    s3 = load_images("synthetic", "train", binarize="stochastic", binarize_seed=4)
    assert torch.equal(s1.images, s2.images) and not torch.equal(s1.images, s3.images)
    sub = load_images("synthetic", "train", train_subset=100)
    assert len(sub) == 100 and torch.equal(sub.images, load_images("synthetic", "train", train_subset=100).images)


def _toy(n=40, classes=5) -> ImageSet:
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return ImageSet(images, torch.arange(n) % classes, {"max_value": 255})


def test_episode_sampler_shapes_epochs_and_resume():
    s = EpisodeSampler(_toy(), T=4, batch_size=3, generator=torch.Generator().manual_seed(1))
    X = next(s)
    assert X.shape == (3, 4, 1, 2, 2) and X.dtype == torch.float32 and 0 <= X.min() <= X.max() <= 1
    seen = torch.cat([X[..., 0, 0, 0].flatten(), next(s)[..., 0, 0, 0].flatten(),
                      next(s)[..., 0, 0, 0].flatten()])
    assert len(torch.unique(seen)) == 36  # no image twice within an epoch (40 // 12 = 3 batches)
    state = s.state_dict()
    a = [next(s) for _ in range(5)]
    s2 = EpisodeSampler(_toy(), T=4, batch_size=3, generator=torch.Generator().manual_seed(99))
    s2.load_state_dict(state)
    assert all(torch.equal(x, y) for x, y in zip(a, [next(s2) for _ in range(5)]))
    fresh = [next(EpisodeSampler(_toy(), 4, 3, torch.Generator().manual_seed(1))) for _ in range(2)]
    assert torch.equal(fresh[0], fresh[1]) and torch.equal(fresh[0], X)
    with pytest.raises(ValueError, match="cannot fill one batch"):
        EpisodeSampler(_toy(), T=8, batch_size=6)


def test_test_episodes_are_fixed_by_seed():
    a, b = test_episodes(_toy(), 4, 3, seed=5), test_episodes(_toy(), 4, 3, seed=5)
    assert a.shape == (3, 4, 1, 2, 2) and torch.equal(a, b)
    assert not torch.equal(a, test_episodes(_toy(), 4, 3, seed=6))
    assert len(torch.unique(a[..., 0, 0, 0])) == 12  # distinct while the set allows
    assert test_episodes(_toy(), 4, 20, seed=5).shape[0] == 20  # repeats once exhausted


def test_class_episodes_use_n_classes():
    toy = _toy(n=40, classes=10)
    X = class_episodes(toy, T=12, n_classes=2, generator=torch.Generator().manual_seed(0), episodes=5)
    assert X.shape == (5, 12, 1, 2, 2)
    for ep in X:
        ids = (ep[:, 0, 0, 0] * 255).round().long()
        assert len(torch.unique(ids % 10)) == 2  # two classes per episode
        assert len(torch.unique(ids)) == 8  # all 8 images of the two classes, then repeats


def test_unwritten_queries_score_the_same_written_episodes():
    toy = _toy(n=60, classes=6)
    Xw, Xq = unwritten_query_episodes(toy, T=4, episodes=5, seed=3)
    assert torch.equal(Xw, test_episodes(toy, 4, 5, seed=3))  # the main metric's episodes
    ids_w = (Xw[..., 0, 0, 0] * 255).round().long()
    ids_q = (Xq[..., 0, 0, 0] * 255).round().long()
    assert torch.equal(ids_w % 6, ids_q % 6)  # same class
    for w, q in zip(ids_w, ids_q):
        assert not set(q.tolist()) & set(w.tolist())  # never an image written in the episode
