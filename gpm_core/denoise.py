"""Denoising by iterative reading: GPM Table 2 and Figs. 2, 7, 8; DKM section 4 / Fig. 3.

    python -m gpm_core denoise configs/table2_denoise.toml --profile quick --seed 0

The protocol (GPM section 3.2 and appendix B; DKM section 4), for each trained model named
in the config (its result JSON `results/<experiment>/<model profile>-seed<seed>.json`):

1. write an episode of T clean test images into the memory (`model.write`, as when the
   model is scored for Table 1: GPM with its writing noise, DKM's posterior mean);
2. corrupt every image of the episode (`gpm_core.corruptions`) and use the corrupted images
   as queries;
3. run the attractor dynamics, `model.iterative_read`, for `iterations` steps (GPM: 20);
4. measure the Hamming error of every state against the clean image, and count a
   retrieval as a success when the final error is at most 1 % of the pixels (7 of 784;
   GPM Table 2).

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
    [denoise.dkm_fig3]        # DKM section 4: 15 % salt-and-pepper, 15 iterations, and
    T = 32                    # samples w ~ p(w) refined by the same dynamics; energy of
    n = 20                    # n trajectories each
    iterations = 15
    salt_pepper = 0.15
    [profiles.quick]
    model_profile = "quick"   # which trained runs: results/<model>/<model_profile>-seed<N>.json
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

from .config import ConfigError

TABLE2_KINDS = ("salt_pepper", "block", "rotation")
_TOP = {"experiment", "description", "denoise", "profiles"}
_FIELDS = {"models", "T", "queries", "iterations", "success_fraction", "test_seed", "corruptions",
           "table2_levels", "examples", "dkm_fig3", "model_profile"}


# --------------------------------------------------------------------------- config

def load_denoise_config(path, profile: str = "quick") -> dict:
    """Read and validate an analysis TOML (module docstring); returns a plain dict with the
    profile's overrides applied. Raises ConfigError naming the field and what to do."""
    from .config import tomllib

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such analysis config; see configs/table2_denoise.toml")
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    unknown = set(raw) - _TOP
    if unknown:
        raise ConfigError(f"{path}: unknown top-level keys {sorted(unknown)}; valid: {sorted(_TOP)}")
    cfg = copy.deepcopy(raw.get("denoise", {}))
    profiles = raw.get("profiles", {})
    if profile not in profiles:
        raise ConfigError(f"{path}: no profile {profile!r}; profiles in the file: {sorted(profiles) or 'none'}")
    cfg.update(profiles[profile])
    unknown = set(cfg) - _FIELDS
    if unknown:
        raise ConfigError(f"{path}: unknown [denoise] fields {sorted(unknown)}; valid: {sorted(_FIELDS)}")
    for key in ("models", "T", "queries", "iterations", "corruptions", "table2_levels", "model_profile"):
        if key not in cfg:
            raise ConfigError(f"{path}: [denoise] needs `{key}` (profile {profile!r})")
    cfg.setdefault("success_fraction", 0.01)
    cfg.setdefault("test_seed", 4321)
    cfg.setdefault("examples", {"T": 16, "n": 8})
    cfg.setdefault("dkm_fig3", {"T": 32, "n": 20, "iterations": 15, "salt_pepper": 0.15})
    def need(ok: bool, what: str):
        if not ok:
            raise ConfigError(f"{path}: {what} (profile {profile!r}); see the module docstring of gpm_core.denoise")

    need(isinstance(cfg["models"], list) and cfg["models"] and all(isinstance(m, str) for m in cfg["models"]),
         "denoise.models must be a non-empty list of experiment names")
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
    from .corruptions import KINDS

    for kind in list(cfg["corruptions"]) + list(cfg["table2_levels"]):
        if kind not in KINDS:
            raise ConfigError(f"{path}: unknown corruption {kind!r}; valid: {', '.join(KINDS)}")
    for kind, level in cfg["table2_levels"].items():
        if level not in cfg["corruptions"].get(kind, []):
            raise ConfigError(f"{path}: table2 level {kind} = {level} is not among the swept levels "
                              f"{cfg['corruptions'].get(kind, [])}; add it to [denoise.corruptions]")
    return {"experiment": raw.get("experiment") or path.stem, "description": raw.get("description", ""),
            "profile": profile, "path": str(path), **cfg}


# --------------------------------------------------------------------------- measuring

def _gen(*keys: int) -> torch.Generator:
    """A generator seeded from integer keys (stable across runs and platforms)."""
    seed = 0
    for k in keys:
        seed = (seed * 1_000_003 + int(k)) % (2 ** 62)
    return torch.Generator().manual_seed(seed)


def _level_key(level) -> int:
    return int(round(float(level) * 1000))


def _kind_key(kind: str) -> int:
    return sum(ord(ch) * 31 ** i for i, ch in enumerate(kind)) % 1_000_003


def queries(test_set, T: int, n_queries: int, kind: str, level, test_seed: int):
    """(clean, corrupted) episodes (E, T, C, H, W), E = n_queries // T: the clean episodes
    are `data.test_episodes(test_set, T, E, test_seed + T)`; the corruption's generator
    depends only on (test_seed, T, kind, level), so every model gets the same queries."""
    from .corruptions import corrupt
    from .data import test_episodes

    E = max(1, n_queries // T)
    X = test_episodes(test_set, T, E, test_seed + T)
    Xq = corrupt(X, kind, level, _gen(test_seed, T, _kind_key(kind), _level_key(level)))
    return X, Xq


CHUNK = 64  # episodes written and read at once; the write noise is seeded per chunk


@torch.no_grad()
def denoise_trajectories(model, X, Xq, iterations: int, write_seed: int, device="cpu") -> dict:
    """Write the clean episodes X, read from the corrupted Xq for `iterations` steps.

    Returns {"hamming": (iterations + 1, E, T) int64 (step 0 = the query itself),
    "ink": (iterations + 1, E, T) the number of ink pixels of each state,
    "energy": (iterations, E, T) float64, "X": (iterations + 1, E, T, C, H, W) uint8}
    on the CPU. Episodes go through in chunks of CHUNK; the model's randomness (GPM's
    writing noise) for the chunk starting at episode s comes from
    `torch.manual_seed(write_seed + s)`."""
    from .corruptions import hamming

    ham, ink, energy, states = [], [], [], []
    with torch.random.fork_rng(devices=[d for d in [torch.device(device)] if d.type == "cuda"]):
        for start in range(0, len(X), CHUNK):
            Xc, Xqc = X[start:start + CHUNK].to(device), Xq[start:start + CHUNK].to(device)
            torch.manual_seed(write_seed + start)
            state = model.write(Xc)
            out = model.iterative_read(Xqc, state, iterations)
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
    """Binary images as a hex string of packed bits, with their shape."""
    import numpy as np

    bits = np.packbits(X.to(torch.uint8).flatten().numpy())
    return {"shape": list(X.shape), "bits": bits.tobytes().hex()}


def unpack(d: dict) -> torch.Tensor:
    """Inverse of `_pack`: a float tensor of 0/1 of the stored shape."""
    import numpy as np

    n = 1
    for s in d["shape"]:
        n *= s
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(d["bits"]), dtype=np.uint8))[:n]
    return torch.from_numpy(bits.astype(np.float32)).reshape(d["shape"])


def run_denoise(cfg: dict, seed: int, results_dir="results", device="cpu", log=print) -> Path:
    """Run the analysis of `cfg` (from `load_denoise_config`) on the trained runs of model
    seed `seed`; write results/<experiment>/<profile>-seed<seed>.json. Returns its path."""
    from . import artifacts
    from .corruptions import success_threshold
    from .report import load_trained
    from .train import load_data

    t0 = time.time()
    models, sources = {}, []
    for exp in cfg["models"]:
        path = artifacts.result_path(exp, cfg["model_profile"], seed, results_dir)
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: no trained run to denoise with; train it first: python -m gpm_core train "
                f"configs/{exp}.toml --profile {cfg['model_profile']} --seed {seed}")
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
                row = {"T": T, "kind": kind, "level": level,
                       "query_hamming_mean": float(((X > 0.5) != (Xq > 0.5)).flatten(2).sum(-1).double().mean()),
                       "clean_ink_mean": float(clean_ink.double().mean()),
                       # what an all-blank read-out would score: images with <= threshold ink pixels
                       "blank_success_rate": float((clean_ink <= threshold).double().mean() * 100)}
                for exp, (model, _) in models.items():
                    tr = denoise_trajectories(model, X, Xq, cfg["iterations"], cfg["test_seed"] + 7 * T, device)
                    row[exp] = {**_summary(tr, threshold), "energy": energy_stats(tr["energy"])}
                grid.append(row)
                log(f"T={T:3d} {kind:11s} {level:>5}: " + ", ".join(
                    f"{exp} success {row[exp]['success_rate'][-1]:5.1f}% hamming {row[exp]['hamming_mean'][-1]:6.1f}"
                    for exp in models))
    examples = _examples(models, test_set, cfg, device)
    dkm_fig3 = _dkm_fig3(models, test_set, cfg, device)
    payload = {"success_threshold": threshold, "image_pixels": int(torch.tensor(test_set.image_shape).prod()),
               "grid": grid, "examples": examples, "dkm_fig3": dkm_fig3,
               "data": {"test": test_set.meta}, "deviation": test_set.meta.get("deviation")}
    cfg_record = {k: v for k, v in cfg.items() if k != "path"} | {"config_file": _rel(cfg["path"])}
    return artifacts.save_analysis(cfg["experiment"], cfg["profile"], seed, payload, config=cfg_record,
                                   sources=sources, device=device, wall_time_s=round(time.time() - t0, 3),
                                   description=cfg["description"], results_dir=results_dir)


def _rel(path: str) -> str:
    from .artifacts import REPO

    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def _read_json(path) -> dict:
    import json

    with open(path) as f:
        return json.load(f)


def _examples(models, test_set, cfg, device) -> dict:
    """Fig. 7: a few trajectories per Table 2 corruption, stored as images, with energies."""
    ex = cfg["examples"]
    out = {}
    for kind, level in cfg["table2_levels"].items():
        X, Xq = queries(test_set, ex["T"], ex["T"], kind, level, cfg["test_seed"] + 1)
        entry = {"T": ex["T"], "level": level, "clean": _pack(X[0, :ex["n"]] > 0.5)}
        for exp, (model, _) in models.items():
            tr = denoise_trajectories(model, X, Xq, cfg["iterations"], cfg["test_seed"] + 1, device)
            entry[exp] = {"X": _pack(tr["X"][:, 0, :ex["n"]]),
                          "energy": tr["energy"][:, 0, :ex["n"]].T.tolist(),
                          "hamming": tr["hamming"][:, 0, :ex["n"]].T.tolist()}
        out[kind] = entry
    return out


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
            den = model.iterative_read(Xq.to(device), state, iters)
            torch.manual_seed(cfg["test_seed"] + 4)
            x0 = model.generate(state, min(n, T))
            smp = model.iterative_read(x0, state, iters)
        from .corruptions import hamming

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


# --------------------------------------------------------------------------- reading back

def load_denoise(experiment: str = "table2_denoise_omniglot", profile: str = "quick", results_dir=None) -> list[dict]:
    """The analysis artifacts of `experiment` for one profile (one per model seed)."""
    from .artifacts import load_analyses
    from .report import RESULTS

    rs = load_analyses(experiment, results_dir or RESULTS)
    return [r for r in rs if r["profile"] == profile]


def _cell(runs, exp, T, kind, level, key="success_rate", step=-1):
    vals = []
    for r in runs:
        for row in r["grid"]:
            if row["T"] == T and row["kind"] == kind and row["level"] == level and exp in row:
                vals.append(row[exp][key][step])
    return vals


def table2_rows(runs: list[dict]) -> list[dict]:
    """Table 2, ours beside the paper's: one row per (model, corruption), one column per T,
    each cell "ours mean ± sd over seeds (paper)" in % after the last iteration."""
    from .paper_numbers import TABLE2, TABLE2_T
    from .report import fmt_mean_sd

    if not runs:
        return []
    cfg = runs[0]["config"]
    # the paper's values only beside our Omniglot numbers (Table 2 is Omniglot only)
    on_omniglot = runs[0]["data"]["test"]["dataset"] == "omniglot"
    rows = []
    for exp in cfg["models"]:
        kind_model = _model_kind(runs[0], exp)
        for kind, level in cfg["table2_levels"].items():
            name = kind_model.upper() if exp.startswith("table1_") else f"{kind_model.upper()} ({exp})"
            row = {"model": name, "corruption": f"{kind} {level}"}
            paper = TABLE2.get((kind_model, f"{kind}_{_paper_level(level)}")) if on_omniglot else None
            for T in cfg["T"]:
                vals = torch.tensor(_cell(runs, exp, T, kind, level), dtype=torch.float64)
                ours = fmt_mean_sd(vals.mean().item(), vals.std().item() if len(vals) > 1 else 0.0, 1)
                p = None
                if paper is not None and T in TABLE2_T:
                    p = paper[TABLE2_T.index(T)]
                row[f"T = {T}"] = f"{ours} ({p:.2f})" if p is not None else ours
            row["seeds"] = len(runs)
            rows.append(row)
    return rows


def diagnosis_rows(runs: list[dict], T: int | None = None) -> list[dict]:
    """What the reads look like, per model and Table 2 corruption (mean over seeds): ink
    pixels of the clean images, of the queries' final states, the success rate of an
    all-blank read-out (images with <= threshold ink pixels) and ours."""
    cfg = runs[0]["config"]
    T = T or max(cfg["T"])
    rows = []
    for exp in cfg["models"]:
        for kind, level in cfg["table2_levels"].items():
            cells = [row for r in runs for row in r["grid"]
                     if row["T"] == T and row["kind"] == kind and row["level"] == level]
            mean = lambda xs: sum(xs) / len(xs)
            rows.append({
                "model": exp, "corruption": f"{kind} {level}", "T": T,
                "clean ink": f"{mean([c['clean_ink_mean'] for c in cells]):.1f}",
                "ink after 1 read": f"{mean([c[exp]['ink_mean'][1] for c in cells]):.1f}",
                "ink after last read": f"{mean([c[exp]['ink_mean'][-1] for c in cells]):.1f}",
                "Hamming, query": f"{mean([c[exp]['hamming_mean'][0] for c in cells]):.1f}",
                "Hamming, last read": f"{mean([c[exp]['hamming_mean'][-1] for c in cells]):.1f}",
                "success, blank read-out (%)": f"{mean([c['blank_success_rate'] for c in cells]):.2f}",
                "success, ours (%)": f"{mean([c[exp]['success_rate'][-1] for c in cells]):.2f}",
            })
    return rows


def energy_rows(runs: list[dict]) -> list[dict]:
    """How often the energy goes down during iterative reading, per model and corruption
    (all T and levels pooled, mean over seeds): % of trajectories whose last energy is below
    the first, % that never rise, % that rise at least once."""
    cfg = runs[0]["config"]
    rows = []
    for exp in cfg["models"]:
        for kind in cfg["corruptions"]:
            st = [row[exp]["energy"] for r in runs for row in r["grid"] if row["kind"] == kind]
            n = sum(s["n"] for s in st)
            w = lambda key: sum(s[key] * s["n"] for s in st) / n * 100
            rows.append({"model": exp, "corruption": kind, "trajectories": n,
                         "energy lower at the end (%)": f"{w('decreased'):.1f}",
                         "never rises (%)": f"{w('monotone'):.1f}",
                         "rises at least once (%)": f"{w('rose'):.1f}"})
    return rows


def _model_kind(run: dict, exp: str) -> str:
    """"gpm" or "dkm": the model kind of experiment `exp`, from the run's sources."""
    for src in run["sources"]:
        if src["experiment"] == exp and src.get("model"):
            return src["model"]
    return "gpm" if exp.endswith("_gpm") else "dkm" if exp.endswith("_dkm") else exp


def _paper_level(level) -> str:
    return str(int(round(level * 100))) if isinstance(level, float) and level < 1 else str(level)


def fig_hamming(runs: list[dict], T: int, step: int | None = None):
    """Figs. 2 and 8: Hamming error (mean over queries, then over seeds) against iteration,
    one panel per corruption kind, one line per level; solid GPM, dashed DKM."""
    import matplotlib.pyplot as plt

    cfg = runs[0]["config"]
    kinds = list(cfg["corruptions"])
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.2 * len(kinds), 3.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        levels = cfg["corruptions"][kind]
        colors = plt.cm.viridis(torch.linspace(0, 0.9, len(levels)).tolist())
        for exp, style in zip(cfg["models"], ["-", "--", ":"]):
            for level, c in zip(levels, colors):
                curves = [row[exp]["hamming_mean"] for r in runs for row in r["grid"]
                          if row["T"] == T and row["kind"] == kind and row["level"] == level]
                if not curves:
                    continue
                mean = torch.tensor(curves, dtype=torch.float64).mean(0)
                label = f"{exp.rsplit('_', 1)[-1].upper()} {level}"
                ax.plot(range(len(mean)), mean.numpy(), style, color=c, label=label)
        ax.set_title(f"{kind.replace('_', ' ')}, T = {T}")
        ax.set_xlabel("iteration")
        ax.set_ylabel("Hamming error (pixels)")
        ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def fig_examples(run: dict, kind: str, models: list[str] | None = None):
    """Fig. 7 (a-c): clean patterns, the corrupted queries and the iterative reads, for one
    corruption; one block of rows per model."""
    import matplotlib.pyplot as plt
    import torchvision.utils as vutils

    entry = run["examples"][kind]
    models = models or [m for m in run["config"]["models"] if m in entry]
    fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4.5), squeeze=False)
    clean = unpack(entry["clean"])  # (n, C, H, W)
    for ax, exp in zip(axes[0], models):
        traj = unpack(entry[exp]["X"])  # (steps, n, C, H, W)
        steps = list(range(0, traj.shape[0], max(1, traj.shape[0] // 10)))
        rows = torch.cat([clean[None], traj[steps]], 0)  # (1 + len(steps), n, C, H, W)
        grid = vutils.make_grid(rows.transpose(0, 1).reshape(-1, *clean.shape[1:]), nrow=rows.shape[0],
                                padding=2, pad_value=0.5)
        ax.imshow(grid.permute(1, 2, 0).numpy(), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{exp}: clean | query | reads " + ", ".join(map(str, steps[1:])), fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    return fig


def fig_energy(curves_by_model: dict[str, list[list[float]]], title: str = "", relative: bool = True):
    """Energy per iteration (GPM Fig. 7e, DKM Fig. 3c/d): one thin line per pattern; with
    `relative`, each curve minus its first value, so the descent is comparable."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(curves_by_model), figsize=(4.5 * len(curves_by_model), 3.2), squeeze=False)
    for ax, (name, curves) in zip(axes[0], curves_by_model.items()):
        for c in curves:
            c = torch.tensor(c, dtype=torch.float64)
            y = c - c[0] if relative else c
            ax.plot(range(1, len(c) + 1), y.numpy(), lw=0.8, alpha=0.7)
        ax.set_title(f"{name} {title}".strip(), fontsize=9)
        ax.set_xlabel("iteration")
        ax.set_ylabel("energy - energy at step 1" if relative else "energy")
    fig.tight_layout()
    return fig


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
    from .train import resolve_device

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

