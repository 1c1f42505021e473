"""Time to quality: how long the best GPM recipe needs, on one CPU thread, to reach a test
bound of 71 nats/image on Omniglot, beside the authors' released code.

Two measurements, printed as ratios to the authors' code (`paper_numbers.AUTHORS_CODE`: their
code measured once beside ours on a 2-core CPU, one thread; not reproducible from this
repository):

1. the training step of `configs/table1_omniglot_gpm_authors.toml` (profile `cpu`: 8 episodes
   of 32 images; `cpu_alpha` differs only in an alpha, so its step is the same), eager and with `channels_last`, timed interleaved (`analyses.timing`) so a
   busy machine slows both alike;
2. the training time at which each stored run's test curve (`train.eval_every`) first reaches
   the level, read from results/ (linear interpolation between scored points; the scoring
   time is excluded from the training time by the trainer).

    python benchmarks/time_to_quality.py                 # ~1 min: 1 thread, 20 timed steps each
    python benchmarks/time_to_quality.py --level 50 --steps 40

Writes results/time_to_quality/<profile>-seed0.json (profile: "cpu" by default).
"""

from __future__ import annotations

import argparse
import time

import torch

from gpm_core.analyses import timing
from gpm_core.artifacts import REPO, load_results, save_analysis, source_info
from gpm_core.config import load_config
from gpm_core.models import build_model
from gpm_core.report import rows_markdown
from gpm_core.report.paper_numbers import AUTHORS_CODE
from gpm_core.report.table1 import time_to_rows

EXPERIMENT = "time_to_quality"
CONFIG = REPO / "configs" / "table1_omniglot_gpm_authors.toml"
# the runs whose test curves are read: the recipe ablation's arms and the best GPM row
RUNS = {"ablation_recipe_omniglot": ("authors", "lr_1e-3", "lr_2e-3", "lr_1e-3_batch_4", "lr_2e-3_alpha_w_2e-3"),
        "table1_omniglot_gpm_authors": ("cpu", "cpu_alpha", "cpu_long")}


def step_times(warmup: int, n: int) -> dict:
    """Median step time (ms, with quartiles) of the best recipe, eager and channels_last."""
    cfg = load_config(CONFIG, "cpu")
    X = timing.random_episodes(cfg.train.batch_size, cfg.data.episode_length)
    steps = {}
    for variant in ("eager", "channels_last"):
        torch.manual_seed(0)
        model = build_model(cfg.model, timing.IMAGE_SHAPE)
        if variant == "channels_last":
            model = model.to(memory_format=torch.channels_last)
        steps[variant] = timing.train_step(model, X, cfg.train)
    times = timing.time_interleaved(steps, "cpu", warmup, n)
    return {v: timing.summary(t) for v, t in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--level", type=float, default=AUTHORS_CODE["time_to_71"].level,
                   help="test bound to reach, nats/image (default 71, the authors' code's 2,000-step value)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per variant (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--profile", default="cpu", help="artifact name (default cpu)")
    p.add_argument("--results-dir", default=str(REPO / "results"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    steps = step_times(args.warmup, args.steps)
    runs = [r for exp, profiles in RUNS.items() for r in load_results(exp, results_dir=args.results_dir)
            if r["profile"] in profiles]
    if not runs:
        raise SystemExit(f"no runs of {', '.join(RUNS)} in {args.results_dir}: train them first "
                         "(python -m gpm_core train configs/ablation_recipe_omniglot.toml --profile lr_1e-3)")
    rows = time_to_rows(runs, args.level)
    ref_step, ref_time = AUTHORS_CODE["step_s"].value, AUTHORS_CODE["time_to_71"].value
    payload = {"level": args.level, "step_ms": steps, "time_to": rows,
               "reference": {"step_s": ref_step, "time_to_71_s": ref_time}}
    path = save_analysis(EXPERIMENT, args.profile, 0, payload, config={"config": str(CONFIG.relative_to(REPO)),
                         "profile": "cpu", "threads": torch.get_num_threads(), "steps": args.steps},
                         sources=[source_info(r) for r in runs], wall_time_s=round(time.time() - t0, 1),
                         description="time to a test bound of 71 nats/image (benchmarks/time_to_quality.py)",
                         results_dir=args.results_dir)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"\ntraining step, {CONFIG.name} (cpu profile), median ms (quartiles):")
    for v, s in steps.items():
        print(f"  {v:14s} {s['median_ms']:7.1f} ({s['q25_ms']:.1f}-{s['q75_ms']:.1f})"
              f"   / the authors' code's {1000 * ref_step:.0f} ms: {s['median_ms'] / (1000 * ref_step):.2f}")
    print(f"\ntime to {args.level:g} nats/image (the authors' code: {ref_time:.0f} s):\n")
    print(rows_markdown(rows, {"run": "run", "step_ms": "ms / step", "step": "step", "seconds": "seconds",
                               "ratio": "÷ the authors' code"}), end="")
    print(f"\nwrote {path}")
    return path


if __name__ == "__main__":
    main()
