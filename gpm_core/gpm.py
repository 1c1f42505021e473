"""Generative Pseudo-Inverse Memory: the memory operations of Pham et al. (2022).

Pure tensor functions; a model (gpm_core.models) owns M0, sigma_w and the networks.
Shapes follow the paper: an episode Z is (..., T, C), the memory M0 and M are (..., K, C)
(M0 may also be an unbatched (K, C) parameter), weights W0 and W are (..., T, K).

Every pseudo-inverse is a callable `pinv(A) -> A^+` built by `gpm_core.pinv.make_pinv`,
so the paper's Ben-Cohen iteration with a fixed alpha, the per-matrix "auto" alpha and
the exact `torch.linalg.pinv` are interchangeable:

    pinv_M = make_pinv("ben_cohen", steps=7, alpha=1e-3)
    W0, M = write(add_write_noise(Z, 0.5), M0, pinv_M, pinv_M)
    W = address(Z, M, pinv_M)
    Z_read = read(sample_w(W, sigma_w), M)
"""

from __future__ import annotations

from typing import Callable, List, NamedTuple, Optional

import torch
from torch import Tensor

Pinv = Callable[[Tensor], Tensor]


def add_write_noise(
    Z: Tensor, sigma_xi: float, generator: Optional[torch.Generator] = None
) -> Tensor:
    """Z_xi = Z + xi with xi ~ N(0, sigma_xi^2 I) (Algorithm 1, writing line 2). (..., T, C)."""
    xi = torch.randn(Z.shape, generator=generator, dtype=Z.dtype, device=Z.device)
    return Z + sigma_xi * xi


def check_episode(Z: Tensor, M0: Tensor, who: str, z_name: str = "Z", m_name: str = "M0") -> None:
    """Raise ValueError unless Z (..., T, C) with T >= 1 and M0 (K, C) or (..., K, C) are
    floating-point tensors of one dtype and one code size C. Metadata only: no host sync."""
    for name, x in ((z_name, Z), (m_name, M0)):
        if not isinstance(x, Tensor) or x.ndim < 2 or not x.is_floating_point():
            got = f"shape {tuple(x.shape)}, {x.dtype}" if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{who}: {name} must be a floating-point tensor (..., rows, C), got {got}")
    if Z.shape[-2] == 0:
        raise ValueError(f"{who}: {z_name} has T = 0 codes (shape {tuple(Z.shape)}); an episode "
                         f"needs at least one code to write")
    if Z.shape[-1] != M0.shape[-1]:
        raise ValueError(f"{who}: code sizes differ: {z_name} {tuple(Z.shape)} has C = {Z.shape[-1]}, "
                         f"{m_name} {tuple(M0.shape)} has C = {M0.shape[-1]}; both end in the code size C")
    if Z.dtype != M0.dtype or Z.device != M0.device:
        raise ValueError(f"{who}: {z_name} is {Z.dtype} on {Z.device} but {m_name} is {M0.dtype} on "
                         f"{M0.device}; convert one, e.g. {z_name}.to({m_name})")


def write(Z_xi: Tensor, M0: Tensor, pinv_memory: Pinv, pinv_weight: Pinv,
          Z_address: Optional[Tensor] = None):
    """Algorithm 1, writing lines 3-4: returns (W0, M).

    W0 = Z_xi M0^+   (..., T, K): the min-norm least-squares solution of W0 M0 = Z_xi;
    M  = W0^+ Z_xi   (..., K, C): the min-norm least-squares solution of eq. 5,
                     min ||W0 M - Z_xi||_F.
    Z_xi (..., T, C); M0 (K, C) or (..., K, C). An unbatched M0 is inverted once.
    Z_address (..., T, C), default Z_xi: the codes that W0 is computed from (the authors'
    code adds a second draw of the writing noise there: W0 = (Z_xi + xi') M0^+).
    Raises ValueError for T = 0 or for sizes, dtypes or devices that do not match
    (`check_episode`; no host sync).
    """
    check_episode(Z_xi, M0, "gpm.write", "Z_xi")
    Z_address = Z_xi if Z_address is None else Z_address
    if Z_address.shape != Z_xi.shape:
        raise ValueError(f"gpm.write: Z_address {tuple(Z_address.shape)} must have the shape of "
                         f"Z_xi {tuple(Z_xi.shape)}")
    W0 = Z_address @ pinv_memory(M0)  # (..., T, C) @ (..., C, K) -> (..., T, K)
    M = pinv_weight(W0) @ Z_xi  # (..., K, T) @ (..., T, C) -> (..., K, C)
    return W0, M


def address(Z: Tensor, M: Tensor, pinv_memory: Pinv) -> Tensor:
    """Algorithm 1, reading line 2: the weight mean W = Z M^+, (..., T, K)."""
    return Z @ pinv_memory(M)


def read(W: Tensor, M: Tensor) -> Tensor:
    """Algorithm 1, reading line 4: Z_read = W M, (..., T, C)."""
    return W @ M


def sample_w(W_mean: Tensor, sigma_w, generator: Optional[torch.Generator] = None,
             shared: bool = False) -> Tensor:
    """A reparameterised sample of q(W) = N(W_mean, sigma_w^2 I) (reading line 3), (..., T, K).

    sigma_w: a float or a tensor broadcasting with W_mean (e.g. the learned scalar).
    shared=True draws ONE standard normal scalar for the whole tensor (the authors' code:
    `randn_like` of a 1-element std). That sample is not from q(W): `kl_w` still charges for
    i.i.d. noise, so a bound scored with it is not a bound of any q (book chapter 07).
    """
    shape = () if shared else W_mean.shape
    eps = torch.randn(shape, generator=generator, dtype=W_mean.dtype, device=W_mean.device)
    return W_mean + sigma_w * eps


def kl_w(W_mean: Tensor, sigma_w) -> Tensor:
    """KL(N(w_t, sigma_w^2 I_K) || N(0, I_K)) for every row w_t of W_mean, shape (..., T).

    The KL term of the ELBO, eq. 1 (the prior p(W) is N(0, I)):
    1/2 sum_k (sigma_w^2 + w_tk^2 - 1 - ln sigma_w^2). Sum over T for the episode's KL.
    """
    var = torch.as_tensor(sigma_w, dtype=W_mean.dtype, device=W_mean.device).square()
    return 0.5 * (var + W_mean.square() - 1.0 - var.log()).sum(-1)


def energy(Z: Tensor, W: Tensor, M: Tensor) -> Tensor:
    """The memory part of the GPM energy, eq. 7: ||e(x_t) - w_t M||^2 per row, (..., T).

    Z = e(X) (..., T, C), W (..., T, K), M (..., K, C). Sum over T for the episode's
    ||e(X) - W M||_F^2. Not included: the decoder term -ln p(x | w, M) of eq. 7, which
    needs the likelihood and is added by gpm_core.models, and the residual r, a constant
    after training. Each addressing step W = e(X) M^+ minimises this term over W.
    """
    return (Z - W @ M).square().sum(-1)


class ReadTrajectory(NamedTuple):
    """Iterative reading: X[0] is the query, X[i] the i-th read-out; W[i] addresses X[i]."""

    X: List[Tensor]
    W: List[Tensor]


def iterative_read(
    Xq: Tensor,
    M: Tensor,
    encode: Callable[[Tensor], Tensor],
    decode: Callable[[Tensor], Tensor],
    pinv_memory: Pinv,
    n_iters: int,
) -> ReadTrajectory:
    """Attractor dynamics by iterative reading (GPM section 2.4, DKM section 3.5).

    x_{i+1} = decode(address(encode(x_i), M) M): each step first minimises the energy
    over w (addressing), then over x (decode returns the mode of p(x | w M), e.g.
    torch.sign for +-1 patterns or a 0.5 threshold of Bernoulli means). With
    encode = identity and decode = torch.sign it runs on raw +-1 patterns, no networks.
    Reading uses the mean W (no sampling). Returns n_iters + 1 states and n_iters weights.
    """
    M_pinv = pinv_memory(M)  # the memory is fixed while reading: invert it once
    X, Ws = [Xq], []
    for _ in range(n_iters):
        W = encode(X[-1]) @ M_pinv  # (..., T, K)
        Ws.append(W)
        X.append(decode(read(W, M)))
    return ReadTrajectory(X=X, W=Ws)
