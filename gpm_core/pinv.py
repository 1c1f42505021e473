"""The Ben-Israel--Cohen iteration for the Moore--Penrose pseudo-inverse.

GPM (Pham et al. 2022, Theorem 2.1 and appendix G) never computes an SVD: every
pseudo-inverse in Algorithm 1 is approximated by a few steps of

    X_0 = alpha * A^T,        X_{i+1} = 2 X_i - X_i A X_i,

which converges to A^+ for 0 < alpha < 2 / sigma_max(A)^2 (Ben-Israel and Cohen 1966).
Everything here is batched over leading dims `...` and differentiable, because the paper
trains through the iterations.

In the SVD basis of A = U diag(sigma) V^T the iteration acts on each singular value
separately: k steps give X_k = V diag(f_k(sigma)) U^T with the spectral filter

    f_k(sigma) = (1 - (1 - alpha sigma^2)^(2^k)) / sigma        (`ben_cohen_filter`)

so the residual 1 - alpha sigma^2 is squared at every step. Two consequences drive the
design below:

* alpha sets how fast the *small* singular values converge (about 2^k alpha sigma^2 must
  be large), while alpha sigma_max^2 must stay below 2 or the top ones blow up. The paper
  tunes alpha per dataset (1e-3, 1e-4, 5e-5); `auto_alpha` picks it per matrix instead.
* Where A is rank deficient (rank < min(m, n)), rounding errors in the block that maps
  the left null space to the right null space are doubled by every step (Soderstrom and
  Stewart 1974): once converged, each extra step doubles the error. Full-rank rectangular
  matrices (every M0, M and a W0 with T != K in GPM) have no such block.
"""

from __future__ import annotations

import functools
from typing import Callable, Union

import torch
from torch import Tensor

Alpha = Union[float, str]

# alpha = SAFETY / (upper bound on sigma_max^2): keeps alpha * sigma_max^2 <= 1.8 < 2.
SAFETY = 1.8


class PinvDivergenceError(ArithmeticError):
    """The Ben-Cohen iteration diverged (alpha too large) or produced NaN/inf."""


def _gram(A: Tensor) -> Tensor:
    """The smaller Gram matrix of A: A A^T if A is wide, A^T A if tall. (..., r, r)."""
    m, n = A.shape[-2:]
    return A @ A.mT if m <= n else A.mT @ A


def _trace(H: Tensor) -> Tensor:
    return H.diagonal(dim1=-2, dim2=-1).sum(-1)


def sigma_max_sq_bound(A: Tensor, squarings: int = 5) -> Tensor:
    """A certified upper bound on sigma_max(A)^2, shape (...).

    With G the Gram matrix of A and p = 2^squarings,
    sigma_max^2 = lambda_max(G) <= tr(G^p)^(1/p) <= rank(A)^(1/p) * lambda_max(G):
    the power method run on the whole Gram matrix by repeated squaring. Unlike a Rayleigh
    quotient from vector power iterations (a lower bound: it underestimated sigma_max^2 by
    about 20% after 3 iterations in benchmarks/pinv.py, by 42% on another draw of W0),
    this can never make alpha too large. Each power is renormalised by its trace, so
    nothing overflows; the cost is one Gram matrix plus `squarings` products of r x r
    matrices, r = min(m, n): about one Ben-Cohen step.
    """
    G = _gram(A)  # (..., r, r)
    tiny = torch.finfo(A.dtype).tiny
    trace = _trace(G).clamp_min(tiny)  # (...)
    H = G / trace[..., None, None]  # eigenvalues in [0, 1], summing to 1
    log_bound = trace.log()
    for i in range(1, squarings + 1):
        H = H @ H
        t = _trace(H).clamp_min(tiny)  # t >= 1/r: no underflow
        H = H / t[..., None, None]
        log_bound = log_bound + t.log() / 2**i  # tr(G^(2^i)) = trace^(2^i) * prod t_j^(2^(i-j))
    return log_bound.exp()


def auto_alpha(A: Tensor, method: str = "power", iters: int = 5) -> Tensor:
    """A per-matrix alpha in (0, 2/sigma_max^2) for `ben_cohen_pinv`, shape (..., 1, 1).

    method="power" (default): alpha = 1.8 / b, where b >= sigma_max^2 is the certified
    bound of `sigma_max_sq_bound` after `iters` squarings of the Gram matrix; on GPM's
    matrices b / sigma_max^2 <= 1.031 with 5 squarings, so alpha * sigma_max^2 is in
    about [1.75, 1.8].
    method="fro": alpha = 1 / ||A||_F^2 (safe because sigma_max^2 <= ||A||_F^2, but
    sigma_max^2 / ||A||_F^2 shrinks like 1/rank, so it converges slowly).

    Measured by `python benchmarks/pinv.py` (second table; median
    ||X - A^+||_F / ||A^+||_F over 8 Gaussian matrices per shape, float64, seed 0):

        matrix                     steps   "fro"     "power"
        M0 32x100  (cond ~3)         7     2.2e-1    2.0e-11
                                    15     2.0e-15   1.9e-15
        M0 128x512 (cond ~3)         7     5.4e-1    1.4e-14
                                    15     3.8e-15   3.6e-15
        W0 32x32   (cond ~3e2)       7     1.0e0     9.9e-1
                                    15     9.4e-1    5.4e-1

    so "power" is the default. (A square W0 = Z M0^+, T = K, is ill conditioned and far
    from converged after 7 steps with any alpha; how far depends on the draw.)
    The safety factor 1.8 was the best of 1.0/1.5/1.8/1.9 after 7 steps (third table): a
    larger alpha speeds up the small singular values, but at 1.9 the top ones (residual
    |1 - alpha sigma_max^2| = 0.9) have not converged after 7 squarings.
    A zero matrix gets alpha = 1 (any alpha gives X = 0 = A^+). The result is computed
    without autograd: alpha is a step size, a constant like the paper's.
    """
    with torch.no_grad():
        if method == "power":
            bound = sigma_max_sq_bound(A, squarings=iters)
            alpha = SAFETY / bound
        elif method == "fro":
            bound = A.square().sum(dim=(-2, -1))
            alpha = 1.0 / bound
        else:
            raise ValueError(f"unknown auto_alpha method {method!r}; use 'power' or 'fro'")
        alpha = torch.where(bound > 0, alpha, torch.ones_like(alpha))
    return alpha[..., None, None]


def _check_finite(A: Tensor) -> None:
    if not torch.isfinite(A).all():
        raise ValueError(
            "the input of ben_cohen_pinv has NaN/inf entries; "
            "find where they come from upstream (e.g. an exploding encoder) before inverting"
        )


def _check_alpha(A: Tensor, alpha: float) -> None:
    """Raise if alpha * sigma_max^2 >= 2, the divergence boundary, up to A's precision."""
    smax = torch.linalg.matrix_norm(A.detach().double(), ord=2)  # (...) exact sigma_max
    ratio = alpha * smax.square()
    worst = int(ratio.argmax())
    smax_w, ratio_w = float(smax.flatten()[worst]), float(ratio.flatten()[worst])
    # within rounding of 2, |1 - alpha sigma_max^2| == 1 in A's precision: no convergence
    if ratio_w >= 2.0 * (1.0 - 8 * torch.finfo(A.dtype).eps):
        raise PinvDivergenceError(
            f"alpha={alpha:.3g} is too large: with the estimated sigma_max={smax_w:.4g} "
            f"alpha*sigma_max^2={ratio_w:.6g}, but the Ben-Cohen iteration only converges "
            f"for alpha in the safe range (0, 2/sigma_max^2) = (0, {2.0 / smax_w**2:.3g}) "
            f"(strictly inside it in {A.dtype}); use alpha='auto' or a smaller alpha"
        )


def _check_input(A: Tensor) -> None:
    """A must be a floating-point tensor of matrices (..., m, n); checks metadata only (no sync)."""
    if not isinstance(A, Tensor):
        raise TypeError(f"ben_cohen_pinv takes a torch.Tensor (..., m, n), got {type(A).__name__}")
    if A.ndim < 2:
        raise ValueError(f"ben_cohen_pinv takes matrices (..., m, n), got shape {tuple(A.shape)}; "
                         f"reshape a vector to (1, n) or (n, 1) first")
    if not A.is_floating_point():
        raise TypeError(f"ben_cohen_pinv needs a floating-point tensor, got {A.dtype}; "
                        f"convert it first, e.g. A.float() or A.double()")


def _validate(steps: int, alpha: Alpha) -> None:
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative int, got {steps!r}")
    if isinstance(alpha, str):
        if alpha != "auto":
            raise ValueError(f"alpha must be a positive float or 'auto', got {alpha!r}")
    elif not (float(alpha) > 0 and float(alpha) < float("inf")):
        raise ValueError(f"alpha must be a positive float or 'auto', got {alpha!r}")


def capped_alpha(A: Tensor, alpha: float) -> Tensor:
    """min(alpha, `auto_alpha(A)`) per matrix, shape (..., 1, 1): the alpha that
    `ben_cohen_pinv(A, alpha=alpha, cap=True)` inverts each matrix of A (..., m, n) with (a
    float alpha where it converges with room, the auto one where it would not)."""
    return auto_alpha(A).clamp_max(float(alpha))  # no host-to-device copy


def ben_cohen_pinv(
    A: Tensor,
    steps: int = 7,
    alpha: Alpha = "auto",
    *,
    check: bool = True,
    return_residual: bool = False,
    cap: bool = False,
):
    """Approximate A^+ by `steps` Ben-Cohen steps (GPM Theorem 2.1, appendix G).

    A: (..., m, n) -> X: (..., n, m), with X_0 = alpha A^T and X_{i+1} = 2X_i - X_i A X_i.
    alpha: a float (the paper's fixed alpha) or "auto" (`auto_alpha`, one per matrix;
    it is treated as a constant by autograd, like the paper's alpha).
    check=True raises ValueError on NaN/inf input and PinvDivergenceError when a float
    alpha is outside (0, 2/sigma_max^2) or the result is not finite. It syncs with the
    host (and takes an SVD for a float alpha); use check=False in training loops.
    WARNING: check=False checks nothing about the values. A float alpha above
    2/sigma_max^2 then returns FINITE GARBAGE, not an error (e.g. entries of 1e8 where
    A^+ has 0.05): the top singular values grow like |1 - alpha sigma^2|^(2^k). Use
    alpha="auto", or measure alpha * sigma_max^2 (`python -m gpm_core stability`), or
    check `penrose_residual(A, X)` when in doubt. The shape and dtype of A are always
    checked (no sync): (..., m, n), floating point; an empty A gives the empty A^+.
    return_residual=True returns (X, penrose_residual(A, X)).
    cap=True (a float alpha only): each matrix's alpha is min(alpha, `auto_alpha(A)`), so the
    iteration is the fixed-alpha one wherever that converges with room (alpha sigma_max^2 below
    about 1.8) and still converges where it would not (e.g. while codes grow in the first
    training steps). Costs about one more step (`sigma_max_sq_bound`).

    Each step costs two GEMMs: X (A X) for wide A (an m x m product) and (X A) X for tall
    A (n x n), each fused with the 2X - ... into one baddbmm.
    """
    _check_input(A)
    _validate(steps, alpha)
    m, n = A.shape[-2:]
    batch = A.shape[:-2]
    if A.numel() == 0:  # A^+ of an empty matrix (or of no matrices) is empty / zero
        X = A.new_zeros(*batch, n, m)
        return (X, A.new_zeros(batch)) if return_residual else X
    if check:
        _check_finite(A)
    if isinstance(alpha, str):
        a = auto_alpha(A)  # (..., 1, 1)
    elif cap:
        a = capped_alpha(A, alpha)  # (..., 1, 1)
    else:
        if check:
            _check_alpha(A, float(alpha))
        a = float(alpha)

    A3 = A.reshape(-1, m, n)  # (B, m, n)
    X = (a * A.mT).reshape(-1, n, m)  # (B, n, m)
    for _ in range(steps):
        if m <= n:
            X = torch.baddbmm(X, X, A3 @ X, beta=2.0, alpha=-1.0)  # 2X - X (A X)
        else:
            X = torch.baddbmm(X, X @ A3, X, beta=2.0, alpha=-1.0)  # 2X - (X A) X
    X = X.reshape(*batch, n, m)

    if check and not torch.isfinite(X).all():
        raise PinvDivergenceError(_nonfinite_message(A, steps, alpha))
    if return_residual:
        return X, penrose_residual(A, X)
    return X


def _nonfinite_message(A: Tensor, steps: int, alpha: Alpha) -> str:
    """Why the iteration gave NaN/inf, and what to change (the hint depends on alpha)."""
    big = float(A.detach().abs().max())
    limit = torch.finfo(A.dtype).max ** 0.5  # A^T A (the first step) overflows past this
    if big >= limit / max(A.shape[-2:]):
        return (f"the Ben-Cohen iteration produced NaN/inf after {steps} steps: A has entries up to "
                f"{big:.3g}, so its Gram matrix overflows {A.dtype} (max {torch.finfo(A.dtype).max:.3g}); "
                f"scale A down (A^+ of c A is A^+ / c) or use float64")
    if alpha == "auto":
        return (f"the Ben-Cohen iteration produced NaN/inf after {steps} steps with alpha='auto' "
                f"(always inside the safe range): A is likely rank deficient and the extra steps "
                f"amplified rounding errors; use fewer steps or float64")
    return (f"the Ben-Cohen iteration produced NaN/inf after {steps} steps (alpha={alpha!r}); "
            "alpha may be too large for this precision, or A is rank deficient and the extra "
            "steps amplified rounding errors: use alpha='auto', a smaller alpha, fewer steps, or float64")


def penrose_residual(A: Tensor, X: Tensor) -> Tensor:
    """||A X A - A||_F / ||A||_F, shape (...): 0 iff X satisfies the first Penrose condition."""
    norm = torch.linalg.matrix_norm(A).clamp_min(torch.finfo(A.dtype).tiny)  # A = 0: residual 0
    return torch.linalg.matrix_norm(A @ X @ A - A) / norm


def ben_cohen_filter(sigma: Tensor, alpha, steps: int) -> Tensor:
    """The closed form of k Ben-Cohen steps on one singular value, f_k(sigma).

    f_k(sigma) = (1 - (1 - alpha sigma^2)^(2^k)) / sigma, and 0 where sigma = 0, so that
    X_k = V diag(f_k(sigma)) U^T for A = U diag(sigma) V^T. Evaluated as
    -expm1(2^k log|1 - alpha sigma^2|) / sigma (k >= 1) to avoid the cancellation of
    1 - (1 - x)^N for small x; `alpha` may be a float or a tensor broadcasting with sigma.
    """
    sigma = torch.as_tensor(sigma)
    x = alpha * sigma.square()
    if steps == 0:
        return alpha * sigma
    log_abs_r = torch.where(x < 1, torch.log1p(-x.clamp(max=1)), torch.log((x - 1).abs()))
    gain = -torch.expm1(2.0**steps * log_abs_r)  # = f_k(sigma) * sigma
    safe = torch.where(sigma == 0, torch.ones_like(sigma), sigma)
    return torch.where(sigma == 0, torch.zeros_like(sigma), gain / safe)


def make_pinv(
    method: str = "ben_cohen", steps: int = 7, alpha: Alpha = "auto", check: bool = False, cap: bool = False
) -> Callable[[Tensor], Tensor]:
    """A pseudo-inverse A -> A^+ to pass to `gpm.write` / `gpm.address`.

    method="ben_cohen": `ben_cohen_pinv` with these steps/alpha/check (the paper); cap=True
    caps a float alpha per matrix at `auto_alpha` (see `ben_cohen_pinv`);
    method="exact": torch.linalg.pinv (an SVD; the limit the iteration converges to).
    With check=False (the default here, as in training) a float alpha above 2/sigma_max^2
    is not detected: the result is finite garbage (see `ben_cohen_pinv`).
    """
    if method == "ben_cohen":
        _validate(steps, alpha)
        # the cap is for a float alpha; "auto" is already below the limit
        return functools.partial(ben_cohen_pinv, steps=steps, alpha=alpha, check=check, cap=cap and alpha != "auto")
    if method == "exact":
        return torch.linalg.pinv
    raise ValueError(f"unknown pinv method {method!r}; valid methods are 'ben_cohen', 'exact'")
