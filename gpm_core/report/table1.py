"""GPM Table 1 (binarized columns) and the training curves: book/07_table1.

The chapter renders through this module; it also hands the chapter the shared helpers of
`gpm_core.report`, the independent-pixel baseline and `runs.load_trained` (Fig. 6 scores a
stored model), so that the chapter imports one module.
"""

from __future__ import annotations

import math

from ..artifacts import load_results
from ..baselines import independent_pixel_nll  # noqa: F401 (for book/07_table1)
from ..runs import load_trained  # noqa: F401 (for book/07_table1)
from . import RESULTS, fmt_mean_sd, group_runs, rows_markdown, seed_summary  # noqa: F401 (book/07_table1)
from .paper_numbers import TABLE1


def table1(results_dir=RESULTS, metric: str = "nll_cond",
           datasets=("mnist", "omniglot"), models=("gpm", "dkm"),
           profiles=("quick", "long", "paper")) -> list[dict]:
    """Rows of GPM Table 1 (binarized columns): paper value vs ours, per model, dataset and
    profile. Missing cells are rows with ours = None, so a table shows what is missing."""
    groups = group_runs(results_dir)
    rows = []
    for dataset in datasets:
        for model in models:
            paper = TABLE1.get((model, dataset))
            exp = f"table1_{dataset}_{model}"
            for profile in profiles:
                s = seed_summary(groups.get((exp, profile), []), metric)
                rows.append({
                    "model": model.upper(), "dataset": dataset, "profile": profile,
                    "paper": paper.value if paper else None,
                    "ours": s.get("mean"), "sd": s.get("sd"), "n_seeds": s.get("n_seeds", 0),
                    "per_seed": s.get("per_seed", {}), "unit": s.get("unit", paper.unit if paper else ""),
                    "gap": (s["mean"] - paper.value) if s and paper else None,
                    "steps": s.get("steps", []), "wall_time_s": s.get("wall_time_s", []),
                    "devices": s.get("devices", []), "git": s.get("git_commits", []),
                    "command": (f"python -m gpm_core train configs/{exp}.toml --profile {profile} --seed N"),
                })
    return rows


def longest_run(experiment: str, profiles, seed: int = 0, results_dir=RESULTS) -> dict:
    """The finished run of `experiment` with the most training steps among `profiles`, for
    model seed `seed` (book/08_reconstructions shows its reconstructions and samples)."""
    runs = [r for r in load_results(experiment, results_dir=results_dir)
            if r["profile"] in profiles and r["seed"] == seed]
    if not runs:
        raise FileNotFoundError(f"no results/{experiment}/{{{','.join(profiles)}}}-seed{seed}.json: train one "
                                f"(python -m gpm_core train configs/{experiment}.toml --profile {profiles[0]})")
    return max(runs, key=lambda r: r["steps"])


def metric_table(experiments, metrics, results_dir=RESULTS, profile="quick") -> list[dict]:
    """One row per experiment: mean ± sd over seeds of each metric (for ablations and the
    'what the number counts' table)."""
    groups = group_runs(results_dir, experiments)
    rows = []
    for exp in experiments:
        runs = groups.get((exp, profile), [])
        row = {"experiment": exp, "n_seeds": len(runs)}
        for m in metrics:
            s = seed_summary(runs, m)
            digits = 4 if "cosine" in m else 2  # cosines differ from 1 in the third decimal
            row[m] = fmt_mean_sd(s["mean"], s["sd"], digits) if s else "not run"
        rows.append(row)
    return rows


def end_slope(runs: list[dict], key: str = "elbo_cond", last: int = 100, per_dim: bool = False) -> float:
    """Mean decrease of `key` per 100 steps over the last `last` steps of the loss curves of
    `runs`; with `per_dim`, in bits/dim (nats/image / (C H W ln 2)). A bound that still falls
    at the end of training is a run that stopped early."""
    out = []
    for r in runs:
        scale = math.prod(r["data"]["train"]["image_shape"]) * math.log(2) if per_dim else 1.0
        pts = [p for p in r["loss_curve"] if p["step"] > r["steps"] - last]
        out.append((pts[0][key] - pts[-1][key]) / max(pts[-1]["step"] - pts[0]["step"], 1) * 100 / scale)
    return sum(out) / len(out)


# ----------------------------------------------------------------------------- figures


def fig_training_curves(groups: dict[tuple[str, str], list[dict]], key: str = "elbo_cond",
                        unit: str = "nats/image"):
    """Training curves (`key` per image vs step) of every run in `groups`, one panel per
    experiment, one line per seed. unit "nats/image" (log scale) or "bits/dim" (the
    nats/image of the loss curve divided by C H W ln 2, linear scale)."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    if unit not in ("nats/image", "bits/dim"):
        raise ValueError(f"unit must be 'nats/image' or 'bits/dim', got {unit!r}")
    exps = sorted({e for e, _ in groups})
    fig, axes = plt.subplots(1, len(exps), figsize=(3.3 * len(exps), 2.8), squeeze=False)
    for ax, exp in zip(axes[0], exps):
        for (e, profile), runs in sorted(groups.items()):
            if e != exp:
                continue
            for r in runs:
                scale = 1.0
                if unit == "bits/dim":
                    scale = math.prod(r["data"]["train"]["image_shape"]) * math.log(2)
                curve = [p for p in r["loss_curve"] if key in p]
                ax.plot([p["step"] for p in curve], [p[key] / scale for p in curve], lw=0.8,
                        label=f"{profile} seed {r['seed']}")
        ax.set_title(exp.replace("table1_", ""), fontsize=9)
        ax.set_xlabel("step")
        if unit == "nats/image":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"training {key} ({unit})")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    return fig
