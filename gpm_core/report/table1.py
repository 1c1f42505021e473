"""GPM Table 1 (binarized columns), the recipe ablation, the learning curves and the time to
a level of the bound: book/07_table1.

The chapter renders through this module; it also hands the chapter the shared helpers of
`gpm_core.report`, the independent-pixel baseline and `runs.load_trained` (Fig. 6 scores a
stored model), so that the chapter imports one module.

Table 1's rows (`ROWS`) are configs: `table1_<dataset>_<suffix>.toml`. The two GPM rows
differ in how the memory is read and W is drawn (the authors' code vs the paper's
Algorithm 1); DKM and the VAE use the same networks (the authors' ResNet-BatchNorm nets).
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import torch

from ..artifacts import REPO, load_analyses, load_results
from ..config import profiles as config_profiles
from ..baselines import independent_pixel_nll  # noqa: F401 (for book/07_table1)
from ..runs import load_trained  # noqa: F401 (for book/07_table1)
from . import RESULTS, finished_groups, fmt_mean_sd, group_runs, rows_markdown, seed_summary  # noqa: F401 (book/07_table1)
from .paper_numbers import AUTHORS_CODE, TABLE1

# (row label, config suffix: configs/table1_<dataset>_<suffix>.toml, TABLE1 key of the paper's value)
ROWS = (
    ("GPM (authors' code)", "gpm_authors", "gpm"),
    ("GPM (paper's text)", "gpm_iid", "gpm"),
    ("DKM", "dkm_resnet", "dkm"),
    ("VAE (same nets, no memory)", "vae", None),
)
PROFILES = ("cpu", "cpu_alpha", "cpu_alpha_cap", "cpu_long", "cpu_long_alpha", "paper")


def table1(results_dir=RESULTS, metric: str = "nll_cond", datasets=("mnist", "omniglot"),
           rows=ROWS, profiles=PROFILES) -> list[dict]:
    """Rows of GPM Table 1 (binarized columns): the paper's value vs ours, per row of `rows`,
    dataset and profile (of `profiles` that the row's config has; `paper` always). Missing
    cells are rows with ours = None, so a table shows what is missing. 'ratio' is ours / paper
    (the issue targets are stated as such ratios)."""
    groups = group_runs(results_dir)
    out = []
    for dataset in datasets:
        for label, suffix, key in rows:
            paper = TABLE1.get((key, dataset)) if key else None
            exp = f"table1_{dataset}_{suffix}"
            config = REPO / "configs" / f"{exp}.toml"
            has = config_profiles(config) if config.exists() else []
            for profile in [p for p in profiles if p == "paper" or p in has]:
                s = seed_summary(groups.get((exp, profile), []), metric)
                out.append({
                    "model": label, "experiment": exp, "dataset": dataset, "profile": profile,
                    "paper": paper.value if paper else None,
                    "ours": s.get("mean"), "sd": s.get("sd"), "n_seeds": s.get("n_seeds", 0),
                    "per_seed": s.get("per_seed", {}), "unit": s.get("unit", paper.unit if paper else ""),
                    # a run with no paper value to compare with: "–", not "not run"
                    "gap": (s["mean"] - paper.value) if s and paper else ("–" if s else None),
                    "ratio": (s["mean"] / paper.value) if s and paper else ("–" if s else None),
                    "steps": s.get("steps", []), "wall_time_s": s.get("wall_time_s", []),
                    "devices": s.get("devices", []), "git": s.get("git_commits", []),
                    "command": f"python -m gpm_core train configs/{exp}.toml --profile {profile} --seed N",
                })
    return out


# The bars this reproduction set itself for its CPU profiles (not the paper's numbers): (config
# suffix, profile, datasets, bar) with bar ("x paper", f) = f times the paper's cell of that row,
# or ("nats", v) = an absolute level. The i.i.d. bars sit below Kanerva++'s 66.24 (GPM Table 1),
# the best published Omniglot number of another memory model.
TARGETS = (
    ("gpm_authors", "cpu_alpha_cap", ("omniglot", "mnist"), ("x paper", 1.25)),
    ("gpm_authors", "cpu_long_alpha", ("omniglot", "mnist"), ("x paper", 1.0)),
    ("gpm_iid", "cpu", ("omniglot",), ("nats", 70.0)),
    ("gpm_iid", "cpu_long", ("omniglot",), ("nats", 60.0)),
    ("dkm_resnet", "cpu", ("omniglot", "mnist"), ("x paper", 1.1)),
    ("dkm_resnet", "cpu_long", ("omniglot", "mnist"), ("x paper", 1.0)),
)


def target_rows(rows: list[dict], targets=TARGETS) -> list[dict]:
    """Each target of `targets` against `table1`'s rows: the bar in nats, ours (mean over
    seeds) and 'verdict' = 'met' (ours <= bar), 'missed', or 'not run'."""
    by = {(r["experiment"], r["profile"]): r for r in rows}
    out = []
    for suffix, profile, datasets, (kind, value) in targets:
        for dataset in datasets:
            r = by.get((f"table1_{dataset}_{suffix}", profile))
            if r is None:
                continue
            bar = value * r["paper"] if kind == "x paper" else value
            ours = r["ours"]
            out.append({"model": r["model"], "dataset": dataset, "profile": profile,
                        "rule": f"≤ {value:g} × paper" if kind == "x paper" else f"≤ {value:g} nats",
                        "bar": bar, "ours": ours, "sd": r["sd"], "n_seeds": r["n_seeds"],
                        "verdict": "not run" if ours is None else ("met" if ours <= bar else "missed")})
    return out


def draw_rows(experiments, profiles=PROFILES, results_dir=RESULTS) -> list[dict]:
    """Each finished GPM run scored with both draws of W on the same written memories: the
    draw it was trained with ('nll_cond') and the other. Only the i.i.d. score is a bound (the
    KL term is that of i.i.d. noise; book/07_table1)."""
    out = []
    for exp, profile, runs in finished_groups(experiments, profiles, results_dir):
        iid, shared = seed_summary(runs, "nll_cond_iid"), seed_summary(runs, "nll_cond_shared")
        out.append({"experiment": exp, "profile": profile, "trained with": runs[0]["config"]["model"]["w_sample"],
                    "iid": iid.get("mean"), "shared": shared.get("mean"), "n_seeds": len(runs),
                    "sigma_w": [round(sigma_w_of(r), 3) for r in runs]})
    return out


def decomposition_rows(experiments, profiles=PROFILES, results_dir=RESULTS) -> list[dict]:
    """Where each run's test bound goes: nll_cond = recon + KL(q(W) || p(W)) per image, the
    trained sigma_w, and, from the training curve, the auto-encoder term L_AE at the end and
    the KL on training episodes at a quarter of the run and at the end, and the scale of the
    trained prior memory (`memory_scale_of`); one row per run."""
    groups = group_runs(results_dir, experiments)
    out = []
    for exp in experiments:
        for profile in profiles:
            for r in groups.get((exp, profile), []):
                m, last = r["metrics"], r["loss_curve"][-1]
                quarter = min(r["loss_curve"], key=lambda p: abs(p["step"] - r["steps"] / 4))
                out.append({"run": f"{exp} {profile} seed {r['seed']}", "nll_cond": m["nll_cond"]["value"],
                            "recon": m["recon"]["value"], "kl_w": m["kl_w"]["value"],
                            "kl_share": m["kl_w"]["value"] / m["nll_cond"]["value"],
                            "train_ae": last.get("ae"), "train_kl_w": last.get("kl_w"),
                            "train_kl_w_quarter": quarter.get("kl_w"),
                            "sigma_w": sigma_w_of(r) if r["model"] != "vae" else None,
                            **(memory_scale_of(r) if r["model"] != "vae" else {})})
    return out


def kl_split_rows(experiments, profiles=("cpu",), results_dir=RESULTS) -> list[dict]:
    """The KL term of each stored GPM/DKM run split in two, per image on its test episodes:
    q(W) = N(W_mean, sigma_w^2 I) with one trained sigma_w for every row, so
    KL = 1/2 sum_k (sigma_w^2 - 1 - ln sigma_w^2) + 1/2 ||w_mean||^2; 'kl_sigma' is the first
    part, K/2 (sigma_w^2 - 1 - ln sigma_w^2), the same for every image and address; 'kl_mean'
    the rest (1/2 ||w_mean||^2, from the stored test KL). 'scale_opt' is the u = 1/s^2 that
    minimises the KL over rescalings R -> s R, w -> w / s, sigma_w -> sigma_w / s, which keep
    the read-out's mean and noise w R (1 = the trained scale is the best one):
    u* = K / (K sigma_w^2 + ||w_mean||^2), and 'kl_rescaled' the KL there. A VAE row (kind
    "vae") has 'kl' and 'recon' only."""
    groups = group_runs(results_dir, experiments)
    out = []
    for exp in experiments:
        for profile in profiles:
            for r in groups.get((exp, profile), []):
                m = r["metrics"]
                row = {"experiment": exp, "profile": profile, "seed": r["seed"], "model": r["model"],
                       "recon": m["recon"]["value"], "kl": m["kl_w"]["value"]}
                if r["model"] != "vae":
                    K, s2 = r["config"]["model"]["memory_slots"], sigma_w_of(r) ** 2
                    kl_sigma = 0.5 * K * (s2 - 1.0 - math.log(s2))
                    kl_mean = row["kl"] - kl_sigma
                    u = K / (K * s2 + 2.0 * kl_mean)
                    row.update(sigma_w2=s2, kl_sigma=kl_sigma, kl_mean=kl_mean, scale_opt=u,
                               kl_rescaled=0.5 * K * (s2 * u - 1.0 - math.log(s2 * u)) + kl_mean * u)
                out.append(row)
    return out


def split_mean(rows: list[dict], experiment: str, key: str, profile: str = "cpu") -> float:
    """The mean over seeds of `key` in the `kl_split_rows` rows of `experiment` and `profile`."""
    return statistics.mean(r[key] for r in rows if r["experiment"] == experiment and r["profile"] == profile)


def _state_dict(result: dict) -> dict:
    path = Path(result["path"]).parent / result["state_dict"]["path"]
    return torch.load(path, map_location="cpu", weights_only=True)


def sigma_w_of(result: dict) -> float:
    """The trained sigma_w of a stored GPM/DKM run (from its state_dict beside its JSON)."""
    return float(_state_dict(result)["log_sigma_w"].exp())


def memory_scale_of(result: dict) -> dict:
    """The scale of the trained prior memory of a stored GPM/DKM run: 'm0_rms', the root mean
    square of the elements of M0 (DKM: R0), model.memory_init_std at the start; and for GPM with a fixed
    alpha, 'alpha_smax2' = alpha_memory * sigma_max(M0)^2, which the Ben-Cohen iteration needs
    below 2 (book/03_ben_cohen); '–' where it does not apply (DKM, alpha "auto", exact pinv)."""
    sd = _state_dict(result)
    M0 = (sd["M0"] if "M0" in sd else sd["R0"]).float()
    out = {"m0_rms": float(M0.square().mean().sqrt()), "alpha_smax2": "–"}
    alpha = result["config"]["model"]["alpha_memory"]
    if "M0" in sd and alpha != "auto" and result["config"]["model"]["pinv"] == "ben_cohen":
        out["alpha_smax2"] = float(alpha * torch.linalg.matrix_norm(M0, ord=2) ** 2)
    return out


def ablation_rows(experiment: str, results_dir=RESULTS, seed: int = 0, base: str = "authors") -> list[dict]:
    """One row per arm (profile) of a recipe ablation: its description, the final bound on the
    test episodes with each draw of W, the training time per step, and the change of the
    bound against the `base` arm."""
    runs = {r["profile"]: r for r in load_results(experiment, results_dir=results_dir) if r["seed"] == seed}
    if base not in runs:
        raise FileNotFoundError(f"no results/{experiment}/{base}-seed{seed}.json: train the arms "
                                f"(python -m gpm_core train configs/{experiment}.toml --profile ARM --seed {seed})")
    ref = runs[base]["metrics"]["nll_cond"]["value"]
    out = []
    for arm, r in runs.items():
        m = r["metrics"]
        out.append({"arm": arm, "description": r["description"], "nll_cond": m["nll_cond"]["value"],
                    "sd": m["nll_cond"]["sd"],  # over the test episodes
                    "change": m["nll_cond"]["value"] - ref,
                    "iid": m.get("nll_cond_iid", {}).get("value"), "kl_w": m["kl_w"]["value"],
                    "step_ms": 1000 * r["train_time_s"] / r["steps"], "steps": r["steps"],
                    "episodes_per_step": r["config"]["train"]["batch_size"]})
    return sorted(out, key=lambda row: (row["arm"] != base, row["nll_cond"]))


def address_rows(experiments, profiles, results_dir=RESULTS) -> list[dict]:
    """One row per stability analysis (`python -m gpm_core stability RESULT`) of a run of
    `experiments` x `profiles`, on its test episodes: alpha of W0+, alpha times W0's median
    squared singular value, and the mean squared sizes of the writing weights W0 and of the
    reading weights W (KL(q(W) || p(W)) pays |W|^2 / 2 per image) with their ratio."""
    out = []
    for exp in experiments:
        for a in load_analyses(f"stability_{exp}", results_dir=results_dir):
            if a["profile"] not in profiles or "address_sizes" not in a:
                continue
            sizes, margins = a["address_sizes"]["test"], a["margins"]["test"]
            out.append({"run": f"{exp} {a['profile']} seed {a['seed']}", "experiment": exp, "profile": a["profile"],
                        "seed": a["seed"], "alpha_weight": a["alpha_weight"],
                        "w0_direction": margins["W0_median"]["median"],
                        "w0": sizes["W0"]["median"], "w": sizes["W"]["median"], "episodes": sizes["W0"]["n"],
                        "ratio": sizes["W"]["median"] / sizes["W0"]["median"]})
    return out


def time_to(result: dict, level: float) -> dict | None:
    """When the test curve of `result` first reaches `level` (linear interpolation between
    the scored points): {'step', 'train_time_s', 'first'}, 'first' True when the first scored
    point is already at or below the level (the crossing is then at or before it); None if
    the curve never reaches it."""
    curve = result.get("test_curve") or []
    prev = None
    for p in curve:
        if p["nll_cond"] <= level:
            if prev is None:
                return {"step": p["step"], "train_time_s": p["train_time_s"], "first": True}
            f = (prev["nll_cond"] - level) / (prev["nll_cond"] - p["nll_cond"])
            return {"step": prev["step"] + f * (p["step"] - prev["step"]),
                    "train_time_s": prev["train_time_s"] + f * (p["train_time_s"] - prev["train_time_s"]),
                    "first": False}
        prev = p
    return None


def time_to_rows(results: list[dict], level: float = AUTHORS_CODE["time_to_71"].level) -> list[dict]:
    """Time to reach `level` nats/image on the test curve, per run, beside the authors' code
    (`paper_numbers.AUTHORS_CODE`): step time, crossing step and seconds, and the ratio."""
    ref = AUTHORS_CODE["time_to_71"].value
    out = []
    for r in results:
        t = time_to(r, level)
        if t is None:
            step = f"not reached in {r['steps']}"
        else:  # a crossing before the first scored point is only bounded by it
            step = f"≤ {t['step']} (first scored point)" if t["first"] else round(t["step"])
        out.append({"run": f"{r['experiment']} {r['profile']} seed {r['seed']}",
                    "step_ms": 1000 * r["train_time_s"] / r["steps"], "step": step,
                    "seconds": "–" if t is None else t["train_time_s"],
                    "ratio": "–" if t is None else t["train_time_s"] / ref})
    return out


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


def fig_test_curves(results: list[dict], labels: list[str] | None = None, x: str = "step",
                    levels: dict[str, float] | None = None, title: str = "", ymax: float | None = None):
    """The test bound (nll_cond on the curve episodes, `train.eval_every`) of each run against
    the step or the training time (x = 'train_time_s', in minutes), log y-axis, with horizontal
    reference `levels` {label: value} (e.g. the paper's number). With `ymax`, the axis stops
    there and a run that goes above it is marked "(off scale)" in the legend."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw
    from matplotlib.ticker import FuncFormatter

    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    colours = plt.get_cmap("tab20").colors
    for i, r in enumerate(results):
        curve = r.get("test_curve") or []
        label = labels[i] if labels else f"{r['experiment']} {r['profile']} seed {r['seed']}"
        if ymax is not None and any(p["nll_cond"] > ymax for p in curve):
            label += " (off scale)"
        xs = [p[x] / (60 if x == "train_time_s" else 1) for p in curve]
        ax.plot(xs, [p["nll_cond"] for p in curve], marker=".", lw=1.2, ms=3, label=label,
                color=colours[(2 * i) % 20 + (2 * i) // 20 % 2])
    for name, value in (levels or {}).items():
        ax.axhline(value, color="k", lw=0.8, ls=":")
        ax.annotate(name, (ax.get_xlim()[1], value), ha="right", va="bottom", fontsize=9)
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 60, not 6 x 10^1
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    if ymax is not None:
        ax.set_ylim(top=ymax)
    ax.set_xlabel("training step" if x == "step" else "training time (minutes, one CPU thread)", fontsize=10)
    ax.set_ylabel("test bound (nats/image)", fontsize=10)
    ax.tick_params(labelsize=9)
    ax.grid(alpha=0.3, which="both")
    if results:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def fig_table1_curves(dataset: str, profiles=("cpu", "cpu_alpha_cap", "cpu_long", "cpu_long_alpha"), results_dir=RESULTS):
    """The test curves of every Table 1 run of `dataset` (rows `ROWS`, `profiles`) against the
    training time, with the paper's GPM value as a reference line; a figure that says so when
    no run has a test curve yet."""
    experiments = {f"table1_{dataset}_{suffix}" for _, suffix, _ in ROWS}
    runs = sorted((r for r in load_results(results_dir=results_dir)
                   if r["experiment"] in experiments and r["profile"] in profiles and r.get("test_curve")),
                  key=lambda r: (r["experiment"], r["profile"], r["seed"]))
    paper = TABLE1[("gpm", dataset)].value
    fig = fig_test_curves(runs, [f"{r['experiment'].removeprefix(f'table1_{dataset}_')} {r['profile']} "
                                 f"seed {r['seed']}" for r in runs],
                          x="train_time_s", title=f"binarized {dataset}", levels={f"paper GPM {paper}": paper})
    if not runs:
        fig.axes[0].text(0.5, 0.5, "no run with a test curve yet", ha="center", transform=fig.axes[0].transAxes)
    return fig
