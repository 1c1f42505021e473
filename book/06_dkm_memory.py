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
# # The Dynamic Kanerva Machine's memory
#
# The DKM {cite}`wu2018dkm`, like the Kanerva Machine before it {cite}`wu2018km`, treats the
# memory as a random matrix with a Gaussian prior, writes by exact Bayesian conditioning and
# reads by regularized least squares. This chapter derives the three operations, checks each
# against a dense computation, and makes precise the sense in which GPM is the DKM's
# noiseless limit (GPM section 2.2.1 {cite}`pham2022gpm`): for addressing exactly, for
# writing only up to a term that keeps the prior.
#
# We use GPM's row convention throughout: a code is a row $z \in \R^{1\times C}$, read as
# $z = wM$ with $w \in \R^{1\times K}$. The DKM paper writes columns, $z = M^\top w$.

# %%
import inspect

import matplotlib.pyplot as plt
import torch
from IPython.display import Code

from gpm_core import dkm

torch.set_num_threads(1)  # tiny matrices: extra threads only add overhead
torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(0)
randn = lambda *shape: torch.randn(*shape, generator=gen)
close = lambda A, B, tol=1e-10: torch.allclose(A, B, atol=tol, rtol=tol)
K, C, T, sigma_xi = 5, 4, 3, 0.3  # small enough to build every dense covariance

# %% [markdown]
# ## The matrix-normal prior
#
# ```{prf:definition} Matrix normal memory
# :label: def-dkm-mn
#
# $M \sim \MN(R, U, I_C)$ with mean $R \in \R^{K\times C}$ and row covariance
# $U \in \R^{K\times K}$ means $\vec M \sim \N(\vec R,\; I_C \otimes U)$ for the column-stacking
# $\vec$ {cite}`gupta1999`: the $C$ columns $m_1, \dots, m_C$ of $M$ are independent,
# $m_c \sim \N(R_{:,c},\, U)$, and share one covariance.
# ```
#
# The DKM's prior is $\MN(R_0, U_0, I_C)$ with learned $R_0$ and $U_0 = \sigma_U^2 I$
# (appendix B). The KL divergence between two such memories (the last term of the DKM's ELBO,
# eq. 4) reduces to $K\times K$ quantities:
#
# $$
# \KL\big(\MN(R, U, I)\,\|\,\MN(R_0, U_0, I)\big) = \tfrac12\Big[C\tr(U_0^{-1}U)
# + \tr\big((R - R_0)^\top U_0^{-1}(R - R_0)\big) - KC + C\ln\tfrac{\det U_0}{\det U}\Big].
# $$ (dkm-kl)

# %% tags=["nbval-ignore-output"]
Code(inspect.getsource(dkm.kl_memory), language="python")

# %%
def spd(n):
    """A random symmetric positive definite n x n matrix."""
    A = randn(n, n)
    return A @ A.mT / n + 0.5 * torch.eye(n)


def vec(X):
    return X.mT.reshape(-1)  # column stacking


R0, U0, R1, U1 = randn(K, C), spd(K), randn(K, C), spd(K)
dense = lambda R, U: torch.distributions.MultivariateNormal(vec(R), torch.kron(torch.eye(C), U))
kl_dense = torch.distributions.kl_divergence(dense(R1, U1), dense(R0, U0))
kl_mn = dkm.kl_memory(R1, U1, R0, U0)
assert close(kl_mn, kl_dense)
print(f"KL(MN(R1,U1,I) || MN(R0,U0,I)) = {float(kl_mn):.4f} = dense KL of the {K * C}-dim Gaussians")

# %% [markdown]
# ## Writing is Kalman filtering
#
# The DKM observes a code $z = wM + \xi$, $\xi \sim \N(0, \sigma_\xi^2 I_C)$. Column by column,
# $z_c = w\,m_c + \xi_c$ is one scalar linear observation of the $K$-vector $m_c$, with the
# same $w$ for every column. That is a Kalman filter {cite}`kalman1960` whose state $m_c$
# never moves, and it is why the posterior stays matrix normal: every column gets the same
# gain and the same covariance.
#
# ```{prf:theorem} The DKM memory update (DKM appendix A, eqs. 16–20)
# :label: thm-dkm-update
#
# If $M \sim \MN(R, U, I_C)$ and $z = wM + \xi$, then $M \mid z \sim \MN(R', U', I_C)$ with
#
# $$
# \Delta = z - wR, \quad \Sigma_c = Uw^\top, \quad \Sigma_z = wUw^\top + \sigma_\xi^2, \quad
# R' = R + \Sigma_c\Sigma_z^{-1}\Delta, \quad U' = U - \Sigma_c\Sigma_z^{-1}\Sigma_c^\top .
# $$ (dkm-update)
#
# For $T$ codes $Z = WM + \Xi$ at once (GPM appendix H with $\Sigma_\xi = \sigma_\xi^2 I$):
#
# $$
# S = WUW^\top + \sigma_\xi^2 I_T, \qquad
# R' = R + UW^\top S^{-1}(Z - WR), \qquad U' = U - UW^\top S^{-1}WU ,
# $$ (dkm-update-batch)
#
# and $T$ sequential updates {eq}`dkm-update` with the rows of $W$ give the same posterior,
# in any order.
# ```
#
# ```{prf:proof}
# For one column, $(m_c, z_c)$ is jointly Gaussian with $\operatorname{Cov}(m_c, z_c) = Uw^\top$
# and $\operatorname{Var}(z_c) = wUw^\top + \sigma_\xi^2$, so the conditional of $m_c$ has mean
# $R_{:,c} + Uw^\top(z_c - wR_{:,c})/\Sigma_z$ and covariance
# $U - Uw^\top wU/\Sigma_z$ {cite}`bishop2006`. The covariance does not depend on $c$ and the
# columns stay independent (their observations are), so stacking the columns gives
# {eq}`dkm-update`. The batch formula is the same computation with $T$ observations per
# column. Conditioning on all observations at once or one at a time gives the same conditional
# distribution, whatever the order, because each is the exact posterior.
# ```
#
# The package implements both forms:

# %% tags=["nbval-ignore-output"]
Code(inspect.getsource(dkm.update) + "\n" + inspect.getsource(dkm.update_batch), language="python")

# %% [markdown]
# We check {prf:ref}`thm-dkm-update` three ways: against dense conditioning of the
# $KC$-dimensional Gaussian $\vec M$ on $\vec Z = (I_C \otimes W)\vec M + \vec \Xi$; batch
# against sequential; and sequential in two orders.

# %%
W, Z = randn(T, K), randn(T, C)
R_b, U_b = dkm.update_batch(R0, U0, Z, W, sigma_xi)

# dense Gaussian conditioning of vec M (K C = 20 dimensions) on vec Z (T C = 12 observations)
P0 = torch.kron(torch.eye(C), U0)  # prior covariance of vec M
H = torch.kron(torch.eye(C), W)  # vec Z = H vec M + noise
S = H @ P0 @ H.mT + sigma_xi**2 * torch.eye(T * C)
gain = P0 @ H.mT @ torch.linalg.inv(S)
mean_dense = vec(R0) + gain @ (vec(Z) - H @ vec(R0))
cov_dense = P0 - gain @ H @ P0
assert close(vec(R_b), mean_dense) and close(torch.kron(torch.eye(C), U_b), cov_dense)

# T sequential Kalman updates, in the given and in the reversed order
def sequential(order):
    R, U = R0, U0
    for t in order:
        R, U = dkm.update(R, U, Z[t], W[t], sigma_xi)
    return R, U


for order in (range(T), reversed(range(T))):
    R_s, U_s = sequential(order)
    assert close(R_s, R_b) and close(U_s, U_b)
print("posterior: batch == dense conditioning == sequential (both orders)")

# %% [markdown]
# The exchangeability holds for *given* weights. In the DKM's write (its Algorithm 1) each
# weight is computed from the memory as it stands when the code arrives, so the weights, and
# with them the posterior, depend on the order; the paper notes this (section 3.3) and relies
# on training to keep it small.

# %%
R_fwd, U_fwd, _ = dkm.write(Z, R0, U0, sigma_xi)
R_rev, U_rev, _ = dkm.write(Z.flip(0), R0, U0, sigma_xi)
order_gap = float(torch.linalg.matrix_norm(R_fwd - R_rev) / torch.linalg.matrix_norm(R_fwd))
print(f"dkm.write forward vs reversed: relative difference of the posterior means {order_gap:.3f}")
assert order_gap > 1e-3

# %% [markdown]
# ## Reading is regularized least squares
#
# The weight that minimizes $\KL(q(w)\,\|\,p(w\mid z, M))$ (DKM eq. 5 and appendix D), which is
# also the MAP weight used for prediction (eq. 13), solves
#
# $$
# \mu_w = \operatorname*{argmin}_w \frac{\|z - wM\|^2}{\sigma_\xi^2} + \|w\|^2
# = zM^\top(MM^\top + \sigma_\xi^2 I_K)^{-1} ,
# $$ (dkm-address)
#
# the ridge (Tikhonov) solution with parameter $\sigma_\xi^2$, computed with $M = R$.
#
# ```{admonition} Two misprints in the papers' versions of this formula
# :class: note
#
# The DKM prints eq. 6 as $\mu_w = (MM^\top + \sigma_\xi^2 I)^{-1}M^\top d(x)$: with $M$ of size
# $K\times C$ and $z = M^\top w$ the consistent form is $(MM^\top + \sigma_\xi^2 I)^{-1}M\,e(x)$
# (the encoder, and $M$, not $M^\top$). GPM's eq. 6 writes the penalty as $\sigma_\xi^2\|W\|_F^2$
# but its solution with $\sigma_\xi I$; {eq}`dkm-address` has $\sigma_\xi^2$ in both.
# `dkm.address` implements {eq}`dkm-address`.
# ```

# %% tags=["nbval-ignore-output"]
Code(inspect.getsource(dkm.address), language="python")

# %%
M = randn(K, C)
mu = dkm.address(Z, M, sigma_xi)  # (T, K)
# reference: ordinary least squares on the augmented system [M^T; sigma I] w^T = [z^T; 0]
A_aug = torch.cat([M.mT, sigma_xi * torch.eye(K)])  # (C + K, K)
b_aug = torch.cat([Z.mT, torch.zeros(K, T)])  # (C + K, T)
assert close(mu, torch.linalg.lstsq(A_aug, b_aug).solution.mT)
print("dkm.address == least squares on [M^T; sigma_xi I] w = [z; 0]")

# %% [markdown]
# ## The noiseless limit: where DKM becomes GPM
#
# **Addressing.** By GPM's Theorem D.5 ({doc}`02_least_squares`, with $\sigma = \sigma_\xi^2$),
# $\mu_w(\sigma_\xi) \to z\pinv{M}$ as $\sigma_\xi \to 0$, which is GPM's reading weight. The
# rate is explicit in the SVD: each singular value $s_i$ of $M$ is inverted as
# $s_i/(s_i^2 + \sigma_\xi^2)$ instead of $1/s_i$, an error of $\sigma_\xi^2/(s_i(s_i^2+\sigma_\xi^2))$,
# so the distance falls like $\sigma_\xi^2$. We take a memory and an episode of the paper's
# Omniglot shape ($K = 32$, $C = 100$, $T = 16$), and a rank-deficient memory (rank 16) to
# show that the limit needs no rank assumption:

# %%
Kb, Cb, Tb = 32, 100, 16
Zb = randn(Tb, Cb)
memories = {"M full row rank": randn(Kb, Cb),
            "M of rank 16": randn(Kb, 16) @ randn(16, Cb) / 4}
sigmas = torch.logspace(-4, 1, 26)
dist = {}
for name, Mb in memories.items():
    W_gpm = Zb @ torch.linalg.pinv(Mb)  # GPM's reading weight
    dist[name] = torch.tensor([float(torch.linalg.matrix_norm(dkm.address(Zb, Mb, float(s)) - W_gpm)
                                     / torch.linalg.matrix_norm(W_gpm)) for s in sigmas])

fig, ax = plt.subplots(figsize=(5.5, 3.5))
for name, d in dist.items():
    ax.loglog(sigmas, d, "o-", ms=3, label=name)
ax.loglog(sigmas[:12], 0.5 * dist["M full row rank"][11] * (sigmas[:12] / sigmas[11]) ** 2,
          "k:", lw=1, label=r"slope 2 ($\propto\sigma_\xi^2$)")
ax.set_xlabel(r"$\sigma_\xi$")
ax.set_ylabel(r"$\|\mu_w(\sigma_\xi) - ZM^+\|_F \,/\, \|ZM^+\|_F$")
ax.legend(fontsize=8)
ax.set_title("DKM addressing tends to GPM addressing", fontsize=10)
plt.show()

# %% [markdown]
# Both distances fall like $\sigma_\xi^2$. The rank-deficient curve turns back up below
# $\sigma_\xi \approx 10^{-3}$: there $MM^\top + \sigma_\xi^2 I$ has condition number about
# $s_1^2/\sigma_\xi^2$ and the rounding error of the solve grows as $\sigma_\xi$ shrinks, the
# floating-point effect we met with Theorem D.5 in {doc}`02_least_squares`. At
# $\sigma_\xi = 0$ exactly, `dkm.address` returns $Z\pinv{M}$ for a memory of full row rank;
# for the rank-deficient one $MM^\top$ is singular, yet rounding leaves it numerically positive
# definite, so (on our machine) the Cholesky solve returns huge garbage rather than the NaN
# that the function's docstring promises; either way the result is unusable (checked below).

# %%
for name, d in dist.items():
    ok = sigmas >= (1e-4 if name == "M full row rank" else 1e-3)  # above the rounding floor
    assert all(d[ok][1:] >= d[ok][:-1])  # monotone in sigma_xi ...
    assert d.min() < 1e-6  # ... and -> 0 (to below 1e-6)
d = dist["M full row rank"]
slope = float((d[10].log() - d[0].log()) / (sigmas[10].log() - sigmas[0].log()))
print(f"log-log slope for sigma_xi in [1e-4, 1e-2]: {slope:.2f}")
assert abs(slope - 2) < 0.05
assert close(dkm.address(Zb, memories["M full row rank"], 0.0),
             Zb @ torch.linalg.pinv(memories["M full row rank"]), tol=1e-8)  # sigma = 0 exactly
W_zero = dkm.address(Zb, memories["M of rank 16"], 0.0)  # singular M M^T
bad = torch.isnan(W_zero).any() or torch.linalg.matrix_norm(W_zero) > 1e3 * torch.linalg.matrix_norm(
    Zb @ torch.linalg.pinv(memories["M of rank 16"]))
print(f"rank-deficient M at sigma_xi = 0: result unusable (NaN or > 1000 x |Z M^+|): {bool(bad)}")
assert bad

# %% [markdown]
# **Writing.** The DKM's batch update {eq}`dkm-update-batch` with $U_0 = I$ and a weight matrix
# $W$ of full row rank ($T \le K$) has, as $\sigma_\xi \to 0$, the limit (Theorem D.5 again, now
# applied to $W$)
#
# $$
# R' \to R_0 + \pinv{W}(Z - WR_0) = \underbrace{\pinv{W}Z}_{\text{GPM's } M}
# + \underbrace{(I - \pinv{W}W)\,R_0}_{\text{the prior, kept}},
# \qquad U' \to I - \pinv{W}W .
# $$ (dkm-limit-write)
#
# Both solve $WM = Z$ exactly; GPM's $M = \pinv{W_0}Z_\xi$ is the solution of minimum norm,
# the DKM's the one closest to the prior $R_0$ (the solution of GPM's eq. 3, which GPM
# deliberately replaces). So the two memories coincide in the noiseless limit only if
# $(I - \pinv{W}W)R_0 = 0$, i.e. the columns of $R_0$ lie in the span of the written weights:
# only where the prior has nothing left to
# say. The posterior covariance loses exactly the $T$ directions that were written to:
# $I - \pinv{W}W$ is a projector of rank $K - T$. It collapses to zero, as the DKM's
# appendix A remarks for $\sigma_\xi^2 \to 0$, only once $T \ge K$ independent weights have
# been written.

# %%
Wb = randn(Tb, Kb)  # full row rank, T = 16 <= K = 32
R0b = randn(Kb, Cb)
Pw = torch.linalg.pinv(Wb) @ Wb  # projector onto the row space of W
R_lim, U_lim = dkm.update_batch(R0b, torch.eye(Kb), Zb, Wb, 1e-6)
assert close(R_lim, torch.linalg.pinv(Wb) @ Zb + (torch.eye(Kb) - Pw) @ R0b, tol=1e-6)
assert close(U_lim, torch.eye(Kb) - Pw, tol=1e-6)
gap = float(torch.linalg.matrix_norm(R_lim - torch.linalg.pinv(Wb) @ Zb) / torch.linalg.matrix_norm(R_lim))
rank_U = int(torch.linalg.matrix_rank(U_lim, atol=1e-6))
print(f"sigma_xi = 1e-6: R' = W^+ Z + (I - W^+ W) R0 (relative gap to GPM's W^+ Z: {gap:.2f});"
      f" rank U' = {rank_U} = K - T")
assert rank_U == Kb - Tb and gap > 0.5

# %% [markdown]
# ## Summary
#
# - The DKM memory is a matrix-normal random matrix; writing a code is a Kalman update of its
#   columns with a shared gain ({prf:ref}`thm-dkm-update`), exact and order-independent for
#   given weights, order-dependent once the weights are computed from the memory.
# - Reading is ridge regression with parameter $\sigma_\xi^2$; as $\sigma_\xi \to 0$ it
#   becomes GPM's $Z\pinv{M}$, with an error of order $\sigma_\xi^2$.
# - In the same limit the DKM's write keeps $(I - \pinv{W}W)R_0$, the part of the prior that
#   no weight addressed; GPM's minimum-norm write drops it. That is the precise content of
#   "GPM and DKM coincide in the noiseless setting": for reading, yes; for writing, only up to
#   the prior. Chapter {doc}`05_attractors` shows what the kept prior costs an untrained DKM.
