"""Tables and figures of the real-valued chapter (GPM Table 1's CIFAR10 column and Table 3),
built from `results/` and `gpm_core.report.paper_numbers` only.

The quantity is the papers' conditional bound per dimension: `bits_per_dim` in the result
files, i.e. `nll_cond` (nats/image) / (C H W ln 2), with the DMoL likelihood over 256 grey
levels per sub-pixel. Nothing here trains; the chapter calls these functions and shows
what they return. The width study (`width_rows`, `fig_width_curves`) reads the arms of
configs/width_fashion_mnist_gpm.toml: the same recipe at 16/32/64/256 filters, equal training time.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ..artifacts import REPO, load_results
from ..config import config_from_dict, load_config, profiles, to_dict
from ..models import build_model
from . import RESULTS, finished_groups, fmt_mean_sd, group_runs, image_grid, model_and_episode, seed_summary
from .paper_numbers import TABLE1, TABLE3
from .samples import nearest_distance
from .table1 import end_slope, fig_training_curves  # noqa: F401 (end_slope: book/13_real_valued)
# (table, dataset): the real-valued cells of GPM, in the paper's order
CELLS = (("Table 1", "cifar10"), ("Table 3", "fashion_mnist"), ("Table 3", "cifar100"),
         ("Table 3", "celeba"))
MODELS = ("gpm", "dkm")
# The datasets whose cells this repository trains (results/); the others need the reader's
# data (under GPM_DATA, or GPM_DOWNLOAD=1).
IN_RESULTS = {"fashion_mnist"}
# The profiles reported as results (`quick` is the smoke test, not a result) and the seeds
# each is meant to have: `cpu` three, `cpu_long` one (2.5 hours a run), `paper` three, and
# `recipe_gpu` (the CPU profiles' recipe at the paper's size, in the CIFAR and CelebA configs) three.
PROFILES = ("cpu", "cpu_long", "paper", "recipe_gpu")
SEEDS = {"cpu": 3, "cpu_long": 1, "paper": 3, "recipe_gpu": 3}


def experiment_name(table: str, dataset: str, model: str) -> str:
    """configs/<name>.toml of one cell: table1_cifar10_gpm, table3_celeba_dkm, ..."""
    return f"{'table1' if table == 'Table 1' else 'table3'}_{dataset}_{model}"


def command(experiment: str, profile: str) -> str:
    return f"python -m gpm_core train configs/{experiment}.toml --profile {profile} --seed N"


def paper_value(table: str, dataset: str, model: str):
    return (TABLE1 if table == "Table 1" else TABLE3).get((model, dataset))


def bits_table(results_dir=RESULTS, profiles=PROFILES, cells=CELLS, models=MODELS) -> list[dict]:
    """One row per (cell, model, profile of `profiles` that the cell's config has): the paper's
    bits/dim beside ours (mean ± sd over seeds, every seed, wall time per run, device) and what
    is missing, with the command. Ours twice: `ours` with the draw of W the model was trained
    with (`bits_per_dim`, what the paper's table reports), `iid` with the paper's i.i.d.
    q(W) (`bits_per_dim_iid`; for a model trained with that draw, `bits_per_dim` itself): only
    the i.i.d. number is a bound (book/07_table1, *Is the number a bound?*)."""
    groups = group_runs(results_dir)
    rows = []
    for table, dataset in cells:
        for model in models:
            exp = experiment_name(table, dataset, model)
            paper = paper_value(table, dataset, model)
            for profile in [p for p in profiles if p in config_profiles(exp) or p == "paper"]:
                runs = groups.get((exp, profile), [])
                s = seed_summary(runs, "bits_per_dim")
                draw = runs[0]["config"]["model"].get("w_sample", "iid") if runs else None
                iid = seed_summary(runs, "bits_per_dim_iid") or (s if draw == "iid" else {})
                missing = [n for n in range(SEEDS.get(profile, 1)) if n not in s.get("per_seed", {})]
                if s:
                    status = f"{s['n_seeds']} of {SEEDS.get(profile, 1)} seeds"
                elif dataset not in IN_RESULTS:
                    status = f"not run yet: needs the {dataset} data (under GPM_DATA, or GPM_DOWNLOAD=1)"
                elif profile == "paper":
                    status = "not run yet: the paper profile is sized for a GPU"
                else:
                    status = "not run yet"
                rows.append({
                    "table": table, "dataset": dataset, "model": model.upper(), "profile": profile,
                    "paper": paper.value if paper else None,
                    "ours": s.get("mean"), "sd": s.get("sd"), "digits": 3, "n_seeds": s.get("n_seeds", 0),
                    "per_seed": s.get("per_seed", {}), "draw": {"shared": "shared", "iid": "i.i.d."}.get(draw),
                    "iid": iid.get("mean"), "iid_sd": iid.get("sd"),
                    "ours_iid": fmt_mean_sd(iid["mean"], iid["sd"], 3) if iid else None,
                    "gap": (s["mean"] - paper.value) if s and paper else None,
                    "gap_iid": (iid["mean"] - paper.value) if iid and paper else None,
                    "steps": s.get("steps", []), "wall_time_s": s.get("wall_time_s", []),
                    "devices": s.get("devices", []), "git": s.get("git_commits", []),
                    "status": status, "missing_seeds": missing,
                    "command": f"`{command(exp, profile)}`", "experiment": exp,
                })
    return rows


def config_profiles(experiment: str) -> list[str]:
    """The profiles of configs/<experiment>.toml."""
    return profiles(REPO / "configs" / f"{experiment}.toml")


def why_rows(experiments, histogram: float, profiles=("cpu", "cpu_long"), results_dir=RESULTS) -> list[dict]:
    """What stands behind each reported (experiment, profile): its size and training length
    against the paper profile's (from configs/), the test bound with each draw of W, the KL of
    the addressing weights and the bound on unwritten images (bits/dim, mean over seeds), the
    training objective's fall over its last 100 steps, and each bound against the per-pixel
    `histogram` level (bits/dim)."""
    out = []
    for exp, profile, runs in finished_groups(experiments, profiles, results_dir):
        dims = math.prod(runs[0]["data"]["test"]["image_shape"])
        q, p = profile_summary(exp, profile), profile_summary(exp, "paper")
        bound = seed_summary(runs, "bits_per_dim")["mean"]
        iid = seed_summary(runs, "bits_per_dim_iid").get("mean", bound)
        out.append({"experiment": exp, "profile": profile, "model": runs[0]["model"].upper(),
                    "n_seeds": len(runs), **{k: q[k] for k in ("filters", "memory", "steps", "batch", "images_seen")},
                    "paper_filters": p["filters"], "paper_images": p["images_seen"],
                    "fraction": q["images_seen"] / p["images_seen"],
                    "bound": bound, "iid": iid, "draw": runs[0]["config"]["model"].get("w_sample", "iid"),
                    "kl": seed_summary(runs, "kl_w")["mean"] / (dims * math.log(2)),
                    "unseen": seed_summary(runs, "unseen_bits_per_dim").get("mean"),
                    "slope": end_slope(runs, per_dim=True),
                    "vs_hist": bound - histogram, "iid_vs_hist": iid - histogram,
                    "train_min": sum(r["train_time_s"] for r in runs) / len(runs) / 60})
    return out


def profile_summary(experiment: str, profile: str) -> dict:
    """What a profile of a config trains: nets, filters, memory K x C, draw of W, steps,
    episodes per step, images seen, image size, learning rate, its schedule and the weight
    decay (from configs/, the single source)."""
    cfg = load_config(REPO / "configs" / f"{experiment}.toml", profile)
    images = cfg.train.steps * cfg.train.batch_size * cfg.data.episode_length
    return {"filters": cfg.model.filters, "memory": f"{cfg.model.memory_slots} x {cfg.model.code_size}",
            "net": cfg.model.net, "w_sample": cfg.model.w_sample,
            "steps": cfg.train.steps, "batch": cfg.train.batch_size, "images_seen": images,
            "image_size": cfg.data.image_size, "lr": cfg.train.lr,
            "schedule": f"x {cfg.train.lr_decay:g} every {cfg.train.lr_decay_every:,} steps",
            "weight_decay": cfg.train.weight_decay}


def activation_gib_per_episode(experiment: str, profile: str = "paper", image_size: int | None = None) -> float:
    """GiB of activations one training step keeps for the backward pass, per episode of T
    images, for the model of `configs/<experiment>.toml` (its `profile`, at `image_size` if
    given): the sizes of every tensor autograd saves in one forward pass, run on the meta
    device (no memory allocated, no arithmetic done). Excludes weights, gradients and Adam's
    state, and the allocator's overhead; what decides the episodes per step on a GPU."""
    cfg = load_config(REPO / "configs" / f"{experiment}.toml", profile)
    S = image_size or cfg.data.image_size
    C = 1 if cfg.data.dataset in ("mnist", "fashion_mnist", "omniglot") else 3
    model = build_model(cfg.model, (C, S, S)).to("meta")
    saved = [0]

    def pack(x):
        saved[0] += x.numel() * x.element_size()
        return x

    X = torch.rand(1, cfg.data.episode_length, C, S, S, device="meta")
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        model(X)
    return saved[0] / 2**30


WIDTH_STUDY = "width_fashion_mnist_gpm"


def width_arms(experiment: str = WIDTH_STUDY) -> list[str]:
    """The arms (profiles filters_<F>) of the width study's config, narrowest first."""
    arms = [p for p in profiles(REPO / "configs" / f"{experiment}.toml") if p.startswith("filters_")]
    return sorted(arms, key=lambda a: int(a.split("_")[1]))


# Arms whose training is that of a run made for another table (the resolved config's model,
# data and train sections and its curve episodes are equal; only the number of final test
# episodes differs): the width study uses that run, unless the arm was run itself.
WIDTH_STAND_INS = {"filters_32": ("table3_fashion_mnist_gpm", "cpu")}


def width_runs(experiment: str = WIDTH_STUDY, results_dir=RESULTS) -> dict[str, dict]:
    """arm -> the run (lowest seed) of each arm of the width study that has one: the arm's
    own, else the run of `WIDTH_STAND_INS` after checking that it trained exactly as the arm
    would (ValueError if the two configs have drifted apart: then run the arm)."""
    stand_ins = {arm: ref for arm, ref in WIDTH_STAND_INS.items() if experiment == WIDTH_STUDY}
    groups = group_runs(results_dir, experiments=[experiment, *(e for e, _ in stand_ins.values())])
    out = {}
    for arm in width_arms(experiment):
        runs = groups.get((experiment, arm)) or groups.get(stand_ins.get(arm), [])
        if not runs:
            continue
        run = min(runs, key=lambda r: r["seed"])
        if run["experiment"] != experiment:
            _check_same_training(load_config(REPO / "configs" / f"{experiment}.toml", arm), run)
        out[arm] = run
    return out


def _check_same_training(cfg, run: dict) -> None:
    arm, other = to_dict(cfg), to_dict(config_from_dict(run["config"]))
    same = all(arm[s] == other[s] for s in ("model", "data", "train")) and all(
        arm["eval"][k] == other["eval"][k] for k in ("seed", "curve_episodes", "batch_size"))
    if not same:
        raise ValueError(f"{run['experiment']} {run['profile']} no longer trains as {cfg.experiment} "
                         f"{cfg.profile}: run the arm ({command(cfg.experiment, cfg.profile)})")


def width_rows(experiment: str = WIDTH_STUDY, results_dir=RESULTS) -> list[dict]:
    """One row per arm of the width study (equal training time, `configs/<experiment>.toml`):
    filters, steps, the wall time per step the config planned (from its measured step time)
    and the one the run took, the final bits/dim with the draw of W trained with and with the
    i.i.d. q(W) (the bound) and the number of test episodes they average, the best point of
    the test curve, the run used (`source`); an arm not run says so, with its command."""
    runs = width_runs(experiment, results_dir)
    rows = []
    for arm in width_arms(experiment):
        cfg = load_config(REPO / "configs" / f"{experiment}.toml", arm)
        row = {"arm": arm, "filters": cfg.model.filters, "steps": cfg.train.steps,
               "planned": cfg.description, "command": f"`{command(experiment, arm)}`"}
        if arm not in runs:
            rows.append({**row, "status": "not run yet"})
            continue
        r = runs[arm]
        _, curve = bits_curve(r)
        rows.append({**row, "status": "run", "seed": r["seed"],
                     "source": f"`{r['experiment']}` `{r['profile']}` seed {r['seed']}",
                     "s_per_step": r["train_time_s"] / r["steps"], "train_min": r["train_time_s"] / 60,
                     "bits_per_dim": r["metrics"]["bits_per_dim"]["value"],
                     "bits_per_dim_iid": r["metrics"].get("bits_per_dim_iid", {}).get("value"),
                     "test_episodes": r["metrics"]["bits_per_dim"]["n"],
                     "best_curve": min(curve) if curve else None})
    return rows


def fig_width_curves(experiment: str = WIDTH_STUDY, results_dir=RESULTS, levels: dict[str, float] | None = None):
    """The width study's test curves: bits/dim on the curve episodes against training minutes,
    one line per arm (one seed, `width_runs`), with horizontal reference `levels` {label: bits/dim}."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for arm, r in width_runs(experiment, results_dir).items():
        ax.plot(*bits_curve(r), marker=".", lw=1, label=f"{arm.split('_')[1]} filters")
    return _finish_bits_axes(fig, ax, levels, None if ax.lines else "no arm of the width study run yet")


def bits_curve(result: dict) -> tuple[list[float], list[float]]:
    """(training minutes, test bound in bits/dim) at the points of a run's test curve
    (`train.eval_every`; the draw of W the run was trained with); empty lists without one."""
    per_dim = math.prod(result["data"]["train"]["image_shape"]) * math.log(2)
    curve = result.get("test_curve") or []
    return [p["train_time_s"] / 60 for p in curve], [p["nll_cond"] / per_dim for p in curve]


def fig_table3_curves(dataset: str = "fashion_mnist", profiles=("cpu", "cpu_long"), results_dir=RESULTS,
                      levels: dict[str, float] | None = None):
    """The test curves (bits/dim on the curve episodes against training minutes) of every
    Table 3 run of `dataset` with a profile of `profiles`, one line per run, with horizontal
    reference `levels` {label: bits/dim}; says so when no run has a test curve yet."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    experiments = [experiment_name("Table 3", dataset, m) for m in MODELS]
    runs = sorted((r for r in load_results(results_dir=results_dir)
                   if r["experiment"] in experiments and r["profile"] in profiles and r.get("test_curve")),
                  key=lambda r: (r["experiment"], r["profile"], r["seed"]))
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for r in runs:
        ax.plot(*bits_curve(r), marker=".", lw=1, label=f"{r['model'].upper()} {r['profile']} seed {r['seed']}")
    return _finish_bits_axes(fig, ax, levels, "no run with a test curve yet" if not runs else None)


def _finish_bits_axes(fig, ax, levels: dict[str, float] | None, empty: str | None):
    """Reference lines, labels and legend of a bits/dim-against-minutes figure; `empty`, if
    given, is written across an axes that has no curve."""
    for i, (label, value) in enumerate((levels or {}).items()):
        ax.axhline(value, ls="--", lw=0.8, color=f"C{7 + i}", label=label)
    if empty:
        ax.text(0.5, 0.7, empty, ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("training time (minutes, one CPU thread)")
    ax.set_ylabel("test bound (bits/dim)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- figures


def fig_bits_curves(groups: dict[tuple[str, str], list[dict]], key: str = "elbo_cond"):
    """Training curves in bits/dim (`report.table1.fig_training_curves` with unit "bits/dim")."""
    return fig_training_curves(groups, key, unit="bits/dim")


def dmol_mean(likelihood, out: torch.Tensor) -> torch.Tensor:
    """The mean image (..., C, H, W) in [0, 1] of a DMoL with parameters `out`, taking each
    logistic at its centre: sum_k pi_k x_kc with x_kc = clamp(mu_kc + sum_{j<c} a_kcj x_kj,
    -1, 1), the coupling of component k applied to its own centres (as `likelihood.sample`
    does). Exact for narrow logistics; smoother to look at than `likelihood.mode`, which
    picks one component per pixel."""
    logits, means, _, coeffs, C = likelihood._split(out)  # means (..., n, C, H, W)
    pi = torch.softmax(logits, dim=-3)  # (..., n, H, W)
    xs, i = [], 0
    for c in range(C):
        m = means[..., c, :, :]  # (..., n, H, W)
        for j in range(c):
            m = m + coeffs[..., i, :, :] * xs[j]
            i += 1
        xs.append(m.clamp(-1, 1))
    centres = torch.stack(xs, dim=-3)  # (..., n, C, H, W)
    return ((pi.unsqueeze(-3) * centres).sum(-4) + 1) / 2


def _spread(images: torch.Tensor) -> float:
    """Mean squared error per pixel between two different images of (N, C, H, W)."""
    flat = images.flatten(1)
    d = ((flat[:, None] - flat[None]) ** 2).mean(-1)
    return (d.sum() / (len(flat) * (len(flat) - 1))).item()


@torch.no_grad()
def reconstructions_and_samples(model, X: torch.Tensor, n_samples: int, n_reads: int = 0) -> dict:
    """For one written test episode X (1, T, C, H, W): the read-outs of the written images
    (W the mean address; GPM Fig. 5) and `n_samples` images generated from the memory
    (w ~ N(0, I) decoded, GPM section 3.3), both shown as the DMoL's mean (`dmol_mean`).
    With n_reads, also the generated images after n_reads iterative reads ('generated_read';
    GPM 3.3: "the generated images will be improved via iterative reading"): each read
    addresses the code of the current image, w = address(e(x), M), and decodes w M to the
    DMoL's mean (DKM 3.5 feeds back the mean of a real-valued likelihood). For the raw images
    and after each read: 'nearest', the mean over the generated images of the squared error
    per pixel to the closest written image; 'spread', the mean squared error per pixel between
    two of the generated images (their diversity; 'written_spread' is that of the written
    images). Values in [0, 1]."""
    state = model.write(X)
    out, _ = model.read(X, state)
    M = state["M"]  # (1, K, C)
    w = torch.randn(1, n_samples, M.shape[1], dtype=M.dtype, device=M.device)
    images = [dmol_mean(model.likelihood, model.decode(w @ M))]
    for _ in range(n_reads):
        W = model.address(model.encode(images[-1]), state)
        images.append(dmol_mean(model.likelihood, model.decode(W @ M)))
    nearest = [(nearest_distance(x[0], X[0]) / X[0, 0].numel()).mean().item() for x in images]
    res = {"written": X[0], "read": dmol_mean(model.likelihood, out)[0], "generated": images[0][0],
           "nearest": nearest, "spread": [_spread(x[0]) for x in images], "written_spread": _spread(X[0]),
           "n_reads": n_reads}
    if n_reads:
        res["generated_read"] = images[-1][0]
    return res


def reconstruction_panels(experiments, n_show: int, profile: str = "cpu", seed: int = 0,
                          results_dir=RESULTS, n_reads: int = 0) -> tuple[dict[str, dict], list[str]]:
    """({label: `reconstructions_and_samples` of the model, n_reads reads of the generated
    images}, [what is missing, with its command]) for the run `profile`-seed`seed` of each
    experiment, from the state_dict stored beside its result (`report.model_and_episode`: the
    first fixed test episode). Seed the RNG first: the write noise and the generated w are random."""
    panels, missing = {}, []
    for exp in experiments:
        run = next((r for r in load_results(exp, results_dir=results_dir)
                    if r["profile"] == profile and r["seed"] == seed), None)
        stored = run and run.get("state_dict") and (Path(run["path"]).parent / run["state_dict"]["path"]).exists()
        if not stored:
            missing.append(f"{exp}, {profile}, seed {seed}: " + ("its state_dict is not stored in results/"
                           if run else "not run yet") + f"; `{command(exp, profile).replace('--seed N', f'--seed {seed}')}`")
            continue
        model, cfg, X = model_and_episode(run)  # X: the first test episode (1, T, C, H, W)
        panels[f"{cfg.model.kind.upper()} ({profile}, seed {seed})"] = reconstructions_and_samples(
            model, X, n_show, n_reads)
    return panels, missing


def fig_reconstructions(panels: dict[str, dict], n_show: int):
    """One row of images per (label, kind) in `panels` = {model label: output of
    `reconstructions_and_samples`}: the written images once, then each model's read-outs
    and samples; the first `n_show` of each. Without panels, a figure that says so."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    if not panels:
        fig, ax = plt.subplots(figsize=(n_show * 0.55, 1.0))
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no trained model stored in results/ yet", ha="center", va="center")
        return fig
    rows = [("written test images", next(iter(panels.values()))["written"])]
    for label, p in panels.items():
        rows += [(f"{label}: read from memory", p["read"]), (f"{label}: generated", p["generated"])]
        if "generated_read" in p:
            rows.append((f"{label}: generated, after {p['n_reads']} reads", p["generated_read"]))
    fig, axes = plt.subplots(len(rows), 1, figsize=(n_show * 0.55, 0.75 * len(rows) + 0.4))
    for ax, (title, images) in zip(axes, rows):
        image_grid(ax, images[:n_show], nrow=n_show, title=title)
    fig.tight_layout()
    return fig
