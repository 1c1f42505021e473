"""Capacity analyses (gpm_core.analyses.capacity): class episodes hold the requested classes, the
DKM-capacity cells agree with calling `model.evaluate` directly, the Fig. 4 analysis runs end
to end, config errors say what is wrong, and the CLI writes an artifact with provenance.
Tiny GPM and DKM models trained for two steps on fabricated images."""

from __future__ import annotations

import json

import pytest

from gpm_core.evaluate import episode_seed
import torch

from gpm_core.analyses import capacity
from gpm_core.__main__ import main
from gpm_core.artifacts import ANALYSIS_SCHEMA, load_results
from gpm_core.config import ConfigError, capacity_config, config_from_dict, load_capacity_config, load_config
from gpm_core.datasets import ImageSet, load_images
from gpm_core.episodes import capacity_episodes
from gpm_core.report import capacity as report_capacity
from gpm_core.runs import mix_seed
from gpm_core.train import train
from conftest import tiny_toml

DKM_TOML = """\
experiment = "cap_test"
analysis = "dkm_fig2"
[capacity]
experiments = ["tiny_gpm", "tiny_dkm"]
model_profile = "quick"
seeds = []
lengths = [3, 9]
classes = [2, 4]
episodes = 3
batch_size = 2
seed = 5
[profiles.quick]
"""

FIG4_TOML = """\
experiment = "fig4_test"
analysis = "gpm_fig4"
[curve]
experiments = ["tiny_gpm"]
profile_prefix = "quick"
seed = 0
test_images = 16
eval_seed = 3
batch_size = 2
[storage]
experiment = "tiny_gpm"
write = 40
queries = 12
corruption = "salt_pepper"
level = 0.05
iters = 3
query_batch = 5
samples = 4
sample_iters = 2
show = 3
grid_iters = [0, 1, 3]
seed = 1
[profiles.quick]
"""


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny convolutions are far faster on one thread on a shared CPU; restored afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def results(tmp_path_factory, one_thread):
    """Two tiny trained models (GPM, DKM) in a results folder; torch's global state restored."""
    tmp = tmp_path_factory.mktemp("cap")
    det, warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        for kind in ("gpm", "dkm"):
            cfg = load_config(tiny_toml(tmp / f"{kind}.toml", kind=kind, steps=2, experiment=f"tiny_{kind}"), "quick")
            train(cfg, seed=0, device="cpu", run_dir=tmp / "runs" / kind, results_dir=tmp / "results",
                  progress=False)
    torch.use_deterministic_algorithms(det, warn_only=warn)
    return tmp / "results"


def test_class_episodes_have_the_requested_classes():
    labels = torch.arange(12).repeat_interleave(5)  # 12 classes, 5 images each
    images = (labels * 20).to(torch.uint8).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    ds = ImageSet(images, labels, {"max_value": 255})
    for n_cls, L in ((2, 7), (4, 30), (8, 3)):
        X, lab, idx = capacity_episodes(ds, L, n_cls, episodes=5, seed=11)
        assert X.shape == (5, L, 1, 2, 2) and lab.shape == idx.shape == (5, L)
        assert torch.equal((X[..., 0, 0, 0] * 255 / 20).round().long(), lab)  # labels are those of X
        assert torch.equal(lab, labels[idx])
        for row in lab:
            assert len(set(row.tolist())) <= n_cls
            if L >= 5 * n_cls:  # the pool runs out, so every chosen class is in the episode
                assert len(set(row.tolist())) == n_cls
    a, _, _ = capacity_episodes(ds, 9, 2, 3, seed=4)
    b, _, _ = capacity_episodes(ds, 9, 2, 3, seed=4)
    assert torch.equal(a, b)  # fixed by the seed


def test_dkm_capacity_matches_direct_evaluate(results, tmp_path):
    cfg = capacity_config(__import__("tomllib").loads(DKM_TOML), "quick")
    path = capacity.analyse(cfg, results_dir=results)
    art = json.loads(path.read_text())
    assert art["schema"] == ANALYSIS_SCHEMA and {r["model"] for r in art["rows"]} == {"gpm", "dkm"}
    from gpm_core.runs import load_trained

    for row in art["rows"]:
        res = next(r for r in load_results(row["experiment"], results_dir=results))
        model, mcfg = load_trained(res)
        test_set = load_images(mcfg.data.dataset, "test", mcfg.data)
        for cell in row["cells"]:
            seed = mix_seed(5, cell["classes"], cell["L"])
            X, _, _ = capacity_episodes(test_set, cell["L"], cell["classes"], 3, seed)
            direct = []
            for i in range(3):  # one episode per call, its noise seeded as evaluate_model does
                torch.manual_seed(episode_seed(seed, i))
                direct.append(model.evaluate(X[i:i + 1])["nll_cond"])
            direct = torch.cat(direct)
            for bs in (1, 2):  # the scores do not depend on how many episodes go at once
                again = capacity.score_episodes(model, X, bs, seed)["nll_cond"]
                assert torch.allclose(again, direct.double())
            assert cell["nll_cond"]["n"] == 3 and cell["classes_per_episode"] <= cell["classes"]
            assert cell["nll_cond"]["mean"] == pytest.approx(direct.double().mean().item(), rel=1e-6)
    curves = report_capacity.dkm_curves(art)
    assert set(curves) == {("gpm", 2), ("gpm", 4), ("dkm", 2), ("dkm", 4)}
    div = report_capacity.gpm_divergence_rows(art)  # GPM only (alpha = 1e-3, a float): alpha sigma_max(W0)^2
    assert [(r["classes"], r["L"]) for r in div] == [(2, 3), (2, 9), (4, 3), (4, 9)]
    assert all(0 < r["ratio_W0"] <= r["ratio_max"] and 0 < r["ratio_M"] <= r["ratio_max"] for r in div)


def test_dkm_growth_rows_split_the_change_by_hand():
    """The change of the bound from the shortest to the longest episode is split into its
    terms, and the reconstruction's change at the first length holding every distinct image."""
    def cell(n_cls, L, distinct, recon, kl):
        return {"classes": n_cls, "L": L, "distinct_images": distinct, "recon": {"mean": recon},
                "kl_w": {"mean": kl}, "nll_cond": {"mean": recon + kl}}

    grid = [(10, 10.0), (25, 25.0), (50, 40.0), (200, 40.0)]  # 8 classes: all 40 images from L = 50
    seed0 = [cell(8, L, d, r, k) for (L, d), r, k in zip(grid, (10, 14, 20, 23), (7, 7, 6, 5))]
    seed1 = [cell(8, L, d, r, k) for (L, d), r, k in zip(grid, (12, 16, 22, 29), (7, 7, 6, 5))]
    analysis = {"rows": [{"model": "dkm", "cells": seed0}, {"model": "dkm", "cells": seed1}]}
    (row,) = report_capacity.dkm_growth_rows(analysis)
    # means over the seeds: recon 11, 15, 21, 26; KL 7, 7, 6, 5
    assert (row["model"], row["classes"], row["distinct_first"], row["distinct"], row["L_full"]) == ("DKM", 8, 10, 40, 50)
    assert row["recon"] == pytest.approx(26 - 11) and row["kl"] == pytest.approx(5 - 7)
    assert row["nll"] == pytest.approx(row["recon"] + row["kl"])
    assert (row["recon_distinct"], row["recon_repeat"]) == (pytest.approx(21 - 11), pytest.approx(26 - 21))
    assert row["seeds"] == 2 and isinstance(row["distinct"], int)


def test_fig4_analysis_end_to_end(results):
    cfg = capacity_config(__import__("tomllib").loads(FIG4_TOML), "quick")
    art = json.loads(capacity.analyse(cfg, results_dir=results).read_text())
    (p,) = art["points"]
    assert p["T"] == 4 and p["episodes"] == 4 and p["recon"]["n"] == 4
    st = art["storage"]
    assert st["written"] == 40 and st["queries"] == 12 and len(st["hamming_per_iter"]) == 4
    # 5 % of 16 x 16 pixels flipped: the noisy queries are exactly round(0.05 * 256) pixels off
    assert st["hamming_noisy"]["mean"] == round(0.05 * 256)
    assert st["grid"]["iters"] == [1, 3] and len(st["grid"]["original"]) == 3
    assert st["samples"]["iters"] == [0, 1] and len(st["samples"]["nearest_hamming"]) == 4
    imgs = report_capacity.unpack_images(st["grid"]["noisy"], tuple(st["image_shape"]))
    assert imgs.shape == (3, 1, 16, 16) and set(imgs.unique().tolist()) <= {0.0, 1.0}
    assert [r["path"] for r in art["sources"]] and all(r["config_hash"] for r in art["sources"])


def test_config_errors_are_clear(tmp_path):
    import tomllib

    raw = tomllib.loads(DKM_TOML)
    with pytest.raises(ConfigError, match="unknown key 'lenghts'.*valid keys"):
        capacity_config({**raw, "capacity": {**raw["capacity"], "lenghts": [1]}})
    with pytest.raises(ConfigError, match=r"capacity.classes = \[0, 2\]: expected a non-empty list of integers > 0"):
        capacity_config({**raw, "capacity": {**raw["capacity"], "classes": [0, 2]}})
    with pytest.raises(ConfigError, match="profile 'paper' is not in .*available profiles: quick"):
        capacity_config(raw, "paper")
    with pytest.raises(ConfigError, match="analysis = 'capacity'"):
        capacity_config({**raw, "analysis": "capacity"})
    with pytest.raises(ConfigError, match=r"\[capacity\] lacks episodes"):
        capacity_config({**raw, "capacity": {k: v for k, v in raw["capacity"].items() if k != "episodes"}})
    with pytest.raises(ConfigError, match="does not exist"):
        load_capacity_config(tmp_path / "nope.toml")
    for name in ("fig4_capacity_eval", "dkm_fig2_capacity"):  # the repository's own files load
        from conftest import REPO

        for profile in ("quick", "paper"):
            assert load_capacity_config(REPO / "configs" / f"{name}.toml", profile)["profile"] == profile


def test_cli_writes_artifact_with_provenance(results, tmp_path, capsys):
    toml = tmp_path / "cap.toml"
    toml.write_text(DKM_TOML.replace("lengths = [3, 9]", "lengths = [3]"))
    assert main(["capacity", str(toml), "--profile", "quick", "--results-dir", str(results), "--seed", "2"]) == 0
    art = json.loads((results / "cap_test" / "quick-seed2.json").read_text())
    for key in ("git_commit", "git_dirty", "torch_version", "device", "timestamp", "command", "wall_time_s",
                "config", "sources"):
        assert key in art
    assert art["config"]["capacity"]["seed"] == 7  # the file's 5 + --seed 2
    assert {s["experiment"] for s in art["sources"]} == {"tiny_gpm", "tiny_dkm"}
    bad = tmp_path / "bad.toml"
    bad.write_text(DKM_TOML.replace("episodes = 3", "episodes = -1"))
    assert main(["capacity", str(bad), "--results-dir", str(results)]) == 2
    assert "error:" in capsys.readouterr().err


def test_storage_only_profile_on_a_named_model_and_split(results):
    """A storage-only profile (no curve): the model named by storage.model_profile writes the
    training split; with alpha = 'auto' the same weights are read with automatic alphas (no
    divergence check), with the model's fixed alphas the check is recorded."""
    import tomllib

    raw = tomllib.loads(FIG4_TOML)
    raw["curve"]["experiments"] = []
    (r,) = load_results("tiny_gpm", results_dir=results)
    cfg = config_from_dict(r["config"])
    train_set = load_images(cfg.data.dataset, "train", cfg.data)
    for alpha in ("auto", "model"):
        raw["storage"] |= {"model_profile": "quick", "split": "train", "alpha": alpha, "write": 0, "queries": 12}
        art = json.loads(capacity.analyse(capacity_config(raw, "quick"), results_dir=results).read_text())
        st = art["storage"]
        assert art["points"] == [] and st["split"] == "train" and st["written"] == len(train_set)
        assert st["model"]["profile"] == "quick" and st["alpha"] == alpha
        if alpha == "auto":
            assert st["pinv"] is None
        else:
            assert set(st["pinv"]) == {"W0", "M", "M_finite"} and st["pinv"]["M_finite"] in (True, False)
    with pytest.raises(ConfigError, match="storage.split = 'val'"):
        capacity_config({**raw, "storage": {**raw["storage"], "split": "val"}}, "quick")



def test_fig4_ordering_by_hand():
    """Means and sds over seeds per (K, T), and the ordering decided only beyond 2 standard
    errors over seeds (and never with one seed per size)."""
    def point(K, T, seed, v):
        return {"K": K, "T": T, "seed": seed, "recon": {"mean": v, "sd": 4.0, "n": 16},
                "train_steps": 10, "train_images": 100}

    pts = [point(8, 32, s, v) for s, v in enumerate((50.0, 52.0, 54.0))]
    pts += [point(32, 32, s, v) for s, v in enumerate((40.0, 41.0, 42.0))]  # 8 x 100 worse by 11
    pts += [point(8, 128, s, v) for s, v in enumerate((50.0, 60.0, 40.0))]
    pts += [point(32, 128, s, v) for s, v in enumerate((49.0, 51.0, 47.0))]  # 1 apart, sd 10: undecided
    pts += [point(8, 512, 0, 70.0), point(32, 512, 0, 20.0)]  # one seed: undecided
    rows = {r["T"]: r for r in report_capacity.fig4_ordering({"points": pts})}
    assert rows[32]["difference"] == pytest.approx(11.0)
    assert rows[32]["se"] == pytest.approx((4 / 3 + 1 / 3) ** 0.5)
    assert rows[32]["verdict"] == "32 x 100 better"
    assert rows[128]["verdict"] == "undecided" and rows[512]["verdict"] == "undecided"
    p = {(q["K"], q["T"]): q for q in report_capacity.fig4_points({"points": pts})}
    assert p[(8, 128)]["recon"] == 50.0 and p[(8, 128)]["sd_seeds"] == pytest.approx(10.0)
    assert p[(8, 512)]["seeds"] == 1 and p[(8, 512)]["se_episodes"] == pytest.approx(1.0)


def test_pinv_check_reports_the_capped_alpha():
    """With model.alpha_cap the storage test's divergence check reports alpha * sigma_max^2
    with the alpha each matrix was inverted with, min(alpha, auto_alpha): at most 1.8 where the
    fixed alpha is past the limit, and the uncapped product beside it (from SVDs, not the
    power bound); without the cap, the fixed alpha's product alone."""
    from types import SimpleNamespace

    g = torch.Generator().manual_seed(0)
    W0 = 3.0 * torch.randn(1, 400, 32, generator=g)  # 2e-3 * sigma_max^2 far past 2
    M = 0.1 * torch.randn(1, 32, 100, generator=g)   # 5e-4 * sigma_max^2 far below the limit
    s2 = lambda A: torch.linalg.svdvals(A[0].double())[0].item() ** 2
    for cap in (True, False):
        cfg = SimpleNamespace(kind="gpm", alpha_weight=2e-3, alpha_memory=5e-4, alpha_cap=cap)
        out = capacity._pinv_check(SimpleNamespace(cfg=cfg), {"W0": W0, "M": M})
        assert out["M"] == pytest.approx(5e-4 * s2(M), rel=1e-9) and out["M_finite"]
        if cap:
            assert 1.7 <= out["W0"] <= 1.8
            assert out["W0_uncapped"] == pytest.approx(2e-3 * s2(W0), rel=1e-9) and out["W0_uncapped"] > 2
            assert out["M_uncapped"] == pytest.approx(out["M"])
        else:
            assert out["W0"] == pytest.approx(2e-3 * s2(W0), rel=1e-9) and "W0_uncapped" not in out


def test_dkm_fig2_model_profile_table(results):
    """capacity.model_profile as a table: each experiment's runs of its own profile (the
    sources say which), and a table that misses an experiment is refused."""
    import tomllib

    raw = tomllib.loads(DKM_TOML)
    raw["capacity"]["model_profile"] = {"tiny_gpm": "quick", "tiny_dkm": "quick"}
    art = json.loads(capacity.analyse(capacity_config(raw, "quick"), results_dir=results).read_text())
    assert {(s["experiment"], s["profile"]) for s in art["sources"]} == {("tiny_gpm", "quick"), ("tiny_dkm", "quick")}
    raw["capacity"]["model_profile"] = {"tiny_gpm": "quick"}
    with pytest.raises(ConfigError, match="names no profile for 'tiny_dkm'"):
        capacity_config(raw, "quick")
    raw["capacity"]["model_profile"] = {"tiny_gpm": "quick", "tiny_dkm": "nope"}
    with pytest.raises(FileNotFoundError, match="tiny_dkm/nope-seed"):
        capacity.analyse(capacity_config(raw, "quick"), results_dir=results)
