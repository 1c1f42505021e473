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
# # Denoising: Table 2 and Figures 2 and 8
#
# A memory earns its keep by retrieving a clean pattern from a corrupted query. GPM's
# section 3.2 {cite}`pham2022gpm` writes an episode of $T$ clean Omniglot images, corrupts
# them, and reads the memory iteratively from the corrupted images; a retrieval succeeds when
# the result differs from the clean image in at most 1 % of the pixels. Table 2 reports the
# success rate for $T = 4, 8, 16$ and three corruptions, GPM far ahead of DKM
# {cite}`wu2018dkm`; Figures 2 and 8 plot the Hamming error against the iteration.
#
# **This chapter never trains or evaluates by default.** It reads the analysis files in
# `results/table2_denoise_omniglot/` (and `results/denoise_mnist/`), written by
# `python -m gpm_core denoise` from the trained Table 1 runs. `RETRAIN = True` re-runs that
# analysis (not the training: see the Table 1 chapter for that).

# %%
RETRAIN = False
PROFILE = "quick"  # which trained runs: "quick" (3 seeds), "long" (seed 0), "paper" (GPU; not trained yet)
SEEDS = [0, 1, 2]

# %%
import json
import subprocess

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from gpm_core import report
from gpm_core.report import denoise, paper_numbers
from gpm_core.artifacts import REPO

torch.set_num_threads(1)
if RETRAIN:
    for config in ("configs/table2_denoise.toml", "configs/denoise_mnist.toml"):
        seeds = [a for s in SEEDS for a in ("--seed", str(s))]
        subprocess.run(["python", "-m", "gpm_core", "denoise", config, "--profile", PROFILE, *seeds],
                       check=True, cwd=REPO)

runs = denoise.load_denoise("table2_denoise_omniglot", PROFILE)
runs_long = denoise.load_denoise("table2_denoise_omniglot", "long")
runs_xlong = denoise.load_denoise("table2_denoise_omniglot", "xlong")
runs_mnist = denoise.load_denoise("denoise_mnist", PROFILE)
assert runs, "no results/table2_denoise_omniglot artifacts: run the analysis (RETRAIN = True)"
cfg = runs[0]["config"]

# %% [markdown]
# ## The protocol
#
# `gpm_core.analyses.denoise` implements it, with every choice the papers leave open in
# `configs/table2_denoise.toml` and recorded in each artifact:

# %% tags=["hide-input"]
for name, value in {
    "models": ", ".join(cfg["models"]), "model_profile": cfg["model_profile"],
    "seeds": ", ".join(str(s) for s in sorted(r["seed"] for r in runs)),
    "T": ", ".join(map(str, cfg["T"])), "queries": cfg["queries"], "test_seed": cfg["test_seed"],
    "levels": "; ".join(f"{k} {v}" for k, v in cfg["table2_levels"].items()),
    "sweep": "; ".join(f"{k} {v}" for k, v in cfg["corruptions"].items()),
    "iterations": cfg["iterations"], "success_threshold": runs[0]["success_threshold"],
    "image_pixels": runs[0]["image_pixels"], "success_fraction": cfg["success_fraction"],
}.items():
    glue(name, value, display=False)

# %% [markdown]
# - **Models:** {glue:text}`models`, profile {glue:text}`model_profile`, seeds
#   {glue:text}`seeds`: the Table 1 Omniglot runs, trained on episodes of 32 images. The paper
#   does not say whether its denoising models were trained on $T$ = 4, 8, 16 or only tested on
#   them; ours are only tested on them.
# - **Queries:** for each $T$ in {glue:text}`T`, {glue:text}`queries` // $T$ episodes of clean
#   test images (fixed by seed {glue:text}`test_seed`, the same for both models) are written to
#   memory (`model.write`, as for Table 1: GPM with its writing noise); every image of the
#   episode is then corrupted and used as a query.
# - **Corruptions** (`gpm_core.corruptions`): Table 2 uses {glue:text}`levels`; Figures 2 and 8
#   sweep {glue:text}`sweep`. Salt-and-pepper flips exactly that fraction of the pixels; the
#   block is an ink-filled square at a random position; the rotation is by ± the angle, sign at
#   random, nearest-neighbour.
# - **Reading:** {glue:text}`iterations` steps of iterative reading (`model.iterative_read`:
#   address with the mean weights, read, decode, take the mode of the Bernoulli likelihood,
#   feed it back).
# - **Success:** a Hamming error of at most {glue:text}`success_threshold` of the
#   {glue:text}`image_pixels` pixels ({glue:text}`success_fraction:.0%`) after the last step.

# %% [markdown]
# ## Table 2, ours beside the paper's
#
# Success rate (%) after the last read, mean ± sd over the seeds of the trained models, the
# paper's value in parentheses.

# %%
cols = {"model": "model", "corruption": "corruption", **{f"T = {T}": f"T = {T}" for T in cfg["T"]},
        "seeds": "seeds"}
steps = json.loads((REPO / runs[0]["sources"][0]["path"]).read_text())["steps"]
display(Markdown(f"**Profile `{PROFILE}`** (models trained {steps:,} steps):"))
display(Markdown(report.rows_markdown(denoise.table2_rows(runs), cols)))
for rs, what in ((runs_long, "`long`"), (runs_xlong, "`xlong`")):
    if rs:
        steps = json.loads((REPO / rs[0]["sources"][0]["path"]).read_text())["steps"]
        display(Markdown(f"**Profile {what}** (seed 0, trained {steps:,} steps):"))
        display(Markdown(report.rows_markdown(denoise.table2_rows(rs), cols)))
display(Markdown(f"Paper values: {paper_numbers.TABLE2_SOURCE}."))

# %% [markdown]
# **Not reproduced.** Both models succeed about as often as a read-out that is entirely
# blank would. The next table shows why, from the same artifacts: after one read the
# models' outputs have almost no ink left, whatever the query, so the Hamming error of the
# last read is about the number of ink pixels of the clean image, and the "successes" are the
# test images with almost no ink.

# %%
dcols = {k: k for k in denoise.diagnosis_rows(runs)[0]}
display(Markdown(report.rows_markdown(denoise.diagnosis_rows(runs), dcols)))
for rs, what in ((runs_long, "`long`"), (runs_xlong, "`xlong`")):
    if rs:
        display(Markdown(f"The {what} models (seed 0):"))
        display(Markdown(report.rows_markdown(denoise.diagnosis_rows(rs), dcols)))

# %%
for rs in (runs, runs_long):  # the claims of the paragraph above, checked on the artifacts
    for row in denoise.diagnosis_rows(rs) if rs else []:
        assert float(row["ink after last read"]) < 0.5 * float(row["clean ink"]), row
        assert abs(float(row["success, ours (%)"]) - float(row["success, blank read-out (%)"])) < 3.0, row

# %% tags=["hide-input"]
assert runs_xlong  # the longest CPU runs: GPM (auto α) keeps some ink, but still no retrieval
for row in denoise.diagnosis_rows(runs_xlong):
    assert float(row["success, ours (%)"]) < 3.0, row
glue("xlong_steps", json.loads((REPO / runs_xlong[0]["sources"][0]["path"]).read_text())["steps"], display=False)

# %% [markdown]
# The `xlong` runs ({glue:text}`xlong_steps:,d` steps; GPM with `alpha = "auto"`, since the
# paper-α run stopped, see the Table 1 chapter): GPM's reads keep part of the ink, but they
# are not the written characters, so the error of the last read is no better than a blank
# answer's; DKM's reads are still nearly blank.

# %% [markdown]
# The reason is the decoder, not the memory or the protocol: at this stage of training the
# Bernoulli means of the Omniglot decoders stay below 0.5 almost everywhere (strokes are thin
# and rare: under a tenth of the pixels are ink), so the mode of the likelihood, which the
# attractor dynamics feed back, is nearly blank. The Table 1 chapter shows the same models'
# bounds are still far above the paper's and their reconstructions faint. A denoising
# experiment needs a model whose reads are sharp; the paper-profile runs (GPU) are the ones to
# repeat this analysis on: `python -m gpm_core denoise configs/table2_denoise.toml --profile
# paper --seed 0 --seed 1 --seed 2` once `results/table1_omniglot_{gpm,dkm}/paper-seed*.json`
# exist.

# %% [markdown]
# ## Figures 2 and 8: Hamming error per iteration
#
# Mean Hamming error over all queries (then over seeds) against the iteration; iteration 0 is
# the corrupted query. Solid lines GPM, dashed DKM; one colour per noise level. Figure 2 of
# the paper is $T = 16$ ({numref}`fig-hamming-16`); Figure 8 adds $T = 4$ and $8$
# ({numref}`fig-hamming-4-8`).

# %% mystnb={"figure": {"caption": "GPM Fig. 2, ours: Hamming error against iterative reads for episodes of $T = 16$ Omniglot test images, one panel per corruption, one colour per level; solid GPM, dashed DKM (mean over queries and the seeds of the models).", "name": "fig-hamming-16"}}
denoise.fig_hamming(runs, max(cfg["T"]))
plt.show()

# %% mystnb={"figure": {"caption": "GPM Fig. 8, ours: the same for the shorter episodes (one row per $T$).", "name": "fig-hamming-4-8"}}
denoise.fig_hamming(runs, sorted(cfg["T"])[:-1])
plt.show()

# %% [markdown]
# In {numref}`fig-hamming-16` and {numref}`fig-hamming-4-8` all curves fall in one step from
# the query's error to about the clean image's ink count and stay there: the first read erases the corruption and the character together.
#
# ## Beyond the paper: the same protocol on MNIST
#
# Our short MNIST runs do reconstruct digits (see the reconstructions chapter), so the same
# analysis on binarized MNIST shows what the attractor dynamics do when the reads are not
# blank. This is not in either paper; its numbers have no paper counterpart.

# %%
assert runs_mnist, "no results/denoise_mnist artifacts: run the analysis (RETRAIN = True)"
display(Markdown(report.rows_markdown(denoise.table2_rows(runs_mnist), cols)))
display(Markdown(report.rows_markdown(denoise.diagnosis_rows(runs_mnist), dcols)))

# %% mystnb={"figure": {"caption": "The Fig. 2 protocol on binarized MNIST (beyond the paper): Hamming error against iterative reads, $T = 16$; solid GPM, dashed DKM.", "name": "fig-hamming-mnist"}}
denoise.fig_hamming(runs_mnist, max(runs_mnist[0]["config"]["T"]))
plt.show()

# %% [markdown]
# On MNIST ({numref}`fig-hamming-mnist`) the reads keep their ink, and for GPM the first read or two bring the Hamming
# error below the query's at the higher noise levels; but the iterations then drift away again,
# and no retrieval ends within 7 pixels of the clean digit. The trajectories in
# {doc}`10_attractor_dynamics` show why: the dynamics fall into a handful of attractors
# (for GPM, a few generic digit shapes; for DKM, a faint stroke) that are not the stored
# patterns. A memory whose stored patterns are its attractors is what the paper-profile
# training should produce; these short runs have not reached it.

# %%
if runs_mnist:  # the claims above, checked on the artifacts
    for row in denoise.diagnosis_rows(runs_mnist):
        assert float(row["success, ours (%)"]) < 1.0, row
        if "gpm" in row["model"]:
            assert float(row["ink after last read"]) > 0.5 * float(row["clean ink"]), row

# %% [markdown]
# ## What differs from the paper, and why
#
# 1. **Training.** The paper's models are trained for 10,000–15,000 iterations (GPM §3.1; of
#    32 episodes each in the authors' code); ours for the steps listed above, of 8 episodes
#    (the Table 1 chapter compares the training lengths). Their decoders are sharp; ours are not, and
#    the denoising measure (a thresholded Hamming error) is blind to a decoder whose
#    probabilities carry the shape but stay below 0.5. The paper-profile cells are missing:
#    those runs are sized for a GPU (the command is above).
# 2. **Data.** Our Omniglot split is rebuilt from Lake et al.'s images (see Table 1); its
#    strokes are thinner than Burda et al.'s, which makes ink rarer still.
# 3. **What the paper leaves open**, and we chose (in `configs/table2_denoise.toml`): the
#    training episode length of the denoising models, the block's fill value and position, the
#    rotation's sign and interpolation, whether salt-and-pepper flips an exact or an expected
#    fraction of the pixels, and whether GPM writes the test episode with its writing noise.
#    None of these can move a blank read-out.
