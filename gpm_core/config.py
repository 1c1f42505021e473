"""Experiment configuration: one TOML file per reported result in `configs/`.

A config file has four tables, `[model]`, `[data]`, `[train]`, `[eval]`, plus top-level
`experiment` and `description`, and `[profiles.<name>.<table>]` tables that override
fields for a named profile (`quick` runs on a laptop CPU in minutes, `paper` uses the
paper's hyper-parameters). `load_config(path, profile)` returns a validated `Config`.

The dataclasses below are the single schema of a training config: models read
`ModelConfig`, `gpm_core.datasets` reads `DataConfig`, `gpm_core.train` reads `TrainConfig`
and `EvalConfig`.

The analyses of trained runs have their own files (`load_capacity_config`,
`load_denoise_config`, at the end of this module): every TOML of `configs/` is read by
`read_toml` and checked here.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import sys
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .corruptions import KINDS as CORRUPTIONS

Alpha = Union[float, str]  # a positive float or "auto"


@dataclass
class ModelConfig:
    kind: str = "gpm"  # gpm | dkm | vae
    likelihood: str = "bernoulli"  # bernoulli | dmol
    filters: int = 16  # conv filters (16 binarized, 256 real-valued; GPM appendix C)
    code_size: int = 100  # C, the embedding / memory word size
    memory_slots: int = 32  # K, the number of memory rows
    sigma_xi: float = 0.5  # std of the writing noise xi (GPM) / observation noise (DKM)
    sigma_w: float = 0.3 ** 0.5  # initial std of q(W); trained (both papers)
    n_mixtures: int = 10  # components of the discretized logistic mixture (dmol only)
    # Networks: "paper" (GPM app. C's text) | "authors" (the authors' ResNet-BatchNorm nets)
    # | "authors_nobn" (the same without BatchNorm); see gpm_core.nets
    net: str = "paper"
    # The authors' decoder ends with a basic block on the likelihood's maps (true); false drops
    # it (ours: for the DMoL's 30 or 100 maps it costs more than the rest of a 16-filter net)
    out_block: bool = True
    # GPM noise: "paper" (Algorithm 1: xi once, when writing) | "authors" (the authors' code:
    # xi twice when writing, again on the codes when addressing, and on the read-out W M)
    noise: str = "paper"
    # q(W) sample: "iid" (the paper's q(W) = N(W_mean, sigma_w^2 I)) | "shared" (the authors'
    # code: one scalar N(0, 1) draw, times sigma_w, added to every element of W in the batch)
    w_sample: str = "iid"
    # GPM pseudo-inverses (Algorithm 1): "ben_cohen" (the paper) or "exact" (torch.linalg.pinv)
    pinv: str = "ben_cohen"
    pinv_steps: int = 7
    alpha_memory: Alpha = 1e-3  # alpha of M0+ and M+ (1e-3 Omniglot, 5e-5 real-valued)
    alpha_weight: Alpha = 1e-3  # alpha of W0+ (1e-3 Omniglot, 1e-4 real-valued)
    # GPM: cap each fixed alpha per matrix at the certified 1.8 / sigma_max^2 (pinv.ben_cohen_pinv's
    # `cap`): the fixed-alpha iteration wherever it converges with room, never a divergence
    alpha_cap: bool = False
    # GPM: add the writing noise xi when a test episode is written (Algorithm 1 writes Z_xi)
    eval_write_noise: bool = True
    # DKM: U0 = sigma_u^2 I (DKM appendix B), number of optional refinement passes
    sigma_u: float = 1.0
    dkm_refine: int = 0
    # std of the N(0, s^2) initialisation of the memory prior's mean (GPM's M0, DKM's R0); 1 in
    # both authors' codes. The scale of M0 sets the scale of W = Z M^+ and so KL(W) (chapter 07)
    memory_init_std: float = 1.0


@dataclass
class DataConfig:
    dataset: str = "omniglot"  # mnist | omniglot | fashion_mnist | cifar10 | cifar100 | celeba
    binarize: str = "threshold"  # threshold (0.5, as the official GPM code) | stochastic | none
    episode_length: int = 32  # T
    image_size: int = 28  # 28 for (Fashion)MNIST/Omniglot, 32 for CIFAR, 64/192 for CelebA
    train_subset: int = 0  # 0 = all training images; >0 = a fixed random N (seed 0; quick profiles, tests)
    test_subset: int = 0
    binarize_seed: int = 0  # seed of the one-off Bernoulli sample when binarize = "stochastic"


@dataclass
class TrainConfig:
    batch_size: int = 16  # episodes per step
    steps: int = 15000
    lr: float = 1e-4
    weight_decay: float = 1e-3
    grad_clip: float = 10.0
    lr_decay: float = 1.0  # multiplicative decay every lr_decay_every steps (0.99995 for real-valued GPM)
    lr_decay_every: int = 1  # steps between decays (GPM app. C decays once per epoch)
    checkpoint_every: int = 200  # steps between atomic checkpoints
    log_every: int = 50  # steps between entries of the loss curve in the artifact
    # Steps between scores of the test bound recorded in the artifact's `test_curve` (0 = none):
    # nll_cond on the first eval.curve_episodes test episodes, its time excluded from the
    # training time. It changes nothing in training (own RNG, BatchNorm in eval mode).
    eval_every: int = 0
    # Speed options, off by default: they change float rounding (not the objective), and
    # compile costs minutes at start-up on a CPU. benchmarks/step_time.py measures both.
    channels_last: bool = False  # conv weights and activations in NHWC
    compile: bool = False  # torch.compile the model's forward (backward through AOTAutograd)
    # Learning rate of the memory prior's mean (M0 / R0) as a multiple of lr (ours: Adam moves
    # each element at most about lr a step, too slowly for the scale of M0 that KL(W) asks for)
    memory_lr_scale: float = 1.0


@dataclass
class EvalConfig:
    episodes: int = 100  # test episodes of T images scored by `evaluate`
    batch_size: int = 25  # episodes moved to the device at once (scoring is per episode)
    seed: int = 1234  # the test episodes are the same for every run of an experiment
    curve_episodes: int = 10  # test episodes scored every train.eval_every steps


@dataclass
class Config:
    experiment: str
    description: str = ""
    profile: str = "paper"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


# --------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------
KINDS = ("gpm", "dkm", "vae")
LIKELIHOODS = ("bernoulli", "dmol")
PINVS = ("ben_cohen", "exact")
NETS = ("paper", "authors", "authors_nobn")  # gpm_core.nets.NETS (the math floor imports no config)
NOISES = ("paper", "authors")
W_SAMPLES = ("iid", "shared")
DATASETS = ("mnist", "fashion_mnist", "omniglot", "cifar10", "cifar100", "celeba",
            "synthetic", "synthetic_rgb")  # synthetic*: tiny fabricated images for tests
BINARIZE = ("threshold", "stochastic", "none")
# The side of the images of each dataset that is loaded as it is (gpm_core.datasets resizes
# only celeba, and makes the synthetic sets at data.image_size).
NATIVE_SIZE = {"mnist": 28, "fashion_mnist": 28, "omniglot": 28, "cifar10": 32, "cifar100": 32}

# Allowed values of the str fields, and the fields that must be > 0 or >= 0.
_CHOICES = {
    "model.kind": KINDS, "model.likelihood": LIKELIHOODS, "model.pinv": PINVS,
    "model.net": NETS, "model.noise": NOISES, "model.w_sample": W_SAMPLES,
    "data.dataset": DATASETS, "data.binarize": BINARIZE,
}
_POSITIVE = {
    "model.filters", "model.code_size", "model.memory_slots", "model.sigma_xi", "model.sigma_w",
    "model.n_mixtures", "model.pinv_steps", "model.sigma_u", "model.memory_init_std",
    "data.episode_length", "data.image_size",
    "train.batch_size", "train.steps", "train.lr", "train.lr_decay", "train.lr_decay_every",
    "train.checkpoint_every", "train.log_every", "train.memory_lr_scale",
    "eval.episodes", "eval.batch_size", "eval.curve_episodes",
}
_NON_NEGATIVE = {"model.dkm_refine", "data.train_subset", "data.test_subset", "data.binarize_seed",
                 "train.weight_decay", "train.grad_clip", "train.eval_every"}
_SECTIONS = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig, "eval": EvalConfig}
_TOP_LEVEL = ("experiment", "description", "model", "data", "train", "eval", "profiles")
# Fields that do not change what is trained: editing them must not block a resume.
_HASH_EXCLUDE = {"description", "profile", "train.checkpoint_every", "train.eval_every",
                 "eval.curve_episodes"}
_SPEED_OPTIONS = ("channels_last", "compile")  # train.* flags hashed only when on
# Fields added after results were committed: hashed only when they differ from the value that
# every earlier run had, so the stored config_hash of those runs stays valid.
_HASHED_UNLESS = {"model.net": "paper", "model.noise": "paper", "model.w_sample": "iid",
                  "model.out_block": True, "model.memory_init_std": 1.0, "model.alpha_cap": False,
                  "train.memory_lr_scale": 1.0}


class ConfigError(ValueError):
    """A config file or override with an unknown key or a bad value."""


def _field_types(cls) -> dict[str, object]:
    return typing.get_type_hints(cls, globalns=vars(sys.modules[__name__]))


def _check_value(key: str, value, typ):
    """Return `value` converted to the field type `typ`, or raise ConfigError."""
    if typ == Alpha:
        if value == "auto":
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            return float(value)
        raise ConfigError(f"{key} = {value!r}: expected a float > 0 or \"auto\"")
    if typ is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key} = {value!r}: expected true or false")
    if typ is int:
        if isinstance(value, int) and not isinstance(value, bool):
            out = value
        else:
            raise ConfigError(f"{key} = {value!r}: expected an integer")
    elif typ is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out = float(value)
        else:
            raise ConfigError(f"{key} = {value!r}: expected a finite number")
    elif typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r}: expected a string")
        out = value
    else:  # pragma: no cover - a field type this validator does not know
        raise ConfigError(f"{key}: unsupported field type {typ}")
    if key in _CHOICES and out not in _CHOICES[key]:
        raise ConfigError(f"{key} = {out!r}: valid values are {', '.join(map(repr, _CHOICES[key]))}")
    if key in _POSITIVE and not out > 0:
        raise ConfigError(f"{key} = {out!r}: must be > 0")
    if key in _NON_NEGATIVE and not out >= 0:
        raise ConfigError(f"{key} = {out!r}: must be >= 0")
    if key == "train.lr_decay" and out > 1:
        raise ConfigError(f"{key} = {out!r}: must be in (0, 1] (1 = no decay)")
    return out


def _apply_section(obj, section: str, values: dict, where: str):
    if not isinstance(values, dict):
        raise ConfigError(f"{where}[{section}] must be a table, got {values!r}")
    types = _field_types(type(obj))
    for name, value in values.items():
        if name not in types:
            raise ConfigError(f"unknown key {name!r} in {where}[{section}]; "
                              f"valid keys: {', '.join(types)}")
        setattr(obj, name, _check_value(f"{section}.{name}", value, types[name]))


def validate(cfg: Config) -> Config:
    """Check every field of `cfg` (also one built in Python) and the cross-field rules."""
    for section, cls in _SECTIONS.items():
        obj = getattr(cfg, section)
        for name, typ in _field_types(cls).items():
            setattr(obj, name, _check_value(f"{section}.{name}", getattr(obj, name), typ))
    if not isinstance(cfg.experiment, str) or not cfg.experiment:
        raise ConfigError(f"experiment = {cfg.experiment!r}: expected a non-empty string")
    if cfg.model.kind != "gpm" and cfg.model.noise != "paper":
        raise ConfigError(f"model.noise = {cfg.model.noise!r} is a GPM option (the authors' GPM code); "
                          f"set model.noise = 'paper' for model.kind = {cfg.model.kind!r}")
    if cfg.model.alpha_cap and not (cfg.model.kind == "gpm" and cfg.model.pinv == "ben_cohen"
                                    and any(a != "auto" for a in (cfg.model.alpha_memory, cfg.model.alpha_weight))):
        raise ConfigError("model.alpha_cap = true caps a fixed alpha of GPM's Ben-Cohen iterations; it does "
                          "nothing here (DKM, pinv = 'exact' or both alphas 'auto'): leave it false")
    if cfg.model.net == "paper" and not cfg.model.out_block:
        raise ConfigError("model.out_block = false is an option of the authors' nets (the paper's decoder "
                          "ends with its transposed conv): set model.net = 'authors' or leave out_block true")
    if cfg.model.kind == "vae" and cfg.model.w_sample != "iid":
        raise ConfigError("model.w_sample is a memory-model option; set model.w_sample = 'iid' for a VAE")
    if cfg.model.likelihood == "dmol" and cfg.data.binarize != "none":
        raise ConfigError("model.likelihood = 'dmol' models 8-bit images: set data.binarize = 'none'")
    native = NATIVE_SIZE.get(cfg.data.dataset)
    if native is not None and cfg.data.image_size != native:
        raise ConfigError(f"data.image_size = {cfg.data.image_size}: {cfg.data.dataset} images are "
                          f"{native} x {native} and are not resized; set data.image_size = {native} "
                          f"(only celeba and the synthetic sets are made at any size)")
    per_batch = cfg.train.batch_size * cfg.data.episode_length
    if 0 < cfg.data.train_subset < per_batch:
        raise ConfigError(f"data.train_subset = {cfg.data.train_subset} images cannot fill one batch of "
                          f"train.batch_size = {cfg.train.batch_size} episodes x data.episode_length = "
                          f"{cfg.data.episode_length}; use at least {per_batch}, or 0 for all images")
    if 0 < cfg.data.test_subset < cfg.data.episode_length:
        raise ConfigError(f"data.test_subset = {cfg.data.test_subset} images cannot fill one test episode "
                          f"of data.episode_length = {cfg.data.episode_length}; use at least "
                          f"{cfg.data.episode_length}, or 0 for all images")
    return cfg


def from_dict(raw: dict, profile: str = "paper", where: str = "config") -> Config:
    """Build a validated Config from a parsed TOML dict, applying `[profiles.<profile>]`."""
    unknown = set(raw) - set(_TOP_LEVEL)
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {sorted(unknown)} in {where}; "
                          f"valid keys: {', '.join(_TOP_LEVEL)}")
    cfg = Config(experiment=raw.get("experiment", ""), description=raw.get("description", ""),
                 profile=profile)
    for section in _SECTIONS:
        if section in raw:
            _apply_section(getattr(cfg, section), section, raw[section], where)
    profiles = raw.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"[profiles] in {where} must be a table of tables")
    if profile not in profiles and profile != "paper":
        raise ConfigError(f"profile {profile!r} is not in {where}; available profiles: "
                          f"{', '.join([*sorted(profiles), 'paper (the file without a profile table)'])}")
    override = profiles.get(profile, {})
    for section, values in override.items():
        if section == "description":
            cfg.description = values
            continue
        if section not in _SECTIONS:
            raise ConfigError(f"unknown table [profiles.{profile}.{section}] in {where}; "
                              f"valid tables: {', '.join(_SECTIONS)}, and key description")
        _apply_section(getattr(cfg, section), section, values, f"{where} [profiles.{profile}]")
    if not isinstance(cfg.description, str):
        raise ConfigError(f"description = {cfg.description!r}: expected a string")
    return validate(cfg)


def read_toml(path, where_to_look: str) -> dict:
    """The parsed TOML file `path` (every config of this package is read here), or a
    ConfigError that says where the configs are (`where_to_look`)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; {where_to_look}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None


def load_config(path, profile: str = "paper") -> Config:
    """Read a TOML experiment file and return the validated Config of one profile.

    `experiment` defaults to the file name without `.toml`. Unknown keys, wrong types,
    out-of-range values and unknown profiles raise ConfigError naming the valid choices.
    """
    path = Path(path)
    raw = read_toml(path, "the experiments are in configs/*.toml")
    raw.setdefault("experiment", path.stem)
    return from_dict(raw, profile, where=str(path))


def profiles(path) -> list[str]:
    """The names of the profiles of the config file `path`, in the file's order."""
    return list(read_toml(path, "the experiments are in configs/*.toml").get("profiles", {}))


def apply_overrides(cfg: Config, overrides: list[str]) -> Config:
    """Apply `section.key=value` strings (value in TOML syntax, bare words as strings)."""
    cfg = dataclasses.replace(cfg, **{s: dataclasses.replace(getattr(cfg, s)) for s in _SECTIONS})
    for item in overrides:
        key, sep, text = item.partition("=")
        section, _, name = key.strip().partition(".")
        if not sep or section not in _SECTIONS or not name:
            raise ConfigError(f"override {item!r}: expected SECTION.KEY=VALUE with SECTION one of "
                              f"{', '.join(_SECTIONS)}")
        try:
            value = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        _apply_section(getattr(cfg, section), section, {name.strip(): value}, "override")
    return validate(cfg)


def to_dict(cfg: Config) -> dict:
    """The config as plain nested dicts (JSON/TOML-ready)."""
    return dataclasses.asdict(cfg)


def config_from_dict(d: dict) -> Config:
    """Inverse of `to_dict` (used to rebuild the config stored in a checkpoint or result)."""
    cfg = Config(experiment=d["experiment"], description=d.get("description", ""),
                 profile=d.get("profile", "paper"))
    for section in _SECTIONS:
        _apply_section(getattr(cfg, section), section, d.get(section, {}), "stored config")
    return validate(cfg)


def config_hash(cfg: Config) -> str:
    """12 hex digits of sha256 over the canonical JSON of every field that changes training
    or evaluation (all but description, profile name and checkpoint_every)."""
    d = to_dict(cfg)
    for key in _SPEED_OPTIONS:  # off = absent, so configs written before these fields keep their hash
        if not d["train"][key]:
            d["train"].pop(key)
    for key, legacy in _HASHED_UNLESS.items():
        section, _, name = key.partition(".")
        if d[section][name] == legacy:
            d[section].pop(name)
    for key in _HASH_EXCLUDE:
        section, _, name = key.partition(".")
        if name:
            d[section].pop(name, None)
        else:
            d.pop(section, None)
    text = json.dumps(d, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


# --------------------------------------------------------------------------------------
# Analysis configs: plain dicts (recorded as they are in the analysis artifacts), checked
# key by key; the errors name the key and what is expected.
# --------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------
# Capacity analyses (gpm_core.analyses.capacity): one schema per table, (type, check) per key
# --------------------------------------------------------------------------------------
_POS_INT = (int, lambda v: v > 0, "an integer > 0")
_NONNEG_INT = (int, lambda v: v >= 0, "an integer >= 0")
_STR = (str, lambda v: bool(v), "a non-empty string")
_STR_LIST = (list, lambda v: bool(v) and all(isinstance(s, str) and s for s in v), "a non-empty list of strings")
_POS_INT_LIST = (list, lambda v: bool(v) and all(isinstance(i, int) and not isinstance(i, bool) and i > 0
                                                 for i in v), "a non-empty list of integers > 0")
_INT_LIST = (list, lambda v: all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v),
             "a list of integers >= 0")
_STR_LIST_OR_EMPTY = (list, lambda v: all(isinstance(s, str) and s for s in v), "a list of strings")
_ANY_STR = (str, lambda v: True, "a string")
# a profile for every model, or a table {experiment = profile} (models of different recipes)
_PROFILE = ((str, dict), lambda v: bool(v) and (isinstance(v, str) or all(
    isinstance(k, str) and isinstance(p, str) and p for k, p in v.items())),
    'a profile name, or a non-empty table {experiment = "profile"}')


def model_profile_of(model_profile, experiment: str) -> str:
    """The profile of `experiment`'s trained runs that an analysis uses: `model_profile` itself
    when it is a string, else its entry for `experiment` (a table {experiment = profile}, for
    analyses comparing models of different recipes). Raises ConfigError when the table lacks it."""
    if isinstance(model_profile, str):
        return model_profile
    if experiment not in model_profile:
        raise ConfigError(f"model_profile {model_profile!r} names no profile for {experiment!r}; "
                          f"add {experiment} = \"<profile>\" to it")
    return model_profile[experiment]


def check_model_profiles(model_profile, experiments) -> None:
    """A model_profile table must give a profile to every experiment of the analysis and name
    no other (a typo would be silently unused); raises ConfigError saying what to change."""
    if isinstance(model_profile, str):
        return
    for exp in experiments:
        model_profile_of(model_profile, exp)
    extra = [e for e in model_profile if e not in experiments]
    if extra:
        raise ConfigError(f"model_profile names {', '.join(map(repr, extra))}, which the analysis does not "
                          f"use (its models: {', '.join(experiments)}); remove it or add it to the models")


def model_profile_label(model_profile) -> str:
    """`model_profile` as one line of text ("cpu", or "gpm_x: cpu_alpha_cap, dkm_y: cpu")."""
    if isinstance(model_profile, str):
        return model_profile
    return ", ".join(f"{e}: {p}" for e, p in model_profile.items())

ANALYSES = ("gpm_fig4", "dkm_fig2")
SCHEMAS = {
    "gpm_fig4": {
        "curve": {
            "experiments": _STR_LIST_OR_EMPTY,  # training experiments, one per memory size ([] = no
                                           # curve: a profile that runs the storage test only)
            "profile_prefix": _STR,        # model profiles "<prefix><T>", one per episode length
            "seed": _NONNEG_INT,           # model seed of the storage test's model
            "seeds": _INT_LIST,            # model seeds of the curve's points ([] = every seed found)
            "test_images": _POS_INT,       # per T: max(1, test_images // T) test episodes
            "eval_seed": _NONNEG_INT,      # seed of the test episodes and of the model's noise
            "batch_size": _POS_INT,        # episodes per model.evaluate call
        },
        "storage": {
            "experiment": _STR,            # its longest-T model (curve.profile_prefix) is used ...
            "model_profile": _ANY_STR,     # ... unless this names the model's profile ("" = longest T)
            "split": (str, lambda v: v in ("test", "train"), "'test' (GPM 3.4) or 'train'"),  # the images written
            "alpha": (str, lambda v: v in ("model", "auto"), "'model' (the model's own) or 'auto'"),  # pinv alphas
            "write": _NONNEG_INT,          # test images written into one memory (0 = all)
            "queries": _NONNEG_INT,        # written images queried with noise (0 = all written)
            "corruption": (str, lambda v: v in CORRUPTIONS, "one of " + ", ".join(map(repr, CORRUPTIONS))),
            "level": ((int, float), lambda v: v >= 0, "a number >= 0"),
            "iters": _POS_INT,             # iterative reads of each query
            "query_batch": _POS_INT,       # queries read at once (memory use)
            "samples": _POS_INT,           # generated samples
            "sample_iters": _NONNEG_INT,   # iterative reads of each sample
            "show": _POS_INT,              # rows of the image grids
            "grid_iters": _INT_LIST,       # iterations shown as grid columns
            "seed": _NONNEG_INT,
        },
    },
    "dkm_fig2": {
        "capacity": {
            "experiments": _STR_LIST,      # trained models (Table 1 runs on T = 32)
            "model_profile": _PROFILE,     # their profile (or a table {experiment = profile})
            "seeds": _INT_LIST,            # model seeds ([] = every seed found)
            "lengths": _POS_INT_LIST,      # episode lengths L
            "classes": _POS_INT_LIST,      # classes per episode
            "episodes": _POS_INT,          # episodes per (classes, L)
            "batch_size": _POS_INT,
            "seed": _NONNEG_INT,           # episodes and model noise
        },
    },
}
_CAPACITY_TOP = ("experiment", "analysis", "description", "profiles")
# keys added after the first artifacts were written: files without them mean what they meant then
OPTIONAL = {"gpm_fig4": {"curve": {"seeds": []},
                         "storage": {"model_profile": "", "split": "test", "alpha": "model"}}}


def _check_table(section: str, values, schema: dict, where: str) -> dict:
    if not isinstance(values, dict):
        raise ConfigError(f"{where}: [{section}] must be a table, got {values!r}")
    out = {}
    for key, value in values.items():
        if key not in schema:
            raise ConfigError(f"unknown key {key!r} in {where} [{section}]; valid keys: {', '.join(schema)}")
        typ, ok, what = schema[key]
        if isinstance(value, bool) or not isinstance(value, typ) or not ok(value):
            raise ConfigError(f"{where}: {section}.{key} = {value!r}: expected {what}")
        out[key] = value
    return out


def capacity_config(raw: dict, profile: str = "quick", where: str = "config") -> dict:
    """Validate a parsed analysis TOML and apply `[profiles.<profile>.<table>]`; returns
    {"experiment", "analysis", "description", "profile", <table>: {...}} with every key of
    the analysis' schema present. Raises ConfigError naming the key and what is expected."""
    unknown = set(raw) - set(_CAPACITY_TOP) - {t for s in SCHEMAS.values() for t in s}
    if unknown:
        raise ConfigError(f"unknown top-level key(s) {sorted(unknown)} in {where}")
    analysis = raw.get("analysis")
    if analysis not in SCHEMAS:
        raise ConfigError(f"{where}: analysis = {analysis!r}: expected one of {', '.join(map(repr, ANALYSES))}")
    experiment = raw.get("experiment")
    if not isinstance(experiment, str) or not experiment:
        raise ConfigError(f"{where}: experiment = {experiment!r}: expected a non-empty string "
                          f"(the results/ folder of the analysis)")
    schema = SCHEMAS[analysis]
    extra = set(raw) - set(_CAPACITY_TOP) - set(schema)
    if extra:
        raise ConfigError(f"{where}: table(s) {sorted(extra)} do not belong to analysis {analysis!r}; "
                          f"valid tables: {', '.join(schema)}")
    cfg = {"experiment": experiment, "analysis": analysis,
           "description": raw.get("description", ""), "profile": profile}
    for section, keys in schema.items():
        cfg[section] = _check_table(section, raw.get(section, {}), keys, where)
    profiles = raw.get("profiles", {})
    if profile not in profiles:
        raise ConfigError(f"profile {profile!r} is not in {where}; available profiles: "
                          f"{', '.join(sorted(profiles)) or '(none)'}")
    for section, values in profiles[profile].items():
        if section not in schema:
            raise ConfigError(f"unknown table [profiles.{profile}.{section}] in {where}; "
                              f"valid tables: {', '.join(schema)}")
        cfg[section].update(_check_table(section, values, schema[section], f"{where} [profiles.{profile}]"))
    for section, keys in schema.items():
        for key, value in OPTIONAL.get(analysis, {}).get(section, {}).items():
            cfg[section].setdefault(key, copy.deepcopy(value))
        missing = [k for k in keys if k not in cfg[section]]
        if missing:
            raise ConfigError(f"{where}: [{section}] lacks {', '.join(missing)} (profile {profile!r}); "
                              f"add them to the file")
    if analysis == "dkm_fig2":
        try:
            check_model_profiles(cfg["capacity"]["model_profile"], cfg["capacity"]["experiments"])
        except ConfigError as e:
            raise ConfigError(f"{where} (profile {profile!r}): {e}") from None
    return cfg


def load_capacity_config(path, profile: str = "quick") -> dict:
    """Read and validate a capacity analysis TOML (configs/fig4_capacity_eval.toml,
    configs/dkm_fig2_capacity.toml)."""
    raw = read_toml(path, "the capacity analyses are configs/fig4_capacity_eval.toml and "
                          "configs/dkm_fig2_capacity.toml")
    return capacity_config(raw, profile, where=str(path))


# --------------------------------------------------------------------------------------
# Denoising analyses (gpm_core.analyses.denoise)
# --------------------------------------------------------------------------------------
_DENOISE_TOP = {"experiment", "description", "denoise", "profiles"}
_DENOISE_FIELDS = {"models", "T", "queries", "iterations", "success_fraction", "test_seed", "corruptions",
           "table2_levels", "examples", "dkm_fig3", "model_profile", "fig7_levels", "decode_threshold"}


def load_denoise_config(path, profile: str = "quick") -> dict:
    """Read and validate a denoising analysis TOML (the module docstring of
    `gpm_core.analyses.denoise`, configs/table2_denoise.toml); returns a plain dict with the
    profile's overrides applied. Raises ConfigError naming the field and what to do."""
    path = Path(path)
    raw = read_toml(path, "the denoising analyses are configs/table2_denoise.toml and configs/denoise_mnist.toml")
    unknown = set(raw) - _DENOISE_TOP
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}; valid: {sorted(_DENOISE_TOP)}")
    cfg = copy.deepcopy(raw.get("denoise", {}))
    profiles = raw.get("profiles", {})
    if profile not in profiles:
        raise ConfigError(f"{path}: no profile {profile!r}; profiles in the file: {sorted(profiles) or 'none'}")
    cfg.update(profiles[profile])
    unknown = set(cfg) - _DENOISE_FIELDS
    if unknown:
        raise ConfigError(f"{path}: unknown [denoise] fields {sorted(unknown)}; valid: {sorted(_DENOISE_FIELDS)}")
    for key in ("models", "T", "queries", "iterations", "corruptions", "table2_levels", "model_profile"):
        if key not in cfg:
            raise ConfigError(f"{path}: [denoise] needs `{key}` (profile {profile!r})")
    cfg.setdefault("success_fraction", 0.01)
    cfg.setdefault("test_seed", 4321)
    cfg.setdefault("examples", {"T": 16, "n": 8})
    cfg.setdefault("dkm_fig3", {"T": 32, "n": 20, "iterations": 15, "salt_pepper": 0.15})
    def need(ok: bool, what: str):
        if not ok:
            raise ConfigError(f"{path}: {what} (profile {profile!r}); see the module docstring of gpm_core.analyses.denoise")

    need(isinstance(cfg["models"], list) and cfg["models"] and all(isinstance(m, str) for m in cfg["models"]),
         "denoise.models must be a non-empty list of experiment names")
    typ, ok, what = _PROFILE
    need(isinstance(cfg["model_profile"], typ) and ok(cfg["model_profile"]),
         f"denoise.model_profile = {cfg['model_profile']!r}: expected {what}")
    try:
        check_model_profiles(cfg["model_profile"], cfg["models"])
    except ConfigError as e:
        need(False, str(e))
    need(isinstance(cfg["T"], list) and cfg["T"], f"denoise.T must be a non-empty list, got {cfg['T']!r}")
    need(isinstance(cfg["success_fraction"], (int, float)) and 0 <= cfg["success_fraction"] < 1,
         f"denoise.success_fraction must be in [0, 1), got {cfg['success_fraction']!r}")
    need(isinstance(cfg["test_seed"], int), "denoise.test_seed must be an integer")
    need(isinstance(cfg["corruptions"], dict) and all(isinstance(v, list) and v for v in cfg["corruptions"].values()),
         "[denoise.corruptions] must map each kind to a non-empty list of levels")
    need(isinstance(cfg["table2_levels"], dict), "[denoise.table2_levels] must map each kind to one level")
    for table, keys in (("examples", {"T", "n"}), ("dkm_fig3", {"T", "n", "iterations", "salt_pepper"})):
        sub = cfg[table]
        need(isinstance(sub, dict) and set(sub) == keys,
             f"[denoise.{table}] must have exactly the keys {sorted(keys)}, got {sorted(sub) if isinstance(sub, dict) else sub!r}")
        need(all(isinstance(sub[k], int) and sub[k] > 0 for k in keys - {"salt_pepper"}),
             f"[denoise.{table}] {sorted(keys - {'salt_pepper'})} must be positive integers")
    if not all(isinstance(t, int) and t > 0 for t in cfg["T"]):
        raise ConfigError(f"{path}: denoise.T must be positive integers, got {cfg['T']}")
    if not isinstance(cfg["iterations"], int) or cfg["iterations"] < 1:
        raise ConfigError(f"{path}: denoise.iterations must be an integer >= 1, got {cfg['iterations']}")
    if not isinstance(cfg["queries"], int) or cfg["queries"] < max(cfg["T"]):
        raise ConfigError(f"{path}: denoise.queries must be an integer >= max(T) = {max(cfg['T'])}")
    need(isinstance(cfg.get("fig7_levels", {}), dict), "[denoise.fig7_levels] must map each kind to one level")
    for kind in list(cfg["corruptions"]) + list(cfg["table2_levels"]) + list(cfg.get("fig7_levels", {})):
        if kind not in CORRUPTIONS:
            raise ConfigError(f"{path}: unknown corruption {kind!r}; valid: {', '.join(CORRUPTIONS)}")
    levels = [(f"denoise.corruptions.{k}", v) for k, vs in cfg["corruptions"].items() for v in vs]
    levels += [(f"denoise.{t}.{k}", v) for t in ("table2_levels", "fig7_levels") for k, v in cfg.get(t, {}).items()]
    for where, level in levels:
        kind = where.rsplit(".", 1)[1]
        if isinstance(level, list):  # a range [lo, hi]: rotation only (an angle drawn uniformly from it)
            need(kind == "rotation" and len(level) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                                 for v in level) and level[0] <= level[1],
                 f"{where} = {level!r}: a range level is [lo, hi] with lo <= hi, for rotation only")
        else:
            need(isinstance(level, (int, float)) and not isinstance(level, bool) and level >= 0,
                 f"{where} = {level!r}: expected a number >= 0")
    if "decode_threshold" in cfg:  # absent: every read is the decoder's mode (the paper's text)
        t = cfg["decode_threshold"]
        need(isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t < 1,
             f"denoise.decode_threshold = {t!r}: expected a number in (0, 1), the Bernoulli mean at which a "
             f"read's pixel is on (leave it out for the mode)")
    for kind, level in cfg["table2_levels"].items():
        if level not in cfg["corruptions"].get(kind, []):
            raise ConfigError(f"{path}: table2 level {kind} = {level} is not among the swept levels "
                              f"{cfg['corruptions'].get(kind, [])}; add it to [denoise.corruptions]")
    return {"experiment": raw.get("experiment") or path.stem, "description": raw.get("description", ""),
            "profile": profile, "path": str(path), **cfg}
