"""Training-step time of GPM and DKM relative to a VAE with the same nets and batch.

GPM section 3.5 / Fig. 3b claim GPM's memory is nearly free next to DKM's sequential
Bayesian writing. We time one full training step (`gpm_core.train`'s: forward, backward,
gradient clipping, Adam; warm-up steps excluded) of GPM, DKM and two baselines built from
the same `Encoder`/`Decoder` on the same episodes, interleaving the models step by step so
that a busy machine slows all of them alike, and print medians with quartiles and the
paired ratios (median over steps of the per-step ratio). The memory path alone (write,
address, sample, read, KL; forward and backward on random codes, no networks) is timed
beside them.

The baselines: 'VAE' is `gpm_core.models.VAE`, which decodes T images per episode.
GPM and DKM decode 2T: the read-outs W M and, for L_AE (GPM eq. 2, DKM eq. 11), the codes
Z, in one batched decoder call. 'VAE, 2 samples' (`gpm_core.timing.VAETwoSamples`) is the
same VAE with a 2-sample ELBO, so it decodes 2T images too: the fair baseline for the cost
of the memory, GPM/VAE2 = (nets + memory) / nets with equal network work.

Variants (--variants, measured in the same interleaved run): 'eager' (the default path of
`python -m gpm_core train`), 'compile' (torch.compile of each model's forward, the backward
compiled through AOTAutograd; minutes of start-up on a CPU; DKM is left out, its unrolled
T-step write takes far longer to compile), 'channels_last' (weights
and activations in NHWC), and both.

    python benchmarks/step_time.py                       # CPU, 1 thread, ~2 min on 2 cores
    python benchmarks/step_time.py --device cuda         # paper sizes: batch 16, T 32
    python benchmarks/step_time.py --configs binarized --variants eager,compile,channels_last

Writes results/step_time/<profile>-seed0.json (profile: the device type by default).

Configurations (GPM appendix C): "binarized" = the nets and memory of
configs/table1_omniglot_{gpm,dkm}.toml, Bernoulli, 1x28x28; "real" = 256 filters, 128x512
memory, DMoL (10 components), 3x32x32. On CPU the defaults shrink the batch (binarized: 2
episodes of T = 32; real: 1 episode of T = 8) and the number of steps.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace

import torch

from gpm_core.analyses import timing
from gpm_core.artifacts import device_info, save_analysis
from gpm_core.config import ModelConfig

EXPERIMENT = "step_time"
MODELS = ("vae", "vae2", "gpm", "dkm")
VARIANTS = ("eager", "compile", "channels_last", "compile+channels_last")
REAL = (ModelConfig(likelihood="dmol", filters=256, code_size=512, memory_slots=128, n_mixtures=10,
                    alpha_memory=5e-5, alpha_weight=1e-4), (3, 32, 32))
# (batch, T, warm-up steps, timed steps) per device
DEFAULTS = {
    "cpu": {"binarized": (2, 32, 2, 15), "real": (1, 8, 2, 8)},
    "cuda": {"binarized": (16, 32, 10, 50), "real": (16, 32, 5, 20)},
}


def model_configs(name: str):
    """{kind: (ModelConfig, TrainConfig)} and the image shape of a named configuration."""
    if name == "binarized":
        gpm_cfg, train_cfg = timing.omniglot_config("gpm")
        dkm_cfg, _ = timing.omniglot_config("dkm")
        cfgs = {"vae": gpm_cfg, "vae2": gpm_cfg, "gpm": gpm_cfg, "dkm": dkm_cfg}
        return {k: (c, train_cfg) for k, c in cfgs.items()}, timing.IMAGE_SHAPE
    cfg, shape = REAL
    _, train_cfg = timing.omniglot_config("gpm")
    return {k: (replace(cfg, kind=k if k != "vae2" else "vae"), train_cfg) for k in MODELS}, shape


def episodes(likelihood: str, image_shape, B, T, device):
    if likelihood == "bernoulli":
        return timing.random_episodes(B, T, device, image_shape)
    X = torch.rand(B, T, *image_shape, generator=torch.Generator().manual_seed(0))
    return (torch.round(X * 255) / 255).to(device)


def build_steps(name: str, variants, B, T, device) -> dict:
    cfgs, shape = model_configs(name)
    X = episodes(cfgs["gpm"][0].likelihood, shape, B, T, device)
    steps = {}
    for variant in variants:
        for kind in MODELS:
            if "compile" in variant and kind == "dkm":
                continue  # its unrolled T-step write takes many minutes to compile on a CPU
            mcfg, tcfg = cfgs[kind]
            torch.manual_seed(0)
            model = timing.build_baseline(kind, mcfg, shape).to(device)
            if "channels_last" in variant:
                model = model.to(memory_format=torch.channels_last)
            steps[(variant, kind)] = timing.train_step(model, X, tcfg, compile_="compile" in variant)
    for kind in ("gpm", "dkm"):
        steps[("memory", f"{kind}_memory")] = timing.memory_step(kind, cfgs[kind][0], B, T, device)
    return steps


def measure(name: str, variants, B, T, warmup, n, device, log=None) -> list[dict]:
    steps = build_steps(name, variants, B, T, device)
    if any("compile" in v for v in variants):  # compile outside the timed rounds
        for (variant, _), step in steps.items():
            if "compile" in variant:
                step()
    times = timing.time_interleaved(steps, device, warmup, n, log)
    mem = {k: timing.summary(v) for (variant, k), v in times.items() if variant == "memory"}
    rows = []
    for variant in variants:
        t = {k: v for (vv, k), v in times.items() if vv == variant}
        ratios = {f"{a}/{b}": timing.paired_ratio(t[a], t[b])
                  for a, b in (("gpm", "vae"), ("gpm", "vae2"), ("dkm", "vae"), ("dkm", "vae2"),
                               ("vae2", "vae")) if a in t}
        if variant != "eager" and "eager" in variants:
            for kind in ("vae", "gpm"):
                ratios[f"{kind}/{kind} eager"] = timing.paired_ratio(t[kind], times[("eager", kind)])
            ratios["gpm/vae eager"] = timing.paired_ratio(t["gpm"], times[("eager", "vae")])
        rows.append({"config": name, "variant": variant, "B": B, "T": T,
                     "times": {**{k: timing.summary(v) for k, v in t.items()}, **mem},
                     "ratios": ratios})
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (default: per device)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default: per device)")
    p.add_argument("--batch", type=int, default=None, help="episodes per step (default: per device)")
    p.add_argument("--T", type=int, default=None, help="episode length (default: per device)")
    p.add_argument("--configs", default="binarized,real", help="comma-separated: binarized,real")
    p.add_argument("--variants", default="eager", help=f"comma-separated: {','.join(VARIANTS)}")
    p.add_argument("--profile", default=None, help="artifact name (default: the device type)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--verbose", action="store_true", help="print each round to stderr")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch sees no GPU; use --device cpu.")
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    names, variants = args.configs.split(","), args.variants.split(",")
    for v, allowed, what in ((names, ("binarized", "real"), "config"), (variants, VARIANTS, "variant")):
        bad = set(v) - set(allowed)
        if bad:
            raise SystemExit(f"unknown {what} {sorted(bad)}; choose from {', '.join(allowed)}.")
    log = (lambda s: print(s, file=sys.stderr, flush=True)) if args.verbose else None
    t0 = time.time()
    rows, settings = [], {}
    for name in names:
        B, T, warmup, n = DEFAULTS[args.device][name]
        B, T = args.batch or B, args.T or T
        warmup = args.warmup if args.warmup is not None else warmup
        n = args.steps or n
        settings[name] = {"B": B, "T": T, "warmup": warmup, "steps": n}
        rows += measure(name, variants, B, T, warmup, n, device, log)
    wall = time.time() - t0
    config = {"configs": names, "variants": variants, "per_config": settings, "device": args.device,
              "threads": torch.get_num_threads()}
    path = save_analysis(EXPERIMENT, args.profile or args.device, 0, timing.step_time_payload(rows),
                         config=config, sources=[], device=device, wall_time_s=round(wall, 1),
                         description="training-step time of GPM and DKM vs a VAE with the same nets "
                                     "(benchmarks/step_time.py)", results_dir=args.results_dir)
    doc = {"rows": rows, "device": device_info(device)}
    print(f"torch {torch.__version__}, {timing.device_label(doc)}; median ms of one training step "
          f"(quartiles), ratios paired per step\n")
    print(timing.step_time_markdown(doc), end="")
    print("\nms: one training step (forward + backward + clipping + Adam), warm-up excluded;"
          "\n'memory ms': the memory path alone (forward + backward on random codes, no nets);"
          "\nVAE 2 samples decodes 2T images per episode, as GPM and DKM do."
          f"\nwrote {path} ({wall:.0f} s)")
    return path


if __name__ == "__main__":
    main()
