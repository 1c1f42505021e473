"""Denoising by iterative reading: GPM Table 2 and Figs. 2, 7, 8; DKM section 4 / Fig. 3.

    python -m gpm_core denoise configs/table2_denoise.toml --profile quick --seed 0

The protocol (GPM section 3.2 and appendix B; DKM section 4), for each trained model named
in the config (its result JSON `results/<experiment>/<model profile>-seed<seed>.json`):

1. write an episode of T clean test images into the memory (`model.write`, as when the
   model is scored for Table 1: GPM with its writing noise, DKM's posterior mean);
2. corrupt every image of the episode (`gpm_core.corruptions`) and use the corrupted images
   as queries;
3. run the attractor dynamics, `model.iterative_read`, for `iterations` steps (GPM: 20),
   each read decoded to the mode of the Bernoulli decoder (the papers' text) or, with
   `decode_threshold`, to the pixels whose mean reaches it (the authors' GPM code: 0.1);
4. measure the Hamming error of every state against the clean image, and count a
   retrieval as a success when the final error is at most 1 % of the pixels (7 of 784;
   GPM Table 2).

Beside each cell the artifact keeps two baselines measured on the same queries (an all-blank
answer, and no read at all: the corrupted query returned unchanged) and, per T, the reads of
the uncorrupted images (`clean_reads`): the success a model could reach at best.

Every choice the papers leave open is a config field, recorded in the artifact. The same
episodes and corruptions are used for every model (they depend only on the analysis seed,
T and the corruption), so GPM and DKM answer the same queries. The energy of each state
(GPM eq. 7, DKM eq. 14, from `iterative_read`) is stored per step, so the chapters can say
how often it decreases.

The analysis TOML:

    experiment = "table2_denoise_omniglot"
    description = "..."
    [denoise]
    models = ["table1_omniglot_gpm", "table1_omniglot_dkm"]  # experiments with trained runs
    T = [4, 8, 16]            # episode lengths written to memory
    queries = 1024            # corrupted queries per (T, corruption): queries // T episodes
    iterations = 20
    success_fraction = 0.01   # success: Hamming error <= floor(fraction * pixels)
    test_seed = 4321          # episodes and corruptions
    decode_threshold = 0.1    # optional: a read's pixel is on where the decoder's mean is at
                              # least this (the authors' GPM code: 0.1); absent: the mode
    [denoise.corruptions]     # kind -> levels (Figs. 2/8); Table 2 uses table2_levels
    salt_pepper = [0.05, 0.10, 0.15, 0.20]
    block = [6, 9, 12, 15]
    rotation = [15, 30, 45]
    [denoise.table2_levels]
    salt_pepper = 0.15
    block = 12
    rotation = 30
    [denoise.examples]        # trajectories stored as images (Fig. 7, DKM Fig. 3)
    T = 16
    n = 8
    [denoise.fig7_levels]     # optional: the corruptions of Fig. 7 (a-d); default table2_levels
    salt_pepper = 0.15
    block = 12
    rotation = [-45, 45]      # a (lo, hi) range: the angle uniform in it
    gaussian = 0.5
    [denoise.dkm_fig3]        # DKM section 4: 15 % salt-and-pepper, 15 iterations, and
    T = 32                    # samples w ~ p(w) refined by the same dynamics; energy of
    n = 20                    # n trajectories each
    iterations = 15
    salt_pepper = 0.15
    [profiles.quick]
    model_profile = "quick"   # which trained runs: results/<model>/<model_profile>-seed<N>.json
                              # (or a table {<model> = "<profile>"}, one profile per model)

`gpm_core.config.load_denoise_config` checks the file; `gpm_core.report.denoise` renders the
artifacts in book/09_denoising and book/10_attractor_dynamics.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from .. import artifacts
from ..config import ConfigError, load_denoise_config, model_profile_of
from ..corruptions import corrupt, hamming, success_threshold
from ..episodes import test_episodes
from ..runs import SEED_PRIME, load_data, load_trained, mix_seed, resolve_device


# --------------------------------------------------------------------------- measuring

def _gen(*keys: int) -> torch.Generator:
    """A generator seeded from integer keys (`runs.mix_seed`: stable across runs and platforms)."""
    return torch.Generator().manual_seed(mix_seed(*keys))


def _level_key(level) -> int:
    """An integer key of a corruption level: a number, or a (lo, hi) range of rotation angles."""
    if isinstance(level, (list, tuple)):
        return mix_seed(*(int(round(float(v) * 1000)) % SEED_PRIME for v in level))
    return int(round(float(level) * 1000))


def _kind_key(kind: str) -> int:
    return sum(ord(ch) * 31 ** i for i, ch in enumerate(kind)) % SEED_PRIME


def queries(test_set, T: int, n_queries: int, kind: str, level, test_seed: int):
    """(clean, corrupted) episodes (E, T, C, H, W), E = n_queries // T: the clean episodes
    are `episodes.test_episodes(test_set, T, E, test_seed + T)`; the corruption's generator
    depends only on (test_seed, T, kind, level), so every model gets the same queries."""
    E = max(1, n_queries // T)
    X = test_episodes(test_set, T, E, test_seed + T)
    Xq = corrupt(X, kind, level, _gen(test_seed, T, _kind_key(kind), _level_key(level)))
    return X, Xq


CHUNK = 64  # episodes written and read at once; the write noise is seeded per chunk


@torch.no_grad()
def denoise_trajectories(model, X, Xq, iterations: int, write_seed: int, device="cpu",
                         threshold: float | None = None) -> dict:
    """Write the clean episodes X, read from the corrupted Xq for `iterations` steps.

    Returns {"hamming": (iterations + 1, E, T) int64 (step 0 = the query itself),
    "ink": (iterations + 1, E, T) the number of ink pixels of each state,
    "energy": (iterations, E, T) float64, "X": (iterations + 1, E, T, C, H, W) uint8}
    on the CPU. Episodes go through in chunks of CHUNK; the model's randomness (GPM's
    writing noise) for the chunk starting at episode s comes from
    `torch.manual_seed(write_seed + s)`. threshold: `model.iterative_read`'s (None: the mode)."""
    ham, ink, energy, states = [], [], [], []
    with torch.random.fork_rng(devices=[d for d in [torch.device(device)] if d.type == "cuda"]):
        for start in range(0, len(X), CHUNK):
            Xc, Xqc = X[start:start + CHUNK].to(device), Xq[start:start + CHUNK].to(device)
            torch.manual_seed(write_seed + start)
            state = model.write(Xc)
            out = model.iterative_read(Xqc, state, iterations, threshold)
            traj = out["X"]  # (n + 1, B, T, C, H, W)
            ham.append(hamming(traj, Xc.expand_as(traj)).cpu())
            ink.append((traj > 0.5).flatten(-3).sum(-1).cpu())
            energy.append(out["energy"].double().cpu())
            states.append((traj > 0.5).to(torch.uint8).cpu())
    return {"hamming": torch.cat(ham, 1), "ink": torch.cat(ink, 1), "energy": torch.cat(energy, 1),
            "X": torch.cat(states, 1)}


def energy_stats(energy: torch.Tensor, rtol: float = 1e-4) -> dict:
    """How often the energy (steps, ...) goes down along a trajectory: fractions of
    trajectories whose last energy is below the first ("decreased"), that never rise by
    more than rtol * |E| from one step to the next ("monotone"), and that rise at least once
    ("rose")."""
    e = energy.flatten(1)  # (steps, N)
    tol = rtol * e.abs().clamp_min(1.0)
    rises = (e[1:] > e[:-1] + tol[:-1]).any(0)
    return {"n": e.shape[1], "decreased": (e[-1] < e[0] - tol[0]).double().mean().item(),
            "monotone": (~rises).double().mean().item(), "rose": rises.double().mean().item(),
            "mean": e.mean(1).tolist()}


def _summary(tr: dict, threshold: int) -> dict:
    """Per step: mean and sd of the Hamming error, the success rate (%) (error <=
    threshold) and the mean number of ink pixels of the states."""
    h = tr["hamming"].flatten(1).double()  # (steps, N)
    return {"n": h.shape[1], "hamming_mean": h.mean(1).tolist(), "hamming_sd": h.std(1).tolist(),
            "success_rate": ((h <= threshold).double().mean(1) * 100).tolist(),
            "ink_mean": tr["ink"].flatten(1).double().mean(1).tolist()}


def _pack(X: torch.Tensor) -> dict:
    """Binary images as a hex string of packed bits (`artifacts.pack_bits`), with their shape;
    `report.denoise.unpack` reads them back."""
    return {"shape": list(X.shape), "bits": artifacts.pack_bits(X)}


def run_denoise(cfg: dict, seed: int, results_dir="results", device="cpu", log=print) -> Path:
    """Run the analysis of `cfg` (from `load_denoise_config`) on the trained runs of model
    seed `seed`; write results/<experiment>/<profile>-seed<seed>.json. Returns its path."""
    t0 = time.time()
    models, sources = {}, []
    for exp in cfg["models"]:
        model_profile = model_profile_of(cfg["model_profile"], exp)
        path = artifacts.result_path(exp, model_profile, seed, results_dir)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no trained run to denoise with; train it first: python -m gpm_core train "
                f"configs/{exp}.toml --profile {model_profile} --seed {seed}")
        model, mcfg = load_trained(path, device)
        models[exp] = (model, mcfg)
        sources.append(artifacts.source_info(_read_json(path) | {"path": _rel(str(path))}))
    datasets = {(m.data.dataset, m.data.binarize) for _, m in models.values()}
    if len(datasets) != 1:
        raise ConfigError(f"{cfg['path']}: the models were trained on different data {sorted(datasets)}")
    test_set = load_data(next(iter(models.values()))[1], "test")
    threshold = success_threshold(int(torch.tensor(test_set.image_shape).prod()), cfg["success_fraction"])
    grid = []
    for T in cfg["T"]:
        for kind, levels in cfg["corruptions"].items():
            for level in levels:
                X, Xq = queries(test_set, T, cfg["queries"], kind, level, cfg["test_seed"])
                clean_ink = (X > 0.5).flatten(2).sum(-1)
                query_err = ((X > 0.5) != (Xq > 0.5)).flatten(2).sum(-1)
                row = {"T": T, "kind": kind, "level": level,
                       "query_hamming_mean": float(query_err.double().mean()),
                       "clean_ink_mean": float(clean_ink.double().mean()),
                       # what an all-blank read-out would score: images with <= threshold ink pixels
                       "blank_success_rate": float((clean_ink <= threshold).double().mean() * 100),
                       # what no read at all scores: the corrupted query returned unchanged
                       "query_success_rate": float((query_err <= threshold).double().mean() * 100)}
                for exp, (model, _) in models.items():
                    tr = denoise_trajectories(model, X, Xq, cfg["iterations"], cfg["test_seed"] + 7 * T, device,
                                              cfg.get("decode_threshold"))
                    row[exp] = {**_summary(tr, threshold), "energy": energy_stats(tr["energy"])}
                grid.append(row)
                log(f"T={T:3d} {kind:11s} {str(level):>5}: " + ", ".join(
                    f"{exp} success {row[exp]['success_rate'][-1]:5.1f}% hamming {row[exp]['hamming_mean'][-1]:6.1f}"
                    for exp in models))
    clean_reads = _clean_reads(models, test_set, cfg, threshold, device)
    examples = _examples(models, test_set, cfg, device)
    table2_examples = _table2_examples(models, test_set, cfg, device)
    dkm_fig3 = _dkm_fig3(models, test_set, cfg, device)
    payload = {"success_threshold": threshold, "image_pixels": int(torch.tensor(test_set.image_shape).prod()),
               "grid": grid, "clean_reads": clean_reads, "examples": examples, "table2_examples": table2_examples,
               "dkm_fig3": dkm_fig3,
               "data": {"test": test_set.meta}, "deviation": test_set.meta.get("deviation")}
    cfg_record = {k: v for k, v in cfg.items() if k != "path"} | {"config_file": _rel(cfg["path"])}
    return artifacts.save_analysis(cfg["experiment"], cfg["profile"], seed, payload, config=cfg_record,
                                   sources=sources, device=device, wall_time_s=round(time.time() - t0, 3),
                                   description=cfg["description"], results_dir=results_dir)


def _rel(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(artifacts.REPO))
    except ValueError:
        return str(path)


def _read_json(path) -> dict:
    with open(path) as f:
        return json.load(f)


def _clean_reads(models, test_set, cfg, threshold, device) -> list[dict]:
    """The ceiling of the protocol: per T, the same episodes as the grid, queried with the
    clean images themselves (no corruption) and read `iterations` times. A model that cannot
    return a clean written image within the success threshold cannot denoise it either."""
    out = []
    for T in cfg["T"]:
        X = test_episodes(test_set, T, max(1, cfg["queries"] // T), cfg["test_seed"] + T)
        row = {"T": T}
        for exp, (model, _) in models.items():
            tr = denoise_trajectories(model, X, X, cfg["iterations"], cfg["test_seed"] + 7 * T, device,
                                      cfg.get("decode_threshold"))
            row[exp] = {**_summary(tr, threshold), "energy": energy_stats(tr["energy"])}
        out.append(row)
    return out


def _examples(models, test_set, cfg, device) -> dict:
    """Fig. 7 (a-d): a few trajectories per corruption of `fig7_levels` (default: the Table 2
    levels), stored as images, with their energies (Fig. 7e)."""
    ex = cfg["examples"]
    return {kind: _trajectory_images(models, test_set, cfg, kind, level, ex["T"], ex["n"], cfg["test_seed"] + 1,
                                     device)
            for kind, level in cfg.get("fig7_levels", cfg["table2_levels"]).items()}


def _table2_examples(models, test_set, cfg, device, n: int = 8) -> dict:
    """What the models return for the Table 2 queries at the shortest T (where the paper's
    success is highest): n trajectories per Table 2 corruption, as images, with the Hamming
    error and energy of every step."""
    T = min(cfg["T"])
    return {kind: _trajectory_images(models, test_set, cfg, kind, level, T, n, cfg["test_seed"] + 5, device)
            for kind, level in cfg["table2_levels"].items()}


def _trajectory_images(models, test_set, cfg, kind, level, T, n, seed, device) -> dict:
    """n queries from ceil(n / T) episodes of length T: clean images, queries (thresholded: a
    Gaussian query is real-valued), every state (steps, n, C, H, W) and, per query, the
    energy and Hamming error of every step."""
    X, Xq = queries(test_set, T, -(-n // T) * T, kind, level, seed)
    flat = lambda A: A.reshape(-1, *A.shape[-3:])[:n]  # (E, T, ...) -> (n, ...)
    entry = {"T": T, "level": level, "clean": _pack(flat(X) > 0.5), "query": _pack(flat(Xq) > 0.5)}
    for exp, (model, _) in models.items():
        tr = denoise_trajectories(model, X, Xq, cfg["iterations"], seed, device, cfg.get("decode_threshold"))
        steps = tr["X"].shape[0]
        entry[exp] = {"X": _pack(tr["X"].reshape(steps, -1, *tr["X"].shape[-3:])[:, :n]),
                      "energy": tr["energy"].flatten(1)[:, :n].T.tolist(),
                      "hamming": tr["hamming"].flatten(1)[:, :n].T.tolist()}
    return entry


@torch.no_grad()
def _dkm_fig3(models, test_set, cfg, device) -> dict:
    """DKM section 4 / Fig. 3: denoising (salt-and-pepper) and sampling from p(w), refined by
    the attractor dynamics; energy trajectories of n patterns and a few images."""
    f = cfg["dkm_fig3"]
    T, n, iters = f["T"], f["n"], f["iterations"]
    X, Xq = queries(test_set, T, T, "salt_pepper", f["salt_pepper"], cfg["test_seed"] + 2)
    X, Xq = X[:, :n] if n <= T else X, Xq[:, :n] if n <= T else Xq
    out = {"T": T, "n": min(n, T), "iterations": iters, "salt_pepper": f["salt_pepper"],
           "clean": _pack(X[0, :8] > 0.5)}
    for exp, (model, _) in models.items():
        Xw = queries(test_set, T, T, "salt_pepper", 0.0, cfg["test_seed"] + 2)[0]  # the whole episode
        with torch.random.fork_rng(devices=[d for d in [torch.device(device)] if d.type == "cuda"]):
            torch.manual_seed(cfg["test_seed"] + 3)
            state = model.write(Xw.to(device))
            den = model.iterative_read(Xq.to(device), state, iters, cfg.get("decode_threshold"))
            torch.manual_seed(cfg["test_seed"] + 4)
            x0 = model.generate(state, min(n, T))
            smp = model.iterative_read(x0, state, iters)  # samples: the mode, as DKM section 4
        out[exp] = {
            "denoise": {"energy": den["energy"][:, 0].T.double().tolist(),
                        "hamming": hamming(den["X"][:, 0], X[0].to(device).expand_as(den["X"][:, 0])).T.tolist(),
                        "X": _pack((den["X"][:, 0, :8] > 0.5).cpu()),
                        "energy_stats": energy_stats(den["energy"][:, 0].double().cpu())},
            "sample": {"energy": smp["energy"][:, 0].T.double().tolist(),
                       "X": _pack((smp["X"][:, 0, :8] > 0.5).cpu()),
                       "energy_stats": energy_stats(smp["energy"][:, 0].double().cpu())},
        }
    return out


# --------------------------------------------------------------------------- CLI

def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="an analysis file, e.g. configs/table2_denoise.toml")
    p.add_argument("--profile", default="quick", help="profile in the file (picks the trained runs)")
    p.add_argument("--seed", type=int, action="append", default=None,
                   help="model seed(s) to analyse (repeatable; default 0)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto (default cpu)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_denoise_config(args.config, args.profile)
    device = resolve_device(args.device)
    for seed in args.seed or [0]:
        try:
            path = run_denoise(cfg, seed, args.results_dir, device, log=lambda s: print(s, flush=True))
        except FileNotFoundError as e:  # no trained run (or its weights) for this seed
            print(f"error: {e}", file=sys.stderr)
            return 5
        print(f"wrote {path}")
    return 0
