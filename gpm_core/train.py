"""Resumable training: `python -m gpm_core train CONFIG --profile quick --seed 0`.

One run = one (config, profile, seed), in a run directory (default
`runs/<experiment>/<profile>-seed<N>/`) that holds `checkpoint.pt`. The loop is the one of
both papers: sample B episodes of T random training images, minimise the model's loss
with Adam (weight decay, gradient-norm clipping, optional step decay of the learning rate;
GPM appendix C). At the end the model is scored on the fixed test episodes
(`gpm_core.evaluate`) and `results/<experiment>/<profile>-seed<N>.json` is written
(`gpm_core.artifacts`).

Guarantees:
- Checkpoints every `train.checkpoint_every` steps, written atomically (temp file in the
  same folder, fsync, os.replace), holding the model, optimizer, scheduler, every RNG state
  (torch CPU and CUDA, numpy, python, the episode sampler), the step, the loss curve and
  the config hash.
- Re-running the same command resumes from the last checkpoint; on CPU the resumed run is
  bitwise identical to an uninterrupted one (same batches, same noise, same weights).
- A checkpoint of another config is never resumed (`--fresh` or another `--run-dir`), nor,
  on a CPU, one written with another torch thread count (`--threads`): float sums depend
  on it, so the result would not be bitwise the uninterrupted one.
- A run directory is locked (`runs.run_lock`) for the whole run: a second process on it
  stops at once.
- Before training, the results folder must be writable and must not hold a result JSON of
  another config at this run's path (`artifacts.check_result_slot`; `overwrite=True`,
  `--overwrite`, replaces it on purpose); both are checked again when the result is written.
- A non-finite loss, metric or gradient stops the run before the optimizer step, naming
  the step and the quantity; the last good checkpoint is left as it was.

Testing hook: the environment variable GPM_FAULT ("nan_loss@STEP", "nan_grad@STEP",
"kill@STEP", comma-separated) injects a NaN into the loss or a gradient at that step, or
SIGKILLs the process right after that step; only the tests use it.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .artifacts import RESULT_SCHEMA, check_result_slot, check_writable, provenance, result_path, save_result
from .config import Config, config_from_dict, config_hash, to_dict
from .datasets import ImageSet
from .episodes import EpisodeSampler, test_episodes
from .models import MEMORY_PRIOR
from .evaluate import evaluate_model, score_episodes
from .runs import (CHECKPOINT, CHECKPOINT_FORMAT, ConfigMismatchError, build_model, default_run_dir,
                   load_checkpoint, load_data, resolve_device, rng_state, run_lock, save_checkpoint,
                   set_determinism, set_rng_state)

CURVE_POINTS = 200  # loss-curve entries kept in the result JSON


class TrainingDiverged(RuntimeError):
    """A non-finite loss, metric or gradient; the last good checkpoint is kept."""


# --------------------------------------------------------------------------------------
# Helpers of the loop
# --------------------------------------------------------------------------------------

def _faults() -> dict[str, int]:
    out = {}
    for item in filter(None, os.environ.get("GPM_FAULT", "").split(",")):
        kind, _, step = item.partition("@")
        out[kind.strip()] = int(step)
    return out


def _downsample(curve: list[dict], n: int = CURVE_POINTS) -> list[dict]:
    if len(curve) <= n:
        return curve
    idx = np.unique(np.linspace(0, len(curve) - 1, n).round().astype(int))
    return [curve[i] for i in idx]


def _param_groups(model: torch.nn.Module, tc) -> list[dict]:
    """One group, or two when train.memory_lr_scale != 1: the memory prior's mean (M0 / R0)
    at memory_lr_scale * lr, the rest at lr (one group keeps older checkpoints resumable)."""
    if tc.memory_lr_scale == 1.0:
        return [{"params": list(model.parameters())}]
    named = list(model.named_parameters())
    memory = [p for n, p in named if n in MEMORY_PRIOR]
    rest = [p for n, p in named if n not in MEMORY_PRIOR]
    if not memory:  # a VAE has no memory
        return [{"params": rest}]
    return [{"params": rest}, {"params": memory, "lr": tc.lr * tc.memory_lr_scale}]


def _first_nonfinite_grad(model: torch.nn.Module) -> str | None:
    for name, p in model.named_parameters():
        if p.grad is not None and not torch.isfinite(p.grad).all():
            return name
    return None


# --------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------

def train(cfg: Config, seed: int = 0, device="auto", run_dir=None, results_dir="results",
          fresh: bool = False, progress: bool = True, overwrite: bool = False) -> dict:
    """Train (or resume) one run and write its result JSON; returns the result dict.
    `overwrite` replaces a result JSON of another config at this run's path (else refused,
    before training starts)."""
    device = resolve_device(device)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg, seed)
    check_writable(result_path(cfg.experiment, cfg.profile, seed, results_dir).parent)  # now, not after training
    with run_lock(run_dir):
        return _train(cfg, seed, device, run_dir, results_dir, fresh, progress, overwrite)


def _train(cfg: Config, seed: int, device: torch.device, run_dir: Path, results_dir, fresh: bool,
           progress: bool, overwrite: bool) -> dict:
    set_determinism(seed)
    ckpt_path = run_dir / CHECKPOINT
    chash = config_hash(cfg)
    if fresh and ckpt_path.exists():
        ckpt_path.unlink()
    ck = load_checkpoint(ckpt_path) if ckpt_path.exists() else None
    if ck is not None and (ck["config_hash"] != chash or ck["seed"] != seed):
        raise ConfigMismatchError(
            f"{ckpt_path} belongs to config {ck['config_hash']} (experiment "
            f"{ck['config'].get('experiment')}, profile {ck['config'].get('profile')}, seed {ck['seed']}), "
            f"not to the one asked for, {chash} (experiment {cfg.experiment}, profile {cfg.profile}, "
            f"seed {seed}); pass --fresh to discard that checkpoint, or --run-dir to train elsewhere")
    threads = torch.get_num_threads()
    if (ck is not None and device.type == "cpu" and ck["step"] < cfg.train.steps
            and ck.get("threads", threads) != threads):
        raise ConfigMismatchError(
            f"{ckpt_path} was written with {ck['threads']} torch CPU threads, this process has {threads}; "
            f"a resumed CPU run is bitwise the uninterrupted one only with the same count: resume with "
            f"--threads {ck['threads']}, or pass --fresh to restart from step 0")
    # a result of another config at this run's path: refused now, not after training
    check_result_slot(result_path(cfg.experiment, cfg.profile, seed, results_dir), chash, overwrite)

    train_set = load_data(cfg, "train")
    model = build_model(cfg.model, image_shape=train_set.image_shape).to(device)
    tc = cfg.train
    if tc.channels_last:
        model = model.to(memory_format=torch.channels_last)
    forward = torch.compile(model) if tc.compile else model  # same parameters, same state_dict
    optimizer = torch.optim.Adam(_param_groups(model, tc), lr=tc.lr, weight_decay=tc.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=tc.lr_decay_every, gamma=tc.lr_decay)
    on_device = ImageSet(train_set.images.to(device), train_set.labels, train_set.meta)  # no copy on CPU
    sampler = EpisodeSampler(on_device, cfg.data.episode_length, tc.batch_size,
                             torch.Generator().manual_seed(seed))  # data order: its own stream
    step, curve, window, elapsed, resumes, test_curve = 0, [], {}, 0.0, 0, []
    X_curve = None
    if tc.eval_every:  # a fixed subset of the final evaluation's test episodes
        X_curve = test_episodes(load_data(cfg, "test"), cfg.data.episode_length, cfg.eval.episodes,
                                cfg.eval.seed)[:cfg.eval.curve_episodes].to(device)
    if ck is not None:
        model.load_state_dict(ck["model"])
        optimizer.load_state_dict(ck["optimizer"])
        scheduler.load_state_dict(ck["scheduler"])
        sampler.load_state_dict(ck["sampler"])
        set_rng_state(ck["rng"])
        step, curve, window = ck["step"], list(ck["curve"]), dict(ck["window"])
        elapsed, resumes = ck["elapsed_s"], ck["resumes"] + (ck["step"] < tc.steps)
        test_curve = list(ck.get("test_curve", []))
        if step < tc.steps:
            print(f"resuming {run_dir} from step {step} of {tc.steps}", file=sys.stderr)
    last_good = ck["step"] if ck is not None else None

    def checkpoint() -> None:
        nonlocal last_good
        save_checkpoint(ckpt_path, {
            "format": CHECKPOINT_FORMAT, "config_hash": chash, "config": to_dict(cfg), "seed": seed,
            "step": step, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "sampler": sampler.state_dict(), "rng": rng_state(),
            "curve": curve, "window": window, "elapsed_s": train_seconds(),
            "resumes": resumes, "device": str(device), "test_curve": test_curve,
            "threads": torch.get_num_threads(),
        })
        last_good = step

    def diverged(what: str, value) -> TrainingDiverged:
        kept = (f"the last good checkpoint {ckpt_path} (step {last_good}) is kept as it was"
                if last_good is not None else "no checkpoint had been written yet")
        return TrainingDiverged(
            f"step {step + 1}: {what} is {value}; training stopped before the update, {kept}. "
            f"Lower train.lr, or lower a fixed model.alpha_* (or set it to \"auto\": above "
            f"2/sigma_max^2 the pseudo-inverse diverges), and restart with --fresh")

    def train_seconds() -> float:  # training time so far, test-curve scoring excluded
        return elapsed + time.time() - t0 - eval_spent

    def score_test_curve() -> None:
        nonlocal eval_spent
        t_eval = time.time()
        test_curve.append({"step": step, "train_time_s": round(train_seconds(), 3),
                           "nll_cond": score_episodes(model, X_curve, cfg.eval.seed)})
        eval_spent += time.time() - t_eval

    faults = _faults()
    params = [p for p in model.parameters() if p.requires_grad]
    clip = tc.grad_clip if tc.grad_clip > 0 else math.inf
    t0, eval_spent = time.time(), 0.0
    model.train()
    bar = tqdm(total=tc.steps, initial=step, disable=not progress, desc=cfg.experiment,
               mininterval=2.0, dynamic_ncols=True, file=sys.stderr)
    try:
        while step < tc.steps:
            X = next(sampler)  # (B, T, C, H, W)
            out = forward(X)
            loss = out["loss"]
            if faults.get("nan_loss") == step + 1:
                loss = loss * float("nan")
            values = {"loss": float(loss.detach())}
            values.update({k: float(v) for k, v in out.items() if k != "loss" and torch.is_tensor(v) and v.numel() == 1})
            for name, v in values.items():
                if not math.isfinite(v):
                    raise diverged(f"the {'loss' if name == 'loss' else 'metric ' + repr(name)}", v)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if faults.get("nan_grad") == step + 1:
                params[0].grad.fill_(float("nan"))
            gnorm = torch.nn.utils.clip_grad_norm_(params, clip)
            if not torch.isfinite(gnorm):
                bad = _first_nonfinite_grad(model)
                where = (f"first non-finite: {bad}" if bad else
                         "every gradient is finite but their norm overflows float32")
                raise diverged(f"the gradient norm ({where})", float(gnorm))
            optimizer.step()
            scheduler.step()
            step += 1
            for name, v in values.items():
                window[name] = window.get(name, 0.0) + v
            window["_n"] = window.get("_n", 0) + 1
            if step % tc.log_every == 0 or step == tc.steps:
                n = window.pop("_n")
                curve.append({"step": step, **{k: v / n for k, v in window.items()},
                              "lr": optimizer.param_groups[0]["lr"]})
                window = {}
            if tc.eval_every and (step % tc.eval_every == 0 or step == tc.steps):
                score_test_curve()
            bar.update(1)
            if step % 10 == 0:
                bar.set_postfix(loss=f"{values['loss']:.3f}", refresh=False)
            if step % tc.checkpoint_every == 0 or step == tc.steps:
                checkpoint()
            if faults.get("kill") == step:
                os.kill(os.getpid(), signal.SIGKILL)
    except KeyboardInterrupt:
        bar.close()
        print(f"\ninterrupted at step {step}; the checkpoint of step {last_good} resumes it: "
              f"run the same command again", file=sys.stderr)
        raise
    bar.close()
    return _finish(cfg, seed, model, device, run_dir, results_dir, curve, step,
                   train_seconds(), resumes, train_set.meta, test_curve, overwrite)


def _finish(cfg, seed, model, device, run_dir, results_dir, curve, step, train_time, resumes,
            train_meta, test_curve=(), overwrite: bool = False) -> dict:
    t0 = time.time()
    test_set = load_data(cfg, "test")
    ev = evaluate_model(model, test_set, cfg, device)
    eval_time = time.time() - t0
    result = {
        "schema": RESULT_SCHEMA,
        "experiment": cfg.experiment, "description": cfg.description,
        "model": cfg.model.kind, "likelihood": cfg.model.likelihood, "dataset": cfg.data.dataset,
        "profile": cfg.profile, "seed": seed,
        **ev,
        "config": to_dict(cfg), "config_hash": config_hash(cfg),
        **provenance(device),
        "wall_time_s": round(train_time + eval_time, 3), "train_time_s": round(train_time, 3),
        "eval_time_s": round(eval_time, 3), "resumes": resumes,
        "steps": step, "final_loss": curve[-1]["loss"] if curve else None,
        "loss_curve": _downsample(curve),
        **({"test_curve": list(test_curve)} if test_curve else {}),
        "data": {"train": train_meta, "test": test_set.meta},
        "deviation": train_meta.get("deviation"),
        "run_dir": str(run_dir),
    }
    path = save_result(result, results_dir, state_dict=model.state_dict(), overwrite=overwrite)
    result["path"] = str(path)
    return result


def write_result(run_dir, device="auto", results_dir="results", overwrite: bool = False) -> Path:
    """Rebuild a finished run's result JSON from its checkpoint (evaluate --write); a result
    of another config at its path is replaced only with `overwrite`."""
    device = resolve_device(device)
    with run_lock(run_dir):
        return _write_result(run_dir, device, results_dir, overwrite)


def _write_result(run_dir, device, results_dir, overwrite: bool) -> Path:
    ck = load_checkpoint(Path(run_dir) / CHECKPOINT)
    cfg = config_from_dict(ck["config"])
    set_determinism(ck["seed"])
    train_meta = load_data(cfg, "train").meta
    model = build_model(cfg.model, image_shape=train_meta["image_shape"]).to(device)
    model.load_state_dict(ck["model"])
    result = _finish(cfg, ck["seed"], model, device, run_dir, results_dir, list(ck["curve"]),
                     ck["step"], ck["elapsed_s"], ck["resumes"], train_meta, ck.get("test_curve", ()), overwrite)
    return Path(result["path"])
