"""Ben-Cohen pseudo-inverse against independent references: the closed spectral filter of
a matrix built from its SVD, torch.linalg.pinv, the four Penrose conditions, gradcheck."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gpm_core.pinv import (
    PinvDivergenceError,
    auto_alpha,
    ben_cohen_filter,
    ben_cohen_pinv,
    capped_alpha,
    make_pinv,
    penrose_residual,
    sigma_max_sq_bound,
)

F64 = torch.float64
FEW = settings(max_examples=12, deadline=None, derandomize=True)
batch_dims = st.lists(st.integers(1, 3), max_size=2).map(tuple)


def orthonormal(rows, cols, gen):
    """A (rows, cols) matrix with orthonormal columns (QR of a Gaussian)."""
    return torch.linalg.qr(torch.randn(rows, cols, dtype=F64, generator=gen))[0]


def from_svd(sigma, m, n, seed, batch=()):
    """A = U diag(sigma) V^T of shape (*batch, m, n) with the given singular values."""
    gen = torch.Generator().manual_seed(seed)
    r = sigma.shape[-1]
    U = torch.stack([orthonormal(m, r, gen) for _ in range(math.prod(batch))]).reshape(*batch, m, r)
    V = torch.stack([orthonormal(n, r, gen) for _ in range(math.prod(batch))]).reshape(*batch, n, r)
    return (U * sigma) @ V.mT, U, V


def rel(X, Y):
    return (torch.linalg.matrix_norm(X - Y) / torch.linalg.matrix_norm(Y)).max().item()


@FEW
@given(
    m=st.integers(1, 9),
    n=st.integers(1, 9),
    batch=batch_dims,
    log_cond=st.floats(0, 4),
    scale=st.sampled_from([1e-2, 1.0, 30.0]),
    c=st.sampled_from([0.3, 1.0, 1.9]),
    seed=st.integers(0, 2**16),
)
def test_k_steps_equal_the_closed_spectral_filter(m, n, batch, log_cond, scale, c, seed):
    r = min(m, n)
    sigma = scale * torch.logspace(0, -log_cond, r, dtype=F64)  # cond up to 1e4
    A, U, V = from_svd(sigma, m, n, seed, batch)
    alpha = c / scale**2  # alpha * sigma_max^2 = c
    for k in (0, 1, 3, 7, 12):
        expected = (V * ben_cohen_filter(sigma, alpha, k)) @ U.mT  # V diag(f_k) U^T
        assert rel(ben_cohen_pinv(A, k, alpha), expected) < 1e-9, k


def test_filter_closed_form_values():
    sigma = torch.tensor([0.0, 0.5, 1.0, 2.0], dtype=F64)
    alpha, k = 0.3, 3
    direct = (1 - (1 - alpha * sigma[1:] ** 2) ** (2**k)) / sigma[1:]
    f = ben_cohen_filter(sigma, alpha, k)
    assert f[0] == 0
    torch.testing.assert_close(f[1:], direct, rtol=1e-12, atol=0)
    torch.testing.assert_close(ben_cohen_filter(sigma, alpha, 0), alpha * sigma)


@FEW
@given(
    m=st.integers(1, 10),
    n=st.integers(1, 10),
    batch=batch_dims,
    log_cond=st.floats(0, 4),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    seed=st.integers(0, 2**16),
)
def test_converged_iteration_is_the_pseudo_inverse(m, n, batch, log_cond, scale, seed):
    sigma = scale * torch.logspace(0, -log_cond, min(m, n), dtype=F64)
    A, _, _ = from_svd(sigma, m, n, seed, batch)
    # alpha * sigma_min^2 >= 1.75e-8, so 2^k alpha sigma_min^2 > 30 needs k = 31
    X = ben_cohen_pinv(A, steps=34)
    assert rel(X, torch.linalg.pinv(A)) < 1e-8
    # the four Penrose conditions (GPM definition D.1)
    tol = 1e-9
    assert rel(A @ X @ A, A) < tol
    assert rel(X @ A @ X, X) < tol
    AX, XA = A @ X, X @ A
    assert rel(AX.mT, AX) < tol and rel(XA.mT, XA) < tol
    assert penrose_residual(A, X).max() < tol


@FEW
@given(
    m=st.integers(1, 12),
    n=st.integers(1, 12),
    batch=batch_dims,
    log_scale=st.floats(-3, 3),
    dtype=st.sampled_from([torch.float32, F64]),
    seed=st.integers(0, 2**16),
)
def test_auto_alpha_is_in_the_safe_range(m, n, batch, log_scale, dtype, seed):
    gen = torch.Generator().manual_seed(seed)
    A = (10**log_scale * torch.randn(*batch, m, n, generator=gen, dtype=F64)).to(dtype)
    smax2 = torch.linalg.matrix_norm(A.double(), ord=2).square()
    assert (sigma_max_sq_bound(A).double() >= smax2 * (1 - 1e-5)).all()
    for method in ("power", "fro"):
        alpha = auto_alpha(A, method)
        assert alpha.shape == (*batch, 1, 1)
        ratio = alpha[..., 0, 0].double() * smax2
        assert (ratio > 0).all() and (ratio <= 1.8 * (1 + 1e-5)).all()
    # the power bound overestimates sigma_max^2 by at most rank^(1/32) (here < 1.09)
    assert (auto_alpha(A)[..., 0, 0].double() * smax2 >= 1.8 / 12 ** (1 / 32) * (1 - 1e-5)).all()


def test_zero_matrix():
    A = torch.zeros(2, 3, 4)
    assert (auto_alpha(A) == 1).all()
    assert (ben_cohen_pinv(A) == 0).all()
    assert (penrose_residual(A, A.mT) == 0).all()


def test_power_alpha_beats_frobenius_on_a_gpm_memory():
    A = torch.randn(32, 100, dtype=F64, generator=torch.Generator().manual_seed(0))
    P = torch.linalg.pinv(A)
    err = {m: rel(ben_cohen_pinv(A, 7, float(auto_alpha(A, m))), P) for m in ("power", "fro")}
    assert err["power"] < 1e-8 < 1e-2 < err["fro"]


def rank_deficient(seed=0):
    """A 12 x 8 float64 matrix of rank 4 with singular values in [1, 2]."""
    sigma = torch.linspace(2, 1, 4, dtype=F64)
    return from_svd(sigma, 12, 8, seed)[0]


def test_extra_steps_double_the_error_on_a_rank_deficient_float32_matrix():
    """Once converged, rounding errors in the null-space block double at every step."""
    A64 = rank_deficient()
    A, P = A64.float(), torch.linalg.pinv(A64)  # the reference ignores float32 rounding noise
    err = [rel(ben_cohen_pinv(A, k, check=False).double(), P) for k in range(31)]
    converged = min(range(31), key=err.__getitem__)
    assert converged <= 7 and err[converged] < 1e-5
    ratios = [err[k + 1] / err[k] for k in range(converged + 2, 30)]
    assert all(1.8 < r < 2.2 for r in ratios), ratios
    assert err[30] > 1.0  # 2^23 times the converged error: useless
    # the defaults stay on the safe side: 7 steps, auto alpha, < 2^7 * eps_32 * 10
    assert rel(ben_cohen_pinv(A).double(), P) < 2**7 * torch.finfo(torch.float32).eps * 10
    # and 200 steps overflow, which check=True reports
    with pytest.raises(PinvDivergenceError, match="NaN/inf after 200 steps"):
        ben_cohen_pinv(A, 200)


def test_full_rank_rectangular_matrices_do_not_drift():
    """GPM's M0 (wide) and W0 (tall, T > K) have no null-space block: extra steps are harmless."""
    gen = torch.Generator().manual_seed(1)
    for shape in [(8, 20), (20, 8)]:
        A = torch.randn(*shape, generator=gen)
        P = torch.linalg.pinv(A.double())
        assert rel(ben_cohen_pinv(A, 40).double(), P) < 1e-5


def test_alpha_two_over_sum_of_squares_diverges_in_float32():
    """alpha = 2/(s_max^2 + s_min^2) is optimal in exact arithmetic, but with cond 1e4 it is
    2/s_max^2 to float32 precision: |1 - alpha s_max^2| = 1, so the top singular value never
    converges; depending on rounding X then stalls or overflows (seed 0: NaN at ~30 steps)."""
    sigma = torch.logspace(0, -4, 16, dtype=F64)
    A64 = from_svd(sigma, 16, 16, seed=0)[0]
    A = A64.float()
    alpha = 2 / (sigma[0] ** 2 + sigma[-1] ** 2).item()
    X = ben_cohen_pinv(A, 40, alpha, check=False)
    assert not torch.isfinite(X).all() or penrose_residual(A, X) > 0.5
    with pytest.raises(PinvDivergenceError) as info:
        ben_cohen_pinv(A, 40, alpha)
    msg = str(info.value)
    assert f"alpha={alpha:.3g}" in msg and "sigma_max=1" in msg
    assert "safe range (0, 2/sigma_max^2) = (0, 2)" in msg and "alpha='auto'" in msg
    # in float64 the same alpha is (barely) inside the safe range: no error, finite result
    assert torch.isfinite(ben_cohen_pinv(A64, 40, alpha)).all()


def test_too_large_alpha_raises_naming_alpha_sigma_max_and_the_safe_range():
    A = 3.0 * rank_deficient()  # sigma_max = 6
    with pytest.raises(PinvDivergenceError) as info:
        ben_cohen_pinv(A, alpha=0.06)  # alpha * sigma_max^2 = 2.16
    msg = str(info.value)
    for part in ["alpha=0.06", "sigma_max=6", "alpha*sigma_max^2=2.16", "(0, 0.0556)",
                 "use alpha='auto' or a smaller alpha"]:
        assert part in msg, (part, msg)
    ben_cohen_pinv(A, alpha=0.05)  # 1.8: fine


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_input_raises(bad):
    A = torch.randn(3, 4)
    A[1, 2] = bad
    with pytest.raises(ValueError, match="has NaN/inf entries"):
        ben_cohen_pinv(A)
    assert not torch.isfinite(ben_cohen_pinv(A, check=False)).all()  # the hot path: no check


@pytest.mark.parametrize("alpha", [0.0, -1e-3, "fast", float("nan")])
def test_invalid_alpha_raises(alpha):
    with pytest.raises(ValueError, match="positive float or 'auto'"):
        ben_cohen_pinv(torch.randn(3, 4), alpha=alpha)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (2, 4, 4)])
def test_gradcheck(shape):
    A = torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(0))
    alpha = 1.0 / torch.linalg.matrix_norm(A, ord=2).max().item() ** 2
    A.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda A: ben_cohen_pinv(A, 4, alpha), (A,))


def test_return_residual_and_penrose_residual():
    A = torch.randn(2, 5, 7, dtype=F64)
    X, res = ben_cohen_pinv(A, 30, return_residual=True)
    assert res.shape == (2,) and (res < 1e-12).all()
    zero = torch.zeros(2, 7, 5, dtype=F64)
    assert torch.allclose(penrose_residual(A, zero), torch.ones(2, dtype=F64))


def test_make_pinv():
    A = torch.randn(4, 6, dtype=F64)
    assert make_pinv("exact") is torch.linalg.pinv
    X = make_pinv("ben_cohen", steps=30, alpha="auto")(A)
    assert rel(X, torch.linalg.pinv(A)) < 1e-10
    assert rel(make_pinv(steps=3, alpha=1e-3)(A), ben_cohen_pinv(A, 3, 1e-3)) == 0
    with pytest.raises(ValueError, match="valid methods are 'ben_cohen', 'exact'"):
        make_pinv("svd")
    with pytest.raises(ValueError, match="positive float or 'auto'"):
        make_pinv(alpha=-1.0)


def test_cap_keeps_a_safe_alpha_and_rescues_a_divergent_one():
    """cap=True: where alpha sigma_max^2 is well inside the limit the result is the fixed-alpha
    iteration's, bitwise; where alpha is past 2 / sigma_max^2 (the fixed iteration blows up)
    the capped one converges to torch.linalg.pinv, checked per matrix of a batch."""
    g = torch.Generator().manual_seed(0)
    A = torch.randn(2, 8, 20, generator=g, dtype=torch.float64)
    A[1] *= 30.0  # sigma_max^2 ~ 900 * (sqrt(20) + sqrt(8))^2: far past 2 / 1e-3
    alpha = 1e-3
    smax2 = torch.linalg.matrix_norm(A, ord=2).square()
    assert alpha * smax2[0] < 1.0 and alpha * smax2[1] > 2.0
    capped = ben_cohen_pinv(A, steps=30, alpha=alpha, check=False, cap=True)
    fixed = ben_cohen_pinv(A, steps=30, alpha=alpha, check=False)
    assert torch.equal(capped[0], fixed[0])
    assert not torch.isfinite(fixed[1]).all() or fixed[1].abs().max() > 1e6  # the fixed alpha diverges
    torch.testing.assert_close(capped[1], torch.linalg.pinv(A[1]), rtol=1e-8, atol=1e-10)
    with pytest.raises(PinvDivergenceError):  # without the cap, check=True refuses that alpha
        ben_cohen_pinv(A[1], steps=30, alpha=alpha, check=True)
    assert torch.equal(make_pinv("ben_cohen", 30, alpha, cap=True)(A), capped)


def test_cap_in_float32_keeps_alpha_a_constant_for_autograd():
    """A capped alpha is a step size, like the paper's: the gradient through the capped
    iteration equals the gradient through the fixed iteration run with that alpha's value."""
    g = torch.Generator().manual_seed(1)
    A = (torch.randn(3, 8, 20, generator=g) * torch.tensor([1.0, 30.0, 1.0])[:, None, None]).requires_grad_()
    capped = ben_cohen_pinv(A, steps=7, alpha=1e-3, check=False, cap=True)
    a = auto_alpha(A.detach()).clamp_max(1e-3)  # (3, 1, 1)
    assert capped.dtype == torch.float32 and a.shape == (3, 1, 1)
    assert a[1].item() < 0.5e-3 and a[0].item() == a[2].item() == pytest.approx(1e-3)  # only the large one capped
    (grad,) = torch.autograd.grad(capped.square().sum(), A)
    for i in range(3):
        Ai = A.detach()[i].clone().requires_grad_()
        fixed = ben_cohen_pinv(Ai, steps=7, alpha=float(a[i]), check=False)
        (gi,) = torch.autograd.grad(fixed.square().sum(), Ai)
        torch.testing.assert_close(capped[i], fixed, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(grad[i], gi, rtol=1e-4, atol=1e-6)


def test_capped_alpha_is_the_smaller_of_alpha_and_the_svd_limit():
    """capped_alpha against an independent reference, the SVD: alpha where alpha sigma_max^2
    is below 1.75 (auto_alpha's lower end), else within [1.75, 1.8] / sigma_max^2; it is the
    alpha ben_cohen_pinv(cap=True) starts from (X_0 = alpha A^T)."""
    g = torch.Generator().manual_seed(2)
    A = torch.randn(4, 8, 20, generator=g, dtype=torch.float64) * torch.tensor([0.1, 1.0, 10.0, 30.0])[:, None, None]
    alpha = 1e-3
    smax2 = torch.linalg.svdvals(A)[..., 0].square()
    a = capped_alpha(A, alpha)
    assert a.shape == (4, 1, 1)
    for i in range(4):
        if alpha * smax2[i] < 1.75:
            assert a[i].item() == alpha
        else:
            assert 1.75 <= a[i].item() * smax2[i].item() <= 1.8 + 1e-12
    assert (alpha * smax2[:2] < 1.75).all() and (alpha * smax2[2:] > 1.8).all()  # both branches taken
    assert torch.equal(ben_cohen_pinv(A, steps=0, alpha=alpha, check=False, cap=True), a * A.mT)
