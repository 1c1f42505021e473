"""Capacity: GPM Fig. 4 (Pham et al. 2022, section 3.4) and DKM Fig. 2 right (Wu et al. 2018,
section 4, "Capacity"). `python -m gpm_core capacity CONFIG --profile P`.

Two analyses of trained models, chosen by the config's `analysis` key:

- `gpm_fig4` (configs/fig4_capacity_eval.toml). (a) GPM trained on episodes of length T with
  a fixed K x 100 memory (configs/fig4_omniglot_gpm_k{8,32}.toml, one profile per T): the
  *reconstruction loss* at each T, defined as the recon term of the bound,
  -E_q(W) ln p(x | w, M) in nats per image (one sample of W, as `model.evaluate`), on fixed
  test episodes of the same length T written into memory (`data.test_episodes`).
  (b, c) The "24,345-GPM" test: the longest-episode model writes a large part of the test set
  into one memory, then denoises corrupted queries of the written images by iterative
  reading (Hamming error, `corruptions.hamming`) and generates samples
  (`model.generate` + `model.iterative_read`) matched to their nearest written image.
- `dkm_fig2` (configs/dkm_fig2_capacity.toml). Trained Table 1 models scored on episodes of
  length L drawn from 2, 4 or 8 classes (`data.class_episodes`): the negative conditional
  ELBO per image, `model.evaluate(X)["nll_cond"]`, the DKM paper's "retrieval error".

Each run writes one analysis artifact, results/<experiment>/<profile>-seed<N>.json
(`artifacts.save_analysis`), naming every model result it used. The chapter
book/11_capacity reads them with the table and figure functions at the end of this module.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from .config import ConfigError

ANALYSES = ("gpm_fig4", "dkm_fig2")

# --------------------------------------------------------------------------------------
# Analysis configs: one schema per table, (type, check) per key
# --------------------------------------------------------------------------------------
_POS_INT = (int, lambda v: v > 0, "an integer > 0")
_NONNEG_INT = (int, lambda v: v >= 0, "an integer >= 0")
_STR = (str, lambda v: bool(v), "a non-empty string")
_STR_LIST = (list, lambda v: bool(v) and all(isinstance(s, str) and s for s in v), "a non-empty list of strings")
_POS_INT_LIST = (list, lambda v: bool(v) and all(isinstance(i, int) and not isinstance(i, bool) and i > 0
                                                 for i in v), "a non-empty list of integers > 0")
_INT_LIST = (list, lambda v: all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in v),
             "a list of integers >= 0")

SCHEMAS = {
    "gpm_fig4": {
        "curve": {
            "experiments": _STR_LIST,      # training experiments, one per memory size
            "profile_prefix": _STR,        # model profiles "<prefix><T>", one per episode length
            "seed": _NONNEG_INT,           # model seed
            "test_images": _POS_INT,       # per T: max(1, test_images // T) test episodes
            "eval_seed": _NONNEG_INT,      # seed of the test episodes and of the model's noise
            "batch_size": _POS_INT,        # episodes per model.evaluate call
        },
        "storage": {
            "experiment": _STR,            # its longest-T model (curve.profile_prefix) is used
            "write": _NONNEG_INT,          # test images written into one memory (0 = all)
            "queries": _NONNEG_INT,        # written images queried with noise (0 = all written)
            "corruption": (str, lambda v: v in ("salt_pepper", "block", "rotation"),
                           "one of 'salt_pepper', 'block', 'rotation'"),
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
            "model_profile": _STR,         # their profile
            "seeds": _INT_LIST,            # model seeds ([] = every seed found)
            "lengths": _POS_INT_LIST,      # episode lengths L
            "classes": _POS_INT_LIST,      # classes per episode
            "episodes": _POS_INT,          # episodes per (classes, L)
            "batch_size": _POS_INT,
            "seed": _NONNEG_INT,           # episodes and model noise
        },
    },
}
_TOP = ("experiment", "analysis", "description", "profiles")


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


def analysis_config(raw: dict, profile: str = "quick", where: str = "config") -> dict:
    """Validate a parsed analysis TOML and apply `[profiles.<profile>.<table>]`; returns
    {"experiment", "analysis", "description", "profile", <table>: {...}} with every key of
    the analysis' schema present. Raises ConfigError naming the key and what is expected."""
    unknown = set(raw) - set(_TOP) - {t for s in SCHEMAS.values() for t in s}
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
    extra = set(raw) - set(_TOP) - set(schema)
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
        missing = [k for k in keys if k not in cfg[section]]
        if missing:
            raise ConfigError(f"{where}: [{section}] lacks {', '.join(missing)} (profile {profile!r}); "
                              f"add them to the file")
    return cfg


def load_analysis_config(path, profile: str = "quick") -> dict:
    """Read and validate an analysis TOML (configs/fig4_capacity_eval.toml,
    configs/dkm_fig2_capacity.toml)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; the capacity analyses are "
                          f"configs/fig4_capacity_eval.toml and configs/dkm_fig2_capacity.toml") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path} is not valid TOML: {e}") from None
    return analysis_config(raw, profile, where=str(path))


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

def _model_results(experiment: str, results_dir, profile: str | None = None, prefix: str | None = None,
                   seeds=None) -> list[dict]:
    """Finished model runs of `experiment` with the given profile (or profile prefix)."""
    from .artifacts import load_results

    out = []
    for r in load_results(experiment, results_dir=results_dir):
        if profile is not None and r["profile"] != profile:
            continue
        if prefix is not None and not r["profile"].startswith(prefix):
            continue
        if seeds and r["seed"] not in seeds:
            continue
        out.append(r)
    return out


def _episode_seed(seed: int, *keys: int) -> int:
    """A seed for one (analysis seed, keys...) cell, independent of the order cells run in."""
    s = seed
    for k in keys:
        s = (s * 1_000_003 + k) % (2**62)
    return s


def capacity_episodes(test_set, L: int, n_classes: int, episodes: int, seed: int):
    """`episodes` episodes of L images from n_classes random classes each
    (`data.class_episodes`, generator seeded with `seed`), with the index of every image in
    `test_set` and its label: ((episodes, L, C, H, W) float, (episodes, L) labels,
    (episodes, L) indices). The indices come from a second call with an identically seeded
    generator on a set whose "images" are their own indices, so they are the same draw."""
    import torch

    from .data import ImageSet, class_episodes

    X = class_episodes(test_set, L, n_classes, torch.Generator().manual_seed(seed), episodes)
    n = len(test_set)
    as_index = ImageSet(torch.arange(n).view(n, 1, 1, 1), test_set.labels, {"max_value": 1})
    idx = class_episodes(as_index, L, n_classes, torch.Generator().manual_seed(seed), episodes)
    idx = idx.reshape(episodes, L).round().long()
    return X, test_set.labels[idx], idx


def score_episodes(model, X, batch_size: int, seed: int) -> dict:
    """`model.evaluate` on episodes X (E, T, C, H, W), one episode per call, the model's noise
    (write noise, the sample of W) for episode e drawn after `torch.manual_seed(
    evaluate.episode_seed(seed, e))` inside fork_rng, as `evaluate.evaluate_model` does: the
    scores do not depend on `batch_size` (episodes moved to the device at once).
    Returns {metric: (E,) tensor}."""
    import torch

    from .evaluate import episode_seed

    out: dict[str, list] = {}
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[d for d in [device] if d.type == "cuda"]), torch.no_grad():
        for start in range(0, len(X), batch_size):
            Xb = X[start:start + batch_size].to(device)
            for i in range(len(Xb)):
                torch.manual_seed(episode_seed(seed, start + i))
                for k, v in model.evaluate(Xb[i:i + 1]).items():
                    out.setdefault(k, []).append(v.double().reshape(-1).cpu())
    return {k: torch.cat(v) for k, v in out.items()}


def _stats(v) -> dict:
    """mean, sd, n of v; with non-finite entries also their count and the finite entries' mean."""
    import torch

    v = v.double().reshape(-1)
    out = {"mean": v.mean().item(), "sd": v.std().item() if v.numel() > 1 else 0.0, "n": v.numel()}
    bad = int((~torch.isfinite(v)).sum())
    if bad:
        ok = v[torch.isfinite(v)]
        out |= {"nonfinite": bad, "mean_finite": ok.mean().item() if ok.numel() else float("nan")}
    return out


def pinv_ratio(model, X, seed: int) -> dict | None:
    """GPM with fixed alphas: alpha * sigma_max(A)^2 for the two matrices that writing and
    reading X (E, T, ...) invert by Ben-Cohen steps, A = W0 (alpha_weight) and A = M
    (alpha_memory), as {"W0": {"median", "max"}, "M": {...}} over the E episodes. The
    iteration converges only below 2 (`gpm_core.pinv`); None for DKM or alpha = "auto"."""
    import torch

    cfg = model.cfg
    if cfg.kind != "gpm" or not (isinstance(cfg.alpha_weight, float) and isinstance(cfg.alpha_memory, float)):
        return None
    from .evaluate import episode_seed

    W0, M = [], []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for e in range(len(X)):  # the same write noise as `score_episodes` draws for episode e
            torch.manual_seed(episode_seed(seed, e))
            state = model.write(X[e:e + 1])
            W0.append(state["W0"])
            M.append(state["M"])
    out, over = {}, torch.zeros(len(X), dtype=torch.bool)
    for name, A, alpha in (("W0", torch.cat(W0), cfg.alpha_weight), ("M", torch.cat(M), cfg.alpha_memory)):
        r = alpha * torch.linalg.matrix_norm(A.double(), ord=2).square()  # (E,)
        out[name] = {"median": r.median().item(), "max": r.max().item()}
        over |= ~(r < 2).cpu()  # past the convergence limit (or not finite)
    out["over_limit"] = int(over.sum())  # episodes where either iteration must diverge
    return out


def pack_images(X) -> list[str]:
    """Binary images (N, 1, H, W) -> hex strings of their packed bits (for the JSON)."""
    import numpy as np

    bits = (X.reshape(X.shape[0], -1) > 0.5).cpu().numpy()
    return [np.packbits(b).tobytes().hex() for b in bits]


def unpack_images(hexes: list[str], shape=(1, 28, 28)):
    """Inverse of `pack_images`: (N, *shape) float tensor."""
    import numpy as np
    import torch

    n = math.prod(shape)
    arr = np.stack([np.unpackbits(np.frombuffer(bytes.fromhex(h), dtype=np.uint8))[:n] for h in hexes])
    return torch.from_numpy(arr.astype(np.float32)).reshape(len(hexes), *shape)


def _T_of(result: dict) -> int:
    return int(result["config"]["data"]["episode_length"])


# --------------------------------------------------------------------------------------
# GPM Fig. 4
# --------------------------------------------------------------------------------------

def fig4_curve(cfg: dict, results_dir) -> tuple[list[dict], list[dict]]:
    """Fig. 4a points: for every model run of every curve experiment, the bound's terms on
    max(1, test_images // T) fixed test episodes of its own length T. Returns (points,
    the model results used)."""
    from .data import load_images, test_episodes
    from .report import load_trained

    c = cfg["curve"]
    points, used, test_cache = [], [], {}
    for exp in c["experiments"]:
        runs = _model_results(exp, results_dir, prefix=c["profile_prefix"], seeds=[c["seed"]])
        if not runs:
            raise FileNotFoundError(f"no results/{exp}/{c['profile_prefix']}*-seed{c['seed']}.json: train them "
                                    f"first (python -m gpm_core train configs/{exp}.toml --profile "
                                    f"{c['profile_prefix']}<T> --seed {c['seed']})")
        for r in sorted(runs, key=_T_of):
            model, mcfg = load_trained(r)
            key = (mcfg.data.dataset, mcfg.data.binarize, mcfg.data.test_subset)
            if key not in test_cache:
                test_cache[key] = load_images(mcfg.data.dataset, "test", mcfg.data)
            T = _T_of(r)
            episodes = max(1, c["test_images"] // T)
            X = test_episodes(test_cache[key], T, episodes, c["eval_seed"])
            t0 = time.time()
            m = score_episodes(model, X, c["batch_size"], c["eval_seed"])
            points.append({
                "experiment": exp, "profile": r["profile"], "seed": r["seed"], "K": mcfg.model.memory_slots,
                "T": T, "episodes": episodes, "images": episodes * T,
                "recon": _stats(m["recon"]), "nll_cond": _stats(m["nll_cond"]), "kl_w": _stats(m["kl_w"]),
                "train_steps": r["steps"], "train_images": r["steps"] * mcfg.train.batch_size * T,
                "train_wall_time_s": r["wall_time_s"], "eval_time_s": round(time.time() - t0, 3),
            })
            used.append(r)
    return points, used


def storage_test(cfg: dict, results_dir) -> tuple[dict, dict]:
    """The "24,345-GPM" test (GPM section 3.4, Fig. 4b/c) on the longest-episode model of
    `storage.experiment`: write `write` test images (a fixed random choice; all if 0) into
    ONE memory, corrupt `queries` of them, read each query `iters` times (attractor
    dynamics) and count wrong pixels against the clean image; generate `samples` images and
    find each one's nearest written image by Hamming distance. Returns (payload, model result)."""
    import torch

    from .corruptions import corrupt, hamming
    from .data import load_images
    from .report import load_trained

    s, c = cfg["storage"], cfg["curve"]
    runs = _model_results(s["experiment"], results_dir, prefix=c["profile_prefix"], seeds=[c["seed"]])
    if not runs:
        raise FileNotFoundError(f"no results/{s['experiment']}/{c['profile_prefix']}*-seed{c['seed']}.json: "
                                f"train the Fig. 4a runs first (configs/{s['experiment']}.toml)")
    r = max(runs, key=_T_of)
    model, mcfg = load_trained(r)
    test_set = load_images(mcfg.data.dataset, "test", mcfg.data)
    g = torch.Generator().manual_seed(s["seed"])
    n_write = s["write"] or len(test_set)
    if n_write > len(test_set):
        raise ConfigError(f"storage.write = {n_write}: the test set has {len(test_set)} images")
    order = torch.randperm(len(test_set), generator=g)[:n_write]
    Xw = test_set.as_float(order).unsqueeze(0)  # (1, N, C, H, W): one episode, one memory
    n_q = s["queries"] or n_write
    if n_q > n_write:
        raise ConfigError(f"storage.queries = {n_q}: only {n_write} images are written")
    t0 = time.time()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(s["seed"])
        state = model.write(Xw)  # writing noise as in evaluation (cfg.eval_write_noise)
        write_s = time.time() - t0
        clean = Xw[:, :n_q]  # (1, Q, C, H, W): queries are written images
        noisy = corrupt(clean, s["corruption"], s["level"], g)
        per_iter, show_traj, traj_blank = [], None, 0
        for a in range(0, n_q, s["query_batch"]):
            b = min(a + s["query_batch"], n_q)
            traj = model.iterative_read(noisy[:, a:b], state, s["iters"])["X"]  # (iters+1, 1, q, C, H, W)
            per_iter.append(hamming(traj, clean[:, a:b].unsqueeze(0).expand_as(traj)).double())  # (iters+1, 1, q)
            traj_blank += int((traj[-1].flatten(2).amax(-1) < 0.5).sum())  # final reads with no ink
            if show_traj is None:
                show_traj = traj[:, 0, :s["show"]]  # (iters+1, show, C, H, W)
        errors = torch.cat(per_iter, dim=-1)[:, 0]  # (iters+1, Q)
        # references measured on the same images: one read of the clean image (the memory's
        # own read-out error), and the autoencoder alone (decoder mode of e(x), no memory)
        one_read = model.iterative_read(clean[:, :s["query_batch"]], state, 1)["X"][-1]
        read_clean = hamming(one_read, clean[:, :s["query_batch"]]).double()
        ae = model.likelihood.mode(model.decode(model.encode(clean[:, :s["query_batch"]])))
        ae_err = hamming(ae, clean[:, :s["query_batch"]]).double()
        # generation: w ~ N(0, I), z = w M, decoded, then refined by iterative reading
        gen0 = model.generate(state, s["samples"])  # (1, S, C, H, W)
        gen_traj = model.iterative_read(gen0, state, s["sample_iters"])["X"][:, 0]  # (it+1, S, C, H, W)
        final = gen_traj[-1]
        d = torch.stack([hamming(x.expand_as(Xw[0]), Xw[0]) for x in final])  # (S, N)
        nn_dist, nn_idx = d.min(dim=1)
    cols = [i for i in s["grid_iters"] if 1 <= i <= s["iters"]]  # 0 is the noisy query itself
    gcols = [i for i in s["grid_iters"] if i <= s["sample_iters"]]
    n_pix = math.prod(test_set.image_shape)
    payload = {
        "model": {"experiment": r["experiment"], "profile": r["profile"], "seed": r["seed"],
                  "K": mcfg.model.memory_slots, "T_train": _T_of(r), "train_steps": r["steps"]},
        "written": n_write, "queries": n_q, "pixels": n_pix,
        "corruption": {"kind": s["corruption"], "level": s["level"]},
        "hamming_noisy": _stats(errors[0]),
        "hamming_final": _stats(errors[-1]),
        "hamming_per_iter": [errors[i].mean().item() for i in range(errors.shape[0])],
        "hamming_one_read_clean": _stats(read_clean),
        "hamming_autoencoder": _stats(ae_err),
        # what a Hamming error means here: the ink of the clean queries (the error of an
        # all-background answer) and how many answers are all background
        "ink_queries": _stats(clean[0].flatten(1).sum(1)),
        "blank_final": (traj_blank / n_q),
        "blank_samples": (final.flatten(1).amax(1) < 0.5).double().mean().item(),
        "write_time_s": round(write_s, 3), "time_s": round(time.time() - t0, 3),
        "grid": {"iters": cols, "original": pack_images(clean[0, :s["show"]]),
                 "noisy": pack_images(noisy[0, :s["show"]]),
                 "steps": [pack_images(show_traj[i]) for i in cols]},
        "samples": {"iters": gcols, "steps": [pack_images(gen_traj[i, :s["show"]]) for i in gcols],
                    "nearest": pack_images(Xw[0, nn_idx[:s["show"]]]),
                    "nearest_hamming": nn_dist.tolist(),
                    "nearest_index": order[nn_idx].tolist()},
        "image_shape": list(test_set.image_shape),
        "deviation": test_set.meta.get("deviation"),
    }
    return payload, r


# --------------------------------------------------------------------------------------
# DKM Fig. 2 right
# --------------------------------------------------------------------------------------

def dkm_fig2(cfg: dict, results_dir) -> tuple[list[dict], list[dict]]:
    """For every model run and every (classes, L): the mean over `episodes` class episodes of
    model.evaluate's per-episode 'nll_cond' (and its terms). The episodes of a cell are the
    same for every model and seed."""
    from .data import load_images
    from .report import load_trained

    c = cfg["capacity"]
    rows, used, test_cache, episode_cache = [], [], {}, {}
    for exp in c["experiments"]:
        runs = _model_results(exp, results_dir, profile=c["model_profile"], seeds=c["seeds"])
        if not runs:
            raise FileNotFoundError(f"no results/{exp}/{c['model_profile']}-seed*.json: train them first "
                                    f"(python -m gpm_core train configs/{exp}.toml --profile "
                                    f"{c['model_profile']} --seed N)")
        for r in runs:
            model, mcfg = load_trained(r)
            key = (mcfg.data.dataset, mcfg.data.binarize, mcfg.data.test_subset)
            if key not in test_cache:
                test_cache[key] = load_images(mcfg.data.dataset, "test", mcfg.data)
            t0 = time.time()
            cells = []
            for n_cls in c["classes"]:
                for L in c["lengths"]:
                    ek = key + (n_cls, L)
                    seed = _episode_seed(c["seed"], n_cls, L)
                    if ek not in episode_cache:
                        episode_cache[ek] = capacity_episodes(test_cache[key], L, n_cls, c["episodes"], seed)
                    X, labels, idx = episode_cache[ek]
                    m = score_episodes(model, X, c["batch_size"], seed)
                    cells.append({"classes": n_cls, "L": L, "nll_cond": _stats(m["nll_cond"]),
                                  "recon": _stats(m["recon"]), "kl_w": _stats(m["kl_w"]),
                                  # per episode, averaged: distinct classes and distinct images
                                  "classes_per_episode": sum(len(set(r.tolist())) for r in labels) / len(labels),
                                  "distinct_images": sum(len(set(r.tolist())) for r in idx) / len(idx),
                                  "alpha_sigma_max_sq": pinv_ratio(model, X, seed)})
            rows.append({"experiment": exp, "model": mcfg.model.kind, "profile": r["profile"],
                         "seed": r["seed"], "T_train": _T_of(r), "train_steps": r["steps"],
                         "cells": cells, "time_s": round(time.time() - t0, 3)})
            used.append(r)
    return rows, used


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------

def configure(p) -> None:
    p.add_argument("config", help="an analysis file: configs/fig4_capacity_eval.toml or "
                                  "configs/dkm_fig2_capacity.toml")
    p.add_argument("--profile", default="quick", help="profile in the file (default quick)")
    p.add_argument("--seed", type=int, default=0, help="added to the file's seeds; names the artifact (default 0)")
    p.add_argument("--results-dir", default="results", help="where model results are read and the analysis written")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def analyse(cfg: dict, seed: int = 0, results_dir="results") -> Path:
    """Run the analysis of a validated config and write its artifact; returns the path."""
    import copy

    import torch

    from . import artifacts

    cfg = copy.deepcopy(cfg)
    # --seed N shifts the seeds of the analysis' episodes and noise (not the model seed)
    for section, key in (("curve", "eval_seed"), ("storage", "seed"), ("capacity", "seed")):
        if section in cfg:
            cfg[section][key] += seed
    t0 = time.time()
    if cfg["analysis"] == "gpm_fig4":
        points, used = fig4_curve(cfg, results_dir)
        storage, r = storage_test(cfg, results_dir)
        payload = {"analysis": "gpm_fig4", "points": points, "storage": storage}
        used = used + [r]
    else:
        rows, used = dkm_fig2(cfg, results_dir)
        payload = {"analysis": "dkm_fig2", "rows": rows}
    sources, seen = [], set()
    for r in used:
        if r["path"] not in seen:
            seen.add(r["path"])
            sources.append(artifacts.source_info(r))
    return artifacts.save_analysis(
        cfg["experiment"], cfg["profile"], seed, payload, config=cfg, sources=sources,
        device="cpu", wall_time_s=round(time.time() - t0, 3), description=cfg["description"],
        results_dir=results_dir)


def run(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_analysis_config(args.config, args.profile)
    path = analyse(cfg, seed=args.seed, results_dir=args.results_dir)
    print(f"{cfg['experiment']} ({cfg['analysis']}, profile {cfg['profile']}, seed {args.seed}): wrote {path}")
    return 0


# --------------------------------------------------------------------------------------
# Tables and figures for book/11_capacity (read artifacts only)
# --------------------------------------------------------------------------------------

def load(experiment: str, profile: str, seed: int = 0, results_dir=None) -> dict | None:
    """The analysis artifact results/<experiment>/<profile>-seed<N>.json, or None."""
    from .artifacts import load_analyses
    from .report import RESULTS

    for a in load_analyses(experiment, results_dir=results_dir or RESULTS):
        if a["profile"] == profile and a["seed"] == seed:
            return a
    return None


def fig4_rows(analysis: dict) -> list[dict]:
    """Fig. 4a as table rows: K, T, reconstruction loss and the bound, per point."""
    return [{"K": p["K"], "T": p["T"], "recon": p["recon"]["mean"], "recon_sd": p["recon"]["sd"],
             "nll_cond": p["nll_cond"]["mean"], "kl_w": p["kl_w"]["mean"], "episodes": p["episodes"],
             "train_steps": p["train_steps"], "train_images": p["train_images"],
             "profile": p["profile"]} for p in sorted(analysis["points"], key=lambda p: (p["K"], p["T"]))]


def fig_fig4a(analyses: list[dict]):
    """Reconstruction loss vs log2(episode length), one line per memory size (and profile)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for a in analyses:
        for K in sorted({p["K"] for p in a["points"]}):
            pts = sorted((p for p in a["points"] if p["K"] == K), key=lambda p: p["T"])
            ax.errorbar([math.log2(p["T"]) for p in pts], [p["recon"]["mean"] for p in pts],
                        yerr=[p["recon"]["sd"] / math.sqrt(p["recon"]["n"]) for p in pts],
                        marker="o", ms=4, capsize=2, label=f"{K} x 100 ({a['profile']})")
    ax.set_xlabel("log2(episode length T)")
    ax.set_ylabel("reconstruction loss (nats/image)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def fig_denoise_grid(storage: dict):
    """Fig. 4b: rows = queries; columns = original, noisy query, iterative reads."""
    import matplotlib.pyplot as plt
    import torch

    shape = tuple(storage["image_shape"])
    g = storage["grid"]
    cols = [unpack_images(g["original"], shape), unpack_images(g["noisy"], shape)] + \
           [unpack_images(h, shape) for h in g["steps"]]
    return _grid_figure(torch.stack(cols, 1), ["original", "noisy"] + [f"read {i}" for i in g["iters"]])


def fig_samples_grid(storage: dict):
    """Fig. 4c: rows = samples; columns = reads of the sample, then the nearest written image."""
    import torch

    shape = tuple(storage["image_shape"])
    s = storage["samples"]
    cols = [unpack_images(h, shape) for h in s["steps"]] + [unpack_images(s["nearest"], shape)]
    return _grid_figure(torch.stack(cols, 1), [f"read {i}" if i else "sample" for i in s["iters"]] + ["nearest"])


def _grid_figure(X, titles: list[str]):
    """X (rows, cols, 1, H, W) -> a figure with one titled column per image column."""
    import matplotlib.pyplot as plt

    rows, ncol = X.shape[:2]
    fig, axes = plt.subplots(rows, ncol, figsize=(0.75 * ncol, 0.75 * rows), squeeze=False)
    for i in range(rows):
        for j in range(ncol):
            ax = axes[i][j]
            ax.imshow(X[i, j, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(titles[j], fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def dkm_curves(analysis: dict) -> dict:
    """(model, classes) -> {"L": [...], "mean": [...], "sd": [...], "seeds": n}: the mean over
    model seeds of each seed's mean nll_cond, and the sd over seeds."""
    import statistics

    acc: dict = {}
    for row in analysis["rows"]:
        for cell in row["cells"]:
            acc.setdefault((row["model"], cell["classes"]), {}).setdefault(cell["L"], []).append(
                cell["nll_cond"]["mean"])
    out = {}
    for key, by_L in sorted(acc.items()):
        Ls = sorted(by_L)
        out[key] = {"L": Ls, "mean": [statistics.fmean(by_L[L]) for L in Ls],
                    "sd": [_sd(by_L[L]) for L in Ls], "seeds": len(by_L[Ls[0]])}
    return out


def _sd(values: list[float]) -> float:
    """Sample sd; nan with fewer than two values or a non-finite one."""
    n = len(values)
    if n < 2 or not all(math.isfinite(v) for v in values):
        return float("nan")
    m = sum(values) / n
    return math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))


def fig_dkm_fig2(analyses: list[dict]):
    """DKM Fig. 2 right: negative conditional ELBO vs episode length, one panel per analysis
    profile, one colour per model, one line style per number of classes."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(analyses), figsize=(4.4 * len(analyses), 3.2), squeeze=False)
    colours = {"gpm": "tab:blue", "dkm": "tab:red"}
    styles = ["-", "--", ":", "-."]
    for ax, a in zip(axes[0], analyses):
        curves = dkm_curves(a)
        classes = sorted({c for _, c in curves})
        for (model, n_cls), cv in curves.items():
            ax.errorbar(cv["L"], cv["mean"], yerr=[0 if math.isnan(s) else s for s in cv["sd"]],
                        color=colours.get(model), ls=styles[classes.index(n_cls) % len(styles)],
                        marker="D" if model == "dkm" else "o", ms=3, capsize=2,
                        label=f"{model.upper()}, {n_cls} classes")
        ax.set_xlabel("episode length L")
        ax.set_ylabel("−conditional ELBO (nats/image)")
        ax.set_title(f"models: {a['config']['capacity']['model_profile']} profile, T = 32", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    return fig


def gpm_divergence_rows(analysis: dict) -> list[dict]:
    """GPM rows of a dkm_fig2 analysis: per (classes, L), the episodes whose bound is not
    finite and those where alpha * sigma_max^2 of W0 or M is past the iteration's limit of 2
    (a diverged iteration can also give a finite, huge bound; both summed over seeds), and alpha * sigma_max^2 of W0 and of M (`pinv_ratio`): the
    median over seeds of the per-seed median over episodes, and the largest value over
    episodes, seeds and both matrices."""
    import statistics

    acc: dict = {}
    for row in analysis["rows"]:
        if row["model"] != "gpm":
            continue
        for c in row["cells"]:
            a = acc.setdefault((c["classes"], c["L"]), {"bad": 0, "n": 0, "over": 0, "W0": [], "M": [], "max": []})
            a["bad"] += c["nll_cond"].get("nonfinite", 0)
            a["n"] += c["nll_cond"]["n"]
            ratio = c.get("alpha_sigma_max_sq")
            if ratio is not None:
                a["over"] += ratio.get("over_limit", 0)
                for name in ("W0", "M"):
                    a[name].append(ratio[name]["median"])
                    a["max"].append(ratio[name]["max"])
    return [{"classes": k[0], "L": k[1], "bad": v["bad"], "nonfinite": f"{v['bad']} of {v['n']}",
             "over": v["over"], "over_limit": f"{v['over']} of {v['n']}",
             "ratio_W0": statistics.median(v["W0"]) if v["W0"] else None,
             "ratio_M": statistics.median(v["M"]) if v["M"] else None,
             "ratio_max": max(v["max"]) if v["max"] else None}
            for k, v in sorted(acc.items())]
