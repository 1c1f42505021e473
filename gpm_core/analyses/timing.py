"""Running time of a training step: GPM vs DKM (GPM section 3.5, Fig. 3b) and vs a VAE.

Measuring, used by `benchmarks/fig3b.py` and `benchmarks/step_time.py`; `book/12_running_time`
renders the artifacts with `gpm_core.report.timing` (re-exported here, so that a benchmark
prints the table of what it just measured). A timed step is the step of `python -m gpm_core train`:
forward, the host read of the loss, backward, gradient-norm clipping and the Adam step, on
random binary episodes of the binarized-Omniglot configs' shape (1 x 28 x 28), with the nets
of `configs/table1_omniglot_{gpm,dkm}.toml`. The memory path alone (write, address, sample,
read, KL; forward and backward on random codes, no networks) is timed beside it, because
the O(K^3) and O(T) costs GPM avoids live there.

Every callable of one sweep is run round-robin (`time_interleaved`), so a process that
competes for the CPU slows all of them alike; each ratio is the median over rounds of the
per-round ratio, with its interquartile range as the spread. Absolute times only mean
something on an otherwise idle GPU; on a shared CPU read the ratios.

Artifacts (`gpm_core.artifacts.save_analysis`): `results/fig3b_running_time/<profile>-seed0.json`
and `results/step_time/<profile>-seed0.json`; their payloads are described in
`fig3b_sweep` and `step_time_payload`.
"""


from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Callable

import torch

from .. import dkm, gpm
from ..artifacts import REPO
from ..baselines import IMAGE_SHAPE, VAETwoSamples, build_baseline  # noqa: F401 (VAETwoSamples: benchmarks)
from ..config import ModelConfig, TrainConfig, load_config
from ..pinv import make_pinv
from ..report.timing import KINDS, device_label, fig3b_markdown, step_time_markdown  # noqa: F401 (benchmarks)

CONFIGS = {"gpm": "table1_omniglot_gpm", "dkm": "table1_omniglot_dkm"}

# (batch, warm-up rounds, timed rounds) of the default Fig. 3b sweep per device: on a
# 2-core CPU the whole sweep takes a few minutes on one thread.
FIG3B_DEFAULTS = {"cpu": (2, 2, 15), "cuda": (16, 5, 25)}
FIG3B_SWEEP = {"T_values": (8, 16, 32, 64, 128), "K_for_T": 32,
               "K_values": (16, 32, 48, 64), "T_for_K": 64,
               "steps_values": (1, 3, 5, 7, 9, 11, 13, 15), "steps_cases": ((64, 64), (128, 64))}


# --------------------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------------------

def omniglot_config(kind: str) -> tuple[ModelConfig, TrainConfig]:
    """The model and train sections of configs/table1_omniglot_<kind>.toml (paper profile)."""
    cfg = load_config(REPO / "configs" / f"{CONFIGS[kind]}.toml")
    return cfg.model, cfg.train


def random_episodes(B: int, T: int, device="cpu", image_shape=IMAGE_SHAPE, seed: int = 0):
    """Binary episodes (B, T, *image_shape) with about 20% ones (Omniglot's stroke density)."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(B, T, *image_shape, generator=g) < 0.2).float().to(device)


def sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_interleaved(steps: dict[str, Callable[[], None]], device, warmup: int, n: int,
                     progress: Callable[[str], None] | None = None) -> dict[str, list[float]]:
    """Run every callable warmup + n times round-robin: {name: n times in seconds}."""
    times = {name: [] for name in steps}
    for i in range(warmup + n):
        for name, step in steps.items():
            sync(device)
            t0 = time.perf_counter()
            step()
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
        if progress:
            progress(f"round {i + 1}/{warmup + n}")
    return times


def train_step(model: torch.nn.Module, X, train_cfg: TrainConfig, compile_: bool = False):
    """One step of `gpm_core.train`'s loop on the fixed episodes X, as a callable: forward,
    float(loss) (the loop reads the loss and metrics on the host), zero_grad, backward,
    clip_grad_norm_, Adam (lr, weight decay and clipping of `train_cfg`)."""
    opt = torch.optim.Adam(model.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)
    forward = torch.compile(model) if compile_ else model
    params = [p for p in model.parameters() if p.requires_grad]
    clip = train_cfg.grad_clip if train_cfg.grad_clip > 0 else float("inf")

    def step():
        out = forward(X)
        loss = out["loss"]
        [float(v.detach()) for v in out.values() if torch.is_tensor(v) and v.numel() == 1]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()

    return step


def memory_step(kind: str, cfg: ModelConfig, B: int, T: int, device="cpu", seed: int = 0):
    """The memory path alone as a callable, forward and backward, on random codes Z (B, T, C):
    GPM writes (Algorithm 1, with the writing noise) and addresses with Ben-Cohen
    pseudo-inverses; DKM writes by T sequential Bayesian updates, addresses by eq. 6 and adds
    KL(q(M) || p(M)). Both then sample W, read W M and add KL(q(W) || p(W))."""
    K, C = cfg.memory_slots, cfg.code_size
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(B, T, C, generator=g).to(device).requires_grad_()
    M0 = torch.randn(K, C, generator=g).to(device).requires_grad_()
    log_sigma = torch.zeros((), device=device, requires_grad=True)
    pm = make_pinv(cfg.pinv, cfg.pinv_steps, cfg.alpha_memory, cap=cfg.alpha_cap)
    pw = make_pinv(cfg.pinv, cfg.pinv_steps, cfg.alpha_weight, cap=cfg.alpha_cap)
    eye = torch.eye(K, device=device)

    def step():
        if kind == "gpm":
            _, M = gpm.write(gpm.add_write_noise(Z, cfg.sigma_xi), M0, pm, pw)
            W_mean = gpm.address(Z, M, pm)
            kl_m = 0.0
        else:
            U0 = eye * log_sigma.exp()
            M, U, _ = dkm.write(Z, M0, U0, cfg.sigma_xi)
            W_mean = dkm.address(Z, M, cfg.sigma_xi)
            kl_m = dkm.kl_memory(M, U, M0, U0).sum()
        W = gpm.sample_w(W_mean, log_sigma.exp())
        loss = (W @ M).square().sum() + gpm.kl_w(W_mean, log_sigma.exp()).sum() + kl_m
        loss.backward()

    return step


def summary(seconds: list[float]) -> dict:
    """Median and quartiles in ms, and every sample (ms, 4 significant digits)."""
    ms = [1e3 * s for s in seconds]
    q = statistics.quantiles(ms, n=4) if len(ms) > 1 else [ms[0]] * 3
    return {"median_ms": statistics.median(ms), "q25_ms": q[0], "q75_ms": q[2], "n": len(ms),
            "samples_ms": [float(f"{x:.4g}") for x in ms]}


def paired_ratio(a: list[float], b: list[float]) -> dict:
    """Ratio a/b per round (interleaved, so both ran under the same load): median, quartiles."""
    r = [x / y for x, y in zip(a, b)]
    q = statistics.quantiles(r, n=4) if len(r) > 1 else [r[0]] * 3
    return {"median": statistics.median(r), "q25": q[0], "q75": q[2], "n": len(r)}


def fig3b_sweep(T_values=FIG3B_SWEEP["T_values"], K_for_T=FIG3B_SWEEP["K_for_T"],
                K_values=FIG3B_SWEEP["K_values"], T_for_K=FIG3B_SWEEP["T_for_K"],
                steps_values=FIG3B_SWEEP["steps_values"], steps_cases=FIG3B_SWEEP["steps_cases"],
                batch: int = 2, warmup: int = 2, n: int = 9, device="cpu", memory: bool = True,
                progress: Callable[[str], None] | None = None) -> dict:
    """Time GPM and DKM training steps over three sweeps (GPM Fig. 3b), each interleaved:

    'T'     : T in T_values at K = K_for_T, GPM and DKM;
    'K'     : K in K_values at T = T_for_K, GPM and DKM;
    'steps' : Ben-Cohen steps in steps_values for each (T, K) of steps_cases, GPM only.

    Returns {"batch", "warmup", "n", "sweeps": {name: {"x": the swept variable, "cells":
    [{"T", "K", "pinv_steps", "times": {"gpm", "dkm", "gpm_memory", "dkm_memory"}:
    `summary`, "ratios": {"gpm/dkm", "gpm_memory/dkm_memory"}: `paired_ratio`}]}}}.
    Every model gets the other settings of its Omniglot config; the memory-only entries
    are absent with memory=False.
    """
    device = torch.device(device)
    base = {kind: omniglot_config(kind) for kind in KINDS}
    plans = {
        "T": ("T", [(T, K_for_T, None, KINDS) for T in T_values]),
        "K": ("K", [(T_for_K, K, None, KINDS) for K in K_values]),
        "steps": ("pinv_steps", [(T, K, s, ("gpm",)) for T, K in steps_cases for s in steps_values]),
    }
    out = {"batch": batch, "warmup": warmup, "n": n, "sweeps": {}}
    for name, (x, cells) in plans.items():
        calls, keys = {}, []
        for T, K, steps, kinds in cells:
            X = random_episodes(batch, T, device)
            key = (T, K, steps)
            keys.append((key, kinds))
            for kind in kinds:
                mcfg, tcfg = base[kind]
                mcfg = replace(mcfg, memory_slots=K, **({"pinv_steps": steps} if steps else {}))
                torch.manual_seed(0)
                model = build_baseline(kind, mcfg).to(device)
                calls[(key, kind)] = train_step(model, X, tcfg)
                if memory:
                    calls[(key, f"{kind}_memory")] = memory_step(kind, mcfg, batch, T, device)
        say = (lambda s: progress(f"sweep {name}: {s}")) if progress else None
        times = time_interleaved(calls, device, warmup, n, say)
        rows = []
        for (T, K, steps), kinds in keys:
            key = (T, K, steps)
            t = {k: times[(key, k)] for (kk, k) in times if kk == key}
            ratios = {}
            if "dkm" in t:
                ratios["gpm/dkm"] = paired_ratio(t["gpm"], t["dkm"])
                if memory:
                    ratios["gpm_memory/dkm_memory"] = paired_ratio(t["gpm_memory"], t["dkm_memory"])
            rows.append({"T": T, "K": K, "pinv_steps": steps or base["gpm"][0].pinv_steps,
                         "times": {k: summary(v) for k, v in t.items()}, "ratios": ratios})
        out["sweeps"][name] = {"x": x, "cells": rows}
    return out


def step_time_payload(rows: list[dict]) -> dict:
    """The step_time artifact's payload from benchmarks/step_time.py's measurements: rows of
    {"config", "variant", "B", "T", "times": {model: `summary`}, "ratios": {"gpm/vae", ...}}."""
    return {"rows": rows}
