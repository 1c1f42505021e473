"""Training-step time of GPM and DKM relative to a VAE with the same nets and batch.

GPM section 3.5 / Fig. 3b claim GPM's memory is nearly free next to DKM's sequential
Bayesian writing. We time one full training step (forward, backward, Adam step; warm-up
steps excluded) of GPM, DKM and the VAE baseline built from the same `Encoder`/`Decoder`
on the same episodes, interleaving the models step by step so that a busy machine slows
all of them alike, and print absolute times and the ratios GPM/VAE, DKM/VAE. A second
table times the memory path alone (write, address, sample, read, KL; forward and
backward on random codes, no networks).

Note that GPM and DKM decode twice as many images as the VAE: the read-outs W M and, for
L_AE (GPM eq. 2, DKM eq. 11), the codes Z; the models send both through the decoder in
one batched call.

    python benchmarks/step_time.py --device cuda            # paper sizes: batch 16, T 32
    python benchmarks/step_time.py --device cpu             # small batches, < 2 min on 2 cores

Configurations (GPM appendix C): "binarized" = 16 filters, 32x100 memory, Bernoulli,
1x28x28; "real" = 256 filters, 128x512 memory, DMoL (10 components), 3x32x32. On CPU the
defaults shrink the batch (binarized: 2 episodes of T = 32; real: 1 episode of T = 8) and
the number of steps so the whole script runs in under 2 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

import torch

from gpm_core import dkm, gpm
from gpm_core.config import ModelConfig
from gpm_core.models import build_model
from gpm_core.pinv import make_pinv

CONFIGS = {
    "binarized": (ModelConfig(likelihood="bernoulli", filters=16, code_size=100, memory_slots=32),
                  (1, 28, 28)),
    "real": (ModelConfig(likelihood="dmol", filters=256, code_size=512, memory_slots=128,
                         n_mixtures=10, alpha_memory=5e-5, alpha_weight=1e-4), (3, 32, 32)),
}
# (batch, T, warm-up steps, timed steps) per device
DEFAULTS = {
    "cpu": {"binarized": (2, 32, 2, 10), "real": (1, 8, 2, 8)},
    "cuda": {"binarized": (16, 32, 10, 50), "real": (16, 32, 5, 20)},
}


def episodes(cfg: ModelConfig, image_shape, B, T, device):
    X = torch.rand(B, T, *image_shape, device=device)
    if cfg.likelihood == "bernoulli":
        return (X < 0.2).float()
    return torch.round(X * 255) / 255


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(steps: dict, device, warmup: int, n: int) -> dict:
    """Run every callable in `steps` warmup + n times, interleaved: {name: seconds per call}."""
    times = {name: [] for name in steps}
    for i in range(warmup + n):
        for name, step in steps.items():
            sync(device)
            t0 = time.perf_counter()
            step()
            sync(device)
            if i >= warmup:
                times[name].append(time.perf_counter() - t0)
    return times


def train_step(model, X, compile_: bool):
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    forward = torch.compile(model) if compile_ else model

    def step():
        loss = forward(X)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def memory_step(kind: str, cfg: ModelConfig, B, T, device):
    """The memory path alone, forward and backward, on random codes Z (B, T, C)."""
    K, C = cfg.memory_slots, cfg.code_size
    Z = torch.randn(B, T, C, device=device, requires_grad=True)
    M0 = torch.randn(K, C, device=device, requires_grad=True)
    log_sigma = torch.zeros((), device=device, requires_grad=True)
    pm = make_pinv(cfg.pinv, cfg.pinv_steps, cfg.alpha_memory)
    pw = make_pinv(cfg.pinv, cfg.pinv_steps, cfg.alpha_weight)
    U0 = torch.eye(K, device=device)

    def step():
        if kind == "gpm":
            _, M = gpm.write(gpm.add_write_noise(Z, cfg.sigma_xi), M0, pm, pw)
            W_mean = gpm.address(Z, M, pm)
            kl = 0.0
        else:
            M, U, _ = dkm.write(Z, M0, U0 * log_sigma.exp(), cfg.sigma_xi)
            W_mean = dkm.address(Z, M, cfg.sigma_xi)
            kl = dkm.kl_memory(M, U, M0, U0 * log_sigma.exp()).sum()
        W = gpm.sample_w(W_mean, log_sigma.exp())
        loss = (W @ M).square().sum() + gpm.kl_w(W_mean, log_sigma.exp()).sum() + kl
        loss.backward()

    return step


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: per device)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: per device)")
    p.add_argument("--batch", type=int, default=None, help="episodes per step (default: per device)")
    p.add_argument("--T", type=int, default=None, help="episode length (default: per device)")
    p.add_argument("--configs", default="binarized,real", help="comma-separated: binarized,real")
    p.add_argument("--compile", action="store_true", help="torch.compile every model")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch sees no GPU; use --device cpu.")
    device = torch.device(args.device)

    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f", {torch.get_num_threads()} threads") + (", torch.compile" if args.compile else ""))
    rows = []
    for name in args.configs.split(","):
        if name not in CONFIGS:
            raise SystemExit(f"unknown config {name!r}; choose from {sorted(CONFIGS)}.")
        cfg, shape = CONFIGS[name]
        B, T, warmup, n = DEFAULTS[args.device][name]
        B, T = args.batch or B, args.T or T
        warmup = args.warmup if args.warmup is not None else warmup
        n = args.steps or n
        torch.manual_seed(0)
        X = episodes(cfg, shape, B, T, device)
        steps = {kind: train_step(build_model(replace(cfg, kind=kind), shape).to(device), X, args.compile)
                 for kind in ("vae", "gpm", "dkm")}
        steps.update({f"{kind} memory only": memory_step(kind, cfg, B, T, device) for kind in ("gpm", "dkm")})
        t = time_steps(steps, device, warmup, n)
        rows.append((name, B, T, n, t))

    for stat in ("mean", "median"):
        f = getattr(statistics, stat)
        print(f"\n{stat} step time: {'config':10} {'B x T':>7} {'steps':>5} {'VAE ms':>9} {'GPM ms':>9}"
              f" {'DKM ms':>9} {'GPM/VAE':>8} {'DKM/VAE':>8} {'GPM mem ms':>11} {'DKM mem ms':>11}")
        for name, B, T, n, times in rows:
            t = {k: f(v) for k, v in times.items()}
            ms = {k: 1e3 * v for k, v in t.items()}
            print(f"{'':17}{name:10} {f'{B}x{T}':>7} {n:>5} {ms['vae']:9.1f} {ms['gpm']:9.1f}"
                  f" {ms['dkm']:9.1f} {t['gpm'] / t['vae']:8.2f} {t['dkm'] / t['vae']:8.2f}"
                  f" {ms['gpm memory only']:11.1f} {ms['dkm memory only']:11.1f}")
    print("\nms: time of one training step (forward + backward + Adam), warm-up excluded;"
          "\n'mem ms': the memory path alone (forward + backward on random codes, no nets)."
          "\nOn a shared machine the median resists other processes' bursts better than the mean.")


if __name__ == "__main__":
    main()
