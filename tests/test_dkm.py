"""DKM memory operations against dense references: direct Gaussian conditioning of the
vectorised memory, ridge regression by lstsq, torch.distributions KL."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpm_core import dkm, gpm

F64 = torch.float64
FEW = settings(max_examples=10, deadline=None, derandomize=True)


def randn(*shape, seed=0):
    return torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(seed))


def random_spd(K, seed):
    A = randn(K, K, seed=seed)
    S = A @ A.mT / K + 0.5 * torch.eye(K, dtype=F64)
    return 0.5 * (S + S.mT)  # exactly symmetric


def vec(M):
    """Column-stacking vec: vec(M) = [M[:, 0]; M[:, 1]; ...], so cov vec(M) = I_C (x) U."""
    return M.mT.reshape(*M.shape[:-2], -1)


def dense_posterior(R0, U0, Z, W, sigma_xi):
    """Condition N(vec R0, I_C (x) U0) on z_t = M^T w_t + N(0, sigma_xi^2 I_C), densely."""
    (K, C), T = R0.shape, Z.shape[0]
    mu0, S0 = vec(R0), torch.kron(torch.eye(C, dtype=F64), U0)  # (KC,), (KC, KC)
    # y[t*C + c] = sum_k W[t, k] M[k, c] = H[t*C + c, c*K + k] vec(M)[c*K + k]
    H = torch.einsum("tk,cd->tcdk", W, torch.eye(C, dtype=F64)).reshape(T * C, C * K)
    y = Z.reshape(-1)
    S_y = H @ S0 @ H.mT + sigma_xi**2 * torch.eye(T * C, dtype=F64)
    G = torch.linalg.solve(S_y, H @ S0).mT  # S0 H^T S_y^-1
    return mu0 + G @ (y - H @ mu0), S0 - G @ H @ S0


@FEW
@given(K=st.integers(1, 4), C=st.integers(1, 4), T=st.integers(1, 5),
       sigma_xi=st.sampled_from([0.1, 0.5, 1.0]), seed=st.integers(0, 2**16))
def test_updates_equal_direct_gaussian_conditioning(K, C, T, sigma_xi, seed):
    R0, U0 = randn(K, C, seed=seed), random_spd(K, seed + 1)
    Z, W = randn(T, C, seed=seed + 2), randn(T, K, seed=seed + 3)
    mean, cov = dense_posterior(R0, U0, Z, W, sigma_xi)

    R_b, U_b = dkm.update_batch(R0, U0, Z, W, sigma_xi)
    R_s, U_s = R0, U0
    for t in range(T):
        R_s, U_s = dkm.update(R_s, U_s, Z[t], W[t], sigma_xi)
    for R, U in [(R_b, U_b), (R_s, U_s)]:
        torch.testing.assert_close(vec(R), mean)
        torch.testing.assert_close(torch.kron(torch.eye(C, dtype=F64), U), cov)


def test_sequential_equals_batch_update_with_batch_dims_and_shared_prior():
    K, C, T = 5, 7, 6
    R0, U0 = randn(K, C), random_spd(K, 1)  # unbatched prior, broadcast over (2, 3)
    Z, W = randn(2, 3, T, C, seed=2), randn(2, 3, T, K, seed=3)
    R_b, U_b = dkm.update_batch(R0, U0, Z, W, 0.5)
    R_s, U_s = R0, U0
    for t in range(T):
        R_s, U_s = dkm.update(R_s, U_s, Z[..., t, :], W[..., t, :], 0.5)
    assert R_s.shape == (2, 3, K, C) and U_s.shape == (2, 3, K, K)
    torch.testing.assert_close(R_s, R_b)
    torch.testing.assert_close(U_s, U_b)
    assert torch.equal(U_s, U_s.mT)  # eq. 20 keeps U exactly symmetric


def test_write_conditions_each_row_once_with_the_weights_it_returns():
    """DKM Algorithm 1: the written memory is the posterior given (Z, W) for the W it used,
    with or without the optional refinement passes (each z_t is counted once)."""
    K, C, T = 6, 8, 5
    R0, U0, Z = randn(K, C), torch.eye(K, dtype=F64), randn(3, T, C, seed=1)
    results = {}
    for refine in (0, 2):
        R, U, W = dkm.write(Z, R0, U0, 0.5, refine=refine)
        assert W.shape == (3, T, K)
        R_b, U_b = dkm.update_batch(R0, U0, Z, W, 0.5)
        torch.testing.assert_close(R, R_b)
        torch.testing.assert_close(U, U_b)
        results[refine] = W
    # the first weight is addressed with the prior mean; refinement changes it
    first = dkm.address(Z[..., :1, :], R0, 0.5)  # (3, 1, K)
    torch.testing.assert_close(results[0][..., :1, :], first)
    assert not torch.allclose(results[0], results[2])


def _ridge(z, M, sigma_xi):
    """argmin ||z - M^T w||^2 + sigma_xi^2 ||w||^2 by lstsq on the stacked system."""
    K = M.shape[-2]
    A = torch.cat([M.mT, sigma_xi * torch.eye(K, dtype=M.dtype)], dim=-2)
    return torch.linalg.lstsq(A, torch.cat([z, torch.zeros(K, dtype=M.dtype)]).unsqueeze(-1)).solution[:, 0]


@FEW
@given(K=st.integers(1, 6), C=st.integers(1, 8), T=st.integers(1, 6),
       sigma_xi=st.sampled_from([0.1, 0.5, 1.0]), seed=st.integers(0, 2**16))
def test_write_addresses_each_image_with_the_memory_before_it(K, C, T, sigma_xi, seed):
    """Algorithm 1, writing: w_t is the ridge address (eq. 6, by lstsq) of z_t in the posterior
    mean after z_1..z_{t-1} (the batch Kalman update with the weights write returned)."""
    R0, U0, Z = randn(K, C, seed=seed), random_spd(K, seed + 1), randn(2, T, C, seed=seed + 2)
    _, _, W = dkm.write(Z, R0, U0, sigma_xi)
    for b in range(2):
        for t in range(T):
            R_t = dkm.update_batch(R0, U0, Z[b, :t], W[b, :t], sigma_xi)[0] if t else R0
            torch.testing.assert_close(W[b, t], _ridge(Z[b, t], R_t, sigma_xi))


def _textbook_write(Z, R0, U0, sigma_xi):
    """Algorithm 1 as the papers state it: address z_t with the current mean (`address`, a
    Cholesky solve of R R^T + sigma_xi^2 I), then `update`."""
    R, U, Ws = R0, U0, []
    for t in range(Z.shape[-2]):
        w = dkm.address(Z[..., t:t + 1, :], R, sigma_xi)[..., 0, :]
        R, U = dkm.update(R, U, Z[..., t, :], w, sigma_xi)
        Ws.append(w)
    return R, U, torch.stack(Ws, dim=-2)


def test_write_values_and_gradients_equal_the_textbook_loop():
    K, C, T = 5, 9, 7
    Z, R0, log_s = randn(3, T, C, seed=4), randn(K, C, seed=5), torch.tensor(0.2, dtype=F64)
    grads = []
    for write in (dkm.write, _textbook_write):
        Zg, Rg, sg = (x.clone().requires_grad_() for x in (Z, R0, log_s))
        R, U, W = write(Zg, Rg, sg.exp() * torch.eye(K, dtype=F64), 0.7)
        loss = (R.sin().sum() + U.square().sum() + (W ** 3).sum())
        grads.append((R, U, W, *torch.autograd.grad(loss, (Zg, Rg, sg))))
    for got, want in zip(*grads):
        torch.testing.assert_close(got, want)


def test_write_in_float32_stays_close_to_float64():
    """The inverse carried through T rank-one updates (Woodbury) does not drift: the memory
    sizes of GPM appendix C, T = 32 (64 for the smaller), sigma_xi = 1 as in the configs."""
    for K, C, T in ((32, 100, 64), (128, 512, 32)):
        Z, R0 = 3 * randn(4, T, C, seed=6), randn(K, C, seed=7)
        R64, U64, W64 = dkm.write(Z, R0, torch.eye(K, dtype=F64), 1.0)
        R32, U32, W32 = dkm.write(Z.float(), R0.float(), torch.eye(K), 1.0)
        for a, b in ((R32, R64), (U32, U64), (W32, W64)):
            assert ((a.double() - b).norm() / b.norm()).item() < 1e-5


@FEW
@given(K=st.integers(1, 6), C=st.integers(1, 8), T=st.integers(1, 4),
       sigma_xi=st.sampled_from([0.01, 0.5, 2.0]), seed=st.integers(0, 2**16))
def test_address_is_ridge_regression(K, C, T, sigma_xi, seed):
    """eq. 6 = argmin ||z - M^T w||^2 + sigma_xi^2 ||w||^2, solved as the stacked least-squares
    problem [M^T; sigma_xi I] w = [z; 0]."""
    Z, M = randn(2, T, C, seed=seed), randn(2, K, C, seed=seed + 1)
    A = torch.cat([M.mT, sigma_xi * torch.eye(K, dtype=F64).expand(2, K, K)], dim=-2)
    b = torch.cat([Z.mT, torch.zeros(2, K, T, dtype=F64)], dim=-2)
    expected = torch.linalg.lstsq(A, b).solution.mT  # (2, T, K)
    torch.testing.assert_close(dkm.address(Z, M, sigma_xi), expected)


def test_address_tends_to_the_gpm_address_as_sigma_xi_vanishes():
    Z, M = randn(3, 5, 12), randn(3, 6, 12, seed=1)  # M full row rank
    W_gpm = gpm.address(Z, M, torch.linalg.pinv)
    errors = [(dkm.address(Z, M, s) - W_gpm).norm().item() for s in (1e-1, 1e-2, 1e-3, 1e-5)]
    assert all(b < a for a, b in zip(errors, errors[1:])) and errors[-1] < 1e-8


@FEW
@given(K=st.integers(1, 4), C=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_kl_memory_matches_multivariate_normal(K, C, seed):
    R, R0 = randn(2, K, C, seed=seed), randn(K, C, seed=seed + 1)
    U = torch.stack([random_spd(K, seed + 2), random_spd(K, seed + 3)])
    U0 = random_spd(K, seed + 4)
    I_C = torch.eye(C, dtype=F64)
    q = torch.distributions.MultivariateNormal(
        vec(R), torch.stack([torch.kron(I_C, U[i]) for i in range(2)]))
    p = torch.distributions.MultivariateNormal(vec(R0), torch.kron(I_C, U0))
    torch.testing.assert_close(dkm.kl_memory(R, U, R0, U0), torch.distributions.kl_divergence(q, p))
    torch.testing.assert_close(dkm.kl_memory(R0, U0, R0, U0), torch.zeros((), dtype=F64))


def test_kl_w_is_the_gpm_one():
    assert dkm.kl_w is gpm.kl_w


def test_iterative_read_cleans_up_corrupted_pm1_patterns():
    """DKM section 3.5 on raw +-1 patterns (encode = identity, decode = sign)."""
    T, K, C, sigma_xi = 4, 16, 64, 0.1
    patterns = torch.where(randn(T, C) > 0, 1.0, -1.0).to(F64)
    R, _, _ = dkm.write(patterns, randn(K, C, seed=1), torch.eye(K, dtype=F64), sigma_xi)
    flip = torch.rand(T, C, generator=torch.Generator().manual_seed(2)) < 0.15
    query = torch.where(flip, -patterns, patterns)
    traj = dkm.iterative_read(query, R, lambda x: x, torch.sign, sigma_xi, n_iters=5)
    assert len(traj.X) == 6 and len(traj.W) == 5 and traj.W[0].shape == (T, K)
    errors = [(x != patterns).sum().item() for x in traj.X]
    assert all(b <= a for a, b in zip(errors, errors[1:])) and errors[0] > 20 and errors[-1] == 0
