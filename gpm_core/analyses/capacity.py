"""Capacity: GPM Fig. 4 (Pham et al. 2022, section 3.4) and DKM Fig. 2 right (Wu et al. 2018,
section 4, "Capacity"). `python -m gpm_core capacity CONFIG --profile P`.

Two analyses of trained models, chosen by the config's `analysis` key:

- `gpm_fig4` (configs/fig4_capacity_eval.toml). (a) GPM trained on episodes of length T with
  a fixed K x 100 memory (configs/fig4_omniglot_gpm_k{8,32}.toml, one profile per T): the
  *reconstruction loss* at each T, defined as the recon term of the bound,
  -E_q(W) ln p(x | w, M) in nats per image (one sample of W, as `model.evaluate`), on fixed
  test episodes of the same length T written into memory (`episodes.test_episodes`).
  (b, c) The "24,345-GPM" test: the longest-episode model writes a large part of the test set
  into one memory, then denoises corrupted queries of the written images by iterative
  reading (Hamming error, `corruptions.hamming`) and generates samples
  (`model.generate` + `model.iterative_read`) matched to their nearest written image.
- `dkm_fig2` (configs/dkm_fig2_capacity.toml). Trained Table 1 models scored on episodes of
  length L drawn from 2, 4 or 8 classes (`episodes.capacity_episodes`): the negative conditional
  ELBO per image, `model.evaluate(X)["nll_cond"]`, the DKM paper's "retrieval error".

Each run writes one analysis artifact, results/<experiment>/<profile>-seed<N>.json
(`artifacts.save_analysis`), naming every model result it used. The chapter
book/11_capacity renders them with `gpm_core.report.capacity`. The configs are checked by
`gpm_core.config.load_capacity_config`.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import time
from pathlib import Path

import torch

from .. import artifacts
from ..config import ConfigError, load_capacity_config, model_profile_of
from ..corruptions import corrupt, hamming
from ..datasets import load_images
from ..episodes import capacity_episodes, test_episodes
from ..evaluate import episode_seed
from ..runs import load_trained, mix_seed, model_from_state
from .stability import fixed_alphas, margins, used_alpha

# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------

def _model_results(experiment: str, results_dir, profile: str | None = None, prefix: str | None = None,
                   seeds=None) -> list[dict]:
    """Finished model runs of `experiment` with the given profile (or profile prefix)."""
    out = []
    for r in artifacts.load_results(experiment, results_dir=results_dir):
        if profile is not None and r["profile"] != profile:
            continue
        if prefix is not None and not r["profile"].startswith(prefix):
            continue
        if seeds and r["seed"] not in seeds:
            continue
        out.append(r)
    return out


def score_episodes(model, X, batch_size: int, seed: int) -> dict:
    """`model.evaluate` on episodes X (E, T, C, H, W), one episode per call, the model's noise
    (write noise, the sample of W) for episode e drawn after `torch.manual_seed(
    evaluate.episode_seed(seed, e))` inside fork_rng, as `evaluate.evaluate_model` does: the
    scores do not depend on `batch_size` (episodes moved to the device at once).
    Returns {metric: (E,) tensor}."""
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
    (alpha_memory), as {"W0": {"median", "max"}, "M": {...}} over the E episodes
    (`stability.margins`, the same write noise as `score_episodes` draws for episode e).
    The iteration converges only below 2 (`gpm_core.pinv`); None for DKM or alpha = "auto"."""
    if not fixed_alphas(model.cfg):
        return None
    ratios = margins(model, X, seed)
    out, over = {}, torch.zeros(len(X), dtype=torch.bool)
    for name in ("W0", "M"):
        r = ratios[name]  # (E,)
        out[name] = {"median": r.median().item(), "max": r.max().item()}
        over |= ~(r < 2).cpu()  # past the convergence limit (or not finite)
    out["over_limit"] = int(over.sum())  # episodes where either iteration must diverge
    return out


def pack_images(X) -> list[str]:
    """Binary images (N, 1, H, W) -> hex strings of their packed bits, one per image (for the
    JSON; `report.capacity.unpack_images` reads them back)."""
    return [artifacts.pack_bits(x) for x in X]


def _pinv_check(model, state) -> dict | None:
    """For a GPM with fixed alphas: alpha * sigma_max^2 of W0 and of M for one written episode
    (the Ben-Cohen iteration converges only below 2), with the alpha each was inverted with
    (capped per matrix where model.alpha_cap; then also the uncapped value, as "<name>_uncapped"),
    and whether M is finite; None otherwise."""
    cfg = model.cfg
    if not fixed_alphas(cfg):
        return None
    out = {}
    for name, a in (("W0", cfg.alpha_weight), ("M", cfg.alpha_memory)):
        A = state[name][0].double()
        if not bool(torch.isfinite(A).all()):
            out[name] = float("nan")
            if cfg.alpha_cap:
                out[f"{name}_uncapped"] = float("nan")
            continue
        s2 = torch.linalg.matrix_norm(A, ord=2).square()
        out[name] = float(used_alpha(cfg, a, A) * s2)
        if cfg.alpha_cap:
            out[f"{name}_uncapped"] = float(a * s2)
    return out | {"M_finite": bool(torch.isfinite(state["M"]).all())}


def _T_of(result: dict) -> int:
    return int(result["config"]["data"]["episode_length"])


# --------------------------------------------------------------------------------------
# GPM Fig. 4
# --------------------------------------------------------------------------------------

def fig4_curve(cfg: dict, results_dir) -> tuple[list[dict], list[dict]]:
    """Fig. 4a points: for every model run of every curve experiment, the bound's terms on
    max(1, test_images // T) fixed test episodes of its own length T. Returns (points,
    the model results used)."""
    c = cfg["curve"]
    points, used, test_cache = [], [], {}
    for exp in c["experiments"]:
        runs = _model_results(exp, results_dir, prefix=c["profile_prefix"], seeds=c["seeds"])
        if not runs:
            seeds = ",".join(map(str, c["seeds"])) or "*"
            raise FileNotFoundError(f"no results/{exp}/{c['profile_prefix']}*-seed{seeds}.json: train them "
                                    f"first (python -m gpm_core train configs/{exp}.toml --profile "
                                    f"{c['profile_prefix']}<T> --seed N)")
        for r in sorted(runs, key=lambda r: (_T_of(r), r["seed"])):
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
    `storage.experiment` (or its run of profile `storage.model_profile`): write `write`
    images of the `storage.split` split (the paper: the test set; a fixed random choice, all
    if 0) into ONE memory, corrupt `queries` of them, read each query `iters` times (attractor
    dynamics) and count wrong pixels against the clean image; generate `samples` images and
    find each one's nearest written image by Hamming distance. Returns (payload, model result)."""
    s, c = cfg["storage"], cfg["curve"]
    if s["model_profile"]:
        runs = _model_results(s["experiment"], results_dir, profile=s["model_profile"], seeds=[c["seed"]])
        want = f"{s['model_profile']}-seed{c['seed']}"
    else:
        runs = _model_results(s["experiment"], results_dir, prefix=c["profile_prefix"], seeds=[c["seed"]])
        want = f"{c['profile_prefix']}*-seed{c['seed']}"
    if not runs:
        raise FileNotFoundError(f"no results/{s['experiment']}/{want}.json: train the model first "
                                f"(configs/{s['experiment']}.toml)")
    r = max(runs, key=_T_of)
    model, mcfg = load_trained(r)
    test_set = load_images(mcfg.data.dataset, s["split"], mcfg.data)  # the images written (any split)
    if s["alpha"] == "auto" and mcfg.model.kind == "gpm":  # the same weights, alpha chosen per matrix
        mcfg = dataclasses.replace(mcfg, model=dataclasses.replace(mcfg.model, alpha_memory="auto",
                                                                   alpha_weight="auto"))
        model = model_from_state(mcfg, model.state_dict(), test_set.image_shape)
    g = torch.Generator().manual_seed(s["seed"])
    n_write = s["write"] or len(test_set)
    if n_write > len(test_set):
        raise ConfigError(f"storage.write = {n_write}: the {s['split']} set has {len(test_set)} images")
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
        pinv = _pinv_check(model, state)
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
        "split": s["split"], "written": n_write, "queries": n_q, "pixels": n_pix,
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
        "alpha": s["alpha"], "pinv": pinv,
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
    c = cfg["capacity"]
    rows, used, test_cache, episode_cache = [], [], {}, {}
    for exp in c["experiments"]:
        model_profile = model_profile_of(c["model_profile"], exp)
        runs = _model_results(exp, results_dir, profile=model_profile, seeds=c["seeds"])
        if not runs:
            raise FileNotFoundError(f"no results/{exp}/{model_profile}-seed*.json: train them first "
                                    f"(python -m gpm_core train configs/{exp}.toml --profile "
                                    f"{model_profile} --seed N)")
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
                    seed = mix_seed(c["seed"], n_cls, L)
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

def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="an analysis file: configs/fig4_capacity_eval.toml or "
                                  "configs/dkm_fig2_capacity.toml")
    p.add_argument("--profile", default="quick", help="profile in the file (default quick)")
    p.add_argument("--seed", type=int, default=0, help="added to the file's seeds; names the artifact (default 0)")
    p.add_argument("--results-dir", default="results", help="where model results are read and the analysis written")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")


def analyse(cfg: dict, seed: int = 0, results_dir="results") -> Path:
    """Run the analysis of a validated config and write its artifact; returns the path."""
    cfg = copy.deepcopy(cfg)
    # --seed N shifts the seeds of the analysis' episodes and noise (not the model seed)
    for section, key in (("curve", "eval_seed"), ("storage", "seed"), ("capacity", "seed")):
        if section in cfg:
            cfg[section][key] += seed
    t0 = time.time()
    if cfg["analysis"] == "gpm_fig4":
        points, used = fig4_curve(cfg, results_dir)  # [] for a storage-only profile
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
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_capacity_config(args.config, args.profile)
    path = analyse(cfg, seed=args.seed, results_dir=args.results_dir)
    print(f"{cfg['experiment']} ({cfg['analysis']}, profile {cfg['profile']}, seed {args.seed}): wrote {path}")
    return 0
