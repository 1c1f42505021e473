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
# # Real-valued images: Table 1 (CIFAR10) and Table 3 (FashionMNIST, CIFAR100, CelebA)
#
# For 8-bit images GPM {cite}`pham2022gpm` replaces the Bernoulli likelihood by a discretized
# mixture of logistics (DMoL, {cite}`salimans2017pixelcnnpp`), widens the networks to 256 filters
# and the memory to $128 \times 512$, and reports the negative conditional ELBO in **bits per
# dimension**: the bound of {doc}`07_table1` in nats per image divided by $C H W \ln 2$ (the
# `bits_per_dim` field of the result files). Its Table 1 gives CIFAR10, and Table 3 (appendix A)
# FashionMNIST, CIFAR100 and CelebA, each against the GPM authors' own DKM {cite}`wu2018dkm`.
#
# **What `results/` holds, and what is yours to run.** FashionMNIST is trained here with the
# `cpu` profile (at most 30 minutes of one CPU thread per run, three seeds) and the `cpu_long`
# profile (at most 2.5 hours, one seed, resumable); the `paper` profiles are sized for a GPU
# (hours per run), and the `quick` profile is a smoke test of the pipeline, not a result. The
# CIFAR10, CIFAR100 and CelebA configs also have a `recipe_gpu` profile, for a GPU: the recipe
# of the CPU profiles (below) at the `paper` profile's width, memory, steps and batch.
# CIFAR10, CIFAR100 and CelebA have no results. Their pipelines (configs, loaders, training,
# evaluation, artifacts) are tested end to end on small fabricated files in torchvision's
# layouts (`tests/test_real_valued.py`), so with the data under `GPM_DATA` (or `GPM_DOWNLOAD=1`
# where torchvision can download it, as the setup cell sets on Colab) the commands in the
# table below run unchanged, on your CPU or GPU (`--device cuda`). Every table and figure
# below shows what `results/` holds and lists what it does not, with its command.
#
# **This chapter never trains by default.** It reads `results/`. `RETRAIN = True` retrains the
# experiments in `EXPERIMENTS` through the CLI first (add the CIFAR and CelebA experiments when
# their data are there; `PROFILE = "paper"` or, for those, `"recipe_gpu"` needs a GPU).

# %%
RETRAIN = False
PROFILE = "cpu"  # "cpu" (30 minutes a run), "cpu_long" (2.5 hours, one seed), "paper" or "recipe_gpu" (a GPU)
SEEDS = "0 1 2"
EXPERIMENTS = ["table3_fashion_mnist_gpm", "table3_fashion_mnist_dkm"]
# with the data: + ["table1_cifar10_gpm", "table1_cifar10_dkm", "table3_cifar100_gpm",
#                   "table3_cifar100_dkm", "table3_celeba_gpm", "table3_celeba_dkm"]

# %%
import math
import subprocess

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from gpm_core import baselines, report
from gpm_core.artifacts import REPO
from gpm_core.config import load_config
from gpm_core.datasets import load_images
from gpm_core.report import real_valued

torch.set_num_threads(1)
if RETRAIN:  # the same command that produced results/ (see scripts/train-all)
    subprocess.run(["bash", "scripts/train-all", PROFILE, SEEDS, *EXPERIMENTS], check=True, cwd=REPO)

# %% [markdown]
# ## The protocol
#
# The paper's protocol, the `paper` profiles:
#
# - **Model.** The encoder and decoder of GPM appendix C (four 4×4 stride-2 convolutions, each
#   followed by a bottleneck residual block, swish; `model.net = "paper"`, `gpm_core.nets`) with
#   256 filters, a $K \times C = 128 \times 512$ memory, writing noise $\sigma_\xi = 0.5$.
#   GPM's Ben-Israel–Cohen iterations run 7 steps with $\alpha = 10^{-4}$ for the pseudo-inverse
#   of the weight matrix $W_0^+$ and $5\cdot 10^{-5}$ for those of the memory, $M_0^+$ and $M^+$
#   (`alpha_weight`, `alpha_memory`; the mapping is spelled out in the configs). DKM keeps its
#   own $\sigma_\xi^2 = 1$, $\sigma_w^2 = 0.3$, $\sigma_U^2 = 1$ (DKM appendix B).
# - **Likelihood.** A 10-component DMoL per pixel (PixelCNN++'s count; the paper gives none),
#   over the 256 grey levels of each sub-pixel, with PixelCNN++'s channel coupling for RGB
#   (`gpm_core.likelihoods.DiscretizedLogisticMixture`).
# - **Training.** Adam at $10^{-4}$, weight decay $10^{-3}$, clipping at 10, learning rate
#   $\times 0.99995$ once per epoch (GPM appendix C; an epoch is a pass over the training set,
#   as in the authors' code; the configs say why not per step). Episodes of $T = 32$.
# - **Metric.** The bound of {doc}`07_table1` on fixed test episodes (seed 1234), in bits/dim;
#   the `unseen_` variant scores images of the same class that were not written.
#
# :::{admonition} Deviation from the paper: the CPU profiles
# :class: warning
# The `cpu` and `cpu_long` profiles carry over the recipe of the binarized rows that learn
# ({doc}`07_table1`, *What makes GPM learn*): the structure of the authors' released Omniglot
# networks (`model.net = "authors"`: three stride-2 convolutions, each followed by a basic
# residual block with BatchNorm and ReLU), narrower than the paper's (the width study below
# measures what the width costs and buys on a CPU), without a residual block on the DMoL's
# output maps (`model.out_block = false`), 8 episodes a step, a larger learning rate halved
# every quarter of the run, and the weight decay of the authors' code. GPM is trained as the
# authors' code trains it: their extra writing noise and **one shared scalar draw of $W$**
# (`model.w_sample = "shared"`), with $\sigma_w$ starting at 1; DKM keeps the paper's i.i.d.
# $q(W)$. The memory ($128 \times 512$), GPM's $\alpha$s, the DMoL and the metric are the
# paper's. Every value is in the table below, read from the configs. The `recipe_gpu`
# profiles of the CIFAR10, CIFAR100 and CelebA configs carry the same recipe (the `cpu_long`
# learning rate, $10^{-3}$ halved every quarter of the run) at the `paper` profile's 256
# filters, steps and episodes per step, for a GPU.
# :::
#
# What each profile trains, read from the configs:

# %%
prof = [{"config": f"`{exp}`", "profile": p, **real_valued.profile_summary(exp, p)}
        for exp, ps in (("table3_fashion_mnist_gpm", ("quick", "cpu", "cpu_long", "paper")),
                        ("table3_fashion_mnist_dkm", ("cpu", "cpu_long", "paper")),
                        ("table1_cifar10_gpm", ("paper", "recipe_gpu")),
                        ("table3_celeba_gpm", ("px64", "paper", "recipe_gpu")))
        for p in ps]
for row in prof:
    row["lr"], row["images_seen"], row["weight_decay"] = f"{row['lr']:g}", f"{row['images_seen']:,}", f"{row['weight_decay']:g}"
display(Markdown(report.rows_markdown(prof, {
    "config": "config", "profile": "profile", "net": "nets", "filters": "filters", "memory": "memory K x C",
    "w_sample": "draw of W", "image_size": "image side", "batch": "episodes per step", "steps": "steps",
    "images_seen": "images seen", "lr": "lr", "schedule": "lr schedule", "weight_decay": "weight decay"})))

# %% [markdown]
# CelebA's `paper` profile is the paper's 192 × 192 (its Table 3 header): the aligned faces are
# 178 × 218, so `gpm_core.datasets` takes the central 178 × 178 square and resizes it to 192 (the paper
# does not say how it got there; the artifacts carry this as their `deviation`). What one
# episode of 32 images costs in activations kept for the backward pass, measured on the meta
# device (no memory is allocated):

# %%
for exp, size in (("table3_fashion_mnist_gpm", 28), ("table1_cifar10_gpm", 32),
                  ("table3_celeba_gpm", 64), ("table3_celeba_gpm", 192)):
    gib = real_valued.activation_gib_per_episode(exp, "paper", size)
    print(f"{exp:26s} {size:3d} x {size:<3d} {gib:6.2f} GiB per episode, {32 * gib:7.1f} GiB for 32 episodes")

# %% [markdown]
# At 192 × 192 a batch of 32 episodes needs far more than one GPU holds, so CelebA's
# `paper` profile trains 4 episodes per step (plus the 18 GB training set, which the trainer
# moves to the GPU: one 80 GB GPU) for appendix C's 30 epochs of such steps; its `px64`
# profile trains the same nets on 64 × 64 faces, 8 episodes per step, for a 16 GB GPU.

# %% [markdown]
# ## A level to read every number against
#
# Two references for FashionMNIST computed here from the data alone, no networks, no memory:
# every pixel an independent 256-bin categorical whose probabilities are the training set's
# histogram at that position (Laplace-smoothed), and the same with one histogram shared by all
# positions (`baselines.pixel_histogram_bits`, the 8-bit analogue of the independent-pixel
# baseline of {doc}`07_table1`). Uniform grey levels would cost 8 bits/dim. A model at the
# per-pixel histogram's level has learnt the data set's marginals and nothing of its images.

# %%
fcfg = load_config(REPO / "configs" / "table3_fashion_mnist_gpm.toml", "cpu").data
ftrain, ftest = load_images("fashion_mnist", "train", fcfg), load_images("fashion_mnist", "test", fcfg)
baseline = {"per-pixel histogram": baselines.pixel_histogram_bits(ftrain.images, ftest.images),
            "one shared histogram": baselines.pixel_histogram_bits(ftrain.images, ftest.images, per_pixel=False)}
for name, bits in baseline.items():
    print(f"FashionMNIST test set, {name:22s} {bits:.3f} bits/dim")
HIST = baseline["per-pixel histogram"]
PAPER = {m: real_valued.paper_value("Table 3", "fashion_mnist", m).value for m in real_valued.MODELS}
glue("hist_level", HIST, display=False)
glue("paper_gpm", PAPER["gpm"], display=False)
glue("paper_dkm", PAPER["dkm"], display=False)
assert max(PAPER.values()) < HIST  # the paper's models learn far more than the marginals

# %% [markdown]
# The paper's values, {glue:text}`paper_gpm:.2f` (GPM) and {glue:text}`paper_dkm:.2f` (DKM),
# lie well below the per-pixel histogram's {glue:text}`hist_level:.3f` bits/dim.
#
# ## Ours beside the paper's
#
# Two numbers per GPM cell, as in {doc}`07_table1` (*Is the number a bound?*): **ours, as
# trained** is scored with the draw of $W$ the model was trained with (for the `cpu` GPM the
# shared scalar draw of the authors' released code, and so most likely of the paper's numbers), and
# **ours, i.i.d. $q(W)$** scores the same written memories with $W$ drawn as the paper's $q(W)$
# says. **Only the i.i.d. number is a bound** on the negative log-likelihood: the shared draw's
# number pairs the reconstruction of a perfectly correlated sample with the KL of an
# independent one. DKM is trained with the i.i.d. draw, so its one number is a bound.

# %%
rows = real_valued.bits_table()
display(Markdown(report.rows_markdown(rows, {
    "table": "GPM", "dataset": "dataset", "model": "model", "profile": "profile",
    "paper": "paper (bits/dim)", "ours": "ours, as trained (mean ± sd)", "draw": "trained with",
    "ours_iid": "ours, i.i.d. q(W) (a bound)", "gap": "as trained − paper", "gap_iid": "bound − paper",
    "n_seeds": "seeds", "per_seed": "per seed", "steps": "steps",
    "wall_time_s": "wall time per run (s)", "devices": "device", "status": "status"})))

# %%
done = [r for r in rows if r["ours"] is not None]
for r in done:  # every reported value is finite
    assert math.isfinite(r["ours"]) and math.isfinite(r["iid"]), r
todo = [r for r in rows if r["missing_seeds"] and (r["dataset"] in real_valued.IN_RESULTS
                                                   or r["profile"] in ("paper", "recipe_gpu"))]
display(Markdown("**Not run yet** (the command of each missing run):\n\n" + "\n".join(
    f"- {r['table']}, {r['dataset']}, {r['model']}, `{r['profile']}`, seed "
    f"{', '.join(map(str, r['missing_seeds']))}: {r['command'].replace('--seed N', '--seed <seed>')}"
    + ("" if r["dataset"] in real_valued.IN_RESULTS else f" ({r['status'].removeprefix('not run yet: ')})")
    for r in todo)))
if done:
    display(Markdown("Against the per-pixel histogram level ({:.3f} bits/dim):\n\n".format(HIST) + "\n".join(
        f"- {r['model']} `{r['profile']}` ({r['n_seeds']} seed{'s' * (r['n_seeds'] > 1)}): as trained "
        f"{r['ours'] - HIST:+.3f} bits/dim, i.i.d. $q(W)$ {r['iid'] - HIST:+.3f}; against the paper's "
        f"{r['paper']}: {r['ours'] - r['paper']:+.3f} as trained, {r['iid'] - r['paper']:+.3f} as a bound"
        for r in done)))
for r in done:  # the claim of the next paragraph, for every result that exists
    assert r["ours"] < HIST and r["iid"] < HIST, r

# %% [markdown]
# Every FashionMNIST model reported above scores below the per-pixel histogram level, with
# either draw of $W$ (the list above; a model not run yet is not in it): these models learn
# more than the pixel marginals. The CIFAR and CelebA rows are the user's to run: put the python-version CIFAR
# folders (`cifar-10-batches-py/`, `cifar-100-python/`) and CelebA's `celeba/`
# (`img_align_celeba/` and the five text files) under `GPM_DATA`, or set `GPM_DOWNLOAD=1`
# where the network allows, and run the command of the row; `python -m gpm_core status` and
# this chapter then pick the results up. The `paper` rows (the paper's protocol) and the
# `recipe_gpu` rows (the recipe of the CPU profiles at the paper's size) need a GPU.

# %% [markdown]
# ## Test curves
#
# Every `cpu` and `cpu_long` run scores the bound (with the draw of $W$ it was trained with) on
# 10 test episodes every `train.eval_every` steps; the scoring time is excluded from the
# training time and changes nothing in training ({numref}`fig-bits-curves`).

# %% mystnb={"figure": {"caption": "Test bound of the FashionMNIST runs (cpu and cpu_long profiles; 10 test episodes, the draw of W each was trained with) in bits/dim against the training time on one CPU thread, with the paper's values and the per-pixel histogram level.", "name": "fig-bits-curves"}}
levels = {f"paper GPM {PAPER['gpm']}": PAPER["gpm"], f"paper DKM {PAPER['dkm']}": PAPER["dkm"],
          f"per-pixel histogram {HIST:.3f}": HIST}
fig = real_valued.fig_table3_curves(levels=levels)
plt.show()

# %% [markdown]
# ## What the width costs and buys
#
# The paper's 256-filter nets cost many times a narrow net's step on a CPU. The width study
# (`configs/width_fashion_mnist_gpm.toml`) trains GPM with the `cpu` recipe at 16, 32, 64 and
# 256 filters for **equal training time**, one seed each, each with its learning-rate schedule
# scaled to its own number of steps, and records its test curve; the config holds the measured
# step times it was planned with. Each arm is scored on 50 test episodes at the end
# (`bits_per_dim`, as trained; `bits_per_dim_iid`, the bound) and on 10 along the way
# ({numref}`fig-width-curves`; "best on the curve" is the lowest point of that curve). The
# 32-filter arm trains exactly as the `cpu` profile of Table 3 (same model, data, schedule and
# curve episodes; `report.real_valued.width_runs` checks this), so its row is that profile's
# seed 0, scored on its 312 test episodes, which include the arms' 50.

# %%
width = real_valued.width_rows()
display(Markdown(report.rows_markdown(width, {
    "arm": "arm", "filters": "filters", "planned": "planned", "status": "status", "source": "run",
    "s_per_step": "s per step (run)", "train_min": "training minutes", "bits_per_dim": "bits/dim (as trained)",
    "bits_per_dim_iid": "bits/dim, i.i.d. q(W) (a bound)", "test_episodes": "test episodes",
    "best_curve": "best on the curve"})))
pending = [r for r in width if r["status"] != "run"]
if pending:
    display(Markdown("**Pending** (arms not run yet; one CPU thread each, the training time of the config):\n\n"
                     + "\n".join(f"- `{r['arm']}`: {r['command'].replace('--seed N`', '--seed 0 --threads 1`')}"
                                  for r in pending)))

# %% mystnb={"figure": {"caption": "The width study: test bound (10 test episodes, as trained) of GPM on FashionMNIST at 16, 32, 64 and 256 filters against training time on one CPU thread, equal time per arm (one seed each; arms not run yet are absent).", "name": "fig-width-curves"}}
fig = real_valued.fig_width_curves(levels=levels)
plt.show()

# %%
ran = {r["filters"]: r for r in width if r["status"] == "run"}
assert set(ran) == {16, 32, 64, 256}, "the reading below needs every arm: run the pending ones (above)"
order = sorted(ran, key=lambda f: ran[f]["bits_per_dim"])
best = ran[order[0]]
glue("width_order", ", ".join(map(str, order)), display=False)
glue("width_best_filters", best["filters"], display=False)
glue("width_best_bits", best["bits_per_dim"], display=False)
glue("width_256_bits", ran[256]["bits_per_dim"], display=False)
glue("width_256_iid", ran[256]["bits_per_dim_iid"], display=False)
glue("width_256_steps", ran[256]["steps"], display=False)
glue("width_16_steps", f"{ran[16]['steps']:,}", display=False)
glue("width_step_ratio", ran[256]["s_per_step"] / ran[16]["s_per_step"], display=False)
glue("width_gap_256", ran[256]["bits_per_dim"] - best["bits_per_dim"], display=False)
glue("width_narrow_gap", abs(ran[16]["bits_per_dim"] - ran[32]["bits_per_dim"]), display=False)
# the reading below: the widest arm is the worst at equal time, by far; the best is a narrow
# arm; 16 and 32 filters end within a few hundredths of each other; the bound (i.i.d. draw)
# is above the number as trained in every arm
assert order[-1] == 256 and best["filters"] <= 32 and ran[256]["bits_per_dim"] - best["bits_per_dim"] > 0.3
assert abs(ran[16]["bits_per_dim"] - ran[32]["bits_per_dim"]) < 0.05
assert all(ran[f]["bits_per_dim_iid"] > ran[f]["bits_per_dim"] for f in ran)

# %% [markdown]
# At equal training time on one CPU thread the arms rank {glue:text}`width_order` filters
# (best first, as trained). A 256-filter step costs {glue:text}`width_step_ratio:.0f` times a
# 16-filter one, so in the time the 16-filter arm takes {glue:text}`width_16_steps` steps the
# 256-filter arm takes {glue:text}`width_256_steps`, and it ends at
# {glue:text}`width_256_bits:.2f` bits/dim as trained ({glue:text}`width_256_iid:.2f` as a
# bound), {glue:text}`width_gap_256:.2f` above the best arm ({glue:text}`width_best_filters`
# filters, {glue:text}`width_best_bits:.3f`). The two narrowest arms end within
# {glue:text}`width_narrow_gap:.2f` of each other. On a CPU an hour is better spent on steps
# than on width; the paper's 256 filters are the `paper` profile's, for a GPU. (One seed per
# arm; the 256-filter arm at GPM C's lr 5e-4, the others at the recipe's 2e-3: see the config.)

# %% [markdown]
# ## Why our numbers differ from the paper's
#
# Every line below is computed from the artifacts and configs (bits/dim; mean over the seeds
# that exist):

# %% tags=["hide-input"]
why = real_valued.why_rows(EXPERIMENTS, HIST)
display(Markdown("\n".join(
    f"- **{w['model']}** (`{w['experiment']}`, `{w['profile']}`, {w['n_seeds']} seed{'s' * (w['n_seeds'] > 1)}): "
    f"{w['filters']} filters (paper profile: {w['paper_filters']}), a {w['memory']} memory; "
    f"{w['images_seen']:,} training images seen in {w['steps']:,} steps of {w['batch']} episodes "
    f"({w['train_min']:.0f} minutes), {w['fraction']:.1%} of the paper profile's {w['paper_images']:,}; "
    f"over its last 100 steps the training objective changed by {-w['slope']:+.3f} bits/dim. "
    f"Test bound {w['bound']:.3f} as trained ({w['draw']} draw)"
    + (f", {w['iid']:.3f} with the i.i.d. $q(W)$" if w["draw"] != "iid" else "")
    + f"; the KL of the addressing weights is {w['kl']:.4f} bits/dim of it; on images not written: "
    f"{w['unseen']:.3f}; {w['vs_hist']:+.3f} from the per-pixel histogram (the paper's value: "
    f"{PAPER[w['model'].lower()] - HIST:+.3f})." for w in why)
    or "No `cpu` or `cpu_long` FashionMNIST result yet (commands above)."))
for w in why:  # the claims of points 2 and 3 below, for every result that exists
    assert w["draw"] == "iid" or w["iid"] > w["bound"], w
    assert w["kl"] < 0.1 * w["bound"], w
# point 5 below: GPM's cpu and cpu_long runs side by side
gw = {w["profile"]: w for w in why if w["experiment"] == "table3_fashion_mnist_gpm"}
if {"cpu", "cpu_long"} <= set(gw):
    for prof in ("cpu", "cpu_long"):
        for key in ("bound", "iid", "unseen"):
            glue(f"gpm_{prof}_{key}", gw[prof][key], display=False)
    # longer training lowers the number as trained, not the i.i.d. bound nor the unwritten images'
    assert gw["cpu_long"]["bound"] < gw["cpu"]["bound"] - 0.1
    assert gw["cpu_long"]["iid"] > gw["cpu"]["iid"] - 0.02 and gw["cpu_long"]["unseen"] > gw["cpu"]["unseen"]
# point 6 below: DKM's cpu and cpu_long runs, and the two models' bounds side by side
dw = {w["profile"]: w for w in why if w["experiment"] == "table3_fashion_mnist_dkm"}
if {"cpu", "cpu_long"} <= set(dw) and "cpu_long" in gw:
    for prof in ("cpu", "cpu_long"):
        for key in ("bound", "unseen"):
            glue(f"dkm_{prof}_{key}", dw[prof][key], display=False)
    # longer training lowers DKM's bound (a bound: DKM draws W i.i.d.) on written and on unwritten
    # images; after it DKM's bound is below GPM's i.i.d. bound, and above GPM's number as trained
    assert dw["cpu_long"]["draw"] == "iid"
    assert dw["cpu_long"]["bound"] < dw["cpu"]["bound"] - 0.2 and dw["cpu_long"]["unseen"] < dw["cpu"]["unseen"]
    assert gw["cpu_long"]["bound"] < dw["cpu_long"]["bound"] < gw["cpu_long"]["iid"]

# %% [markdown]
# 1. **Width and training length.** The CPU profiles train narrower nets than the paper's for a
#    small fraction of the paper profile's images (above); how far each curve still falls when
#    it stops is in {numref}`fig-bits-curves` and in the change over the last 100 steps above.
#    The width study above measures which of the two a CPU hour is better spent on: steps.
# 2. **The draw of $W$.** With the authors' shared scalar draw GPM's number is lower than the
#    bound of the same weights under the paper's $q(W)$ (checked above for every run); the
#    paper's GPM values most likely come from the authors' code, so we compare ours as trained
#    with them. The bound is the i.i.d. column.
# 3. **What the bound is made of.** With the DMoL almost all of the bound is the reconstruction
#    term; the KL of the addressing weights is under a tenth of the bound (above), so
#    reaching the paper's values is a matter of the decoder's likelihood, i.e. of network size
#    and training, more than of the memory.
# 4. **Unstated settings.** The number of mixture components (10), the learning rates, the
#    episodes per step and the decay schedule are our choices, marked in the configs. Table 3's
#    DKM row is the GPM authors' own implementation ("our implementation"), whose settings are
#    unknown, and Table 1's DKM value for CIFAR10 names no source (the DKM paper has no CIFAR
#    result); two of the paper's DKM cells (FashionMNIST, CelebA) are read from a garbled text
#    extraction (`gpm_core.report.paper_numbers`). A number of ours below the paper's is
#    therefore no evidence of a better model: the likelihood's unstated settings move the
#    bits/dim as much as the networks do, and with the shared draw of $W$ only the i.i.d.
#    column is a bound.
# 5. **What longer training buys GPM.** From `cpu` to `cpu_long` (five times the steps) GPM's
#    number as trained falls from {glue:text}`gpm_cpu_bound:.3f` to
#    {glue:text}`gpm_cpu_long_bound:.3f`, but its i.i.d. bound does not (from
#    {glue:text}`gpm_cpu_iid:.3f` to {glue:text}`gpm_cpu_long_iid:.3f`), and on test images not
#    written to the memory it is worse ({glue:text}`gpm_cpu_unseen:.3f` to
#    {glue:text}`gpm_cpu_long_unseen:.3f`): the extra training went into reading back written
#    images under the draw of $W$ it was trained with.
# 6. **What longer training buys DKM.** DKM draws $W$ i.i.d., so its number is a bound, and
#    longer training lowers it: from {glue:text}`dkm_cpu_bound:.3f` (`cpu`) to
#    {glue:text}`dkm_cpu_long_bound:.3f` (`cpu_long`), and on images not written from
#    {glue:text}`dkm_cpu_unseen:.3f` to {glue:text}`dkm_cpu_long_unseen:.3f`. After the long
#    runs DKM's bound is below GPM's i.i.d. bound ({glue:text}`gpm_cpu_long_iid:.3f`), and only
#    GPM's number as trained with the shared draw ({glue:text}`gpm_cpu_long_bound:.3f`) is
#    lower. Among bounds, the paper's ordering (GPM below DKM) is reversed here.

# %% [markdown]
# ## Reconstructions and samples (GPM Fig. 5)
#
# Seed 0 of each `cpu` and `cpu_long` model, loaded from the state dicts stored in `results/`: one test episode
# of FashionMNIST written to memory, its read-outs (the mean address $\bar W = Z M^+$ for GPM,
# DKM's posterior mean address), images generated from the memory ($w \sim \mathcal N(0, I)$),
# and the same generated images after five iterative reads (GPM 3.3: "the generated images
# will be improved via iterative reading"; each read addresses the code of the current image
# and decodes $wM$). Each image is the DMoL's mean (`real_valued.dmol_mean`), and the mean is
# what the reads feed back, as DKM does for a real-valued likelihood; the mode picks one
# mixture component per pixel and is noisier to look at. Nothing is trained here.

# %% mystnb={"figure": {"caption": "GPM Fig. 5 for FashionMNIST, ours: one written test episode (top), then for each cpu and cpu_long model stored in results/ its read-outs, images generated from the memory, and those images after five iterative reads, each shown as the DMoL's mean (seed 0).", "name": "fig-real-reconstructions"}}
N_SHOW, N_READS = 16, 5
torch.manual_seed(0)  # the write noise and the generated w
panels, missing = {}, []
for profile in ("cpu", "cpu_long"):  # the 30-minute models, then the 2.5-hour ones
    p_, m_ = real_valued.reconstruction_panels(EXPERIMENTS, N_SHOW, profile=profile, seed=0, n_reads=N_READS)
    panels.update(p_)
    missing += m_
fig = real_valued.fig_reconstructions(panels, N_SHOW)
plt.show()

# %%
mean_image = ftrain.images.float().mean(0) / 255  # (C, H, W) in [0, 1]: the average garment
lines = []
for label, p in panels.items():  # squared error per pixel of each read-out, against the average image's
    err, err_mean = ((p["read"] - p["written"]) ** 2).mean(), ((mean_image - p["written"]) ** 2).mean()
    lines.append(f"- {label}: read-outs {err:.4f}, the training set's mean image {err_mean:.4f}")
    assert err < 0.5 * err_mean, label  # the read-outs are much closer to the written images
display(Markdown(("Mean squared error per pixel against the written images (grey levels in [0, 1]):\n\n"
                  + "\n".join(lines) + "\n\n" if lines else "")
                 + ("**Not shown yet:**\n\n" + "\n".join(f"- {m}" for m in missing) if missing else "")))

# %% [markdown]
# Each model shown gives back the written garments with a squared error well under half that
# of the training set's mean image (above; the assertion checks it for every model shown). In
# the GPM `cpu` model's read-outs ({numref}`fig-real-reconstructions`) every garment is
# recognisable by its outline and grey level (the trousers, the dress, the bag, the ankle
# boot), while fine texture (prints, stripes) is lost. The images generated from the memory
# are blurred blends of upper-body garments, a mixture of what the episode wrote rather than
# one garment of it; the reads change them as follows (mean squared error per pixel, × 1000):

# %%
grows = [{"model": label, "generated to the closest written, raw": 1000 * p["nearest"][0],
          f"the same, after {N_READS} reads": 1000 * p["nearest"][-1], "between two generated, raw": 1000 * p["spread"][0],
          f"between two generated, after {N_READS} reads": 1000 * p["spread"][-1],
          "between two written": 1000 * p["written_spread"]} for label, p in panels.items()]
if grows:
    display(Markdown(report.rows_markdown(grows, {k: k for k in grows[0]})))
share = {label: (1 - p["nearest"][-1] / p["nearest"][0], p["spread"][-1] / p["spread"][0]) for label, p in panels.items()}
for label, (closer, spread) in share.items():
    key = label.split(" (")[0] + "_" + label.split("(")[1].split(",")[0]  # e.g. DKM_cpu, GPM_cpu_long
    glue(f"closer_{key}", 100 * closer, display=False)
    glue(f"spread_{key}", spread, display=False)
# the claims below: DKM's reads pull its samples toward the written garments, GPM's do not
# (they stay as far from them as they started); the reads of the cpu models shrink their
# samples' spread; after the reads the cpu_long models' samples are more varied than the cpu
# models'; every generated set is less diverse than the written garments
for label, (closer, spread) in share.items():
    assert (closer > 0.2) if label.startswith("DKM") else (abs(closer) < 0.05), label
    assert max(panels[label]["spread"]) < 0.6 * panels[label]["written_spread"], label
for kind in ("GPM", "DKM"):
    short, long_ = f"{kind} (cpu, seed 0)", f"{kind} (cpu_long, seed 0)"
    if short in panels:
        assert share[short][1] < 0.8, short
    if short in panels and long_ in panels:
        glue(f"spread_ratio_{kind}", panels[long_]["spread"][-1] / panels[short]["spread"][-1], display=False)
        assert panels[long_]["spread"][-1] > 2 * panels[short]["spread"][-1], kind

# %% [markdown]
# After five reads DKM's generated images are {glue:text}`closer_DKM_cpu:.0f` % (`cpu`) and
# {glue:text}`closer_DKM_cpu_long:.0f` % (`cpu_long`) closer to the nearest written garment;
# GPM's stay as far from the written garments as they started (they are not copies of them).
# The reads of the `cpu` models pull their samples toward one another (the spread falls to
# {glue:text}`spread_GPM_cpu:.2f` and {glue:text}`spread_DKM_cpu:.2f` of its start), toward
# one plain long-sleeved top. The `cpu_long` models' samples keep their spread through the
# reads and end {glue:text}`spread_ratio_GPM:.1f` (GPM) and {glue:text}`spread_ratio_DKM:.1f`
# (DKM) times as varied as the `cpu` models': tops and t-shirts of different cut and shade,
# recognisable as garments, with DKM's the most varied. Every set stays less diverse than the
# written garments (last column), which include trousers, a bag and shoes.

# %% [markdown]
# ## Source
#
# The tables, the baseline and the figures come from `gpm_core.report.real_valued` and `gpm_core.baselines`:

# %% tags=["nbval-ignore-output"]
import inspect

print(inspect.getsource(real_valued.bits_table))
print(inspect.getsource(baselines.pixel_histogram_bits))
print(inspect.getsource(real_valued.dmol_mean))
