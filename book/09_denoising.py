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
# `python -m gpm_core denoise` from the trained Table 1 runs of {doc}`07_table1`: the GPM and
# DKM rows with the authors' networks (`table1_omniglot_gpm_authors`,
# `table1_omniglot_dkm_resnet`): GPM of the `cpu_alpha_cap` recipe (the best GPM row of
# Table 1) beside DKM of the `cpu` profile, the same networks and budget. `RETRAIN = True`
# re-runs that analysis (not the training).

# %%
RETRAIN = False
PROFILE = "cpu_alpha_cap"  # the analysis profile (configs/table2_denoise.toml): GPM cpu_alpha_cap + DKM cpu, seeds 0-2
PROFILE_BEFORE = "cpu"  # the same with GPM's alpha of W0+ at the authors' 5e-4 (GPM cpu + DKM cpu)
PROFILE_LONG = "cpu_long_alpha"  # GPM cpu_long_alpha + DKM cpu_long (32,000 steps, seed 0)
PROFILE_ROTATION = "cpu_alpha_cap_rotation_range"  # PROFILE's models, rotation angle drawn from [-30, 30]
# the same models and queries, each read decoded as the authors' code does (Bernoulli mean >= 0.1)
DECODE_PROFILES = {PROFILE: "cpu_alpha_cap_authors_decode", PROFILE_LONG: "cpu_long_alpha_authors_decode"}
PROFILE_ROTATION_DECODE = "cpu_alpha_cap_rotation_range_authors_decode"  # both readings at once
SEEDS = [0, 1, 2]

# %%
import subprocess
import sys

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown, display
from myst_nb import glue

from gpm_core import report
from gpm_core.artifacts import REPO
from gpm_core.config import model_profile_label
from gpm_core.report import denoise, paper_numbers

torch.set_num_threads(1)
COMMAND = "python -m gpm_core denoise configs/table2_denoise.toml --profile {profile} --seed {seed} --threads 1"
if RETRAIN:
    for profile, seeds in ((PROFILE, SEEDS), (PROFILE_BEFORE, SEEDS), (PROFILE_ROTATION, SEEDS), (PROFILE_LONG, [0]),
                           (DECODE_PROFILES[PROFILE], SEEDS), (DECODE_PROFILES[PROFILE_LONG], [0]),
                           (PROFILE_ROTATION_DECODE, SEEDS)):
        for seed in seeds:
            subprocess.run([sys.executable, *COMMAND.format(profile=profile, seed=seed).split()[1:]], cwd=REPO)

runs = denoise.load_denoise("table2_denoise_omniglot", PROFILE)
runs_long = denoise.load_denoise("table2_denoise_omniglot", PROFILE_LONG)
runs_before = denoise.load_denoise("table2_denoise_omniglot", PROFILE_BEFORE)
runs_rotation = denoise.load_denoise("table2_denoise_omniglot", PROFILE_ROTATION)
runs_mnist = denoise.load_denoise("denoise_mnist", PROFILE)
runs_mnist_long = denoise.load_denoise("denoise_mnist", PROFILE_LONG)
runs_decode = {p: denoise.load_denoise("table2_denoise_omniglot", q) for p, q in DECODE_PROFILES.items()}
runs_rotation_decode = denoise.load_denoise("table2_denoise_omniglot", PROFILE_ROTATION_DECODE)
assert runs, f"no results/table2_denoise_omniglot/{PROFILE}-seed*.json: run the analysis (RETRAIN = True)"
cfg = runs[0]["config"]
T0_ALL = min(cfg["T"])
missing = [s for s in SEEDS if s not in denoise.seeds_of(runs)]
print(f"profile {PROFILE}: seeds analysed {denoise.seeds_of(runs)}; not yet analysed (models not trained yet): "
      f"{missing or 'none'}")
print(f"profile {PROFILE_LONG}: seeds analysed {denoise.seeds_of(runs_long) or 'none (pending)'}")
for s in missing:
    print("  to add seed", s, "once its models exist:", COMMAND.format(profile=PROFILE, seed=s))
if not runs_long:
    print("  pending:", COMMAND.format(profile=PROFILE_LONG, seed=0))

# %% [markdown]
# ## The protocol
#
# `gpm_core.analyses.denoise` implements it, with every choice the papers leave open in
# `configs/table2_denoise.toml` and recorded in each artifact:

# %% tags=["hide-input"]
for name, value in {
    "models": ", ".join(cfg["models"]), "model_profile": model_profile_label(cfg["model_profile"]),
    "seeds": ", ".join(str(s) for s in denoise.seeds_of(runs)),
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
#   random, nearest-neighbour; Gaussian noise (Fig. 7d, not in Table 2) adds
#   $\mathcal N(0, \sigma^2)$ to every pixel and clips to $[0, 1]$.
# - **Reading:** {glue:text}`iterations` steps of iterative reading (`model.iterative_read`:
#   address with the mean weights, read, decode, take the mode of the Bernoulli likelihood,
#   feed it back).
# - **Success:** a Hamming error of at most {glue:text}`success_threshold` of the
#   {glue:text}`image_pixels` pixels ({glue:text}`success_fraction:.0%`) after the last step.
# - **Baselines** on the same queries: an *all-blank* answer (it succeeds on the test images
#   with at most that many ink pixels) and *no read* (the corrupted query returned unchanged);
#   and the *clean query*: the written image itself read the same way, the most a model can
#   reach.

# %% [markdown]
# ## Table 2, ours beside the paper's
#
# Success rate (%) after the last read, mean ± sd over the seeds of the trained models, the
# paper's value and the gap (ours − paper); then the two baselines and GPM's success when the
# query is the clean image.

# %%
T2COLS = {k: k for k in denoise.table2_long_rows(runs)[0]}
for rs, profile in ((runs, PROFILE), (runs_long, PROFILE_LONG), (runs_before, PROFILE_BEFORE)):
    if not rs:
        display(Markdown(f"**Profile `{profile}`: pending** (its models are not all trained yet): "
                         f"`{COMMAND.format(profile=profile, seed=0)}`."))
        continue
    steps = sorted(set(denoise.model_steps(rs[0]).values()))
    display(Markdown(f"**Profile `{profile}`** (models {model_profile_label(rs[0]['config']['model_profile'])}, "
                     f"trained {' / '.join(f'{s:,}' for s in steps)} steps; seeds "
                     f"{', '.join(map(str, denoise.seeds_of(rs)))}; command `{rs[0]['command']}`):"))
    display(Markdown(report.rows_markdown(denoise.table2_long_rows(rs), T2COLS)))
display(Markdown(f"Paper values: {paper_numbers.TABLE2_SOURCE}."))

# %% [markdown]
# The targets for this table: GPM succeeds on at least 20 % of the queries at $T = 4$ for every
# corruption, its success falls as $T$ grows, as in the paper, and GPM is above DKM in every cell.

# %%
targets = denoise.table2_targets(runs)
display(Markdown(report.rows_markdown([t | {"met": "yes" if t["met"] else "**no**"} for t in targets],
                                      {"target": "target", "corruption": "corruption", "T": "T",
                                       "value": "ours (mean over seeds)", "met": "met"})))
missed = [f"{t['target']} for {t['corruption']} ({t['value']})" for t in targets if not t["met"]]
glue("missed_targets", "; ".join(missed) or "none", display=False)
glue("n_targets", len(targets), display=False)
glue("n_met", sum(t["met"] for t in targets), display=False)
cells = denoise.table2_cells(runs)
# the claims of the next paragraph, checked on the artifacts
assert all(t["met"] for t in targets if t["target"] in ("GPM above DKM", "GPM falls with T"))
assert all(abs(c["dkm"]["mean"] - c["blank"]) < 3.0 for c in cells)  # DKM: about an all-blank answer
assert all(c["no_read"] is not None and c["gpm"]["mean"] > c["no_read"] for c in cells)

# %% [markdown]
# {glue:text}`n_met` of the {glue:text}`n_targets` checks hold. GPM is above DKM in every cell
# and its success falls with $T$ for every corruption, as in the paper; returning the query
# unread ("no read") never comes close. DKM, on the other hand, succeeds about as often as an
# all-blank answer would, in every cell, where the paper has it at a few per cent; its reads
# are not blank (their ink is in the next table) but blurred (the ceiling below).
# Targets missed: {glue:text}`missed_targets`.

# %% [markdown]
# ### A better Table 1 bound is not a better denoiser
#
# The two GPM profiles differ only in the α of the writing pseudo-inverse $W_0^+$
# ({doc}`07_table1`): `cpu` keeps the authors' {glue:text}`alpha_before`, `cpu_alpha_cap`
# raises it to {glue:text}`alpha_after` (capped per matrix). Their Table 1 bounds and their
# Table 2 success at $T$ = {glue:text}`T0_ALL`:

# %%
gpm_exp = cfg["models"][0]
assert runs_before, f"no results/table2_denoise_omniglot/{PROFILE_BEFORE}-seed*.json: run the analysis (RETRAIN = True)"
glue("T0_ALL", T0_ALL, display=False)
before_after = []
for tag, rs in (("before", runs_before), ("after", runs), ("long", runs_long)):
    mp = {s["experiment"]: s["profile"] for s in rs[0]["sources"]}[gpm_exp]
    gpm_runs = report.group_runs(experiments=[gpm_exp]).get((gpm_exp, mp), [])
    mantissa, exponent = f"{gpm_runs[0]['config']['model']['alpha_weight']:.0e}".split("e")
    glue(f"alpha_{tag}", f"{mantissa} · 10{str(int(exponent)).translate(str.maketrans('-0123456789', '⁻⁰¹²³⁴⁵⁶⁷⁸⁹'))}",
         display=False)
    nll = report.seed_summary(gpm_runs, "nll_cond")
    t4 = {c["kind"]: c["gpm"]["mean"] for c in denoise.table2_cells(rs) if c["T"] == T0_ALL}
    before_after.append({"GPM profile": mp, "Table 1 bound (nats/image)": report.fmt_mean_sd(nll["mean"], nll["sd"]),
                         "seeds": nll["n_seeds"], **{f"{k} (T = {T0_ALL})": f"{v:.1f} %" for k, v in t4.items()},
                         "_nll": nll["mean"], "_sd": nll["sd"], "_t4": t4})
display(Markdown(report.rows_markdown(before_after, {k: k for k in before_after[0] if not k.startswith("_")})))
b0, b1, b2 = before_after
for tag, row in (("before", b0), ("after", b1), ("long", b2)):
    glue(f"nll_{tag}", row["_nll"], display=False)
    glue(f"sp_{tag}", row["_t4"]["salt_pepper"], display=False)
    glue(f"rot_{tag}", row["_t4"]["rotation"], display=False)
# the sentence below: the bound improves by far more than the seed spread, the success does not rise
assert b0["_nll"] - b1["_nll"] > 5 * (b0["_sd"] + b1["_sd"]) and all(b1["_t4"][k] <= b0["_t4"][k] for k in b0["_t4"])
glue("block_after", b1["_t4"]["block"], display=False)
glue("block_long", b2["_t4"]["block"], display=False)
# the long run: a better bound again, and salt-and-pepper success falls again
assert b2["_nll"] < b1["_nll"] - 2 and b2["_t4"]["salt_pepper"] < b1["_t4"]["salt_pepper"] - 5

# %% [markdown]
# The bound falls from {glue:text}`nll_before:.1f` to {glue:text}`nll_after:.1f` nats/image,
# yet the success does not rise with it (salt-and-pepper {glue:text}`sp_before:.1f` % →
# {glue:text}`sp_after:.1f` %, rotation {glue:text}`rot_before:.1f` % →
# {glue:text}`rot_after:.1f` %): the bound scores the first read of clean written images
# averaged over $q(W)$; denoising is {glue:text}`iterations` mean-weight reads from a query that was never
# written, where the attractors, not the likelihood of a stored image, decide. Training the
# capped recipe four times as long (`cpu_long_alpha`, seed 0) repeats the pattern: the bound
# falls again, to {glue:text}`nll_long:.1f`, while salt-and-pepper success falls to
# {glue:text}`sp_long:.1f` %; rotation moves to {glue:text}`rot_long:.1f` % and the block from
# {glue:text}`block_after:.1f` % to {glue:text}`block_long:.1f` %. The paper reports both
# tables from one model, so none of our profiles is "the" paper model; we show the recipe with
# the better bound among the three-seed profiles first. The section on the decode rule below
# measures why the salt-and-pepper success falls: the better-trained decoders drop more of
# the uncertain strokes when a read takes the mode.

# %% [markdown]
# ### Rotation: an exact angle, or one drawn from a range?
#
# Rotation is the corruption where our GPM is furthest below the paper, at every $T$ (the table above). Table 2
# says only "rotation (30°)"; our protocol turns every query by exactly +30° or −30°. The same
# paper's Fig. 7c draws the angle uniformly from [−45°, 45°], and torchvision's
# `RandomRotation(30)`, the usual way to rotate images in PyTorch, draws it from [−30°, 30°].
# Read that way, Table 2's column turns most queries by less than 30°. Profile
# `cpu_alpha_cap_rotation_range` scores that reading on the same models and episodes:

# %%
if runs_rotation:
    rrows = denoise.table2_long_rows(runs_rotation)
    display(Markdown(f"**Profile `{PROFILE_ROTATION}`** (seeds {', '.join(map(str, denoise.seeds_of(runs_rotation)))}; "
                     f"command `{runs_rotation[0]['command']}`):\n\n" + report.rows_markdown(rrows, T2COLS)))
    drawn = {c["T"]: c["gpm"]["mean"] for c in denoise.table2_cells(runs_rotation)}
    exact = {c["T"]: c["gpm"]["mean"] for c in cells if c["kind"] == "rotation"}
    paper_rot = dict(zip(paper_numbers.TABLE2_T, paper_numbers.TABLE2[("gpm", "rotation_30")]))
    pct = lambda d, digits=1: ", ".join(f"{d[T]:.{digits}f} %" for T in cfg["T"])
    glue("rot_drawn", pct(drawn), display=False)
    glue("rot_exact", pct(exact), display=False)
    glue("rot_paper", pct(paper_rot, 2), display=False)
    glue("rot_gap_max", max(paper_rot[T] - drawn[T] for T in cfg["T"]), display=False)
    # the sweep of the figures below: GPM's success at the shortest T for each fixed angle
    rot_rows = [x for r in runs for x in r["grid"] if x["T"] == T0_ALL and x["kind"] == "rotation"]
    by_angle = {lv: sum(x[gpm_exp]["success_rate"][-1] for x in rot_rows if x["level"] == lv)
                / sum(x["level"] == lv for x in rot_rows) for lv in {x["level"] for x in rot_rows}}
    glue("rot_15", by_angle[15], display=False)
    glue("rot_30", by_angle[30], display=False)
    # the paragraph below: rotation is the largest gap at every T; the drawn angle is easier at
    # every T, meets the T = 4 target, and closes most of the gap; 15 degrees is restored far more often than 30
    gaps = {(c["kind"], c["T"]): c["gpm"]["mean"] - c["gpm"]["paper"] for c in cells}
    assert all(min(gaps, key=lambda k: gaps[k] if k[1] == T else 1e9)[0] == "rotation" for T in cfg["T"])
    assert all(drawn[T] > exact[T] and drawn[T] - exact[T] > paper_rot[T] - drawn[T] for T in cfg["T"])
    assert drawn[T0_ALL] >= 20 and by_angle[15] > 3 * by_angle[30]
else:
    print(f"pending: {COMMAND.format(profile=PROFILE_ROTATION, seed=0)}")
    for key in ("rot_drawn", "rot_exact", "rot_paper", "rot_gap_max", "rot_15", "rot_30"):
        glue(key, "(pending)", display=False)

# %% [markdown]
# With the angle drawn from [−30°, 30°], GPM's success at $T$ = {glue:text}`T` is
# {glue:text}`rot_drawn`, against {glue:text}`rot_exact` with the exact angle and the paper's
# {glue:text}`rot_paper`. Most of the rotation gap is the reading of "30°", not the model: the
# drawn angle closes more of it than is left (at most {glue:text}`rot_gap_max:.1f` points
# remain). The sweep of the figures below says why: at $T$ = {glue:text}`T0_ALL`, GPM restores
# {glue:text}`rot_15:.1f` % of the characters turned by exactly 15° and
# {glue:text}`rot_30:.1f` % of those turned by 30°. We keep the exact angle as the base
# protocol (it is what "rotation (30°)" says) and show both.

# %% [markdown]
# ### Where GPM misses: what it returns for the corrupted queries
#
# The next table says what the reads look like at $T = 4$ (mean over seeds): ink pixels of the
# clean images and of the states after one and after the last read, the Hamming errors of the
# query and of the last read, and the success of an all-blank read-out beside ours.

# %%
T0 = min(cfg["T"])
drows = denoise.diagnosis_rows(runs, T0)
display(Markdown(report.rows_markdown(drows, {k: k for k in drows[0]})))
glue("T0", T0, display=False)
rot = next(r for r in drows if "gpm" in r["model"] and r["corruption"].startswith("rotation"))
glue("rot_ink_last", float(rot["ink after last read"]), display=False)
glue("rot_ink_clean", float(rot["clean ink"]), display=False)
gpm_t0 = {c["kind"]: c["gpm"]["mean"] for c in cells if c["T"] == T0}
assert min(gpm_t0, key=gpm_t0.get) == "rotation"  # the hardest corruption for our GPM, in the prose below
assert float(rot["ink after last read"]) < 0.5 * float(rot["clean ink"])

# %% [markdown]
# Rotation is the corruption our GPM handles worst. For the rotated queries at $T$ =
# {glue:text}`T0` its last read holds {glue:text}`rot_ink_last:.1f` ink pixels on average
# against {glue:text}`rot_ink_clean:.1f` in the clean images: the dynamics rarely turn the
# character back; most reads lose the character altogether. {numref}`fig-table2-queries`
# shows the queries and the reads of the first seed's models (the same $T$; success is 7
# wrong pixels or fewer):

# %% mystnb={"figure": {"caption": "What the models return for Table 2 queries at the shortest $T$: one row per corruption, GPM left, DKM right; in each panel one query per line: the clean pattern, the corrupted query, then every second iterative read (seed 0 models).", "name": "fig-table2-queries"}}
run0 = next(r for r in runs if r["seed"] == min(denoise.seeds_of(runs)))
denoise.fig_examples(run0, which="table2_examples")
plt.show()

# %%
ex_rows, blank_misses = [], {}
for kind, entry in run0["table2_examples"].items():
    for exp, label in denoise.model_labels(run0).items():
        final = [h[-1] for h in entry[exp]["hamming"]]
        ink = denoise.unpack(entry[exp]["X"])[-1].flatten(1).sum(1)  # ink pixels of each last read
        miss = [i for i, h in enumerate(final) if h > run0["success_threshold"]]
        blank_misses.setdefault(label, []).extend(bool(ink[i] == 0) for i in miss)
        ex_rows.append({"model": label, "corruption": f"{kind} {entry['level']}", "T": entry["T"],
                        "Hamming error of each query, last read": ", ".join(map(str, final)),
                        "successes": f"{len(final) - len(miss)} of {len(final)}",
                        "misses whose last read is empty": f"{sum(ink[i] == 0 for i in miss)} of {len(miss)}"})
display(Markdown(report.rows_markdown(ex_rows, {k: k for k in ex_rows[0]})))
glue("gpm_blank_misses", sum(blank_misses["GPM"]), display=False)
glue("gpm_misses", len(blank_misses["GPM"]), display=False)
glue("dkm_blank_misses", sum(blank_misses["DKM"]), display=False)
assert sum(blank_misses["GPM"]) > len(blank_misses["GPM"]) / 2 and sum(blank_misses["DKM"]) == 0

# %% [markdown]
# In these examples, {glue:text}`gpm_blank_misses` of GPM's {glue:text}`gpm_misses` misses
# end on an empty image, and {glue:text}`dkm_blank_misses` of DKM's: when GPM fails, it mostly
# returns nothing, not a wrong character; DKM returns blurred strokes, in the block case with
# much of the block kept.

# %% [markdown]
# ### Why the misses are empty: the decode rule
#
# Each read ends by turning the decoder's Bernoulli means into an image. The paper's text
# takes the mode of $p(x \mid w, M)$, a pixel on where its mean exceeds 0.5; that is our base
# protocol. The authors' released code does not: its `denoise` switches on every pixel whose
# mean is at least 0.1, at every read. Profiles {glue:text}`decode_profiles` score the same
# models on the same queries with that rule (`decode_threshold = 0.1` in
# `configs/table2_denoise.toml`). GPM at $T$ = {glue:text}`T0`, mean over the seeds of each
# profile; ink is the mean number of pixels on after the last read, against
# {glue:text}`clean_ink_T0:.1f` in the clean images:

# %%
assert all(runs_decode.values()), f"pending: {COMMAND.format(profile=DECODE_PROFILES[PROFILE], seed=0)}"
dec_rows, dec = [], {}
for base, rs_mode in ((PROFILE, runs), (PROFILE_LONG, runs_long)):
    for rule, rs in (("mode", rs_mode), ("mean ≥ 0.1", runs_decode[base])):
        succ = {c["kind"]: c["gpm"]["mean"] for c in denoise.table2_cells(rs) if c["T"] == T0}
        ink = {r["corruption"].split()[0]: float(r["ink after last read"])
               for r in denoise.diagnosis_rows(rs, T0) if r["model"] == gpm_exp}
        clean_q = next(c["gpm"]["clean_read"] for c in denoise.table2_cells(rs) if c["T"] == T0)
        dec[(base, rule)] = {"success": succ, "ink": ink, "clean": clean_q}
        dec_rows.append({"models": base, "decode": rule, "seeds": len(rs),
                         **{f"{k.replace('_', ' ')}: success %": succ[k] for k in succ},
                         **{f"{k.replace('_', ' ')}: ink": ink[k] for k in ink},
                         "clean query: success %": clean_q})
display(Markdown(report.rows_markdown(dec_rows, {k: k for k in dec_rows[0]})))
glue("decode_profiles", ", ".join(f"`{q}`" for q in DECODE_PROFILES.values()), display=False)
glue("clean_ink_T0", float(denoise.diagnosis_rows(runs, T0)[0]["clean ink"]), display=False)
m, t = dec[(PROFILE, "mode")], dec[(PROFILE, "mean ≥ 0.1")]
ml, tl = dec[(PROFILE_LONG, "mode")], dec[(PROFILE_LONG, "mean ≥ 0.1")]
for tag, d_ in (("m", m), ("t", t), ("ml", ml), ("tl", tl)):
    for k in ("salt_pepper", "block", "rotation"):
        glue(f"dec_{tag}_{k}", d_["success"][k], display=False)
        glue(f"dec_{tag}_{k}_ink", d_["ink"][k], display=False)
    glue(f"dec_{tag}_clean", d_["clean"], display=False)
# the claims below: under the mode the salt-and-pepper and rotation reads lose most of the
# character and the threshold keeps it; it more than doubles those successes on both model
# sets, lowers the block's and the clean query's; and the better-bound long model no longer
# does worse on salt and pepper than the capped one
clean_ink = float(denoise.diagnosis_rows(runs, T0)[0]["clean ink"])
for a, b in ((m, t), (ml, tl)):
    assert a["ink"]["salt_pepper"] < 0.5 * clean_ink < b["ink"]["salt_pepper"]
    assert b["success"]["salt_pepper"] > 2 * a["success"]["salt_pepper"] and b["success"]["rotation"] > 2 * a["success"]["rotation"]
    assert b["success"]["block"] < a["success"]["block"] and b["clean"] < a["clean"]
assert ml["success"]["salt_pepper"] < m["success"]["salt_pepper"] - 5 and tl["success"]["salt_pepper"] >= t["success"]["salt_pepper"] - 5

# %% [markdown]
# Under the mode, GPM's reads of salt-and-pepper queries end with {glue:text}`dec_m_salt_pepper_ink:.1f`
# ink pixels (`cpu_alpha_cap`) and {glue:text}`dec_ml_salt_pepper_ink:.1f` (`cpu_long_alpha`)
# where the clean characters have {glue:text}`clean_ink_T0:.1f`: the decoder's means on the
# strokes fall below 0.5 for a query it was never given, and each read of a thinner image
# thins it further, down to the empty reads of the examples above. At the authors' threshold
# the strokes stay ({glue:text}`dec_t_salt_pepper_ink:.1f` and
# {glue:text}`dec_tl_salt_pepper_ink:.1f` pixels), and the salt-and-pepper success rises from
# {glue:text}`dec_m_salt_pepper:.1f` % to {glue:text}`dec_t_salt_pepper:.1f` % (`cpu_alpha_cap`)
# and from {glue:text}`dec_ml_salt_pepper:.1f` % to {glue:text}`dec_tl_salt_pepper:.1f` %
# (`cpu_long_alpha`); rotation from {glue:text}`dec_m_rotation:.1f` % to
# {glue:text}`dec_t_rotation:.1f` % and from {glue:text}`dec_ml_rotation:.1f` % to
# {glue:text}`dec_tl_rotation:.1f` %. The threshold has a price: it keeps pixels the mode would
# drop, so the block's remnants survive more often (block {glue:text}`dec_m_block:.1f` % →
# {glue:text}`dec_t_block:.1f` %) and a clean query comes back within 7 pixels less often
# ({glue:text}`dec_m_clean:.1f` % → {glue:text}`dec_t_clean:.1f` %).
#
# This also answers the puzzle of the section on the Table 1 bound: with the mode, the
# longer-trained model restores fewer salt-and-pepper queries, because its decoder drops more
# of the uncertain strokes; with the threshold the two models are level. The full table under
# the authors' rule, with DKM read the same way:

# %%
for base, rs in runs_decode.items():
    display(Markdown(f"**Profile `{rs[0]['profile']}`** (the models of `{base}`, seeds "
                     f"{', '.join(map(str, denoise.seeds_of(rs)))}; command `{rs[0]['command']}`):\n\n"
                     + report.rows_markdown(denoise.table2_long_rows(rs), T2COLS)))
dtargets = denoise.table2_targets(runs_decode[PROFILE])
glue("dec_n_met", sum(x["met"] for x in dtargets), display=False)
glue("dec_n_targets", len(dtargets), display=False)
glue("dec_missed", "; ".join(f"{x['target']} for {x['corruption']} ({x['value']})" for x in dtargets if not x["met"])
     or "none", display=False)
dkm_fill = max(float(r["ink after last read"]) for r in denoise.diagnosis_rows(runs_decode[PROFILE], T0) if r["model"] != gpm_exp)
glue("dkm_fill", dkm_fill, display=False)
assert dkm_fill > 2 * clean_ink and all(c["dkm"]["mean"] < 2 for c in denoise.table2_cells(runs_decode[PROFILE]))
# the paragraph below, at the shortest T: salt and pepper above the paper, the block within 10
# points of it, rotation the largest gap
dcells = {c["kind"]: c["gpm"] for c in denoise.table2_cells(runs_decode[PROFILE]) if c["T"] == T0}
assert dcells["salt_pepper"]["gap"] > 0 and abs(dcells["block"]["gap"]) < 10
assert min(dcells, key=lambda k: dcells[k]["gap"]) == "rotation"

# %% [markdown]
# Under the authors' rule {glue:text}`dec_n_met` of the {glue:text}`dec_n_targets` checks of
# the targets hold for `cpu_alpha_cap` (missed: {glue:text}`dec_missed`). At $T$ = 4 GPM's
# salt-and-pepper success is above the paper's and its block success near it; rotation stays
# the largest gap. DKM cannot be read this way: its decoder spreads its means over many more
# pixels, and the threshold fills its reads (up to {glue:text}`dkm_fill:.1f` ink pixels), so
# its Table 2 row keeps the mode. Which rule the paper's Table 2 used is not stated; the
# released code suggests the threshold for GPM.

# %% [markdown]
# The rotation column is the one neither rule brings near the paper. With both readings of
# it combined (the angle drawn from [−30°, 30°], profile {glue:text}`rot_decode_profile`),
# GPM's rotation success per $T$ is, beside the other three combinations (`cpu_alpha_cap`
# models, mean over seeds):

# %%
assert runs_rotation_decode, f"pending: {COMMAND.format(profile=PROFILE_ROTATION_DECODE, seed=0)}"
rot_combo = {}
for label, rs in (("exactly ±30°, mode", runs), ("drawn from [−30°, 30°], mode", runs_rotation),
                  ("exactly ±30°, mean ≥ 0.1", runs_decode[PROFILE]),
                  ("drawn from [−30°, 30°], mean ≥ 0.1", runs_rotation_decode)):
    rot_combo[label] = {c["T"]: c["gpm"]["mean"] for c in denoise.table2_cells(rs) if c["kind"] == "rotation"}
rot_combo["paper"] = dict(zip(paper_numbers.TABLE2_T, paper_numbers.TABLE2[("gpm", "rotation_30")]))
rc_rows = [{"rotation, decode": k, **{f"T = {T}": v[T] for T in cfg["T"]}} for k, v in rot_combo.items()]
display(Markdown(report.rows_markdown(rc_rows, {k: k for k in rc_rows[0]})))
glue("rot_decode_profile", f"`{PROFILE_ROTATION_DECODE}`", display=False)
both = rot_combo["drawn from [−30°, 30°], mean ≥ 0.1"]
glue("rot_both", ", ".join(f"{both[T]:.1f} %" for T in cfg["T"]), display=False)
glue("rot_paper_all", ", ".join(f"{rot_combo['paper'][T]:.1f} %" for T in cfg["T"]), display=False)
range_mode = rot_combo["drawn from [−30°, 30°], mode"]
glue("rot_range_mode", ", ".join(f"{range_mode[T]:.1f} %" for T in cfg["T"]), display=False)
# the sentence below: of the four readings, the drawn angle with the mode is the closest to the
# paper at every T, and still below it
ours = {k: v for k, v in rot_combo.items() if k != "paper"}
assert all(min(ours, key=lambda k: abs(ours[k][T] - rot_combo["paper"][T])) == "drawn from [−30°, 30°], mode"
           and range_mode[T] < rot_combo["paper"][T] for T in cfg["T"])

# %% [markdown]
# With both readings GPM's rotation success is {glue:text}`rot_both` for $T$ = 4, 8, 16,
# against the paper's {glue:text}`rot_paper_all`: the threshold adds nothing once the angle is
# drawn from the range. Of the four readings, the drawn angle read with the mode comes closest
# at every $T$ ({glue:text}`rot_range_mode`) and stays below the paper, most at $T = 16$. So
# the rotation column is mostly the reading of "30°", and what remains is a gap of the model.

# %% [markdown]
# ### The ceiling: reading the clean images
#
# Iterative reading from the clean image itself (no corruption) measures how well each memory
# returns what it holds. It bounds every cell of Table 2.

# %%
crows = denoise.clean_read_rows(runs)
display(Markdown(report.rows_markdown(crows, {k: k for k in crows[0]})))
clean = {(r["model"], r["T"]): float(r["success, last read (%)"]) for r in crows}
glue("gpm_clean_T0", clean[("GPM", T0)], display=False)
glue("dkm_clean_T0", clean[("DKM", T0)], display=False)
assert all(clean[("GPM", T)] > clean[("DKM", T)] for T in cfg["T"])

# %% [markdown]
# From the clean image, GPM's reads end within 7 pixels in {glue:text}`gpm_clean_T0:.1f` % of
# the cases at $T$ = {glue:text}`T0`, DKM's in {glue:text}`dkm_clean_T0:.1f` %: DKM's
# read-outs are blurred enough that, even without a corruption, it often fails the 1 % test,
# and with one it essentially never passes it.

# %% [markdown]
# ## Figures 2 and 8: Hamming error per iteration
#
# Mean Hamming error over all queries (then over seeds) against the iteration; iteration 0 is
# the corrupted query. Solid lines GPM, dashed DKM; one colour per noise level; the fourth
# panel is the Gaussian noise of Fig. 7d, which Figs. 2 and 8 do not have. Figure 2 of the
# paper is $T = 16$ ({numref}`fig-hamming-16`); Figure 8 adds $T = 4$ and $8$
# ({numref}`fig-hamming-4-8`).

# %% mystnb={"figure": {"caption": "GPM Fig. 2, ours: Hamming error against iterative reads for episodes of $T = 16$ Omniglot test images, one panel per corruption, one colour per level; solid GPM, dashed DKM (mean over queries and the seeds of the models).", "name": "fig-hamming-16"}}
denoise.fig_hamming(runs, max(cfg["T"]))
plt.show()

# %% mystnb={"figure": {"caption": "GPM Fig. 8, ours: the same for the shorter episodes (one row per $T$).", "name": "fig-hamming-4-8"}}
denoise.fig_hamming(runs, sorted(cfg["T"])[:-1])
plt.show()

# %%
grid = [row for r in runs for row in r["grid"]]
gpm_exp, dkm_exp = cfg["models"]
sp = [row for row in grid if row["T"] == T0 and row["kind"] == "salt_pepper" and row["level"] == cfg["table2_levels"]["salt_pepper"]]
glue("sp_first", sum(r[gpm_exp]["success_rate"][1] for r in sp) / len(sp), display=False)
glue("sp_last", sum(r[gpm_exp]["success_rate"][-1] for r in sp) / len(sp), display=False)
# the claims below, for every T, corruption and level of the sweep
assert all(row[gpm_exp]["hamming_mean"][-1] < row["query_hamming_mean"] for row in grid)
closer = [row[gpm_exp]["hamming_mean"][-1] < row[dkm_exp]["hamming_mean"][-1] for row in grid]
glue("n_closer", sum(closer), display=False)
glue("n_cells", len(closer), display=False)
exceptions = [row for row, c in zip(grid, closer) if not c]
# the paragraph below: the exceptions are the heavy pixel noises, and in each of them GPM's
# success is still above DKM's
assert sum(closer) >= 0.9 * len(closer)
assert all(row["kind"] in ("salt_pepper", "gaussian") and (row["kind"] == "gaussian" or row["level"] >= 0.15)
           for row in exceptions)
assert all(row[gpm_exp]["success_rate"][-1] > row[dkm_exp]["success_rate"][-1] for row in exceptions)
glue("sp_level", f"{cfg['table2_levels']['salt_pepper']:.0%}", display=False)
sp_cell = next(c for c in cells if c["T"] == T0 and c["kind"] == "salt_pepper")
glue("sp_gpm_success", sp_cell["gpm"]["mean"], display=False)
glue("sp_dkm_success", sp_cell["dkm"]["mean"], display=False)
assert sp_cell["gpm"]["mean"] > 10 * max(sp_cell["dkm"]["mean"], 1.0)
for r, row in ((r, row) for r in runs for row in r["grid"]):
    if row[gpm_exp]["hamming_mean"][-1] >= row[dkm_exp]["hamming_mean"][-1]:
        print(f"DKM's last read is as close or closer: seed {r['seed']}, T = {row['T']}, {row['kind']} "
              f"{row['level']}: GPM {row[gpm_exp]['hamming_mean'][-1]:.1f}, DKM {row[dkm_exp]['hamming_mean'][-1]:.1f} pixels")
assert all(row[gpm_exp]["success_rate"][-1] >= row[gpm_exp]["success_rate"][1] for row in sp)
assert all(row[gpm_exp]["hamming_mean"][1] < row["query_hamming_mean"] for row in grid)

# %% [markdown]
# In {numref}`fig-hamming-16` and {numref}`fig-hamming-4-8` GPM's first read lowers the error
# of every query set, and its later reads improve on it: at $T$ =
# {glue:text}`T0` with 15 % salt-and-pepper noise, GPM's success is
# {glue:text}`sp_first:.1f` % after one read and {glue:text}`sp_last:.1f` % after the last, so
# the attractor dynamics, not one read, do the denoising. For every $T$, corruption and level,
# GPM's last read is closer to the clean image than the query. It is closer than DKM's last
# read in {glue:text}`n_closer` of the {glue:text}`n_cells` (seed, $T$, corruption, level)
# cells. The exceptions, printed above, are salt-and-pepper noise of {glue:text}`sp_level` and
# more and Gaussian noise. In each of them GPM still succeeds more often than DKM: its misses
# are far from the clean image (often empty reads, as the examples above show), while DKM's
# reads are blurred, so the *mean* error can favour DKM while the *success* does not (at $T$ =
# {glue:text}`T0` with {glue:text}`sp_level` salt-and-pepper, {glue:text}`sp_gpm_success:.1f` %
# for GPM against {glue:text}`sp_dkm_success:.1f` % for DKM).
#
# ## Beyond the paper: the same protocol on MNIST
#
# The same analysis on binarized MNIST, with the MNIST models of the same recipe, is not in
# either paper; its numbers have no paper counterpart.

# %%
for rs, profile in ((runs_mnist, PROFILE), (runs_mnist_long, PROFILE_LONG)):
    if rs:
        mrows = denoise.table2_rows(rs)
        display(Markdown(f"**Profile `{profile}`** (models {model_profile_label(rs[0]['config']['model_profile'])}, "
                         f"seeds {', '.join(map(str, denoise.seeds_of(rs)))}):\n\n"
                         + report.rows_markdown(mrows, {k: k for k in mrows[0]})))
    else:
        print(f"pending: the MNIST models of profile {profile} (configs/table1_mnist_gpm_authors.toml, "
              f"configs/table1_mnist_dkm_resnet.toml) are not all trained yet; then: "
              f"python -m gpm_core denoise configs/denoise_mnist.toml --profile {profile} --seed 0 --threads 1")

# %% [markdown]
# ## What differs from the paper, and why
#
# 1. **Training.** The paper's models are trained for 10,000–15,000 iterations (GPM §3.1; of
#    32 episodes each in the authors' code); ours for the steps listed above, of 8 episodes
#    ({doc}`07_table1` compares the training lengths and the bounds).
# 2. **DKM.** The paper's DKM numbers are the GPM authors' implementation; ours has the GPM
#    rows' networks and the same training budget. Its reads are blurred (the ceiling above),
#    which a 1 % Hamming criterion punishes.
# 3. **Data.** Our Omniglot split is rebuilt from Lake et al.'s images (see {doc}`07_table1`).
# 4. **What the paper leaves open**, and we chose (in `configs/table2_denoise.toml`): the
#    training episode length of the denoising models, the block's fill value and position, the
#    rotation's sign and interpolation, whether salt-and-pepper flips an exact or an expected
#    fraction of the pixels, whether Gaussian noise is clipped, and whether GPM writes the test
#    episode with its writing noise.
# 5. **Rotation.** "Rotation (30°)" is read as exactly ±30° in the base protocol; drawn from
#    [−30°, 30°] (as Fig. 7c draws its angles from a range) our GPM closes most of the gap to
#    the paper's column (the rotation section above). The paper does not say which it meant.
# 6. **The decode rule.** Our reads take the mode, as the paper's text says; the authors' code
#    thresholds the means at 0.1, which at least doubles GPM's salt-and-pepper and rotation
#    success (the decode-rule section above).
#
# The earlier artifacts of this analysis on the paper's networks (profiles `quick`, `long`,
# `xlong`, whose reads were blank) stay in `results/` as a record and are no longer shown.
