"""Likelihoods against independent computations: torch.distributions for the Bernoulli,
direct numerical integration of the logistic-mixture density for the DMoL."""

import math

import pytest
import torch

from gpm_core.likelihoods import (Bernoulli, DiscretizedLogisticMixture, bits_per_dim,
                                  get_likelihood)


def test_bernoulli_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    out = torch.randn(2, 4, 1, 28, 28, generator=g) * 3  # (B, T, C, H, W) logits
    x = (torch.rand(2, 4, 1, 28, 28, generator=g) > 0.5).float()
    ref = -torch.distributions.Bernoulli(logits=out).log_prob(x).sum((-3, -2, -1))
    lik = Bernoulli()
    assert lik.nll(out, x).shape == (2, 4)
    torch.testing.assert_close(lik.nll(out, x), ref)
    assert torch.equal(lik.mode(out), (torch.sigmoid(out) > 0.5).float())
    assert set(lik.sample(out).unique().tolist()) <= {0.0, 1.0}


def _logistic_bin_probs(mu, s):
    """P(bin v), v = 0..255, of a logistic(mu, s) on [-1, 1] by trapezoidal integration of
    its density, edge bins extended to +-(1 + 60 s). mu, s: float64 scalars."""
    edges = torch.linspace(-1, 1, 256, dtype=torch.float64)[:-1] + 1 / 255  # 255 inner edges
    lo = torch.cat([torch.tensor([-1 - 60 * s], dtype=torch.float64), edges])
    hi = torch.cat([edges, torch.tensor([1 + 60 * s], dtype=torch.float64)])
    u = lo[:, None] + (hi - lo)[:, None] * torch.linspace(0, 1, 4001, dtype=torch.float64)
    t = (u - mu) / s
    density = torch.exp(-t) / (s * (1 + torch.exp(-t)) ** 2)
    return torch.trapezoid(density, u, dim=-1)  # (256,)


def _dmol_out(n, C, g, scale=1.0):
    P = DiscretizedLogisticMixture(n).out_channels(C)
    out = torch.randn(1, P, 1, 1, generator=g, dtype=torch.float64) * scale
    out[:, n + n * C:n + 2 * n * C] = out[:, n + n * C:n + 2 * n * C] - 3.0  # scales ~ 0.05
    return out


def test_dmol_grey_matches_numerical_integration_and_sums_to_one():
    g = torch.Generator().manual_seed(1)
    n = 3
    lik = DiscretizedLogisticMixture(n)
    out = _dmol_out(n, 1, g)  # (1, 3n, 1, 1): one grey pixel
    x = (torch.arange(256, dtype=torch.float64) / 255).view(256, 1, 1, 1)  # every bin
    logp = -lik.nll(out.expand(256, -1, -1, -1), x)  # (256,)
    assert torch.exp(logp).sum().item() == pytest.approx(1.0, abs=1e-6)

    pi = torch.softmax(out[0, :n, 0, 0], 0)
    mu, s = out[0, n:2 * n, 0, 0], torch.exp(out[0, 2 * n:3 * n, 0, 0])
    ref = sum(pi[k] * _logistic_bin_probs(mu[k], s[k]) for k in range(n))
    # every bin exactly, the far tails too (PixelCNN++ scores a mass below 1e-5 by density x
    # bin width; gpm_core's log-domain identity needs no such approximation)
    torch.testing.assert_close(torch.exp(logp), ref, rtol=1e-4, atol=1e-12)
    far = logp.argmin()  # the least probable bin, far in a tail
    assert torch.exp(logp[far]).item() == pytest.approx(ref[far].item(), rel=1e-4)
    # the edge bins 0 and 255 carry all the mass beyond -1 and 1
    out_edge = out.clone()
    out_edge[0, n:2 * n, 0, 0] = torch.tensor([-1.5, 1.4, -1.2], dtype=torch.float64)
    pe = torch.exp(-lik.nll(out_edge.expand(256, -1, -1, -1), x))
    assert pe.sum().item() == pytest.approx(1.0, abs=1e-6)
    assert pe[0] > 0.2 and pe[-1] > 0.2


def test_dmol_rgb_coupling_matches_integration_and_sums_to_one():
    g = torch.Generator().manual_seed(2)
    n, C = 2, 3
    lik = DiscretizedLogisticMixture(n)
    # two coupled channels: the 256^2 joint probabilities sum to 1 (the coupling code is
    # the same for any C; 256^3 colours would take too long for a unit test)
    out2 = _dmol_out(n, 2, g)  # (1, 6n, 1, 1): one two-channel pixel
    grid = torch.arange(256, dtype=torch.float64) / 255
    x2 = torch.cartesian_prod(grid, grid).view(-1, 2, 1, 1)  # (65536, 2, 1, 1)
    total = torch.exp(-lik.nll(out2.expand(len(x2), -1, -1, -1), x2)).sum().item()
    assert total == pytest.approx(1.0, abs=1e-6)

    out = _dmol_out(n, C, g)  # (1, 10n, 1, 1): one RGB pixel

    # one colour against a direct computation: sum_k pi_k prod_c P_c(bin | mu_kc(x_<c), s_kc)
    v = torch.tensor([100, 140, 30])
    x = (v / 255).double()
    pi = torch.softmax(out[0, :n, 0, 0], 0)
    mu = out[0, n:n + n * C, 0, 0].view(n, C)
    s = torch.exp(out[0, n + n * C:n + 2 * n * C, 0, 0].view(n, C))
    a = torch.tanh(out[0, n + 2 * n * C:, 0, 0].view(n, 3))
    xs = x * 2 - 1
    ref = 0.0
    for k in range(n):
        means = [mu[k, 0], mu[k, 1] + a[k, 0] * xs[0], mu[k, 2] + a[k, 1] * xs[0] + a[k, 2] * xs[1]]
        ref += pi[k] * math.prod(_logistic_bin_probs(means[c], s[k, c])[v[c]] for c in range(3))
    got = torch.exp(-lik.nll(out, x.view(1, 3, 1, 1)))[0]
    assert got.item() == pytest.approx(ref.item(), rel=1e-4)


def test_dmol_float32_keeps_the_tails_and_their_gradients():
    """In float32, a bin 20 to 40 scales from a component's mean (mass 1e-9 ... 1e-17, on either
    side) scores as in float64, where 1 - sigmoid would round to 0; a mass that underflows
    even so (a component 1,000 scales away) still gives a finite loss and finite gradients that
    pull the mean towards the pixel."""
    lik = DiscretizedLogisticMixture(1)
    x = torch.full((6, 1, 1, 1), 128 / 255)
    out = torch.zeros(6, 3, 1, 1)  # (logit, mean, log scale) per pixel
    out[:, 2] = math.log(0.02)
    out[:, 1, 0, 0] = torch.tensor([-0.4, 0.4, -0.8, 0.8, -0.9, 0.9]) + (x[:, 0, 0, 0] * 2 - 1)
    lp32 = lik.log_prob_pixels(out, x).flatten()
    lp64 = lik.log_prob_pixels(out.double(), x.double()).flatten()
    assert (lp64[:4] < -18).all()
    torch.testing.assert_close(lp32[:4].double(), lp64[:4], rtol=1e-5, atol=0)
    far = out.clone()
    far[:, 2] = -7.0  # the smallest scale, e^-7: the means lie 400 - 1,000 scales away
    far.requires_grad_()
    nll = lik.nll(far, x)
    nll.sum().backward()
    assert torch.isfinite(nll).all() and (nll > 300).all() and torch.isfinite(far.grad).all()
    assert (far.grad[:, 1].flatten().sign() == torch.tensor([-1.0, 1, -1, 1, -1, 1])).all()


def test_dmol_mode_and_sample_on_the_8bit_grid():
    g = torch.Generator().manual_seed(3)
    lik = DiscretizedLogisticMixture(5)
    out = torch.randn(2, 4, lik.out_channels(3), 8, 8, generator=g)
    for img in (lik.mode(out), lik.sample(out)):
        assert img.shape == (2, 4, 3, 8, 8)
        assert img.min() >= 0 and img.max() <= 1
        torch.testing.assert_close(img * 255, torch.round(img * 255))
    # a dominant narrow component: the mode sits on its mean
    out = torch.full((1, lik.out_channels(1), 1, 1), -8.0)
    out[0, 0] = 10.0  # component 0 carries the mass
    out[0, 5] = 0.2  # its mean in [-1, 1] -> pixel (0.2 + 1) * 127.5 = 153
    assert lik.mode(out).item() == pytest.approx(153 / 255)
    assert lik.nll(out, lik.mode(out)).item() < lik.nll(out, torch.full((1, 1, 1, 1), 150 / 255)).item()


def test_factory_and_bits_per_dim():
    assert isinstance(get_likelihood("bernoulli"), Bernoulli)
    lik = get_likelihood("dmol", 7)
    assert lik.n_mixtures == 7 and lik.out_channels(3) == 70 and lik.out_channels(1) == 21
    with pytest.raises(ValueError, match="bernoulli"):
        get_likelihood("gaussian")
    assert bits_per_dim(torch.tensor(3072 * math.log(2)), 3072).item() == pytest.approx(1.0)
