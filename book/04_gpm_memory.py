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
# # The GPM memory: writing, reading and the error bound
#
# This chapter takes GPM's Algorithm 1 {cite}`pham2022gpm` without the networks: an episode
# of codes $Z \in \R^{T\times C}$ is written into a memory $M \in \R^{K \times C}$ and read
# back. Both operations are minimum-norm least-squares solutions ({doc}`02_least_squares`).
# We then state the paper's retrieval guarantee (Theorem 2.2 and Corollary 2.3), find that as
# printed it does not hold when the writing noise $\xi$ is nonzero, and prove and check an
# exact replacement. We use exact pseudo-inverses throughout, as the theorem does; what the
# paper's 7-step approximation changes is the subject of {doc}`03_ben_cohen`.

# %%
import inspect

import matplotlib.pyplot as plt
import torch
from IPython.display import Code

from gpm_core import gpm
from gpm_core.artifacts import REPO
from gpm_core.config import load_config
from gpm_core.pinv import make_pinv

torch.set_num_threads(1)  # tiny matrices: extra threads only add overhead
torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(0)
pinv = make_pinv("exact")  # torch.linalg.pinv: the theorem is about exact pseudo-inverses
paper_cfg = load_config(REPO / "configs" / "table1_omniglot_gpm.toml", "paper").model  # GPM appendix C
K, C = paper_cfg.memory_slots, paper_cfg.code_size  # Omniglot's memory, 32 x 100
norm2 = lambda A: float(torch.linalg.matrix_norm(A, ord=2))  # spectral norm
normF = lambda A: float(torch.linalg.matrix_norm(A))  # Frobenius norm

# %% [markdown]
# ## Writing and reading are least-squares problems
#
# Writing (Algorithm 1, lines 2–4) observes a noisy episode $Z_\xi = Z + \xi$,
# $\xi_{tc} \sim \N(0, \sigma_\xi^2)$, and solves two linear systems in the minimum-norm
# least-squares sense (Proposition D.6):
#
# $$
# W_0 = Z_\xi\, \pinv{M_0} \quad\text{solves}\quad W_0 M_0 = Z_\xi ,
# \qquad\qquad
# M = \pinv{W_0}\, Z_\xi \quad\text{solves}\quad W_0 M = Z_\xi .
# $$ (gpm-write)
#
# The second is the paper's eq. (5), $\min_M \|W_0 M - Z_\xi\|_F$. The paper motivates it from
# eq. (4), $\min_M \|W_0(M - M_0)\|_F$, by substituting the "linear assumption"
# $W_0 M_0 = Z_\xi$. Taken literally eq. (4) is solved by $M = M_0$; the substitution is
# what makes it eq. (5), and it holds only approximately: $W_0M_0 = Z_\xi\pinv{M_0}M_0$ is the
# projection of $Z_\xi$ onto the $K$-dimensional row space of $M_0$ (checked below).
#
# Reading (lines 2–4) addresses the query $Z$ with the minimum-norm solution of $WM = Z$ and
# returns $WM$ (or, to generate, samples $W \sim \N(\bar W, \sigma_w^2 I)$ first):
#
# $$
# \bar W = Z \pinv{M}, \qquad Z_{\text{read}} = \bar W M = Z\,\pinv{M}M .
# $$ (gpm-read)
#
# Since $\pinv{M}M$ is the orthogonal projector onto the row space of $M$ ({doc}`02_least_squares`),
# **a GPM read-out is the orthogonal projection of the query onto the row space of the memory.**
# The package's functions are one line each:

# %% tags=["nbval-ignore-output"]
Code("".join(inspect.getsource(f) for f in (gpm.write, gpm.address, gpm.read)), language="python")

# %%
T = 16
M0 = torch.randn(K, C, generator=gen)
Z = torch.randn(T, C, generator=gen) / C**0.5  # rows of unit norm on average
Z_xi = gpm.add_write_noise(Z, 0.1 / C**0.5, generator=gen)
W0, M = gpm.write(Z_xi, M0, pinv, pinv)  # W0 (T, K), M (K, C)
W = gpm.address(Z, M, pinv)  # (T, K)
P_M = pinv(M) @ M  # projector onto the row space of M, (C, C)
assert torch.allclose(gpm.read(W, M), Z @ P_M, atol=1e-12)  # read-out = projection (gpm-read)
rel_lin = normF(W0 @ M0 - Z_xi) / normF(Z_xi)
print(f"shapes: W0 {tuple(W0.shape)}, M {tuple(M.shape)}, W {tuple(W.shape)};"
      f" linear assumption W0 M0 = Z_xi off by {rel_lin:.2f} (relative)")
assert rel_lin > 0.5  # W0 M0 only projects Z_xi onto the K = 32 of C = 100 dimensions of M0

# %% [markdown]
# ## The paper's guarantee
#
# ```{prf:theorem} GPM Theorem 2.2, as printed
# :label: thm-gpm-paper
#
# Let $\|\cdot\|_2$ be the spectral norm. Suppose there exist $\alpha, \beta \in [0, 1)$ such
# that $\|I - Z_\xi Z_\xi^\top\|_2 \le \alpha$ and $\|I - Z_\xi \pinv{Z_\xi}\|_2 \le \beta$.
# Then $WM = Z(I + E)$, where the error matrix $E$ satisfies
#
# $$
# \|E\|_2 \le \beta + \|I - W_0\pinv{W_0}\|_2\sqrt{\frac{1 + \alpha}{1 - \alpha}} .
# $$ (gpm-paper-bound)
#
# **Corollary 2.3.** If $\rank W_0 = \rank Z_\xi = T$, then $WM = Z$.
# ```
#
# Three things are implicit in the statement and its proof (appendix E):
#
# 1. **$E$ is not unique.** $WM = Z(I + E)$ constrains only $ZE$. We make it precise as the
#    smallest such matrix, $E^\star = \pinv{Z}(WM - Z)$, the minimum-norm solution of
#    $ZE = WM - Z$ (D.6). It exists because $WM - Z = Z(\pinv{M}M - I)$ lies in the range of
#    $Z$, and every other $E$ has $\|E\|_2 \ge \|E^\star\|_2$ since
#    $E^\star = \pinv{Z}Z\,E$ and $\pinv{Z}Z$ is a projector. A bound holds for *some* $E$
#    if and only if it holds for $E^\star$.
# 2. **The hypotheses are degenerate.** $\|I - Z_\xi Z_\xi^\top\|_2 < 1$ forces
#    $Z_\xi Z_\xi^\top$ to be invertible, so $\rank Z_\xi = T$ and then
#    $Z_\xi\pinv{Z_\xi} = I_T$: $\beta = 0$ always. $\|I - W_0\pinv{W_0}\|_2$ is the norm of an
#    orthogonal projector, so it is $0$ (when $\rank W_0 = T$) or $1$. Under the hypotheses
#    the bound is therefore either $0$ or at least $1$.
# 3. **The proof uses the reverse-order law.** Its first line,
#    $WM = Z\pinv{Z_\xi}W_0\pinv{W_0}Z_\xi$, needs $(\pinv{W_0}Z_\xi)^+ = \pinv{Z_\xi}W_0$, which
#    is Proposition D.4 and requires $\pinv{W_0}$ to have independent columns **and** $Z_\xi$
#    independent rows, i.e. $\rank W_0 = \rank Z_\xi = T$ (D.4 as printed says "or", which is
#    false: {doc}`02_least_squares`). In that case the proof gives $WM = Z\pinv{Z_\xi}Z_\xi$,
#    an error $\pinv{Z_\xi}Z_\xi - I$ whose norm is $\|I - \pinv{Z_\xi}Z_\xi\|_2$, the
#    $C\times C$ projector, not the $T \times T$ one in the statement; it equals 1 unless
#    $T = C$. The proof of Corollary 2.3 makes the same swap ("$Z_\xi\pinv{Z_\xi} = I$" is used
#    where $\pinv{Z_\xi}Z_\xi = I$ is needed).
#
# Case 2 with $\rank W_0 = T$ claims $E = 0$, i.e. $WM = Z$ exactly. That is false as soon as
# $\xi \neq 0$: the memory stores the row space of the *noisy* $Z_\xi$, and projecting the
# *clean* $Z$ onto it loses the part of $Z$ outside it. The correct statement is this.
#
# ```{prf:theorem} Exact retrieval error of GPM
# :label: thm-gpm-exact
#
# With exact pseudo-inverses, let $E^\star = \pinv{Z}(WM - Z)$. Then $WM = Z(I + E^\star)$,
# $\|E^\star\|_2 \le 1$, and if $\rank W_0 = T$ (which holds generically when $T \le K$):
#
# $$
# WM - Z = \xi\,(I - \pinv{Z_\xi}Z_\xi), \qquad
# \|WM - Z\|_F \le \|\xi\|_F, \qquad
# \|E^\star\|_2 \le \|\pinv{Z}\|_2\,\|\xi\|_2 .
# $$ (gpm-exact-error)
#
# In particular (Corollary 2.3, corrected) if $\rank W_0 = T$ then reading with the written
# episode returns it exactly, $Z_\xi\pinv{M}M = Z_\xi$, and with $\xi = 0$, $WM = Z$.
# ```
#
# ```{prf:proof}
# By {eq}`gpm-read`, $WM = ZP$ with $P = \pinv{M}M$, so $WM - Z = Z(P - I)$ and
# $E^\star = \pinv{Z}Z(P - I)$, a product of two orthogonal projectors (up to sign), of norm at
# most 1. Now let $\rank W_0 = T$. Then $\pinv{W_0} \in \R^{K\times T}$ has rank $T$, i.e.
# independent columns, so $M = \pinv{W_0}Z_\xi$ has the same rank as $Z_\xi$; its rows are
# combinations of rows of $Z_\xi$, so the row spaces coincide, and so do the projectors onto
# them: $P = \pinv{Z_\xi}Z_\xi =: P_\xi$. Since $Z_\xi P_\xi = Z_\xi$,
# $WM - Z = (Z_\xi - \xi)P_\xi - Z = Z_\xi - \xi P_\xi - Z = \xi(I - P_\xi)$. The two bounds
# follow from $\|I - P_\xi\|_2 \le 1$ and $E^\star = \pinv{Z}\xi(I - P_\xi)$. The same
# computation with $Z_\xi$ in place of $Z$ gives $Z_\xi P_\xi - Z_\xi = 0$.
# ```
#
# Nothing here needs $\alpha$, and the retrieval error is controlled by the noise itself:
# GPM retrieves $Z$ up to the component of $\xi$ that is orthogonal to the written row space.
# If $\|I - ZZ^\top\|_2 \le \alpha_Z < 1$, Rump's lemma {cite}`rump2011` (the one the paper's
# proof uses) gives $\|\pinv{Z}\|_2 \le 1/\sqrt{1 - \alpha_Z}$, so
# $\|E^\star\|_2 \le \|\xi\|_2/\sqrt{1-\alpha_Z}$, the paper's shape of bound with the noise in
# the numerator.
#
# ## Checking both bounds
#
# We sample 150 episodes with $T \in \{4, 8, 16, 24, 32\}$, $K = 32$, $C = 100$, codes with
# rows of norm about 1 (so that $\alpha < 1$ is possible for small $T$) and noise levels
# $\sigma_\xi\sqrt{C} \in \{0, 0.01, 0.03, 0.1, 0.3\}$, and compute $\|E^\star\|_2$, our bound
# $\|\pinv{Z}\|_2\|\xi\|_2$ and the printed bound {eq}`gpm-paper-bound` (where its hypotheses
# hold).

# %%
def printed_bound(Z_xi, W0):
    """The right side of (gpm-paper-bound) and whether alpha < 1; beta as printed."""
    T = Z_xi.shape[0]
    alpha = norm2(torch.eye(T) - Z_xi @ Z_xi.mT)
    beta = norm2(torch.eye(T) - Z_xi @ pinv(Z_xi))
    e_w0 = norm2(torch.eye(T) - W0 @ pinv(W0))
    ok = alpha < 1 and beta < 1
    return (beta + e_w0 * ((1 + alpha) / (1 - alpha)) ** 0.5 if ok else float("nan")), ok


samples = []
eye_C = torch.eye(C)
for rep in range(6):
    for T in (4, 8, 16, 24, 32):
        for noise in (0.0, 0.01, 0.03, 0.1, 0.3):
            M0 = torch.randn(K, C, generator=gen)
            Z = torch.randn(T, C, generator=gen) / C**0.5
            Z_xi = gpm.add_write_noise(Z, noise / C**0.5, generator=gen)
            W0, M = gpm.write(Z_xi, M0, pinv, pinv)
            WM = gpm.read(gpm.address(Z, M, pinv), M)
            Z_pinv = pinv(Z)
            E = Z_pinv @ (WM - Z)  # the smallest error matrix
            assert torch.allclose(Z @ (eye_C + E), WM, atol=1e-10)
            xi = Z_xi - Z
            paper, hyp = printed_bound(Z_xi, W0)
            identity = WM - Z - xi @ (eye_C - pinv(Z_xi) @ Z_xi)  # eq. (gpm-exact-error)
            samples.append(dict(T=T, noise=noise, E=norm2(E), ours=norm2(Z_pinv) * norm2(xi),
                                paper=paper, hyp=hyp, rank_w0=int(torch.linalg.matrix_rank(W0)),
                                err_F=normF(WM - Z), xi_F=normF(xi), identity=normF(identity)))
print(f"{len(samples)} episodes; rank W0 = T in all: {all(s['rank_w0'] == s['T'] for s in samples)};"
      f" hypotheses alpha, beta < 1 hold in {sum(s['hyp'] for s in samples)}")

# %%
assert all(s["rank_w0"] == s["T"] for s in samples)
assert max(s["identity"] for s in samples) < 1e-10  # WM - Z = xi (I - P_xi), eq. (gpm-exact-error)
assert all(s["err_F"] <= s["xi_F"] * (1 + 1e-9) + 1e-12 for s in samples)
assert all(s["E"] <= s["ours"] * (1 + 1e-9) + 1e-12 for s in samples)  # our bound: always
violated = [s for s in samples if s["hyp"] and s["noise"] > 0 and s["E"] > s["paper"]]
under_hyp_noisy = [s for s in samples if s["hyp"] and s["noise"] > 0]
print(f"printed bound (gpm-paper-bound) violated in {len(violated)} of {len(under_hyp_noisy)}"
      f" noisy episodes that satisfy its hypotheses; its value there is at most"
      f" {'1e-12' if max(s['paper'] for s in under_hyp_noisy) < 1e-12 else 'larger'},"
      f" while |E*|_2 is at least {min(s['E'] for s in under_hyp_noisy):.3f}")
assert len(violated) == len(under_hyp_noisy) > 0
assert all(s["E"] < 1e-10 for s in samples if s["noise"] == 0)  # Corollary 2.3 with xi = 0

# %%
fig, ax = plt.subplots(figsize=(5.5, 4.5))
noisy = [s for s in samples if s["noise"] > 0]
ax.loglog([s["ours"] for s in noisy], [s["E"] for s in noisy], "o", ms=3, alpha=0.6,
          label=r"our bound $\|Z^+\|_2\|\xi\|_2$")
ax.loglog([max(s["paper"], 1e-4) for s in under_hyp_noisy], [s["E"] for s in under_hyp_noisy],
          "x", ms=4, color="C3", label="printed bound (gpm-paper-bound) (0, drawn at 1e-4)")
lim = [1e-4, 3]
ax.loglog(lim, lim, "k-", lw=0.8)
ax.set_xlim(lim)
ax.set_ylim(1e-3, 3)
ax.set_xlabel("bound")
ax.set_ylabel(r"actual $\|E^\star\|_2$")
ax.set_title("Error bounds against the actual error (diagonal: equality)", fontsize=10)
ax.legend(fontsize=8, loc="lower right")
plt.show()

# %% [markdown]
# Every episode lies under the diagonal for our bound, and every noisy episode that satisfies
# the printed hypotheses lies far above the printed bound, whose value there is zero up to
# rounding. The paper's experiments write with $\sigma_\xi = 0.5$ (appendix C), so the noisy
# case is the one that matters.
#
# Corollary 2.3 in its corrected form, on one episode: the written $Z_\xi$ comes back exactly,
# the clean $Z$ comes back up to $\xi(I - P_\xi)$, and without noise $Z$ comes back exactly.

# %%
T = 24
M0 = torch.randn(K, C, generator=gen)
Z = torch.randn(T, C, generator=gen)
Z_xi = gpm.add_write_noise(Z, paper_cfg.sigma_xi, generator=gen)  # the paper's sigma_xi, 0.5
_, M = gpm.write(Z_xi, M0, pinv, pinv)
back_noisy = gpm.read(gpm.address(Z_xi, M, pinv), M)
back_clean = gpm.read(gpm.address(Z, M, pinv), M)
_, M_0 = gpm.write(Z, M0, pinv, pinv)  # written without noise
back_exact = gpm.read(gpm.address(Z, M_0, pinv), M_0)
rel = lambda A, B: normF(A - B) / normF(B)
print(f"read Z_xi after writing Z_xi: {'< 1e-10' if rel(back_noisy, Z_xi) < 1e-10 else 'ERROR'};"
      f" read Z after writing Z_xi: {rel(back_clean, Z):.3f} (|xi|_F/|Z|_F = {rel(Z_xi, Z):.3f});"
      f" read Z after writing Z: {'< 1e-10' if rel(back_exact, Z) < 1e-10 else 'ERROR'}")
assert rel(back_noisy, Z_xi) < 1e-10 and rel(back_exact, Z) < 1e-10
assert 0 < rel(back_clean, Z) <= rel(Z_xi, Z)

# %% [markdown]
# ## Beyond $T = K$: a preview of capacity
#
# When the episode is longer than the memory has slots, $\rank W_0 \le K < T$ and
# {prf:ref}`thm-gpm-exact` no longer gives exact retrieval: $WM$ has rank at most $K$, so by
# the Eckart–Young theorem {cite}`golub2013` $\|WM - Z\|_F \ge \|Z - Z_{(K)}\|_F$, the error of
# the best rank-$K$ approximation of $Z$. We write noiseless random episodes of growing length
# into the $32 \times 100$ memory and read them back:

# %%
lengths = [4, 8, 16, 24, 32, 40, 48, 64, 80, 100, 128, 160, 200, 300, 400]
err, best = [], []
for T in lengths:
    e_T, b_T = [], []
    for rep in range(4):
        M0 = torch.randn(K, C, generator=gen)
        Z = torch.randn(T, C, generator=gen)
        _, M = gpm.write(Z, M0, pinv, pinv)
        e_T.append(rel(gpm.read(gpm.address(Z, M, pinv), M), Z))
        S = torch.linalg.svdvals(Z)
        b_T.append(float(S[K:].square().sum().sqrt() / S.square().sum().sqrt()))  # Eckart-Young
        assert e_T[-1] >= b_T[-1] - 1e-12
    err.append(sum(e_T) / 4)
    best.append(sum(b_T) / 4)

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.semilogx(lengths, err, "o-", label="GPM write-then-read (exact pinv)")
ax.semilogx(lengths, best, "s--", label="best rank-$K$ approximation (Eckart–Young)")
ax.axvline(K, color="gray", lw=0.8, ls=":")
ax.axvline(C, color="gray", lw=0.8, ls=":")
ax.annotate("$T = K$", (K * 1.05, 0.7), fontsize=9)
ax.annotate("$T = C$", (C * 1.05, 0.7), fontsize=9)
ax.set_xlabel("episode length $T$")
ax.set_ylabel(r"$\|WM - Z\|_F / \|Z\|_F$")
ax.legend(fontsize=8)
ax.set_title(f"Retrieval error, K = {K}, C = {C}, no noise (mean of 4 episodes)", fontsize=10)
plt.show()
print("T:     ", " ".join(f"{T:5d}" for T in lengths))
print("error: ", " ".join(f"{e:5.2f}" for e in err))

# %%
assert max(e for T, e in zip(lengths, err) if T <= K) < 1e-10  # perfect up to T = K
assert all(b > a for a, b in zip(err[4:], err[5:]))  # then grows with every longer episode
assert err[-1] < (1 - K / C) ** 0.5  # ... staying below the random-subspace level sqrt(1 - K/C)

# %% [markdown]
# The error is zero up to $T = K$ and then grows, quickly up to $T = C$ and slowly after.
# Past $T = C$ the episode spans all of $\R^C$ and the memory keeps only a $K$-dimensional
# row space of it; the error creeps towards $\sqrt{1 - K/C} = 0.82$, the fraction of a random
# code that lies outside a fixed $K$-dimensional subspace, because for long random episodes
# $Z^\top Z \approx T I$ and the row space of $M$ tends to that of $M_0$. The slow growth past
# $T = C$ is the linear-algebra side of the paper's observation (section 3.4) that the
# reconstruction loss "seems to be stable even when we double the episode length". Trained
# codes are far from random, which is what lets a trained GPM do better than this.
