"""Bad inputs and faults (issue 19): each one is a one-line refusal with a documented exit
code, or a correct result; none is a traceback, a misleading hint or a silent wrong result.

Sized for CI on 2 cores: tiny synthetic runs of 2-4 steps, the CLI called in-process
(`gpm_core.__main__.main`), fabricated IDX files for the data-root cases.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import struct

import pytest
import torch

from gpm_core import datasets as data
from gpm_core import dkm, gpm
from gpm_core.__main__ import EXIT_CODES, main
from gpm_core.artifacts import ResultConflictError, result_path
from gpm_core.config import ConfigError, apply_overrides, config_hash, load_config
from gpm_core.datasets import DatasetNotFoundError, load_images
from gpm_core.pinv import PinvDivergenceError, ben_cohen_pinv, make_pinv
from gpm_core.runs import CHECKPOINT, ConfigMismatchError, load_checkpoint, run_lock
from gpm_core.train import TrainingDiverged, train
from conftest import REPO, tiny_toml

pytestmark = pytest.mark.usefixtures("no_fault")


@pytest.fixture
def threads():
    """torch's CPU thread count, restored after the test (train --threads sets it)."""
    n = torch.get_num_threads()
    yield n
    torch.set_num_threads(n)


def _one_line_error(err: str) -> str:
    """The CLI's stderr must be exactly one "error: ..." line (no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


def _train_args(toml, tmp_path, run="run", results="results", *extra):
    return ["train", str(toml), "--profile", "quick", "--device", "cpu", "--run-dir", str(tmp_path / run),
            "--results-dir", str(tmp_path / results), "--no-progress", *extra]


@pytest.fixture
def finished(tmp_path, capsys):
    """A finished tiny run: (toml, result path)."""
    toml = tiny_toml(tmp_path / "t.toml", steps=2, checkpoint_every=2)
    assert main(_train_args(toml, tmp_path)) == 0
    capsys.readouterr()
    return toml, result_path("tiny", "quick", 0, tmp_path / "results")


# --------------------------------------------------------------------------------------
# The silent ones
# --------------------------------------------------------------------------------------

def test_result_of_another_config_is_refused_before_training(tmp_path, capsys, finished):
    toml, path = finished
    before = path.read_bytes()
    old = json.loads(before)["config_hash"]
    new = config_hash(apply_overrides(load_config(toml, "quick"), ["train.lr=0.01"]))
    # a smoke run with --set on the same results folder, another run folder
    assert main(_train_args(toml, tmp_path, "smoke", "results", "--set", "train.lr=0.01")) == 5
    line = _one_line_error(capsys.readouterr().err)
    assert old in line and new in line and "--overwrite" in line and "--results-dir" in line
    assert path.read_bytes() == before
    assert not (tmp_path / "smoke" / CHECKPOINT).exists()  # refused before the first step
    # the same config may rewrite its own result (resumes, evaluate --write)
    assert main(_train_args(toml, tmp_path, "again")) == 0
    # and --overwrite replaces it on purpose
    assert main(_train_args(toml, tmp_path, "smoke", "results", "--set", "train.lr=0.01", "--overwrite")) == 0
    assert json.loads(path.read_text())["config_hash"] == new


def test_result_of_another_config_is_refused_at_write_time_too(tmp_path, finished):
    from gpm_core.artifacts import save_result

    _, path = finished
    doc = json.loads(path.read_text())
    with pytest.raises(ResultConflictError, match="--overwrite"):
        save_result(doc | {"config_hash": "0" * 12}, tmp_path / "results")


def test_a_locked_run_folder_is_refused(tmp_path, capsys):
    toml = tiny_toml(tmp_path / "t.toml", steps=2)
    with run_lock(tmp_path / "run"):  # as a concurrent `train` of the same run folder holds it
        assert main(_train_args(toml, tmp_path)) == 5
    line = _one_line_error(capsys.readouterr().err)
    assert f"{tmp_path / 'run'} is in use by PID {os.getpid()}" in line and "--run-dir" in line
    assert main(_train_args(toml, tmp_path)) == 0  # released


def test_resume_with_another_thread_count_is_refused(tmp_path, monkeypatch, threads):
    cfg = load_config(tiny_toml(tmp_path / "t.toml", steps=6, checkpoint_every=2), "quick")
    kw = dict(seed=0, device="cpu", run_dir=tmp_path / "run", results_dir=tmp_path / "results", progress=False)
    torch.set_num_threads(1)
    monkeypatch.setenv("GPM_FAULT", "nan_loss@4")  # stops the run after the checkpoint of step 2
    with pytest.raises(TrainingDiverged):
        train(cfg, **kw)
    monkeypatch.delenv("GPM_FAULT")
    assert load_checkpoint(tmp_path / "run" / CHECKPOINT)["threads"] == 1
    torch.set_num_threads(2)
    with pytest.raises(ConfigMismatchError, match="written with 1 torch CPU threads, this process has 2.*--threads 1"):
        train(cfg, **kw)
    torch.set_num_threads(1)
    assert train(cfg, **kw)["steps"] == 6


@pytest.mark.parametrize("dataset,size", [("mnist", 32), ("omniglot", 32), ("cifar10", 28), ("fashion_mnist", 64)])
def test_image_size_that_the_loader_ignores_is_refused(tmp_path, dataset, size):
    cfg = load_config(tiny_toml(tmp_path / "t.toml"), "quick")
    overrides = [f"data.dataset={dataset}", f"data.image_size={size}"]
    if dataset == "cifar10":
        overrides += ["data.binarize=none", "model.likelihood=dmol"]
    with pytest.raises(ConfigError, match=f"data.image_size = {size}: {dataset} images are"):
        apply_overrides(cfg, overrides)


def test_image_size_on_mnist_exits_2(tmp_path, capsys):
    toml = tiny_toml(tmp_path / "t.toml")
    assert main(_train_args(toml, tmp_path, "run", "results", "--set", "data.dataset=mnist",
                            "--set", "data.image_size=32")) == 2
    assert "set data.image_size = 28" in _one_line_error(capsys.readouterr().err)


def _idx_files(n: int, seed: int) -> dict[str, bytes]:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8)
    return {"images-idx3-ubyte": struct.pack(">IIII", 2051, n, 28, 28) + images.numpy().tobytes(),
            "labels-idx1-ubyte": struct.pack(">II", 2049, n) + labels.numpy().tobytes()}


def _fabricate_mnist_gz(root, monkeypatch, splits=("train", "t10k")) -> dict[str, bytes]:
    """Tiny MNIST .gz files under root/MNIST/raw, with the md5 tables patched to match."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    unpacked, gz_md5, idx_md5 = {}, {}, {}
    for i, prefix in enumerate(("train", "t10k")):
        for kind, blob in _idx_files(12 if prefix == "train" else 8, i).items():
            name = f"{prefix}-{kind}"
            unpacked[name] = blob
            idx_md5[name] = (len(blob), hashlib.md5(blob).hexdigest())
            if prefix in splits:
                (raw / f"{name}.gz").write_bytes(gzip.compress(blob, mtime=0))
                gz_md5[f"{name}.gz"] = hashlib.md5((raw / f"{name}.gz").read_bytes()).hexdigest()
    monkeypatch.setattr(data, "_gz_md5", lambda folder: gz_md5)
    monkeypatch.setitem(data.IDX_MD5, "MNIST", idx_md5)
    return unpacked


def _tree(root) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*"))}


def test_read_only_data_root_is_never_written(data_root, monkeypatch, tmp_path):
    unpacked = _fabricate_mnist_gz(data_root, monkeypatch)
    for folder in (data_root / "MNIST" / "raw", data_root / "MNIST", data_root):
        folder.chmod(0o555)  # read-only by its mode: root (as in CI containers) could write anyway
    try:
        assert data.read_only(data_root)
        before = _tree(data_root)
        train_set = load_images("mnist", "train")
        assert train_set.image_shape == (1, 28, 28) and len(train_set) == 12
        assert _tree(data_root) == before  # nothing unpacked or cached in the data root
        cached = tmp_path / "cache" / "MNIST" / "raw" / "train-images-idx3-ubyte"
        assert cached.read_bytes() == unpacked["train-images-idx3-ubyte"]
    finally:
        for folder in (data_root, data_root / "MNIST", data_root / "MNIST" / "raw"):
            folder.chmod(0o755)
    assert not data.read_only(data_root)


def test_writable_data_root_still_gets_the_unpacked_files(data_root, monkeypatch):
    _fabricate_mnist_gz(data_root, monkeypatch)
    assert len(load_images("mnist", "test")) == 8
    assert (data_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists()


@pytest.mark.parametrize("results_dir", ["reuslts", "a_file"])
def test_status_on_a_missing_results_folder_exits_2(tmp_path, capsys, results_dir):
    (tmp_path / "a_file").write_text("not a folder")
    assert main(["status", "--results-dir", str(tmp_path / results_dir)]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert f"--results-dir {tmp_path / results_dir} is not a folder" in line


def test_pinv_without_check_says_loudly_what_it_does_not_check():
    A = torch.randn(6, 9, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    alpha = 2.02 / float(torch.linalg.matrix_norm(A, ord=2)) ** 2  # just above the safe range
    doc = " ".join(ben_cohen_pinv.__doc__.split())
    assert "check=False checks nothing about the values" in doc and "FINITE GARBAGE" in doc
    assert "finite garbage" in " ".join(make_pinv.__doc__.split())
    with pytest.raises(PinvDivergenceError, match="too large"):  # check=True (the default) refuses it
        ben_cohen_pinv(A, alpha=alpha)


def test_dkm_write_refuses_a_u0_that_is_not_positive_definite():
    Z, R0 = torch.randn(2, 5, 6), torch.randn(4, 6)
    for U0 in (-torch.eye(4), torch.zeros(4, 4), torch.triu(torch.ones(4, 4))):
        with pytest.raises(ValueError, match="U0 is not a symmetric positive definite covariance"):
            dkm.write(Z, R0, U0, 0.5)
    assert " ".join(dkm.write.__doc__.split()).count("finite wrong numbers") == 1  # check=False, said
    R, U, W = dkm.write(Z, R0, torch.eye(4), 0.5)
    assert R.shape == (2, 4, 6) and U.shape == (2, 4, 4) and W.shape == (2, 5, 4)


# --------------------------------------------------------------------------------------
# The unclear ones: one line, what to do, a documented exit code
# --------------------------------------------------------------------------------------

def test_train_subset_that_cannot_fill_a_batch_exits_2(tmp_path, capsys):
    toml = tiny_toml(tmp_path / "t.toml")  # batches of 2 episodes x T = 4 images
    assert main(_train_args(toml, tmp_path, "run", "results", "--set", "data.train_subset=5")) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "data.train_subset = 5 images cannot fill one batch" in line and "at least 8" in line


@pytest.mark.parametrize("device,text", [("gpu", "--device gpu: unknown device; use cpu, cuda"),
                                         ("cuda", "--device cuda was asked but torch sees no GPU; use --device cpu"),
                                         ("mps", "this package runs on cpu or cuda")])
def test_bad_device_exits_2(tmp_path, capsys, monkeypatch, device, text):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    args = _train_args(tiny_toml(tmp_path / "t.toml"), tmp_path)
    args[args.index("--device") + 1] = device
    assert main(args) == 2
    assert text in _one_line_error(capsys.readouterr().err)


@pytest.mark.parametrize("value", ["-1", "0", "two"])
def test_bad_thread_count_exits_2(tmp_path, capsys, value, threads):
    with pytest.raises(SystemExit) as e:
        main(_train_args(tiny_toml(tmp_path / "t.toml"), tmp_path, "run", "results", "--threads", value))
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --threads: {value!r} is not a thread count; pass an integer >= 1" in err
    assert "Traceback" not in err


def test_missing_mnist_test_files_are_named(data_root, monkeypatch):
    _fabricate_mnist_gz(data_root, monkeypatch, splits=("train",))
    assert len(load_images("mnist", "train")) == 12  # the train split needs only its own files
    with pytest.raises(DatasetNotFoundError) as e:
        load_images("mnist", "test")
    msg = str(e.value)
    assert str(data_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte") in msg and "GPM_DATA" in msg
    assert "download=True to download it" not in msg  # torchvision's message, which names no file
    assert isinstance(e.value, EXIT_CODES[4][0])


@pytest.mark.parametrize("obj", [[1, 2, 3], torch.zeros(3), 5, {"model": {}}])
def test_checkpoint_holding_the_wrong_object_exits_5(tmp_path, capsys, obj):
    (tmp_path / "run").mkdir()
    torch.save(obj, tmp_path / "run" / CHECKPOINT)
    assert main(_train_args(tiny_toml(tmp_path / "t.toml"), tmp_path)) == 5
    line = _one_line_error(capsys.readouterr().err)
    assert "not a gpm_core checkpoint" in line and ("--fresh" in line)


def test_unwritable_results_folder_is_found_before_training(tmp_path, capsys):
    (tmp_path / "results").write_text("a file where the results folder should be")
    assert main(_train_args(tiny_toml(tmp_path / "t.toml"), tmp_path)) == 5
    line = _one_line_error(capsys.readouterr().err)
    assert "cannot write" in line and "--results-dir" in line
    assert not (tmp_path / "run" / CHECKPOINT).exists()


def test_disk_full_leaves_no_temp_file_and_says_so(tmp_path, capsys, monkeypatch):
    import gpm_core.artifacts as artifacts

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(artifacts.os, "fsync", full)
    assert main(_train_args(tiny_toml(tmp_path / "t.toml", steps=2), tmp_path)) == 5
    line = _one_line_error(capsys.readouterr().err)
    assert f"cannot write {tmp_path / 'run' / CHECKPOINT} (No space left on device); free disk space" in line
    assert not [p.name for p in (tmp_path / "run").iterdir() if ".tmp" in p.name]


def test_divergence_hint_points_the_right_way(tmp_path, monkeypatch):
    monkeypatch.setenv("GPM_FAULT", "nan_loss@2")
    cfg = load_config(tiny_toml(tmp_path / "t.toml", steps=3), "quick")
    with pytest.raises(TrainingDiverged) as e:
        train(cfg, device="cpu", run_dir=tmp_path / "run", results_dir=tmp_path / "results", progress=False)
    msg = str(e.value)
    assert "lower a fixed model.alpha_*" in msg and "raise model.alpha" not in msg
    assert EXIT_CODES[3][0] == (TrainingDiverged,)


def test_overflowing_input_hint_does_not_suggest_auto_when_it_is_auto():
    with pytest.raises(PinvDivergenceError) as e:
        ben_cohen_pinv(torch.full((3, 4), 1e30))
    msg = str(e.value)
    assert "overflows torch.float32" in msg and "scale A down" in msg and "alpha='auto'" not in msg


@pytest.mark.parametrize("A,err,text", [
    (torch.randn(5), ValueError, "takes matrices (..., m, n), got shape (5,)"),
    (torch.tensor(1.0), ValueError, "got shape ()"),
    (torch.ones(3, 4, dtype=torch.int64), TypeError, "needs a floating-point tensor, got torch.int64"),
])
def test_pinv_refuses_what_is_not_a_float_matrix(A, err, text):
    with pytest.raises(err) as e:
        ben_cohen_pinv(A)
    assert text in str(e.value)


@pytest.mark.parametrize("shape", [(0, 3), (3, 0), (0, 0), (0, 2, 3)])
def test_pinv_of_an_empty_matrix_is_empty(shape):
    A = torch.zeros(shape)
    X = ben_cohen_pinv(A)
    assert X.shape == torch.linalg.pinv(A).shape


@pytest.mark.parametrize("case,text", [
    ("C", "code sizes differ"), ("dtype", "is torch.float64 on cpu but"), ("T0", "has T = 0 codes"),
])
def test_memory_writes_refuse_mismatched_inputs(case, text):
    Z, M0 = torch.randn(2, 5, 6), torch.randn(4, 6)
    if case == "C":
        Z = torch.randn(2, 5, 7)
    elif case == "dtype":
        Z = Z.double()
    else:
        Z = torch.randn(2, 0, 6)
    pinv = make_pinv("ben_cohen")
    with pytest.raises(ValueError, match=re.escape(text)):
        gpm.write(Z, M0, pinv, pinv)
    with pytest.raises(ValueError, match=re.escape(text)):
        dkm.write(Z, M0, torch.eye(4), 0.5)
    with pytest.raises(ValueError, match=r"U0 must be \(4, 4\)"):
        dkm.write(torch.randn(2, 5, 6), M0, torch.eye(3), 0.5)


def _evaluate(path, capsys) -> tuple[int, str]:
    code = main(["evaluate", str(path), "--device", "cpu"])
    return code, _one_line_error(capsys.readouterr().err) if code else ""


def test_evaluate_refuses_damaged_or_foreign_result_files(tmp_path, capsys, finished):
    _, path = finished
    doc = json.loads(path.read_text())
    bad = tmp_path / "bad"
    bad.mkdir()
    cases = {
        "truncated": (path.read_text()[:200], "is not valid JSON"),
        "list": ("[1, 2]", "holds a JSON list, not a result object"),
        "schema": (json.dumps({"schema": "other/1", "experiment": "x"}), "has schema 'other/1'"),
        "analysis": (json.dumps({"schema": "gpm_core.analysis/1", "experiment": "x"}),
                     "is an analysis of trained models"),
    }
    for name, (text, expected) in cases.items():
        (bad / f"{name}.json").write_text(text)
        code, line = _evaluate(bad / f"{name}.json", capsys)
        assert code == 5 and expected in line, (name, line)
        assert "retrain" not in line and "train it again" not in line
    # a corrupt .pt beside an intact JSON
    pt = path.with_suffix(".pt")
    good_pt = pt.read_bytes()
    pt.write_bytes(good_pt[:100])
    code, line = _evaluate(path, capsys)
    assert code == 5 and f"{pt} is unreadable" in line
    pt.write_bytes(good_pt)
    # a JSON whose config does not match its .pt
    doc["config"]["model"]["code_size"] = 9
    path.write_text(json.dumps(doc))
    code, line = _evaluate(path, capsys)
    assert code == 5 and "the stored weights do not fit the model" in line and "different runs" in line


def test_status_skips_and_names_a_corrupt_json(tmp_path, capsys, finished):
    _, path = finished
    broken = path.parent / "paper-seed0.json"
    broken.write_text('{"schema": "gpm_core.result/1", "experim')
    assert main(["status", "--results-dir", str(tmp_path / "results")]) == 0
    out = capsys.readouterr().out
    assert f"skipped {broken}: " in out and "| status |" in out


def test_exit_codes_are_in_help_and_readme(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    readme = (REPO / "README.md").read_text()
    assert "## Exit codes and refusals" in readme
    for code in ("2", "3", "4", "5", "130"):
        assert re.search(rf"^\s+{code}\s+\S", out, re.M), (code, out)
        assert f"| {code} |" in readme
    assert "a [profiles.X] table of the config" in " ".join(out.split())


def test_unknown_profile_error_lists_paper(tmp_path, capsys):
    assert main(_train_args(tiny_toml(tmp_path / "t.toml"), tmp_path)[:2] + ["--profile", "fast"]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "profile 'fast' is not in" in line and "quick" in line and "paper" in line
