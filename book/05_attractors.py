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
# # Energy and attractor dynamics
#
# Both papers read *iteratively*: the read-out is decoded and fed back as the next query,
# and both argue that this never increases an energy, so that the iteration settles into a
# local minimum, ideally a stored pattern (GPM section 2.4 {cite}`pham2022gpm`, DKM section
# 3.5 and appendix E {cite}`wu2018dkm`). This chapter states the argument precisely, proves
# it for the memory alone (no networks), and watches it happen on random $\pm 1$ patterns,
# with a classical Hopfield network {cite}`hopfield1982` as the baseline.

# %%
import inspect

import matplotlib.pyplot as plt
import torch
from IPython.display import Code

from gpm_core import dkm, gpm
from gpm_core.artifacts import REPO
from gpm_core.config import load_config
from gpm_core.pinv import make_pinv

torch.set_num_threads(1)  # tiny matrices: extra threads only add overhead
torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(0)
paper_cfg = load_config(REPO / "configs" / "table1_omniglot_gpm.toml", "paper").model  # GPM appendix C
K, C = paper_cfg.memory_slots, paper_cfg.code_size  # memory slots and pattern dimension, 32 x 100
N_ITERS, FLIP = 20, 0.15  # 20 reads (GPM section 3.2), 15% flipped bits (both papers)
pinvs = {"exact": make_pinv("exact"), "auto": make_pinv(paper_cfg.pinv, paper_cfg.pinv_steps, "auto"),
         "paper": make_pinv(paper_cfg.pinv, paper_cfg.pinv_steps, paper_cfg.alpha_memory)}
SIGMA_XI_DKM = 0.1  # the DKM's observation noise for these +-1 codes
identity = lambda X: X  # the "encoder": patterns are their own codes


def sign(X):
    """The mode of p(x | w M) over x in {-1, +1}^C (ties, measure zero, go to +1)."""
    return torch.where(X >= 0, 1.0, -1.0)


def corrupt(Z, p):
    """Flip each entry of the +-1 patterns Z independently with probability p."""
    return torch.where(torch.rand(Z.shape, generator=gen) < p, -Z, Z)


def patterns(T):
    return sign(torch.randn(T, C, generator=gen))  # (T, C), random +-1

# %% [markdown]
# ## The energies
#
# GPM defines, for a fixed memory $M$, the energy of a pair (input $x$, weight $w$) as
#
# $$
# \mathcal{E}(x, w) = -\ln p(x \mid w, M)
# = -\ln p(x \mid M) + \|e(x) - wM\|^2 + r ,
# $$ (att-gpm-energy)
#
# (eq. 7), and the DKM as the negative of the part of its ELBO that depends on $x$ and $w$
# (eq. 14),
#
# $$
# \mathcal{E}(x, w) = -\langle \ln p(x \mid w, M)\rangle_{q(M)} + \KL\big(q(w)\,\|\,p(w)\big).
# $$ (att-dkm-energy)
#
# Without networks the code of a pattern is the pattern, $e(x) = x \in \{-1, 1\}^C$, and the
# likelihood is the Gaussian $p(x \mid w, M) \propto \exp(-\|x - wM\|^2 / 2\sigma^2)$ restricted
# to $\pm 1$ vectors. Up to constants and a positive factor the two energies become
#
# $$
# \mathcal{E}_{\mathrm{GPM}}(x, w) = \|x - wM\|^2 ,
# \qquad
# \mathcal{E}_{\mathrm{DKM}}(x, w) = \frac{\|x - wM\|^2}{2\sigma_\xi^2} + \frac12\|w\|^2 ,
# $$ (att-energies)
#
# where the DKM's KL term is $\tfrac12\|\mu_w\|^2$ plus a constant in $\sigma_w$, and its
# $q(M)$ is replaced by the mean $R$, as the paper does when reading. The package computes the
# first term per row; one step of `iterative_read` is an addressing followed by a decoding:

# %% tags=["nbval-ignore-output"]
Code(inspect.getsource(gpm.energy) + "\n" + inspect.getsource(gpm.iterative_read),
     language="python")

# %% [markdown]
# ```{prf:theorem} Iterative reading descends the energy
# :label: thm-att-descent
#
# Let $x_0 \in \{-1,1\}^C$ and, for $n \ge 0$, $w_n = \operatorname{argmin}_w \mathcal{E}(x_n, w)$
# (GPM: $w_n = x_n\pinv{M}$; DKM: eq. 6, $w_n = x_nM^\top(MM^\top + \sigma_\xi^2 I)^{-1}$) and
# $x_{n+1} = \operatorname{sign}(w_n M)$. Then for either energy in {eq}`att-energies`
#
# $$
# \mathcal{E}(x_{n+1}, w_{n+1}) \;\le\; \mathcal{E}(x_{n+1}, w_n) \;\le\; \mathcal{E}(x_n, w_n),
# $$ (att-descent)
#
# so $\mathcal{E}(x_n, w_n)$ is non-increasing and, since $x_n$ takes finitely many values,
# eventually constant.
# ```
#
# ```{prf:proof}
# The first inequality holds because $w_{n+1}$ minimizes $\mathcal{E}(x_{n+1}, \cdot)$: for
# GPM $x\pinv{M}$ is a least-squares solution of $wM = x$ ({doc}`02_least_squares`), for the
# DKM eq. 6 is the unique minimizer of the strictly convex ridge objective. For the second,
# only $\|x - wM\|^2 = C - 2\langle x, wM\rangle + \|wM\|^2$ depends on $x$, and over
# $x \in \{-1,1\}^C$ it is minimized by $x_j = \operatorname{sign}((wM)_j)$.
# ```
#
# The papers' arguments are this coordinate descent, with three assumptions left implicit,
# each of which matters in practice:
#
# 1. **The $w$-step must be the exact minimizer.** GPM's seven Ben-Cohen steps are a
#    regularized inverse ({doc}`03_ben_cohen`), so $x\,X_7(M)$ does not minimize
#    $\|x - wM\|^2$ and the first inequality can fail (we count the failures below).
# 2. **Both steps must decrease the same function.** The $w$-step minimizes the code-space
#    term $\|e(x) - wM\|^2$; the $x$-step maximizes the decoder likelihood $p(x \mid w, M)$.
#    In {eq}`att-gpm-energy` these are one function only if $-\ln p(x\mid w, M)$ equals the
#    code-space quadratic up to terms free of $w$, which needs an invertible encoder/decoder
#    pair (the DKM says so in its appendix D). With networks, descent is an approximation.
# 3. **Descent is not retrieval.** The iteration stops in *some* local minimum; it is the
#    stored pattern only if the query lies in its basin. Spurious minima exist (both papers
#    say so), and the theorem does not exclude 2-cycles at equal energy.
#
# ## GPM without networks is a projection Hopfield network
#
# Write $T \le K$ noiseless patterns $Z$ with exact pseudo-inverses. By
# {prf:ref}`thm-gpm-exact` the memory's row space is the span of the patterns, so one read is
# $x \mapsto \operatorname{sign}(x\,\pinv{Z}Z)$: the synchronous *projection rule* (pseudo-inverse)
# Hopfield network of Personnaz et al. and Kanter and Sompolinsky
# {cite}`personnaz1986,kanter1987`, whose coupling matrix $\pinv{Z}Z$ projects onto the
# patterns. Every stored pattern is a fixed point.

# %%
Z = patterns(20)
M0 = torch.randn(K, C, generator=gen)
_, M = gpm.write(Z, M0, pinvs["exact"], pinvs["exact"])
Xq = corrupt(Z, FLIP)
one_read = gpm.iterative_read(Xq, M, identity, sign, pinvs["exact"], 1).X[1]
assert torch.equal(one_read, sign(Xq @ torch.linalg.pinv(Z) @ Z))  # projection rule
assert torch.equal(gpm.iterative_read(Z, M, identity, sign, pinvs["exact"], 3).X[-1], Z)
print("one GPM read == sign(x Z^+ Z); the 20 stored patterns are fixed points")

# %% [markdown]
# ## Denoising 15% flipped bits
#
# Five episodes of $T = 20$ random patterns ($C = 100$, $K = 32$), each pattern queried with
# 15% of its bits flipped (the corruption of both papers' denoising experiments), 20 reads.
# We record the energy after every half-step ($w$-step and $x$-step) and the Hamming distance
# to the stored pattern after every read, for GPM (exact pseudo-inverses) and for the DKM's
# memory written by its own Kalman update ({doc}`06_dkm_memory`) from the same $M_0 = R_0$.

# %%
def half_step_energies(traj, energy):
    """Energies E(x_0,w_0), E(x_1,w_0), E(x_1,w_1), ... along a trajectory, (2 n_iters, T)."""
    out = []
    for n, W in enumerate(traj.W):
        out += [energy(traj.X[n], W), energy(traj.X[n + 1], W)]
    return torch.stack(out)


def run(memory, T, episodes):
    """Write `episodes` random episodes of T patterns and read 15%-corrupted queries."""
    E, H, success = [], [], []
    for _ in range(episodes):
        Z, M0 = patterns(T), torch.randn(K, C, generator=gen)
        Xq = corrupt(Z, FLIP)
        if memory == "dkm":
            R, _, _ = dkm.write(Z, M0, torch.eye(K), SIGMA_XI_DKM)
            traj = dkm.iterative_read(Xq, R, identity, sign, SIGMA_XI_DKM, N_ITERS)
            energy = lambda X, W: (gpm.energy(X, W, R) / (2 * SIGMA_XI_DKM**2)
                                   + 0.5 * W.square().sum(-1))  # eq. (att-energies), DKM
        else:
            _, M = gpm.write(Z, M0, pinvs[memory], pinvs[memory])
            traj = gpm.iterative_read(Xq, M, identity, sign, pinvs[memory], N_ITERS)
            energy = lambda X, W: gpm.energy(X, W, M)  # eq. (att-energies), GPM
        E.append(half_step_energies(traj, energy))
        H.append(torch.stack([(X != Z).sum(-1) for X in traj.X]))  # (n_iters + 1, T)
        success.append((traj.X[-1] == Z).all(-1))
    return torch.cat(E, 1), torch.cat(H, 1), torch.cat(success).double().mean().item()


def increases(E, rtol=1e-9):
    """Number of half-steps at which the energy rose (beyond rounding)."""
    return int((E[1:] > E[:-1] + rtol * E[:-1].abs().clamp_min(1.0)).sum())


runs = {m: run(m, T=20, episodes=5) for m in ("exact", "dkm")}
for m, (E, H, s) in runs.items():
    print(f"{m:5}: {H.shape[1]} trajectories, energy increases: {increases(E)},"
          f" mean Hamming distance {H[0].double().mean():.1f} -> {H[-1].double().mean():.2f},"
          f" exact recall {s:.2f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
for m, color in [("exact", "C0"), ("dkm", "C1")]:
    E, H, _ = runs[m]
    rel = (E / E[0]).clamp_min(1e-6)  # relative to the start; GPM reaches 0 (drawn at 1e-6)
    for j in range(0, E.shape[1], 5):
        axes[0].plot(torch.arange(len(E)) / 2, rel[:, j], color=color, lw=0.6, alpha=0.5)
    axes[0].plot([], [], color=color, label="GPM (exact pinv)" if m == "exact" else "DKM")
    axes[1].plot(H.double().mean(1), "o-", ms=3, color=color,
                 label="GPM (exact pinv)" if m == "exact" else "DKM")
axes[0].set_xlabel("read (half-steps: $w$ then $x$)")
axes[0].set_ylabel(r"$\mathcal{E}(x, w)\,/\,\mathcal{E}(x_0, w_0)$")
axes[0].set_yscale("log")
axes[0].legend(fontsize=8)
axes[0].set_title("Energy along 20 trajectories each (0 drawn at $10^{-6}$)", fontsize=10)
axes[1].set_xlabel("read")
axes[1].set_ylabel("mean Hamming distance to the stored pattern")
axes[1].legend(fontsize=8)
axes[1].set_title(f"T = 20, K = {K}, C = {C}, 15% flipped", fontsize=10)
plt.tight_layout()
plt.show()

# %%
for m in ("exact", "dkm"):
    assert increases(runs[m][0]) == 0  # (att-descent): non-increasing on every trajectory
assert runs["exact"][2] >= 0.95  # GPM recalls (almost) every pattern exactly

# %% [markdown]
# The energy never rises for either memory, as {prf:ref}`thm-att-descent` says. GPM cleans up
# every query within a few reads, where its energy is exactly 0 (the pattern lies in the
# memory's row space). The DKM settles almost as fast but into worse minima: its memory is
# $R_0$ plus the patterns' correction, so its rows span the patterns *and* $K - T$ random directions inherited from the prior, and each read projects
# the query onto that larger space, keeping more of the noise ({doc}`06_dkm_memory` derives
# the $(I - \pinv{W}W)R_0$ term responsible). In the papers both memories are trained, so
# $R_0$ is not random; this is the untrained, network-free picture.
#
# With the 7-step pseudo-inverses the first inequality of {eq}`att-descent` is no longer
# guaranteed. The auto $\alpha$ is accurate enough on these memories that we see no
# violation; the paper's $\alpha = 10^{-3}$ is not (the codes here have entries $\pm 1$, a
# scale at which its filter damps most of $W_0$'s spectrum, {doc}`03_ben_cohen`), and it also
# fails to recall:

# %%
for m, episodes in (("auto", 5), ("paper", 20)):
    runs[m] = run(m, T=20, episodes=episodes)
    E, H, s = runs[m]
    rise = ((E[1:] - E[:-1]) / E[:-1]).max().item()  # largest relative increase
    print(f"{m:5}: energy increases at {increases(E)} of {E[1:].numel()} half-steps"
          f" (largest relative rise {f'{rise:.0e}' if rise > 1e-12 else 'none'}), exact recall {s:.2f},"
          f" mean Hamming distance {H[0].double().mean():.1f} -> {H[-1].double().mean():.1f}")
assert increases(runs["auto"][0]) == 0 and runs["auto"][2] >= 0.95
assert increases(runs["paper"][0]) > 0 and runs["paper"][2] < 0.1

# %% [markdown]
# The violations are rare and small: the filtered inverse is still a decent minimizer of
# $\|x - wM\|^2$. The paper-$\alpha$ iteration nonetheless walks *away* from the stored
# patterns while its energy goes down, which is point 3 above: descent towards the minimum
# of a damped memory is not retrieval.

# %% [markdown]
# ## Capacity: GPM, DKM and a Hopfield network
#
# The classical Hopfield network {cite}`hopfield1982` stores patterns in Hebbian couplings
# $J = Z^\top Z / C$ (zero diagonal) and updates one unit at a time,
# $x_j \leftarrow \operatorname{sign}(\sum_i J_{ij}x_i)$, which descends
# $-\tfrac12 x J x^\top$. Its capacity for random patterns is about $0.14\,C$
# {cite}`amit1985`. It is a baseline, so we write it in the next cell (it is not part of the
# package). We measure exact recall from 15% corruption as the number of stored patterns
# grows; GPM and the DKM store them in the $32\times 100$ memory.

# %%
def hopfield_recall(Z, Xq, sweeps=N_ITERS):
    """Baseline: Hebbian Hopfield network, asynchronous updates in a random order per sweep."""
    J = Z.mT @ Z / Z.shape[1]  # (C, C) Hebbian couplings
    J.fill_diagonal_(0.0)
    X = Xq.clone()
    for _ in range(sweeps):
        for j in torch.randperm(Z.shape[1], generator=gen).tolist():
            X[:, j] = sign(X @ J[:, j])  # all T queries at once
    return X


n_patterns = [5, 10, 15, 20, 25, 30, 40]
recall = {m: [] for m in ("GPM (exact)", "GPM (auto, 7 steps)", "DKM", "Hopfield")}
for T in n_patterns:
    recall["GPM (exact)"].append(run("exact", T, episodes=6)[2])
    recall["GPM (auto, 7 steps)"].append(run("auto", T, episodes=6)[2])
    recall["DKM"].append(run("dkm", T, episodes=6)[2])
    hop = []
    for _ in range(6):
        Z = patterns(T)
        hop.append((hopfield_recall(Z, corrupt(Z, FLIP)) == Z).all(-1))
    recall["Hopfield"].append(torch.cat(hop).double().mean().item())

print(f"{'T':>22}" + "".join(f"{T:6d}" for T in n_patterns))
for m, r in recall.items():
    print(f"{m:>22}" + "".join(f"{v:6.2f}" for v in r))

fig, ax = plt.subplots(figsize=(6, 3.5))
for m, r in recall.items():
    ax.plot(n_patterns, r, "o-", ms=4, label=m)
ax.axvline(K, color="gray", lw=0.8, ls=":")
ax.annotate("$T = K$", (K + 0.5, 0.5), fontsize=9)
ax.set_xlabel("stored patterns $T$ ($C = 100$)")
ax.set_ylabel("exact recall from 15% flips")
ax.legend(fontsize=8)
plt.show()

# %%
i20, i40 = n_patterns.index(20), n_patterns.index(40)
assert min(recall["GPM (exact)"][: i20 + 1]) >= 0.95  # GPM: near-perfect up to T = 20 = 0.2 C
assert recall["Hopfield"][i20] < 0.5  # Hebbian network: past its ~0.14 C capacity
assert recall["GPM (exact)"][i40] < 0.5  # GPM: beyond T = K the memory cannot hold them all

# %% [markdown]
# GPM's memory behaves like the projection-rule network it reduces to: near-perfect recall
# well past the Hebbian capacity $0.14\,C$, degrading as $T$ approaches $K = 32$ and failing
# beyond it, where {prf:ref}`thm-gpm-exact` no longer applies ({doc}`04_gpm_memory`). The
# Hopfield network is limited by crosstalk, the memories by their $K$ slots; the DKM's
# untrained prior costs it recall at every $T$ but degrades most gently past $T = K$.
