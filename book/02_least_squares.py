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
# # Least squares and the pseudo-inverse
#
# Every memory operation of GPM {cite}`pham2022gpm` is the minimum-norm solution of a linear
# least-squares problem, and every one of them is written with a Moore–Penrose
# pseudo-inverse. This chapter collects what we need about pseudo-inverses
# {cite}`penrose1955,benisrael2003`: the normal equations, the minimum-norm solution, the
# SVD formula, the four Penrose conditions, and the properties that GPM lists in its
# appendix D. Each statement is followed by a cell that checks it against
# `torch.linalg.pinv` or `torch.linalg.lstsq`, on a full-rank and on a rank-deficient
# matrix, because the rank-deficient case is the one where things go wrong. One of the
# appendix's properties, D.4, is false as printed; we give a counterexample and the
# correct statement.

# %%
import inspect

import matplotlib.pyplot as plt
import torch
from IPython.display import Code

from gpm_core.pinv import penrose_residual

torch.set_num_threads(1)  # tiny matrices: extra threads only add overhead
torch.set_default_dtype(torch.float64)  # the identities below are checked to 1e-10
gen = torch.Generator().manual_seed(0)


def randn(*shape):
    return torch.randn(*shape, generator=gen)


def low_rank(m, n, r):
    """A random m x n matrix of rank exactly r."""
    return randn(m, r) @ randn(r, n)


A_full = randn(8, 5)  # tall, full column rank
A_def = low_rank(8, 5, 3)  # tall, rank 3 < 5: a null space and a left null space
b = randn(8)
for name, A in [("A_full", A_full), ("A_def", A_def)]:
    print(f"{name}: shape {tuple(A.shape)}, rank {int(torch.linalg.matrix_rank(A))}")

# %% [markdown]
# ## Least squares and the normal equations
#
# Given $A \in \R^{m \times n}$ and $b \in \R^m$, a *least-squares solution* of $Ax = b$ is a
# minimizer of $\|Ax - b\|_2^2$. The function is a convex quadratic with gradient
# $2A^\top(Ax - b)$, so $x$ is a least-squares solution if and only if it solves the
# *normal equations*
#
# $$
# A^\top A\, x = A^\top b .
# $$ (ls-normal)
#
# They always have a solution ($A^\top b$ lies in the range of $A^\top = $ the range of
# $A^\top A$), and the solution is unique exactly when $A$ has full column rank. Otherwise the
# least-squares solutions form an affine subspace $x_0 + \ker A$, and we need a rule to pick
# one. GPM's rule is the one of smallest norm.
#
# ## The pseudo-inverse
#
# ```{prf:definition} Moore–Penrose pseudo-inverse
# :label: def-pinv
#
# For $A \in \R^{m\times n}$, the pseudo-inverse $\pinv{A} \in \R^{n \times m}$ is the unique
# matrix $X$ satisfying the four *Penrose conditions* {cite}`penrose1955`
#
# $$
# AXA = A, \qquad XAX = X, \qquad (AX)^\top = AX, \qquad (XA)^\top = XA .
# $$ (ls-penrose)
# ```
#
# ```{prf:theorem} SVD form of the pseudo-inverse
# :label: thm-pinv-svd
#
# Let $A = U \Sigma V^\top$ be a singular value decomposition with $r = \rank A$ nonzero
# singular values $\sigma_1 \ge \dots \ge \sigma_r > 0$. Then
#
# $$
# \pinv{A} = V \Sigma^{+} U^\top, \qquad
# \Sigma^{+} = \diag(1/\sigma_1, \dots, 1/\sigma_r, 0, \dots, 0) \in \R^{n \times m}.
# $$ (ls-svd)
#
# Moreover $A\pinv{A}$ and $\pinv{A}A$ are the orthogonal projectors onto the range of $A$
# and onto the row space of $A$ (the orthogonal complement of $\ker A$).
# ```
#
# ```{prf:proof}
# With $X = V\Sigma^+U^\top$ we get $AX = U \Sigma\Sigma^+ U^\top$ and
# $XA = V\Sigma^+\Sigma V^\top$, where $\Sigma\Sigma^+$ and $\Sigma^+\Sigma$ are diagonal with
# $r$ ones followed by zeros. Both products are therefore symmetric idempotents, the
# projectors onto the span of the first $r$ columns of $U$ (the range of $A$) and of $V$ (the
# row space), and $AXA = U\Sigma\Sigma^+\Sigma V^\top = A$, $XAX = X$ follow from
# $\Sigma\Sigma^+\Sigma = \Sigma$ and $\Sigma^+\Sigma\Sigma^+ = \Sigma^+$. For uniqueness, if
# $X$ and $Y$ both satisfy {eq}`ls-penrose`, then
# $X = XAX = X(AX)^\top = X X^\top A^\top = XX^\top A^\top Y^\top A^\top = XAXAY = XAY$ and,
# symmetrically, $Y = YAY = (YA)^\top Y = A^\top Y^\top Y = A^\top X^\top A^\top Y^\top Y
# = XAYAY = XAY$, so $X = Y$.
# ```
#
# The package measures how far a candidate $X$ is from the first Penrose condition with
# `penrose_residual`; we use it throughout, along with the three other conditions:

# %% tags=["nbval-ignore-output"]
Code(inspect.getsource(penrose_residual), language="python")


# %%
def penrose_residuals(A, X):
    """Relative residuals of the four Penrose conditions (ls-penrose)."""
    AX, XA = A @ X, X @ A
    rel = lambda R, S: float(torch.linalg.matrix_norm(R) / torch.linalg.matrix_norm(S))
    return [float(penrose_residual(A, X)), rel(X @ A @ X - X, X),
            rel(AX - AX.mT, AX), rel(XA - XA.mT, XA)]


for name, A in [("A_full", A_full), ("A_def", A_def)]:
    U, S, Vh = torch.linalg.svd(A)  # full SVD: U (8, 8), S (5,), Vh (5, 5)
    r = int((S > S[0] * 1e-12).sum())
    Splus = torch.zeros(A.shape[1], A.shape[0])  # (n, m)
    Splus[:r, :r] = torch.diag(1 / S[:r])
    X_svd = Vh.mT @ Splus @ U.mT  # eq. (ls-svd)
    X_ref = torch.linalg.pinv(A)
    assert torch.allclose(X_svd, X_ref, atol=1e-10), name
    assert max(penrose_residuals(A, X_svd)) < 1e-10, name
    P_row = X_ref @ A  # projector onto the row space: symmetric, idempotent, trace = rank
    assert torch.allclose(P_row @ P_row, P_row, atol=1e-10)
    assert abs(float(torch.trace(P_row)) - r) < 1e-10
    print(f"{name}: V Sigma^+ U^T == torch.linalg.pinv, all four Penrose conditions hold,"
          f" trace(A^+ A) = {float(torch.trace(P_row)):.0f} = rank")

# %% [markdown]
# ## The minimum-norm least-squares solution
#
# ```{prf:theorem} Minimum-norm least squares
# :label: thm-minnorm
#
# $x^\star = \pinv{A} b$ is a least-squares solution of $Ax = b$, and every other
# least-squares solution $x$ has $\|x\|_2 > \|x^\star\|_2$. The set of least-squares
# solutions is $x^\star + \ker A$.
# ```
#
# ```{prf:proof}
# Write $y = V^\top x$ and $c = U^\top b$. Because $U$ is orthogonal,
# $\|Ax - b\|^2 = \|\Sigma y - c\|^2 = \sum_{i \le r}(\sigma_i y_i - c_i)^2 + \sum_{i > r} c_i^2$.
# The minimizers are exactly the $y$ with $y_i = c_i / \sigma_i$ for $i \le r$ and
# $y_{r+1}, \dots, y_n$ free: these free coordinates span $V^\top \ker A$. Since
# $\|x\| = \|y\|$, the smallest minimizer sets them to zero, which is $y = \Sigma^+ c$, that
# is $x^\star = V\Sigma^+U^\top b = \pinv{A} b$. Any other minimizer adds a nonzero vector
# orthogonal to $x^\star$, so its norm is strictly larger.
# ```
#
# LAPACK's `gelsd` driver, behind `torch.linalg.lstsq`, returns the minimum-norm solution
# through an SVD, so it is an independent reference:

# %%
for name, A in [("A_full", A_full), ("A_def", A_def)]:
    x_star = torch.linalg.pinv(A) @ b
    x_ls = torch.linalg.lstsq(A, b[:, None], driver="gelsd").solution[:, 0]
    assert torch.allclose(x_star, x_ls, atol=1e-10), name
    # x_star solves the normal equations (ls-normal)
    assert torch.allclose(A.mT @ A @ x_star, A.mT @ b, atol=1e-10), name
    # another least-squares solution: add a vector of ker A (empty for A_full)
    null = torch.linalg.svd(A).Vh[int(torch.linalg.matrix_rank(A)):]  # (n - r, n)
    if len(null):
        x_other = x_star + 0.7 * null[0]
        assert torch.isclose(torch.linalg.norm(A @ x_other - b), torch.linalg.norm(A @ x_star - b))
        assert torch.linalg.norm(x_other) > torch.linalg.norm(x_star)
        print(f"{name}: residual {float(torch.linalg.norm(A @ x_star - b)):.4f} for both;"
              f" |x*| = {float(torch.linalg.norm(x_star)):.4f} < |x* + null| ="
              f" {float(torch.linalg.norm(x_other)):.4f}")
    else:
        print(f"{name}: ker A = {{0}}, the least-squares solution is unique,"
              f" |x*| = {float(torch.linalg.norm(x_star)):.4f}")

# %% [markdown]
# ## The properties of GPM's appendix D
#
# GPM's appendix D lists the properties it relies on {cite}`pham2022gpm`, with proofs
# deferred to {cite}`benisrael2003`. We restate each one and check it on `A_full` and
# `A_def`.
#
# **Proposition D.2.** For $A \in \R^{m\times n}$: $\pinv{A}A = I_n$ if and only if
# $\rank A = n$, and $A\pinv{A} = I_m$ if and only if $\rank A = m$. This is the
# projector statement of {prf:ref}`thm-pinv-svd`: $\pinv{A}A$ projects onto the row space,
# which is all of $\R^n$ exactly when the columns are independent.
#
# **Proposition D.3.** $(\pinv{A})^+ = A$, $\ (A^\top)^+ = (\pinv{A})^\top$ and
# $\pinv{A} = (A^\top A)^+A^\top = A^\top(AA^\top)^+$.

# %%
pinv = torch.linalg.pinv
close = lambda X, Y: torch.allclose(X, Y, atol=1e-9)
for name, A in [("A_full", A_full), ("A_def", A_def)]:
    m, n = A.shape
    rank = int(torch.linalg.matrix_rank(A))
    # D.2, both directions: each identity holds exactly when the rank condition does
    assert close(pinv(A) @ A, torch.eye(n)) == (rank == n), name
    assert close(A @ pinv(A), torch.eye(m)) == (rank == m), name
    # D.3
    assert close(pinv(pinv(A)), A)
    assert close(pinv(A.mT), pinv(A).mT)
    assert close(pinv(A.mT @ A) @ A.mT, pinv(A)) and close(A.mT @ pinv(A @ A.mT), pinv(A))
    print(f"{name} (rank {rank}): A^+A = I_{n}: {close(pinv(A) @ A, torch.eye(n))},"
          f" AA^+ = I_{m}: {close(A @ pinv(A), torch.eye(m))}; D.3 holds")

# %% [markdown]
# **Proposition D.4, as printed.** "If $A$ has linearly independent columns *or* $B$ has
# linearly independent rows, then $(AB)^+ = \pinv{B}\pinv{A}$."
#
# This is false. Take the invertible (so full column rank) $A = \diag(1, 2)$ and the single
# column $B = (1, 1)^\top$. Then $AB = (1, 2)^\top$ and $(AB)^+ = (1, 2)/5$, while
# $\pinv{B}\pinv{A} = \tfrac12 (1, 1)\diag(1, \tfrac12) = (\tfrac12, \tfrac14)$.
#
# ```{admonition} Correction to GPM Proposition D.4
# :class: important
#
# The reverse-order law $(AB)^+ = \pinv{B}\pinv{A}$ holds if $A$ has independent columns
# **and** $B$ has independent rows {cite}`benisrael2003`. With "or" it needs a stronger
# hypothesis on the one factor: it holds if $A$ has *orthonormal* columns ($A^\top A = I$) or
# $B$ has *orthonormal* rows ($BB^\top = I$). Greville gives the necessary and sufficient
# condition {cite}`greville1966`. The distinction matters for us: GPM's proof of its error
# bound (Theorem 2.2) uses the reverse-order law on $(\pinv{W_0} Z_\xi)^+$; we come back to
# this in {doc}`04_gpm_memory`.
# ```

# %%
A = torch.diag(torch.tensor([1.0, 2.0]))
B = torch.tensor([[1.0], [1.0]])
print("(AB)^+   =", [round(v, 4) for v in pinv(A @ B).flatten().tolist()])
print("B^+ A^+  =", [round(v, 4) for v in (pinv(B) @ pinv(A)).flatten().tolist()])
assert not close(pinv(A @ B), pinv(B) @ pinv(A))  # D.4 as printed fails

# the corrected statements, on random matrices
A_cols, B_rows = randn(7, 4), randn(4, 6)  # A: independent columns, B: independent rows
assert close(pinv(A_cols @ B_rows), pinv(B_rows) @ pinv(A_cols))  # "and": holds
B_def = low_rank(4, 6, 2)  # A still has independent columns, B does not
assert not close(pinv(A_cols @ B_def), pinv(B_def) @ pinv(A_cols))  # "or": fails
Q = torch.linalg.qr(randn(7, 4)).Q  # orthonormal columns
assert close(pinv(Q @ B_def), pinv(B_def) @ pinv(Q))  # orthonormal "or": holds
print("reverse-order law: holds with 'and', fails with 'or', holds with orthonormal 'or'")

# %% [markdown]
# **Theorem D.5 (Tikhonov limit).** For every $A \in \R^{m \times n}$,
#
# $$
# \lim_{\sigma \searrow 0} A^\top (AA^\top + \sigma I_m)^{-1} = \pinv{A}.
# $$ (ls-tikhonov)
#
# In the SVD basis the matrix on the left is $V \diag\big(\sigma_i / (\sigma_i^2 + \sigma)\big)U^\top$,
# with the convention that a zero singular value gives zero. It replaces $1/\sigma_i$ by the
# *filter factor* $\sigma_i / (\sigma_i^2 + \sigma)$ {cite}`hansen1998`, and the zero singular
# values stay zero for every $\sigma > 0$, which is why the limit holds without any rank
# assumption. The error is explicit:
#
# $$
# \big\| A^\top (AA^\top + \sigma I)^{-1} - \pinv{A} \big\|_2
# = \max_{i \le r} \frac{\sigma}{\sigma_i(\sigma_i^2 + \sigma)}
# = \frac{\sigma}{\sigma_r(\sigma_r^2 + \sigma)} ,
# $$ (ls-tikhonov-error)
#
# linear in $\sigma$ for $\sigma \ll \sigma_r^2$ and governed by the smallest nonzero
# singular value $\sigma_r$. In floating point there is a second error: when $A$ is rank
# deficient, $AA^\top + \sigma I$ has condition number about $\sigma_1^2/\sigma$, so solving
# with it adds a rounding error of order $\epsilon\,\sigma_1^2/\sigma$ that *grows* as
# $\sigma \to 0$. The figure shows both: the full-rank curve follows
# {eq}`ls-tikhonov-error` down to $\sigma = 10^{-8}$, the rank-deficient one leaves it below
# $\sigma \approx 10^{-6}$ (float64). The limit is a statement about exact arithmetic. The DKM's addressing is exactly this regularized inverse with
# $\sigma = \sigma_\xi^2$ ({doc}`06_dkm_memory`), and the Ben-Cohen iteration is a filter of
# the same shape ({doc}`03_ben_cohen`).

# %%
sigmas = torch.logspace(-8, 2, 41)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for name, A in [("A_full", A_full), ("A_def", A_def)]:
    Wide = A.mT  # (5, 8); wide, so that A A^T is the small Gram matrix as in GPM's M
    s = torch.linalg.svdvals(Wide)
    s_r = s[s > s[0] * 1e-12][-1]
    err = torch.stack([torch.linalg.matrix_norm(
        Wide.mT @ torch.linalg.inv(Wide @ Wide.mT + sg * torch.eye(5)) - pinv(Wide), ord=2)
        for sg in sigmas])
    predicted = sigmas / (s_r * (s_r**2 + sigmas))  # eq. (ls-tikhonov-error)
    # exact in float64 wherever rounding (about eps * |A|^2 / sigma, see below) is negligible
    ok = sigmas >= (1e-8 if name == "A_full" else 1e-5)
    assert torch.allclose(err[ok], predicted[ok], rtol=1e-3), name
    ax.loglog(sigmas, err, "o", ms=3, label=f"{name}$^\\top$ (rank {int((s > s[0] * 1e-12).sum())})")
    ax.loglog(sigmas, predicted, "k-", lw=0.8)
ax.set_xlabel(r"$\sigma$")
ax.set_ylabel(r"$\|A^\top(AA^\top+\sigma I)^{-1} - A^+\|_2$")
ax.set_title("Theorem D.5: measured (dots) and predicted (lines) error", fontsize=10)
ax.legend()
plt.show()

# %% [markdown]
# **Proposition D.6.** The minimum-norm least-squares solution of $AXB = D$ (minimizing
# $\|AXB - D\|_F$ and then $\|X\|_F$) is $X^\star = \pinv{A} D \pinv{B}$.
#
# ```{prf:proof}
# With the column-stacking $\vec$, $\vec(AXB) = (B^\top \otimes A)\vec X$, so the problem is
# the vector problem of {prf:ref}`thm-minnorm` with matrix $B^\top \otimes A$. The SVD of a
# Kronecker product is the Kronecker product of the SVDs, so by {eq}`ls-svd`
# $(B^\top \otimes A)^+ = (B^\top)^+ \otimes \pinv{A} = (\pinv{B})^\top \otimes \pinv{A}$
# (D.3), and $\vec X^\star = ((\pinv{B})^\top \otimes \pinv{A})\vec D = \vec(\pinv{A} D \pinv{B})$.
# ```
#
# Both GPM writing steps are instances {cite}`pham2022gpm`: the writing weight
# $W_0 = Z_\xi \pinv{M_0}$ solves $W_0 M_0 = Z_\xi$ ($A = I$, $B = M_0$), and the memory
# $M = \pinv{W_0} Z_\xi$ solves $W_0 M = Z_\xi$ ($A = W_0$, $B = I$). We check D.6 against a
# dense `lstsq` on the Kronecker system with both $A$ and $B$ rank deficient:

# %%
A6, B6 = low_rank(6, 4, 2), low_rank(5, 7, 3)  # X is 4 x 5; both factors rank deficient
D6 = randn(6, 7)
X_formula = pinv(A6) @ D6 @ pinv(B6)
vec = lambda X: X.mT.reshape(-1)  # column stacking
x_dense = torch.linalg.lstsq(torch.kron(B6.mT.contiguous(), A6), vec(D6)[:, None], driver="gelsd").solution
X_dense = x_dense[:, 0].reshape(5, 4).mT  # undo the column stacking
assert torch.allclose(X_formula, X_dense, atol=1e-9)
print("A^+ D B^+ == dense minimum-norm solution of (B^T kron A) vec X = vec D:",
      f"|X*|_F = {float(torch.linalg.norm(X_formula)):.4f}")

# %% [markdown]
# ## Summary
#
# - The minimum-norm least-squares solution of $Ax = b$ is $\pinv{A}b$
#   ({prf:ref}`thm-minnorm`); of $AXB = D$ it is $\pinv{A}D\pinv{B}$ (D.6). GPM's write is two
#   such solutions.
# - $\pinv{A} = V\Sigma^+U^\top$ inverts the nonzero singular values and keeps the zero ones
#   at zero; $\pinv{A}A$ and $A\pinv{A}$ are orthogonal projectors.
# - The reverse-order law needs independent columns of $A$ **and** independent rows of $B$;
#   GPM's Proposition D.4 states it with "or", which is false.
# - $A^\top(AA^\top + \sigma I)^{-1}$ is a spectral filter that tends to $\pinv{A}$ linearly
#   in $\sigma$, at a rate set by the smallest nonzero singular value.
