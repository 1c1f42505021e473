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

import datetime
import io
import json
import math
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

RESULT_SCHEMA = "gpm_core.result/1"
# An analysis of trained models (denoising, capacity, timing): the same file layout,
# results/<experiment>/<profile>-seed<N>.json, with `sources` naming the model results used.
ANALYSIS_SCHEMA = "gpm_core.analysis/1"
STATE_DICT_LIMIT = 1 << 20  # bytes: larger state_dicts stay in the run's checkpoint only

# Units of the metrics returned by `model.evaluate` (anything else: "").
UNITS = {
    "nll_cond": "nats/image", "recon": "nats/image", "kl_w": "nats/image", "kl_m": "nats/image",
    "nll_cond_with_kl_m": "nats/image", "elbo_cond": "nats/image", "cosine": "cosine similarity",
    "nll_cond_iid": "nats/image", "nll_cond_shared": "nats/image",
    "bits_per_dim": "bits/dim",
}

REPO = Path(__file__).resolve().parent.parent


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then os.replace (never a half file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def result_path(experiment: str, profile: str, seed: int, results_dir="results") -> Path:
    return Path(results_dir) / experiment / f"{profile}-seed{seed}.json"


def save_result(result: dict, results_dir="results", state_dict: dict | None = None) -> Path:
    """Write `result` (see the module docstring) as JSON, and `state_dict` beside it as a
    `.pt` when it fits in STATE_DICT_LIMIT bytes (float32, else float16); otherwise record why
    not. Returns the JSON path."""
    path = result_path(result["experiment"], result["profile"], result["seed"], results_dir)
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
    """How an analysis names a model result it used: path, experiment, profile, seed,
    config hash and the commit that trained it."""
    return {k: result.get(k) for k in ("path", "experiment", "model", "dataset", "profile", "seed",
                                       "config_hash", "git_commit")}


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


def load_analyses(experiment: str | None = None, results_dir="results") -> list[dict]:
    """Every analysis JSON (schema ANALYSIS_SCHEMA), as `load_results` does for runs."""
    return load_results(experiment, results_dir, schema=ANALYSIS_SCHEMA)


def load_results(experiment: str | None = None, results_dir="results", schema: str = RESULT_SCHEMA) -> list[dict]:
    """Every result JSON under `results_dir` (of one experiment if given) with the given
    `schema` (runs by default), sorted by experiment, profile, seed. Each dict gains
    "path", the file it was read from."""
    root = Path(results_dir)
    pattern = f"{experiment}/*.json" if experiment else "*/*.json"
    out = []
    for path in sorted(root.glob(pattern)):
        with open(path) as f:
            r = json.load(f)
        if r.get("schema") != schema:
            continue
        r["path"] = str(path)
        out.append(r)
    out.sort(key=lambda r: (r["experiment"], r.get("profile", ""), r.get("seed", 0)))
    return out
