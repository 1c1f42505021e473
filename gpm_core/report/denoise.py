"""Denoising and attractor dynamics: GPM Table 2 and Figs. 2, 7, 8; DKM Fig. 3
(book/09_denoising, book/10_attractor_dynamics).

Reads the artifacts of `python -m gpm_core denoise` (`gpm_core.analyses.denoise`); tables
and figures only.
"""

from __future__ import annotations

import json

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


def model_steps(run: dict) -> dict[str, int]:
    """{experiment: training steps} of the model results an artifact names in its sources."""
    return {src["experiment"]: json.loads((artifacts.REPO / src["path"]).read_text())["steps"]
            for src in run["sources"]}


def seeds_of(runs: list[dict]) -> list[int]:
    """The model seeds of the artifacts, sorted."""
    return sorted(r["seed"] for r in runs)


def _mean_sd(vals: list[float]) -> tuple[float, float]:
    t = torch.tensor(vals, dtype=torch.float64)
    return t.mean().item(), (t.std().item() if len(vals) > 1 else float("nan"))


def _fmt(mean: float, sd: float) -> str:
    return fmt_mean_sd(mean, sd, 1)


def _grid_rows(runs, T, kind, level):
    return [row for r in runs for row in r["grid"] if row["T"] == T and row["kind"] == kind and row["level"] == level]


def table2_cells(runs: list[dict]) -> list[dict]:
    """Table 2 cell by cell, as numbers: one dict per (Table 2 corruption, T) with, per model
    kind ("gpm", "dkm"), the success rate (%) after the last read (mean and sd over seeds, the
    per-seed values), the paper's value (Omniglot only) and the gap; beside them the two
    baselines on the same queries (an all-blank answer; no read, the corrupted query
    returned unchanged; both the same for every model) and each model's success when the
    query is the clean image itself (`clean_reads`: the most it could reach)."""
    if not runs:
        return []
    cfg = runs[0]["config"]
    on_omniglot = runs[0]["data"]["test"]["dataset"] == "omniglot"
    out = []
    for kind, level in cfg["table2_levels"].items():
        for T in cfg["T"]:
            rows = _grid_rows(runs, T, kind, level)
            cell = {"kind": kind, "level": level, "T": T, "corruption": f"{kind.replace('_', ' ')} {level}",
                    "blank": _mean_sd([r["blank_success_rate"] for r in rows])[0],
                    "no_read": (_mean_sd([r["query_success_rate"] for r in rows])[0]
                                if all("query_success_rate" in r for r in rows) else None)}
            for exp in cfg["models"]:
                m = _model_kind(runs[0], exp)
                vals = [r[exp]["success_rate"][-1] for r in rows]
                mean, sd = _mean_sd(vals)
                paper = TABLE2.get((m, f"{kind}_{_paper_level(level)}")) if on_omniglot else None
                p = paper[TABLE2_T.index(T)] if paper is not None and T in TABLE2_T else None
                clean = [c[exp]["success_rate"][-1] for run in runs for c in run.get("clean_reads", [])
                         if c["T"] == T]
                cell[m] = {"experiment": exp, "mean": mean, "sd": sd, "per_seed": vals, "paper": p,
                           "gap": None if p is None else mean - p,
                           "clean_read": _mean_sd(clean)[0] if clean else None}
            out.append(cell)
    return out


def table2_long_rows(runs: list[dict]) -> list[dict]:
    """Table 2 as a Markdown-ready table, one row per (corruption, T): for GPM and DKM the
    paper's value, ours (mean ± sd over seeds) and the gap (ours − paper), then the two
    baselines and GPM's success on clean queries."""
    rows = []
    for c in table2_cells(runs):
        row = {"corruption": c["corruption"], "T": c["T"]}
        for m in ("gpm", "dkm"):
            if m not in c:
                continue
            v, M = c[m], m.upper()
            row[f"{M} paper"] = "–" if v["paper"] is None else f"{v['paper']:.2f}"
            row[f"{M} ours"] = _fmt(v["mean"], v["sd"])
            row[f"{M} gap"] = "–" if v["gap"] is None else f"{v['gap']:+.1f}"
        row["all-blank"] = f"{c['blank']:.1f}"
        row["no read"] = "not measured" if c["no_read"] is None else f"{c['no_read']:.1f}"
        g = c.get("gpm", {}).get("clean_read")
        row["GPM, clean query"] = "not measured" if g is None else f"{g:.1f}"
        rows.append(row)
    return rows


def table2_targets(runs: list[dict]) -> list[dict]:
    """The three targets for Table 2, cell by cell (means over seeds): GPM succeeds at the
    shortest T at least `20 %` for every corruption; GPM's success falls as T grows (each
    longer T no higher than the shorter one); GPM above DKM in every cell. One dict per check:
    {"target", "corruption", "T", "value", "met"}."""
    cells = table2_cells(runs)
    if not cells:
        return []
    out = []
    T0 = min(c["T"] for c in cells)
    for c in cells:
        g, d = c["gpm"], c["dkm"]
        if c["T"] == T0:
            out.append({"target": f"GPM ≥ 20 % at T = {T0}", "corruption": c["corruption"], "T": c["T"],
                        "value": f"{g['mean']:.1f} %", "met": g["mean"] >= 20.0})
        out.append({"target": "GPM above DKM", "corruption": c["corruption"], "T": c["T"],
                    "value": f"{g['mean']:.1f} vs {d['mean']:.1f} %", "met": g["mean"] > d["mean"]})
    for corr in dict.fromkeys(c["corruption"] for c in cells):
        seq = sorted((c["T"], c["gpm"]["mean"]) for c in cells if c["corruption"] == corr)
        out.append({"target": "GPM falls with T", "corruption": corr, "T": ", ".join(str(T) for T, _ in seq),
                    "value": " → ".join(f"{v:.1f}" for _, v in seq),
                    "met": all(b <= a for (_, a), (_, b) in zip(seq, seq[1:]))})
    return out


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


def clean_read_rows(runs: list[dict]) -> list[dict]:
    """Per model and T (mean over seeds): the Hamming error and success rate when the query
    is the written image itself, after one read and after the last: how well the memory
    returns what it holds, before any corruption."""
    cfg = runs[0]["config"]
    rows = []
    for exp in cfg["models"]:
        for T in cfg["T"]:
            cells = [c[exp] for r in runs for c in r.get("clean_reads", []) if c["T"] == T]
            if not cells:
                continue
            mean = lambda key, step: sum(c[key][step] for c in cells) / len(cells)
            rows.append({"model": _model_kind(runs[0], exp).upper(), "T": T,
                         "Hamming, 1 read": f"{mean('hamming_mean', 1):.1f}",
                         "Hamming, last read": f"{mean('hamming_mean', -1):.1f}",
                         "success, 1 read (%)": f"{mean('success_rate', 1):.1f}",
                         "success, last read (%)": f"{mean('success_rate', -1):.1f}"})
    return rows


def energy_rows(runs: list[dict]) -> list[dict]:
    """How often the energy goes down during iterative reading, per model and corruption
    (all T and levels pooled, mean over seeds): % of trajectories whose last energy is below
    the first, % that never rise, % that rise at least once; and the mean energy after the
    first and the last read."""
    cfg = runs[0]["config"]
    rows = []
    for exp in cfg["models"]:
        for kind in cfg["corruptions"]:
            st = [row[exp]["energy"] for r in runs for row in r["grid"] if row["kind"] == kind]
            n = sum(s["n"] for s in st)
            w = lambda key: sum(s[key] * s["n"] for s in st) / n * 100
            e = lambda step: sum(s["mean"][step] * s["n"] for s in st) / n
            rows.append({"model": exp, "corruption": kind, "trajectories": n,
                         "energy lower at the end (%)": f"{w('decreased'):.1f}",
                         "never rises (%)": f"{w('monotone'):.1f}",
                         "rises at least once (%)": f"{w('rose'):.1f}",
                         "mean energy, read 1": f"{e(0):.1f}", "mean energy, last read": f"{e(-1):.1f}"})
    return rows


def energy_shares(runs: list[dict]) -> dict[str, dict[str, float]]:
    """{model kind: {"rose", "decreased"}}: the % of all grid trajectories (every T, kind,
    level and seed) whose energy rises at least once, and whose last energy is below the first."""
    cfg = runs[0]["config"]
    out = {}
    for exp in cfg["models"]:
        st = [row[exp]["energy"] for r in runs for row in r["grid"]]
        n = sum(s["n"] for s in st)
        out[_model_kind(runs[0], exp)] = {k: sum(s[k] * s["n"] for s in st) / n * 100 for k in ("rose", "decreased")}
    return out


def _model_kind(run: dict, exp: str) -> str:
    """"gpm" or "dkm": the model kind of experiment `exp`, from the run's sources."""
    for src in run["sources"]:
        if src["experiment"] == exp and src.get("model"):
            return src["model"]
    return "gpm" if exp.endswith("_gpm") else "dkm" if exp.endswith("_dkm") else exp


def _paper_level(level) -> str:
    """The paper's name of a level: 0.15 -> "15", 12 -> "12"; a symmetric range of rotation
    angles [-30, 30] -> "30" (Table 2's "rotation 30", read as an angle drawn from the range)."""
    if isinstance(level, (list, tuple)):
        return _paper_level(level[1]) if len(level) == 2 and level[0] == -level[1] else str(level)
    if isinstance(level, float) and level < 1:
        return str(int(round(level * 100)))
    return str(int(level)) if float(level).is_integer() else str(level)


def fig_hamming(runs: list[dict], Ts: int | list[int], step: int | None = None):
    """Figs. 2 and 8: Hamming error (mean over queries, then over seeds) against iteration,
    one row per episode length in `Ts`, one panel per corruption kind, one colour per level
    (the legend, in the top row); solid GPM, dashed DKM."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    cfg = runs[0]["config"]
    Ts = [Ts] if isinstance(Ts, int) else list(Ts)
    kinds = list(cfg["corruptions"])
    width = min(2.9, 8.4 / len(kinds))  # at most 8.4 in in all: legible when fitted to the page
    fig, axes = plt.subplots(len(Ts), len(kinds), figsize=(width * len(kinds), 2.7 * len(Ts) + 0.3),
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


def _model_label(run: dict, exp: str) -> str:
    return _model_kind(run, exp).upper()


def model_labels(run: dict) -> dict[str, str]:
    """{experiment: "GPM" | "DKM"} for the models of an artifact (figure titles, tables)."""
    return {exp: _model_label(run, exp) for exp in run["config"]["models"]}


def fig_examples(run: dict, kinds: list[str] | None = None, models: list[str] | None = None,
                 which: str = "examples"):
    """Fig. 7 (a-d): for each corruption in `kinds` (a row) and each model (a column), the
    clean patterns, the corrupted queries and the iterative reads (one pattern per line).
    `which` = "table2_examples": the Table 2 queries at the shortest T instead."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw
    import torchvision.utils as vutils  # deferred with matplotlib

    kinds = kinds or list(run[which])
    models = models or [m for m in run["config"]["models"] if m in run[which][kinds[0]]]
    fig, axes = plt.subplots(len(kinds), len(models), figsize=(4.3 * len(models), 2.6 * len(kinds)), squeeze=False)
    for row, kind in zip(axes, kinds):
        entry = run[which][kind]
        clean = unpack(entry["clean"])  # (n, C, H, W)
        for ax, exp in zip(row, models):
            traj = unpack(entry[exp]["X"])  # (steps, n, C, H, W)
            steps = list(range(0, traj.shape[0], max(1, traj.shape[0] // 10)))
            rows = torch.cat([clean[None], traj[steps]], 0)  # (1 + len(steps), n, C, H, W)
            grid = vutils.make_grid(rows.transpose(0, 1).reshape(-1, *clean.shape[1:]), nrow=rows.shape[0],
                                    padding=2, pad_value=0.5)
            ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1)
            level = f"±{abs(entry['level'][1])}" if isinstance(entry["level"], list) else entry["level"]
            ax.set_title(f"{_model_label(run, exp)}, {kind.replace('_', ' ')} {level}, T = {entry['T']}: "
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
