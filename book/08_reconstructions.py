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
# # Figures 5, 3a and 6: reconstructions, samples and read-outs
#
# GPM's Figure 5 shows test episodes beside their reconstructions, Figure 3a shows images
# generated from a written memory and refined by iterative reading, and Figure 6 the cosine
# similarity between the codes written and the codes read back {cite}`pham2022gpm`; the DKM
# paper's Figure 3b shows samples for DKM {cite}`wu2018dkm`. Here all three come from the
# models trained for {doc}`07_table1` with the authors' networks (GPM with their noise and
# draw of $W$; DKM with the same networks), seed 0: for GPM the best recipe of Table 1
# (`cpu_alpha`, or its capped form `cpu_alpha_cap` where only that one converged), for DKM the
# longest-trained finished run (each printed below), loaded from the small state dicts in `results/`; the chapter runs the
# trained networks forward on a test episode and trains nothing.
#
# The test data needs `GPM_DATA` (see the README); without it this chapter stops with an error
# that says where it looked.

# %%
import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from gpm_core import report
from gpm_core.report import paper_numbers, table1

torch.set_num_threads(1)
# the longest-trained finished seed-0 run among these profiles: for GPM the best recipe of
# Table 1 (book/07_table1), for DKM the longest run
PROFILES = {"gpm": ("cpu_alpha", "cpu_alpha_cap", "cpu_long_alpha"), "dkm": ("cpu_long", "cpu")}
EXPERIMENTS = {"gpm": "table1_{dataset}_gpm_authors", "dkm": "table1_{dataset}_dkm_resnet"}
N_SHOW = 16  # images of the first test episode shown per row

# %%
torch.manual_seed(0)  # the write noise and any sampled W below
groups = report.group_runs(experiments=[e.format(dataset=d) for e in EXPERIMENTS.values() for d in ("omniglot", "mnist")])
panels, pending = {}, []
for dataset in ("omniglot", "mnist"):
    for kind, name in EXPERIMENTS.items():
        exp = name.format(dataset=dataset)
        if not any(r["seed"] == 0 for p in PROFILES[kind] for r in groups.get((exp, p), [])):
            pending.append(exp)
            continue
        result = table1.longest_run(exp, PROFILES[kind])
        print(f"{exp:28s} {result['profile']} profile, {result['steps']} steps")
        model, cfg, X = report.model_and_episode(result)  # X: the first test episode (1, T, 1, 28, 28)
        with torch.no_grad():
            state = model.write(X)
            out, _ = model.read(X, state)  # mean addressing weights
            recon = model.likelihood.mode(out)  # (1, T, 1, 28, 28)
            samples = model.generate(state, N_SHOW)  # w ~ N(0, I), z = w M
            refined = model.iterative_read(samples, state, 5)["X"]  # (6, 1, N, 1, 28, 28)
        panels[(dataset, kind)] = dict(X=X[0], recon=recon[0], samples=refined[:, 0], profile=result["profile"])
print("pending (not trained yet):", ", ".join(pending) or "none")
glue("shown_profiles", "; ".join(f"{d} {k.upper()} {p['profile']}" for (d, k), p in sorted(panels.items())),
     display=False)
assert ("omniglot", "gpm") in panels and ("omniglot", "dkm") in panels

# %% [markdown]
# ## Figure 5: reconstructions
#
# For each dataset with trained models: the first 16 images of a test episode (top), then
# GPM's and DKM's reconstructions after writing the whole episode ($T = 32$) and reading it back
# with the mean addressing weights (the mode of the Bernoulli decoder), in
# {numref}`fig-reconstructions`.

# %% mystnb={"figure": {"caption": "GPM Fig. 5, ours: the first 16 images of a test episode (Omniglot, then MNIST), then GPM's and DKM's reconstructions after writing the episode ($T = 32$) and reading it with the mean addressing weights (seed 0 models from `results/`).", "name": "fig-reconstructions"}}
shown = [d for d in ("omniglot", "mnist") if (d, "gpm") in panels and (d, "dkm") in panels]
fig, axes = plt.subplots(3 * len(shown), 1, figsize=(8, 2.3 * len(shown)), squeeze=False)
for i, dataset in enumerate(shown):
    report.image_grid(axes[3 * i, 0], panels[(dataset, "gpm")]["X"][:N_SHOW], N_SHOW, f"{dataset}: test episode")
    report.image_grid(axes[3 * i + 1, 0], panels[(dataset, "gpm")]["recon"][:N_SHOW], N_SHOW, "GPM reconstruction")
    report.image_grid(axes[3 * i + 2, 0], panels[(dataset, "dkm")]["recon"][:N_SHOW], N_SHOW, "DKM reconstruction")
fig.tight_layout()
plt.show()

# %%
rrows = []
for (dataset, kind), p in sorted(panels.items()):
    rrows.append({"dataset": dataset, "model": kind.upper(), "profile": p["profile"],
                  "Hamming to the original": (p["recon"] != p["X"]).float().sum(dim=(1, 2, 3)).mean().item(),
                  "an empty image": p["X"].sum(dim=(1, 2, 3)).mean().item(),
                  "ink, original": p["X"].sum(dim=(1, 2, 3)).mean().item(),
                  "ink, reconstruction": p["recon"].sum(dim=(1, 2, 3)).mean().item(),
                  "within 7 pixels (%)": 100 * ((p["recon"] != p["X"]).flatten(1).sum(1) <= 7).float().mean().item()})
display(Markdown("Mean over the whole episode ($T = 32$), in pixels of 784:\n\n"
                 + report.rows_markdown(rrows, {k: k for k in rrows[0]})))
rec = {(r["dataset"], r["model"]): r for r in rrows}
g, d = rec[("omniglot", "GPM")], rec[("omniglot", "DKM")]
for name, r in (("gpm", g), ("dkm", d)):
    glue(f"{name}_recon_err", r["Hamming to the original"], display=False)
    glue(f"{name}_recon_ink", r["ink, reconstruction"], display=False)
glue("empty_err", g["an empty image"], display=False)
# the claims below: both reconstruct (far below an empty image's error, with ink), GPM closer
assert g["Hamming to the original"] < 0.2 * g["an empty image"] and d["Hamming to the original"] < 0.5 * d["an empty image"]
assert g["Hamming to the original"] < d["Hamming to the original"]
assert all(r["ink, reconstruction"] > 0.5 * r["ink, original"] for r in rrows)

# %% [markdown]
# GPM's Omniglot reconstructions differ from the originals in {glue:text}`gpm_recon_err:.1f`
# pixels on average, DKM's in {glue:text}`dkm_recon_err:.1f`, against
# {glue:text}`empty_err:.1f` for an empty image: both place the strokes of the written
# characters, GPM nearly exactly.

# %% [markdown]
# ## Figure 3a: samples generated from the memory
#
# After writing a test episode, $w \sim p(w) = \N(0, I)$ is drawn and $z = wM$ decoded (first
# column); the next columns are five iterative reads, each re-addressing the decoded image (the
# attractor dynamics of {doc}`05_attractors`), in {numref}`fig-samples`.

# %% mystnb={"figure": {"caption": "GPM Fig. 3a and DKM Fig. 3b, ours, Omniglot (top) and MNIST (bottom): for each model, eight samples (one per row) decoded from $z = wM$ with $w \\sim \\mathcal N(0, I)$ (left), then five iterative reads (left to right).", "name": "fig-samples"}}
fig, axes = plt.subplots(len(shown), 2, figsize=(8, 5.2 * len(shown)), squeeze=False)
for i, dataset in enumerate(shown):
    for j, kind in enumerate(("gpm", "dkm")):
        s = panels[(dataset, kind)]["samples"][:, :8]  # (6 iterations, 8 samples, 1, 28, 28)
        report.image_grid(axes[i, j], s.transpose(0, 1).reshape(-1, 1, 28, 28), 6,
                          f"{kind.upper()} on {dataset}: sample, then 5 reads (left to right)")
fig.tight_layout()
plt.show()

# %%
srows = []
for (dataset, kind), p in sorted(panels.items()):
    s = p["samples"]  # (6, N, 1, 28, 28)
    ink = s[-1].flatten(1).sum(1)
    srows.append({"dataset": dataset, "model": kind.upper(), "samples": len(ink),
                  "ink, raw sample": s[0].flatten(1).sum(1).mean().item(), "ink, after 5 reads": ink.mean().item(),
                  "empty after 5 reads": int((ink == 0).sum()),
                  "ink of the written images": p["X"].flatten(1).sum(1).mean().item()})
display(Markdown(report.rows_markdown(srows, {k: k for k in srows[0]})))
smp = {(r["dataset"], r["model"]): r for r in srows}
for name in ("GPM", "DKM"):
    glue(f"{name.lower()}_sample_ink", smp[("omniglot", name)]["ink, after 5 reads"], display=False)
    glue(f"{name.lower()}_raw_ink", smp[("omniglot", name)]["ink, raw sample"], display=False)
glue("written_ink", smp[("omniglot", "GPM")]["ink of the written images"], display=False)
# the claims below: both raw samples carry most of the written ink; reading thins GPM's, not DKM's
g, d = smp[("omniglot", "GPM")], smp[("omniglot", "DKM")]
assert min(g["ink, raw sample"], d["ink, raw sample"]) > 0.75 * g["ink of the written images"]
assert g["ink, after 5 reads"] < 0.75 * g["ink, raw sample"] and d["ink, after 5 reads"] > 0.75 * d["ink, raw sample"]

# %% [markdown]
# On Omniglot, the raw samples $z = wM$ (first column) carry {glue:text}`gpm_raw_ink:.1f` ink
# pixels on average for GPM and {glue:text}`dkm_raw_ink:.1f` for DKM, near the written images'
# {glue:text}`written_ink:.1f`. Five iterative reads thin GPM's samples to
# {glue:text}`gpm_sample_ink:.1f` and leave DKM's at {glue:text}`dkm_sample_ink:.1f`. We have
# not measured why reading thins GPM's samples; the paper's Fig. 3a shows its samples only
# after reading.
#
# ## Figure 6: cosine similarity of the codes written and read
#
# The GPM paper reports that GPM's read-outs $\bar W M$ are almost exactly the written codes $Z$
# (average cosine similarity "nearly 1") against about 0.82 for DKM. The result files of the
# models above hold the same measurement on the fixed test episodes of Table 1 (mean ± sd
# over seeds):

# %%
cos_rows = []
for kind, name in EXPERIMENTS.items():
    paper = paper_numbers.OTHER[f"fig6_cosine_{kind}"]
    for profile in PROFILES[kind]:
        runs = groups.get((name.format(dataset="omniglot"), profile), [])
        if runs:
            s = report.seed_summary(runs, "cosine")
            cos_rows.append({"model": kind.upper(), "profile": profile, "paper": paper.value, "ours": s["mean"],
                             "sd": s["sd"], "gap": s["mean"] - paper.value, "digits": 4, "n_seeds": s["n_seeds"]})
display(Markdown(report.rows_markdown(cos_rows, {"model": "model", "profile": "profile",
                                                 "paper": "paper (Omniglot, Fig. 6)", "ours": "ours (mean ± sd)",
                                                 "gap": "ours − paper", "n_seeds": "seeds"})))
cos_profile = {"GPM": "cpu_alpha", "DKM": "cpu"}
cos = {r["model"]: r["ours"] for r in cos_rows if r["profile"] == cos_profile[r["model"]]}
glue("gpm_cos", cos["GPM"], display=False)
glue("dkm_cos", cos["DKM"], display=False)
glue("gpm_cos_profile", cos_profile["GPM"], display=False)
glue("dkm_cos_profile", cos_profile["DKM"], display=False)
assert min(cos.values()) > 0.95 and cos["DKM"] >= cos["GPM"]  # the prose below

# %% [markdown]
# Both memories read back nearly what they were given (cosine {glue:text}`gpm_cos:.4f` for
# GPM, profile {glue:text}`gpm_cos_profile`; {glue:text}`dkm_cos:.4f` for DKM, profile
# {glue:text}`dkm_cos_profile`), and the paper's ordering is not
# reproduced: DKM's read-outs are at least as close to the written codes as GPM's. An episode
# of $T = 32$ codes in $K = 32$ rows can be held nearly exactly by both least-squares memories
# (Part I, {doc}`04_gpm_memory` and {doc}`06_dkm_memory`); the paper's 0.82 for DKM comes from
# the GPM authors' own DKM implementation, whose details we do not know.
#
# ## What is still missing
#
# Only seed 0 of each model is shown; the images here are what the committed state dicts
# produce, not selected examples. The models are the longest-trained seed-0 runs of the
# profiles above: {glue:text}`shown_profiles`.
