"""Scoring a trained model on the fixed test episodes, and `python -m gpm_core evaluate RUN`.

The test episodes are `episodes.test_episodes(test set, T, EvalConfig.episodes, EvalConfig.seed)`:
the same images for every run, model and seed of an experiment. The model's own randomness
(writing noise, samples of W) for episode e is drawn after `torch.manual_seed(seed + e)`
(`episode_seed`), one episode per call inside `torch.random.fork_rng`: evaluating the same
weights twice gives the same numbers whatever the batching, and leaves the training RNG
untouched. (`EvalConfig.batch_size` only sets how many episodes move to the device at once.)
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict
from pathlib import Path

import torch

from .artifacts import UNITS, atomic_write_bytes, provenance
from .config import Config
from .datasets import ImageSet
from .episodes import test_episodes, unwritten_query_episodes
from .runs import SEED_PRIME, load_data, model_from_state, resolve_device, set_determinism, stored_run


def _summary(values: torch.Tensor) -> dict:
    v = values.double()
    n = v.numel()
    return {"mean": v.mean().item(), "sd": v.std().item() if n > 1 else 0.0, "n": n,
            "min": v.min().item(), "max": v.max().item()}


def episode_seed(seed: int, e: int, query: bool = False) -> int:
    """The seed of the model's randomness for test episode e (a separate range for the
    'unseen' queries, so the two paths never share noise)."""
    return seed + e + (SEED_PRIME if query else 0)


def evaluate_model(model: torch.nn.Module, test_set: ImageSet, cfg: Config, device="cpu") -> dict:
    """Score `model` on the fixed test episodes of `cfg`.

    Returns {"metrics": {name: {"value", "unit", "sd", "n"}}, "per_episode": {name: summary},
    "eval": {"episodes", "T", "seed"}}. `value` is the mean over episodes of the per-episode
    values returned by `model.evaluate(X)` (each already per image, e.g. nll_cond in
    nats/image).
    """
    device = torch.device(device)
    T = cfg.data.episode_length
    X_all = test_episodes(test_set, T, cfg.eval.episodes, cfg.eval.seed)  # (E, T, C, H, W)
    per = defaultdict(list)
    was_training = model.training
    model.eval()
    devices = [device] if device.type == "cuda" else []
    seed, bs = cfg.eval.seed, cfg.eval.batch_size
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        for start in range(0, len(X_all), bs):
            chunk = X_all[start:start + bs].to(device)
            for i in range(len(chunk)):
                torch.manual_seed(episode_seed(seed, start + i))
                out = model.evaluate(chunk[i:i + 1])
                for name, v in out.items():
                    per[name].append(torch.as_tensor(v).detach().double().cpu().reshape(-1))
        # The same bound for images NOT written to memory: write the same test episodes,
        # score other images of the same classes (metrics prefixed "unseen_"; needs labels).
        if hasattr(model, "write") and test_set.labels is not None:
            Xw_all, Xq_all = unwritten_query_episodes(test_set, T, cfg.eval.episodes, seed)
            for start in range(0, len(Xw_all), bs):
                Xw, Xq = Xw_all[start:start + bs].to(device), Xq_all[start:start + bs].to(device)
                for i in range(len(Xw)):
                    torch.manual_seed(episode_seed(seed, start + i, query=True))
                    out = model.evaluate(Xw[i:i + 1], X_query=Xq[i:i + 1])
                    for name in ("nll_cond", "recon", "kl_w", "nll_cond_with_kl_m", "cosine", "bits_per_dim"):
                        if name in out:
                            per["unseen_" + name].append(torch.as_tensor(out[name]).double().cpu().reshape(-1))
    model.train(was_training)
    units = {**UNITS, **getattr(model, "metric_units", {})}
    metrics, summaries = {}, {}
    for name, chunks in per.items():
        s = _summary(torch.cat(chunks))
        summaries[name] = s
        unit = units.get(name.removeprefix("unseen_"), "")
        metrics[name] = {"value": s["mean"], "unit": unit, "sd": s["sd"], "n": s["n"]}
    return {"metrics": metrics, "per_episode": summaries,
            "eval": {"episodes": cfg.eval.episodes, "T": T, "seed": cfg.eval.seed}}


def score_episodes(model: torch.nn.Module, X_all: torch.Tensor, seed: int, metric: str = "nll_cond") -> float:
    """Mean of `metric` over the episodes X_all (E, T, C, H, W), each scored with the same
    per-episode seed as `evaluate_model` (so a curve point and the final score agree on the
    same weights). Leaves the global RNG and the model's train/eval mode as they were."""
    was_training = model.training
    model.eval()
    values = []
    devices = [X_all.device] if X_all.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        for e in range(len(X_all)):
            torch.manual_seed(episode_seed(seed, e))
            values.append(float(model.evaluate(X_all[e:e + 1])[metric].mean()))
    model.train(was_training)
    return sum(values) / len(values)


def format_metrics(metrics: dict, stored: dict | None = None) -> str:
    """A small text table of metrics (and the stored values they are compared with)."""
    lines = []
    for name, m in metrics.items():
        line = f"  {name:20s} {m['value']:12.4f} {m['unit']:18s} (sd {m['sd']:.4f}, n {m['n']})"
        if stored and name in stored:
            old = stored[name]["value"]
            same = math.isclose(old, m["value"], rel_tol=1e-6, abs_tol=1e-9)
            line += "  = stored" if same else f"  stored {old:.4f}"
        lines.append(line)
    return "\n".join(lines)


def evaluate_run(run: str | Path, device: str = "auto", write: bool = False) -> dict:
    """Re-evaluate a run: RUN is a run directory (its checkpoint) or a result JSON (its
    `.pt` state_dict, else the checkpoint in its run_dir; `runs.stored_run`). Prints the
    metrics; with `write` and a result JSON, replaces its metrics in place, the training
    provenance kept and this evaluation's recorded under "evaluated" (a run directory's
    result is rebuilt by `train.write_result`). Returns the evaluation."""
    run = Path(run)
    device = resolve_device(device)
    s = stored_run(run)
    cfg, seed = s.cfg, s.seed
    stored = s.result.get("metrics") if s.result is not None else None
    if s.result is None and s.step < cfg.train.steps:
        print(f"note: {run} is unfinished (step {s.step} of {cfg.train.steps}); evaluating it as is")
    set_determinism(seed)
    test_set = load_data(cfg, "test")
    model = model_from_state(cfg, s.state_dict, test_set.image_shape, device)
    t0 = time.time()
    ev = evaluate_model(model, test_set, cfg, device)
    eval_time = time.time() - t0
    print(f"{cfg.experiment} ({cfg.profile}, seed {seed}) on {len(test_set)} test images, "
          f"{cfg.eval.episodes} episodes of T = {cfg.data.episode_length}:")
    print(format_metrics(ev["metrics"], stored))
    if write and s.result is not None:
        # re-score the stored weights in place: the training provenance stays, the
        # evaluation's own provenance goes under "evaluated"
        stored_result = {k: v for k, v in s.result.items() if k != "path"}
        stored_result.update(ev)
        stored_result["eval_time_s"] = round(eval_time, 3)
        stored_result["evaluated"] = provenance(device)
        atomic_write_bytes(run, (json.dumps(stored_result, indent=1, allow_nan=True) + "\n").encode())
        print(f"rewrote the metrics of {run}")
    return ev
