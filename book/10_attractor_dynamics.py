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
# Figure 7 {cite}`pham2022gpm` shows denoising trajectories for four corruptions and the energy
# per iteration, noting that "sometimes the energy diverges"; DKM's Figure 3 {cite}`wu2018dkm`
# shows the same for 15 % salt-and-pepper noise over 15 iterations, and for samples drawn from
# the prior $w \sim p(w)$ and refined by the dynamics.
#
# This chapter reads the trajectories and energies that `python -m gpm_core denoise` stored
# in the analysis artifacts (see {doc}`09_denoising`), for the Table 1 Omniglot models with
# the authors' networks; it never trains or evaluates.

# %%
PROFILE = "cpu_alpha_cap"  # the analysis profile (configs/table2_denoise.toml): GPM cpu_alpha_cap + DKM cpu, seeds 0-2

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from gpm_core import report
from gpm_core.report import denoise

torch.set_num_threads(1)
runs = denoise.load_denoise("table2_denoise_omniglot", PROFILE)
assert runs, f"no results/table2_denoise_omniglot/{PROFILE}-seed*.json: see the denoising chapter"
run0 = next(r for r in runs if r["seed"] == min(denoise.seeds_of(runs)))
labels = denoise.model_labels(run0)  # {experiment: "GPM" | "DKM"}
models = ", ".join(f"{s['experiment']}/{s['profile']}" for s in run0["sources"])
print(f"models: {models}, "
      f"analysis profile {PROFILE}, seeds {denoise.seeds_of(runs)}; "
      f"figures from seed {run0['seed']}")

# %% [markdown]
# ## Figure 7 (a–d): denoising trajectories
#
# For each of GPM's Fig. 7 corruptions, (a) 15 % salt-and-pepper, (b) a 12 × 12 block, (c) a
# rotation by an angle uniform in ±45° and (d) Gaussian noise of standard deviation 0.5: the
# clean patterns (first column), the corrupted query (thresholded at 0.5 for display; the
# Gaussian query the models read is real-valued), then every second read
# ({numref}`fig-trajectories`).

# %% mystnb={"figure": {"caption": "GPM Fig. 7 (a-d), ours, Omniglot, $T = 16$: one row per corruption, GPM left, DKM right; in each panel one test pattern per line: the clean pattern, the corrupted query, then every second iterative read.", "name": "fig-trajectories"}}
denoise.fig_examples(run0)
plt.show()

# %%
rows = []
for kind, entry in run0["examples"].items():
    for exp, label in labels.items():
        final = [h[-1] for h in entry[exp]["hamming"]]
        rows.append({"panel": kind, "model": label, "T": entry["T"],
                     "Hamming error of each pattern, query": ", ".join(str(h[0]) for h in entry[exp]["hamming"]),
                     "last read": ", ".join(map(str, final)),
                     "within 7 pixels": f"{sum(h <= run0['success_threshold'] for h in final)} of {len(final)}"})
display(Markdown(report.rows_markdown(rows, {k: k for k in rows[0]})))

# %% [markdown]
# ## How often the energy decreases
#
# GPM's energy (eq. 7) is $-\ln p(x \mid w, M) + \lVert e(x) - wM \rVert^2$ and DKM's (eq. 14)
# is $-\ln p(x \mid w, M) + \mathrm{KL}(q(w)\,\|\,p(w))$, evaluated at every state of every
# trajectory of the Table 2 / Figure 8 sweep. Each step minimises the second term over $w$
# exactly only for DKM (its addressing solves the regularised least squares); GPM's addressing
# uses the 7-step Ben-Cohen pseudo-inverse, and both models' encoders are not the inverse of
# their decoders, so descent is not guaranteed for either. The table counts how often it
# happens (trajectories pooled over $T$, levels and seeds), with the mean energy after the
# first and the last read.

# %%
erows = denoise.energy_rows(runs)
display(Markdown(report.rows_markdown([r | {"model": labels[r["model"]]} for r in erows], {k: k for k in erows[0]})))
shares = denoise.energy_shares(runs)
for m, v in shares.items():
    glue(f"{m}_rose", v["rose"], display=False)
    glue(f"{m}_decreased", v["decreased"], display=False)
# the claims below
assert all(v["decreased"] > 90 for v in shares.values()) and all(v["rose"] > 10 for v in shares.values())
assert all(float(r["mean energy, last read"]) < float(r["mean energy, read 1"]) for r in erows)

# %% [markdown]
# The energy ends below its value after the first read in {glue:text}`gpm_decreased:.1f` % of
# GPM's trajectories and {glue:text}`dkm_decreased:.1f` % of DKM's, and its mean falls for every
# corruption; but it is not monotone: it rises at least once along
# {glue:text}`gpm_rose:.1f` % of GPM's trajectories and {glue:text}`dkm_rose:.1f` % of DKM's.
# The paper's remark that "sometimes the energy diverges" holds for ours too, as rises on the
# way down rather than as divergence. Figure 7e plots the energy of the examples of
# {numref}`fig-trajectories`, relative to its value after the first read ({numref}`fig-energy`).

# %% mystnb={"figure": {"caption": "GPM Fig. 7e, ours: the energy of each example of {numref}`fig-trajectories` per iteration, minus its value after the first read; one row per corruption, one panel per model.", "name": "fig-energy"}}
denoise.fig_energy({f"{kind.replace('_', ' ')} {entry['level']}": {labels[m]: entry[m]["energy"] for m in labels}
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
denoise.fig_energy({part: {labels[m]: f3[m][part]["energy"] for m in labels} for part in ("denoise", "sample")})
plt.show()

# %%
lines = []
for r in runs:
    for m in r["config"]["models"]:
        for part in ("denoise", "sample"):
            st = r["dkm_fig3"][m][part]["energy_stats"]
            lines.append({"seed": r["seed"], "model": labels[m], "task": part, "trajectories": st["n"],
                          "energy lower at the end": f"{st['decreased']:.0%}", "rises at least once": f"{st['rose']:.0%}"})
display(Markdown(report.rows_markdown(lines, {k: k for k in lines[0]})))

# %% mystnb={"figure": {"caption": "DKM Fig. 3a, b, ours: the first 8 patterns of each task, one per line, through the iterations (left to right): denoising (left) and sampling (right), one row per model.", "name": "fig-dkm-patterns"}}
fig, axes = plt.subplots(len(labels), 2, figsize=(8.6, 2.6 * len(labels)), squeeze=False)
for i, m in enumerate(labels):
    for j, part in enumerate(("denoise", "sample")):
        X = denoise.unpack(f3[m][part]["X"])  # (steps, 8, C, H, W)
        report.image_grid(axes[i, j], X.transpose(0, 1).reshape(-1, *X.shape[2:]), X.shape[0],
                          f"{labels[m]}: {part}")
plt.tight_layout()
plt.show()

# %%
sample_ink = {labels[m]: denoise.unpack(f3[m]["sample"]["X"])[-1].flatten(1).sum(1) for m in labels}
for m, ink in sample_ink.items():
    glue(f"{m.lower()}_sample_ink", ink.mean().item(), display=False)
    glue(f"{m.lower()}_sample_blank", int((ink == 0).sum()), display=False)
glue("n_sample_shown", len(sample_ink["GPM"]), display=False)

# %% [markdown]
# After 15 reads, the samples shown hold {glue:text}`gpm_sample_ink:.1f` ink pixels on
# average for GPM ({glue:text}`gpm_sample_blank` of {glue:text}`n_sample_shown` empty) and
# {glue:text}`dkm_sample_ink:.1f` for DKM ({glue:text}`dkm_sample_blank` empty).
#
# ## What differs from the papers
#
# Our models are the Table 1 recipe's CPU runs ({doc}`07_table1` compares their training with
# the papers'). The paper's panels are drawn from its own models; which patterns it shows is
# not said. Ours are the first patterns of fixed test episodes, not selected. Panel (c) draws
# the rotation angle uniformly from ±45°, as the paper's caption says (Table 2 rotates by ±30°);
# panel (d)'s Gaussian query is clipped to $[0, 1]$, a choice the paper does not state.
# The same trajectories on MNIST (beyond the papers) are stored in `results/denoise_mnist/`;
# {doc}`09_denoising` tabulates their success rates, and this chapter draws Omniglot only.
