# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
import os, subprocess, sys  # on Colab: clone the repository, install it, enter it (gpm_core/colab.py)
if "google.colab" in sys.modules:
    repo = os.environ.setdefault("GPM_REPO", os.path.abspath("gpm-book"))
    os.path.isdir(repo) or subprocess.run(["git", "clone", "-q", "--depth", "1", os.environ.get("GPM_REPO_URL", "https://github.com/gpm-book/gpm-book"), repo], check=True)
    sys.path.insert(0, repo); __import__("gpm_core.colab").colab.setup(repo)

# %% [markdown]
# # Table 1: binarized MNIST and Omniglot
#
# GPM's Table 1 {cite}`pham2022gpm` reports the negative conditional ELBO of test episodes, in
# nats per image: GPM 31.48 (MNIST) and 25.68 (Omniglot), against 75.3 and 77.2 for the Dynamic
# Kanerva Machine {cite}`wu2018dkm`. This chapter trains GPM two ways, DKM and a VAE with the
# same networks, through the package's CLI, and puts our numbers beside the papers'. It also
# measures what makes GPM learn fast (a one-factor-at-a-time ablation between the authors'
# released code and the paper's text) and which of the two ways of drawing $W$ gives a number
# that is a bound.
#
# **This chapter never trains by default.** It reads the result files in `results/`, written by
# `python -m gpm_core train`. Set `RETRAIN = True` to retrain every cell below through the CLI
# first; `PROFILE` picks the profile (`cpu`: at most 30 minutes of one CPU thread per run;
# `paper`: the papers' budget, for a GPU).

# %%
RETRAIN = False
PROFILE = "cpu"
SEEDS = "0"

# %%
import math
import statistics
import subprocess

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from gpm_core.artifacts import REPO, load_analyses, load_results
from gpm_core.config import load_config
from gpm_core.datasets import load_images
from gpm_core.report import paper_numbers, table1 as report

torch.set_num_threads(1)
DATASETS = ("mnist", "omniglot")
EXPERIMENTS = [f"table1_{d}_{suffix}" for d in DATASETS for _, suffix, _ in report.ROWS]
ABLATION = "ablation_recipe_omniglot"
if RETRAIN:  # the same command that produced results/ (see scripts/train-all)
    subprocess.run(["bash", "scripts/train-all", PROFILE, SEEDS, *EXPERIMENTS], check=True, cwd=REPO)

# %% [markdown]
# The CIFAR10 column of Table 1 (bits/dim) is in {doc}`13_real_valued`, with the other
# real-valued datasets.
#
# ## The rows
#
# Each row is one config file per dataset, `configs/table1_<dataset>_<row>.toml`:
#
# | row | config | memory | $W$ drawn as | noise $\xi \sim \N(0, 0.5^2)$ added to |
# |---|---|---|---|---|
# | GPM (authors' code) | `gpm_authors` | GPM, $\alpha = 5\cdot10^{-4}$, $\sigma_w$ starts at 1 | one scalar $\epsilon$ for all of $W$: $W = \bar W + \sigma_w \epsilon$ | the codes, twice when writing; the codes when addressing; the read-out $WM$ |
# | GPM (paper's text) | `gpm_iid` | GPM, $\alpha = 10^{-3}$, $\sigma_w^2 = 0.3$ at the start | $q(W) = \N(\bar W, \sigma_w^2 I)$, i.i.d. | the codes, once, when writing (Algorithm 1) |
# | DKM | `dkm_resnet` | DKM, $\sigma_\xi = 1$, $\sigma_w^2 = 0.3$ (DKM appendix B) | i.i.d. | its observation noise |
# | VAE | `vae` | none: $q(z \mid x)$, $p(z) = \N(0, I)$ | | |
#
# All four use the same encoder and decoder, a $32 \times 100$ memory ($K \times C$), episodes of
# $T = 32$ images and a Bernoulli likelihood.
#
# :::{admonition} Deviation from the paper: the networks
# :class: warning
# GPM appendix C describes four 4×4 stride-2 convolutions, each followed by a bottleneck residual
# block, with swish activations (`model.net = "paper"`, `gpm_core.nets.Encoder`). Every row here
# uses instead the structure of the authors' released Omniglot networks (`model.net = "authors"`,
# `gpm_core.nets.ResNetEncoder`): three stride-2 convolutions, each followed by a basic residual
# block with BatchNorm and ReLU, and PyTorch's default initialisation. The ablation below
# measures why: at the same budget the paper's nets end far higher. BatchNorm couples the images
# of a training batch; every evaluation uses its running statistics, so an image's score never
# depends on the rest of its test batch.
# :::
#
# ## The protocol
#
# - **Metric.** For each test episode $X$, the memory is written with $X$ itself and
#   $-\big[\E_{q(W)} \ln p(X \mid W, M) - \KL(q(W)\,\|\,p(W))\big] / T$ is scored (GPM eq. 1;
#   DKM §4, which removes $\KL(q(M)\,\|\,p(M))$ and divides by the episode size): `nll_cond` in
#   the result files, with one sample of $W$ drawn as in training. Every GPM run is also scored
#   with the other draw of $W$ on the same written memories (`nll_cond_iid`,
#   `nll_cond_shared`; see *Is the number a bound?*). For the VAE, the number is its
#   (unconditional) negative ELBO per image.
# - **Test episodes.** A fixed set drawn with seed 1234 from the test split, the same for every
#   model and seed (`gpm_core.episodes.test_episodes`): 250 episodes (8,000 images) on Omniglot,
#   312 (9,984) on MNIST.
# - **Data.** Binarized by a fixed threshold at 0.5, as the official GPM code does. Omniglot:
#   Burda et al.'s 28×28 split is not available to us; we rebuild the closest split from Lake et
#   al.'s images (the deviation note below).
# - **Training.** `cpu`: {glue:text}`gpm_cpu_steps:,d` steps of 8 episodes
#   ({glue:text}`dkm_cpu_steps:,d` for DKM, whose step is slower), Adam at $2\cdot10^{-3}$
#   ($10^{-3}$ for DKM, whose sequential writing we have not tried at the higher rate) halved
#   every quarter of the run, gradient clipping at 10, `channels_last` (1.7 times faster steps
#   on a CPU): at most 30 minutes of one CPU thread. `cpu_alpha` (GPM, authors' code): the
#   `cpu` recipe with $\alpha = 2\cdot10^{-3}$ for the writing pseudo-inverse $W_0^+$ instead
#   of the authors'
#   $5\cdot10^{-4}$ (*Where the bound goes*, below); `cpu_alpha_cap` the same with each $\alpha$
#   capped per matrix at $1.8/\sigma_{\max}^2$; `cpu_long_alpha` the `cpu_long` run with both. `cpu_long`: 32,000 steps at $10^{-3}$ halved
#   every quarter, at most 2.5 hours, resumable. `paper`: 15,000 steps of 32
#   episodes at the authors' $3\cdot10^{-4}$, for a GPU. The learning rates come from the
#   ablation below; the weight decay and $\alpha$ are each row's own (the table above;
#   `configs/`).
# - **Objective.** Every memory model minimises $-(\mathcal L + \mathcal L_{AE})$ per image: the
#   episode bound divided by $T$ plus the auto-encoder term $\mathcal L_{AE} = \ln p(x \mid
#   d(e(x)))$ per image, as GPM eq. 2 writes it and the authors' code trains it. For DKM this is
#   our reading of its eq. 12; its $\KL(q(M)\,\|\,p(M))$ is in the training loss (divided by
#   $T$) and, as in the paper, removed from the reported bound.

# %% [markdown]
# ## Ours beside the paper's

# %%
rows = report.table1(profiles=report.PROFILES)
display(Markdown(report.rows_markdown(rows, {
    "model": "row", "dataset": "dataset", "profile": "profile", "paper": "paper",
    "ours": "ours (mean ± sd)", "ratio": "ours / paper", "n_seeds": "seeds",
    "per_seed": "per seed", "steps": "steps", "wall_time_s": "wall time per run (s)",
    "devices": "device"})))
found = [r for r in rows if r["ours"] is not None]
groups = report.group_runs(experiments=EXPERIMENTS)
deviation = next(s["deviation"] for s in [report.seed_summary(v, "nll_cond") for v in groups.values()]
                 if s.get("deviation"))
display(Markdown(f"**Deviation (Omniglot data), as recorded in every Omniglot artifact:** {deviation}"))
budget_s = 30 * 60  # the cpu profiles' budget: 30 minutes of one thread
slow = [f"{exp}/{prof} seed {r['seed']} ({r['train_time_s']:,.0f} s)"
        for (exp, prof), rs in sorted(groups.items())
        if prof.startswith("cpu") and not prof.startswith("cpu_long") for r in rs if r["train_time_s"] > budget_s]
glue("slow_runs", "; ".join(slow) or "none", display=False)
step_s = {m: statistics.median(r["train_time_s"] / r["steps"] for d in DATASETS
                               for r in groups.get((f"table1_{d}_{m}", p), []))
          for m, p in (("dkm_resnet", "cpu"), ("gpm_authors", "cpu_alpha_cap"))}
glue("dkm_step_s", step_s["dkm_resnet"], display=False)
glue("gpm_step_s", step_s["gpm_authors"], display=False)
dkm_steps = load_config(REPO / "configs" / "table1_omniglot_dkm_resnet.toml", "cpu").train.steps
gpm_steps = load_config(REPO / "configs" / "table1_omniglot_gpm_authors.toml", "cpu_alpha_cap").train.steps
glue("dkm_cpu_steps", dkm_steps, display=False)
glue("gpm_cpu_steps", gpm_steps, display=False)
glue("dkm_cpu_s", step_s["dkm_resnet"] * dkm_steps, display=False)
glue("dkm_at_gpm_steps_s", step_s["dkm_resnet"] * gpm_steps, display=False)
glue("gpm_cpu_s", step_s["gpm_authors"] * gpm_steps, display=False)
assert step_s["gpm_authors"] * gpm_steps < budget_s, "the GPM cpu profiles no longer fit their budget"
assert step_s["dkm_resnet"] > step_s["gpm_authors"] and dkm_steps < gpm_steps
assert step_s["dkm_resnet"] * dkm_steps < budget_s, "DKM's cpu profile no longer fits its budget"
glue("budget_s", budget_s, display=False)
best_rows = {(r["dataset"], r["profile"]): r for r in rows
             if r["experiment"].endswith("_gpm_authors") and r["ours"] is not None}
for (dataset, profile), r in best_rows.items():
    if profile in ("cpu_alpha", "cpu_alpha_cap"):
        name = f"{profile}_{dataset}"
        glue(name, r["ours"], display=False)
        glue(f"{name}_seeds", ", ".join(str(k) for k in r["per_seed"]), display=False)
        glue(f"{name}_per_seed", ", ".join(f"{v:.2f}" for v in r["per_seed"].values()), display=False)
        glue(f"{name}_ratio", r["ratio"], display=False)
for dataset in DATASETS:
    paper = paper_numbers.TABLE1[("gpm", dataset)].value
    glue(f"target_{dataset}", 1.25 * paper, display=False)
    glue(f"paper_{dataset}", paper, display=False)
glue("cpu_omniglot", best_rows[("omniglot", "cpu")]["ours"], display=False)
assert {("omniglot", "cpu_alpha"), ("omniglot", "cpu_alpha_cap"), ("mnist", "cpu_alpha_cap")} <= set(best_rows)
# the uncapped seeds that diverged have no result (their runs stop with exit code 3)
assert 2 not in best_rows[("omniglot", "cpu_alpha")]["per_seed"] and ("mnist", "cpu_alpha") not in best_rows
todo = [f"{d} seed {n}" for d in DATASETS for n in range(3) if n not in best_rows[(d, "cpu_alpha_cap")]["per_seed"]]
glue("cap_todo", ", ".join(todo) or "none", display=False)
assert max(best_rows[("omniglot", "cpu_alpha")]["per_seed"].values()) < best_rows[("omniglot", "cpu_alpha")]["paper"]

# %% [markdown]
# The bars this reproduction set itself for its CPU profiles (`report.TARGETS`: a multiple of
# the paper's cell, or for GPM with the paper's i.i.d. $q(W)$ a level below Kanerva++'s 66.24),
# judged on the table above:

# %%
targets = report.target_rows(rows)
display(Markdown(report.rows_markdown(targets, {
    "model": "row", "dataset": "dataset", "profile": "profile", "rule": "bar", "bar": "bar (nats)",
    "ours": "ours (mean ± sd)", "n_seeds": "seeds", "verdict": "verdict"})))
verdicts = [t["verdict"] for t in targets]
glue("targets_met", verdicts.count("met"), display=False)
glue("targets_run", len(verdicts) - verdicts.count("not run"), display=False)
glue("targets_missed", "; ".join(f"{t['model']} {t['dataset']} {t['profile']}" for t in targets
                                 if t["verdict"] == "missed") or "none", display=False)
glue("targets_not_run", "; ".join(f"{t['model']} {t['dataset']} {t['profile']}" for t in targets
                                  if t["verdict"] == "not run") or "none", display=False)

# %% [markdown]
# {glue:text}`targets_met` of the {glue:text}`targets_run` bars with results are met. Missed:
# {glue:text}`targets_missed`. Not run yet: {glue:text}`targets_not_run`.

# %% [markdown]
# The best GPM recipe is the `cpu` recipe with one change, $\alpha = 2\cdot10^{-3}$ for the
# writing pseudo-inverse, found by the measurements of *Where the bound goes*. On Omniglot,
# `cpu_alpha` scores {glue:text}`cpu_alpha_omniglot_per_seed` (seeds
# {glue:text}`cpu_alpha_omniglot_seeds`; the `cpu` recipe: {glue:text}`cpu_omniglot:.2f`), in
# at most 30 minutes of one CPU thread, below the paper's {glue:text}`paper_omniglot:.2f` (the
# bar set for such a run was 1.25 times it, {glue:text}`target_omniglot:.1f`). Without a guard
# the larger $\alpha$ can diverge in the first steps, while the codes grow: Omniglot seed 2 and
# MNIST seed 0 of `cpu_alpha` stop within their first 15 steps with a NaN loss
# (`python -m gpm_core train configs/table1_omniglot_gpm_authors.toml --profile cpu_alpha
# --seed 2` exits with code 3 and writes no result). `cpu_alpha_cap` caps each $\alpha$ per matrix at
# $1.8/\sigma_{\max}^2$ (`model.alpha_cap`; the fixed-$\alpha$ iteration wherever that converges
# with room): on Omniglot (seeds {glue:text}`cpu_alpha_cap_omniglot_seeds`) it scores
# {glue:text}`cpu_alpha_cap_omniglot_per_seed` (mean {glue:text}`cpu_alpha_cap_omniglot:.2f`,
# {glue:text}`cpu_alpha_cap_omniglot_ratio:.2f` times the paper's), on MNIST (seeds
# {glue:text}`cpu_alpha_cap_mnist_seeds`) {glue:text}`cpu_alpha_cap_mnist_per_seed` (mean
# {glue:text}`cpu_alpha_cap_mnist:.2f`, {glue:text}`cpu_alpha_cap_mnist_ratio:.2f` times
# the paper's {glue:text}`paper_mnist:.2f`; bar {glue:text}`target_mnist:.1f`). Still to run
# with `cpu_alpha_cap`: {glue:text}`cap_todo`.
#
# The `cpu` profiles are sized for {glue:text}`budget_s:,d` s of training on one thread that
# has its core to itself; a run that shares its core takes longer. The runs that took longer:
# {glue:text}`slow_runs`. DKM's step is the slower one: {glue:text}`dkm_step_s:.3f` s against
# {glue:text}`gpm_step_s:.3f` s for the capped GPM (medians of the training time per step of
# the `cpu` runs, two runs side by side on the two cores). At its median pace a GPM run's
# {glue:text}`gpm_cpu_steps:,d` steps take {glue:text}`gpm_cpu_s:,.0f` s, within the budget;
# the runs listed above ran slower than that median. At DKM's pace the GPM rows'
# {glue:text}`gpm_cpu_steps:,d` steps would take DKM {glue:text}`dkm_at_gpm_steps_s:,.0f` s, no
# room for a busier machine (most of the first DKM runs, which had that many steps, took more
# than 30 minutes; git history keeps their results). Its `cpu` profile has
# {glue:text}`dkm_cpu_steps:,d` steps, which take {glue:text}`dkm_cpu_s:,.0f` s, with the
# learning rate halved every quarter of the run as for the other rows.
#
# Cells marked *not run* are missing (the status page lists them); each row's command is
# `python -m gpm_core train configs/<experiment>.toml --profile <profile> --seed N`, and the git
# commit, torch version and device of each run are in its JSON. For scale, the bound of a model
# with independent Bernoulli pixels (each pixel's mean taken from the training set; no memory,
# no networks), computed here on the same test sets:

# %%
baseline = {}
for dataset in DATASETS:
    cfg = load_config(REPO / "configs" / f"table1_{dataset}_gpm_authors.toml", "cpu").data
    train, test = load_images(dataset, "train", cfg), load_images(dataset, "test", cfg)
    baseline[dataset] = report.independent_pixel_nll(train.images, test.images)
    print(f"{dataset:8s} independent pixels: {baseline[dataset]:6.1f} nats/image")
assert found, "no cpu/cpu_long results in results/: train them (see RETRAIN above)"
for r in found:  # every model we report learned far more than the pixel marginals
    assert r["ours"] < 0.75 * baseline[r["dataset"]], r

# %% [markdown]
# Every cell we report is below three quarters of this bound: these models learn far more than
# the pixel marginals.
#
# ## Learning curves
#
# Every `cpu` and `cpu_long` run scores the test bound on 10 of its test episodes during training
# (`train.eval_every`; the scoring time is excluded from the training time and changes nothing
# in training): {numref}`fig-t1-curves-omniglot` and {numref}`fig-t1-curves-mnist`.

# %% mystnb={"figure": {"caption": "Test bound (nats/image, 10 test episodes) of the Table 1 runs on binarized Omniglot against their training time on one CPU thread; the dotted line is the paper's GPM value.", "name": "fig-t1-curves-omniglot"}}
fig = report.fig_table1_curves("omniglot")
plt.show()

# %% mystnb={"figure": {"caption": "The same for binarized MNIST.", "name": "fig-t1-curves-mnist"}}
fig = report.fig_table1_curves("mnist")
plt.show()

# %% [markdown]
# ### Where the bound goes
#
# The bound is the reconstruction term plus the KL of the addressing weights,
# $\KL(q(W)\,\|\,p(W)) = \tfrac12 \sum_k (\sigma_w^2 + \bar w_k^2 - 1 - \ln \sigma_w^2)$ per
# image, which for $\sigma_w \approx 1$ is $\tfrac12 \lVert \bar w \rVert^2$: the size of the
# addressing weights. Per run, on the test episodes, and at the end of training:

# %%
decomp = report.decomposition_rows([e for e in EXPERIMENTS if not e.endswith("_vae")],
                                   profiles=("cpu", "cpu_alpha", "cpu_long"))
display(Markdown(report.rows_markdown(decomp, {
    "run": "run", "nll_cond": "test bound", "recon": "reconstruction", "kl_w": "KL(q(W)‖p(W))",
    "kl_share": "KL share", "sigma_w": "trained σ_w", "train_ae": "L_AE (training, end)",
    "train_kl_w_quarter": "KL (training, ¼ of the run)", "train_kl_w": "KL (training, end)",
    "m0_rms": "rms of M0 (R0)", "alpha_smax2": "α σ_max(M0)²"})))
longest = max((r for r in decomp if "gpm_authors" in r["run"] and "cpu_alpha" not in r["run"]),
              key=lambda r: "cpu_long" in r["run"], default=None)
if longest:
    glue("decomp_run", longest["run"], display=False)
    glue("decomp_kl", longest["kl_w"], display=False)
    glue("decomp_recon", longest["recon"], display=False)
    glue("decomp_kl_share", 100 * longest["kl_share"], display=False)
    glue("decomp_kl_quarter", longest["train_kl_w_quarter"], display=False)
    glue("decomp_kl_end", longest["train_kl_w"], display=False)
    assert abs(longest["train_kl_w"] - longest["train_kl_w_quarter"]) < 0.15 * longest["train_kl_w"]  # flat KL

# %% [markdown]
# In the longest run of the `cpu` recipe (`{glue:text}`decomp_run``) the KL is
# {glue:text}`decomp_kl:.1f` of the bound's nats ({glue:text}`decomp_kl_share:.0f` %), the
# reconstruction {glue:text}`decomp_recon:.1f`. On its training episodes the KL was
# {glue:text}`decomp_kl_quarter:.1f` a quarter of the way through and
# {glue:text}`decomp_kl_end:.1f` at the end, while the reconstruction kept falling: a longer
# run does not shrink it. The KL pays $\tfrac12\lVert \bar w \rVert^2$ for the reading weights
# $\bar W = Z M^+$ of the written codes. With exact pseudo-inverses they would be the writing
# weights $W_0 = Z_\xi M_0^+$, up to the writing noise. The stability analysis
# (`python -m gpm_core stability results/<experiment>/<profile>-seed<N>.json`) writes
# {glue:text}`stability_episodes` test episodes with each model and measures both, per image
# (medians over the episodes):

# %%
STABILITY = [("table1_omniglot_gpm_authors", ("cpu", "cpu_alpha", "cpu_alpha_cap", "cpu_long")),
             ("table1_omniglot_gpm_iid", ("cpu", "cpu_alpha")),
             (ABLATION, ("lr_2e-3", "lr_2e-3_alpha_w_2e-3"))]
sizes = [r for exp, profiles in STABILITY for r in report.address_rows([exp], profiles)]
display(Markdown(report.rows_markdown([{**r, "alpha_weight": f"{r['alpha_weight']:g}",
                                        "w0_direction": f"{r['w0_direction']:.4f}"} for r in sizes], {
    "run": "run", "alpha_weight": "α of W0⁺", "w0_direction": "α σ² of W0's median direction",
    "w0": "‖w0‖² (writing)", "w": "‖w̄‖² (reading)", "ratio": "‖w̄‖² / ‖w0‖²"})))
by = {(r["experiment"], r["profile"]): r for r in sizes}
glue("stability_episodes", sizes[0]["episodes"], display=False)
assert len({r["episodes"] for r in sizes}) == 1
cpu_sizes = [r for r in sizes if r["experiment"] == "table1_omniglot_gpm_authors" and r["profile"] == "cpu"]
steps = load_config(REPO / "configs" / "table1_omniglot_gpm_authors.toml", "cpu").model.pinv_steps
x = sum(r["w0_direction"] for r in cpu_sizes) / len(cpu_sizes)
glue("ratio_cpu", min(r["ratio"] for r in cpu_sizes), display=False)
glue("ratio_cpu_max", max(r["ratio"] for r in cpu_sizes), display=False)
glue("w0_direction", x, display=False)
glue("w0_fraction", 1 - (1 - x) ** (2 ** steps), display=False)
glue("pinv_steps", steps, display=False)
glue("ratio_arm", by[(ABLATION, "lr_2e-3")]["ratio"], display=False)
glue("ratio_arm_alpha", by[(ABLATION, "lr_2e-3_alpha_w_2e-3")]["ratio"], display=False)
glue("w0_arm", by[(ABLATION, "lr_2e-3")]["w0"], display=False)
glue("w0_arm_alpha", by[(ABLATION, "lr_2e-3_alpha_w_2e-3")]["w0"], display=False)
assert all(r["ratio"] > 1.5 for r in cpu_sizes)  # the reading weights overshoot the writing weights
assert by[(ABLATION, "lr_2e-3_alpha_w_2e-3")]["ratio"] < 1.2  # ... unless W0+ converges
assert abs(by[(ABLATION, "lr_2e-3_alpha_w_2e-3")]["w0"] - by[(ABLATION, "lr_2e-3")]["w0"]) < 1.0  # same W0
alpha_runs = [r for r in sizes if r["experiment"] == "table1_omniglot_gpm_authors" and r["profile"] == "cpu_alpha"]
x_alpha = statistics.mean(r["w0_direction"] for r in alpha_runs)
w0_cpu, w0_alpha = (statistics.mean(r["w0"] for r in runs) for runs in (cpu_sizes, alpha_runs))
w_cpu, w_alpha = (statistics.mean(r["w"] for r in runs) for runs in (cpu_sizes, alpha_runs))
for name, value in (("w0_cpu", w0_cpu), ("w_cpu", w_cpu), ("w0_alpha", w0_alpha), ("w_alpha", w_alpha),
                    ("w0_direction_alpha", x_alpha), ("w0_fraction_alpha", 1 - (1 - x_alpha) ** (2 ** steps)),
                    ("ratio_alpha", statistics.mean(r["ratio"] for r in alpha_runs))):
    glue(name, value, display=False)
assert 0.4 < w0_alpha / w0_cpu < 0.6 and w_alpha < 0.5 * w_cpu and x_alpha > 1.5 * x  # half the size, deeper
settled = cpu_sizes + [by[("table1_omniglot_gpm_authors", "cpu_long")]]  # every authors'-alpha run: the same place
assert max(r["w0"] for r in settled) < 1.05 * min(r["w0"] for r in settled)
assert max(r["w"] for r in settled) < 1.05 * min(r["w"] for r in settled)

# %% [markdown]
# With the authors' $\alpha = 5\cdot10^{-4}$ for $W_0^+$, the reading weights are
# {glue:text}`ratio_cpu:.2f`–{glue:text}`ratio_cpu_max:.2f` times the size of the writing weights
# (squared norms), and the KL pays for the excess. The cause is the pair of Ben-Cohen filters
# ({doc}`03_ben_cohen`): $k$ = {glue:text}`pinv_steps` steps from $\alpha W_0^\top$ invert a
# singular direction of $W_0$ only to the fraction $1 - (1 - \alpha\sigma^2)^{2^k}$. The trained
# $W_0$'s median direction sits at $\alpha\sigma^2 \approx$ {glue:text}`w0_direction:.4f`,
# where that fraction is {glue:text}`w0_fraction:.2f`: the writing pseudo-inverse leaves the
# memory $M = W_0^+ Z_\xi$ short in the weaker directions of each episode, and addressing the
# written codes through $M^+$ then needs larger weights than $W_0$ (our reading of the
# measurement: the table shows the sizes, not the directions). The
# ablation arm with $\alpha = 2\cdot10^{-3}$ for $W_0^+$ (same learning rate, 1,000 steps) has
# writing weights of the same size ({glue:text}`w0_arm_alpha:.1f` against
# {glue:text}`w0_arm:.1f`) and reading weights only {glue:text}`ratio_arm_alpha:.2f` times
# larger instead of {glue:text}`ratio_arm:.2f`; its KL falls accordingly (the ablation below).
# Over the full 30 minutes (the `cpu_alpha` rows above, mean of the seeds) the model goes
# further: the writing weights shrink to half ({glue:text}`w0_alpha:.1f` against
# {glue:text}`w0_cpu:.1f`), their median direction moves to $\alpha\sigma^2 \approx$
# {glue:text}`w0_direction_alpha:.4f` (inverted to {glue:text}`w0_fraction_alpha:.2f`), and the
# reading weights fall to {glue:text}`w_alpha:.1f` against {glue:text}`w_cpu:.1f`
# ({glue:text}`ratio_alpha:.2f` times the writing weights). The $\alpha$ of $W_0^+$ sets how
# small the addressing weights can get before the writing pseudo-inverse stops inverting
# them: with the authors' value every run above (`cpu` seeds and `cpu_long`) settles at the
# same sizes within 5 %, and the KL with them.

# %% [markdown]
# ## Is the number a bound? The two draws of $W$
#
# The authors' code samples $W$ as `w_mean + std * randn_like(std)` with a one-element `std`:
# **one** standard-normal scalar, times $\sigma_w$, added to every element of $W$ in the batch.
# Its loss still charges $\KL(\N(\bar w_t, \sigma_w^2 I)\,\|\,\N(0, I))$ for each row, the KL of
# i.i.d. noise that the sample never draws. The number it reports is therefore not the bound of
# any $q(W)$: the reconstruction term is that of a perfectly correlated sample, the KL that of an
# independent one. With the paper's $q(W)$, sampled i.i.d. (`w_sample = "iid"`), it is a bound.
# Every GPM run below is scored both ways on the same written memories:

# %%
draw = report.draw_rows([e for e in EXPERIMENTS if "_gpm_" in e] + [ABLATION],
                        profiles=("cpu", "cpu_alpha", "cpu_long", "authors", "w_iid", "lr_1e-3"))
display(Markdown(report.rows_markdown(draw, {
    "experiment": "experiment", "profile": "profile", "trained with": "trained with",
    "shared": "scored with the shared draw", "iid": "scored with i.i.d. q(W) (a bound)",
    "sigma_w": "trained σ_w", "n_seeds": "seeds"})))
ref = paper_numbers.AUTHORS_CODE
for r in draw:  # a model trained with the shared draw is much worse under the paper's q(W)
    if r["trained with"] == "shared":
        assert r["iid"] > 1.5 * r["shared"], r
        assert min(r["sigma_w"]) > max(d for x in draw if x["trained with"] == "iid" for d in x["sigma_w"])
glue("authors_code_shared", ref["nll_2000"].value, display=False)
glue("authors_code_iid", ref["nll_2000_iid"].value, display=False)
glue("kpp_omniglot", paper_numbers.TABLE1[("kanerva++", "omniglot")].value, display=False)
iid_row = next((r for r in draw if r["experiment"] == "table1_omniglot_gpm_iid" and r["profile"] == "cpu"), None)
if iid_row:  # what the i.i.d. row pays for its small sigma_w alone: K/2 (s^2 - 1 - ln s^2)
    K = load_config(REPO / "configs" / "table1_omniglot_gpm_iid.toml", "cpu").model.memory_slots
    s2 = iid_row["sigma_w"][0] ** 2
    glue("iid_sigma_w", iid_row["sigma_w"][0], display=False)
    glue("iid_sigma_kl", K / 2 * (s2 - 1 - math.log(s2)), display=False)
    glue("iid_bound", iid_row["iid"], display=False)
    assert K / 2 * (s2 - 1 - math.log(s2)) > 10
iid_alpha = next(r for r in draw if r["experiment"] == "table1_omniglot_gpm_iid" and r["profile"] == "cpu_alpha")
glue("iid_alpha_bound", iid_alpha["iid"], display=False)
iid_sizes = {r["profile"]: r for r in report.address_rows(["table1_omniglot_gpm_iid"], ("cpu", "cpu_alpha"))}
glue("iid_ratio", iid_sizes["cpu"]["ratio"], display=False)
glue("iid_alpha_ratio", iid_sizes["cpu_alpha"]["ratio"], display=False)
assert iid_row is not None and iid_alpha["iid"] > iid_row["iid"] - 1.0  # no gain for the i.i.d. row

# %% [markdown]
# A model trained with the shared draw learns a large $\sigma_w$ (it costs little when the whole
# of $W$ shifts together) and falls apart when $W$ is drawn as $q(W)$ says: the same weights score
# far worse with the i.i.d. draw. The same happens with the authors' own code: its 2,000-step
# Omniglot model, measured beside ours on the same test episodes, scores
# {glue:text}`authors_code_shared:.1f` nats with its shared draw and
# {glue:text}`authors_code_iid:.1f` with the i.i.d. draw and the same KL term
# (`gpm_core.report.paper_numbers.AUTHORS_CODE`: a measurement of their code, not a number of
# the paper). **Only the i.i.d. scores are bounds.** The paper's 25.68 is reported with the
# authors' code, so it is most likely the shared-draw number; the row *GPM (paper's text)* is
# trained and scored with the paper's $q(W)$ and is the GPM number we can defend as a bound:
# {glue:text}`iid_bound:.2f` on Omniglot (`cpu`). It learns a small $\sigma_w$
# ({glue:text}`iid_sigma_w:.2f`), because i.i.d. noise in every weight hurts the read-out, and
# pays for it in the KL: $\tfrac K2(\sigma_w^2 - 1 - \ln\sigma_w^2)$ alone is
# {glue:text}`iid_sigma_kl:.1f` nats per image. With the paper's $q(W)$ the KL cannot be small
# both ways at once, which is why we read the paper's 25.68 as a number of the shared draw.
# The $\alpha$ of the writing pseudo-inverse that lowers the authors'-code row (*Where the bound
# goes*) does not help this one: at $2\cdot10^{-3}$ instead of GPM C's $10^{-3}$ (`cpu_alpha`)
# it ends at {glue:text}`iid_alpha_bound:.2f`. Its reading weights are
# {glue:text}`iid_ratio:.2f` times the writing weights at $10^{-3}$ and
# {glue:text}`iid_alpha_ratio:.2f` at $2\cdot10^{-3}$ (squared norms, stability analysis).
# For comparison, Kanerva++ {cite}`ramapuram2021kanerva` reports
# {glue:text}`kpp_omniglot:.2f` on Omniglot (GPM Table 1), the best published number of another
# memory model.

# %% [markdown]
# ## What makes GPM learn: the recipe ablation
#
# `configs/ablation_recipe_omniglot.toml` starts from GPM as the authors' code trains it and
# changes one factor per arm (its profiles); every arm trains 1,000 steps of 8 Omniglot episodes
# with seed 0 and is scored on the same 50 test episodes. Step times are measured with two runs
# sharing the 2-core machine, so they are comparable within the table only roughly.

# %%
abl = report.ablation_rows(ABLATION)
display(Markdown(report.rows_markdown(abl, {
    "arm": "arm", "description": "what changes", "nll_cond": "test bound after 1,000 steps",
    "change": "change vs the authors' code", "iid": "scored with i.i.d. q(W)", "kl_w": "KL(q(W)‖p(W))",
    "episodes_per_step": "episodes / step", "step_ms": "ms / step"})))
arm = {r["arm"]: r for r in abl}
for name, value in (("abl_authors", arm["authors"]["nll_cond"]), ("abl_nets_paper", arm["nets_paper"]["nll_cond"]),
                    ("abl_nobn", arm["nets_nobn"]["nll_cond"]), ("abl_iid", arm["w_iid"]["nll_cond"]),
                    ("abl_lr", arm["lr_1e-3"]["nll_cond"]), ("abl_all_paper", arm["all_paper"]["nll_cond"]),
                    ("abl_noise", arm["noise_paper"]["nll_cond"]), ("abl_scalars", arm["scalars_paper"]["nll_cond"]),
                    ("abl_lr2", arm["lr_2e-3"]["nll_cond"]), ("abl_batch4", arm["batch_4"]["nll_cond"]),
                    ("abl_lr_batch4", arm["lr_1e-3_batch_4"]["nll_cond"]), ("abl_exact", arm["pinv_exact"]["nll_cond"]),
                    ("abl_exact_sd", arm["pinv_exact"]["sd"]), ("abl_auto", arm["alpha_auto"]["nll_cond"]),
                    ("abl_m0_10", arm["lr_2e-3_m0_lr_10"]["nll_cond"]), ("abl_m0_100", arm["lr_2e-3_m0_lr_100"]["nll_cond"]),
                    ("abl_m0_std4", arm["lr_2e-3_m0_std_4"]["nll_cond"]), ("abl_lr2_kl", arm["lr_2e-3"]["kl_w"]),
                    ("abl_m0_10_kl", arm["lr_2e-3_m0_lr_10"]["kl_w"]), ("abl_m0_100_kl", arm["lr_2e-3_m0_lr_100"]["kl_w"]),
                    ("abl_m0_std4_kl", arm["lr_2e-3_m0_std_4"]["kl_w"]),
                    ("abl_aw", arm["lr_2e-3_alpha_w_2e-3"]["nll_cond"]), ("abl_aw_kl", arm["lr_2e-3_alpha_w_2e-3"]["kl_w"]),
                    ("abl_aw_recon", arm["lr_2e-3_alpha_w_2e-3"]["nll_cond"] - arm["lr_2e-3_alpha_w_2e-3"]["kl_w"]),
                    ("abl_lr2_recon", arm["lr_2e-3"]["nll_cond"] - arm["lr_2e-3"]["kl_w"]),
                    ("abl_auto2", arm["lr_2e-3_alpha_auto"]["nll_cond"]), ("abl_auto2_kl", arm["lr_2e-3_alpha_auto"]["kl_w"])):
    glue(name, value, display=False)
scale = {r["run"].split()[1]: r for r in report.decomposition_rows(
    [ABLATION], profiles=("lr_2e-3", "lr_2e-3_m0_lr_10", "lr_2e-3_m0_std_4"))}
glue("abl_std4_alpha", scale["lr_2e-3_m0_std_4"]["alpha_smax2"], display=False)
glue("abl_m0_10_alpha", scale["lr_2e-3_m0_lr_10"]["alpha_smax2"], display=False)
glue("abl_lr2_alpha", scale["lr_2e-3"]["alpha_smax2"], display=False)
m0 = load_config(REPO / "configs" / f"{ABLATION}.toml", "lr_2e-3_m0_std_4").model
# sigma_max of a K x C matrix of N(0, s^2) entries: about s (sqrt(C) + sqrt(K))
glue("abl_std4_alpha_start", m0.alpha_memory * (m0.memory_init_std * (m0.code_size ** 0.5 + m0.memory_slots ** 0.5)) ** 2,
     display=False)

# %% mystnb={"figure": {"caption": "Test bound (10 test episodes) of every arm of the recipe ablation against the training step, Omniglot, seed 0.", "name": "fig-recipe-ablation"}}
ablation_runs = sorted((r for r in load_results(ABLATION, results_dir=report.RESULTS) if r["seed"] == 0),
                       key=lambda r: arm[r["profile"]]["nll_cond"])
fig = report.fig_test_curves(ablation_runs, [r["profile"] for r in ablation_runs],
                             title="recipe ablation, Omniglot, seed 0", ymax=300)
plt.show()

# %% [markdown]
# What the arms say ({numref}`fig-recipe-ablation` and the table; one seed each, so
# differences of a few nats are within the seed spread):
#
# - **The networks make the learning fast.** With the paper's nets the bound ends at
#   {glue:text}`abl_nets_paper:.1f` instead of {glue:text}`abl_authors:.1f`; without BatchNorm
#   the authors' nets end at {glue:text}`abl_nobn:.1f`. Everything as the paper's text (the
#   recipe gpm_core followed before) ends at {glue:text}`abl_all_paper:.1f`.
# - **The learning rate** is the largest single factor at this budget:
#   {glue:text}`abl_authors:.1f` at the authors' $3\cdot10^{-4}$, {glue:text}`abl_lr:.1f` at
#   $10^{-3}$, {glue:text}`abl_lr2:.1f` at $2\cdot10^{-3}$. The `cpu` profiles start at
#   $2\cdot10^{-3}$ and halve it along the run.
# - **Episodes per step.** 4 instead of 8 costs {glue:text}`abl_batch4:.1f` against
#   {glue:text}`abl_authors:.1f` at equal steps, for about half the work per step; at
#   $10^{-3}$, 4 episodes reach {glue:text}`abl_lr_batch4:.1f` against {glue:text}`abl_lr:.1f`.
#   At equal time, fewer episodes per step learn faster early on; whether that holds over a
#   30-minute run is not measured yet.
# - **The shared draw of $W$ makes the number small, not the model good**: drawing $W$ i.i.d.
#   from $q(W)$ ends at {glue:text}`abl_iid:.1f`, and every shared-draw arm scores far worse
#   when scored with the i.i.d. draw (column *scored with i.i.d. q(W)*).
# - **Not causes at this budget:** the extra noise of the authors' code
#   ({glue:text}`abl_noise:.1f` without it) and the paper's weight decay, $\alpha$ and initial
#   $\sigma_w$ ({glue:text}`abl_scalars:.1f`).
# - **The pseudo-inverse.** Seven Ben-Israel–Cohen steps with the authors' fixed $\alpha$ (the
#   base) against the per-matrix $\alpha = 1/\sigma_{\max}^2$ of {doc}`03_ben_cohen`
#   ({glue:text}`abl_auto:.1f`) and the exact `torch.linalg.pinv`
#   ({glue:text}`abl_exact:.1f`, sd over episodes {glue:text}`abl_exact_sd:.0f`: a few test
#   episodes are read out catastrophically). The exact pseudo-inverse amplifies the small
#   singular directions of the square, often ill-conditioned $W_0$ ($T = K = 32$), and the
#   writing noise in them, into the memory; a few Ben-Cohen steps act as a spectral filter that
#   damps them ({doc}`03_ben_cohen`). The spectral filter is part of what makes GPM work.
# - **The prior memory $M_0$ moves too slowly.** The KL of the weights stays flat over most
#   of a run (*Where the bound goes*, above), and it depends on $M_0$ through
#   $\bar W \approx Z_\xi M_0^+$. Adam moves each element of $M_0$ by at most about the learning
#   rate per step. Giving $M_0$ ten times the learning rate (`train.memory_lr_scale`) ends at
#   {glue:text}`abl_m0_10:.1f` against {glue:text}`abl_lr2:.1f` at the same rate otherwise,
#   the KL at {glue:text}`abl_m0_10_kl:.1f` against {glue:text}`abl_lr2_kl:.1f`; a hundred
#   times, {glue:text}`abl_m0_100:.1f` (KL {glue:text}`abl_m0_100_kl:.1f`). The trained $M_0$
#   does not simply grow: its largest singular value does, and the Ben-Cohen filter with it
#   ($\alpha\,\sigma_{\max}(M_0)^2$ = {glue:text}`abl_m0_10_alpha:.2f` against
#   {glue:text}`abl_lr2_alpha:.2f`). Starting $M_0$ four times larger instead
#   (`model.memory_init_std = 4`) is worse, {glue:text}`abl_m0_std4:.1f` (KL
#   {glue:text}`abl_m0_std4_kl:.1f`): it starts at $\alpha\,\sigma_{\max}^2 \approx$
#   {glue:text}`abl_std4_alpha_start:.1f`, near 2, the edge of the iteration's convergence,
#   and ends at {glue:text}`abl_std4_alpha:.2f`. These are 1,000-step arms of one seed; the
#   faster $M_0$ is not carried into a profile.
# - **The $\alpha$ of the writing pseudo-inverse $W_0^+$** is what lowers the KL (*Where the
#   bound goes*, above). At $2\cdot10^{-3}$ instead of $5\cdot10^{-4}$ the KL is
#   {glue:text}`abl_aw_kl:.1f` against {glue:text}`abl_lr2_kl:.1f`, the reconstruction
#   {glue:text}`abl_aw_recon:.1f` against {glue:text}`abl_lr2_recon:.1f`, the bound {glue:text}`abl_aw:.1f` against {glue:text}`abl_lr2:.1f`; over 8,000
#   steps that is the `cpu_alpha` row of Table 1. The per-matrix $\alpha$ of `alpha = "auto"`
#   (1.8 over a certified bound on $\sigma_{\max}^2$) for both pseudo-inverses at the same rate ends at {glue:text}`abl_auto2:.1f` (KL
#   {glue:text}`abl_auto2_kl:.1f`): it does not lower the KL, and we have not measured why (the
#   stability analysis needs a fixed $\alpha$).

# %%
assert arm["nets_paper"]["nll_cond"] > arm["authors"]["nll_cond"] + 10  # the nets matter
assert arm["all_paper"]["nll_cond"] > arm["nets_paper"]["nll_cond"] - 5
assert arm["lr_1e-3"]["nll_cond"] < arm["authors"]["nll_cond"] - 10  # the learning rate matters
assert arm["w_iid"]["nll_cond"] > arm["authors"]["nll_cond"] + 10  # the shared draw lowers the number
assert abs(arm["noise_paper"]["nll_cond"] - arm["authors"]["nll_cond"]) < 10  # the extra noise does not
assert arm["lr_2e-3"]["nll_cond"] < arm["lr_1e-3"]["nll_cond"] < arm["authors"]["nll_cond"]
assert arm["pinv_exact"]["nll_cond"] > 2 * arm["authors"]["nll_cond"]  # the exact pinv breaks reading
assert arm["lr_2e-3_m0_lr_10"]["kl_w"] < arm["lr_2e-3"]["kl_w"] - 1  # a faster M0 lowers the KL
assert arm["lr_2e-3_alpha_w_2e-3"]["kl_w"] < arm["lr_2e-3"]["kl_w"] - 3  # alpha of W0+ lowers it more
assert arm["lr_2e-3_alpha_w_2e-3"]["nll_cond"] < arm["lr_2e-3"]["nll_cond"]
assert arm["lr_2e-3_alpha_auto"]["kl_w"] > arm["lr_2e-3"]["kl_w"] - 1  # auto alpha does not
assert arm["lr_2e-3_m0_lr_10"]["nll_cond"] < arm["lr_2e-3"]["nll_cond"]
assert arm["lr_2e-3_m0_std_4"]["nll_cond"] > arm["lr_2e-3"]["nll_cond"]  # a larger start does not
fast, base = scale["lr_2e-3_m0_lr_10"], scale["lr_2e-3"]  # M0's top singular value grows, not its rms
assert fast["alpha_smax2"] > 2 * base["alpha_smax2"] and fast["m0_rms"] < base["m0_rms"]

# %% [markdown]
# ## Time to 71 nats
#
# Training speed is part of the recipe. Measured beside ours on this kind of machine, the
# authors' code needs about {glue:text}`ref_time:.0f` s of one CPU thread
# ({glue:text}`ref_step:.2f` s per step of 8 episodes) to reach a test bound of 71 nats/image
# on Omniglot (`paper_numbers.AUTHORS_CODE`). The time each of our runs needs, read off its test
# curve (linear interpolation between scored points; the scoring time excluded):

# %%
candidates = [r for r in load_results(ABLATION, results_dir=report.RESULTS)
              if r["profile"] in ("authors", "lr_1e-3", "lr_2e-3", "lr_1e-3_batch_4", "lr_2e-3_alpha_w_2e-3")]
candidates += [r for r in load_results("table1_omniglot_gpm_authors", results_dir=report.RESULTS)
               if r["profile"] in ("cpu", "cpu_alpha", "cpu_long")]
ttq = report.time_to_rows(candidates)
display(Markdown(report.rows_markdown(ttq, {
    "run": "run", "step_ms": "ms / step", "step": "step at 71 nats", "seconds": "seconds at 71 nats",
    "ratio": "÷ the authors' code"})))
best = min((r for r in ttq if isinstance(r["step"], int)), key=lambda r: r["seconds"])  # interpolated crossings
glue("ref_time", ref["time_to_71"].value, display=False)
glue("ref_step", ref["step_s"].value, display=False)
glue("best_time", best["seconds"], display=False)
glue("best_ratio", best["ratio"], display=False)
glue("best_run", best["run"], display=False)
for r in candidates:  # seed 0 of the cpu run: its first 2,000 steps (the lr_2e-3 arm's recipe) ran slower
    if r["profile"] == "cpu" and r["seed"] == 0:
        early = next(p for p in r["test_curve"] if p["step"] == 2000)
        assert early["train_time_s"] / 2000 > 1.2 * arm["lr_2e-3"]["step_ms"] / 1000
# the speed-ups named below, from the benchmark artifacts (medians of interleaved steps)
ttq_doc = next(d for d in load_analyses("time_to_quality", results_dir=report.RESULTS) if d["profile"] == "cpu")
glue("cl_speedup", ttq_doc["step_ms"]["eager"]["median_ms"] / ttq_doc["step_ms"]["channels_last"]["median_ms"],
     display=False)
variants = {row["variant"]: row for d in load_analyses("step_time", results_dir=report.RESULTS)
            if d["profile"] == "cpu_variants" for row in d["rows"]}
compile_gain = 1 - (variants["compile+channels_last"]["ratios"]["gpm/gpm eager"]["median"]
                    / variants["channels_last"]["ratios"]["gpm/gpm eager"]["median"])
glue("compile_gain", 100 * compile_gain, display=False)
assert 0 < compile_gain < 0.15  # "a few per cent" below

# %% [markdown]
# The fastest, `{glue:text}`best_run``, reaches 71 nats after {glue:text}`best_time:.0f` s,
# {glue:text}`best_ratio:.2f` times the authors' code (`benchmarks/time_to_quality.py` prints the
# same table). The `cpu` run of seed 0 follows the same recipe for its first 2,000 steps; its
# seconds are larger because other processes shared the machine during its first quarter (its
# milliseconds per step are an average over the whole run). The step is faster through
# `channels_last` ({glue:text}`cl_speedup:.2f` times on these nets, `benchmarks/time_to_quality.py`);
# `torch.compile` on top of it takes a few per cent more off a GPM step
# ({glue:text}`compile_gain:.0f` % in `benchmarks/step_time.py --variants`, {doc}`12_running_time`)
# for minutes of compilation, so it stays off; fewer steps are needed through the learning rate.

# %% [markdown]
# ## DKM against the VAE floor
#
# With the same networks and the `cpu` budget, DKM's bound is below the VAE's on Omniglot but above it on MNIST
# (the table above). Both bounds are a reconstruction term plus a KL term. DKM's
# $q(w) = \N(\bar w, \sigma_w^2 I)$ has one trained $\sigma_w$ for every image and every
# one of the $K$ weights, so its KL splits into a part set by $\sigma_w$ alone,
# $\tfrac K2 (\sigma_w^2 - 1 - \ln \sigma_w^2)$, paid by every image, and the size of the
# address, $\tfrac12 \lVert \bar w \rVert^2$. The VAE's $q(z \mid x)$ has a variance per image
# and per dimension (`report.kl_split_rows`, `cpu` runs, test episodes):

# %%
split = report.kl_split_rows([f"table1_{d}_{m}" for d in DATASETS for m in ("dkm_resnet", "vae")],
                             profiles=("cpu", "cpu_long"))
dash = {"sigma_w2": "–", "kl_sigma": "–", "kl_mean": "–", "scale_opt": "–", "kl_rescaled": "–"}  # the VAE has no sigma_w
display(Markdown(report.rows_markdown([{**dash, **r, **({"sigma_w2": f"{r['sigma_w2']:.3f}"} if "sigma_w2" in r else {})}
                                       for r in split], {
    "experiment": "experiment", "profile": "profile", "seed": "seed", "recon": "reconstruction", "kl": "KL",
    "sigma_w2": "trained σ_w²", "kl_sigma": "KL part of σ_w", "kl_mean": "KL part of w̄",
    "scale_opt": "best rescaling u*", "kl_rescaled": "KL at u*"})))

means = {(d, m, key): report.split_mean(split, f"table1_{d}_{m}", key) for d in DATASETS for m in ("dkm_resnet", "vae")
         for key in ("recon", "kl", "kl_sigma", "kl_mean", "sigma_w2") if m == "dkm_resnet" or key in ("recon", "kl")}

for d in DATASETS:
    for key in ("recon", "kl"):
        for m in ("dkm_resnet", "vae"):
            glue(f"split_{d}_{m}_{key}", means[(d, m, key)], display=False)
    glue(f"split_{d}_kl_sigma", means[(d, "dkm_resnet", "kl_sigma")], display=False)
    glue(f"split_{d}_sigma_w2", means[(d, "dkm_resnet", "sigma_w2")], display=False)
    assert means[(d, "dkm_resnet", "recon")] < means[(d, "vae", "recon")]  # the memory reconstructs better
    assert means[(d, "dkm_resnet", "kl_sigma")] > means[(d, "dkm_resnet", "kl_mean")]  # sigma_w's part dominates
assert means[("mnist", "dkm_resnet", "kl")] > means[("mnist", "vae", "kl")]
nll_split = {(d, m): means[(d, m, "recon")] + means[(d, m, "kl")] for d in DATASETS for m in ("dkm_resnet", "vae")}
assert nll_split[("omniglot", "dkm_resnet")] < nll_split[("omniglot", "vae")] and nll_split[("mnist", "dkm_resnet")] > nll_split[("mnist", "vae")]
glue("split_sigma_w2_init", load_config(REPO / "configs" / "table1_mnist_dkm_resnet.toml", "cpu").model.sigma_w ** 2,
     display=False)
dkm_split = [r for r in split if r["model"] == "dkm"]
long_split = next(r for r in dkm_split if r["experiment"] == "table1_omniglot_dkm_resnet" and r["profile"] == "cpu_long")
for key in ("recon", "kl", "kl_sigma"):
    glue(f"split_long_{key}", long_split[key], display=False)
assert long_split["recon"] < means[("omniglot", "dkm_resnet", "recon")] - 5  # longer training: reconstruction
assert long_split["kl_sigma"] > 0.9 * means[("omniglot", "dkm_resnet", "kl_sigma")]  # ... not sigma_w's part
long_mnist = next((r for r in dkm_split if r["experiment"] == "table1_mnist_dkm_resnet" and r["profile"] == "cpu_long"), None)
assert long_mnist, "DKM MNIST cpu_long is not in results/ yet: train it (see RETRAIN above)"
for key in ("recon", "kl", "kl_sigma", "sigma_w2"):
    glue(f"split_long_mnist_{key}", long_mnist[key], display=False)
glue("split_long_mnist_nll", long_mnist["recon"] + long_mnist["kl"], display=False)
glue("split_mnist_vae_nll", nll_split[("mnist", "vae")], display=False)
# the sentences below: on MNIST the long run gets below the VAE's bound, with a lower
# reconstruction term and a larger sigma_w (a smaller sigma_w part), its KL still above the VAE's
assert long_mnist["recon"] + long_mnist["kl"] < nll_split[("mnist", "vae")]
assert long_mnist["recon"] < means[("mnist", "dkm_resnet", "recon")] - 2
assert long_mnist["sigma_w2"] > means[("mnist", "dkm_resnet", "sigma_w2")]
assert long_mnist["kl_sigma"] < means[("mnist", "dkm_resnet", "kl_sigma")] - 2
assert long_mnist["kl"] > means[("mnist", "vae", "kl")]
glue("split_u_min", min(r["scale_opt"] for r in dkm_split), display=False)
glue("split_u_max", max(r["scale_opt"] for r in dkm_split), display=False)
glue("split_saving", max(r["kl"] - r["kl_rescaled"] for r in dkm_split), display=False)
assert all(r["kl"] - r["kl_rescaled"] < 1.0 for r in dkm_split)  # the trained scale is near the best one

# %% [markdown]
# DKM reconstructs better than the VAE on both datasets (MNIST
# {glue:text}`split_mnist_dkm_resnet_recon:.1f` against {glue:text}`split_mnist_vae_recon:.1f`
# nats, Omniglot {glue:text}`split_omniglot_dkm_resnet_recon:.1f` against
# {glue:text}`split_omniglot_vae_recon:.1f`). What it loses on MNIST is the KL:
# {glue:text}`split_mnist_dkm_resnet_kl:.1f` against the VAE's {glue:text}`split_mnist_vae_kl:.1f`,
# and {glue:text}`split_mnist_kl_sigma:.1f` of it is the part of $\sigma_w$ alone: training
# shrinks $\sigma_w^2$ from {glue:text}`split_sigma_w2_init:.1f` to
# {glue:text}`split_mnist_sigma_w2:.3f` (Omniglot {glue:text}`split_omniglot_sigma_w2:.3f`,
# {glue:text}`split_omniglot_kl_sigma:.1f` nats), so that the read-out $w R$ is precise. It is not a matter of scale: rescaling the memory by $s$
# and the weights and $\sigma_w$ by $1/s$ leaves the read-out's mean and noise unchanged, and
# the KL is smallest at $u^* = 1/s^2$ between {glue:text}`split_u_min:.2f` and
# {glue:text}`split_u_max:.2f`, where it is at most {glue:text}`split_saving:.2f` nats below the
# trained model's. A VAE's posterior can leave a dimension it does not use at the prior, at no
# cost; DKM pays $\sigma_w$'s part for all $K$ weights of every image. This is a property of
# $q(w)$ as both papers define it (one trained $\sigma_w$), measured here at the `cpu` budget.
# Four times the training does not change it on Omniglot: the `cpu_long` run lowers the
# reconstruction term to {glue:text}`split_long_recon:.1f`, while its KL stays at
# {glue:text}`split_long_kl:.1f`, {glue:text}`split_long_kl_sigma:.1f` of it the part of
# $\sigma_w$. On MNIST the `cpu_long` run gets below the VAE's bound
# ({glue:text}`split_long_mnist_nll:.1f` against {glue:text}`split_mnist_vae_nll:.1f` on these
# episodes). Its reconstruction term falls to {glue:text}`split_long_mnist_recon:.1f`, and,
# unlike on Omniglot, $\sigma_w^2$ grows back to {glue:text}`split_long_mnist_sigma_w2:.3f`,
# so $\sigma_w$'s part of the KL falls to {glue:text}`split_long_mnist_kl_sigma:.1f`; the KL,
# {glue:text}`split_long_mnist_kl:.1f`, is still above the VAE's. DKM passes the VAE by
# reconstructing better, with a KL that stays the larger of the two.

# %% [markdown]
# ## What the number counts
#
# Both papers' numbers are conditional on a memory written with the test episode being scored.
# GPM's memory is deterministic and pays no KL; DKM's KL of the memory is removed. Beside the
# papers' metric we report (a) the same bound with DKM's KL of the memory kept (divided by $T$),
# and (b) the bound on test images of the same classes that were *not* written: each written
# image is paired with another image of its class (another drawing of the same Omniglot
# character; another MNIST image of the same digit) and that one is read and scored
# (`gpm_core.episodes.unwritten_query_episodes`).

# %%
cols = ["nll_cond", "nll_cond_with_kl_m", "unseen_nll_cond", "cosine", "unseen_cosine"]
counts = report.metric_table([e for e in EXPERIMENTS if not e.endswith("_vae")], cols, profile=PROFILE)
display(Markdown(report.rows_markdown(counts, {
    "experiment": "experiment", "nll_cond": "papers' metric (written)",
    "nll_cond_with_kl_m": "(a) with KL(M)/T", "unseen_nll_cond": "(b) not written",
    "cosine": "cosine e(x), read-out", "unseen_cosine": "cosine, not written",
    "n_seeds": "seeds"})))

# %% [markdown]
# ## Figure 6: cosine similarity of encodings and read-outs
#
# The GPM paper reports that the read-outs $\bar W M$ of GPM are almost exactly the encodings
# $Z$ written to memory (average cosine similarity "nearly 1"), against about 0.82 for DKM
# (its Fig. 6). The same measurement on our test episodes (`cpu` profile):

# %%
cos_rows = []
for label, suffix, key in report.ROWS[:3]:
    paper = paper_numbers.OTHER[f"fig6_cosine_{key}"]
    for dataset in DATASETS:
        exp = f"table1_{dataset}_{suffix}"
        runs = report.group_runs(experiments=[exp]).get((exp, PROFILE), [])
        if runs:
            s = report.seed_summary(runs, "cosine")
            cos_rows.append({"model": label, "dataset": dataset,
                             "paper": paper.value if dataset == "omniglot" else None,
                             "ours": s["mean"], "sd": s["sd"], "n_seeds": s["n_seeds"], "digits": 4})
display(Markdown(report.rows_markdown(cos_rows, {
    "model": "row", "dataset": "dataset", "paper": "paper (Omniglot, Fig. 6)",
    "ours": "ours (mean ± sd)", "n_seeds": "seeds"})))

# %% [markdown]
# Both memories hold an episode of $T = 32$ codes in $K = 32$ rows, where both least-squares
# read-outs can be nearly exact (Part I, {doc}`04_gpm_memory` and {doc}`06_dkm_memory`); the
# paper's 0.82 for DKM is the GPM authors' own DKM implementation, whose details we do not know.
#
# ## Earlier results: the paper's networks
#
# The experiments `table1_<dataset>_gpm` and `table1_<dataset>_dkm` (profiles `quick`, `long`,
# `xlong`) hold the runs of the paper's networks with the paper's recipe, 500 to 6,000 steps.
# They are superseded by the rows above (the `nets_paper` and `all_paper` arms of the ablation
# measure that recipe at the same budget). Chapters 08–11 now analyse the new models; the old
# runs stay in `results/` as the record of what the paper's networks reached.
