"""GPM, DKM and the VAE through the interface the trainer and the chapters use, on tiny
fabricated episodes (B = 2, T = 4)."""

import math

import pytest
import torch

from gpm_core.config import ModelConfig
from gpm_core.models import DKM, GPM, VAE, build_model

SHAPES = {"bernoulli": (1, 28, 28), "dmol": (3, 16, 16)}
EVAL_KEYS = {"nll_cond", "recon", "kl_w", "kl_m", "nll_cond_with_kl_m", "cosine"}


def tiny_cfg(kind, likelihood="bernoulli", **kw):
    base = dict(kind=kind, likelihood=likelihood, filters=8, code_size=16, memory_slots=8, n_mixtures=3)
    return ModelConfig(**{**base, **kw})


def episodes(likelihood, B=2, T=4, seed=0):
    """Sparse binary images (stroke-like) or 8-bit colour images with a smooth gradient."""
    g = torch.Generator().manual_seed(seed)
    C, H, W = SHAPES[likelihood]
    if likelihood == "bernoulli":
        return (torch.rand(B, T, C, H, W, generator=g) < 0.15).float()
    ramp = torch.linspace(0.2, 0.8, W).expand(B, T, C, H, W)
    return torch.round((ramp + 0.1 * torch.rand(B, T, C, H, W, generator=g)).clamp(0, 1) * 255) / 255


def model(kind, likelihood="bernoulli", seed=0, **kw):
    torch.manual_seed(seed)
    return build_model(tiny_cfg(kind, likelihood, **kw), SHAPES[likelihood])


@pytest.mark.parametrize("likelihood", ["bernoulli", "dmol"])
@pytest.mark.parametrize("kind", ["gpm", "dkm", "vae"])
def test_few_steps_reduce_the_loss(kind, likelihood):
    m, X = model(kind, likelihood), episodes(likelihood)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)

    def loss_at_seed():  # the same noise draws before and after training
        torch.manual_seed(1)
        return m(X)["loss"].item()

    before = loss_at_seed()
    for _ in range(6):
        out = m(X)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        assert all(torch.isfinite(v).all() for v in out.values())
    assert loss_at_seed() < before
    expected = {"loss", "recon", "kl_w", "ae", "elbo_cond"} | ({"kl_m"} if kind == "dkm" else set())
    assert set(out) == expected and all(v.dim() == 0 for v in out.values())


@pytest.mark.parametrize("kind", ["gpm", "dkm"])
def test_loss_is_the_papers_objective_per_image(kind):
    """loss = -(L + L_AE) / T: recon + KL(w) + AE (+ KL(M) / T for DKM), eq. 2 / eq. 12."""
    m, X = model(kind), episodes("bernoulli")
    out = m(X)
    total = out["recon"] + out["kl_w"] + out["ae"] + out.get("kl_m", 0.0)
    torch.testing.assert_close(out["loss"].detach(), total)
    torch.testing.assert_close(out["elbo_cond"], out["recon"] + out["kl_w"])


@pytest.mark.parametrize("likelihood", ["bernoulli", "dmol"])
@pytest.mark.parametrize("kind", ["gpm", "dkm", "vae"])
def test_evaluate_keys_and_shapes(kind, likelihood):
    m, X = model(kind, likelihood), episodes(likelihood)
    keys = (EVAL_KEYS - ({"cosine"} if kind == "vae" else set())) | (
        {"bits_per_dim"} if likelihood == "dmol" else set()) | (
        {"nll_cond_iid", "nll_cond_shared"} if kind != "vae" else set()) | (
        {"bits_per_dim_iid", "bits_per_dim_shared"} if kind != "vae" and likelihood == "dmol" else set())
    for X_query in (None, episodes(likelihood, T=3, seed=5)):
        ev = m.evaluate(X, X_query)
        assert set(ev) == keys
        assert all(v.shape == (2,) and torch.isfinite(v).all() for v in ev.values())
        torch.testing.assert_close(ev["nll_cond"], ev["recon"] + ev["kl_w"])
        torch.testing.assert_close(ev["nll_cond_with_kl_m"], ev["nll_cond"] + ev["kl_m"])
    if likelihood == "dmol":
        torch.testing.assert_close(ev["bits_per_dim"], ev["nll_cond"] / (3 * 16 * 16 * math.log(2)))
        for draw in ("iid", "shared") if kind != "vae" else ():
            torch.testing.assert_close(ev[f"bits_per_dim_{draw}"], ev[f"nll_cond_{draw}"] / (3 * 16 * 16 * math.log(2)))
    if kind == "gpm":
        assert (ev["kl_m"] == 0).all()
    if kind == "dkm":
        assert (ev["kl_m"] > 0).all()


def test_gpm_retrieves_exactly_what_was_written():
    """Corollary 2.3 through the model: with exact pseudo-inverses, no writing noise and
    T <= min(K, C), the read-out W M equals the code Z (cosine 1)."""
    m = model("gpm", pinv="exact", eval_write_noise=False)  # T = 4 <= min(K = 8, C = 16)
    ev = m.evaluate(episodes("bernoulli"))
    torch.testing.assert_close(ev["cosine"], torch.ones(2), atol=1e-4, rtol=0)
    noisy = model("gpm", pinv="exact", eval_write_noise=True).evaluate(episodes("bernoulli"))
    assert (noisy["cosine"] < 0.999).all()  # xi leaves the row space of Z: no longer exact


@pytest.mark.parametrize("kind", ["gpm", "dkm", "vae"])
def test_deterministic_with_a_fixed_seed(kind):
    X = episodes("bernoulli")
    runs = []
    for _ in range(2):
        m = model(kind, seed=3)
        torch.manual_seed(4)
        runs.append((m(X)["loss"], m.evaluate(X)["nll_cond"]))
    assert torch.equal(runs[0][0], runs[1][0]) and torch.equal(runs[0][1], runs[1][1])


@pytest.mark.parametrize("kind", ["gpm", "dkm"])
def test_write_read_generate_iterative_read(kind):
    m, X = model(kind), episodes("bernoulli")
    state = m.write(X)
    assert state["M"].shape == (2, 8, 16)
    out, W = m.read(X, state)
    assert out.shape == (2, 4, 1, 28, 28) and W.shape == (2, 4, 8)
    assert m.read(X, state, sample=True)[1].shape == (2, 4, 8)
    samples = m.generate(state, 3)
    assert samples.shape == (2, 3, 1, 28, 28) and set(samples.unique().tolist()) <= {0.0, 1.0}

    traj = m.iterative_read(X, state, n_iters=3)
    second = "residual" if kind == "gpm" else "kl_w"
    assert set(traj) == {"X", "W", "energy", "nll", second}
    assert traj["X"].shape == (4, 2, 4, 1, 28, 28) and torch.equal(traj["X"][0], X)
    assert set(traj["X"][1:].unique().tolist()) <= {0.0, 1.0}  # the Bernoulli mode
    assert traj["W"].shape == (3, 2, 4, 8) and traj["energy"].shape == (3, 2, 4)
    torch.testing.assert_close(traj["energy"], traj["nll"] + traj[second])
    # the first step's weights are the plain read's; its nll scores x_1 under d(w_1 M)
    torch.testing.assert_close(traj["W"][0], W)
    torch.testing.assert_close(traj["nll"][0], m.nll(out, traj["X"][1]))


@pytest.mark.parametrize("kind", ["gpm", "dkm"])
def test_iterative_read_with_a_decode_threshold(kind):
    """threshold t: every state is 1 where the decoder's mean is >= t (checked against a loop
    of address, read and decode written out here); a lower t switches on a superset of pixels
    at the first read; a likelihood without Bernoulli means refuses it."""
    m, X = model(kind).eval(), episodes("bernoulli")
    torch.manual_seed(1)
    state = m.write(X)
    traj = m.iterative_read(X, state, n_iters=2, threshold=0.3)
    x = X
    with torch.no_grad():
        for i in range(2):
            x = (torch.sigmoid(m.decode(m.address(m.encode(x), state) @ state["M"])) >= 0.3).float()
            assert torch.equal(traj["X"][i + 1], x)
    low = m.iterative_read(X, state, n_iters=1, threshold=0.05)["X"][1]
    assert bool((low >= m.iterative_read(X, state, n_iters=1)["X"][1]).all())
    with pytest.raises(ValueError, match="leave threshold None"):
        model(kind, "dmol").iterative_read(episodes("dmol"), {"M": None}, 1, threshold=0.1)


def test_memory_parameters_on_top_of_the_nets():
    """GPM adds K C + 1 parameters to the networks (M0, sigma_w; GPM section 3), DKM
    K C + 2 (R0, sigma_u, sigma_w); the VAE's encoder emits 2C numbers instead of C."""
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    gpm, dkm, vae = model("gpm"), model("dkm"), model("vae")
    nets = n(gpm.encoder) + n(gpm.decoder)
    assert n(gpm) == nets + 8 * 16 + 1 and n(dkm) == nets + 8 * 16 + 2
    assert n(vae) == nets + 16 * (gpm.encoder.linear.in_features + 1)
    assert isinstance(gpm, GPM) and isinstance(dkm, DKM) and isinstance(vae, VAE)


def test_errors_say_what_to_do():
    with pytest.raises(ValueError, match="gpm"):
        build_model(ModelConfig(kind="hopfield"), (1, 28, 28))
    m = model("gpm")
    with pytest.raises(ValueError, match="episodes"):
        m(torch.rand(4, 1, 28, 28))  # images without the episode axis
