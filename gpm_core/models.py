"""The trainable models: GPM (Pham et al. 2022), DKM (Wu et al. 2018) and a VAE baseline.

All three share one `Encoder`/`Decoder` pair (`gpm_core.nets`) and one output likelihood
(`gpm_core.likelihoods`); GPM and DKM differ only in their memory, whose operations are
the pure functions of `gpm_core.gpm` and `gpm_core.dkm`. `build_model(cfg, image_shape)`
picks the class from `cfg.kind`.

Interface (what `gpm_core.train`, `gpm_core.evaluate` and the chapters call). Episodes X
are (B, T, C, H, W) floats in [0, 1] (binary for the Bernoulli likelihood). Every metric
is per image, in nats.

    forward(X) -> dict        'loss' (scalar to minimise, -(L + L_AE) / T averaged over
                              episodes) and detached scalars 'recon', 'kl_w', 'ae',
                              'elbo_cond' (= recon + kl_w), and for DKM 'kl_m'
    evaluate(X, X_query=None) -> dict of (B,) tensors: 'nll_cond' (Table 1's metric),
                              'recon', 'kl_w', 'kl_m', 'nll_cond_with_kl_m', 'cosine',
                              and 'bits_per_dim' for the DMoL likelihood (GPM and DKM:
                              also 'nll_cond_iid'/'_shared', 'bits_per_dim_iid'/'_shared')
    write(X) -> state         a dict; state['M'] (B, K, C) is the memory read from
    read(Xq, state, sample=False) -> (out, W)   decoder output and reading weights
    generate(state, n) -> (B, n, C, H, W)        w ~ N(0, I), z = w M, decoded mode
    iterative_read(Xq, state, n_iters, threshold=None) -> dict   the attractor dynamics with energies
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F

from . import dkm, gpm
from .config import ModelConfig
from .likelihoods import bits_per_dim, get_likelihood
from .nets import make_nets
from .pinv import make_pinv

# Model parameters that are the memory prior's mean (gpm_core.train gives them
# train.memory_lr_scale times the learning rate)
MEMORY_PRIOR = ("M0", "R0")


def _memory_init(cfg: ModelConfig) -> torch.Tensor:
    """The memory prior's mean at the start: N(0, memory_init_std^2), (K, C)."""
    M = torch.randn(cfg.memory_slots, cfg.code_size)
    return M if cfg.memory_init_std == 1.0 else M * cfg.memory_init_std


class AutoEncoder(nn.Module):
    """The encoder, decoder and likelihood shared by every model, with the batching glue:
    images (..., C, H, W) <-> codes (..., code) for any leading dims."""

    def __init__(self, cfg: ModelConfig, image_shape, code_out: int | None = None):
        super().__init__()
        if len(image_shape) != 3:
            raise ValueError(f"image_shape must be (C, H, W), got {tuple(image_shape)}; "
                             "pass the shape of one image.")
        self.cfg, self.image_shape = cfg, tuple(int(s) for s in image_shape)
        C, H, W = self.image_shape
        self.likelihood = get_likelihood(cfg.likelihood, cfg.n_mixtures)
        self.encoder, self.decoder = make_nets(cfg.net, C, self.likelihood.out_channels(C), cfg.filters,
                                               cfg.code_size, code_out or cfg.code_size, (H, W), cfg.out_block)

    def check_episodes(self, X, name="X"):
        if X.dim() != 5 or tuple(X.shape[-3:]) != self.image_shape:
            raise ValueError(f"{name} must be episodes (B, T, {', '.join(map(str, self.image_shape))}), "
                             f"got {tuple(X.shape)}; stack the episode's images along dim 1.")

    def encode(self, X):  # (..., C, H, W) -> (..., code)
        lead = X.shape[:-3]
        Z = self.encoder((X * 2 - 1).reshape(-1, *self.image_shape))  # inputs centred on 0
        return Z.view(*lead, Z.shape[-1])

    def decode(self, Z):  # (..., C_code) -> (..., P, H, W), the likelihood's parameters
        out = self.decoder(Z.reshape(-1, Z.shape[-1]))
        return out.view(*Z.shape[:-1], *out.shape[1:])

    def nll(self, out, X):  # -> (...,) nats per image
        return self.likelihood.nll(out, X)

    def _per_episode(self, recon, kl_w, kl_m, Z=None, Z_read=None):
        """Table 1's metrics per episode (B,), averaged over the T scored images."""
        nll_cond = (recon + kl_w).mean(-1)
        res = {"nll_cond": nll_cond, "recon": recon.mean(-1), "kl_w": kl_w.mean(-1),
               "kl_m": kl_m, "nll_cond_with_kl_m": nll_cond + kl_m}
        if Z is not None:
            res["cosine"] = F.cosine_similarity(Z, Z_read, dim=-1).mean(-1)
        if self.likelihood.name == "dmol":
            res["bits_per_dim"] = bits_per_dim(nll_cond, math.prod(self.image_shape))
        return res


class MemoryModel(AutoEncoder):
    """What GPM and DKM share: training step, evaluation, reading, sampling and the
    attractor dynamics. Subclasses supply `write`, `address`, `_kl_w` and `_energy_term`."""

    # units of the metrics `evaluate` adds for the DMoL (gpm_core.evaluate reads this)
    metric_units = {"bits_per_dim_iid": "bits/dim", "bits_per_dim_shared": "bits/dim"}

    def __init__(self, cfg: ModelConfig, image_shape):
        super().__init__(cfg, image_shape)
        # sigma_w: std of q(W) = N(W_mean, sigma_w^2 I), trained (both papers)
        self.log_sigma_w = nn.Parameter(torch.tensor(math.log(cfg.sigma_w)))

    @property
    def sigma_w(self):
        return self.log_sigma_w.exp()

    def _noisy(self, Z):
        """Z + xi on the reading path when model.noise = 'authors' (their code adds
        N(0, sigma_xi^2) to the codes before addressing and to the read-out W M)."""
        return gpm.add_write_noise(Z, self.cfg.sigma_xi) if self.cfg.noise == "authors" else Z

    def _episode_terms(self, X, state, X_query=None, w_sample=None):
        """Read X_query (default X) from the written memory: per-image (B, T') terms.
        w_sample: 'iid' | 'shared', default cfg.w_sample (see gpm.sample_w)."""
        Xq = X if X_query is None else X_query
        Zq = state["Z"] if X_query is None else self.encode(Xq)  # (B, T', C)
        W_mean = self.address(self._noisy(Zq), state)  # (B, T', K)
        shared = (w_sample or self.cfg.w_sample) == "shared"
        W = gpm.sample_w(W_mean, self.sigma_w, shared=shared)  # q(W), reparameterised
        Z_read = self._noisy(W @ state["M"])  # (B, T', C)
        return Xq, Zq, W_mean, Z_read

    def forward(self, X):
        """One training step's objective, -(L + L_AE) per image (GPM eq. 2, DKM eq. 12)."""
        self.check_episodes(X)
        T = X.shape[1]
        state = self.write(X, noise=True)
        _, Z, W_mean, Z_read = self._episode_terms(X, state)
        # the read-outs W M and the codes Z (for L_AE) go through the decoder in one call
        out = self.decode(torch.cat([Z_read, Z], dim=1))  # (B, 2T, P, H, W)
        recon = self.nll(out[:, :T], X)  # (B, T)  -E_q ln p(x_t | w_t, M)
        ae = self.nll(out[:, T:], X)  # (B, T)  -ln p(x_t | d(e(x_t)))
        kl_w = self._kl_w(W_mean)  # (B, T)
        kl_m = state["kl_m"] / T  # (B,) per image; 0 for GPM
        loss = (recon + kl_w + ae).mean() + kl_m.mean()
        metrics = {"recon": recon.mean(), "kl_w": kl_w.mean(), "ae": ae.mean(),
                   "elbo_cond": (recon + kl_w).mean()}
        if self.has_kl_m:
            metrics["kl_m"] = kl_m.mean()
        return {"loss": loss, **{k: v.detach() for k, v in metrics.items()}}

    @torch.no_grad()
    def evaluate(self, X, X_query=None):
        """Per-episode bounds (B,) with the test episode X written to memory.

        'nll_cond' = -[E_q ln p(x|w,M) - KL(q(w)||p(w))] per image, the papers' conditional
        bound (GPM Table 1; DKM reports L_T with KL(q(M)||p(M)) removed, divided by T),
        with W drawn as in training (cfg.w_sample); 'nll_cond_iid' and 'nll_cond_shared'
        score the same written memory with each way of drawing W (one of them is
        'nll_cond' itself). Only 'nll_cond_iid' is a bound: the KL is that of i.i.d. noise;
        'nll_cond_with_kl_m' keeps KL(M) / T (DKM); 'cosine' is the mean cosine similarity
        of e(x_t) and the read-out w_mean_t M (GPM Fig. 6). With X_query (B, T', C, H, W),
        X is written and X_query is read and scored: a bound on images not written.
        The expectation over q(W) uses one sample, as in training.
        """
        self.check_episodes(X)
        if X_query is not None:
            self.check_episodes(X_query, "X_query")
        state = self.write(X)
        Xq, Zq, W_mean, Z_read = self._episode_terms(X, state, X_query)
        recon = self.nll(self.decode(Z_read), Xq)  # (B, T')
        kl_m = state["kl_m"] / X.shape[1]  # (B,)
        kl_w = self._kl_w(W_mean)
        res = self._per_episode(recon, kl_w, kl_m, Zq, W_mean @ state["M"])
        other = "iid" if self.cfg.w_sample == "shared" else "shared"
        _, _, W_mean2, Z_read2 = self._episode_terms(X, state, X_query, w_sample=other)
        nll_other = (self.nll(self.decode(Z_read2), Xq) + self._kl_w(W_mean2)).mean(-1)
        res[f"nll_cond_{self.cfg.w_sample}"], res[f"nll_cond_{other}"] = res["nll_cond"], nll_other
        if self.likelihood.name == "dmol":  # the same two scores per dimension (Table 3's unit)
            for draw in ("iid", "shared"):
                res[f"bits_per_dim_{draw}"] = bits_per_dim(res[f"nll_cond_{draw}"], math.prod(self.image_shape))
        return res

    def read(self, Xq, state, sample: bool = False):
        """Read the queries Xq (B, T', C, H, W): returns (decoder output (B, T', P, H, W),
        W (B, T', K)); W is the mean of q(W), or a sample of it with sample=True."""
        W = self.address(self.encode(Xq), state)
        if sample:
            W = gpm.sample_w(W, self.sigma_w)
        return self.decode(W @ state["M"]), W

    @torch.no_grad()
    def generate(self, state, n: int):
        """n samples per episode (B, n, C, H, W): w ~ p(w) = N(0, I), z = w M, decoded mode
        (GPM section 3.3, DKM section 4; refine them with `iterative_read`)."""
        M = state["M"]  # (B, K, C)
        w = torch.randn(M.shape[0], n, M.shape[1], dtype=M.dtype, device=M.device)
        return self.likelihood.mode(self.decode(w @ M))

    @torch.no_grad()
    def iterative_read(self, Xq, state, n_iters: int, threshold: float | None = None):
        """The attractor dynamics (GPM section 2.4, DKM section 3.5): x_{i+1} is the mode of
        p(x | w_{i+1}, M) with w_{i+1} the address of e(x_i). Returns a dict:
        'X' (n_iters + 1, B, T, C, H, W) with X[0] = Xq, 'W' (n_iters, B, T, K), and per
        step i = 1..n_iters the energy of the pair (x_i, w_i), shape (n_iters, B, T):
        'energy' = 'nll' + the model's second term ('residual' for GPM eq. 7, 'kl_w' for
        DKM eq. 14), 'nll' = -ln p(x_i | w_i, M).
        threshold (Bernoulli only): x_{i+1} is 1 where the decoder's mean is at least
        `threshold` instead of the mode (the authors' GPM code denoises with 0.1)."""
        if threshold is not None and not hasattr(self.likelihood, "binarize"):
            raise ValueError(f"iterative_read: threshold = {threshold!r} binarizes Bernoulli means; the "
                             f"model's likelihood is {self.cfg.likelihood!r}: leave threshold None (the mode)")
        to_image = self.likelihood.mode if threshold is None else (lambda o: self.likelihood.binarize(o, threshold))
        outs, codes = [], []

        def encode(X):
            codes.append(self.encode(X))
            return codes[-1]

        def decode(Z):
            outs.append(self.decode(Z))
            return to_image(outs[-1])

        traj = self._iterate(Xq, state, encode, decode, n_iters)
        X = torch.stack(traj.X)
        if n_iters == 0:
            return {"X": X, "W": X.new_zeros(0, *X.shape[1:3], state["M"].shape[-2])}
        W = torch.stack(traj.W)
        codes.append(self.encode(X[-1]))  # e(x_n) for the last pair's residual
        nll = torch.stack([self.nll(o, x) for o, x in zip(outs, X[1:])])  # (n, B, T)
        name, term = self._energy_term(torch.stack(codes[1:]), W, state)
        return {"X": X, "W": W, "energy": nll + term, "nll": nll, name: term}


class GPM(MemoryModel):
    """Generative Pseudo-Inverse Memory, Algorithm 1 of Pham et al. (2022).

    Parameters: encoder, decoder, the prior memory M0 (K, C) and log sigma_w. Writing:
    Z = e(X), Z_xi = Z + xi, W0 = Z_xi M0^+, M = W0^+ Z_xi; reading: W_mean = Z M^+,
    W ~ N(W_mean, sigma_w^2 I), X^ = d(W M). Loss: -(L + L_AE), eqs. 1-2.
    Pseudo-inverses: `pinv.make_pinv(cfg.pinv, cfg.pinv_steps, alpha)`, with alpha_memory
    for M0^+ and M^+ and alpha_weight for W0^+ (GPM appendix C), never checked (no host
    syncs in the training step).

    cfg.noise = 'paper' follows Algorithm 1 (xi only when writing); 'authors' adds what the
    authors' `memory.py` does: a second xi for the codes W0 is computed from, xi on the codes
    before addressing, and xi on the read-out W M. cfg.w_sample = 'shared' draws W as their
    code does (one scalar for the batch); see `gpm.sample_w` for why that is not q(W).
    """

    has_kl_m = False

    def __init__(self, cfg: ModelConfig, image_shape):
        super().__init__(cfg, image_shape)
        # N(0, memory_init_std^2); N(0, 1), the default, as the authors' code (and DKM's R0)
        self.M0 = nn.Parameter(_memory_init(cfg))
        self.pinv_memory = make_pinv(cfg.pinv, cfg.pinv_steps, cfg.alpha_memory, cap=cfg.alpha_cap)
        self.pinv_weight = make_pinv(cfg.pinv, cfg.pinv_steps, cfg.alpha_weight, cap=cfg.alpha_cap)

    def write(self, X, noise: bool | None = None):
        """Write episodes X (B, T, C, H, W). noise: add xi ~ N(0, sigma_xi^2) to Z
        (Algorithm 1); None -> cfg.eval_write_noise. Returns {'M': (B, K, C),
        'W0': (B, T, K), 'Z': (B, T, C), 'kl_m': zeros (B,)}."""
        Z = self.encode(X)  # (B, T, C)
        noise = self.cfg.eval_write_noise if noise is None else noise
        Z_xi = gpm.add_write_noise(Z, self.cfg.sigma_xi) if noise else Z
        # the authors' code draws xi a second time for the codes that W0 is computed from
        Z_address = gpm.add_write_noise(Z_xi, self.cfg.sigma_xi) if noise and self.cfg.noise == "authors" else None
        W0, M = gpm.write(Z_xi, self.M0, self.pinv_memory, self.pinv_weight, Z_address)
        return {"M": M, "W0": W0, "Z": Z, "kl_m": Z.new_zeros(Z.shape[0])}

    def address(self, Z, state):  # W_mean = Z M^+  (B, T, K)
        return gpm.address(Z, state["M"], self.pinv_memory)

    def _kl_w(self, W_mean):  # (B, T)
        return gpm.kl_w(W_mean, self.sigma_w)

    def _iterate(self, Xq, state, encode, decode, n_iters):
        return gpm.iterative_read(Xq, state["M"], encode, decode, self.pinv_memory, n_iters)

    def _energy_term(self, Z, W, state):
        """||e(x_i) - w_i M||^2, the memory term of eq. 7 (`gpm.energy`)."""
        return "residual", gpm.energy(Z, W, state["M"])


class DKM(MemoryModel):
    """The Dynamic Kanerva Machine, Algorithm 1 of Wu et al. (2018).

    Parameters (DKM appendix B): encoder, decoder, the prior mean R0 (K, C) ~ N(0, 1),
    log sigma_u with U0 = sigma_u^2 I (sigma_u = 1), log sigma_w (sigma_w^2 = 0.3); the
    observation noise sigma_xi is fixed (cfg.sigma_xi). Writing is sequential Bayesian
    inference (`dkm.write`); reading addresses with the posterior mean R_T (eq. 6) and
    decodes W R_T. Loss: -(L_T + L_AE) / T with L_T of eq. 4, including KL(q(M)||p(M)).
    """

    has_kl_m = True

    def __init__(self, cfg: ModelConfig, image_shape):
        super().__init__(cfg, image_shape)
        self.R0 = nn.Parameter(_memory_init(cfg))
        self.log_sigma_u = nn.Parameter(torch.tensor(math.log(cfg.sigma_u)))

    @property
    def U0(self):  # (K, K)
        K = self.R0.shape[0]
        return self.log_sigma_u.mul(2).exp() * torch.eye(K, dtype=self.R0.dtype, device=self.R0.device)

    def write(self, X, noise: bool | None = None):
        """Write episodes X (B, T, C, H, W) by T sequential Bayesian updates. Returns
        {'M': R_T (B, K, C), 'U': (B, K, K), 'W': the writing weights (B, T, K),
        'Z': (B, T, C), 'kl_m': KL(q(M) || p(M)) per episode (B,)}. (`noise` is accepted
        for symmetry with GPM: DKM's observation noise is in its update rule.)"""
        Z = self.encode(X)  # (B, T, C)
        U0 = self.U0
        R, U, W = dkm.write(Z, self.R0, U0, self.cfg.sigma_xi, refine=self.cfg.dkm_refine)
        R = R.expand(Z.shape[0], *R.shape[-2:])  # T = 0 would leave R0 unbatched
        kl_m = dkm.kl_memory(R, U, self.R0, U0).expand(Z.shape[0])
        return {"M": R, "U": U, "W": W, "Z": Z, "kl_m": kl_m}

    def address(self, Z, state):  # mu_w, eq. 6  (B, T, K)
        return dkm.address(Z, state["M"], self.cfg.sigma_xi)

    def _kl_w(self, W_mean):  # (B, T)
        return dkm.kl_w(W_mean, self.sigma_w)

    def _iterate(self, Xq, state, encode, decode, n_iters):
        return dkm.iterative_read(Xq, state["M"], encode, decode, self.cfg.sigma_xi, n_iters)

    def _energy_term(self, Z, W, state):
        """KL(q(w_i) || p(w)), the second term of eq. 14."""
        return "kl_w", self._kl_w(W)


class VAE(AutoEncoder):
    """The baseline with the same networks and no memory: a VAE (Kingma and Welling 2014)
    whose encoder emits the mean and log-variance of a C-dim Gaussian q(z|x) (its last
    linear layer is twice as wide), prior p(z) = N(0, I). Every image is its own episode
    member; the loss is the negative ELBO per image. For a uniform interface the latent's
    KL is reported as 'kl_w', 'ae' and 'kl_m' are 0 and 'elbo_cond' is the (unconditional)
    ELBO; `evaluate` has no 'cosine' (there is no memory to read from)."""

    has_kl_m = False

    def __init__(self, cfg: ModelConfig, image_shape):
        super().__init__(cfg, image_shape, code_out=2 * cfg.code_size)

    def _posterior(self, X):
        mu, logvar = self.encode(X).chunk(2, dim=-1)  # (B, T, C) each
        return mu, logvar

    def _terms(self, X):
        mu, logvar = self._posterior(X)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        recon = self.nll(self.decode(z), X)  # (B, T)
        kl = 0.5 * (logvar.exp() + mu.square() - 1.0 - logvar).sum(-1)  # (B, T)
        return recon, kl

    def forward(self, X):
        self.check_episodes(X)
        recon, kl = self._terms(X)
        zero = recon.new_zeros(())
        return {"loss": (recon + kl).mean(), "recon": recon.mean().detach(),
                "kl_w": kl.mean().detach(), "ae": zero, "elbo_cond": (recon + kl).mean().detach()}

    @torch.no_grad()
    def evaluate(self, X, X_query=None):
        """The negative ELBO per image of X_query (default X), per episode (B,)."""
        Xq = X if X_query is None else X_query
        self.check_episodes(Xq)
        recon, kl = self._terms(Xq)
        return self._per_episode(recon, kl, recon.new_zeros(recon.shape[0]))

    @torch.no_grad()
    def generate(self, state, n: int):
        """n samples (B, n, C, H, W) from p(z) = N(0, I), decoded mode; B = 1 when state
        is None (a VAE has no memory; a state dict with 'M' sets B)."""
        B = 1 if state is None else state["M"].shape[0]
        z = torch.randn(B, n, self.cfg.code_size, device=next(self.parameters()).device)
        return self.likelihood.mode(self.decode(z))


MODELS = {"gpm": GPM, "dkm": DKM, "vae": VAE}


def build_model(cfg: ModelConfig, image_shape) -> nn.Module:
    """The model named by cfg.kind for images of shape (C, H, W)."""
    if cfg.kind not in MODELS:
        raise ValueError(f"unknown model kind {cfg.kind!r}; set model.kind to one of {sorted(MODELS)}.")
    return MODELS[cfg.kind](cfg, image_shape)
