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
import sys

if "google.colab" in sys.modules:  # install gpm_core when this chapter runs on Colab
    !pip install -q "gpm_core @ git+https://github.com/gpm-book/gpm-book"

# %% [markdown]
# # Table 1: binarized MNIST and Omniglot
#
# GPM's Table 1 {cite}`pham2022gpm` reports the negative conditional ELBO of test episodes, in
# nats per image: GPM 31.48 (MNIST) and 25.68 (Omniglot), against 75.3 and 77.2 for the Dynamic
# Kanerva Machine {cite}`wu2018dkm`. This chapter trains both models with identical networks and
# data through the package's CLI and puts our numbers beside the papers'.
#
# **This chapter never trains by default.** It reads the result files in `results/`, written by
# `python -m gpm_core train`. Set `RETRAIN = True` (e.g. on Colab with a GPU) to retrain every
# cell below through the CLI first; `PROFILE` picks the profile.

# %%
RETRAIN = False
PROFILE = "quick"  # "quick" (a 2-core CPU, minutes per run) or "paper" (the papers' settings)
SEEDS = "0 1 2"

# %%
import subprocess

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display

from gpm_core.report import paper_numbers, table1 as report
from gpm_core.artifacts import REPO
from gpm_core.config import load_config

torch.set_num_threads(1)
EXPERIMENTS = ["table1_mnist_gpm", "table1_mnist_dkm", "table1_omniglot_gpm", "table1_omniglot_dkm"]
ABLATION = ["table1_omniglot_gpm", "ablation_pinv_auto_alpha", "ablation_pinv_exact"]
if RETRAIN:  # the same command that produced results/ (see scripts/train-all)
    subprocess.run(["bash", "scripts/train-all", PROFILE, SEEDS, *EXPERIMENTS, *ABLATION[1:]],
                   check=True, cwd=REPO)

# %% [markdown]
# The CIFAR10 column of Table 1 (bits/dim) is in {doc}`13_real_valued`, with the other
# real-valued datasets.
#
# ## The protocol
#
# Both models use the same encoder and decoder (GPM appendix C: four 4×4 stride-2 convolutions,
# each followed by a bottleneck residual block, swish, 16 filters; `gpm_core.nets`), a
# $32 \times 100$ memory ($K \times C$), episodes of $T = 32$ images and a Bernoulli likelihood.
#
# - **Metric.** For each test episode $X$, the memory is written with $X$ itself and
#   $-\big[\E_{q(W)} \ln p(X \mid W, M) - \KL(q(W)\,\|\,p(W))\big] / T$ is scored (GPM eq. 1;
#   DKM §4, which removes $\KL(q(M)\,\|\,p(M))$ and divides by the episode size). This is
#   `nll_cond` in the result files; the expectation uses one sample of $W$, as in training.
#   GPM writes the test episode with the writing noise $\xi$ of Algorithm 1
#   (`eval_write_noise = true`).
# - **Test episodes.** A fixed set drawn with seed 1234 from the test split, the same for every
#   model and seed (`gpm_core.data.test_episodes`); 50 episodes (1,600 images) in the quick
#   profile, 250 (8,000 images) in the paper profile.
# - **Data.** MNIST is binarized by a fixed threshold at 0.5, as the official GPM code does.
#   Omniglot: Burda et al.'s 28×28 split is not available to us; we rebuild the closest split
#   from Lake et al.'s images (see the deviation note below).
# - **Training.** `quick`: 500 steps of 8 episodes, Adam at $3\cdot 10^{-4}$, weight decay
#   $10^{-3}$, gradient clipping at 10; `long`: the same for 2,000 steps, one seed, to
#   measure how far the bound falls with training; `xlong`: 6,000 steps, seed 0, Omniglot only
#   (the longest runs a CPU session fits); `paper`: 15,000 steps of 32 episodes (GPM §3.1 and
#   appendix C; the batch size is the official code's). DKM gets the same budget as GPM, so the
#   table compares the memories, not the training lengths (the DKM paper trained for about
#   $3 \times 10^5$ steps).
# - **Seeds.** Three seeds per cell; we report the mean ± sd over seeds and list every seed.
# - **Objective.** Both models minimise $-(\mathcal L + \mathcal L_{AE})$ per image: the episode
#   bound divided by $T$ plus the auto-encoder term $\mathcal L_{AE} = \ln p(x \mid d(e(x)))$ per
#   image, as GPM eq. 2 writes it. For DKM this is our reading of its eq. 12: a literal reading
#   that divides $\mathcal L_{AE}$ by $T$ too would weight the auto-encoder term 32 times less.
#   DKM's $\mathrm{KL}(q(M)\,\|\,p(M))$ is in its training loss (divided by $T$) and, as in the
#   paper, removed from the reported bound.

# %% [markdown]
# ## Ours beside the paper's

# %%
rows = report.table1(profiles=("quick", "long", "xlong", "paper"))
display(Markdown(report.rows_markdown(rows, {
    "model": "model", "dataset": "dataset", "profile": "profile", "paper": "paper",
    "ours": "ours (mean ± sd)", "gap": "ours − paper", "n_seeds": "seeds",
    "per_seed": "per seed", "steps": "steps", "wall_time_s": "wall time per run (s)",
    "devices": "device"})))
deviation = next(s["deviation"] for s in [report.seed_summary(v, "nll_cond")
                                          for v in report.group_runs().values()] if s.get("deviation"))
display(Markdown(f"**Deviation (Omniglot data), as recorded in every Omniglot artifact:** {deviation}"))

# %% [markdown]
# For scale, the bound of a model with independent Bernoulli pixels (each pixel's mean taken
# from the training set; no memory, no networks), computed here on the same test sets:

# %%
from gpm_core.datasets import load_images

for dataset in ("mnist", "omniglot"):
    cfg = load_config(REPO / "configs" / f"table1_{dataset}_gpm.toml", "quick").data
    train, test = load_images(dataset, "train", cfg), load_images(dataset, "test", cfg)
    print(f"{dataset:8s} independent pixels: {report.independent_pixel_nll(train.images, test.images):6.1f} nats/image")

# %% [markdown]
# Read the quick-profile rows against this baseline: after 500 steps both models are close to
# it, and where a row is above it the model is still worse than independent pixels. The quick
# profile measures that the whole pipeline trains, evaluates and records provenance, and how
# the two memories compare at equal (short) training; it does not reproduce the papers'
# values.
#
# Every cell is regenerated by the command in its row's `command` field
# (`python -m gpm_core train configs/<experiment>.toml --profile <profile> --seed N`); the git
# commit, torch version and device of each run are in its JSON. Cells marked *not run* are
# missing: the paper profile (15,000 steps of 512 images) needs about an hour per run on a GPU
# and did not fit on the 2-core CPU that produced these results.

# %%
quick = [r for r in rows if r["profile"] == "quick" and r["ours"] is not None]
assert quick, "no quick-profile results found in results/: run scripts/train-all (see above)"
for r in quick:  # every reported cell has three seeds and a finite value
    assert r["n_seeds"] >= 3 and r["ours"] == r["ours"], r

# %% [markdown]
# ### Training curves
#
# The training objective's conditional part ($-$ELBO per image, `elbo_cond`) against the step,
# one line per seed, from the loss curves stored in the artifacts.

# %%
groups = report.group_runs(experiments=EXPERIMENTS)
fig = report.fig_training_curves(groups)
plt.show()

# %% [markdown]
# ### Why our numbers differ from the paper's
#
# The differences are far larger than the spread over seeds, and we can say where they come
# from with what the artifacts hold:

# %%
def end_slope(runs, key="elbo_cond", last=100):
    """Mean decrease of `key` per 100 steps over the last `last` steps of the curves."""
    out = []
    for r in runs:
        pts = [p for p in r["loss_curve"] if p["step"] > r["steps"] - last]
        out.append((pts[0][key] - pts[-1][key]) / max(pts[-1]["step"] - pts[0]["step"], 1) * 100)
    return sum(out) / len(out)


lines = []
for exp, profile in sorted(groups):
    runs = groups[(exp, profile)]
    s = report.seed_summary(runs, "nll_cond")
    kl = report.seed_summary(runs, "kl_w")
    images = runs[0]["config"]["train"]["steps"] * runs[0]["config"]["train"]["batch_size"] * 32
    paper = load_config(REPO / "configs" / f"{exp}.toml", "paper").train
    share = images / (paper.steps * paper.batch_size * 32)
    lines.append(f"- `{exp}` ({profile}): {images:,} training images seen "
                 f"in {runs[0]['steps']} steps ({share:.1%} of the paper profile's); the training bound still falls by "
                 f"{end_slope(runs):.1f} nats/image per 100 steps at the end; of the test bound "
                 f"{s['mean']:.1f}, {kl['mean']:.1f} is the KL of the addressing weights.")
display(Markdown("\n".join(lines)))

# %%
from gpm_core.artifacts import load_analyses

stab = [r for e in ("stability_table1_mnist_gpm", "stability_table1_omniglot_gpm")
        for r in load_analyses(e, results_dir=report.RESULTS)]
display(Markdown("| run | seed | step | finished | α σ_max(M)², median | max | episodes ≥ 2 |\n|---|---|---|---|---|---|---|\n"
                 + "\n".join(f"| {r['sources'][0]['experiment']} {r['profile']} | {r['seed']} | {r['checkpoint_step']} | "
                              f"{'yes' if r['finished'] else 'no: stopped by the guard'} | "
                              f"{r['margins']['train']['M']['median']:.2f} | {r['margins']['train']['M']['max']:.2f} | "
                              f"{r['margins']['train']['M']['past_limit']} of {r['margins']['train']['M']['n']} |"
                              for r in sorted(stab, key=lambda r: (r["experiment"], r["checkpoint_step"], r["seed"])))))
# the margin shrinks with training: every 2,000-step run is closer to the limit than every 500-step run
by_steps = {}
for r in stab:
    if "omniglot" in r["experiment"]:
        by_steps.setdefault(r["checkpoint_step"], []).append(r["margins"]["train"]["M"]["median"])
assert min(by_steps[max(by_steps)]) > max(by_steps[min(by_steps)])

# %% [markdown]
# The memory's $\alpha\,\sigma_{\max}^2$ roughly triples between 500 and 2,000 steps on
# Omniglot and is already close to 2 on some training episodes when the `xlong` run stops;
# the MNIST runs are, on average, ahead of the Omniglot ones at 500 steps. So training with the paper's
# fixed $\alpha$ runs into the iteration's divergence limit; we do not know how the authors'
# longer runs avoided it (their code may differ in a detail the paper does not state). The
# paper-profile runs will show whether it happens there too; `alpha = "auto"` is the safe
# choice, and its `xlong` run (below, if it finished) is the longest GPM we trained.

# %%
for exp in EXPERIMENTS:  # the same cell trained 4x longer (one seed): how much of the gap is training
    q = report.seed_summary(groups.get((exp, "quick"), []), "nll_cond")
    lg = report.seed_summary(groups.get((exp, "long"), []), "nll_cond")
    if q and lg:
        print(f"{exp:22s} 500 steps: {q['mean']:7.2f}   2,000 steps: {lg['mean']:7.2f}   "
              f"change {lg['mean'] - q['mean']:+7.2f} nats/image")

# %% [markdown]
# 1. **Training length.** The paper trains for 10,000–15,000 steps of 32 episodes of 32 images
#    (about 5 million images; the official code runs about 23,000 steps); the quick profile
#    sees a small fraction of that (listed above) and its curves are still falling steeply when it stops (the
#    slopes above); four times more training (the `long` profile, the cell above) lowers the
#    bound substantially. The quick numbers are a check that the pipeline trains and evaluates
#    end to end, not a reproduction of the paper's values; the paper-profile cells are missing
#    (see the status page).
# 2. **The KL of the addressing weights alone is a sizeable part of the bound** at this stage
#    (above). GPM's 25.68 nats must include this term too (eq. 1), so the paper's model must
#    drive both the reconstruction and this KL far below what a short run reaches.
# 3. **Omniglot data.** Our split has 8,115 test images instead of 8,070, and our 28×28
#    downsampling is not Burda et al.'s; their images have thicker strokes than a threshold of
#    an area average gives (our mean ink is 0.076 per pixel), which changes the nats per image
#    directly.
# 4. **Stability.** Two GPM runs with the paper's $\alpha = 10^{-3}$ did not finish: `long` on
#    MNIST and `xlong` on Omniglot (seed 0) were stopped by the trainer's guard when the
#    gradient norm overflowed float32, which keeps the last good checkpoint; their rows are
#    empty. The Ben-Israel–Cohen iteration converges only while $\alpha\,\sigma_{\max}^2 < 2$
#    ({doc}`03_ben_cohen`), and training makes the written memory $M$ grow towards that limit.
#    The next cell measures it (`python -m gpm_core stability`, 64 training episodes written
#    with the writing noise) at the end of each run, and at the Omniglot `xlong` run's last
#    good checkpoint. (The MNIST `long` run's checkpoints are gone.) `alpha = "auto"` (the
#    ablation below) has no such limit by construction.
# 5. **What the number counts** is the subject of the next section: it is a bound conditional
#    on a memory that holds the very episode it scores.

# %% [markdown]
# ## What the number counts
#
# Both papers' numbers are conditional on a memory written with the test episode being scored.
# GPM's memory is deterministic and pays no KL; DKM's KL of the memory, $\KL(q(M)\,\|\,p(M))$,
# is removed. Beside the papers' metric we report (a) the same bound with DKM's KL of the
# memory kept (divided by $T$), and (b) the bound on test images of the same classes that were
# *not* written: each written image is paired with another image of its class (another drawing
# of the same Omniglot character; another MNIST image of the same digit) and that one is read
# and scored (`gpm_core.data.unwritten_query_episodes`).

# %%
cols = ["nll_cond", "nll_cond_with_kl_m", "unseen_nll_cond", "cosine", "unseen_cosine"]
counts = report.metric_table(EXPERIMENTS, cols, profile=PROFILE)
display(Markdown(report.rows_markdown(counts, {
    "experiment": "experiment", "nll_cond": "papers' metric (written)",
    "nll_cond_with_kl_m": "(a) with KL(M)/T", "unseen_nll_cond": "(b) not written",
    "cosine": "cosine e(x), read-out", "unseen_cosine": "cosine, not written",
    "n_seeds": "seeds"})))

# %%
for exp in EXPERIMENTS:  # how much worse the bound is on images that were not written
    runs = report.group_runs(experiments=[exp]).get((exp, PROFILE), [])
    if runs:
        written = report.seed_summary(runs, "nll_cond")["mean"]
        unseen = report.seed_summary(runs, "unseen_nll_cond")["mean"]
        print(f"{exp:22s} written {written:7.2f}  not written {unseen:7.2f}  difference {unseen - written:+6.2f}")

# %% [markdown]
# ## Figure 6: cosine similarity of encodings and read-outs
#
# The GPM paper reports that the read-outs $\bar W M$ of GPM are almost exactly the encodings
# $Z$ written to memory (average cosine similarity "nearly 1"), against about 0.82 for DKM
# (its Fig. 6). The cosine column above is the same measurement on our test episodes.

# %%
cos_rows = []
for model, key in (("gpm", "fig6_cosine_gpm"), ("dkm", "fig6_cosine_dkm")):
    paper = paper_numbers.OTHER[key]
    for dataset in ("omniglot", "mnist"):
        runs = report.group_runs(experiments=[f"table1_{dataset}_{model}"]).get(
            (f"table1_{dataset}_{model}", PROFILE), [])
        if runs:
            s = report.seed_summary(runs, "cosine")
            cos_rows.append({"model": model.upper(), "dataset": dataset,
                             "paper": paper.value if dataset == "omniglot" else None,
                             "ours": s["mean"], "sd": s["sd"], "n_seeds": s["n_seeds"], "digits": 4})
display(Markdown(report.rows_markdown(cos_rows, {
    "model": "model", "dataset": "dataset", "paper": "paper (Omniglot, Fig. 6)",
    "ours": "ours (mean ± sd)", "n_seeds": "seeds"})))

# %% [markdown]
# Our DKM reads out its encodings almost as faithfully as GPM. The paper's 0.82 for DKM is the
# GPM authors' own DKM implementation, whose details (σ_ξ, the read noise, the number of
# training steps) we do not know; in ours, both memories hold an episode of $T = 32$ codes in
# $K = 32$ rows, where both least-squares read-outs can be nearly exact (Part I,
# {doc}`04_gpm_memory` and {doc}`06_dkm_memory`).

# %% [markdown]
# ## Ablation beyond the paper: does the ELBO depend on the spectral filter?
#
# Part I ({doc}`03_ben_cohen`) showed that seven Ben-Israel–Cohen steps with the paper's
# $\alpha = 10^{-3}$ are a spectral filter, not the pseudo-inverse, on matrices shaped like
# GPM's. Here GPM on Omniglot is trained three ways with the same seeds: the paper's α (the
# Table 1 runs), the per-matrix `alpha = "auto"` (7 steps), and the exact `torch.linalg.pinv`.

# %%
from gpm_core.artifacts import load_results

abl = report.metric_table(ABLATION, ["nll_cond", "unseen_nll_cond", "kl_w", "cosine"], profile="quick")
for row, arm in zip(abl, ["paper α = 1e-3, 7 steps", "auto α, 7 steps", "exact pinv"]):
    row["arm"] = arm
display(Markdown(report.rows_markdown(abl, {
    "arm": "pseudo-inverse", "experiment": "experiment", "nll_cond": "−ELBO (written)",
    "unseen_nll_cond": "−ELBO (not written)", "kl_w": "KL(q(W)‖p(W))", "cosine": "cosine",
    "n_seeds": "seeds"})))

# %% [markdown]
# The longer CPU runs of the Omniglot cells (seed 0), with the auto-α GPM beside the
# paper-α one, whose `xlong` run stopped (see *Stability* above):

# %%
for exp in ["table1_omniglot_gpm", "ablation_pinv_auto_alpha", "table1_omniglot_dkm"]:
    for profile in ("quick", "long", "xlong"):
        runs = report.group_runs(experiments=[exp]).get((exp, profile), [])
        s_ = report.seed_summary(runs, "nll_cond")
        if s_:
            print(f"{exp:26s} {profile:6s} {s_['steps'][0]:5d} steps: {s_['mean']:7.2f} nats/image "
                  f"({s_['n_seeds']} seed{'s' if s_['n_seeds'] > 1 else ''})")
        elif profile == "xlong":
            print(f"{exp:26s} {profile:6s} not finished")

# %% [markdown]
# The exact arm is also the noisiest: its per-episode bounds are heavy-tailed. The mean and the
# worst of the 50 test episodes, per seed, from the artifacts:

# %%
for exp in ABLATION:
    for r in sorted(load_results(exp, results_dir=report.RESULTS), key=lambda r: r["seed"]):
        if r["profile"] == "quick":
            pe = r["per_episode"]["nll_cond"]
            print(f"{exp:26s} seed {r['seed']}: mean {pe['mean']:7.1f}  worst episode {pe['max']:8.1f} nats/image")

# %% [markdown]
# Why would the exact pseudo-inverse train *worse*? Writing inverts $W_0 = Z_\xi M_0^+$, a
# $T \times K = 32 \times 32$ matrix, which is square and often ill-conditioned; the exact
# $W_0^+$ amplifies its small singular directions (and the writing noise in them) into the
# memory $M = W_0^+ Z_\xi$, while seven steps at the paper's $\alpha$ damp them
# ({doc}`03_ben_cohen`: the iteration is a spectral filter with a cut-off near
# $1/\sqrt{\alpha 2^k}$). We measure this on the trained models (seed 0 of each arm): one
# test episode written, the condition number of $W_0$ and the largest singular value of the
# memory it produces. This needs the test data (`GPM_DATA`).

# %%
from gpm_core.episodes import test_episodes

torch.manual_seed(0)
for exp in ABLATION:
    runs = [r for r in load_results(exp, results_dir=report.RESULTS) if r["profile"] == "quick" and r["seed"] == 0]
    assert runs, f"no seed-0 quick run of {exp} in results/"
    model, cfg = report.load_trained(runs[0])
    X = test_episodes(load_images(cfg.data.dataset, "test", cfg.data), cfg.data.episode_length,
                      4, cfg.eval.seed)
    with torch.no_grad():
        state = model.write(X)
    s_W0 = torch.linalg.svdvals(state["W0"].double())  # (4, min(T, K))
    s_M = torch.linalg.svdvals(state["M"].double())
    print(f"{exp:26s} cond(W0) median {(s_W0[:, 0] / s_W0[:, -1]).median().item():10.3g}   "
          f"sigma_max(M) median {s_M[:, 0].median().item():10.3g}   "
          f"sigma_max(M0) {torch.linalg.matrix_norm(model.M0.double(), 2).item():8.3g}")
