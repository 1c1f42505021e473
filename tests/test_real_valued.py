"""Real-valued images (GPM Table 1's CIFAR10 column, Table 3): the configs, the CIFAR10 /
CIFAR100 / CelebA loaders and the whole CLI pipeline on small fabricated files.

The data are not on the project's machines, so the tests write tiny files in the exact
layouts torchvision reads (`cifar-10-batches-py/`, `cifar-100-python/`, `celeba/`) into a
temporary GPM_DATA and run `python -m gpm_core train configs/<config>.toml --profile quick`
on them, in process. torchvision checks the md5 of every file against its own table; the
tests put the md5s of the fabricated files in that table (monkeypatch), so the loaders run
exactly the code a user with the real files runs.
"""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import warnings

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from gpm_core import datasets as data
from gpm_core.__main__ import main
from gpm_core.artifacts import RESULT_SCHEMA
from gpm_core.config import load_config
from gpm_core.datasets import DataCorruptError, load_images
from gpm_core.episodes import unwritten_query_episodes
from conftest import REPO

pytestmark = pytest.mark.usefixtures("no_fault")

REAL_VALUED = ["table1_cifar10_gpm", "table1_cifar10_dkm", "table3_cifar100_gpm", "table3_cifar100_dkm",
               "table3_celeba_gpm", "table3_celeba_dkm", "table3_fashion_mnist_gpm", "table3_fashion_mnist_dkm"]
FABRICATED = [name for name in REAL_VALUED if "fashion" not in name]
TRAIN_SIZES = {"fashion_mnist": 60000, "cifar10": 50000, "cifar100": 50000, "celeba": 162770}
CELEBA_ATTRS = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young").split()


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _smooth_images(rng, n: int, h: int, w: int) -> np.ndarray:
    """n smooth colour images (n, h, w, 3) uint8: random 4 x 4 colours upsampled."""
    low = torch.from_numpy(rng.random((n, 3, 4, 4), dtype=np.float32))
    x = torch.nn.functional.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)
    return (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def _pickle(path, obj) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def fabricate_cifar10(root, monkeypatch, n_train: int = 150, n_test: int = 100) -> dict:
    """cifar-10-batches-py/ with data_batch_1..5, test_batch and batches.meta; torchvision's
    md5 table patched to these files. Returns {file: (N, 3072) uint8 data}."""
    rng = np.random.default_rng(0)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    cls = torchvision.datasets.CIFAR10
    written = {}
    sizes = [("data_batch_%d" % i, n_train // 5) for i in range(1, 6)] + [("test_batch", n_test)]
    for name, n in sizes:
        pixels = _smooth_images(rng, n, 32, 32).transpose(0, 3, 1, 2).reshape(n, 3072)  # channel-major rows
        _pickle(folder / name, {"batch_label": name, "labels": [int(i) % 10 for i in range(n)],
                                "data": pixels, "filenames": [f"img_{i}.png" for i in range(n)]})
        written[name] = pixels
    _pickle(folder / "batches.meta", {"label_names": ["airplane", "automobile", "bird", "cat", "deer",
                                                      "dog", "frog", "horse", "ship", "truck"],
                                      "num_cases_per_batch": n_train // 5, "num_vis": 3072})
    monkeypatch.setattr(cls, "train_list", [[n, _md5(folder / n)] for n, _ in sizes[:5]])
    monkeypatch.setattr(cls, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / "batches.meta")})
    return written


def fabricate_cifar100(root, monkeypatch, n_train: int = 150, n_test: int = 100) -> dict:
    """cifar-100-python/ with train, test and meta (fine and coarse labels)."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    cls = torchvision.datasets.CIFAR100
    written = {}
    for name, n in (("train", n_train), ("test", n_test)):
        pixels = _smooth_images(rng, n, 32, 32).transpose(0, 3, 1, 2).reshape(n, 3072)
        fine = [int(i) % 7 * 13 for i in range(n)]  # 7 of the 100 classes, 14+ images each
        _pickle(folder / name, {"filenames": [f"img_{i}.png" for i in range(n)], "batch_label": name,
                                "fine_labels": fine, "coarse_labels": [f // 5 for f in fine],
                                "data": pixels})
        written[name] = (pixels, fine)
    _pickle(folder / "meta", {"fine_label_names": [f"fine{i}" for i in range(100)],
                              "coarse_label_names": [f"coarse{i}" for i in range(20)]})
    monkeypatch.setattr(cls, "train_list", [["train", _md5(folder / "train")]])
    monkeypatch.setattr(cls, "test_list", [["test", _md5(folder / "test")]])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": _md5(folder / "meta")})
    return written


def fabricate_celeba(root, monkeypatch, n_train: int = 140, n_valid: int = 10, n_test: int = 60) -> list:
    """celeba/ with img_align_celeba/*.jpg (178 x 218, as the aligned faces) and the five text
    files torchvision.datasets.CelebA reads. The test split has one identity with a single
    image (as in CelebA). Returns [(file name, split, identity)]."""
    rng = np.random.default_rng(2)
    folder = root / "celeba"
    (folder / "img_align_celeba").mkdir(parents=True)
    rows = []
    for i in range(n_train + n_valid + n_test):
        split = 0 if i < n_train else 1 if i < n_train + n_valid else 2
        j = i - n_train - n_valid
        identity = (i % 20 + 1 if split == 0 else 100 + i % 3 if split == 1
                    else 999 if j == 0 else 200 + j % 6)  # 999: the single-image identity
        rows.append((f"{i + 1:06d}.jpg", split, identity))
    pixels = _smooth_images(rng, len(rows), 218, 178)
    for (name, _, _), image in zip(rows, pixels):
        Image.fromarray(image).save(folder / "img_align_celeba" / name, quality=90)
    n = len(rows)
    (folder / "list_eval_partition.txt").write_text("".join(f"{f} {s}\n" for f, s, _ in rows))
    (folder / "identity_CelebA.txt").write_text("".join(f"{f} {k}\n" for f, _, k in rows))
    (folder / "list_bbox_celeba.txt").write_text(
        f"{n}\nimage_id x_1 y_1 width height\n" + "".join(f"{f}    95  71 226 313\n" for f, _, _ in rows))
    (folder / "list_landmarks_align_celeba.txt").write_text(
        f"{n}\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y "
        f"rightmouth_x rightmouth_y\n" + "".join(f"{f} 69  109  106  113   77  142   73  152  108  154\n"
                                                 for f, _, _ in rows))
    (folder / "list_attr_celeba.txt").write_text(
        f"{n}\n{' '.join(CELEBA_ATTRS)} \n"
        + "".join(f + "".join(f" {1 if (k + a) % 3 == 0 else -1:2d}" for a in range(40)) + "\n"
                  for f, _, k in rows))
    cls = torchvision.datasets.CelebA
    monkeypatch.setattr(cls, "file_list", [(fid, md5 if f.endswith(".zip") else _md5(folder / f), f)
                                           for fid, md5, f in cls.file_list])
    return rows


FABRICATE = {"cifar10": fabricate_cifar10, "cifar100": fabricate_cifar100, "celeba": fabricate_celeba}


# ------------------------------------------------------------------------------- configs

@pytest.mark.parametrize("name", REAL_VALUED)
def test_paper_profile_follows_appendix_c(name):
    """GPM appendix C for real-valued data: 256 filters, a 128 x 512 memory, the DMoL,
    weight decay 1e-3, clipping at 10, lr x 0.99995 once per epoch; GPM's alphas 1e-4 for
    W0+ (alpha_weight) and 5e-5 for M0+, M+ (alpha_memory)."""
    cfg = load_config(REPO / "configs" / f"{name}.toml", "paper")
    m, d, t = cfg.model, cfg.data, cfg.train
    assert (m.likelihood, m.filters, m.memory_slots, m.code_size) == ("dmol", 256, 128, 512)
    assert d.binarize == "none" and d.episode_length == 32
    assert (t.weight_decay, t.grad_clip, t.lr_decay) == (1e-3, 10.0, 0.99995)
    assert t.lr_decay_every == TRAIN_SIZES[d.dataset] // (t.batch_size * d.episode_length)  # one epoch
    if m.kind == "gpm":
        assert (m.alpha_weight, m.alpha_memory, m.sigma_xi, m.pinv_steps) == (1e-4, 5e-5, 0.5, 7)
    assert d.image_size == {"fashion_mnist": 28, "cifar10": 32, "cifar100": 32, "celeba": 192}[d.dataset]
    quick = load_config(REPO / "configs" / f"{name}.toml", "quick")
    assert quick.train.lr_decay_every == TRAIN_SIZES[d.dataset] // (quick.train.batch_size * 32)


# ------------------------------------------------------------------------------- loaders

def test_cifar10_layout_loads_pixel_exact(data_root, monkeypatch):
    written = fabricate_cifar10(data_root, monkeypatch)
    train, test = load_images("cifar10", "train", binarize="none"), load_images("cifar10", "test", binarize="none")
    assert train.images.shape == (150, 3, 32, 32) and test.images.shape == (100, 3, 32, 32)
    assert train.images.dtype == torch.uint8 and train.max_value == 255 and train.meta["binarize"] == "none"
    # the rows of a batch are channel-major 3 x 32 x 32 images, in batch order
    assert torch.equal(train.images[:30].reshape(30, -1), torch.from_numpy(written["data_batch_1"]))
    assert torch.equal(test.images.reshape(100, -1), torch.from_numpy(written["test_batch"]))
    assert test.labels.tolist() == [i % 10 for i in range(100)]
    assert "CIFAR10" in train.meta["source"] and train.meta["deviation"] is None


def test_cifar100_layout_loads_fine_labels(data_root, monkeypatch):
    written = fabricate_cifar100(data_root, monkeypatch)
    test = load_images("cifar100", "test", binarize="none")
    assert torch.equal(test.images.reshape(100, -1), torch.from_numpy(written["test"][0]))
    assert test.labels.tolist() == written["test"][1]  # fine labels, not coarse


def test_damaged_cifar_file_is_named(data_root, monkeypatch):
    fabricate_cifar10(data_root, monkeypatch)
    bad = data_root / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:-10])  # truncated: its md5 no longer matches
    with pytest.raises(DataCorruptError, match=str(bad)):
        load_images("cifar10", "train", binarize="none")


def test_celeba_layout_loads_centre_square(data_root, monkeypatch):
    rows = fabricate_celeba(data_root, monkeypatch)
    test = load_images("celeba", "test", image_size=178, binarize="none")  # crop 178, no resize: the exact pixels
    test_rows = [r for r in rows if r[1] == 2]
    assert test.images.shape == (len(test_rows), 3, 178, 178)
    with Image.open(data_root / "celeba" / "img_align_celeba" / test_rows[5][0]) as im:
        full = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)  # (3, 218, 178)
    assert torch.equal(test.images[5], full[:, 20:198, :])  # the central 178 x 178 square
    assert test.labels.tolist() == [k for _, _, k in test_rows]  # identities
    paper = load_images("celeba", "test", image_size=192, binarize="none")  # GPM Table 3's size
    assert paper.images.shape == (len(test_rows), 3, 192, 192)
    assert "192 x 192" in paper.meta["source"] and paper.meta["deviation"].startswith("CelebA preprocessing")
    small = load_images("celeba", "train", image_size=32, binarize="none")
    assert small.images.shape == (140, 3, 32, 32) and "148 x 148" in small.meta["source"]
    cached = sorted(p.name for p in (data_root / "gpm_cache").iterdir())
    assert cached == ["celeba178-crop178-v2-test.pt", "celeba192-crop178-v2-test.pt",
                      "celeba32-crop148-v2-train.pt"]
    assert torch.equal(load_images("celeba", "test", image_size=192, binarize="none").images, paper.images)  # from the cache


def test_celeba_missing_text_file_is_named(data_root, monkeypatch):
    fabricate_celeba(data_root, monkeypatch)
    (data_root / "celeba" / "identity_CelebA.txt").unlink()
    with pytest.raises(DataCorruptError, match="identity_CelebA.txt"):
        load_images("celeba", "test", image_size=32, binarize="none")


def test_unseen_queries_with_a_single_image_class():
    """A class with one image (a CelebA identity) gets a query of another unwritten image,
    with a warning; every other query is an unwritten image of its own class."""
    labels = torch.tensor([0] * 10 + [1] * 10 + [2])
    imageset = data.ImageSet(torch.arange(21, dtype=torch.uint8).view(21, 1, 1, 1), labels, {"max_value": 255})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Xw, Xq = unwritten_query_episodes(imageset, T=4, episodes=30, seed=0)
    w, q = (Xw * 255).round().long().view(30, 4), (Xq * 255).round().long().view(30, 4)
    for e in range(30):
        assert not set(q[e].tolist()) & set(w[e].tolist())
        for t in range(4):
            if int(w[e, t]) != 20:
                assert labels[q[e, t]] == labels[w[e, t]]
    n = int((w == 20).sum())
    assert n > 0 and any(f"{n} of 120 written images" in str(c.message) for c in caught)


# ------------------------------------------------------------------------------- the CLI

@pytest.fixture
def one_thread():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _train_quick(name, tmp_path):
    code = main(["train", str(REPO / "configs" / f"{name}.toml"), "--profile", "quick", "--seed", "0",
                 "--device", "cpu", "--threads", "1", "--no-progress",
                 "--run-dir", str(tmp_path / "runs" / name), "--results-dir", str(tmp_path / "results"),
                 "--set", "train.steps=2", "--set", "train.batch_size=1", "--set", "train.log_every=1",
                 "--set", "train.checkpoint_every=2", "--set", "eval.episodes=2"])
    assert code == 0
    path = tmp_path / "results" / name / "quick-seed0.json"
    with open(path) as f:
        return json.load(f), path


@pytest.mark.parametrize("name", FABRICATED)
def test_config_trains_end_to_end_on_fabricated_files(name, data_root, monkeypatch, tmp_path, one_thread):
    """The config, unchanged but for 2 steps of 1 episode and 2 test episodes, trains and evaluates through
    `python -m gpm_core train` on files in torchvision's layout and writes a result JSON with
    provenance and a finite bits/dim."""
    dataset = load_config(REPO / "configs" / f"{name}.toml", "quick").data.dataset
    FABRICATE[dataset](data_root, monkeypatch)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r, path = _train_quick(name, tmp_path)
    # CelebA's single-image identity has no unwritten image of its own to be queried with
    orphan = [str(c.message) for c in caught if "unwritten_query_episodes" in str(c.message)]
    assert bool(orphan) == (dataset == "celeba"), orphan
    assert r["schema"] == RESULT_SCHEMA and (r["experiment"], r["dataset"]) == (name, dataset)
    assert r["steps"] == 2 and len(r["loss_curve"]) == 2 and r["likelihood"] == "dmol"
    for key in ("bits_per_dim", "unseen_bits_per_dim"):
        m = r["metrics"][key]
        assert m["unit"] == "bits/dim" and m["n"] == 2 and math.isfinite(m["value"]) and m["value"] > 0
    nll = r["metrics"]["nll_cond"]["value"]  # bits/dim is the same bound per dimension, in bits
    assert r["metrics"]["bits_per_dim"]["value"] == pytest.approx(nll / (3 * 32 * 32 * math.log(2)))
    for key in ("git_commit", "git_dirty", "torch_version", "device", "timestamp", "command",
                "config_hash", "wall_time_s", "data"):
        assert key in r
    assert r["config"]["model"]["filters"] == 16 and r["config"]["data"]["image_size"] == 32
    assert r["data"]["train"]["source"].startswith("torchvision.datasets.")
    assert "$GPM_DATA" in r["data"]["train"]["source"]  # no machine-specific path
    assert path.with_suffix(".pt").exists()


@pytest.mark.parametrize("name", ["table3_fashion_mnist_gpm", "table3_fashion_mnist_dkm"])
def test_fashion_mnist_config_trains_on_the_real_files(name, tmp_path, one_thread):
    if not (data.data_root() / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip("FashionMNIST is not under GPM_DATA")
    r, _ = _train_quick(name, tmp_path)
    assert r["dataset"] == "fashion_mnist" and r["data"]["train"]["n"] == 60000
    m = r["metrics"]["bits_per_dim"]
    assert math.isfinite(m["value"]) and m["value"] == pytest.approx(
        r["metrics"]["nll_cond"]["value"] / (28 * 28 * math.log(2)))


# ------------------------------------------------------------------------------- chapter helpers

def test_dmol_mean_matches_the_mean_of_samples():
    """`real_valued.dmol_mean` (the images the chapter shows) against the average of many
    samples of the same RGB mixture: 3 components, PixelCNN++ channel coupling, narrow
    logistics (so the mean of a component is its coupled centre)."""
    from gpm_core.likelihoods import DiscretizedLogisticMixture
    from gpm_core.report.real_valued import dmol_mean

    lik = DiscretizedLogisticMixture(3)
    g = torch.Generator().manual_seed(0)
    out = torch.randn(1, lik.out_channels(3), 2, 2, generator=g) * 0.5  # (1, 30, 2, 2)
    out[:, 3 + 9:3 + 18] = -6.0  # log scales: narrow components
    torch.manual_seed(0)
    samples = lik.sample(out.expand(8000, -1, -1, -1)).mean(0, keepdim=True)  # standard error < 0.006
    assert torch.allclose(dmol_mean(lik, out), samples, atol=0.025)


def test_pixel_histogram_bits_by_hand():
    from gpm_core.baselines import pixel_histogram_bits

    train = torch.tensor([0, 0, 255, 7], dtype=torch.uint8).view(4, 1, 1, 1)
    test = torch.tensor([0, 9], dtype=torch.uint8).view(2, 1, 1, 1)
    p0, p9 = (2 + 1) / (4 + 256), (0 + 1) / (4 + 256)  # Laplace: one pseudo-count per bin
    expected = -(math.log(p0) + math.log(p9)) / 2 / math.log(2)
    assert pixel_histogram_bits(train, test) == pytest.approx(expected)
    assert pixel_histogram_bits(train, test, per_pixel=False) == pytest.approx(expected)  # one position
