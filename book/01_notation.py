# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["remove-cell"]
import os, subprocess, sys  # on Colab: clone the repository, install it, enter it (gpm_core/colab.py)
if "google.colab" in sys.modules:
    repo = os.environ.setdefault("GPM_REPO", os.path.abspath("gpm-book"))
    os.path.isdir(repo) or subprocess.run(["git", "clone", "-q", "--depth", "1", os.environ.get("GPM_REPO_URL", "https://github.com/gpm-book/gpm-book"), repo], check=True)
    sys.path.insert(0, repo); __import__("gpm_core.colab").colab.setup(repo)

# %% [markdown]
# # Notation
#
# The two papers use different conventions: GPM {cite}`pham2022gpm` stacks an episode as the
# *rows* of a matrix and reads $Z = WM$; the DKM {cite}`wu2018dkm` works with one *column*
# vector at a time and reads $z = M^\top w$. This book uses GPM's row convention everywhere,
# for both models, so that one symbol has one shape. The package `gpm_core` uses the same
# names in ASCII.
#
# | Symbol | Meaning | Shape | `gpm_core` name |
# |---|---|---|---|
# | $T$ | episode length (number of items written together) | scalar | `T`, `episode_length` |
# | $K$ | number of memory rows (slots) | scalar | `K`, `memory_slots` |
# | $C$ | code size: width of the memory and of an embedding | scalar | `C`, `code_size` |
# | $X$ | an episode of $T$ inputs (images), one per row | $T \times$ image | `X` |
# | $Z = e(X)$ | the episode's codes (embeddings), one per row | $T \times C$ | `Z` |
# | $\xi$ | writing noise, entries $\N(0, \sigma_\xi^2)$ | $T \times C$ | `xi` |
# | $Z_\xi = Z + \xi$ | the noisy codes that GPM writes | $T \times C$ | `Z_xi` |
# | $\sigma_\xi$ | std of the writing (GPM) / observation (DKM) noise | scalar | `sigma_xi` |
# | $M_0$ | GPM's prior memory, a trained parameter | $K \times C$ | `M0` |
# | $M$ | posterior memory after writing an episode | $K \times C$ | `M` |
# | $W_0$ | GPM's writing weights, $W_0 = Z_\xi \pinv{M_0}$ | $T \times K$ | `W0` |
# | $W$, $\bar W$ | reading weights and their mean, $\bar W = Z\pinv{M}$ | $T \times K$ | `W`, `W_mean` |
# | $\sigma_w$ | std of the reading weights' posterior $q(W) = \N(\bar W, \sigma_w^2 I)$ | scalar | `sigma_w` |
# | $\pinv{A}$ | Moore–Penrose pseudo-inverse of $A$ | $n\times m$ for $A$ $m\times n$ | `pinv(A)` |
# | $\alpha$ | Ben-Cohen initial scale, $X_0 = \alpha A^\top$ | scalar | `alpha` |
# | $k$ | number of Ben-Cohen steps (7 in the paper) | integer | `steps` |
# | $R_0$, $U_0$ | DKM prior: mean and row covariance of $M \sim \MN(R_0, U_0, I_C)$ | $K\times C$, $K\times K$ | `R0`, `U0` |
# | $R$, $U$ | DKM posterior mean and row covariance after writing | $K\times C$, $K\times K$ | `R`, `U` |
# | $\mu_w$ | DKM addressing weight of one code (a row of $W$) | $1 \times K$ | a row of `W` |
# | $\sigma_U$ | DKM prior scale, $U_0 = \sigma_U^2 I$ | scalar | `sigma_u` |
#
# Two remarks on the papers' notation:
#
# - GPM writes the noise and the weight posterior as $\N(0, \sigma_\xi I)$ and
#   $\N(\bar W, \sigma_W I)$ in section 2 but samples $\xi \sim \N(0, \sigma_\xi^2 I)$ in
#   Algorithm 1; we read $\sigma_\xi$ and $\sigma_w$ as standard deviations everywhere.
# - GPM calls the pseudo-inverse iteration's parameter $\alpha$, and its Theorem 2.2 also uses
#   $\alpha$ and $\beta$ for two unrelated bounds. In {doc}`04_gpm_memory` those are
#   $\alpha$, $\beta$ of the theorem; everywhere else $\alpha$ is the Ben-Cohen scale.
#
# Batching: every memory operation in `gpm_core` accepts leading batch dimensions, so an
# episode batch is `(B, T, C)`, the memories `(B, K, C)` and the weights `(B, T, K)`; the
# trained prior `M0` (or `R0`) may stay unbatched `(K, C)`. A one-cell check, building every
# quantity of the table with the package:

# %%
import torch

from gpm_core import dkm, gpm
from gpm_core.artifacts import REPO
from gpm_core.config import load_config
from gpm_core.pinv import make_pinv

paper_cfg = load_config(REPO / "configs" / "table1_omniglot_gpm.toml", "paper").model  # GPM appendix C
gen = torch.Generator().manual_seed(0)
B, T = 2, 16
K, C = paper_cfg.memory_slots, paper_cfg.code_size  # 32 x 100
sigma_xi, sigma_w = paper_cfg.sigma_xi, paper_cfg.sigma_w  # 0.5; DKM appendix B (sigma_w^2 = 0.3)
pinv = make_pinv(paper_cfg.pinv, steps=paper_cfg.pinv_steps, alpha=paper_cfg.alpha_memory)  # 7 steps, 1e-3

Z = torch.randn(B, T, C, generator=gen)  # (B, T, C) codes
M0 = torch.randn(K, C, generator=gen)  # (K, C) prior memory, shared by the batch
Z_xi = gpm.add_write_noise(Z, sigma_xi, generator=gen)  # (B, T, C)
W0, M = gpm.write(Z_xi, M0, pinv, pinv)  # (B, T, K), (B, K, C)
W_mean = gpm.address(Z, M, pinv)  # (B, T, K)
W = gpm.sample_w(W_mean, sigma_w, generator=gen)  # (B, T, K)
Z_read = gpm.read(W, M)  # (B, T, C)

R0, U0 = torch.randn(K, C, generator=gen), torch.eye(K)  # DKM prior, U0 = sigma_U^2 I
R, U, W_dkm = dkm.write(Z, R0, U0, sigma_xi)  # (B, K, C), (B, K, K), (B, T, K)

shapes = {"Z": Z, "Z_xi": Z_xi, "M0": M0, "W0": W0, "M": M, "W_mean": W_mean, "W": W,
          "Z_read": Z_read, "R0": R0, "U0": U0, "R": R, "U": U, "W_dkm": W_dkm}
expected = {"Z": (B, T, C), "Z_xi": (B, T, C), "M0": (K, C), "W0": (B, T, K), "M": (B, K, C),
            "W_mean": (B, T, K), "W": (B, T, K), "Z_read": (B, T, C), "R0": (K, C),
            "U0": (K, K), "R": (B, K, C), "U": (B, K, K), "W_dkm": (B, T, K)}
for name, tensor in shapes.items():
    assert tuple(tensor.shape) == expected[name], name
    print(f"{name:7} {str(tuple(tensor.shape)):14}")
