"""GPM memory operations against dense least squares (torch.linalg.lstsq, gelsd = the
min-norm solution), Corollary 2.3, and attractor dynamics on raw +-1 patterns."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpm_core import gpm
from gpm_core.pinv import make_pinv

F64 = torch.float64
FEW = settings(max_examples=12, deadline=None, derandomize=True)
EXACT = make_pinv("exact")


def min_norm_lstsq(A, B):
    """argmin ||A X - B||_F of minimum norm, by LAPACK gelsd (SVD-based, rank-revealing)."""
    return torch.linalg.lstsq(A, B, driver="gelsd").solution


def randn(*shape, seed=0):
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


@FEW
@given(
    T=st.integers(1, 8),
    K=st.integers(1, 8),
    C=st.integers(1, 10),
    batch=st.lists(st.integers(1, 3), max_size=2).map(tuple),
    batched_memory=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_write_and_address_are_min_norm_least_squares(T, K, C, batch, batched_memory, seed):
    Z_xi = randn(*batch, T, C, seed=seed)
    M0 = randn(*(batch if batched_memory else ()), K, C, seed=seed + 1)
    W0, M = gpm.write(Z_xi, M0, EXACT, EXACT)
    assert W0.shape == (*batch, T, K) and M.shape == (*batch, K, C)
    # W0 solves W0 M0 = Z_xi, i.e. M0^T W0^T = Z_xi^T; M solves W0 M = Z_xi (eq. 5)
    M0b = M0.expand(*batch, K, C)
    torch.testing.assert_close(W0, min_norm_lstsq(M0b.mT, Z_xi.mT).mT)
    torch.testing.assert_close(M, min_norm_lstsq(W0, Z_xi))
    Z = randn(*batch, T, C, seed=seed + 2)
    W = gpm.address(Z, M, EXACT)
    torch.testing.assert_close(W, min_norm_lstsq(M.mT, Z.mT).mT)
    torch.testing.assert_close(gpm.read(W, M), W @ M)


def test_converged_ben_cohen_matches_the_exact_pinv_on_gpm_shapes():
    Z_xi, M0 = randn(4, 8, 10), randn(6, 10, seed=1)  # W0 (8, 6) tall, M0 (6, 10) wide
    bc = make_pinv("ben_cohen", steps=40, alpha="auto", check=True)
    for a, b in zip(gpm.write(Z_xi, M0, bc, bc), gpm.write(Z_xi, M0, EXACT, EXACT)):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("T,K,C", [(4, 6, 10), (6, 6, 10), (5, 12, 8)])
def test_corollary_2_3_exact_retrieval(T, K, C):
    """rank W0 = rank Z = T => W M = Z, for the noiseless write (Z_xi = Z)."""
    Z, M0 = randn(3, T, C), randn(K, C, seed=1)
    W0, M = gpm.write(Z, M0, EXACT, EXACT)
    assert (torch.linalg.matrix_rank(W0) == T).all() and (torch.linalg.matrix_rank(Z) == T).all()
    torch.testing.assert_close(gpm.read(gpm.address(Z, M, EXACT), M), Z)


def test_with_write_noise_reading_projects_onto_the_noisy_rows():
    """With xi != 0 (and T < C), the read-out of the clean Z is its projection onto the row
    space of Z_xi, W M = Z Z_xi^+ Z_xi, not Z: Corollary 2.3 needs Z_xi Z_xi^+ = I *and*
    Z_xi^+ Z_xi = I. Reading the written Z_xi itself is exact."""
    Z, M0 = randn(2, 4, 10), randn(6, 10, seed=1)
    Z_xi = gpm.add_write_noise(Z, 0.5, generator=torch.Generator().manual_seed(2))
    _, M = gpm.write(Z_xi, M0, EXACT, EXACT)
    Q = torch.linalg.qr(Z_xi.mT)[0]  # (..., C, T) orthonormal basis of the rows of Z_xi
    torch.testing.assert_close(gpm.read(gpm.address(Z, M, EXACT), M), Z @ Q @ Q.mT)
    torch.testing.assert_close(gpm.read(gpm.address(Z_xi, M, EXACT), M), Z_xi)
    assert (gpm.read(gpm.address(Z, M, EXACT), M) - Z).norm() > 0.1


def test_write_noise_and_sample_w_statistics_and_reproducibility():
    Z = torch.zeros(200, 50, dtype=F64)
    noise = gpm.add_write_noise(Z, 0.5, generator=torch.Generator().manual_seed(0))
    assert abs(noise.std().item() - 0.5) < 0.01 and abs(noise.mean().item()) < 0.01
    again = gpm.add_write_noise(Z, 0.5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noise, again)
    W_mean = torch.full((200, 50), 2.0, dtype=F64)
    sigma_w = torch.tensor(0.3, dtype=F64, requires_grad=True)
    W = gpm.sample_w(W_mean, sigma_w, generator=torch.Generator().manual_seed(1))
    assert abs(W.mean().item() - 2.0) < 0.01 and abs(W.std().item() - 0.3) < 0.01
    W.sum().backward()  # reparameterised: the sample is differentiable in sigma_w
    assert sigma_w.grad is not None


@pytest.mark.parametrize("sigma_w", [0.3, torch.tensor(0.7, dtype=F64)])
def test_kl_w_matches_torch_distributions(sigma_w):
    W_mean = randn(2, 5, 4)
    q = torch.distributions.Normal(W_mean, torch.as_tensor(sigma_w, dtype=F64))
    p = torch.distributions.Normal(torch.zeros_like(W_mean), 1.0)
    expected = torch.distributions.kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gpm.kl_w(W_mean, sigma_w), expected)


def test_address_minimises_the_energy():
    """For a fixed query, W = Z M^+ minimises ||Z - W M||^2 (the memory part of eq. 7)."""
    Z, M = randn(6, 10), randn(8, 10, seed=1)
    W = gpm.address(Z, M, EXACT)
    E = gpm.energy(Z, W, M)
    assert E.shape == (6,)
    for seed in range(5):
        assert (gpm.energy(Z, W + 0.1 * randn(6, 8, seed=seed), M) >= E - 1e-12).all()


def test_iterative_read_cleans_up_corrupted_pm1_patterns():
    """encode = identity, decode = sign: stored +-1 patterns are attractors (no networks)."""
    T, K, C = 4, 16, 64
    patterns = torch.where(randn(T, C) > 0, 1.0, -1.0).to(F64)
    _, M = gpm.write(patterns, randn(K, C, seed=1), EXACT, EXACT)
    flip = torch.rand(T, C, generator=torch.Generator().manual_seed(2)) < 0.15
    query = torch.where(flip, -patterns, patterns)
    traj = gpm.iterative_read(query, M, lambda x: x, torch.sign, EXACT, n_iters=3)
    assert len(traj.X) == 4 and len(traj.W) == 3 and traj.W[0].shape == (T, K)
    assert torch.equal(traj.X[0], query)
    assert torch.equal(traj.X[-1], patterns)
    # a stored pattern is a fixed point
    fixed = gpm.iterative_read(patterns, M, lambda x: x, torch.sign, EXACT, n_iters=1)
    assert torch.equal(fixed.X[1], patterns)
