"""What every run shares: the device, determinism and seeds, checkpoints, and the one way
to load trained weights (`load_trained`).

A run is one (config, profile, seed). While it trains it lives in a run directory
(`runs/<experiment>/<profile>-seed<N>/checkpoint.pt`, written by `gpm_core.train`); when
it is finished, in `results/<experiment>/<profile>-seed<N>.json` with a small state_dict
beside it (`gpm_core.artifacts`). `stored_run` reads the weights from either; every module
that scores, analyses or renders a trained model goes through it.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import random
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import models
from .artifacts import ANALYSIS_SCHEMA, RESULT_SCHEMA, atomic_write_bytes
from .config import Config, ConfigError, config_from_dict
from .datasets import ImageSet, load_images

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = 1
SEED_PRIME = 1_000_003  # the multiplier of `mix_seed`, and the offset of the 'unseen' query seeds


class CheckpointError(RuntimeError):
    """A checkpoint or stored result that cannot be read, or a run folder in use."""


class RunLockedError(CheckpointError):
    """Another process holds the lock of a run directory."""


class ConfigMismatchError(RuntimeError):
    """A run directory whose checkpoint belongs to another config, seed or thread count."""


# --------------------------------------------------------------------------------------
# Device, determinism, seeds
# --------------------------------------------------------------------------------------

def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" (cuda if torch sees a GPU, else cpu), "cpu", "cuda" or "cuda:N"; raises
    ConfigError for any other name or for cuda without a GPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"--device {device}: unknown device; use cpu, cuda, cuda:N or auto") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {device}: this package runs on cpu or cuda; use --device cpu, cuda or auto")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} was asked but torch sees no GPU; use --device cpu (or auto)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: torch sees {torch.cuda.device_count()} GPU(s); use cuda:0 .. "
                          f"cuda:{torch.cuda.device_count() - 1}")
    return device


def set_determinism(seed: int) -> None:
    """Seed every RNG and ask torch for deterministic kernels (warn where it has none)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if "torch._inductor.config" in sys.modules or not hasattr(torch._C, "_set_deterministic_algorithms"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:  # the same, minus importing torch._inductor (3 s) to set a torch.compile flag
        # (train.compile imports it later, and inductor reads the flag when it compiles)
        torch._C._set_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def mix_seed(*keys: int) -> int:
    """One seed from integer keys, e.g. (analysis seed, classes, L): independent of the order
    in which the cells of an analysis run, and the same on every platform."""
    seed = 0
    for k in keys:
        seed = (seed * SEED_PRIME + int(k)) % (2**62)
    return seed


def rng_state() -> dict:
    """Every global RNG state (torch CPU and CUDA, numpy, python), for a checkpoint."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
    }
    return state


def set_rng_state(state: dict) -> None:
    """Inverse of `rng_state`."""
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
    random.setstate((state["python"][0], tuple(state["python"][1]), state["python"][2]))
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


# --------------------------------------------------------------------------------------
# Data and model of a run
# --------------------------------------------------------------------------------------

def default_run_dir(cfg: Config, seed: int) -> Path:
    return Path("runs") / cfg.experiment / f"{cfg.profile}-seed{seed}"


def load_data(cfg: Config, split: str) -> ImageSet:
    """The `split` ("train" or "test") of the dataset of `cfg.data`."""
    return load_images(cfg.data.dataset, split, cfg.data)


def build_model(model_cfg, image_shape):
    """`gpm_core.models.build_model` for images of `image_shape` (C, H, W)."""
    return models.build_model(model_cfg, image_shape=tuple(image_shape))


# --------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------

@contextlib.contextmanager
def run_lock(run_dir: Path):
    """Hold an exclusive lock on `run_dir` (fcntl.flock of run_dir/lock, released when the
    process ends, even by SIGKILL) for the body of the `with`; raises RunLockedError at
    once when another process holds it. Two writers of one run folder would interleave
    checkpoints and result files."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        f = open(run_dir / "lock", "a+")
    except OSError as e:
        raise CheckpointError(f"cannot use the run folder {run_dir} ({e.strerror or e}); "
                              f"pass --run-dir a writable folder") from None
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise RunLockedError(f"{run_dir} is in use by {holder}; wait for that run to finish, or "
                                 f"pass --run-dir (and --results-dir) to run elsewhere") from None
        f.seek(0)
        f.truncate()
        f.write(f"PID {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def save_checkpoint(path: Path, state: dict) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint written by `train`, or raise CheckpointError saying what to do."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train the run first "
                              f"(python -m gpm_core train CONFIG ...)")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise CheckpointError(
            f"checkpoint {path} is unreadable ({type(e).__name__}: {str(e)[:200]}); delete it, or "
            f"pass --fresh to restart this run from step 0, or --run-dir to train elsewhere") from None
    if not isinstance(ck, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(ck).__name__}, not a gpm_core checkpoint "
                              f"(a dict); delete it, or pass --fresh to restart this run from step 0")
    missing = {"format", "config_hash", "config", "seed", "step", "model", "optimizer"} - set(ck)
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {sorted(missing)}: not a gpm_core checkpoint "
                              f"(or an older format); delete it or pass --fresh")
    return ck


# --------------------------------------------------------------------------------------
# Trained weights: the one loader
# --------------------------------------------------------------------------------------

@dataclass
class StoredRun:
    """The weights of a run and what was stored with them. `result` is the result JSON (None
    when read from a run directory), `checkpoint` the checkpoint (None when the weights
    came from the small state_dict beside a result)."""

    cfg: Config
    seed: int
    step: int
    state_dict: dict
    result: dict | None = None
    checkpoint: dict | None = None


def stored_run(run: dict | str | Path) -> StoredRun:
    """Read a trained run: `run` is a run directory (its checkpoint), a result JSON path, or
    a result dict with its "path". A result's weights are the `.pt` state_dict beside it,
    else the checkpoint in its run_dir; raises FileNotFoundError when neither is there."""
    if not isinstance(run, dict) and Path(run).is_dir():
        ck = load_checkpoint(Path(run) / CHECKPOINT)
        return StoredRun(config_from_dict(ck["config"]), ck["seed"], ck["step"], ck["model"], checkpoint=ck)
    if not isinstance(run, dict):
        run = read_result_json(run)
    sd_info = run.get("state_dict") or {}
    pt = Path(run["path"]).parent / sd_info["path"] if sd_info.get("path") else None
    ckpt = Path(run.get("run_dir") or "") / CHECKPOINT
    try:
        cfg = config_from_dict(run["config"])
    except ConfigError as e:
        raise CheckpointError(f"{run.get('path')}: its stored config is not valid ({e}); the file was "
                              f"edited or comes from another version of gpm_core") from None
    if pt is not None and pt.exists():
        try:
            state = torch.load(pt, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"{pt} is unreadable ({type(e).__name__}: {str(e)[:120]}); restore it (git "
                                  f"checkout), or rebuild it from the run's checkpoint with evaluate RUN_DIR "
                                  f"--write") from None
        if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
            raise CheckpointError(f"{pt} does not hold a state_dict (a dict of tensors); restore it (git checkout)")
        return StoredRun(cfg, run["seed"], run["steps"], state, result=run)
    if run.get("run_dir") and ckpt.exists():
        ck = load_checkpoint(ckpt)
        return StoredRun(cfg, run["seed"], run["steps"], ck["model"], result=run, checkpoint=ck)
    raise FileNotFoundError(f"{run.get('path')}: no weights stored beside the result "
                            f"({sd_info.get('skipped', 'no state_dict .pt')}) and no checkpoint {ckpt}; "
                            f"retrain with `{run.get('command', 'python -m gpm_core train ...')}`")


def read_result_json(path) -> dict:
    """A training result JSON (schema RESULT_SCHEMA) with its "path", or CheckpointError
    saying what is wrong with the file (missing, truncated, not an object, an analysis or
    another schema, fields missing) and what to do."""
    path = Path(path)
    if path.suffix != ".json" or not path.is_file():
        raise FileNotFoundError(f"{path} is neither a run directory nor a result JSON; runs are "
                                f"under runs/<experiment>/, results under results/<experiment>/")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); the file is truncated or damaged: restore it "
                              f"(git checkout), or rewrite it from its run with evaluate RUN_DIR --write") from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"{path} holds a JSON {type(doc).__name__}, not a result object; pass a "
                              f"results/<experiment>/<profile>-seed<N>.json written by train")
    if doc.get("schema") == ANALYSIS_SCHEMA:
        raise CheckpointError(f"{path} is an analysis of trained models (schema {ANALYSIS_SCHEMA}), not a "
                              f"training result; evaluate the model results it names under 'sources'")
    if doc.get("schema") != RESULT_SCHEMA:
        raise CheckpointError(f"{path} has schema {doc.get('schema')!r}, not {RESULT_SCHEMA!r}; pass a result "
                              f"JSON written by train")
    missing = [k for k in ("experiment", "config", "seed", "steps") if k not in doc]
    if missing:
        raise CheckpointError(f"{path} lacks {missing}: not a complete result JSON; restore it (git checkout)")
    return doc | {"path": str(path)}


def model_from_state(cfg: Config, state_dict: dict, image_shape, device="cpu") -> torch.nn.Module:
    """The model of `cfg` for images of `image_shape`, with `state_dict` (a float16 one from
    results/ is cast to float32), on `device`, in eval mode. Raises CheckpointError when the
    weights do not fit the config's model (they come from another config)."""
    model = build_model(cfg.model, image_shape)
    try:
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()})
    except RuntimeError as e:
        first = str(e).split("\n")[1].strip() if "\n" in str(e) else str(e)[:200]
        raise CheckpointError(f"the stored weights do not fit the model of experiment {cfg.experiment} "
                              f"(profile {cfg.profile}) as its config describes it ({first[:200]}); the "
                              f"weights and the config come from different runs: retrain, or restore "
                              f"the matching pair (git checkout)") from None
    return model.to(device).eval()


def load_trained(run: dict | str | Path, device="cpu"):
    """(model, config) of a trained run (`stored_run`), in eval mode on `device`."""
    s = stored_run(run)
    if s.result is not None:
        image_shape = s.result["data"]["test"]["image_shape"]
    else:  # a checkpoint does not store the image shape; the data do
        image_shape = load_data(s.cfg, "test").image_shape
    return model_from_state(s.cfg, s.state_dict, image_shape, device), s.cfg
