"""Tables and figures of the reproduction chapters, built from `results/` only.

Every function here reads result artifacts (written by `python -m gpm_core train`) and the
papers' numbers from `gpm_core.paper_numbers`; none trains, none types a number. The
chapters call these and display what they return.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path

import torch

from .artifacts import REPO, load_results
from .paper_numbers import TABLE1

RESULTS = REPO / "results"


def _mean_sd(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return mean, sd


def fmt_mean_sd(mean: float, sd: float, digits: int = 2) -> str:
    return f"{mean:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")


def seed_summary(results: list[dict], metric: str) -> dict:
    """Across seeds of one (experiment, profile): mean and sd of `metric` (each run's value is
    its mean over the fixed test episodes), the per-seed values, total wall time, devices."""
    values = {r["seed"]: r["metrics"][metric]["value"] for r in results if metric in r["metrics"]}
    if not values:
        return {}
    mean, sd = _mean_sd(list(values.values()))
    r0 = results[0]
    return {
        "mean": mean, "sd": sd, "n_seeds": len(values), "per_seed": dict(sorted(values.items())),
        "unit": r0["metrics"][metric]["unit"],
        "steps": sorted({r["steps"] for r in results}),
        "wall_time_s": [round(r["wall_time_s"], 1) for r in results],
        "devices": sorted({f"{r['device']['type']} ({r['device'].get('name', '?')})" for r in results}),
        "git_commits": sorted({r["git_commit"][:8] + ("+dirty" if r.get("git_dirty") else "")
                               for r in results if r.get("git_commit")}),
        "deviation": next((r["deviation"] for r in results if r.get("deviation")), None),
        "command": r0.get("command", ""),
    }


def group_runs(results_dir=RESULTS, experiments=None) -> dict[tuple[str, str], list[dict]]:
    """(experiment, profile) -> finished runs (one per seed)."""
    groups = defaultdict(list)
    for r in load_results(results_dir=results_dir):
        if experiments is None or r["experiment"] in experiments:
            groups[(r["experiment"], r["profile"])].append(r)
    return dict(groups)


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


def rows_markdown(rows: list[dict], columns: dict[str, str]) -> str:
    """A Markdown table of `rows` with `columns` = {key: header}; floats to 2 decimals,
    missing values as 'not run'."""
    def cell(row, key):
        v = row.get(key)
        if key == "ours" and v is not None:
            return fmt_mean_sd(v, row.get("sd", float("nan")), row.get("digits", 2))
        if key == "paper" and v is None:
            return "–"  # the paper reports no value for this cell
        if v is None or v == [] or v == {}:
            return "not run"
        if isinstance(v, float):
            return f"{v:.2f}"
        if isinstance(v, dict):
            return ", ".join(f"{k}: {x:.2f}" for k, x in v.items())
        if isinstance(v, list):
            return ", ".join(str(x) for x in v)
        return str(v)

    head = "| " + " | ".join(columns.values()) + " |\n|" + "---|" * len(columns) + "\n"
    return head + "".join("| " + " | ".join(cell(r, k) for k in columns) + " |\n" for r in rows)


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


def independent_pixel_nll(train, test, eps: float = 1e-4) -> float:
    """A reference bound: nats/image on binary `test` images (N, C, H, W) of a model with
    independent Bernoulli pixels whose means are the `train` pixel means (clamped to
    [eps, 1 - eps]). No memory, no networks: what any model must beat."""
    p = train.float().mean(0).clamp(eps, 1 - eps)  # (C, H, W)
    x = test.float()
    ll = x * p.log() + (1 - x) * (1 - p).log()  # (N, C, H, W)
    return -ll.sum(dim=(1, 2, 3)).mean().item()


# ----------------------------------------------------------------------------- figures


def fig_training_curves(groups: dict[tuple[str, str], list[dict]], key: str = "elbo_cond",
                        unit: str = "nats/image"):
    """Training curves (`key` per image vs step) of every run in `groups`, one panel per
    experiment, one line per seed. unit "nats/image" (log scale) or "bits/dim" (the
    nats/image of the loss curve divided by C H W ln 2, linear scale)."""
    import matplotlib.pyplot as plt

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


def load_trained(result: dict | str | Path, device="cpu"):
    """(model, config) of a finished run from its result JSON and the small state_dict beside it."""
    import json

    from .config import config_from_dict
    from .models import build_model

    if not isinstance(result, dict):
        with open(result) as f:
            result = json.load(f) | {"path": str(result)}
    sd_info = result.get("state_dict") or {}
    if not sd_info.get("path"):
        raise FileNotFoundError(f"{result.get('path')}: no state_dict stored beside the result "
                                f"({sd_info.get('skipped', 'unknown reason')}); retrain with "
                                f"`{result.get('command', 'python -m gpm_core train ...')}`")
    cfg = config_from_dict(result["config"])
    pt = Path(result["path"]).parent / sd_info["path"]
    state = torch.load(pt, map_location="cpu", weights_only=True)
    image_shape = tuple(result["data"]["test"]["image_shape"])
    model = build_model(cfg.model, image_shape=image_shape)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model.to(device).eval(), cfg


def image_grid(ax, images: torch.Tensor, nrow: int, title: str = ""):
    """Show (N, 1, H, W) images in [0, 1] as a grid with `nrow` images per row."""
    import torchvision.utils as vutils

    grid = vutils.make_grid(images.float().cpu(), nrow=nrow, padding=2, pad_value=0.5)
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
