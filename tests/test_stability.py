"""gpm_core.analyses.stability: alpha * sigma_max^2 of the pseudo-inverted matrices against
singular values computed independently, and the CLI's artifact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gpm_core import gpm
from gpm_core.analyses import stability
from gpm_core.__main__ import main
from gpm_core.artifacts import ANALYSIS_SCHEMA, load_analyses
from gpm_core.config import load_config
from gpm_core.evaluate import episode_seed
from gpm_core.models import build_model
from gpm_core.runs import CHECKPOINT, load_checkpoint, load_data
from gpm_core.train import train
from conftest import tiny_toml

pytestmark = pytest.mark.usefixtures("no_fault")


def test_margins_match_svdvals_of_an_explicit_write(tmp_path):
    cfg = load_config(tiny_toml(tmp_path / "g.toml", kind="gpm", steps=2, experiment="tiny_gpm"), "quick")
    train(cfg, seed=0, device="cpu", run_dir=tmp_path / "run", results_dir=tmp_path / "results", progress=False)
    model = build_model(cfg.model, image_shape=load_data(cfg, "train").image_shape)
    model.load_state_dict(load_checkpoint(tmp_path / "run" / CHECKPOINT)["model"])
    X = torch.rand(3, 4, 1, 16, 16, generator=torch.Generator().manual_seed(0)).round()
    got = stability.margins(model, X, seed=9)
    a = cfg.model.alpha_memory
    assert torch.allclose(got["M0"], torch.full((3,), a * torch.linalg.svdvals(model.M0.double())[0].item() ** 2, dtype=torch.float64))
    with torch.no_grad():  # episode 2 written by hand: Z + xi, W0 = Z_xi M0^+, M = W0^+ Z_xi
        torch.manual_seed(episode_seed(9, 2))
        Z = model.encode(X[2:3])
        Zx = gpm.add_write_noise(Z, cfg.model.sigma_xi)
        W0, M = gpm.write(Zx, model.M0, model.pinv_memory, model.pinv_weight)
    assert got["W0"][2].item() == pytest.approx(cfg.model.alpha_weight * torch.linalg.svdvals(W0[0].double())[0].item() ** 2, rel=1e-9)
    assert got["M"][2].item() == pytest.approx(a * torch.linalg.svdvals(M[0].double())[0].item() ** 2, rel=1e-9)
    sizes = stability.address_sizes(model, X, seed=9)
    with torch.no_grad():  # the reading weights of the clean codes, Algorithm 1's reading line 2
        W = gpm.address(Z, M, model.pinv_memory)
    assert sizes["W0"][2].item() == pytest.approx(W0[0].square().sum(-1).mean().item(), rel=1e-5)
    assert sizes["W"][2].item() == pytest.approx(W[0].square().sum(-1).mean().item(), rel=1e-5)
    sv2 = np.sort(np.linalg.svd(W0[0].double().numpy(), compute_uv=False) ** 2)  # the lower median, as torch's
    assert got["W0_median"][2].item() == pytest.approx(cfg.model.alpha_weight * sv2[(len(sv2) - 1) // 2], rel=1e-9)


def test_cli_writes_an_artifact_and_refuses_auto_alpha(tmp_path, capsys):
    cfg = load_config(tiny_toml(tmp_path / "g.toml", kind="gpm", steps=2, experiment="tiny_gpm"), "quick")
    train(cfg, seed=0, device="cpu", run_dir=tmp_path / "run", results_dir=tmp_path / "results", progress=False)
    assert main(["stability", str(tmp_path / "run"), "--episodes", "3", "--results-dir", str(tmp_path / "out")]) == 0
    (r,) = load_analyses("stability_tiny_gpm", tmp_path / "out")
    assert r["schema"] == ANALYSIS_SCHEMA and r["checkpoint_step"] == 2 and r["finished"]
    for split in ("train", "test"):
        for name in ("M0", "W0", "M"):
            m = r["margins"][split][name]
            assert m["n"] == 3 and 0 < m["min"] <= m["median"] <= m["max"]
        for name in ("W0", "W"):
            m = r["address_sizes"][split][name]
            assert m["n"] == 3 and 0 < m["min"] <= m["median"] <= m["max"]
    assert main(["stability", str(tmp_path / "results" / "tiny_gpm" / "quick-seed0.json"), "--episodes", "3",
                 "--results-dir", str(tmp_path / "out2")]) == 0  # a result JSON: the same weights, the same numbers
    (r2,) = load_analyses("stability_tiny_gpm", tmp_path / "out2")
    assert r2["margins"] == r["margins"]
    model = build_model(load_config(tiny_toml(tmp_path / "d.toml", kind="dkm", experiment="tiny_dkm"), "quick").model,
                        image_shape=(1, 16, 16))
    with pytest.raises(ValueError, match="fixed float alphas"):
        stability.margins(model, torch.zeros(1, 4, 1, 16, 16), 0)
