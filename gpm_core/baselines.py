"""Baselines: what any memory model must beat, and the VAEs its step time is compared with.

- `independent_pixel_nll` (binary images) and `pixel_histogram_bits` (8-bit images):
  likelihoods of models with independent pixels fitted on the training images, no memory and
  no networks (book/07_table1, book/13_real_valued).
- `VAETwoSamples` and `build_baseline`: the VAE of `gpm_core.models` with two samples of z
  per image, decoder-matched to GPM and DKM (GPM section 3.5; `gpm_core.analyses.timing`,
  book/12_running_time).
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from .config import ModelConfig
from .models import VAE, build_model

IMAGE_SHAPE = (1, 28, 28)  # the binarized datasets' images, the default of `build_baseline`


def independent_pixel_nll(train, test, eps: float = 1e-4) -> float:
    """A reference bound: nats/image on binary `test` images (N, C, H, W) of a model with
    independent Bernoulli pixels whose means are the `train` pixel means (clamped to
    [eps, 1 - eps]). No memory, no networks: what any model must beat."""
    p = train.float().mean(0).clamp(eps, 1 - eps)  # (C, H, W)
    x = test.float()
    ll = x * p.log() + (1 - x) * (1 - p).log()  # (N, C, H, W)
    return -ll.sum(dim=(1, 2, 3)).mean().item()


def pixel_histogram_bits(train: torch.Tensor, test: torch.Tensor, per_pixel: bool = True,
                         pseudo_count: float = 1.0) -> float:
    """A reference in bits/dim for 8-bit images (N, C, H, W) uint8: the test images' negative
    log-likelihood under independent sub-pixels, each with a 256-bin categorical estimated
    from the `train` images (its own histogram per position if `per_pixel`, else one
    histogram shared by all positions), with `pseudo_count` added to every bin (Laplace).
    No memory, no networks: the 8-bit analogue of `independent_pixel_nll`."""
    D = math.prod(train.shape[1:])
    x_train = train.reshape(len(train), D).long()  # (N, D)
    if per_pixel:
        counts = torch.zeros(D, 256, dtype=torch.float64)
        counts.scatter_add_(1, x_train.T, torch.ones_like(x_train.T, dtype=torch.float64))  # (D, 256)
    else:
        counts = torch.bincount(x_train.reshape(-1), minlength=256).double().expand(D, 256)
    logp = (counts + pseudo_count).log() - (counts.sum(1, keepdim=True) + 256 * pseudo_count).log()
    x_test = test.reshape(len(test), D).long()
    nll = -logp.gather(1, x_test.T).sum(0)  # (N_test,) nats per image
    return (nll.mean() / (D * math.log(2))).item()


class VAETwoSamples(VAE):
    """The decoder-matched baseline: the same VAE with two reparameterised samples of z per
    image (the 2-sample Monte Carlo ELBO), decoded in one call. It sends 2T codes through the
    decoder per episode, as GPM and DKM do (the read-outs W M and, for L_AE, the codes Z),
    so GPM's step time over this one is the price of the memory alone."""

    def _terms(self, X):
        mu, logvar = self._posterior(X)  # (B, T, C) each
        eps = torch.randn(2, *mu.shape, dtype=mu.dtype, device=mu.device)
        z = (mu + eps * (0.5 * logvar).exp()).transpose(0, 1).flatten(1, 2)  # (B, 2T, C)
        out = self.decode(z)
        recon = self.nll(out, X.repeat(1, 2, 1, 1, 1)).unflatten(1, (2, X.shape[1])).mean(1)
        kl = 0.5 * (logvar.exp() + mu.square() - 1.0 - logvar).sum(-1)  # (B, T)
        return recon, kl


def build_baseline(kind: str, cfg: ModelConfig, image_shape=IMAGE_SHAPE) -> torch.nn.Module:
    """'vae' (gpm_core.models.VAE), 'vae2' (`VAETwoSamples`) or a memory model 'gpm'/'dkm'."""
    if kind == "vae2":
        return VAETwoSamples(replace(cfg, kind="vae"), image_shape)
    return build_model(replace(cfg, kind=kind), image_shape)
