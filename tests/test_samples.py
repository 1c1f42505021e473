"""gpm_core.report.samples: the sample-and-read trajectories of book/08_reconstructions,
checked against the models' own iterative reading and against loops written out by hand."""

import numpy as np
import pytest
import torch

from gpm_core.report.samples import DECODE_RULES, sample_trajectory
from test_models import episodes, model


def _trajectory(m, X, n, n_reads, rule="mode", write_seed=1, draw_seed=2):
    torch.manual_seed(write_seed)  # the write noise of GPM
    return sample_trajectory(m, X, n, n_reads, rule, torch.Generator().manual_seed(draw_seed))


@pytest.mark.parametrize("kind", ["gpm", "dkm"])
def test_mode_rule_is_the_models_iterative_read_of_its_prior_sample(kind):
    m, X = model(kind).eval(), episodes("bernoulli")
    got = _trajectory(m, X, n=3, n_reads=4)
    with torch.no_grad():
        torch.manual_seed(1)
        state = m.write(X)
        w = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(2))
        raw = m.likelihood.mode(m.decode(w @ state["M"]))
        want = m.iterative_read(raw, state, 4)["X"]
    assert got["X"].shape == (5, 2, 3, 1, 28, 28)
    assert torch.equal(got["X"], want)
    assert len(got["reads"]) == 4 and len(got["ink"]) == 5


def test_statistics_by_hand():
    m, X = model("gpm", pinv="exact").eval(), episodes("bernoulli")  # addresses Z M^+ exactly
    got = _trajectory(m, X, n=3, n_reads=2)
    with torch.no_grad():
        torch.manual_seed(1)
        state = m.write(X)
        M = state["M"].double().numpy()
        codes = [m.encode(got["X"][k]).double().numpy() for k in range(2)]
        Z = m.encode(X).double().numpy()
    # GPM addresses with Z M^+; M has rank T = 4 < K = 8, its other singular values are float32
    # rounding (1e-7), which torch.linalg.pinv cuts off and numpy must be told to
    M_pinv = [np.linalg.pinv(M[b], rcond=1e-5) for b in range(2)]
    for k, code in enumerate(codes):
        norms, reads, ratios, cosines, wsq = [], [], [], [], []  # one per image, in float64
        for b in range(2):
            for i in range(3):
                z = code[b, i]
                w = z @ M_pinv[b]
                r = w @ M[b]
                norms.append(np.linalg.norm(z)), reads.append(np.linalg.norm(r))
                ratios.append(reads[-1] / norms[-1]), cosines.append(z @ r / (norms[-1] * reads[-1]))
                wsq.append(w @ w)
        s = got["reads"][k]
        assert s["norm_ratio"] == pytest.approx(np.mean(ratios), rel=1e-4)
        assert s["code_norm"] == pytest.approx(np.mean(norms), rel=1e-4)
        assert s["read_norm"] == pytest.approx(np.mean(reads), rel=1e-4)
        assert s["cosine"] == pytest.approx(np.mean(cosines), abs=1e-5)
        assert s["w_sq"] == pytest.approx(np.mean(wsq), rel=1e-4)
        assert s["ink_in"] == pytest.approx(got["X"][k].sum().item() / 6)
    assert got["written"]["code_norm"] == pytest.approx(np.linalg.norm(Z, axis=-1).mean(), rel=1e-4)
    # nearest written image, by brute force
    last, Xf = got["X"][-1].flatten(-3), X.flatten(-3)
    for b in range(2):
        for i in range(3):
            want = min(int((last[b, i] != Xf[b, t]).sum()) for t in range(4))
            assert int(got["nearest"][b, i]) == want
    assert got["ink"] == pytest.approx([got["X"][k].sum().item() / 6 for k in range(3)])


@pytest.mark.parametrize("kind", ["gpm", "dkm"])
def test_authors_thresholds_keep_more_ink_on_the_same_draws(kind):
    m, X = model(kind).eval(), episodes("bernoulli")
    mode, authors = _trajectory(m, X, 4, 1, "mode"), _trajectory(m, X, 4, 1, "authors")
    assert DECODE_RULES["authors"] == (0.05, 0.3)  # the released code's generate()
    # a lower threshold on the same Bernoulli means can only switch pixels on
    assert bool((authors["X"][0] >= mode["X"][0]).all())
    assert authors["raw_norm"] == mode["raw_norm"]


def test_bad_rules_say_what_to_do():
    X = episodes("bernoulli")
    with pytest.raises(ValueError, match="not one of"):
        sample_trajectory(model("gpm"), X, 2, 1, rule="median")
    with pytest.raises(ValueError, match="use rule='mode'"):
        sample_trajectory(model("gpm", "dmol"), episodes("dmol"), 2, 1, rule="authors")


def test_fig_trajectories_one_panel_per_entry():
    import matplotlib
    matplotlib.use("Agg")
    from gpm_core.report.samples import fig_trajectories

    m, X = model("gpm").eval(), episodes("bernoulli")
    t = _trajectory(m, X, n=3, n_reads=2)
    fig = fig_trajectories([[(t["X"][:, 0], "a"), (t["X"][:, 1], "b")], [(t["X"][:, 0], "c")]], n_show=2)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["a", "b", "c"] and fig.get_size_inches()[0] == 8


def test_nearest_distance_against_a_brute_force_numpy_loop():
    """The distance to the nearest reference image equals a plain loop over the reference set,
    whatever the chunk size; binary images get their Hamming distance; a reference image is at
    distance 0 from itself."""
    from gpm_core.report.samples import nearest_distance

    g = torch.Generator().manual_seed(0)
    ref, query = torch.rand(300, 1, 4, 4, generator=g), torch.rand(20, 1, 4, 4, generator=g)
    got = [nearest_distance(query, ref, chunk=c) for c in (1000, 64, 1)]
    R, Q = ref.flatten(1).double().numpy(), query.flatten(1).double().numpy()
    for i, q in enumerate(Q):
        expected = ((R - q) ** 2).sum(1).min()
        for d in got:
            assert d[i].item() == pytest.approx(expected, rel=1e-4, abs=1e-5)
    assert torch.all(nearest_distance(ref[:10], ref) < 1e-5)
    a, b = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    assert nearest_distance(a[None], b[None]).item() == (a != b).sum().item()


def test_shuffle_pixels_keeps_the_ink_and_moves_the_pixels():
    from gpm_core.report.samples import shuffle_pixels

    g = torch.Generator().manual_seed(1)
    x = (torch.rand(6, 1, 28, 28, generator=g) > 0.8).float()
    y = shuffle_pixels(x, torch.Generator().manual_seed(2))
    assert y.shape == x.shape and torch.equal(y.flatten(1).sum(1), x.flatten(1).sum(1))
    assert torch.equal(y.flatten(1).sort(1).values, x.flatten(1).sort(1).values) and not torch.equal(x, y)
