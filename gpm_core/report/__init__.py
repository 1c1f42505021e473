"""Tables and figures of the book's Part II, built from `results/` only.

One module per chapter (or family of chapters) renders what `python -m gpm_core train` and
the analyses (`gpm_core.analyses`) wrote: `table1` (book/07), `denoise` (book/09, 10),
`capacity` (book/11), `timing` (book/12), `real_valued` (book/13), `status` (the status
page), with the papers' numbers in `paper_numbers`. Functions read result artifacts, the
configs and the paper numbers (and, for the figures of reconstructions, the small
state_dicts stored in results/ through `runs.load_trained`, and the test images they
show); none trains or measures, none types a number. This package holds what those modules share: where the results are, the summaries
over seeds, Markdown tables and image grids.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict

import torch

from ..artifacts import REPO, load_analyses, load_results
from ..datasets import load_images
from ..episodes import test_episodes
from ..runs import load_trained

RESULTS = REPO / "results"


def mean_sd(values: list[float]) -> tuple[float, float]:
    """Mean and sample sd of `values` (the sd is nan with fewer than two values, or with a
    value that is not finite)."""
    mean = statistics.fmean(values)
    ok = len(values) > 1 and all(math.isfinite(v) for v in values)
    return mean, statistics.stdev(values) if ok else float("nan")


def fmt_mean_sd(mean: float, sd: float, digits: int = 2) -> str:
    return f"{mean:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")


def seed_summary(results: list[dict], metric: str) -> dict:
    """Across seeds of one (experiment, profile): mean and sd of `metric` (each run's value is
    its mean over the fixed test episodes), the per-seed values, total wall time, devices."""
    values = {r["seed"]: r["metrics"][metric]["value"] for r in results if metric in r["metrics"]}
    if not values:
        return {}
    mean, sd = mean_sd(list(values.values()))
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


def finished_groups(experiments, profiles, results_dir=RESULTS):
    """(experiment, profile, runs) for every pair of `experiments` x `profiles` with finished
    runs, in that order (pairs with none are skipped)."""
    groups = group_runs(results_dir, experiments)
    for exp in experiments:
        for profile in profiles:
            if groups.get((exp, profile)):
                yield exp, profile, groups[(exp, profile)]


def load_analysis(experiment: str, profile: str, seed: int | None = None, results_dir=None) -> list[dict]:
    """The analysis artifacts results/<experiment>/<profile>-seed<N>.json of one profile (of
    one seed if given), sorted by seed."""
    return [a for a in load_analyses(experiment, results_dir=results_dir or RESULTS)
            if a["profile"] == profile and (seed is None or a["seed"] == seed)]


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


def model_and_episode(result: dict, device="cpu"):
    """(model, config, X) of a finished run (`runs.load_trained`, the state_dict stored in
    results/) and its first fixed test episode X (1, T, C, H, W) (`episodes.test_episodes`
    with the run's eval seed): what the figures of reconstructions and samples show."""
    model, cfg = load_trained(result, device)
    test = load_images(cfg.data.dataset, "test", cfg.data)
    X = test_episodes(test, cfg.data.episode_length, 1, cfg.eval.seed)  # (1, T, C, H, W)
    return model, cfg, X


# ----------------------------------------------------------------------------- figures


def image_grid(ax, images: torch.Tensor, nrow: int, title: str = ""):
    """Show (N, C, H, W) images in [0, 1] as a grid with `nrow` images per row."""
    import torchvision.utils as vutils  # deferred with matplotlib: only needed to draw

    # clamped: a mean image computed in float32 can end a rounding error outside [0, 1]
    # (e.g. -6e-8), which matplotlib clips for RGB with a warning on stderr
    grid = vutils.make_grid(images.float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=0.5)
    ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)


def grid_figure(X, titles: list[str]):
    """X (rows, cols, 1, H, W) -> a figure with one titled column per image column."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    rows, ncol = X.shape[:2]
    fig, axes = plt.subplots(rows, ncol, figsize=(0.75 * ncol, 0.75 * rows), squeeze=False)
    for i in range(rows):
        for j in range(ncol):
            ax = axes[i][j]
            ax.imshow(X[i, j, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig
