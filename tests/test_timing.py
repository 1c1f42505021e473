"""The running-time benchmarks (benchmarks/fig3b.py, benchmarks/step_time.py) on tiny
sweeps: they run, write well-formed artifacts, and the chapter's tables and figure render
them. Nothing here asserts a speed (timed assertions fail on a busy machine)."""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from gpm_core.analyses import timing
from gpm_core.baselines import build_baseline
from gpm_core.report import timing as report_timing
from gpm_core.artifacts import ANALYSIS_SCHEMA, REPO, load_analyses


def _benchmark(name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = ["--T-values", "4,8", "--K-for-T", "4", "--K-values", "4,8", "--T-for-K", "4",
        "--steps-values", "1,2", "--steps-cases", "4x4", "--batch", "1", "--warmup", "0",
        "--rounds", "2", "--quiet"]


@pytest.fixture(scope="module")
def fig3b_doc(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    path = _benchmark("fig3b").main(TINY + ["--profile", "tiny", "--results-dir", str(out)])
    (doc,) = load_analyses("fig3b_running_time", results_dir=out)
    assert doc["path"] == str(path)
    return doc


def test_fig3b_artifact_is_well_formed(fig3b_doc):
    doc = fig3b_doc
    assert doc["schema"] == ANALYSIS_SCHEMA and doc["experiment"] == "fig3b_running_time"
    assert doc["profile"] == "tiny" and doc["seed"] == 0 and doc["sources"] == []
    assert doc["device"]["type"] == "cpu" and doc["config"]["T_values"] == [4, 8]
    assert doc["wall_time_s"] >= 0 and doc["batch"] == 1 and doc["n"] == 2
    sweeps = doc["sweeps"]
    assert [c["T"] for c in sweeps["T"]["cells"]] == [4, 8]
    assert [c["K"] for c in sweeps["K"]["cells"]] == [4, 8]
    assert [c["pinv_steps"] for c in sweeps["steps"]["cells"]] == [1, 2]
    for name in ("T", "K"):
        for c in sweeps[name]["cells"]:
            assert set(c["times"]) == {"gpm", "dkm", "gpm_memory", "dkm_memory"}
            assert set(c["ratios"]) == {"gpm/dkm", "gpm_memory/dkm_memory"}
            r = c["ratios"]["gpm/dkm"]
            assert r["q25"] <= r["median"] <= r["q75"] and r["n"] == 2
    for c in sweeps["steps"]["cells"]:
        assert set(c["times"]) == {"gpm", "gpm_memory"} and c["ratios"] == {}
        t = c["times"]["gpm"]
        assert len(t["samples_ms"]) == t["n"] == 2 and t["q25_ms"] <= t["median_ms"] <= t["q75_ms"]
    json.dumps(doc, allow_nan=False)  # finite numbers only


def test_fig3b_tables_and_figure(fig3b_doc):
    rows = report_timing.fig3b_rows(fig3b_doc, "T")
    assert [r["x"] for r in rows] == [4, 8] and rows[0]["gpm_growth"] == rows[0]["dkm_growth"] == "1.00"
    for sweep in ("T", "K", "steps"):
        for memory in (False, True):
            md = report_timing.fig3b_markdown(fig3b_doc, sweep, memory)
            assert md.count("\n") == 2 + len(fig3b_doc["sweeps"][sweep]["cells"])
    assert "DKM" not in report_timing.fig3b_markdown(fig3b_doc, "steps")
    assert report_timing.device_label(fig3b_doc).startswith("cpu (")
    fig = report_timing.fig_running_time(fig3b_doc)
    assert len(fig.axes) == 6
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_step_time_artifact_and_table(tmp_path):
    path = _benchmark("step_time").main(
        ["--configs", "binarized", "--batch", "1", "--T", "4", "--warmup", "0", "--steps", "2",
         "--results-dir", str(tmp_path), "--profile", "tiny"])
    (doc,) = load_analyses("step_time", results_dir=tmp_path)
    assert doc["path"] == str(path) and doc["config"]["configs"] == ["binarized"]
    (row,) = doc["rows"]
    assert row["config"] == "binarized" and (row["B"], row["T"]) == (1, 4)
    assert {"vae", "vae2", "gpm", "dkm", "gpm_memory", "dkm_memory"} <= set(row["times"])
    assert {"gpm/vae", "gpm/vae2", "dkm/vae"} <= set(row["ratios"])
    md = report_timing.step_time_markdown(doc)
    assert md.count("\n") == 3 and "GPM/VAE 2 samples" in md


def test_two_sample_vae_decodes_twice_as_many_codes():
    cfg, _ = timing.omniglot_config("gpm")
    cfg = type(cfg)(**{**cfg.__dict__, "filters": 4, "code_size": 8, "memory_slots": 4})
    model = build_baseline("vae2", cfg)
    seen = []
    model.decoder.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    X = timing.random_episodes(2, 3)
    out = model(X)
    assert seen == [2 * 2 * 3] and torch.isfinite(out["loss"])


def test_speed_options_keep_old_hashes_and_train_the_same_objective(tmp_path, data_root):
    from conftest import tiny_toml
    from gpm_core.config import apply_overrides, config_from_dict, config_hash, load_config, to_dict
    from gpm_core.train import train

    cfg = load_config(tiny_toml(tmp_path / "t.toml", steps=2), "quick")
    old = to_dict(cfg)
    for key in ("channels_last", "compile"):  # a config stored before these options existed
        old["train"].pop(key)
    assert config_hash(config_from_dict(old)) == config_hash(cfg)
    fast = apply_overrides(cfg, ["train.channels_last=true"])
    assert config_hash(fast) != config_hash(cfg)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        with torch.random.fork_rng(devices=[]):
            runs = [train(c, seed=0, device="cpu", run_dir=tmp_path / f"run{i}", results_dir=tmp_path / f"r{i}",
                          progress=False) for i, c in enumerate((cfg, fast))]  # two configs: two results
    finally:
        torch.use_deterministic_algorithms(deterministic)
    a, b = ([p["loss"] for p in r["loss_curve"]] for r in runs)
    assert a == pytest.approx(b, rel=1e-4)  # NHWC changes rounding, not the loss
