"""Capacity: GPM Fig. 4 and DKM Fig. 2 right, book/11_capacity.

Reads the artifacts of `python -m gpm_core capacity` (`gpm_core.analyses.capacity`) and the
configs of the models they scored; tables and figures only.
"""

from __future__ import annotations

import math
import statistics

import torch

from .. import artifacts
from ..config import model_profile_label, profiles
from . import grid_figure, load_analysis, mean_sd

FIG4_MODELS = ("fig4_omniglot_gpm_k8", "fig4_omniglot_gpm_k32")  # the training configs of Fig. 4a


def load(experiment: str, profile: str, seed: int = 0, results_dir=None) -> dict | None:
    """The analysis artifact results/<experiment>/<profile>-seed<N>.json, or None."""
    found = load_analysis(experiment, profile, seed, results_dir)
    return found[0] if found else None


def unpack_images(hexes: list[str], shape=(1, 28, 28)) -> torch.Tensor:
    """Inverse of `analyses.capacity.pack_images`: (N, *shape) float tensor of 0/1."""
    return torch.stack([artifacts.unpack_bits(h, shape) for h in hexes]) if hexes else torch.zeros(0, *shape)


def profiles_of(experiment: str, family: str) -> list[str]:
    """The profiles <family>_T<T> of a Fig. 4 training config, in order of T."""
    names = profiles(artifacts.REPO / "configs" / f"{experiment}.toml")
    return sorted((p for p in names if p.startswith(f"{family}_T")), key=lambda p: int(p.split("_T")[1]))


DKM_FIG2_PROFILES = {"quick": ("quick", "long"), "cpu": ("cpu_alpha_cap", "cpu", "cpu_long_alpha"), "paper": ("paper",)}


def commands(family: str, extra: str, seeds: str = "0") -> list[str]:
    """The commands that train the Fig. 4 models of one profile family ("quick", "cpu" or
    "paper") and run both capacity analyses on them. With several `seeds` ("0 1 2") the
    training goes through scripts/train-all, one length at a time, one run at a time."""
    if " " in seeds.strip():
        out = [f"JOBS=1 bash scripts/train-all {p} \"{seeds}\" {' '.join(FIG4_MODELS)}"
               for p in profiles_of(FIG4_MODELS[-1], family)]
    else:
        out = [f"python -m gpm_core train configs/{exp}.toml --profile {p} --seed {seeds} {extra}"
               for exp in FIG4_MODELS for p in profiles_of(exp, family)]
    out.append(f"python -m gpm_core capacity configs/fig4_capacity_eval.toml --profile {family} --threads 1")
    out += [f"python -m gpm_core capacity configs/dkm_fig2_capacity.toml --profile {p} --threads 1"
            for p in DKM_FIG2_PROFILES.get(family, (family,))]
    return out


def fig4_rows(analysis: dict) -> list[dict]:
    """Fig. 4a as table rows: K, T, reconstruction loss and the bound, per point."""
    return [{"K": p["K"], "T": p["T"], "recon": p["recon"]["mean"], "recon_sd": p["recon"]["sd"],
             "nll_cond": p["nll_cond"]["mean"], "kl_w": p["kl_w"]["mean"], "episodes": p["episodes"],
             "train_steps": p["train_steps"], "train_images": p["train_images"],
             "profile": p["profile"]} for p in sorted(analysis["points"], key=lambda p: (p["K"], p["T"]))]


def fig4_points(analysis: dict) -> list[dict]:
    """Fig. 4a points over model seeds: per (K, T), the mean over seeds of each seed's
    reconstruction loss (mean over its test episodes), the sd over seeds (nan for one seed),
    the per-seed values and the standard error over the test episodes of one seed (the only
    spread there is with one seed)."""
    acc: dict = {}
    for p in analysis["points"]:
        acc.setdefault((p["K"], p["T"]), []).append(p)
    out = []
    for (K, T), pts in sorted(acc.items()):
        vals = [p["recon"]["mean"] for p in sorted(pts, key=lambda p: p["seed"])]
        mean, sd = mean_sd(vals)
        out.append({"K": K, "T": T, "recon": mean, "sd_seeds": sd, "seeds": len(vals), "per_seed": vals,
                    "se_episodes": pts[0]["recon"]["sd"] / math.sqrt(pts[0]["recon"]["n"]),
                    "train_steps": pts[0]["train_steps"], "train_images": pts[0]["train_images"]})
    return out


def fig4_ordering(analysis: dict, z: float = 2.0) -> list[dict]:
    """Which memory is better at each length both sizes have: the difference of the
    reconstruction losses (small K minus large K, > 0: the larger memory is better) and its
    standard error over seeds, sqrt(sd_a^2 / n_a + sd_b^2 / n_b). The ordering is "decided"
    when |difference| > z standard errors with at least 2 seeds per size, else "undecided"."""
    pts = {(p["K"], p["T"]): p for p in fig4_points(analysis)}
    Ks = sorted({K for K, _ in pts})
    if len(Ks) < 2:
        return []
    small, large = Ks[0], Ks[-1]
    rows = []
    for T in sorted({T for K, T in pts if K == small} & {T for K, T in pts if K == large}):
        a, b = pts[(small, T)], pts[(large, T)]
        diff = a["recon"] - b["recon"]
        ok = a["seeds"] > 1 and b["seeds"] > 1
        se = math.sqrt(a["sd_seeds"] ** 2 / a["seeds"] + b["sd_seeds"] ** 2 / b["seeds"]) if ok else float("nan")
        better = f"{large} x 100" if diff > 0 else f"{small} x 100"
        rows.append({"T": T, "small": small, "large": large, "difference": diff, "se": se,
                     "seeds": f"{a['seeds']} / {b['seeds']}",
                     "verdict": f"{better} better" if ok and abs(diff) > z * se else "undecided"})
    return rows


def storage_rows(analyses: list[dict], paper: float) -> list[dict]:
    """One row per storage-test artifact (GPM Fig. 4b): the model, what was written, the
    alphas, and the Hamming errors (noisy query, after the reads, one read of the clean image,
    an all-blank answer), beside the paper's value."""
    rows = []
    for a in analyses:
        st = a["storage"]
        m = st["model"]
        rows.append({"profile": a["profile"], "model": f"{m['experiment']}/{m['profile']}-seed{m['seed']}",
                     "T_train": m["T_train"], "written": f"{st['written']:,} ({st.get('split', 'test')})",
                     "queries": st["queries"], "alpha": st.get("alpha", "model"),
                     "M finite": "–" if not st.get("pinv") else ("yes" if st["pinv"]["M_finite"] else "**no**"),
                     "noisy": st["hamming_noisy"]["mean"], "ours": st["hamming_final"]["mean"],
                     "sd": st["hamming_final"]["sd"], "paper": paper,
                     "one read, clean": st["hamming_one_read_clean"]["mean"],
                     "blank answer": st["ink_queries"]["mean"], "empty reads": f"{st['blank_final']:.1%}"})
    return rows


def fig_fig4a(analyses: list[dict]):
    """Reconstruction loss vs log2(episode length), one line per memory size (and profile);
    error bars: the sd over model seeds where there are several, else the standard error
    over the test episodes of the one seed."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for a in analyses:
        pts_all = fig4_points(a)
        for K in sorted({p["K"] for p in pts_all}):
            pts = [p for p in pts_all if p["K"] == K]
            ax.errorbar([math.log2(p["T"]) for p in pts], [p["recon"] for p in pts],
                        yerr=[p["se_episodes"] if math.isnan(p["sd_seeds"]) else p["sd_seeds"] for p in pts],
                        marker="o", ms=4, capsize=2, label=f"{K} x 100 ({a['profile']})")
    ax.set_xlabel("log2(episode length T)")
    ax.set_ylabel("reconstruction loss (nats/image)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fig_denoise_grid(storage: dict):
    """Fig. 4b: rows = queries; columns = original, noisy query, iterative reads."""
    shape = tuple(storage["image_shape"])
    g = storage["grid"]
    cols = [unpack_images(g["original"], shape), unpack_images(g["noisy"], shape)] + \
           [unpack_images(h, shape) for h in g["steps"]]
    return grid_figure(torch.stack(cols, 1), ["original", "noisy"] + [f"read {i}" for i in g["iters"]])


def fig_samples_grid(storage: dict):
    """Fig. 4c: rows = samples; columns = reads of the sample, then the nearest written image."""
    shape = tuple(storage["image_shape"])
    s = storage["samples"]
    cols = [unpack_images(h, shape) for h in s["steps"]] + [unpack_images(s["nearest"], shape)]
    return grid_figure(torch.stack(cols, 1), [f"read {i}" if i else "sample" for i in s["iters"]] + ["nearest"])


def dkm_curves(analysis: dict, term: str = "nll_cond") -> dict:
    """(model, classes) -> {"L": [...], "mean": [...], "sd": [...], "seeds": n}: the mean over
    model seeds of each seed's mean `term` (nll_cond, or its parts recon and kl_w), and the sd
    over seeds."""
    acc: dict = {}
    for row in analysis["rows"]:
        for cell in row["cells"]:
            acc.setdefault((row["model"], cell["classes"]), {}).setdefault(cell["L"], []).append(
                cell[term]["mean"])
    out = {}
    for key, by_L in sorted(acc.items()):
        Ls = sorted(by_L)
        stats = [mean_sd(by_L[L]) for L in Ls]
        out[key] = {"L": Ls, "mean": [m for m, _ in stats], "sd": [sd for _, sd in stats],
                    "seeds": len(by_L[Ls[0]])}
    return out


def _count(x: float):
    """A mean count as an int when it is one (every episode of the cell had that many)."""
    return int(x) if float(x).is_integer() else x


def dkm_growth_rows(analysis: dict) -> list[dict]:
    """Where DKM Fig. 2's change from the shortest to the longest episode comes from, one row
    per (model, classes): the change of the bound and of its two terms (reconstruction, KL of
    the addresses), and the reconstruction's change split at `L_full`, the first length whose
    episodes hold every distinct test image of their classes (`distinct`, the most an episode
    of that many classes can hold): `recon_distinct` while the distinct images grow (shortest
    L to L_full), `recon_repeat` while the same images are written again (L_full to longest)."""
    curves = {t: dkm_curves(analysis, t) for t in ("nll_cond", "recon", "kl_w")}
    distinct = {(c["classes"], c["L"]): c["distinct_images"] for c in analysis["rows"][0]["cells"]}
    rows = []
    for (model, n_cls), cv in curves["nll_cond"].items():
        Ls = cv["L"]
        most = max(distinct[(n_cls, L)] for L in Ls)
        full = next(i for i, L in enumerate(Ls) if distinct[(n_cls, L)] == most)
        rec, kl = curves["recon"][(model, n_cls)]["mean"], curves["kl_w"][(model, n_cls)]["mean"]
        rows.append({"model": model.upper(), "classes": n_cls, "distinct_first": _count(distinct[(n_cls, Ls[0])]),
                     "distinct": _count(most), "L_full": Ls[full], "nll": cv["mean"][-1] - cv["mean"][0],
                     "recon": rec[-1] - rec[0], "kl": kl[-1] - kl[0], "recon_distinct": rec[full] - rec[0],
                     "recon_repeat": rec[-1] - rec[full], "seeds": cv["seeds"]})
    return rows


def fig_dkm_fig2(analyses: list[dict], off_scale: float = 10.0):
    """DKM Fig. 2 right: negative conditional ELBO vs episode length, one panel per analysis
    profile (two panels a row), one colour per model, one line style per number of classes. A point more than
    `off_scale` times the panel's smallest value (a diverged GPM episode, up to 1e6 and more)
    would flatten the rest on a linear axis: it is drawn as a triangle on the top edge,
    labelled with its value."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    ncols = min(2, len(analyses))  # at most 8.4 in wide: the page shows it near full size
    nrows = -(-len(analyses) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[len(analyses):]:
        ax.set_visible(False)
    colours = {"gpm": "tab:blue", "dkm": "tab:red"}
    styles = ["-", "--", ":", "-."]
    for ax, a in zip(axes, analyses):
        curves = dkm_curves(a)
        classes = sorted({c for _, c in curves})
        finite = [m for cv in curves.values() for m in cv["mean"] if math.isfinite(m)]
        cap = off_scale * min(finite) if finite else math.inf
        shown = [m for m in finite if m <= cap]
        top = max(shown) + 0.08 * (max(shown) - min(shown) + 1) if shown else cap
        for (model, n_cls), cv in curves.items():
            keep = [i for i, m in enumerate(cv["mean"]) if m <= cap]  # also drops nan and inf
            ax.errorbar([cv["L"][i] for i in keep], [cv["mean"][i] for i in keep],
                        yerr=[0 if math.isnan(cv["sd"][i]) else cv["sd"][i] for i in keep],
                        color=colours.get(model), ls=styles[classes.index(n_cls) % len(styles)],
                        marker="D" if model == "dkm" else "o", ms=3, capsize=2,
                        label=f"{model.upper()}, {n_cls} classes")
            for L, m in zip(cv["L"], cv["mean"]):
                if math.isfinite(m) and m > cap:
                    ax.plot([L], [top], marker="^", ms=6, color=colours.get(model), clip_on=False)
                    ax.annotate(f"{m:.2g}", (L, top), textcoords="offset points", xytext=(6, -4), fontsize=8,
                                color=colours.get(model))
        if shown:
            ax.set_ylim(top=top)
        ax.set_xlabel("episode length L")
        ax.set_ylabel("−conditional ELBO (nats/image)")
        models = ", ".join(dict.fromkeys(f"{s['model'].upper()} {s['profile']}" for s in a.get("sources", [])))
        ax.set_title(f"{models or model_profile_label(a['config']['capacity']['model_profile'])} (trained on T = 32)",
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[len(analyses) - 1].legend(fontsize=8)
    fig.tight_layout()
    return fig


def gpm_divergence_rows(analysis: dict) -> list[dict]:
    """GPM rows of a dkm_fig2 analysis: per (classes, L), the episodes whose bound is not
    finite and those where alpha * sigma_max^2 of W0 or M is past the iteration's limit of 2
    (a diverged iteration can also give a finite, huge bound; both summed over seeds), and alpha * sigma_max^2 of W0 and of M (`pinv_ratio`): the
    median over seeds of the per-seed median over episodes, and the largest value over
    episodes, seeds and both matrices."""
    acc: dict = {}
    for row in analysis["rows"]:
        if row["model"] != "gpm":
            continue
        for c in row["cells"]:
            a = acc.setdefault((c["classes"], c["L"]), {"bad": 0, "n": 0, "over": 0, "W0": [], "M": [], "max": []})
            a["bad"] += c["nll_cond"].get("nonfinite", 0)
            a["n"] += c["nll_cond"]["n"]
            ratio = c.get("alpha_sigma_max_sq")
            if ratio is not None:
                a["over"] += ratio.get("over_limit", 0)
                for name in ("W0", "M"):
                    a[name].append(ratio[name]["median"])
                    a["max"].append(ratio[name]["max"])
    return [{"classes": k[0], "L": k[1], "bad": v["bad"], "nonfinite": f"{v['bad']} of {v['n']}",
             "over": v["over"], "over_limit": f"{v['over']} of {v['n']}",
             "ratio_W0": statistics.median(v["W0"]) if v["W0"] else None,
             "ratio_M": statistics.median(v["M"]) if v["M"] else None,
             "ratio_max": max(v["max"]) if v["max"] else None}
            for k, v in sorted(acc.items())]
