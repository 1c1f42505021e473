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
from gpm_core.corruptions import hamming, rotate, salt_pepper
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


def test_decode_threshold_reaches_every_read_and_the_artifact(trained, capsys):
    """decode_threshold: the trajectories are `model.iterative_read` with that threshold, and
    the CLI records it in the artifact's config (absent: the mode, as before)."""
    model, cfg = load_trained(trained / "results" / "tiny_gpm" / "quick-seed0.json")
    X, Xq = denoise.queries(load_data(cfg, "test"), 4, 8, "salt_pepper", 0.2, 11)
    tr = denoise.denoise_trajectories(model, X, Xq, 3, write_seed=5, threshold=0.1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(5)
        ref = model.iterative_read(Xq, model.write(X), 3, threshold=0.1)
    assert torch.equal(tr["X"].float(), ref["X"])
    results = trained / "results"
    toml = trained / "threshold.toml"
    toml.write_text(DENOISE_TOML.replace('experiment = "tiny_denoise"', 'experiment = "tiny_threshold"')
                    .replace("test_seed = 11", "test_seed = 11\ndecode_threshold = 0.1"))
    assert main(["denoise", str(toml), "--results-dir", str(results)]) == 0
    (r,) = load_analyses("tiny_threshold", results)
    assert r["config"]["decode_threshold"] == 0.1
    assert "decode_threshold" not in load_denoise_config(trained / "denoise.toml", "quick")


def test_model_profile_table_picks_one_profile_per_model(trained, capsys):
    """model_profile = {experiment = profile}: each model's runs of its own profile (here a
    profile that only tiny_dkm has, "other", so a wrong pick cannot pass); the artifact's
    sources say which runs were used."""
    results = trained / "results"
    src = results / "tiny_dkm" / "quick-seed0.json"
    other = results / "tiny_dkm" / "other-seed0.json"
    other.write_text(src.read_text().replace('"profile": "quick"', '"profile": "other"'))
    (results / "tiny_dkm" / "other-seed0.pt").write_bytes((results / "tiny_dkm" / "quick-seed0.pt").read_bytes())
    toml = trained / "mixed.toml"
    toml.write_text(DENOISE_TOML.replace('experiment = "tiny_denoise"', 'experiment = "tiny_mixed"').replace(
        'model_profile = "quick"', 'model_profile = {tiny_gpm = "quick", tiny_dkm = "other"}'))
    cfg = load_denoise_config(toml, "quick")
    assert cfg["model_profile"] == {"tiny_gpm": "quick", "tiny_dkm": "other"}
    try:
        assert main(["denoise", str(toml), "--results-dir", str(results)]) == 0
        (r,) = load_analyses("tiny_mixed", results)
        assert [(s["experiment"], s["profile"]) for s in r["sources"]] == [("tiny_gpm", "quick"), ("tiny_dkm", "other")]
    finally:
        for f in (other, results / "tiny_dkm" / "other-seed0.pt"):
            f.unlink()


def test_a_range_of_rotation_angles_is_a_level(trained, capsys):
    """A rotation level [-a, a] (an angle drawn from the range) runs through the grid and the
    Table 2 rows, and is matched to the paper's "rotation a" column; its queries differ from
    those of the fixed angle +-a."""
    results = trained / "results"
    toml = trained / "range.toml"
    toml.write_text(DENOISE_TOML.replace('experiment = "tiny_denoise"', 'experiment = "tiny_range"')
                    .replace("rotation = [30]", "rotation = [[-30, 30]]").replace("rotation = 30", "rotation = [-30, 30]"))
    assert main(["denoise", str(toml), "--results-dir", str(results)]) == 0
    (r,) = load_analyses("tiny_range", results)
    rows = [row for row in r["grid"] if row["kind"] == "rotation"]
    assert rows and all(row["level"] == [-30, 30] for row in rows)
    cells = [c for c in report_denoise.table2_cells([r]) if c["kind"] == "rotation"]
    assert [c["T"] for c in cells] == [2, 4] and all(c["level"] == [-30, 30] for c in cells)
    assert report_denoise._paper_level([-30, 30]) == "30" and report_denoise._paper_level([0, 30]) == "[0, 30]"
    assert report_denoise._paper_level([-30.0, 30.0]) == "30" and report_denoise._paper_level(0.15) == "15"
    # the queries: each angle drawn from [-30, 30] (not +-30), with the generator of the level
    test_set = load_data(load_trained(results / "tiny_gpm" / "quick-seed0.json")[1], "test")
    X, drawn = denoise.queries(test_set, 4, 8, "rotation", [-30, 30], 11)
    gen = lambda: denoise._gen(11, 4, denoise._kind_key("rotation"), denoise._level_key([-30, 30]))
    assert torch.equal(drawn, rotate(X, (-30.0, 30.0), gen()))
    assert not torch.equal(drawn, rotate(X, 30.0, gen()))


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
    (('model_profile = "quick"', 'model_profile = {tiny_gpm = "quick"}'), "names no profile for 'tiny_dkm'"),
    (('model_profile = "quick"', 'model_profile = 3'), "denoise.model_profile = 3: expected a profile name"),
    (('model_profile = "quick"', 'model_profile = {tiny_gpm = "quick", tiny_dkm = "quick", tiny_vae = "quick"}'),
     "names 'tiny_vae', which the analysis does not use"),
    (("rotation = [30]", "rotation = [[30, -30]]"), r"a range level is \[lo, hi\] with lo <= hi"),
    (("rotation = [30]", "rotation = [[-30, 0, 30]]"), r"a range level is \[lo, hi\]"),
    (("salt_pepper = [0.1, 0.2]", "salt_pepper = [[0.1, 0.2]]"), "for rotation only"),
    (("block = [3]", "block = [-3]"), r"block = -3: expected a number >= 0"),
    (("test_seed = 11", "test_seed = 11\ndecode_threshold = 1.5"), r"decode_threshold = 1.5: expected a number in \(0, 1\)"),
    (("test_seed = 11", "test_seed = 11\ndecode_threshold = true"), r"decode_threshold = True: expected a number"),
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


def test_fig7_panels_baselines_and_clean_reads(trained, tmp_path):
    """Fig. 7 (a-d) with a rotation range and Gaussian noise, the no-read baseline (the query's
    own success, step 0 of every model's trajectory) and the clean-query reads."""
    results = trained / "results"
    toml = tmp_path / "fig7.toml"
    toml.write_text(DENOISE_TOML.replace('experiment = "tiny_denoise"', 'experiment = "tiny_fig7"')
                    .replace("rotation = [30]\n", "rotation = [30]\ngaussian = [0.5]\n", 1)
                    .replace("[denoise.dkm_fig3]", "[denoise.fig7_levels]\nsalt_pepper = 0.2\nrotation = [-45, 45]\n"
                             "gaussian = 0.5\n\n[denoise.dkm_fig3]"))
    assert main(["denoise", str(toml), "--results-dir", str(results)]) == 0
    (r,) = load_analyses("tiny_fig7", results)
    assert list(r["examples"]) == ["salt_pepper", "rotation", "gaussian"]
    assert r["examples"]["rotation"]["level"] == [-45, 45]
    assert report_denoise.unpack(r["examples"]["gaussian"]["query"]).shape == (2, 1, 16, 16)
    for row in r["grid"]:
        for m in ("tiny_gpm", "tiny_dkm"):  # step 0 is the query itself, the same for both models
            assert row[m]["success_rate"][0] == pytest.approx(row["query_success_rate"])
    gauss = [row for row in r["grid"] if row["kind"] == "gaussian"]
    assert len(gauss) == 2 and all(row["query_hamming_mean"] > 0 for row in gauss)
    ex = r["table2_examples"]  # the Table 2 queries at the shortest T = 2: 8 queries from 4 episodes
    assert set(ex) == {"salt_pepper", "block", "rotation"} and ex["block"]["T"] == 2
    assert report_denoise.unpack(ex["block"]["tiny_gpm"]["X"]).shape == (4, 8, 1, 16, 16)
    assert len(ex["block"]["tiny_gpm"]["hamming"]) == 8 and len(ex["block"]["tiny_gpm"]["hamming"][0]) == 4
    assert [c["T"] for c in r["clean_reads"]] == [2, 4]
    # the clean reads start from the clean images: zero error at step 0
    assert all(c[m]["hamming_mean"][0] == 0 for c in r["clean_reads"] for m in ("tiny_gpm", "tiny_dkm"))


def _fake_cells_run(seed, gpm, dkm):
    """A fabricated artifact: GPM and DKM success rates per (kind, T) from `gpm`/`dkm`
    {kind: (T4, T8, T16)}, with baselines and clean reads."""
    run = _fake_run("omniglot") | {"seed": seed}
    for i, row in enumerate(run["grid"]):
        k, T = row["kind"], row["T"]
        row["tiny_gpm"] = {"success_rate": [0.0, gpm[k][(4, 8, 16).index(T)]]}
        row["tiny_dkm"] = {"success_rate": [0.0, dkm[k][(4, 8, 16).index(T)]]}
        row |= {"blank_success_rate": 1.0, "query_success_rate": 0.5}
    run["clean_reads"] = [{"T": T, "tiny_gpm": {"success_rate": [100.0, 90.0]},
                           "tiny_dkm": {"success_rate": [100.0, 40.0]}} for T in (4, 8, 16)]
    return run


def test_table2_cells_and_targets_by_hand():
    from gpm_core.report.paper_numbers import TABLE2

    g0 = {"salt_pepper": (30.0, 20.0, 10.0), "block": (50.0, 40.0, 45.0), "rotation": (16.0, 9.0, 2.0)}
    g1 = {"salt_pepper": (40.0, 30.0, 10.0), "block": (60.0, 40.0, 55.0), "rotation": (18.0, 9.0, 2.0)}
    d = {"salt_pepper": (1.0, 0.0, 0.0), "block": (0.0, 0.0, 0.0), "rotation": (1.0, 9.5, 1.0)}
    runs = [_fake_cells_run(0, g0, d), _fake_cells_run(1, g1, d)]
    cells = report_denoise.table2_cells(runs)
    sp4 = cells[0]
    assert (sp4["kind"], sp4["T"]) == ("salt_pepper", 4)
    assert sp4["gpm"]["mean"] == 35.0 and sp4["gpm"]["sd"] == pytest.approx(50 ** 0.5)
    assert sp4["gpm"]["paper"] == TABLE2[("gpm", "salt_pepper_15")][0]
    assert sp4["gpm"]["gap"] == pytest.approx(35.0 - TABLE2[("gpm", "salt_pepper_15")][0])
    assert sp4["blank"] == 1.0 and sp4["no_read"] == 0.5 and sp4["gpm"]["clean_read"] == 90.0
    met = {(t["target"].split(" ")[1], t["corruption"], str(t["T"])): t["met"]
           for t in report_denoise.table2_targets(runs)}
    assert met[("≥", "rotation 30", "4")] is False and met[("≥", "salt pepper 0.15", "4")] is True
    assert met[("falls", "block 12", "4, 8, 16")] is False  # 55 -> 40 -> 50
    assert met[("falls", "rotation 30", "4, 8, 16")] is True
    assert met[("above", "rotation 30", "8")] is False  # 9.0 vs 9.5
    assert sum(not v for v in met.values()) == 3
    rows = report_denoise.table2_long_rows(runs)
    assert rows[0]["GPM ours"] == f"35.0 ± {50 ** 0.5:.1f}" and rows[0]["all-blank"] == "1.0"
