"""GPM Fig. 3b: running time per training iteration of GPM and DKM vs T, K and Ben-Cohen steps.

GPM section 3.5 claims that GPM, which never inverts a K x K matrix and writes a whole
episode at once, runs in nearly constant time as the episode length T and the number of
memory slots K grow, while DKM's sequential Bayesian writing grows with both (on a GPU,
PyTorch 1.8). Three sweeps, each interleaved round-robin so that the ratios are measured
under the same load (`gpm_core.timing.fig3b_sweep`):

    T     : T = 8 ... 128 at K = 32             GPM and DKM
    K     : K = 16, 32, 48, 64 at T = 64         GPM and DKM
    steps : 1, 3, ..., 15 Ben-Cohen steps at (T, K) = (64, 64) and (128, 64), GPM

A step is `python -m gpm_core train`'s (forward, backward, clipping, Adam) with the nets
and settings of configs/table1_omniglot_{gpm,dkm}.toml on random binary episodes; the
memory path alone (no nets) is timed beside it. Prints medians (ms, quartiles), the
paired GPM/DKM ratio and each model's growth over the smallest T / K / steps, and writes
results/fig3b_running_time/<profile>-seed0.json (profile = the device type by default).

    python benchmarks/fig3b.py                  # CPU, 1 thread, a few minutes
    python benchmarks/fig3b.py --device cuda    # the paper's setting (batch 16)

Absolute times count only on an otherwise idle GPU; on a shared CPU read the ratios.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from gpm_core.analyses import timing
from gpm_core.artifacts import device_info, save_analysis

EXPERIMENT = "fig3b_running_time"


def ints(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in text.split(","))


def cases(text: str) -> tuple[tuple[int, int], ...]:
    return tuple(tuple(int(v) for v in c.split("x")) for c in text.split(","))


def parse(argv=None):
    d = timing.FIG3B_SWEEP
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--batch", type=int, default=None, help="episodes per step (default: per device)")
    p.add_argument("--warmup", type=int, default=None, help="untimed rounds first (default: per device)")
    p.add_argument("--rounds", type=int, default=None, help="timed rounds (default: per device)")
    p.add_argument("--T-values", type=ints, default=d["T_values"], help="comma-separated")
    p.add_argument("--K-for-T", type=int, default=d["K_for_T"])
    p.add_argument("--K-values", type=ints, default=d["K_values"], help="comma-separated")
    p.add_argument("--T-for-K", type=int, default=d["T_for_K"])
    p.add_argument("--steps-values", type=ints, default=d["steps_values"], help="comma-separated")
    p.add_argument("--steps-cases", type=cases, default=d["steps_cases"], help="TxK,TxK")
    p.add_argument("--no-memory", action="store_true", help="skip the memory-path-only timings")
    p.add_argument("--profile", default=None, help="artifact name (default: the device type)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def main(argv=None):
    args = parse(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch sees no GPU; use --device cpu.")
    torch.set_num_threads(args.threads)
    batch, warmup, n = timing.FIG3B_DEFAULTS[args.device]
    settings = {
        "batch": args.batch or batch,
        "warmup": args.warmup if args.warmup is not None else warmup,
        "n": args.rounds or n,
        "T_values": list(args.T_values), "K_for_T": args.K_for_T,
        "K_values": list(args.K_values), "T_for_K": args.T_for_K,
        "steps_values": list(args.steps_values), "steps_cases": [list(c) for c in args.steps_cases],
        "memory": not args.no_memory, "device": args.device, "threads": torch.get_num_threads(),
        "model_configs": {k: f"configs/{v}.toml" for k, v in timing.CONFIGS.items()},
    }
    log = None if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    t0 = time.time()
    payload = timing.fig3b_sweep(
        T_values=args.T_values, K_for_T=args.K_for_T, K_values=args.K_values, T_for_K=args.T_for_K,
        steps_values=args.steps_values, steps_cases=args.steps_cases, batch=settings["batch"],
        warmup=settings["warmup"], n=settings["n"], device=args.device, memory=not args.no_memory,
        progress=log)
    wall = time.time() - t0
    path = save_analysis(EXPERIMENT, args.profile or args.device, 0, payload, config=settings,
                         sources=[], device=args.device, wall_time_s=round(wall, 1),
                         description="GPM Fig. 3b: time per training iteration of GPM and DKM vs T, "
                                     "K and Ben-Cohen steps (benchmarks/fig3b.py)",
                         results_dir=args.results_dir)
    doc = {**payload, "device": device_info(args.device)}
    print(f"GPM Fig. 3b, {timing.device_label(doc)}, batch {payload['batch']}, "
          f"median of {payload['n']} interleaved rounds (quartiles in brackets)")
    for sweep in ("T", "K", "steps"):
        for memory in (False, True)[: 1 + (not args.no_memory)]:
            print(f"\n{'memory path alone' if memory else 'training step'}, sweep over {sweep}:")
            print(timing.fig3b_markdown(doc, sweep, memory), end="")
    print(f"\nwrote {path} ({wall:.0f} s)")
    return path


if __name__ == "__main__":
    main()
