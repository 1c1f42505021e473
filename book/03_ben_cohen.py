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
# # The Ben-Israel–Cohen iteration
#
# GPM never takes an SVD. Every pseudo-inverse in its Algorithm 1 is replaced by a few steps
# of an iteration due to Ben-Israel and Cohen {cite}`benisrael1966` (GPM's Theorem 2.1 and
# appendix G {cite}`pham2022gpm`):
#
# $$
# X_0 = \alpha A^\top, \qquad X_{k+1} = 2X_k - X_k A X_k ,
# $$ (bc-iter)
#
# which is Newton's method for the inverse, the Newton–Schulz iteration {cite}`schulz1933`,
# started from a scaled transpose. The paper runs $k = 7$ steps with $\alpha = 10^{-3}$ on
# Omniglot (and $10^{-4}$, $5\cdot 10^{-5}$ on the real-valued datasets; appendix C). This
# chapter derives the closed form of $X_k$, which shows at once why and how fast it converges,
# and what seven steps compute when they have *not* converged: a spectral filter, close to
# Tikhonov regularization, rather than the pseudo-inverse.

# %%
import inspect

import matplotlib.pyplot as plt
import torch
from IPython.display import Code

from gpm_core import gpm
from gpm_core.artifacts import REPO
from gpm_core.config import load_config
from gpm_core.pinv import (auto_alpha, ben_cohen_filter, ben_cohen_pinv, make_pinv,
                           penrose_residual)

torch.set_num_threads(1)  # tiny matrices: extra threads only add overhead
torch.set_default_dtype(torch.float64)  # float32 appears only where we study rounding
gen = torch.Generator().manual_seed(0)
paper_cfg = load_config(REPO / "configs" / "table1_omniglot_gpm.toml", "paper")  # GPM appendix C
K, C = paper_cfg.model.memory_slots, paper_cfg.model.code_size  # Omniglot's memory, 32 x 100
T = paper_cfg.data.episode_length  # and episode length, 32
sigma_xi = paper_cfg.model.sigma_xi  # GPM's writing noise, 0.5
ALPHA_PAPER, STEPS_PAPER = paper_cfg.model.alpha_memory, paper_cfg.model.pinv_steps  # 1e-3, 7

# %% [markdown]
# The package's implementation: a batched loop of `steps` fused products, with either a fixed
# $\alpha$ (the paper) or a per-matrix $\alpha$ (`alpha="auto"`, discussed below).

# %% tags=["nbval-ignore-output"]
Code(inspect.getsource(ben_cohen_pinv), language="python")

# %% [markdown]
# ## The closed form: a filter on each singular value
#
# ```{prf:theorem} Closed form of the Ben-Cohen iterates
# :label: thm-bc-closed-form
#
# Let $A = U\Sigma V^\top$ be an SVD with singular values $\sigma_i$. The iterates
# {eq}`bc-iter` are $X_k = V f_k(\Sigma)^\top U^\top$, where $f_k$ acts on each singular value
# ($f_k(0) = 0$) as
#
# $$
# f_k(\sigma) = \frac{1 - (1 - \alpha\sigma^2)^{2^k}}{\sigma},
# \qquad\text{equivalently}\qquad
# r_k(\sigma) := 1 - \sigma f_k(\sigma) = (1 - \alpha\sigma^2)^{2^k} .
# $$ (bc-filter)
#
# Consequently $X_k \to \pinv{A}$ for every $A$ if and only if $0 < \alpha < 2/\sigma_1^2$,
# the error is $\|X_k - \pinv{A}\|_2 = \max_{\sigma_i > 0} |r_k(\sigma_i)|/\sigma_i$, and the
# projector residual converges quadratically:
# $\|A\pinv{A} - AX_{k+1}\|_2 = \|A\pinv{A} - AX_k\|_2^2$.
# ```
#
# ```{prf:proof}
# By induction on $k$. For $k = 0$, $X_0 = \alpha V\Sigma^\top U^\top$ and
# $f_0(\sigma) = \alpha\sigma = (1 - (1 - \alpha\sigma^2))/\sigma$. If
# $X_k = V F_k U^\top$ with $F_k = f_k(\Sigma)^\top$, then $AX_k = U\Sigma F_k U^\top$ and
# $X_{k+1} = V F_k (2I - \Sigma F_k) U^\top$: each singular value evolves on its own by
# $f_{k+1} = f_k(2 - \sigma f_k)$. In terms of the residual,
# $1 - \sigma f_{k+1} = 1 - 2\sigma f_k + \sigma^2 f_k^2 = (1 - \sigma f_k)^2$, that is
# $r_{k+1} = r_k^2$, and $r_0 = 1 - \alpha\sigma^2$ gives {eq}`bc-filter`. A zero singular
# value starts at $f_0(0) = 0$ and stays there, which is the correct value of $\pinv{A}$ on
# the null spaces. For $\sigma > 0$, $f_k(\sigma) \to 1/\sigma$ if and only if $r_k \to 0$,
# i.e. $|1 - \alpha\sigma^2| < 1$, i.e. $0 < \alpha\sigma^2 < 2$; requiring it for
# $\sigma_1$ gives the condition. $X_k - \pinv{A} = -V\diag(r_k(\sigma_i)/\sigma_i)U^\top$
# gives the error, and $A\pinv{A} - AX_k = U\diag(r_k(\sigma_i))U^\top$ (over $\sigma_i > 0$)
# gives the quadratic rate, because $r_{k+1} = r_k^2$.
# ```
#
# The iteration never leaves the row and column spaces of $A$, so it needs no rank
# assumption, but the rate at which the *smallest* nonzero $\sigma_r$ converges is
# $(1 - \alpha\sigma_r^2)^{2^k}$: with $\alpha$ close to its largest safe value
# $\approx 1/\sigma_1^2$ it needs $2^k \gtrsim \kappa^2 \ln(1/\epsilon)$ to reach accuracy
# $\epsilon$, where $\kappa = \sigma_1/\sigma_r$. That is the slow initial phase that
# Söderström and Stewart point out for ill-conditioned matrices {cite}`soderstrom1974`.
#
# The package evaluates {eq}`bc-filter` with `expm1`/`log1p`, to avoid the cancellation in
# $1 - (1-x)^{2^k}$ for small $x$:

# %% tags=["nbval-ignore-output"]
Code(inspect.getsource(ben_cohen_filter), language="python")

# %% [markdown]
# We check the closed form against the iterate itself, for $k = 0, \dots, 12$, on a
# rank-deficient matrix, with the paper's $\alpha$:

# %%
def svd_apply(A, f):
    """V diag(f(sigma)) U^T for the thin SVD of A: a spectral function of A."""
    U, S, Vh = torch.linalg.svd(A, full_matrices=False)
    return Vh.mT @ torch.diag(f(S)) @ U.mT


A = torch.randn(20, 12, generator=gen) @ torch.randn(12, 40, generator=gen)  # 20 x 40, rank 12
A = 10 * A / torch.linalg.matrix_norm(A, ord=2)  # sigma_1 = 10: alpha = 1e-3 is safe (< 0.02)
residuals = []
for k in range(13):
    X = ben_cohen_pinv(A, steps=k, alpha=ALPHA_PAPER)
    X_closed = svd_apply(A, lambda s: ben_cohen_filter(s, ALPHA_PAPER, k))
    assert torch.allclose(X, X_closed, rtol=1e-9, atol=1e-12), k
    P = A @ torch.linalg.pinv(A)  # projector onto range(A)
    residuals.append(float(torch.linalg.matrix_norm(P - A @ X, ord=2)))
# quadratic convergence: the projector residual squares at every step (up to rounding)
for k in range(12):
    assert abs(residuals[k + 1] - residuals[k] ** 2) < 1e-12, k
print("closed form (bc-filter) == iterate for k = 0..12;  |AA^+ - AX_k|_2 =",
      ", ".join(f"{r:.3g}" for r in residuals[:12:2]), "(k = 0, 2, ..., 10)")

# %% [markdown]
# ## What seven steps compute: a spectral filter
#
# For $x = \alpha\sigma^2 \ll 1$, $(1-x)^{2^k} \approx e^{-2^k x}$, so
#
# $$
# f_k(\sigma) \approx \frac{1 - e^{-\sigma^2/\lambda_k}}{\sigma},
# \qquad \lambda_k := \frac{1}{\alpha\, 2^k} ,
# $$ (bc-lambda)
#
# which is $\approx 1/\sigma$ (inversion) for $\sigma \gg \sqrt{\lambda_k}$ and
# $\approx \sigma/\lambda_k = \alpha 2^k \sigma$ (damping) for $\sigma \ll \sqrt{\lambda_k}$.
# That is the shape of the Tikhonov filter $\sigma/(\sigma^2 + \lambda_k)$ of GPM's
# Theorem D.5 ({doc}`02_least_squares`): $k$ steps from $\alpha A^\top$ *regularize* with
# $\lambda_k = 1/(\alpha 2^k)$ and a cut-off at
#
# $$
# \sigma^\ast_k = \sqrt{\lambda_k} = \frac{1}{\sqrt{\alpha\, 2^k}} .
# $$ (bc-cutoff)
#
# The two filters agree to within 31% at every $\sigma$ up to $1/\sqrt{\alpha}$ (where the
# iteration converges monotonically), as the next cell checks. For the paper's
# $\alpha = 10^{-3}$ and $k = 7$: $\lambda_7 = 1/0.128 = 7.8$ and $\sigma^\ast_7 = 2.80$.
# Singular values below 2.8 are damped, not inverted.
#
# ```{admonition} Our finding (not stated in the paper)
# :class: important
#
# With the paper's settings the Ben-Cohen iteration has not converged for the matrices GPM
# inverts: seven steps with $\alpha = 10^{-3}$ are a Tikhonov-like spectral filter with
# cut-off $\sigma^\ast = 1/\sqrt{\alpha 2^7} = 2.80$ (regularization
# $\lambda = 1/(\alpha 2^7) = 7.8$), not the pseudo-inverse. Whether that matters depends on
# the scale of the matrices: on unit-scale data the same 7 steps invert a standard-normal
# $32 \times 100$ prior memory $M_0$ to 3%, but leave the $32\times 32$ writing weight $W_0$
# uninverted (relative error 1.00, table below), and a noiseless write-then-read loses 86% of
# the episode (figure below). The model trains through this filter, so a trained GPM is a
# *regularized* pseudo-inverse memory whose encoder must keep its codes inside a window of
# scales. `gpm_core` offers `pinv="exact"` and `alpha="auto"` to compare.
# ```

# %%
alpha_2k = ALPHA_PAPER * 2**STEPS_PAPER
sigma_cut = alpha_2k ** -0.5
print(f"paper: alpha 2^k = {alpha_2k:.3f}, lambda_7 = {1 / alpha_2k:.2f}, cut-off sigma* = {sigma_cut:.2f}")
assert abs(sigma_cut - 2.795) < 1e-3
sig = torch.logspace(-3, 0, 400) / ALPHA_PAPER**0.5  # sigma up to 1/sqrt(alpha)
ratio = ben_cohen_filter(sig, ALPHA_PAPER, STEPS_PAPER) / (sig / (sig**2 + 1 / alpha_2k))
print(f"f_7 / Tikhonov(lambda_7) over sigma in [0.03, 31.6]: min {float(ratio.min()):.3f},"
      f" max {float(ratio.max()):.3f}")
assert float(ratio.min()) > 1 - 1e-9 and float(ratio.max()) < 1.31
# below the cut-off the filter is far from 1/sigma: sigma f_7(sigma) ~ alpha 2^k sigma^2
gain_at = lambda s: float(s * ben_cohen_filter(torch.tensor(s), ALPHA_PAPER, STEPS_PAPER))
print(f"sigma f_7(sigma) (1 = exact inverse): sigma=0.1: {gain_at(0.1):.4f}, "
      f"sigma=1: {gain_at(1.0):.3f}, sigma=2.8: {gain_at(2.8):.3f}, sigma=10: {gain_at(10.0):.4f}")
assert gain_at(1.0) < 0.13 and gain_at(10.0) > 0.99999

# %% [markdown]
# ## On matrices shaped like GPM's
#
# GPM inverts three matrices per episode: the prior memory $M_0$ ($K\times C = 32\times 100$),
# the writing weight $W_0 = Z_\xi\pinv{M_0}$ ($T\times K = 32\times 32$) and the posterior
# memory $M = \pinv{W_0} Z_\xi$ ($32 \times 100$). Their scale is what decides how much the
# filter bites. We take $M_0$ with standard-normal entries (the initialisation
# `gpm_core.models` uses, as the DKM does for $R_0$ {cite}`wu2018dkm`), an episode $Z$ with
# standard-normal entries and $\sigma_\xi = 0.5$, and write it with `gpm.write` twice: once
# with the paper's pseudo-inverse (7 steps, $\alpha = 10^{-3}$) and once with the package's
# `alpha="auto"`, which picks $\alpha = 1.8/b$ per matrix, $b \ge \sigma_1^2$ a certified
# bound, so that $\alpha\sigma_1^2 \approx 1.8$, just inside the divergence limit 2:

# %% tags=["nbval-ignore-output"]
Code(inspect.getsource(auto_alpha), language="python")

# %% [markdown]
# For each of the three matrices that a pipeline inverts, the table compares its 7-step
# Ben-Cohen inverse with `torch.linalg.pinv`:

# %%
M0 = torch.randn(K, C, generator=gen)
Z = torch.randn(T, C, generator=gen)
Z_xi = gpm.add_write_noise(Z, sigma_xi, generator=gen)
pinvs = {"paper": make_pinv("ben_cohen", STEPS_PAPER, ALPHA_PAPER),
         "auto": make_pinv("ben_cohen", STEPS_PAPER, "auto"),
         "exact": make_pinv("exact")}


def fmt(x):
    """Round for printing; values at rounding level print as a bound (they vary by machine)."""
    return "< 1e-10" if x < 1e-10 else f"{x:.3g}"


def steps_to(alpha, s_min, eps=1e-6):
    """Smallest k with (1 - alpha s_min^2)^(2^k) <= eps: steps until every direction converges."""
    k = 0
    while abs(1 - alpha * s_min**2) ** (2**k) > eps:
        k += 1
    return k


rows, mats = {}, {}
print(f"{'pipeline':9}{'matrix':>6}{'sigma_1':>9}{'sigma_r':>9}{'alpha':>10}{'cut-off':>9}"
      f"{'# below':>9}{'rel. error':>12}{'Penrose':>10}{'steps to 1e-6':>15}")
for label in ["paper", "auto"]:
    W0, M = gpm.write(Z_xi, M0, pinvs[label], pinvs[label])  # the matrices this pipeline inverts
    for name, A in [("M0", M0), ("W0", W0), ("M", M)]:
        mats[name, label] = A
        s = torch.linalg.svdvals(A)
        alpha = ALPHA_PAPER if label == "paper" else float(auto_alpha(A))
        X = ben_cohen_pinv(A, steps=STEPS_PAPER, alpha=alpha)
        A_pinv = torch.linalg.pinv(A)
        rel = float(torch.linalg.matrix_norm(X - A_pinv) / torch.linalg.matrix_norm(A_pinv))
        cut = (alpha * 2**STEPS_PAPER) ** -0.5
        rows[name, label] = dict(rel=rel, res=float(penrose_residual(A, X)),
                                 k=steps_to(alpha, float(s[-1])), smax=float(s[0]))
        print(f"{label:9}{name:>6}{float(s[0]):9.3g}{float(s[-1]):9.3g}{alpha:10.3g}{cut:9.3g}"
              f"{int((s < cut).sum()):6d}/{len(s)}{fmt(rel):>12}{fmt(rows[name, label]['res']):>10}"
              f"{rows[name, label]['k']:>15}")
_, M_exact = gpm.write(Z_xi, M0, pinvs["exact"], pinvs["exact"])
print(f"exact pipeline: sigma_1(M) = {float(torch.linalg.matrix_norm(M_exact, ord=2)):.3g}")

# %% [markdown]
# Reading the table:
#
# - $M_0$ has singular values between about 4 and 15, above the paper's cut-off 2.8: seven
#   paper steps leave a relative error of 3%, and the auto $\alpha$ (eight times larger
#   here) converges to rounding level.
# - $W_0$ is square ($T = K$) and, like any square random matrix, ill-conditioned
#   ($\kappa \approx 150$); its singular values lie below 2, all of them under the paper's
#   cut-off. Seven paper steps return $\approx \alpha 2^7 W_0^\top = 0.128\,W_0^\top$ instead
#   of $\pinv{W_0}$: relative error 1.00. The auto $\alpha$ leaves 4 singular values under its
#   own cut-off and a relative error of 0.96; it would need 18 steps (last column, from
#   {eq}`bc-filter`).
# - The paper pipeline's $M$ is therefore $\approx 0.128\,W_0^\top Z_\xi$, small and again
#   entirely below the cut-off. With exact pseudo-inverses, $M = \pinv{W_0} Z_\xi$ interpolates
#   the episode through the ill-conditioned $W_0$ and its largest singular value is about 700:
#   $\alpha = 10^{-3}$ would *diverge* on it ($\alpha\sigma_1^2 \gg 2$). The filter also keeps
#   the memory's scale bounded. The auto pipeline's $M$ sits in between ($\kappa \approx 10$,
#   4% after 7 steps).
# - The Penrose residual $\|AXA - A\|_F/\|A\|_F$ weighs each direction by
#   $\sigma_i\, r_k(\sigma_i)$ and so hides the errors in the small singular values that
#   dominate $\|X - \pinv{A}\|$.

# %%
assert rows["W0", "paper"]["rel"] > 0.99  # seven paper steps do not invert W0
assert 0.01 < rows["M0", "paper"]["rel"] < 0.05  # ... and invert M0 to a few percent
assert rows["M0", "auto"]["rel"] < 1e-8 and rows["M", "auto"]["rel"] < 0.05
assert rows["W0", "auto"]["rel"] > 0.5 and rows["W0", "auto"]["k"] > STEPS_PAPER
assert ALPHA_PAPER * float(torch.linalg.matrix_norm(M_exact, ord=2)) ** 2 > 2  # would diverge
# the paper-alpha iterate on W0 is close to alpha 2^7 W0^T, the small-sigma limit of the filter
W0p = mats["W0", "paper"]
X_w0 = ben_cohen_pinv(W0p, steps=STEPS_PAPER, alpha=ALPHA_PAPER)
dist = float(torch.linalg.matrix_norm(X_w0 - alpha_2k * W0p.mT) / torch.linalg.matrix_norm(X_w0))
print(f"|X_7(W0) - 0.128 W0^T|_F / |X_7(W0)|_F = {dist:.3f}")
assert dist < 0.15  # the top singular values (up to 1.8) are already past the linear regime

# %% [markdown]
# The filters themselves, with the singular values of the three matrices marked on the
# axis. The exact pseudo-inverse is the diagonal $1/\sigma$; each $f_7$ follows it above its
# cut-off and falls away as $\alpha 2^7\sigma$ below. Each curve stops at $\sigma = \sqrt{2/\alpha}$: beyond it
# $|1 - \alpha\sigma^2| > 1$ and the iteration diverges.

# %%
sig = torch.logspace(-2.5, 1.7, 300)
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.loglog(sig, 1 / sig, "k--", lw=1, label=r"$1/\sigma$ (exact $A^+$)")
for alpha, label, color in [(ALPHA_PAPER, r"$\alpha=10^{-3}$ (paper)", "C3"),
                            (float(auto_alpha(M0)), r"auto $\alpha$ of $M_0$", "C0"),
                            (float(auto_alpha(mats["W0", "auto"])), r"auto $\alpha$ of $W_0$", "C2")]:
    f = ben_cohen_filter(sig, alpha, STEPS_PAPER)
    ax.loglog(sig, f, color=color, label=f"$f_7$, {label}")
    ax.axvline((alpha * 2**STEPS_PAPER) ** -0.5, color=color, lw=0.6, ls=":")
for name, A, y in [("$M_0$", M0, 2e-3), ("$W_0$", mats["W0", "paper"], 6e-4),
                   ("$M$ (paper)", mats["M", "paper"], 2e-4)]:
    s = torch.linalg.svdvals(A)
    ax.plot(s, torch.full_like(s, y), "|", ms=8, color="gray")
    ax.annotate(name, (float(s.max()) * 1.25, y), va="center", fontsize=9)
ax.set_xlabel(r"singular value $\sigma$")
ax.set_ylabel(r"$f_7(\sigma)$")
ax.set_ylim(1e-4, 1e3)
ax.legend(fontsize=8, loc="upper right")
ax.set_title("Seven Ben-Cohen steps as a spectral filter (dotted: cut-offs)", fontsize=10)
plt.show()

# %% [markdown]
# ## What the filter does to a write and a read
#
# The filter is not scale-invariant: multiplying the episode by $c$ multiplies $W_0$ by $c$
# and moves its singular values across the fixed cut-off. We write a noiseless episode
# ($\sigma_\xi = 0$, so that exact pseudo-inverses retrieve it perfectly, see
# {doc}`04_gpm_memory`) scaled by $c$, read it back with the clean query, and measure the
# relative retrieval error $\|WM - Z\|_F/\|Z\|_F$ for the three pseudo-inverses:

# %%
scales = torch.logspace(-1, 2, 13)
retrieval = {}
for T_ in (16, 32):
    Z0 = torch.randn(T_, C, generator=gen)
    for label, p in pinvs.items():
        errs = []
        for c in scales:
            Zc = c * Z0
            W0_, M_ = gpm.write(Zc, M0, p, p)
            Z_read = gpm.read(gpm.address(Zc, M_, p), M_)
            e = float(torch.linalg.matrix_norm(Z_read - Zc) / torch.linalg.matrix_norm(Zc))
            errs.append(e if e == e and e < 1e3 else float("inf"))  # NaN/overflow: diverged
        retrieval[T_, label] = errs

fig, axes = plt.subplots(1, 2, figsize=(8, 3.2), sharey=True)
for ax, T_ in zip(axes, (16, 32)):
    for label, color in [("exact", "k"), ("auto", "C0"), ("paper", "C3")]:
        e = torch.tensor(retrieval[T_, label])
        fin = torch.isfinite(e)
        ax.loglog(scales[fin], e[fin].clamp_min(1e-16), "o-", ms=3, color=color, label=label)
        ax.loglog(scales[~fin], torch.full((int((~fin).sum()),), 3.0), "x", color=color)
    ax.set_title(f"T = {T_}, K = {K}, C = {C}, $\\sigma_\\xi = 0$", fontsize=10)
    ax.set_xlabel("episode scale $c$")
axes[0].set_ylabel(r"$\|WM - Z\|_F / \|Z\|_F$")
axes[0].legend(fontsize=8)
fig.suptitle("Write-then-read with 7-step pseudo-inverses (x: diverged)", fontsize=10)
plt.tight_layout()
plt.show()

for T_ in (16, 32):
    print(f"T = {T_}: retrieval error at c = 1: paper {retrieval[T_, 'paper'][4]:.2f},"
          f" auto {retrieval[T_, 'auto'][4]:.1e}, exact {fmt(retrieval[T_, 'exact'][4])};"
          f" paper diverges for c >= {float(scales[[e == float('inf') for e in retrieval[T_, 'paper']].index(True)]):.0f}")

# %%
assert float(scales[4]) == 1.0
for T_ in (16, 32):
    assert max(retrieval[T_, "exact"]) < 1e-10  # exact: perfect retrieval at every scale
    assert retrieval[T_, "paper"][4] > 0.8  # paper alpha at unit scale: mostly lost
    assert retrieval[T_, "paper"][-1] == float("inf")  # ... and divergence at large scale
    assert max(retrieval[T_, "auto"]) < 0.02  # auto alpha: scale-invariant
assert max(retrieval[16, "auto"]) < 1e-6

# %% [markdown]
# With the paper's $\alpha$, retrieval works only in a window of scales, roughly
# $5 \lesssim c \lesssim 30$ for $T = 16$ and $10 \lesssim c \lesssim 20$ for $T = 32$, between the filter's cut-off and the divergence limit
# $\alpha\sigma_1^2 < 2$. A trained encoder can move its codes into that window (and $M_0$
# is trained too), which is presumably what happens in the paper's runs; the auto $\alpha$
# removes the need, because it rescales with the matrix. At $T = K$ even the auto $\alpha$
# leaves a 1% error after 7 steps, because the square $W_0$ is ill-conditioned.

# %% [markdown]
# ## Rounding: instability after convergence on rank-deficient matrices
#
# The closed form is exact arithmetic. In floating point a second phenomenon appears
# {cite}`soderstrom1974`. Linearize {eq}`bc-iter` around the fixed point,
# $X_k = \pinv{A} + \Delta_k$, with the projectors $P = \pinv{A}A$ (row space) and
# $Q = A\pinv{A}$ (column space): since $\pinv{A}A\pinv{A} = \pinv{A}$,
#
# $$
# \Delta_{k+1} = (I - P)\Delta_k + \Delta_k(I - Q) + O(\|\Delta_k\|^2).
# $$ (bc-linearized)
#
# Split $\Delta$ into its four blocks $P\Delta Q$, $P\Delta(I-Q)$, $(I-P)\Delta Q$ and
# $(I-P)\Delta(I-Q)$: the map {eq}`bc-linearized` multiplies them by $0$, $1$, $1$ and $2$.
# The last block maps the left null space of $A$ to its null space; it exists when
# $\rank A < \min(m, n)$. Exact arithmetic never puts anything there, but every step adds
# rounding errors of relative size $\epsilon$ to all blocks, and that block **doubles at
# every step**. So once $X_k$ has converged, about $\log_2(1/\epsilon) \approx 23$ further
# steps in float32 (52 in float64) bring the error to order one, after which the quadratic
# term takes over and the iteration diverges. Full-rank rectangular matrices ($M_0$, $M$,
# and $W_0$ whenever $T \neq K$) have no such block. A rank-deficient $W_0$ arises in GPM
# when an episode repeats an item and is written without noise.
#
# We run $0, \dots, 70$ steps with the auto $\alpha$ on a rank-deficient $32\times 32$ matrix
# (rank 16) and on $M_0$, in float32 and float64, and measure the relative error against
# `torch.linalg.pinv` in float64:

# %%
A_def = torch.randn(32, 16, generator=gen) @ torch.randn(16, 32, generator=gen) / 4  # rank 16
curves = {}
for name, A64 in [("rank 16 of 32, float32", A_def), ("rank 16 of 32, float64", A_def),
                  ("M0 (full rank), float32", M0)]:
    A = A64.float() if "float32" in name else A64
    A_pinv = torch.linalg.pinv(A64)
    alpha = auto_alpha(A)
    err = []
    for k in range(71):
        X = ben_cohen_pinv(A, steps=k, alpha="auto", check=False).double()
        e = torch.linalg.matrix_norm(X - A_pinv) / torch.linalg.matrix_norm(A_pinv)
        err.append(float(e) if torch.isfinite(e) else float("inf"))
    curves[name] = err

fig, ax = plt.subplots(figsize=(6, 3.5))
for name, err in curves.items():
    ax.semilogy(range(71), [min(e, 1e6) for e in err], label=name)
ax.set_xlabel("Ben-Cohen steps $k$ (auto $\\alpha$)")
ax.set_ylabel(r"$\|X_k - A^+\|_F / \|A^+\|_F$")
ax.set_ylim(1e-16, 1e7)
ax.legend(fontsize=8)
ax.set_title("Converged, then unstable: only the rank-deficient matrix diverges", fontsize=10)
plt.show()

# %%
c32, c64, full = (curves[n] for n in curves)
best32 = min(range(71), key=lambda k: c32[k])  # where float32 has converged
assert min(c32) < 1e-4  # it does converge first ...
assert max(c32[best32 + 35:]) > 1  # ... and is destroyed by rounding ~23+ steps later
assert min(c64) < 1e-12 and max(c64[best32 + 10:]) > 1e-10  # float64: same doubling, later
assert max(full[20:]) < 1e-5  # a full-rank matrix stays converged in float32
