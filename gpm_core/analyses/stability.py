"""How close a GPM checkpoint is to the Ben-Israel–Cohen divergence limit.

    python -m gpm_core stability runs/table1_omniglot_gpm/xlong-seed0

The iteration X_{k+1} = 2 X_k - X_k A X_k from X_0 = alpha A^T converges to A^+ only when
alpha * sigma_max(A)^2 < 2 (`gpm_core.pinv`, book chapter 03). GPM with a fixed alpha (the
paper's 1e-3) inverts M0, the writing weights W0 (alpha_weight) and the written memory M
(alpha_memory); training moves their singular values. This command loads a run's last
checkpoint (finished or not: a run stopped by the gradient guard keeps its last good one),
writes `episodes` fixed training and test episodes with the model's writing noise, and
records alpha * sigma_max^2 of each matrix per episode and the sizes of the writing and
reading weights: results/stability_<experiment>/<profile>-seed<N>.json (an analysis
artifact with provenance).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from .. import artifacts
from ..episodes import EpisodeSampler, test_episodes
from ..evaluate import episode_seed
from ..pinv import capped_alpha
from ..runs import load_data, model_from_state, stored_run


def fixed_alphas(model_cfg) -> bool:
    """A GPM whose alphas are fixed floats: the only case with a divergence limit to approach."""
    return model_cfg.kind == "gpm" and all(isinstance(a, float)
                                           for a in (model_cfg.alpha_memory, model_cfg.alpha_weight))


def used_alpha(cfg, alpha: float, A: torch.Tensor):
    """The alpha each matrix of A (..., m, n) was inverted with: `alpha`, or with
    cfg.alpha_cap min(alpha, auto_alpha(A)) per matrix (`gpm_core.pinv`), shape A.shape[:-2]."""
    return capped_alpha(A, alpha)[..., 0, 0] if cfg.alpha_cap else alpha


def margins(model, X: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """alpha * sigma_max(A)^2 for A = M0, W0 and M when each episode of X (E, T, C, H, W) is
    written (noise of episode e seeded with `evaluate.episode_seed(seed, e)`): {name: (E,)};
    and 'W0_median': alpha_weight * the (lower) median squared singular value of each W0, the typical
    direction of the writing pseudo-inverse. pinv_steps Ben-Cohen steps invert a direction
    with alpha sigma^2 = x to the fraction 1 - (1 - x)^(2^steps), so x near 2^-steps is the
    edge between inverted and filtered out (book/07_table1).
    Needs fixed float alphas (GPM, `fixed_alphas`); raises ValueError otherwise. With
    model.alpha_cap each alpha is the one the matrix was inverted with, min(alpha, auto_alpha).
    `gpm_core.analyses.capacity.pinv_ratio` summarises the same numbers per episode cell."""
    cfg = model.cfg
    if not fixed_alphas(cfg):
        raise ValueError("stability needs a GPM with fixed float alphas (alpha = 'auto' has no limit to approach; "
                         f"got kind={cfg.kind!r}, alpha_memory={cfg.alpha_memory!r}, alpha_weight={cfg.alpha_weight!r})")
    W0, M = [], []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for e in range(len(X)):
            torch.manual_seed(episode_seed(seed, e))
            state = model.write(X[e:e + 1])
            W0.append(state["W0"][0])
            M.append(state["M"][0])
    s2 = lambda A: torch.linalg.matrix_norm(A.double(), ord=2).square()
    W0, M = torch.stack(W0).double(), torch.stack(M).double()
    M0 = model.M0.detach().double()

    alpha = lambda a, A: used_alpha(cfg, a, A)
    return {"M0": (alpha(cfg.alpha_memory, M0) * s2(M0)).expand(len(X)), "W0": alpha(cfg.alpha_weight, W0) * s2(W0),
            "M": alpha(cfg.alpha_memory, M) * s2(M),
            "W0_median": alpha(cfg.alpha_weight, W0) * torch.linalg.svdvals(W0).square().median(-1).values}


def address_sizes(model, X: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
    """Mean squared norm per image of the writing weights W0 = Z_xi M0^+ and of the reading
    weights W = Z M^+ of the written codes (no reading noise), per episode of X written as
    in `margins`: {'W0': (E,), 'W': (E,)}. KL(q(W) || p(W)) pays |W|^2 / 2 per image; with
    exact pseudo-inverses W = W0 up to the writing noise, so W / W0 measures what the
    Ben-Cohen filters add to the KL (book/07_table1)."""
    W0, W = [], []
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        for e in range(len(X)):
            torch.manual_seed(episode_seed(seed, e))
            state = model.write(X[e:e + 1])
            W0.append(state["W0"].square().sum(-1).mean())
            W.append(model.address(state["Z"], state).square().sum(-1).mean())
    return {"W0": torch.stack(W0), "W": torch.stack(W)}


def _summary(v: torch.Tensor) -> dict:
    return {"median": v.median().item(), "max": v.max().item(), "min": v.min().item(),
            "past_limit": int((~(v < 2)).sum()), "n": v.numel()}


def analyse(run_dir, episodes: int = 64, seed: int = 0, results_dir="results", device="cpu") -> Path:
    """Measure the margins of the checkpoint in `run_dir` (or of a finished run's result
    JSON and its state_dict); write and return the artifact."""
    t0 = time.time()
    run_dir = Path(run_dir)
    s = stored_run(run_dir)
    cfg = s.cfg
    train_set, test_set = load_data(cfg, "train"), load_data(cfg, "test")
    model = model_from_state(cfg, s.state_dict, train_set.image_shape)
    if s.result is not None:  # a finished run's result and the state_dict beside it
        r = s.result
        ck = {"step": r["steps"], "seed": r["seed"], "config_hash": r["config_hash"], "curve": r.get("loss_curve")}
    else:
        ck = s.checkpoint
    model.eval()
    T = cfg.data.episode_length
    X_train = next(EpisodeSampler(train_set, T, episodes, generator=torch.Generator().manual_seed(seed)))
    X_test = test_episodes(test_set, T, episodes, cfg.eval.seed)
    out = {name: {k: _summary(v) for k, v in margins(model, X, seed).items()}
           for name, X in (("train", X_train), ("test", X_test))}
    sizes = {name: {k: {"median": v.median().item(), "min": v.min().item(), "max": v.max().item(), "n": v.numel()}
                    for k, v in address_sizes(model, X, seed).items()}
             for name, X in (("train", X_train), ("test", X_test))}
    payload = {"checkpoint_step": ck["step"], "steps": cfg.train.steps, "finished": ck["step"] >= cfg.train.steps,
               "last_curve_point": ck["curve"][-1] if ck.get("curve") else None,
               "alpha_memory": cfg.model.alpha_memory, "alpha_weight": cfg.model.alpha_weight,
               "alpha_cap": cfg.model.alpha_cap,
               "margins": out, "address_sizes": sizes}
    source = {"path": str(run_dir),
              "experiment": cfg.experiment, "model": cfg.model.kind, "profile": cfg.profile, "seed": ck["seed"],
              "config_hash": ck.get("config_hash"), "checkpoint_step": ck["step"]}
    return artifacts.save_analysis(f"stability_{cfg.experiment}", cfg.profile, ck["seed"], payload,
                                   config={"run_dir": str(run_dir), "episodes": episodes, "seed": seed},
                                   sources=[source], device=device, wall_time_s=round(time.time() - t0, 3),
                                   description="alpha * sigma_max^2 of the pseudo-inverted matrices and the "
                                               "sizes of W0 and W at a checkpoint",
                                   results_dir=results_dir)


def configure(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", help="a run directory with a checkpoint, e.g. runs/table1_omniglot_gpm/xlong-seed0, "
                                "or a result JSON, e.g. results/table1_omniglot_gpm/long-seed0.json")
    p.add_argument("--episodes", type=int, default=64, help="training and test episodes written (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the episodes and the writing noise")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--threads", type=int, default=None)


def run(args) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    path = analyse(args.run, args.episodes, args.seed, args.results_dir)
    print(f"wrote {path}")
    return 0
