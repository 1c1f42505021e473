"""The Dynamic Kanerva Machine: the memory operations of Wu et al. (2018).

The memory is a matrix-normal random variable M ~ MN(R, U, I_C): mean R (..., K, C),
row covariance U (..., K, K), independent columns, i.e. vec(M) ~ N(vec(R), I_C (x) U).
A code z (C,) is read as z = M^T w + xi with xi ~ N(0, sigma_xi^2 I_C); in this package's
row convention an episode Z (..., T, C) is read as Z = W M + noise with W (..., T, K),
exactly as in gpm_core.gpm. As in the paper, M is approximated by its mean R when
addressing and reading (DKM section 3, appendix A).

Pure tensor functions; gpm_core.models owns R0, U0 = sigma_u^2 I, sigma_w, the networks.
Cholesky factors use torch.linalg.cholesky_ex (no host sync), so `address`, `update`,
`update_batch` and `kl_memory` never raise on a matrix that is not positive definite:
sigma_xi = 0 with a rank-deficient M, or a degenerate U, gives NaN or, when the
factorisation happens to finish numerically, FINITE WRONG VALUES. `write` checks what is
cheap: shapes, dtypes, T >= 1 and sigma_xi > 0 always, and that U0 is symmetric positive
definite when that costs no host sync (U0 on the CPU) or when asked (`check=True`). Keep
sigma_xi > 0; the trainer's NaN/inf guard stops a run that gets there.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

from gpm_core.gpm import ReadTrajectory, check_episode, kl_w  # noqa: F401  (kl_w is DKM's KL term too)


def _cholesky(A: Tensor) -> Tensor:
    return torch.linalg.cholesky_ex(A)[0]


def _eye(n: int, like: Tensor) -> Tensor:
    return torch.eye(n, dtype=like.dtype, device=like.device)


def address(Z: Tensor, M: Tensor, sigma_xi: float) -> Tensor:
    """Dynamic addressing, eq. 6: mu_w = (M M^T + sigma_xi^2 I)^-1 M z for every row z of Z.

    Z (..., T, C), M (..., K, C) -> mu_w (..., T, K). The ridge solution of
    min ||z - M^T w||^2 + sigma_xi^2 ||w||^2 (DKM appendix D; GPM eq. 6), computed with a
    Cholesky solve. It tends to the GPM address Z M^+ as sigma_xi -> 0 when M has full row
    rank (GPM Theorem D.5). The paper prints eq. 6 as M^T d(x); with z = M^T w and the
    encoder e, the dimensionally consistent form is M e(x), used here.
    """
    K = M.shape[-2]
    L = _cholesky(M @ M.mT + sigma_xi**2 * _eye(K, M))  # (..., K, K)
    return torch.cholesky_solve(M @ Z.mT, L).mT  # (..., K, T) -> (..., T, K)


def update(R: Tensor, U: Tensor, z: Tensor, w: Tensor, sigma_xi: float):
    """One Bayesian memory update given a code z (..., C) and its weight w (..., K).

    DKM appendix A, eqs. 16-20 (the Kanerva Machine's rule):
        Delta   = z - R^T w                    (..., C)
        Sigma_c = U w                          (..., K)
        Sigma_z = w^T U w + sigma_xi^2         (...)
        R      <- R + Sigma_c Sigma_z^-1 Delta^T
        U      <- U - Sigma_c Sigma_z^-1 Sigma_c^T
    Returns the posterior (R, U): (..., K, C), (..., K, K).
    """
    delta = z - (w.unsqueeze(-2) @ R).squeeze(-2)  # (..., C)
    sigma_c = (U @ w.unsqueeze(-1)).squeeze(-1)  # (..., K)
    sigma_z = (w * sigma_c).sum(-1) + sigma_xi**2  # (...)
    R = R + (sigma_c / sigma_z.unsqueeze(-1)).unsqueeze(-1) * delta.unsqueeze(-2)
    # (c_i c_j) / s is exactly symmetric in floating point, so U stays symmetric
    U = U - sigma_c.unsqueeze(-1) * sigma_c.unsqueeze(-2) / sigma_z[..., None, None]
    return R, U


def update_batch(R: Tensor, U: Tensor, Z: Tensor, W: Tensor, sigma_xi: float):
    """The posterior of MN(R, U, I_C) conditioned on all T rows of Z = W M + noise at once.

    GPM appendix H form (the Kalman update with T observations):
        S = W U W^T + sigma_xi^2 I_T                    (..., T, T)
        R <- R + U W^T S^-1 (Z - W R)
        U <- U - U W^T S^-1 W U
    with one Cholesky solve. Equals T sequential `update`s with the same rows of W.
    Z (..., T, C), W (..., T, K).
    """
    T = Z.shape[-2]
    sigma_c = U @ W.mT  # (..., K, T)
    L = _cholesky(W @ sigma_c + sigma_xi**2 * _eye(T, Z))  # (..., T, T)
    gain = torch.cholesky_solve(sigma_c.mT, L).mT  # U W^T S^-1  (..., K, T)
    R = R + gain @ (Z - W @ R)
    U = U - gain @ sigma_c.mT
    return R, 0.5 * (U + U.mT)


def _check_write(Z: Tensor, R0: Tensor, U0: Tensor, sigma_xi: float, check: bool | None) -> None:
    check_episode(Z, R0, "dkm.write", "Z", "R0")
    K = R0.shape[-2]
    if not isinstance(U0, Tensor) or U0.ndim < 2 or U0.shape[-2:] != (K, K) or U0.dtype != R0.dtype:
        got = f"{tuple(U0.shape)} {U0.dtype}" if isinstance(U0, Tensor) else type(U0).__name__
        raise ValueError(f"dkm.write: U0 must be ({K}, {K}) or (..., {K}, {K}) of dtype {R0.dtype} "
                         f"(K = {K} rows of R0), got {got}")
    if not float(sigma_xi) > 0:
        raise ValueError(f"dkm.write: sigma_xi = {sigma_xi!r}; the observation noise must be > 0")
    if check or (check is None and U0.device.type == "cpu"):  # a host sync on a GPU
        U = U0.detach()
        info = torch.linalg.cholesky_ex(0.5 * (U + U.mT))[1]
        if (info != 0).any() or not torch.allclose(U, U.mT, rtol=1e-5, atol=1e-6):
            raise ValueError("dkm.write: U0 is not a symmetric positive definite covariance; the "
                             "prior row covariance of the memory must be, e.g. sigma_u^2 I")


def write(Z: Tensor, R0: Tensor, U0: Tensor, sigma_xi: float, refine: int = 0, *,
          check: bool | None = None):
    """DKM Algorithm 1, writing: returns (R, U, W).

    For t = 1..T: address z_t with the current mean R (eq. 6), then `update` (R, U) with
    (z_t, mu_w_t). `refine` extra passes re-address z_t with the updated mean and redo the
    update from the memory before z_t (the "optional" step; as the authors' reference
    code, num_opt_iters = 1 + refine, so z_t is counted once). Vectorised over the batch
    dims; the loop over T is inherent to DKM.
    Z (..., T, C), R0 (K, C) or (..., K, C), U0 (K, K) or (..., K, K);
    W (..., T, K) holds the weights mu_w_t used to write each row.
    Raises ValueError for T = 0, mismatched sizes or dtypes, sigma_xi <= 0, and a U0 that is
    not symmetric positive definite. That last check needs the values: it runs when
    check=True, or with check=None (default) when U0 is on the CPU (free there); on a GPU
    with check=None it is skipped (a host sync per call) and a U0 that is not positive
    definite gives finite wrong numbers, not an error.
    """
    _check_write(Z, R0, U0, sigma_xi, check)
    K = R0.shape[-2]
    R, U = R0, U0
    # Addressing needs (R R^T + sigma_xi^2 I)^-1 after every update of R. Each update is rank
    # one, R' = R + a d^T (a = Sigma_c / Sigma_z, d = Delta), so R' R'^T = R R^T + V S V^T with
    # V = [a, b], b = R d, S = [[||d||^2, 1], [1, 0]], and the inverse H follows by the Woodbury
    # identity in O(K^2): no K x K factorisation and no K x K x C product per image. Matrix-vector
    # products are written with the vector on the left (row @ matrix): batched column products
    # take a slow path in PyTorch's CPU matmul. For the 128 x 512 memories of the real-valued
    # models this halves the write's forward and backward time and makes a DKM FashionMNIST
    # training step about 1.2 times faster (benchmarks/dkm_write.py); 32 x 100 gains little.
    H = torch.cholesky_inverse(_cholesky(R0 @ R0.mT + sigma_xi**2 * _eye(K, R0)))
    Ws = []
    for t in range(Z.shape[-2]):
        z = Z[..., t, :].unsqueeze(-2)  # (..., 1, C)
        R_t, U_t, H_t = R, U, H
        for _ in range(1 + refine):
            w = (z @ R_t.mT) @ H_t  # eq. 6 as a row, (..., 1, K)
            R_t, U_t, H_t = _update_inverse(R, U, H, z, w, sigma_xi)
        R, U, H = R_t, U_t, H_t
        Ws.append(w.squeeze(-2))
    return R, U, torch.stack(Ws, dim=-2)


def _update_inverse(R: Tensor, U: Tensor, H: Tensor, z: Tensor, w: Tensor, sigma_xi: float):
    """`update` for a row z (..., 1, C) and its weight w (..., 1, K), also carrying
    H = (R R^T + sigma_xi^2 I)^-1 to the new mean (Woodbury, see `write`). U and H are
    symmetric, so w U = (U w)^T."""
    delta = z - w @ R  # (..., 1, C)
    sigma_c = w @ U  # (..., 1, K)
    sigma_z = (w * sigma_c).sum(-1, keepdim=True) + sigma_xi**2  # (..., 1, 1)
    a = sigma_c / sigma_z  # (..., 1, K)
    b = delta @ R.mT  # R delta, (..., 1, K)
    Ha, Hb = a @ H, b @ H
    # S^-1 + V^T H V with S^-1 = [[0, 1], [1, -||delta||^2]], inverted in closed form
    s11 = (a * Ha).sum(-1, keepdim=True)
    s12 = (a * Hb).sum(-1, keepdim=True) + 1.0
    s22 = (b * Hb).sum(-1, keepdim=True) - delta.square().sum(-1, keepdim=True)
    det = s11 * s22 - s12 * s12
    H = H - (Ha.mT * ((s22 * Ha - s12 * Hb) / det) + Hb.mT * ((s11 * Hb - s12 * Ha) / det))
    H = 0.5 * (H + H.mT)
    R = R + a.mT * delta
    U = U - sigma_c.mT * sigma_c / sigma_z
    return R, U, H


def read(W: Tensor, R: Tensor) -> Tensor:
    """Read with the memory mean, Z_r = W R (DKM appendix A), (..., T, C)."""
    return W @ R


def kl_memory(R: Tensor, U: Tensor, R0: Tensor, U0: Tensor) -> Tensor:
    """KL(MN(R, U, I_C) || MN(R0, U0, I_C)), shape (...): the memory KL of DKM eq. 4.

    = 1/2 [C tr(U0^-1 U) + tr((R - R0)^T U0^-1 (R - R0)) - K C + C ln det U0 - C ln det U],
    the KL between the vectorised Gaussians N(vec R, I_C (x) U) and N(vec R0, I_C (x) U0),
    via Cholesky factors. (The authors' code keeps only the diagonals of U and U0.)
    """
    K, C = R.shape[-2:]
    L, L0 = _cholesky(U), _cholesky(U0)

    def whiten(B):  # L0^-1 B, so that ||L0^-1 B||_F^2 = tr(B^T U0^-1 B)
        return torch.linalg.solve_triangular(L0, B, upper=False)

    def logdet(L_):
        return 2.0 * L_.diagonal(dim1=-2, dim2=-1).log().sum(-1)

    trace = whiten(L).square().sum((-2, -1))  # tr(U0^-1 U), as U = L L^T
    mahalanobis = whiten(R - R0).square().sum((-2, -1))
    return 0.5 * (C * trace + mahalanobis - K * C + C * (logdet(L0) - logdet(L)))


def iterative_read(
    Xq: Tensor,
    M: Tensor,
    encode: Callable[[Tensor], Tensor],
    decode: Callable[[Tensor], Tensor],
    sigma_xi: float,
    n_iters: int,
) -> ReadTrajectory:
    """DKM section 3.5 attractor dynamics: x_{n+1} = decode(address(encode(x_n), M) M).

    Addressing with eq. 6 minimises the energy (eq. 14) over w, decode returns the mode of
    p(x | w, M) (e.g. torch.sign for +-1 patterns, rounded sigmoid for Bernoulli); M is the
    memory mean R. Returns X (n_iters + 1 states, X[0] = Xq) and W (n_iters weights).
    """
    X, Ws = [Xq], []
    for _ in range(n_iters):
        W = address(encode(X[-1]), M, sigma_xi)  # (..., T, K)
        Ws.append(W)
        X.append(decode(read(W, M)))
    return ReadTrajectory(X=X, W=Ws)
