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
# # Attractor dynamics: Figure 7 of GPM and Figure 3 of DKM
#
# Iterative reading is coordinate descent on an energy: addressing minimises it over the
# weights $w$, taking the mode of the likelihood minimises it over the image $x$ (GPM eq. 7,
# DKM eq. 14; Part I derives both and checks the descent on patterns without networks). GPM's
# Figure 7 {cite}`pham2022gpm` shows denoising trajectories and the energy per iteration,
# noting that "sometimes the energy diverges"; DKM's Figure 3 {cite}`wu2018dkm` shows the
# same for 15 % salt-and-pepper noise over 15 iterations, and for samples drawn from the
# prior $w \sim p(w)$ and refined by the dynamics.
#
# This chapter reads the trajectories and energies that `python -m gpm_core denoise` stored
# in the analysis artifacts (see the denoising chapter); it never trains or evaluates.

# %%
PROFILE = "quick"

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from gpm_core import report
from gpm_core.report import denoise

torch.set_num_threads(1)
runs = denoise.load_denoise("table2_denoise_omniglot", PROFILE)
runs_mnist = denoise.load_denoise("denoise_mnist", PROFILE)
assert runs, "no results/table2_denoise_omniglot artifacts: see the denoising chapter"
run0 = next(r for r in runs if r["seed"] == 0)

# %% [markdown]
# ## Figure 7: denoising trajectories
#
# For each Table 2 corruption: the clean patterns (first column), the corrupted query, then
# every second read of the first seed's models, on Omniglot ({numref}`fig-trajectories`)
# and, beyond the paper, on MNIST ({numref}`fig-trajectories-mnist`).

# %% mystnb={"figure": {"caption": "GPM Fig. 7 (a-c), ours, Omniglot: one row per corruption, GPM left, DKM right; in each panel one test pattern per line: the clean pattern, the corrupted query, then every second iterative read (seed 0 models).", "name": "fig-trajectories"}}
denoise.fig_examples(run0)
plt.show()

# %% mystnb={"figure": {"caption": "The same on MNIST (beyond the paper).", "name": "fig-trajectories-mnist"}}
m0 = next(r for r in runs_mnist if r["seed"] == 0)
denoise.fig_examples(m0)
plt.show()

# %% [markdown]
# ## How often the energy decreases
#
# GPM's energy (eq. 7) is $-\ln p(x \mid w, M) + \lVert e(x) - wM \rVert^2$ and DKM's (eq. 14)
# is $-\ln p(x \mid w, M) + \mathrm{KL}(q(w)\,\|\,p(w))$, evaluated at every state of every
# trajectory of the Table 2 / Figure 8 sweep. Each step minimises the second term over $w$
# exactly only for DKM (its addressing solves the regularised least squares); GPM's addressing
# uses the 7-step Ben-Cohen pseudo-inverse, and both models' encoders are not the inverse of
# their decoders, so descent is not guaranteed for either. The counts below say how often it
# happens (trajectories pooled over $T$, levels and seeds).

# %%
ecols = {k: k for k in denoise.energy_rows(runs)[0]}
display(Markdown("**Omniglot**"))
display(Markdown(report.rows_markdown(denoise.energy_rows(runs), ecols)))
if runs_mnist:
    display(Markdown("**MNIST** (beyond the paper)"))
    display(Markdown(report.rows_markdown(denoise.energy_rows(runs_mnist), ecols)))

# %% [markdown]
# The energy of the first examples, per iteration, relative to its value after the first read
# (GPM Fig. 7e), is {numref}`fig-energy`.

# %% mystnb={"figure": {"caption": "GPM Fig. 7e, ours: the energy of each example of {numref}`fig-trajectories` per iteration, minus its value after the first read; one row per corruption, one panel per model.", "name": "fig-energy"}}
denoise.fig_energy({f"{kind.replace('_', ' ')} {entry['level']}": {m: entry[m]["energy"] for m in run0["config"]["models"]}
                    for kind, entry in run0["examples"].items()})
plt.show()

# %% [markdown]
# ## DKM Figure 3: 15 % salt-and-pepper and sampling, 15 iterations
#
# DKM's own experiment on our trained models: an episode of 32 Omniglot test images is
# written; 20 of them are corrupted by flipping 15 % of their pixels and read for 15
# iterations (Fig. 3a, c); and 20 samples $x_0 = \mathrm{mode}\, p(x \mid w M)$ with
# $w \sim \mathcal N(0, I)$ are refined by the same dynamics (Fig. 3b, d). Their energies
# are {numref}`fig-dkm-energy`, the patterns {numref}`fig-dkm-patterns`.

# %% mystnb={"figure": {"caption": "DKM Fig. 3c, d, ours: energy per iteration (minus its value after the first read) of 20 queries with 15 % salt-and-pepper noise (top) and of 20 samples from the prior (bottom), seed 0 models.", "name": "fig-dkm-energy"}}
f3 = run0["dkm_fig3"]
denoise.fig_energy({part: {m: f3[m][part]["energy"] for m in run0["config"]["models"]} for part in ("denoise", "sample")})
plt.show()

# %%
lines = []
for r in runs + runs_mnist:  # Omniglot (the papers' data), then MNIST (beyond the papers)
    for m in r["config"]["models"]:
        for part in ("denoise", "sample"):
            st = r["dkm_fig3"][m][part]["energy_stats"]
            lines.append(f"| {r['seed']} | {m} | {part} | {st['n']} | {st['decreased']:.0%} | {st['rose']:.0%} |")
display(Markdown("| seed | model | task | trajectories | energy lower at the end | rises at least once |\n"
                 "|---|---|---|---|---|---|\n" + "\n".join(lines)))

# %% mystnb={"figure": {"caption": "DKM Fig. 3a, b, ours: the first 8 patterns of each task, one per line, through the iterations (left to right): denoising (left) and sampling (right), one row per model.", "name": "fig-dkm-patterns"}}
fig, axes = plt.subplots(len(run0["config"]["models"]), 2, figsize=(8.6, 2.6 * len(run0["config"]["models"])),
                         squeeze=False)
for i, m in enumerate(run0["config"]["models"]):
    for j, part in enumerate(("denoise", "sample")):
        X = denoise.unpack(f3[m][part]["X"])  # (steps, 8, C, H, W)
        report.image_grid(axes[i, j], X.transpose(0, 1).reshape(-1, *X.shape[2:]), X.shape[0],
                          f"{m.rsplit('_', 1)[-1].upper()}: {part}")
plt.tight_layout()
plt.show()

# %% [markdown]
# ## What differs from the papers
#
# On Omniglot the trajectories are short because the reads are nearly blank from the first
# step on (the denoising chapter measures this): the dynamics converge at once to a fixed
# point that is the blank image or close to it, not to the stored pattern, and the energy
# then changes little (some GPM trajectories alternate between two nearly equal values:
# the tables above count every rise). On MNIST the reads keep their ink and the energy usually ends lower
# than it started, but often rises on the way, and the fixed points are a few generic shapes
# rather than the stored digits. The papers' models, trained far longer (the Table 1 chapter
# compares the training lengths), have sharp decoders whose fixed points are the stored patterns; the paper-profile runs that
# would show this need a GPU and are missing here.
