"""Config files: every experiment loads, and bad files fail with a message that says what
is valid."""

from __future__ import annotations

import glob

import pytest

from gpm_core.artifacts import load_results
from gpm_core.config import (
    Config, ConfigError, apply_overrides, config_from_dict, config_hash, load_config, to_dict,
)
from conftest import REPO, tiny_toml

ALL_CONFIGS = sorted(glob.glob(str(REPO / "configs" / "*.toml")))
# training configs have a [model] table; the others are analyses of trained runs
# (gpm_core.analyses.denoise, .capacity), checked below with their loaders in gpm_core.config
CONFIGS = [p for p in ALL_CONFIGS if "\n[model]" in open(p).read()]
ANALYSES = [p for p in ALL_CONFIGS if p not in CONFIGS]
# one T per file; the recipe ablation's profiles are its arms (tested below)
TABLE_CONFIGS = [p for p in CONFIGS if not p.rsplit("/", 1)[-1].startswith(("fig4_", "ablation_recipe_"))]
RECIPE_ABLATIONS = [p for p in CONFIGS if p.rsplit("/", 1)[-1].startswith("ablation_recipe_")]


def _profiles(path) -> list[str]:
    from gpm_core.config import tomllib

    with open(path, "rb") as f:
        return sorted(tomllib.load(f).get("profiles", {}))


@pytest.mark.parametrize("path", TABLE_CONFIGS, ids=lambda p: p.rsplit("/", 1)[-1])
@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_every_config_loads(path, profile):
    cfg = load_config(path, profile)
    assert cfg.experiment == path.rsplit("/", 1)[-1][:-5]  # experiment = file name
    assert cfg.profile == profile and cfg.description
    assert cfg.data.episode_length == 32  # T = 32 in both papers, also in quick profiles


@pytest.mark.parametrize("path", RECIPE_ABLATIONS, ids=lambda p: p.rsplit("/", 1)[-1])
def test_recipe_ablation_arms_change_one_factor(path):
    """Every arm trains the same budget on the same data; each one-factor arm differs from
    the base arm ('authors') in the fields its profile names and nowhere else."""
    from gpm_core.config import tomllib

    with open(path, "rb") as f:
        arms = tomllib.load(f)["profiles"]
    base = to_dict(load_config(path, "authors"))
    for arm, override in arms.items():
        cfg = to_dict(load_config(path, arm))
        assert cfg["train"]["steps"] == base["train"]["steps"] and cfg["data"] == base["data"]
        assert cfg["eval"] == base["eval"]
        changed = {f"{s}.{k}" for s in ("model", "train") for k in cfg[s] if cfg[s][k] != base[s][k]}
        named = {f"{s}.{k}" for s, table in override.items() if s != "description" for k in table}
        assert changed <= named, (arm, changed - named)


@pytest.mark.parametrize("path", [p for p in CONFIGS if p not in TABLE_CONFIGS + RECIPE_ABLATIONS],
                         ids=lambda p: p.rsplit("/", 1)[-1])
def test_capacity_training_configs_load_every_profile(path):
    profiles = _profiles(path)
    assert any(p.startswith("quick_T") for p in profiles) and any(p.startswith("paper_T") for p in profiles)
    for profile in profiles:
        cfg = load_config(path, profile)
        assert cfg.data.episode_length == int(profile.split("_T")[1])  # the profile names its T


@pytest.mark.parametrize("path", ANALYSES, ids=lambda p: p.rsplit("/", 1)[-1])
def test_every_analysis_config_loads(path):
    from gpm_core.config import load_capacity_config, load_denoise_config

    assert ANALYSES, "no analysis configs found"
    text = open(path).read()
    load = load_denoise_config if "[denoise]" in text else load_capacity_config
    for profile in _profiles(path):
        cfg = load(path, profile)
        assert cfg["experiment"] and cfg["experiment"] in text  # named in the file: results/<experiment>/


def test_the_expected_experiments_exist():
    names = {p.rsplit("/", 1)[-1][:-5] for p in CONFIGS}
    for name in ["table1_mnist_gpm", "table1_mnist_dkm", "table1_omniglot_gpm", "table1_omniglot_dkm",
                 "ablation_pinv_auto_alpha", "ablation_pinv_exact",  # paper-alpha arm = table1_omniglot_gpm
                 "table3_fashion_mnist_gpm", "table3_fashion_mnist_dkm",
                 "table1_cifar10_gpm", "table1_cifar10_dkm"]:
        assert name in names


def test_paper_profile_has_appendix_c_values():
    cfg = load_config(REPO / "configs" / "table1_omniglot_gpm.toml", "paper")
    m, t = cfg.model, cfg.train
    assert (m.memory_slots, m.code_size, m.sigma_xi, m.pinv_steps, m.alpha_memory) == (32, 100, 0.5, 7, 1e-3)
    assert (t.weight_decay, t.grad_clip) == (1e-3, 10.0) and 5e-5 <= t.lr <= 5e-4
    real = load_config(REPO / "configs" / "table1_cifar10_gpm.toml", "paper").model
    assert (real.memory_slots, real.code_size, real.alpha_weight, real.alpha_memory) == (128, 512, 1e-4, 5e-5)


def _write(tmp_path, text):
    p = tmp_path / "x.toml"
    p.write_text(text)
    return p


def test_unknown_key_lists_valid_keys(tmp_path):
    p = _write(tmp_path, '[model]\nkind = "gpm"\nfilter = 16\n')
    with pytest.raises(ConfigError, match="unknown key 'filter'.*valid keys: kind, likelihood, filters"):
        load_config(p)


def test_unknown_key_in_profile(tmp_path):
    p = _write(tmp_path, '[profiles.quick.train]\nstep = 5\n')
    with pytest.raises(ConfigError, match=r"unknown key 'step'.*profiles.quick.*valid keys:.*steps"):
        load_config(p, "quick")


@pytest.mark.parametrize("table,line,message", [
    ("model", 'kind = "kanerva"', "model.kind = 'kanerva': valid values are 'gpm', 'dkm', 'vae'"),
    ("model", 'likelihood = "gauss"', "valid values are 'bernoulli', 'dmol'"),
    ("model", 'pinv = "svd"', "valid values are 'ben_cohen', 'exact'"),
    ("model", "filters = -4", "model.filters = -4: must be > 0"),
    ("model", 'filters = "16"', "model.filters = '16': expected an integer"),
    ("model", "filters = 16.5", "expected an integer"),
    ("model", "alpha_memory = 0", 'expected a float > 0 or "auto"'),
    ("model", 'alpha_weight = "fast"', 'expected a float > 0 or "auto"'),
    ("data", 'dataset = "imagenet"', "valid values are 'mnist', 'fashion_mnist', 'omniglot'"),
    ("data", "episode_length = 0", "data.episode_length = 0: must be > 0"),
    ("data", "train_subset = -1", "must be >= 0"),
    ("train", "lr = -1e-4", "train.lr = -0.0001: must be > 0"),
    ("train", "lr_decay = 1.5", r"must be in \(0, 1\]"),
    ("train", "batch_size = true", "expected an integer"),
    ("model", "eval_write_noise = 1", "expected true or false"),
])
def test_bad_values_are_refused(tmp_path, table, line, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_write(tmp_path, f"[{table}]\n{line}\n"))


def test_unknown_profile_and_top_level_key(tmp_path):
    p = _write(tmp_path, "[profiles.quick.train]\nsteps = 5\n")
    with pytest.raises(ConfigError, match="profile 'fast' is not in .*available profiles: quick"):
        load_config(p, "fast")
    with pytest.raises(ConfigError, match="unknown top-level key.*valid keys: experiment"):
        load_config(_write(tmp_path, 'seed = 3\n'))
    with pytest.raises(ConfigError, match=r"unknown table \[profiles.quick.optim\]"):
        load_config(_write(tmp_path, "[profiles.quick.optim]\nlr = 1.0\n"), "quick")


def test_dmol_needs_unbinarized_data(tmp_path):
    p = _write(tmp_path, '[model]\nlikelihood = "dmol"\n[data]\nbinarize = "threshold"\n')
    with pytest.raises(ConfigError, match="set data.binarize = 'none'"):
        load_config(p)


def test_profiles_override_and_hash(tmp_path):
    p = tiny_toml(tmp_path / "t.toml", steps=6)
    paper, quick = load_config(p, "paper"), load_config(p, "quick")
    assert quick.train.steps == 6 and paper.train.lr == 1e-3
    again = load_config(p, "paper")
    assert config_hash(paper) == config_hash(again)
    again.description = "edited"  # prose does not change what is trained
    again.train.checkpoint_every = 100
    assert config_hash(paper) == config_hash(again)
    again.train.lr = 2e-3
    assert config_hash(paper) != config_hash(again)


def test_overrides_and_round_trip(tmp_path):
    cfg = load_config(tiny_toml(tmp_path / "t.toml"))
    cfg2 = apply_overrides(cfg, ["train.steps=9", "model.alpha_memory=auto", "data.dataset=mnist",
                                "data.image_size=28"])  # MNIST is 28 x 28 (16 is refused)
    assert (cfg2.train.steps, cfg2.model.alpha_memory, cfg2.data.dataset) == (9, "auto", "mnist")
    assert cfg.train.steps != 9  # the original is untouched
    with pytest.raises(ConfigError, match="expected SECTION.KEY=VALUE"):
        apply_overrides(cfg, ["steps=9"])
    with pytest.raises(ConfigError, match="must be > 0"):
        apply_overrides(cfg, ["train.steps=0"])
    back = config_from_dict(to_dict(cfg2))
    assert isinstance(back, Config) and to_dict(back) == to_dict(cfg2)


def test_config_hashes_match_the_committed_results():
    """Every training profile that results/ holds a run of hashes to the `config_hash` the run
    recorded: a change of the config schema must not orphan a committed result (a resumed
    run or an analysis compares these hashes)."""
    runs = load_results(results_dir=REPO / "results")
    assert runs, "no result JSONs in results/"
    for r in runs:
        cfg = load_config(REPO / "configs" / f"{r['experiment']}.toml", r["profile"])
        assert config_hash(cfg) == r["config_hash"], r["path"]
