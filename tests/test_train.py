"""The training loop and CLI: every model x likelihood trains a few steps; a run killed
with SIGKILL resumes to bitwise the same weights as an uninterrupted one; one seed gives
one result; NaN, config mismatch and damaged checkpoints stop with a clear message."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from gpm_core.__main__ import main
from gpm_core.artifacts import RESULT_SCHEMA, load_results
from gpm_core.config import apply_overrides, load_config
from gpm_core.runs import CHECKPOINT, CheckpointError, ConfigMismatchError, load_checkpoint
from gpm_core.train import TrainingDiverged, train
from conftest import REPO, subprocess_env, tiny_toml

pytestmark = pytest.mark.usefixtures("no_fault")


def _run(tmp_path, name="run", **kw):
    cfg = load_config(tiny_toml(tmp_path / f"{name}.toml", **kw), "quick")
    return cfg, train(cfg, seed=0, device="cpu", run_dir=tmp_path / "runs" / name,
                      results_dir=tmp_path / "results", progress=False)


@pytest.mark.parametrize("kind", ["gpm", "dkm", "vae"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "dmol"])
def test_each_model_and_likelihood_trains(tmp_path, kind, likelihood):
    cfg, r = _run(tmp_path, kind=kind, likelihood=likelihood, steps=4, experiment=f"t_{kind}_{likelihood}")
    assert r["schema"] == RESULT_SCHEMA and (r["model"], r["likelihood"]) == (kind, likelihood)
    assert r["steps"] == 4 and [p["step"] for p in r["loss_curve"]] == [2, 4]
    m = r["metrics"]["nll_cond"]
    assert m["unit"] == "nats/image" and m["n"] == 4 and torch.isfinite(torch.tensor(m["value"]))
    if likelihood == "dmol":
        assert r["metrics"]["bits_per_dim"]["unit"] == "bits/dim"
    on_disk = load_results(results_dir=tmp_path / "results")
    assert len(on_disk) == 1 and on_disk[0]["config_hash"] == r["config_hash"]
    for key in ("git_commit", "git_dirty", "torch_version", "device", "wall_time_s", "config",
                "per_episode", "data", "deviation", "state_dict"):
        assert key in on_disk[0]
    assert on_disk[0]["deviation"].startswith("synthetic")
    assert (tmp_path / "results" / cfg.experiment / "quick-seed0.pt").exists()


def test_same_seed_same_result(tmp_path):
    _, a = _run(tmp_path, "a", steps=4)
    _, b = _run(tmp_path, "b", steps=4)
    assert a["metrics"] == b["metrics"] and a["loss_curve"] == b["loss_curve"]
    wa = load_checkpoint(tmp_path / "runs" / "a" / CHECKPOINT)["model"]
    wb = load_checkpoint(tmp_path / "runs" / "b" / CHECKPOINT)["model"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def _cli(tmp_path, toml, run_dir, **env):
    cmd = [sys.executable, "-m", "gpm_core", "train", str(toml), "--profile", "quick", "--device", "cpu",
           "--run-dir", str(run_dir), "--results-dir", str(tmp_path / f"results_{run_dir.name}"),
           "--no-progress"]
    return subprocess.run(cmd, cwd=tmp_path, env=subprocess_env(**env), capture_output=True, text=True,
                          timeout=120)


@pytest.mark.slow
def test_sigkilled_run_resumes_bitwise(tmp_path):
    toml = tiny_toml(tmp_path / "t.toml", kind="gpm", steps=8, checkpoint_every=3)
    whole = _cli(tmp_path, toml, tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    killed = _cli(tmp_path, toml, tmp_path / "cut", GPM_FAULT="kill@5")  # SIGKILL after step 5
    assert killed.returncode == -9
    assert load_checkpoint(tmp_path / "cut" / CHECKPOINT)["step"] == 3  # steps 4-5 are lost
    resumed = _cli(tmp_path, toml, tmp_path / "cut")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "from step 3 of 8" in resumed.stderr
    a, b = load_checkpoint(tmp_path / "whole" / CHECKPOINT), load_checkpoint(tmp_path / "cut" / CHECKPOINT)
    assert a["step"] == b["step"] == 8 and a["curve"] == b["curve"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    ra = json.loads((tmp_path / "results_whole" / "tiny" / "quick-seed0.json").read_text())
    rb = json.loads((tmp_path / "results_cut" / "tiny" / "quick-seed0.json").read_text())
    assert ra["metrics"] == rb["metrics"] and rb["resumes"] == 1


@pytest.mark.parametrize("fault,what", [("nan_loss@5", "the loss is nan"),
                                        ("nan_grad@5", "the gradient norm (first non-finite: ")])
def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, fault, what):
    monkeypatch.setenv("GPM_FAULT", fault)
    cfg = load_config(tiny_toml(tmp_path / "t.toml", steps=8, checkpoint_every=2), "quick")
    run_dir = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as e:
        train(cfg, seed=0, device="cpu", run_dir=run_dir, results_dir=tmp_path / "results", progress=False)
    msg = str(e.value)
    assert msg.startswith("step 5: ") and what in msg
    assert f"{run_dir / CHECKPOINT} (step 4) is kept" in msg
    ck = load_checkpoint(run_dir / CHECKPOINT)
    assert ck["step"] == 4 and all(torch.isfinite(v).all() for v in ck["model"].values())
    assert not (tmp_path / "results").exists()


def test_other_config_is_not_resumed(tmp_path):
    cfg, _ = _run(tmp_path, "r", steps=2)
    other = apply_overrides(cfg, ["train.lr=0.01"])
    with pytest.raises(ConfigMismatchError) as e:
        train(other, seed=0, device="cpu", run_dir=tmp_path / "runs" / "r", results_dir=tmp_path / "results",
              progress=False)
    from gpm_core.config import config_hash
    msg = str(e.value)
    assert config_hash(cfg) in msg and config_hash(other) in msg and "--fresh" in msg and "--run-dir" in msg
    r = train(other, seed=0, device="cpu", run_dir=tmp_path / "runs" / "r", results_dir=tmp_path / "results",
              fresh=True, progress=False, overwrite=True)  # the result of cfg is replaced on purpose
    assert r["config_hash"] == config_hash(other)


def test_damaged_checkpoint_message_and_cli_exit_code(tmp_path, capsys):
    toml = tiny_toml(tmp_path / "t.toml", steps=2)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / CHECKPOINT).write_bytes(b"\x80\x02 half a checkpoint")
    with pytest.raises(CheckpointError, match=f"checkpoint {run_dir / CHECKPOINT} is unreadable.*--fresh"):
        load_checkpoint(run_dir / CHECKPOINT)
    args = ["train", str(toml), "--profile", "quick", "--device", "cpu", "--run-dir", str(run_dir),
            "--results-dir", str(tmp_path / "results"), "--no-progress"]
    assert main(args) == 5
    assert "error: checkpoint" in capsys.readouterr().err
    assert main(args + ["--fresh"]) == 0


def test_cli_evaluate_reproduces_stored_metrics(tmp_path, capsys):
    cfg, r = _run(tmp_path, "e", steps=2)
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "runs" / "e"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "nll_cond" in out and f"{r['metrics']['nll_cond']['value']:.4f}" in out
    assert main(["evaluate", r["path"], "--device", "cpu"]) == 0
    assert "= stored" in capsys.readouterr().out
    before = json.loads(open(r["path"]).read())
    assert main(["evaluate", str(tmp_path / "runs" / "e"), "--device", "cpu", "--write",
                 "--results-dir", str(tmp_path / "results")]) == 0
    after = json.loads(open(r["path"]).read())
    assert after["metrics"] == before["metrics"] and after["loss_curve"] == before["loss_curve"]


def test_evaluation_does_not_depend_on_eval_batch_size(tmp_path):
    from gpm_core.evaluate import evaluate_model
    from gpm_core.models import build_model
    from gpm_core.runs import load_data

    cfg, r = _run(tmp_path, "b", steps=2)
    test_set = load_data(cfg, "test")
    model = build_model(cfg.model, image_shape=test_set.image_shape)
    model.load_state_dict(load_checkpoint(tmp_path / "runs" / "b" / CHECKPOINT)["model"])
    evs = [evaluate_model(model, test_set, apply_overrides(cfg, [f"eval.batch_size={bs}"]))["metrics"]
           for bs in (1, 3)]
    assert evs[0] == evs[1] == r["metrics"]


def test_cli_evaluate_write_rescores_a_result_json_in_place(tmp_path, capsys):
    cfg, r = _run(tmp_path, "j", steps=2)
    doc = json.loads(open(r["path"]).read())
    doc["metrics"]["nll_cond"]["value"] = -1.0  # as if scored by an older evaluation
    open(r["path"], "w").write(json.dumps(doc))
    assert main(["evaluate", r["path"], "--device", "cpu", "--write"]) == 0
    after = json.loads(open(r["path"]).read())
    assert after["metrics"] == r["metrics"]  # re-scored from the stored state_dict
    assert after["loss_curve"] == r["loss_curve"] and after["git_commit"] == r["git_commit"]
    assert after["evaluated"]["torch_version"] == torch.__version__


def test_cli_config_error_exit_code(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[model]\nkind = "kanerva"\n')
    assert main(["train", str(bad), "--device", "cpu"]) == 2
    assert "error: model.kind = 'kanerva'" in capsys.readouterr().err
