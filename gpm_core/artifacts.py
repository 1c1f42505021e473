"""Result artifacts: one JSON per finished run, `results/<experiment>/<profile>-seed<N>.json`,
with an optional small state_dict beside it (`.pt`), and the provenance every artifact carries.

The book and `gpm_core.report` read results only through `load_results`; a number in the
book is a field of one of these files. The JSON schema (key `schema` = RESULT_SCHEMA):

    experiment, description, model, likelihood, dataset, profile, seed
    metrics        {name: {"value", "unit", "sd", "n"}}   the means over the test episodes
    per_episode    {name: {"mean", "sd", "n", "min", "max"}}
    eval           {"episodes", "T", "seed"}               the fixed test episodes
    config, config_hash                                    the full config (gpm_core.config)
    git_commit, git_dirty, torch_version, python_version, device, timestamp, command
    wall_time_s, steps, final_loss, loss_curve [{"step", "loss", "recon", ...}]
    data           {"train": meta, "test": meta}           gpm_core.datasets.ImageSet.meta
    deviation      text or null: how the data differ from the paper's
    state_dict     {"path", "dtype", "bytes"} or {"path": null, "skipped": why}
    run_dir
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import math
import os
import platform
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

RESULT_SCHEMA = "gpm_core.result/1"
# An analysis of trained models (denoising, capacity, timing): the same file layout,
# results/<experiment>/<profile>-seed<N>.json, with `sources` naming the model results used.
ANALYSIS_SCHEMA = "gpm_core.analysis/1"
# bytes: larger state_dicts stay in the run's checkpoint only. 3 MiB holds the 32-filter
# FashionMNIST models in float16 (2.2 MB; their figures need the weights), not the 256-filter ones.
STATE_DICT_LIMIT = 3 << 20

# Units of the metrics returned by `model.evaluate` (anything else: "").
UNITS = {
    "nll_cond": "nats/image", "recon": "nats/image", "kl_w": "nats/image", "kl_m": "nats/image",
    "nll_cond_with_kl_m": "nats/image", "elbo_cond": "nats/image", "cosine": "cosine similarity",
    "nll_cond_iid": "nats/image", "nll_cond_shared": "nats/image",
    "bits_per_dim": "bits/dim",
}

REPO = Path(__file__).resolve().parent.parent


class ArtifactWriteError(OSError):
    """A checkpoint or result that cannot be written (folder not writable, disk full)."""


class ResultConflictError(RuntimeError):
    """A result JSON of another config is where a run would write its own."""


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_info(device: str | torch.device = "cpu") -> dict:
    """The device a run used, by name: {"type", "name", "threads"}."""
    device = torch.device(device)
    if device.type == "cuda":
        return {"type": "cuda", "name": torch.cuda.get_device_name(device),
                "cuda": torch.version.cuda, "cpu": _cpu_name()}
    return {"type": "cpu", "name": _cpu_name(), "threads": torch.get_num_threads()}


def _command() -> str:
    """The command line that ran, as a user would retype it."""
    if not sys.argv:
        return ""
    prog = Path(sys.argv[0])
    head = "python -m gpm_core" if prog.name == "__main__.py" and prog.parent.name == "gpm_core" else prog.name
    return " ".join([head, *sys.argv[1:]])


def provenance(device: str | torch.device = "cpu") -> dict:
    """Where a result comes from: git commit (+ dirty flag), versions, device, time, command."""
    commit = _git("rev-parse", "HEAD")
    # dirty = the code that ran differs from the commit (package and configs, new files too)
    status = _git("status", "--porcelain", "--", "gpm_core", "configs", "pyproject.toml")
    return {
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": device_info(device),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": _command(),
    }


def _write_error(path: Path, e: OSError) -> ArtifactWriteError:
    return ArtifactWriteError(e.errno, f"cannot write {path} ({e.strerror or e}); free disk space or make "
                                       f"the folder writable, or pass --run-dir / --results-dir elsewhere")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace (never a half file).
    On failure (disk full, no permission) the temp file is removed and ArtifactWriteError
    says where and why; the previous file at `path` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise _write_error(path, e) from None
    except BaseException:  # KeyboardInterrupt mid-write: no orphaned temp file either
        tmp.unlink(missing_ok=True)
        raise


def check_writable(folder: Path) -> None:
    """Raise ArtifactWriteError unless files can be created in `folder` (before a long run):
    a temp file is created and removed in it, or, when it does not exist yet, in its nearest
    existing ancestor, which must be a folder. Leaves nothing behind."""
    folder = Path(folder).absolute()
    base = folder
    while not base.exists() and base != base.parent:
        base = base.parent
    if not base.is_dir():
        raise _write_error(folder, NotADirectoryError(20, f"{base} is a file, not a folder"))
    probe = base / f".write-test.tmp{os.getpid()}"
    try:
        probe.write_bytes(b"")
    except OSError as e:
        raise _write_error(folder, e) from None
    finally:
        with contextlib.suppress(OSError):  # a probe that was never created
            probe.unlink(missing_ok=True)


def check_result_slot(path: Path, chash: str, overwrite: bool = False) -> None:
    """Refuse (ResultConflictError) to replace the result JSON at `path` by one of config
    `chash` when the stored one has another config_hash (or cannot be read), unless
    `overwrite`. A re-run of the same config may rewrite it."""
    path = Path(path)
    if overwrite or not path.exists():
        return
    try:
        stored = json.loads(path.read_text())
        old = stored.get("config_hash") if isinstance(stored, dict) else None
    except (OSError, ValueError):
        old = "unreadable"
    if old != chash:
        raise ResultConflictError(
            f"{path} holds a result of config {old}, not of this run's config {chash}; pass "
            f"--results-dir elsewhere to keep it, or --overwrite to replace it on purpose")


def result_path(experiment: str, profile: str, seed: int, results_dir="results") -> Path:
    return Path(results_dir) / experiment / f"{profile}-seed{seed}.json"


def save_result(result: dict, results_dir="results", state_dict: dict | None = None,
                overwrite: bool = False) -> Path:
    """Write `result` (see the module docstring) as JSON, and `state_dict` beside it as a
    `.pt` when it fits in STATE_DICT_LIMIT bytes (float32, else float16); otherwise record why
    not. Returns the JSON path. A JSON of another config_hash already there is not replaced
    (ResultConflictError, `check_result_slot`) unless `overwrite`."""
    path = result_path(result["experiment"], result["profile"], result["seed"], results_dir)
    check_result_slot(path, result["config_hash"], overwrite)
    if state_dict is not None:
        result["state_dict"] = _save_small_state_dict(state_dict, path.with_suffix(".pt"))
    text = json.dumps(result, indent=1, sort_keys=False, allow_nan=True)
    atomic_write_bytes(path, (text + "\n").encode())
    return path


def _save_small_state_dict(state_dict: dict, path: Path) -> dict:
    for dtype in (torch.float32, torch.float16):
        sd = {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu())
              for k, v in state_dict.items()}
        buf = io.BytesIO()
        torch.save(sd, buf)
        if buf.tell() <= STATE_DICT_LIMIT:
            atomic_write_bytes(path, buf.getvalue())
            return {"path": path.name, "dtype": str(dtype).replace("torch.", ""), "bytes": buf.tell()}
    if path.exists():
        path.unlink()
    n = sum(v.numel() for v in state_dict.values())
    return {"path": None, "skipped": f"{n:,} numbers take {buf.tell():,} bytes even as float16, over "
                                     f"the {STATE_DICT_LIMIT:,}-byte limit for results/; the weights "
                                     f"stay in the run's checkpoint"}


def pack_bits(X: torch.Tensor) -> str:
    """Binary images (any shape; bool, or values in {0, 1}) as the hex string of their packed
    bits, row-major: how analysis artifacts store images in JSON."""
    bits = X.detach().cpu().reshape(-1)
    if bits.dtype != torch.bool:
        bits = bits > 0.5
    return np.packbits(bits.numpy()).tobytes().hex()


def unpack_bits(hexes: str, shape) -> torch.Tensor:
    """Inverse of `pack_bits`: a float32 tensor of 0/1 of `shape`."""
    n = math.prod(shape)
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(hexes), dtype=np.uint8))[:n]
    return torch.from_numpy(bits.astype(np.float32)).reshape(tuple(shape))


def source_info(result: dict) -> dict:
    """How an analysis names a model result it used: path (relative to the repository when
    it lies inside it, so artifacts name no machine's folders), experiment, profile, seed,
    config hash and the commit that trained it."""
    info = {k: result.get(k) for k in ("path", "experiment", "model", "dataset", "profile", "seed",
                                       "config_hash", "git_commit")}
    if info["path"] is not None and Path(info["path"]).is_absolute():
        path = Path(info["path"]).resolve()
        info["path"] = str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)
    return info


def save_analysis(experiment: str, profile: str, seed: int, payload: dict, *, config: dict,
                  sources: list[dict], device="cpu", wall_time_s: float | None = None,
                  description: str = "", results_dir="results") -> Path:
    """Write an analysis artifact (schema ANALYSIS_SCHEMA) to
    results/<experiment>/<profile>-seed<N>.json: `payload` (the measured values), the
    analysis `config` (as loaded from its TOML), `sources` (`source_info` of each model
    result used) and the provenance of this process. Returns the path."""
    doc = {"schema": ANALYSIS_SCHEMA, "experiment": experiment, "description": description,
           "profile": profile, "seed": seed, "config": config, "sources": sources,
           **provenance(device), "wall_time_s": wall_time_s, **payload}
    path = result_path(experiment, profile, seed, results_dir)
    atomic_write_bytes(path, (json.dumps(doc, indent=1, allow_nan=True) + "\n").encode())
    return path


def load_analyses(experiment: str | None = None, results_dir="results", skipped: list | None = None) -> list[dict]:
    """Every analysis JSON (schema ANALYSIS_SCHEMA), as `load_results` does for runs."""
    return load_results(experiment, results_dir, schema=ANALYSIS_SCHEMA, skipped=skipped)


def load_results(experiment: str | None = None, results_dir="results", schema: str = RESULT_SCHEMA,
                 skipped: list | None = None) -> list[dict]:
    """Every result JSON under `results_dir` (of one experiment if given) with the given
    `schema` (runs by default), sorted by experiment, profile, seed. Each dict gains
    "path", the file it was read from. A file that is not a readable JSON object is
    skipped: appended to `skipped` as (path, reason) when a list is given, else named in
    a warning."""
    root = Path(results_dir)
    pattern = f"{experiment}/*.json" if experiment else "*/*.json"
    out = []
    for path in sorted(root.glob(pattern)):
        try:
            with open(path) as f:
                r = json.load(f)
            if not isinstance(r, dict):
                raise ValueError(f"a JSON {type(r).__name__}, not an object")
        except (OSError, ValueError) as e:
            if skipped is None:
                warnings.warn(f"skipped {path}: {e}; restore it (git checkout) or delete it")
            elif (str(path), str(e)) not in skipped:
                skipped.append((str(path), str(e)))
            continue
        if r.get("schema") != schema:
            continue
        r["path"] = str(path)
        out.append(r)
    out.sort(key=lambda r: (r["experiment"], r.get("profile", ""), r.get("seed", 0)))
    return out
