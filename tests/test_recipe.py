"""The recipe variants taken from the authors' code (model.net, model.noise, model.w_sample)
and the test curve (train.eval_every), each against an independent check: torch's own
output shapes, counted noise draws, a hand-drawn sample, and a training run without the curve."""

from __future__ import annotations

import json
import math

import pytest
import torch

from gpm_core import gpm
from gpm_core.artifacts import RESULT_SCHEMA
from gpm_core.report import table1
from gpm_core.datasets import load_images
from gpm_core.episodes import test_episodes
from gpm_core.config import ConfigError, ModelConfig, apply_overrides, config_hash, load_config
from gpm_core.evaluate import score_episodes
from gpm_core.models import build_model
from gpm_core.nets import ResNetEncoder, conv_sizes, deconv_padding, make_nets
from gpm_core.train import train
from conftest import REPO, tiny_toml

pytestmark = pytest.mark.usefixtures("no_fault")


@pytest.mark.parametrize("m", range(1, 40))
def test_deconv_padding_matches_torch(m):
    """(padding, output_padding) that grow m to 2m - 2 ... 2m + 1, against torch's output size."""
    for target in {2 * m - 2, 2 * m - 1, 2 * m, 2 * m + 1}:
        if target < 1:
            continue
        pad, out_pad = deconv_padding(m, target)
        assert out_pad in (0, 1) and pad >= 0
        y = torch.nn.ConvTranspose2d(1, 1, 4, stride=2, padding=pad, output_padding=out_pad)(torch.zeros(1, 1, m, m))
        assert y.shape[-1] == target


def test_deconv_padding_refuses_impossible_growth():
    with pytest.raises(ValueError, match="cannot grow"):
        deconv_padding(2, 20)


@pytest.mark.parametrize("C,size", [(1, 28), (3, 32), (3, 64), (1, (28, 20))])
@pytest.mark.parametrize("net", ["authors", "authors_nobn"])
def test_resnet_shapes_mirror_the_encoder(C, size, net):
    H, W = (size, size) if isinstance(size, int) else size
    enc, dec = make_nets(net, C, 7, 8, 12, 12, size)
    z = enc(torch.rand(3, C, H, W))
    assert z.shape == (3, 12) and dec(z).shape == (3, 7, H, W)
    # the decoder's first map is the encoder's last (5x5 for 28x28: 16 * 25 = 400 inputs of the
    # authors' Linear(400, 100))
    assert dec.stages[0][0].kernel_size == (conv_sizes(H, 3)[-1], conv_sizes(W, 3)[-1])


@pytest.mark.parametrize("C,size,n", [(1, 28, 10), (3, 32, 3)])
@pytest.mark.parametrize("out_block", [True, False])
def test_authors_nets_emit_the_dmol_parameters(C, size, n, out_block):
    """The authors' nets with the DMoL: the decoder emits the mixture's n (1 + 2C + C(C-1)/2)
    maps at the image size, the likelihood and every gradient are finite; out_block=False drops
    only the last basic block (the other weights keep their names)."""
    from gpm_core.likelihoods import DiscretizedLogisticMixture
    from gpm_core.nets import BasicBlock

    lik = DiscretizedLogisticMixture(n)
    P = lik.out_channels(C)  # 30 for grey (10 components), 30 for RGB (3 components)
    torch.manual_seed(0)
    enc, dec = make_nets("authors", C, P, 8, 12, 12, size, out_block)
    x = torch.randint(0, 256, (2, C, size, size)).float() / 255
    out = dec(enc(x * 2 - 1))
    assert out.shape == (2, P, size, size)
    nll = lik.nll(out, x)
    assert nll.shape == (2,) and torch.isfinite(nll).all()
    nll.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in [*enc.parameters(), *dec.parameters()])
    assert isinstance(dec.stages[-1][1], BasicBlock) == out_block
    full = set(make_nets("authors", C, P, 8, 12, 12, size)[1].state_dict())
    assert set(dec.state_dict()) <= full
    assert all(k.startswith("stages.3.1.") for k in full - set(dec.state_dict()))


def test_out_block_is_an_option_of_the_authors_nets():
    cpu = load_config(REPO / "configs/table3_fashion_mnist_gpm.toml", "cpu")
    assert cpu.model.net == "authors" and not cpu.model.out_block
    with pytest.raises(ConfigError, match="out_block"):
        apply_overrides(load_config(REPO / "configs/table3_fashion_mnist_gpm.toml", "quick"),
                        ["model.out_block=false"])  # the paper's nets have no such block
    with pytest.raises(ValueError, match="out_block"):
        make_nets("paper", 1, 1, 4, 8, 8, 28, out_block=False)
    # the default keeps the authors' decoder: committed weights load as they are
    authors = load_config(REPO / "configs/table1_omniglot_gpm_authors.toml", "cpu")
    model = build_model(authors.model, (1, 28, 28))
    stored = REPO / "results/table1_omniglot_gpm_authors/cpu-seed0.pt"
    if stored.exists():
        model.load_state_dict(torch.load(stored, weights_only=True))


def test_authors_omniglot_encoder_has_their_linear_layer():
    enc = ResNetEncoder(1, 16, 100, 28)
    assert (enc.linear.in_features, enc.linear.out_features) == (400, 100)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in enc.modules()) == 6
    nobn = ResNetEncoder(1, 16, 100, 28, batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in nobn.modules())


def test_batchnorm_couples_the_batch_only_in_train_mode():
    torch.manual_seed(0)
    enc, x = ResNetEncoder(1, 4, 10, 28), torch.rand(3, 1, 28, 28)
    assert not torch.allclose(enc(x)[:1], enc(x[:1]))  # batch statistics
    enc.eval()
    torch.testing.assert_close(enc(x)[:1], enc(x[:1]))  # running statistics


def test_shared_draw_is_one_scalar_and_iid_is_not():
    W_mean = torch.randn(3, 5, 7)
    torch.manual_seed(0)
    shared = gpm.sample_w(W_mean, 0.5, shared=True) - W_mean
    assert torch.allclose(shared, shared.flatten()[0].expand_as(shared))
    torch.manual_seed(0)
    eps = torch.randn(())  # the same scalar, drawn by hand
    torch.testing.assert_close(shared, 0.5 * eps.expand_as(shared))
    iid = gpm.sample_w(W_mean, 0.5) - W_mean
    assert iid.flatten().unique().numel() == iid.numel()


def _cfg(**kw):
    base = dict(kind="gpm", filters=4, code_size=16, memory_slots=8)
    return ModelConfig(**{**base, **kw})


@pytest.mark.parametrize("noise,draws", [("paper", 1), ("authors", 4)])
def test_noise_draws_per_training_step(monkeypatch, noise, draws):
    """Algorithm 1 draws xi once (writing); the authors' code four times: twice when writing,
    on the addressed codes and on the read-out W M."""
    calls = []
    real = gpm.add_write_noise
    monkeypatch.setattr(gpm, "add_write_noise", lambda Z, s, **kw: calls.append(Z.shape) or real(Z, s, **kw))
    m = build_model(_cfg(noise=noise), (1, 28, 28))
    m((torch.rand(2, 4, 1, 28, 28) < 0.2).float())
    assert len(calls) == draws and all(shape == (2, 4, 16) for shape in calls)


@pytest.mark.parametrize("w_sample", ["iid", "shared"])
def test_evaluate_scores_both_draws(w_sample):
    torch.manual_seed(0)
    m = build_model(_cfg(w_sample=w_sample, net="authors"), (1, 28, 28)).eval()
    ev = m.evaluate((torch.rand(2, 4, 1, 28, 28) < 0.2).float())
    assert torch.equal(ev[f"nll_cond_{w_sample}"], ev["nll_cond"])
    other = "shared" if w_sample == "iid" else "iid"
    assert ev[f"nll_cond_{other}"].shape == (2,) and not torch.equal(ev[f"nll_cond_{other}"], ev["nll_cond"])


def test_noise_is_a_gpm_option():
    with pytest.raises(ConfigError, match="GPM option"):
        apply_overrides(load_config(REPO / "configs/table1_omniglot_dkm_resnet.toml", "quick"),
                        ["model.noise=authors"])
    with pytest.raises(ConfigError, match="model.net"):
        apply_overrides(load_config(REPO / "configs/table1_omniglot_vae.toml", "quick"), ["model.net=vgg"])


def test_test_curve_changes_nothing_in_training(tmp_path):
    """A run that scores the test bound every 2 steps ends with bitwise the same weights and
    loss curve as one that does not; its last curve point is the score of those weights."""
    runs = {}
    for every in (0, 2):
        toml = tiny_toml(tmp_path / f"t{every}.toml", steps=6, experiment=f"curve{every}")
        cfg = apply_overrides(load_config(toml, "quick"),
                              [f"train.eval_every={every}", "eval.curve_episodes=2", "model.net=authors"])
        runs[every] = (cfg, train(cfg, seed=0, device="cpu", run_dir=tmp_path / f"run{every}",
                                  results_dir=tmp_path / f"res{every}", progress=False))
    (_, a), (cfg, b) = runs[0], runs[2]
    assert "test_curve" not in a and [p["step"] for p in b["test_curve"]] == [2, 4, 6]
    assert a["loss_curve"] == b["loss_curve"] and a["metrics"] == b["metrics"]
    wa = torch.load(tmp_path / "res0" / "curve0" / "quick-seed0.pt", weights_only=True)
    wb = torch.load(tmp_path / "res2" / "curve2" / "quick-seed0.pt", weights_only=True)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    times = [p["train_time_s"] for p in b["test_curve"]]
    assert times == sorted(times) and times[-1] <= b["train_time_s"] + 1e-3

    test_set = load_images(cfg.data.dataset, "test", cfg.data)
    model = build_model(cfg.model, test_set.image_shape)
    model.load_state_dict(wb)
    X = test_episodes(test_set, cfg.data.episode_length, cfg.eval.episodes, cfg.eval.seed)[:2]
    assert score_episodes(model, X, cfg.eval.seed) == pytest.approx(b["test_curve"][-1]["nll_cond"], rel=1e-6)


# ----------------------------------------------------------------------------- report.table1

def _fake_result(tmp_path, experiment, profile, seed, nll, curve=(), w_sample="shared", log_sigma_w=0.0):
    """A minimal result JSON (+ state_dict holding log_sigma_w) as `train` writes it."""
    folder = tmp_path / experiment
    folder.mkdir(parents=True, exist_ok=True)
    torch.save({"log_sigma_w": torch.tensor(log_sigma_w)}, folder / f"{profile}-seed{seed}.pt")
    metric = lambda v: {"value": v, "unit": "nats/image", "sd": 1.0, "n": 4}  # noqa: E731
    doc = {"schema": RESULT_SCHEMA, "experiment": experiment, "description": f"arm {profile}",
           "profile": profile, "seed": seed, "model": "gpm", "dataset": "omniglot",
           "metrics": {"nll_cond": metric(nll), "nll_cond_iid": metric(3 * nll), "nll_cond_shared": metric(nll),
                       "kl_w": metric(1.0)},
           "config": {"model": {"w_sample": w_sample}, "train": {"batch_size": 8}},
           "steps": 100, "train_time_s": 20.0, "wall_time_s": 21.0, "git_commit": "abc", "device": {"type": "cpu"},
           "test_curve": list(curve), "state_dict": {"path": f"{profile}-seed{seed}.pt"}}
    (folder / f"{profile}-seed{seed}.json").write_text(json.dumps(doc))


def test_time_to_interpolates_between_scored_points():
    r = {"test_curve": [{"step": 100, "train_time_s": 10.0, "nll_cond": 90.0},
                        {"step": 200, "train_time_s": 30.0, "nll_cond": 70.0},
                        {"step": 300, "train_time_s": 50.0, "nll_cond": 60.0}]}
    # 80 is half way from 90 (step 100, 10 s) to 70 (step 200, 30 s)
    assert table1.time_to(r, 80.0) == {"step": 150.0, "train_time_s": 20.0, "first": False}
    assert table1.time_to(r, 95.0) == {"step": 100, "train_time_s": 10.0, "first": True}  # below at the first point
    assert table1.time_to(r, 50.0) is None and table1.time_to({}, 80.0) is None


def test_table1_rows_ablation_and_draws_from_results(tmp_path):
    _fake_result(tmp_path, "table1_omniglot_gpm_authors", "cpu", 0, 30.0)
    _fake_result(tmp_path, "table1_omniglot_gpm_authors", "cpu", 1, 34.0)
    rows = table1.table1(results_dir=tmp_path, datasets=("omniglot",))
    cell = next(r for r in rows if r["experiment"] == "table1_omniglot_gpm_authors" and r["profile"] == "cpu")
    assert cell["ours"] == 32.0 and cell["n_seeds"] == 2 and cell["per_seed"] == {0: 30.0, 1: 34.0}
    assert cell["ratio"] == pytest.approx(32.0 / 25.68) and cell["gap"] == pytest.approx(32.0 - 25.68)
    missing = [r for r in rows if r["ours"] is None]
    assert len(missing) == len(rows) - 1  # every other row x profile is shown as missing
    shown = {(r["experiment"], r["profile"]) for r in rows}  # only the profiles each config has, and paper
    assert ("table1_omniglot_gpm_authors", "cpu_alpha") in shown and ("table1_omniglot_dkm_resnet", "cpu_alpha") not in shown
    assert all((e, "paper") in shown for e, _ in shown)
    draws = table1.draw_rows(["table1_omniglot_gpm_authors"], results_dir=tmp_path)
    assert draws == [{"experiment": "table1_omniglot_gpm_authors", "profile": "cpu", "trained with": "shared",
                      "iid": 96.0, "shared": 32.0, "n_seeds": 2, "sigma_w": [1.0, 1.0]}]
    _fake_result(tmp_path, "ablation_x", "authors", 0, 100.0)
    _fake_result(tmp_path, "ablation_x", "lr", 0, 60.0)
    abl = table1.ablation_rows("ablation_x", results_dir=tmp_path)
    assert [(r["arm"], r["change"]) for r in abl] == [("authors", 0.0), ("lr", -40.0)]
    assert abl[0]["step_ms"] == 200.0 and abl[1]["description"] == "arm lr"
    with pytest.raises(FileNotFoundError, match="train the arms"):
        table1.ablation_rows("ablation_x", results_dir=tmp_path, base="nope")


def test_analysis_sources_name_no_machine_folder():
    """An analysis names the model results it used by repository-relative paths."""
    from gpm_core.artifacts import REPO, source_info

    inside = source_info({"path": str(REPO / "results" / "x" / "cpu-seed0.json")})
    assert inside["path"] == "results/x/cpu-seed0.json"
    assert source_info({"path": "results/x/cpu-seed0.json"})["path"] == "results/x/cpu-seed0.json"


@pytest.mark.parametrize("kind,name", [("gpm", "M0"), ("dkm", "R0")])
def test_memory_init_std_scales_the_prior_mean(kind, name):
    """M0 / R0 start as N(0, s^2): with s = 4, the draw that s = 1 makes under the same seed,
    times 4 (the nets take the same RNG stream before it), and of std about 4."""
    torch.manual_seed(3)
    plain = getattr(build_model(_cfg(kind=kind), (1, 28, 28)), name).detach().clone()
    torch.manual_seed(3)
    scaled = getattr(build_model(_cfg(kind=kind, memory_init_std=4.0), (1, 28, 28)), name).detach()
    torch.testing.assert_close(scaled, 4.0 * plain)
    assert 3.5 < scaled.std().item() < 4.5  # 8 x 16 = 128 draws


@pytest.mark.parametrize("scale", [1.0, 10.0])
def test_memory_lr_scale_moves_m0_that_much_faster(scale):
    """Adam's first step moves every element by lr * g / (|g| + eps), i.e. by lr wherever the
    gradient is not tiny: M0 must move by scale * lr and every other parameter by lr."""
    from gpm_core.train import _param_groups
    from gpm_core.config import TrainConfig
    torch.manual_seed(0)
    m = build_model(_cfg(net="authors"), (1, 28, 28))
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    tc = TrainConfig(lr=1e-3, weight_decay=0.0, memory_lr_scale=scale)
    groups = _param_groups(m, tc)
    assert len(groups) == (1 if scale == 1.0 else 2)
    opt = torch.optim.Adam(groups, lr=tc.lr, weight_decay=0.0)
    m((torch.rand(2, 8, 1, 28, 28) < 0.2).float())["loss"].backward()
    grads = {n: p.grad.detach().clone() for n, p in m.named_parameters()}
    opt.step()
    for n, p in m.named_parameters():
        moved = (p.detach() - before[n]).abs()
        big = grads[n].abs() > 1e-4  # where eps = 1e-8 is negligible
        want = 1e-3 * (scale if n == "M0" else 1.0)
        assert big.any() or n != "M0"
        if big.any():
            torch.testing.assert_close(moved[big], torch.full_like(moved[big], want), rtol=1e-3, atol=1e-7)


def test_memory_options_change_the_hash_only_when_set():
    base = load_config(REPO / "configs/table1_omniglot_gpm_authors.toml", "cpu")
    h = config_hash(base)
    assert config_hash(apply_overrides(base, ["train.memory_lr_scale=1.0", "model.memory_init_std=1.0"])) == h
    assert config_hash(apply_overrides(base, ["train.memory_lr_scale=10"])) != h
    assert config_hash(apply_overrides(base, ["model.memory_init_std=4"])) != h
    assert config_hash(apply_overrides(base, ["model.alpha_cap=false"])) == h
    assert config_hash(apply_overrides(base, ["model.alpha_cap=true"])) != h
    with pytest.raises(ConfigError, match="alpha_cap"):  # nothing to cap
        apply_overrides(load_config(REPO / "configs/table1_omniglot_dkm_resnet.toml", "cpu"), ["model.alpha_cap=true"])
    with pytest.raises(ConfigError):
        apply_overrides(base, ["train.memory_lr_scale=0"])


@pytest.mark.parametrize("alpha,pinv,key", [(5e-4, "ben_cohen", "M0"), ("auto", "ben_cohen", "M0"), (5e-4, "ben_cohen", "R0")])
def test_memory_scale_of_a_stored_run(tmp_path, alpha, pinv, key):
    """rms of M0 and alpha * sigma_max(M0)^2 against numpy's SVD; '–' where no fixed-alpha
    Ben-Cohen iteration inverts M0 (alpha 'auto', DKM's R0)."""
    import numpy as np
    M0 = torch.randn(8, 16, generator=torch.Generator().manual_seed(1)) * 3.0
    torch.save({"log_sigma_w": torch.tensor(0.0), key: M0.half()}, tmp_path / "cpu-seed0.pt")
    result = {"path": str(tmp_path / "cpu-seed0.json"), "state_dict": {"path": "cpu-seed0.pt"},
              "config": {"model": {"alpha_memory": alpha, "pinv": pinv}}}
    got = table1.memory_scale_of(result)
    m = M0.half().double().numpy()
    assert got["m0_rms"] == pytest.approx(np.sqrt((m ** 2).mean()), rel=1e-5)
    if alpha == "auto" or key == "R0":
        assert got["alpha_smax2"] == "–"
    else:
        assert got["alpha_smax2"] == pytest.approx(alpha * np.linalg.svd(m, compute_uv=False)[0] ** 2, rel=1e-5)


def test_address_rows_read_the_stability_analyses(tmp_path):
    from gpm_core.artifacts import ANALYSIS_SCHEMA
    folder = tmp_path / "stability_table1_omniglot_gpm_authors"
    folder.mkdir()
    size = lambda v: {"median": v, "min": v, "max": v, "n": 4}  # noqa: E731
    for profile, w0, w in (("cpu", 20.0, 36.0), ("other", 1.0, 1.0)):
        doc = {"schema": ANALYSIS_SCHEMA, "experiment": folder.name, "profile": profile, "seed": 0,
               "alpha_weight": 5e-4, "margins": {"test": {"W0_median": {"median": 0.006}}},
               "address_sizes": {"test": {"W0": size(w0), "W": size(w)}}}
        (folder / f"{profile}-seed0.json").write_text(json.dumps(doc))
    (row,) = table1.address_rows(["table1_omniglot_gpm_authors"], ("cpu",), results_dir=tmp_path)
    assert (row["w0"], row["w"], row["ratio"], row["w0_direction"]) == (20.0, 36.0, 1.8, 0.006)
    assert row["run"] == "table1_omniglot_gpm_authors cpu seed 0" and row["episodes"] == 4


def test_kl_split_rows_against_the_kl_of_q_w_and_a_grid_search(tmp_path):
    """kl_split_rows: the sigma_w part plus the mean part is the KL of gpm.kl_w (the stored test
    KL), the mean part is 1/2 ||w_mean||^2, and scale_opt is where a grid search over the
    rescalings w -> w / s, sigma_w -> sigma_w / s finds the smallest KL."""
    from gpm_core import gpm
    K, sigma_w = 8, 0.4
    W = torch.randn(50, K, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 1.5
    kl = float(gpm.kl_w(W, sigma_w).mean())
    _fake_result(tmp_path, "table1_mnist_dkm_resnet", "cpu", 0, 40.0, log_sigma_w=math.log(sigma_w))
    path = tmp_path / "table1_mnist_dkm_resnet" / "cpu-seed0.json"
    doc = json.loads(path.read_text())
    doc["model"], doc["config"]["model"]["memory_slots"] = "dkm", K
    doc["metrics"]["kl_w"]["value"], doc["metrics"]["recon"] = kl, {"value": 40.0 - kl}
    path.write_text(json.dumps(doc))
    (row,) = table1.kl_split_rows(["table1_mnist_dkm_resnet"], results_dir=tmp_path)
    assert row["kl_sigma"] + row["kl_mean"] == pytest.approx(kl)
    assert row["kl_mean"] == pytest.approx(0.5 * float(W.square().sum(-1).mean()), rel=1e-5)
    assert row["sigma_w2"] == pytest.approx(sigma_w**2, rel=1e-6) and row["recon"] == pytest.approx(40.0 - kl)
    us = torch.linspace(0.05, 5.0, 19801, dtype=torch.float64)  # u = 1 / s^2
    kls = torch.stack([gpm.kl_w(W * u.sqrt(), sigma_w * u.sqrt()).mean() for u in us])
    assert row["scale_opt"] == pytest.approx(float(us[kls.argmin()]), abs=1e-3)
    assert row["kl_rescaled"] == pytest.approx(float(kls.min()), rel=1e-6) and row["kl_rescaled"] < kl
    assert table1.split_mean([row, {**row, "recon": 0.0}], "table1_mnist_dkm_resnet", "recon") == pytest.approx((40.0 - kl) / 2)


def test_target_rows_judge_each_bar_from_the_table(tmp_path):
    """target_rows: a bar relative to the paper's cell is that multiple of it (GPM Omniglot
    25.68 x 1.25 = 32.1), an absolute bar is the number itself; a cell without runs is 'not run'."""
    _fake_result(tmp_path, "table1_omniglot_gpm_authors", "cpu_alpha_cap", 0, 30.0)
    _fake_result(tmp_path, "table1_omniglot_gpm_authors", "cpu_long_alpha", 0, 26.0)
    _fake_result(tmp_path, "table1_omniglot_gpm_iid", "cpu", 0, 69.0)
    rows = table1.table1(results_dir=tmp_path, datasets=("omniglot",))
    got = {(r["model"], r["profile"]): r for r in table1.target_rows(rows)}
    cap = got[("GPM (authors' code)", "cpu_alpha_cap")]
    assert cap["bar"] == pytest.approx(1.25 * 25.68) and cap["verdict"] == "met" and cap["ours"] == 30.0
    assert got[("GPM (authors' code)", "cpu_long_alpha")]["verdict"] == "missed"  # 26.0 > 25.68
    assert got[("GPM (paper's text)", "cpu")]["bar"] == 70.0 and got[("GPM (paper's text)", "cpu")]["verdict"] == "met"
    assert got[("DKM", "cpu")]["verdict"] == "not run" and got[("DKM", "cpu")]["bar"] == pytest.approx(1.1 * 77.2)
    assert {r["dataset"] for r in got.values()} == {"omniglot"}
