"""Denoising and attractor dynamics: GPM Table 2 and Figs. 2, 7, 8; DKM Fig. 3
(book/09_denoising, book/10_attractor_dynamics).

Reads the artifacts of `python -m gpm_core denoise` (`gpm_core.analyses.denoise`); tables
and figures only.
"""

from __future__ import annotations

import torch

from .. import artifacts
from . import fmt_mean_sd, load_analysis
from .paper_numbers import TABLE2, TABLE2_T


def load_denoise(experiment: str = "table2_denoise_omniglot", profile: str = "quick", results_dir=None) -> list[dict]:
    """The analysis artifacts of `experiment` for one profile (one per model seed)."""
    return load_analysis(experiment, profile, results_dir=results_dir)


def unpack(d: dict) -> torch.Tensor:
    """Inverse of `analyses.denoise._pack`: a float tensor of 0/1 of the stored shape."""
    return artifacts.unpack_bits(d["bits"], d["shape"])


def _cell(runs, exp, T, kind, level, key="success_rate", step=-1):
    vals = []
    for r in runs:
        for row in r["grid"]:
            if row["T"] == T and row["kind"] == kind and row["level"] == level and exp in row:
                vals.append(row[exp][key][step])
    return vals


def table2_rows(runs: list[dict]) -> list[dict]:
    """Table 2, ours beside the paper's: one row per (model, corruption), one column per T,
    each cell "ours mean ± sd over seeds (paper)" in % after the last iteration."""
    if not runs:
        return []
    cfg = runs[0]["config"]
    # the paper's values only beside our Omniglot numbers (Table 2 is Omniglot only)
    on_omniglot = runs[0]["data"]["test"]["dataset"] == "omniglot"
    rows = []
    for exp in cfg["models"]:
        kind_model = _model_kind(runs[0], exp)
        for kind, level in cfg["table2_levels"].items():
            name = kind_model.upper() if exp.startswith("table1_") else f"{kind_model.upper()} ({exp})"
            row = {"model": name, "corruption": f"{kind} {level}"}
            paper = TABLE2.get((kind_model, f"{kind}_{_paper_level(level)}")) if on_omniglot else None
            for T in cfg["T"]:
                vals = torch.tensor(_cell(runs, exp, T, kind, level), dtype=torch.float64)
                ours = fmt_mean_sd(vals.mean().item(), vals.std().item() if len(vals) > 1 else 0.0, 1)
                p = None
                if paper is not None and T in TABLE2_T:
                    p = paper[TABLE2_T.index(T)]
                row[f"T = {T}"] = f"{ours} ({p:.2f})" if p is not None else ours
            row["seeds"] = len(runs)
            rows.append(row)
    return rows


def diagnosis_rows(runs: list[dict], T: int | None = None) -> list[dict]:
    """What the reads look like, per model and Table 2 corruption (mean over seeds): ink
    pixels of the clean images, of the queries' final states, the success rate of an
    all-blank read-out (images with <= threshold ink pixels) and ours."""
    cfg = runs[0]["config"]
    T = T or max(cfg["T"])
    rows = []
    for exp in cfg["models"]:
        for kind, level in cfg["table2_levels"].items():
            cells = [row for r in runs for row in r["grid"]
                     if row["T"] == T and row["kind"] == kind and row["level"] == level]
            mean = lambda xs: sum(xs) / len(xs)
            rows.append({
                "model": exp, "corruption": f"{kind} {level}", "T": T,
                "clean ink": f"{mean([c['clean_ink_mean'] for c in cells]):.1f}",
                "ink after 1 read": f"{mean([c[exp]['ink_mean'][1] for c in cells]):.1f}",
                "ink after last read": f"{mean([c[exp]['ink_mean'][-1] for c in cells]):.1f}",
                "Hamming, query": f"{mean([c[exp]['hamming_mean'][0] for c in cells]):.1f}",
                "Hamming, last read": f"{mean([c[exp]['hamming_mean'][-1] for c in cells]):.1f}",
                "success, blank read-out (%)": f"{mean([c['blank_success_rate'] for c in cells]):.2f}",
                "success, ours (%)": f"{mean([c[exp]['success_rate'][-1] for c in cells]):.2f}",
            })
    return rows


def energy_rows(runs: list[dict]) -> list[dict]:
    """How often the energy goes down during iterative reading, per model and corruption
    (all T and levels pooled, mean over seeds): % of trajectories whose last energy is below
    the first, % that never rise, % that rise at least once."""
    cfg = runs[0]["config"]
    rows = []
    for exp in cfg["models"]:
        for kind in cfg["corruptions"]:
            st = [row[exp]["energy"] for r in runs for row in r["grid"] if row["kind"] == kind]
            n = sum(s["n"] for s in st)
            w = lambda key: sum(s[key] * s["n"] for s in st) / n * 100
            rows.append({"model": exp, "corruption": kind, "trajectories": n,
                         "energy lower at the end (%)": f"{w('decreased'):.1f}",
                         "never rises (%)": f"{w('monotone'):.1f}",
                         "rises at least once (%)": f"{w('rose'):.1f}"})
    return rows


def _model_kind(run: dict, exp: str) -> str:
    """"gpm" or "dkm": the model kind of experiment `exp`, from the run's sources."""
    for src in run["sources"]:
        if src["experiment"] == exp and src.get("model"):
            return src["model"]
    return "gpm" if exp.endswith("_gpm") else "dkm" if exp.endswith("_dkm") else exp


def _paper_level(level) -> str:
    return str(int(round(level * 100))) if isinstance(level, float) and level < 1 else str(level)


def fig_hamming(runs: list[dict], Ts: int | list[int], step: int | None = None):
    """Figs. 2 and 8: Hamming error (mean over queries, then over seeds) against iteration,
    one row per episode length in `Ts`, one panel per corruption kind, one colour per level
    (the legend, in the top row); solid GPM, dashed DKM."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    cfg = runs[0]["config"]
    Ts = [Ts] if isinstance(Ts, int) else list(Ts)
    kinds = list(cfg["corruptions"])
    fig, axes = plt.subplots(len(Ts), len(kinds), figsize=(2.9 * len(kinds), 2.7 * len(Ts) + 0.3),
                             squeeze=False, sharey=True)
    for row, T in zip(axes, Ts):
        for ax, kind in zip(row, kinds):
            levels = cfg["corruptions"][kind]
            colors = plt.cm.viridis(torch.linspace(0, 0.9, len(levels)).tolist())
            for i, (exp, style) in enumerate(zip(cfg["models"], ["-", "--", ":"])):
                for level, c in zip(levels, colors):
                    curves = [row_[exp]["hamming_mean"] for r in runs for row_ in r["grid"]
                              if row_["T"] == T and row_["kind"] == kind and row_["level"] == level]
                    if not curves:
                        continue
                    mean = torch.tensor(curves, dtype=torch.float64).mean(0)
                    ax.plot(range(len(mean)), mean.numpy(), style, color=c, label=str(level) if i == 0 else None)
            ax.set_title(f"{kind.replace('_', ' ')}, T = {T}", fontsize=9)
            ax.set_xlabel("iteration", fontsize=9)
            ax.tick_params(labelsize=8)
            if ax is row[0]:
                ax.set_ylabel("Hamming error (pixels)", fontsize=9)
            if T == Ts[0]:
                ax.legend(fontsize=8, title="level", title_fontsize=8)
    fig.tight_layout()
    return fig


def fig_examples(run: dict, kinds: list[str] | None = None, models: list[str] | None = None):
    """Fig. 7 (a-c): for each corruption in `kinds` (a row) and each model (a column), the
    clean patterns, the corrupted queries and the iterative reads (one pattern per line)."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw
    import torchvision.utils as vutils  # deferred with matplotlib

    kinds = kinds or list(run["examples"])
    models = models or [m for m in run["config"]["models"] if m in run["examples"][kinds[0]]]
    fig, axes = plt.subplots(len(kinds), len(models), figsize=(4.3 * len(models), 2.6 * len(kinds)), squeeze=False)
    for row, kind in zip(axes, kinds):
        entry = run["examples"][kind]
        clean = unpack(entry["clean"])  # (n, C, H, W)
        for ax, exp in zip(row, models):
            traj = unpack(entry[exp]["X"])  # (steps, n, C, H, W)
            steps = list(range(0, traj.shape[0], max(1, traj.shape[0] // 10)))
            rows = torch.cat([clean[None], traj[steps]], 0)  # (1 + len(steps), n, C, H, W)
            grid = vutils.make_grid(rows.transpose(0, 1).reshape(-1, *clean.shape[1:]), nrow=rows.shape[0],
                                    padding=2, pad_value=0.5)
            ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{exp.rsplit('_', 1)[-1].upper()}, {kind.replace('_', ' ')} {entry['level']}: "
                         f"clean | query | reads {steps[1]}-{steps[-1]}", fontsize=8)
            ax.set_axis_off()
    fig.tight_layout()
    return fig


def fig_energy(panels: dict[str, dict[str, list[list[float]]]], relative: bool = True):
    """Energy per iteration (GPM Fig. 7e, DKM Fig. 3c/d): one row per entry of `panels`
    ({row title: {model: curves}}), one panel per model, one thin line per pattern; with
    `relative`, each curve minus its first value, so the descent is comparable."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    ncol = max(len(c) for c in panels.values())
    fig, axes = plt.subplots(len(panels), ncol, figsize=(4.1 * ncol, 2.5 * len(panels) + 0.2), squeeze=False)
    for row, (title, curves_by_model) in zip(axes, panels.items()):
        for ax, (name, curves) in zip(row, curves_by_model.items()):
            for c in curves:
                c = torch.tensor(c, dtype=torch.float64)
                y = c - c[0] if relative else c
                ax.plot(range(1, len(c) + 1), y.numpy(), lw=0.8, alpha=0.7)
            ax.set_title(f"{name.rsplit('_', 1)[-1].upper()}, {title}".strip(", "), fontsize=9)
            ax.set_xlabel("iteration", fontsize=9)
            ax.set_ylabel("energy − energy at step 1" if relative else "energy", fontsize=9)
            ax.tick_params(labelsize=8)
    fig.tight_layout()
    return fig
