"""gpm_core.analyses.denoise: the trajectories against a direct write + iterative_read, the energy
statistics against hand counts, the artifact written by the CLI, and the config errors."""

from __future__ import annotations

import json

import pytest
import torch

from gpm_core.analyses import denoise
from gpm_core.__main__ import main
from gpm_core.artifacts import ANALYSIS_SCHEMA, load_analyses
from gpm_core.config import ConfigError, load_config, load_denoise_config
from gpm_core.corruptions import hamming, salt_pepper
from gpm_core.report import denoise as report_denoise
from gpm_core.runs import load_data, load_trained
from gpm_core.train import train
from conftest import tiny_toml

pytestmark = pytest.mark.usefixtures("no_fault")

DENOISE_TOML = """\
experiment = "tiny_denoise"
description = "tests"
[denoise]
models = ["tiny_gpm", "tiny_dkm"]
T = [2, 4]
queries = 8
iterations = 3
test_seed = 11
[denoise.corruptions]
salt_pepper = [0.1, 0.2]
block = [3]
rotation = [30]
[denoise.table2_levels]
salt_pepper = 0.2
block = 3
rotation = 30
[denoise.examples]
T = 4
n = 2
[denoise.dkm_fig3]
T = 4
n = 3
iterations = 2
salt_pepper = 0.15
[profiles.quick]
model_profile = "quick"
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Tiny GPM and DKM runs on fabricated binary images, in a results folder."""
    tmp = tmp_path_factory.mktemp("denoise")
    with torch.random.fork_rng(devices=[]):
        for kind in ("gpm", "dkm"):
            cfg = load_config(tiny_toml(tmp / f"{kind}.toml", kind=kind, steps=2, experiment=f"tiny_{kind}"), "quick")
            train(cfg, seed=0, device="cpu", run_dir=tmp / "runs" / kind, results_dir=tmp / "results", progress=False)
    (tmp / "denoise.toml").write_text(DENOISE_TOML)
    return tmp


def test_trajectories_match_a_direct_write_and_read(trained):
    model, cfg = load_trained(trained / "results" / "tiny_gpm" / "quick-seed0.json")
    test_set = load_data(cfg, "test")
    X, Xq = denoise.queries(test_set, 4, 8, "salt_pepper", 0.2, 11)
    assert X.shape == Xq.shape == (2, 4, 1, 16, 16)
    assert torch.equal(hamming(X, Xq), torch.full((2, 4), round(0.2 * 256)))
    tr = denoise.denoise_trajectories(model, X, Xq, 3, write_seed=5)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)  # the first chunk's seed: write_seed + 0
        state = model.write(X)
        ref = model.iterative_read(Xq, state, 3)
    assert torch.equal(tr["hamming"], hamming(ref["X"], X.expand_as(ref["X"])))
    assert torch.equal(tr["hamming"][0], hamming(Xq, X))
    assert torch.allclose(tr["energy"], ref["energy"].double())
    assert torch.equal(tr["X"].float(), (ref["X"] > 0.5).float())
    assert torch.equal(tr["ink"], (ref["X"] > 0.5).flatten(-3).sum(-1))


def test_queries_are_the_same_for_every_model_and_depend_on_the_level(trained):
    _, cfg = load_trained(trained / "results" / "tiny_dkm" / "quick-seed0.json")
    test_set = load_data(cfg, "test")
    a = denoise.queries(test_set, 2, 8, "salt_pepper", 0.1, 11)
    b = denoise.queries(test_set, 2, 8, "salt_pepper", 0.1, 11)
    c = denoise.queries(test_set, 2, 8, "salt_pepper", 0.2, 11)
    assert torch.equal(a[1], b[1]) and torch.equal(a[0], c[0]) and not torch.equal(a[1], c[1])


def test_energy_stats_count_by_hand():
    e = torch.tensor([[5.0, 5.0, 5.0, 1.0],
                      [4.0, 6.0, 5.0, 2.0],
                      [3.0, 7.0, 5.0, 1.0]])  # (steps, trajectories)
    st = denoise.energy_stats(e)
    # trajectory 0: 5 4 3 (down, monotone); 1: 5 6 7 (up); 2: 5 5 5 (flat: monotone, not lower);
    # 3: 1 2 1 (rises once, ends equal)
    assert st["n"] == 4
    assert st["decreased"] == pytest.approx(1 / 4)
    assert st["monotone"] == pytest.approx(2 / 4)
    assert st["rose"] == pytest.approx(2 / 4)


def test_pack_unpack_roundtrip():
    X = (torch.rand(3, 2, 1, 5, 7, generator=torch.Generator().manual_seed(0)) > 0.5)
    assert torch.equal(report_denoise.unpack(denoise._pack(X)), X.float())


def test_cli_writes_an_analysis_artifact(trained, capsys):
    results = trained / "results"
    assert main(["denoise", str(trained / "denoise.toml"), "--results-dir", str(results)]) == 0
    assert "wrote" in capsys.readouterr().out
    (r,) = load_analyses("tiny_denoise", results)
    assert r["schema"] == ANALYSIS_SCHEMA and r["seed"] == 0 and r["profile"] == "quick"
    for key in ("git_commit", "torch_version", "device", "wall_time_s", "config", "sources"):
        assert key in r
    assert [s["experiment"] for s in r["sources"]] == ["tiny_gpm", "tiny_dkm"]
    assert len(r["grid"]) == 2 * 4  # T x (2 + 1 + 1) levels
    row = r["grid"][0]
    for m in ("tiny_gpm", "tiny_dkm"):
        assert len(row[m]["success_rate"]) == len(row[m]["hamming_mean"]) == 4  # query + 3 reads
        assert row[m]["energy"]["n"] == row[m]["n"]
    assert set(r["examples"]) == {"salt_pepper", "block", "rotation"}
    assert report_denoise.unpack(r["examples"]["block"]["tiny_dkm"]["X"]).shape == (4, 2, 1, 16, 16)
    rows = report_denoise.table2_rows([r])
    assert len(rows) == 6 and all("T = 4" in row for row in rows)
    assert len(report_denoise.energy_rows([r])) == 6 and len(report_denoise.diagnosis_rows([r])) == 6
    # the same command again gives the same numbers
    before = json.loads(open(r["path"]).read())
    assert main(["denoise", str(trained / "denoise.toml"), "--results-dir", str(results)]) == 0
    after = json.loads(open(r["path"]).read())
    assert after["grid"] == before["grid"] and after["dkm_fig3"] == before["dkm_fig3"]


def test_missing_trained_run_says_which_command_trains_it(trained, capsys):
    assert main(["denoise", str(trained / "denoise.toml"), "--seed", "3",
                 "--results-dir", str(trained / "results")]) == 5
    err = capsys.readouterr().err
    assert "quick-seed3.json: no trained run" in err and "python -m gpm_core train configs/tiny_gpm.toml" in err


@pytest.mark.parametrize("edit, message", [
    (("iterations = 3", "iterations = 0"), "iterations must be an integer >= 1"),
    (("rotation = [30]", "blur = [1]"), "unknown corruption 'blur'"),
    (("block = 3\n", "block = 5\n"), "table2 level block = 5 is not among the swept levels"),
    (("queries = 8", "queries = 3"), "queries must be an integer >= max"),
    (("[profiles.quick]", "[profiles.other]"), "no profile 'quick'"),
    (("T = [2, 4]\n", ""), "needs `T`"),
    (("T = [2, 4]", "T = 4"), "denoise.T must be a non-empty list"),
    (("salt_pepper = [0.1, 0.2]", "salt_pepper = 0.1"), "must map each kind to a non-empty list"),
    (("iterations = 2\n", "iters = 2\n"), r"\[denoise.dkm_fig3\] must have exactly the keys"),
    (("test_seed = 11", "test_seed = 11\nsuccess_fraction = 5"), r"success_fraction must be in \[0, 1\)"),
])
def test_config_errors_name_the_field(tmp_path, edit, message):
    path = tmp_path / "bad.toml"
    path.write_text(DENOISE_TOML.replace(*edit, 1))
    with pytest.raises(ConfigError, match=message):
        load_denoise_config(path, "quick")


def test_success_rate_and_hamming_summary_by_hand():
    ham = torch.tensor([[[30, 9], [7, 0]],  # step 0: the queries
                        [[8, 7], [6, 100]]])  # step 1: (steps, episodes, T)
    tr = {"hamming": ham, "ink": torch.ones_like(ham)}
    s = denoise._summary(tr, threshold=7)
    assert s["n"] == 4
    assert s["success_rate"] == [50.0, 50.0]  # step 0: 7 and 0 pass; step 1: 7 and 6 pass
    assert s["hamming_mean"] == [11.5, 30.25]
    assert s["ink_mean"] == [1.0, 1.0]


def _fake_run(dataset):
    grid = [{"T": T, "kind": k, "level": lv, "tiny_gpm": {"success_rate": [0.0, 12.5]},
             "tiny_dkm": {"success_rate": [0.0, 2.5]}}
            for T in (4, 8, 16) for k, lv in (("salt_pepper", 0.15), ("block", 12), ("rotation", 30))]
    return {"config": {"models": ["tiny_gpm", "tiny_dkm"], "T": [4, 8, 16],
                       "table2_levels": {"salt_pepper": 0.15, "block": 12, "rotation": 30}},
            "sources": [{"experiment": "tiny_gpm", "model": "gpm"}, {"experiment": "tiny_dkm", "model": "dkm"}],
            "data": {"test": {"dataset": dataset}}, "grid": grid}


def test_table2_prints_the_paper_only_beside_omniglot():
    from gpm_core.report.paper_numbers import TABLE2

    rows = report_denoise.table2_rows([_fake_run("omniglot")])
    assert rows[0]["T = 4"] == f"12.5 ± 0.0 ({TABLE2[('gpm', 'salt_pepper_15')][0]:.2f})"
    assert rows[5]["T = 16"] == f"2.5 ± 0.0 ({TABLE2[('dkm', 'rotation_30')][2]:.2f})"
    assert all("(" not in row[f"T = {T}"] for row in report_denoise.table2_rows([_fake_run("mnist")]) for T in (4, 8, 16))
