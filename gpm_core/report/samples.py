"""Samples from a written memory and what iterative reading does to them, book/08_reconstructions.

GPM section 3.3 (Fig. 3a) and DKM section 4 (Fig. 3b): write an episode, draw
w ~ p(w) = N(0, I_K), decode z = w M, then refine the image by iterative reading, each read
re-addressing the encoded image (w = address(e(x), M)) and decoding w M again. The paper's
text takes the mode of p(x | w, M) at every step. The authors' released GPM code binarizes
the Bernoulli means with lower thresholds instead (its `generate`: 0.05 for the raw sample,
0.3 for every read). Both are decode rules here (`DECODE_RULES`), so the chapter can show
which one its figure uses and what the choice changes.

`sample_trajectory` also records, per read, the quantities that explain how the ink of a
sample changes: the norm of the code e(x) of the current image, the norm of its read-out
w M, their cosine and ratio, ||w||^2 (p(w)'s E||w||^2 = K), and the same for the written
codes, which the memory reproduces almost exactly.
"""

from __future__ import annotations

import torch

from . import image_grid

# decode rule -> (threshold of the raw sample z = w M, threshold of every read), on the
# Bernoulli mean; None means the likelihood's mode (mean > 0.5, the paper's text)
DECODE_RULES = {"mode": (None, None), "authors": (0.05, 0.3)}


def _decode(model, Z: torch.Tensor, threshold: float | None) -> torch.Tensor:
    out = model.decode(Z)
    if threshold is None:
        return model.likelihood.mode(out)
    return model.likelihood.binarize(out, threshold)


def _norm_stats(Z: torch.Tensor, R: torch.Tensor, W: torch.Tensor) -> dict:
    """Means over every image of ||z||, ||r||, ||r|| / ||z||, cos(z, r) and ||w||^2."""
    zn, rn = Z.norm(dim=-1), R.norm(dim=-1)
    return {"code_norm": zn.mean().item(), "read_norm": rn.mean().item(),
            "norm_ratio": (rn / zn).mean().item(),
            "cosine": torch.nn.functional.cosine_similarity(R, Z, dim=-1).mean().item(),
            "w_sq": W.square().sum(-1).mean().item()}


@torch.no_grad()
def sample_trajectory(model, X: torch.Tensor, n: int, n_reads: int, rule: str = "mode",
                      generator: torch.Generator | None = None) -> dict:
    """Write the episodes X (B, T, C, H, W), draw n samples per episode and read them n_reads times.

    Returns a dict:
      'X': (n_reads + 1, B, n, C, H, W), the raw samples then each read's image;
      'reads': one dict per read k = 1..n_reads of `_norm_stats` for the code of image k-1
        and its read-out, with 'ink_in' the mean ink (pixels on) of image k-1;
      'written': `_norm_stats` of the written codes Z = e(X) and their read-outs;
      'raw_norm': mean ||w M|| of the prior draws; 'ink': mean ink of each of the n_reads + 1
        images; 'written_ink': that of X; 'nearest': per image of the last state, the Hamming
        distance to the nearest written image of its episode (B, n); 'slots': K.
    The mean addressing weights are used when reading (as `model.iterative_read`), the prior
    draws come from `generator` (default: torch's global generator). rule is a key of
    DECODE_RULES; 'authors' needs a Bernoulli likelihood.
    """
    if rule not in DECODE_RULES:
        raise ValueError(f"decode rule {rule!r} is not one of {sorted(DECODE_RULES)}")
    if rule != "mode" and model.cfg.likelihood != "bernoulli":
        raise ValueError(f"decode rule {rule!r} thresholds Bernoulli means; the model's likelihood "
                         f"is {model.cfg.likelihood!r}: use rule='mode'")
    first, later = DECODE_RULES[rule]
    state = model.write(X)
    M = state["M"]  # (B, K, C)
    Z = model.encode(X)
    Wz = model.address(Z, state)
    written = _norm_stats(Z, Wz @ M, Wz)
    w = torch.randn(M.shape[0], n, M.shape[-2], generator=generator, dtype=M.dtype, device=M.device)
    raw = w @ M
    xs, reads = [_decode(model, raw, first)], []
    for _ in range(n_reads):
        code = model.encode(xs[-1])
        W = model.address(code, state)
        read = W @ M
        reads.append({**_norm_stats(code, read, W), "ink_in": xs[-1].flatten(-3).sum(-1).mean().item()})
        xs.append(_decode(model, read, later))
    states = torch.stack(xs)
    last, written_flat = states[-1].flatten(-3), X.flatten(-3)  # (B, n, P), (B, T, P)
    nearest = (last.unsqueeze(-2) != written_flat.unsqueeze(-3)).sum(-1).min(-1).values  # (B, n)
    return {"X": states, "reads": reads, "written": written, "raw_norm": raw.norm(dim=-1).mean().item(),
            "ink": states.flatten(-3).sum(-1).mean(dim=(1, 2)).tolist(),
            "written_ink": written_flat.sum(-1).mean().item(), "nearest": nearest, "slots": M.shape[-2]}


@torch.no_grad()
def nearest_distance(images: torch.Tensor, reference: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """For each of `images` (N, ...), the squared Euclidean distance between its flattened
    pixels and those of the nearest of `reference` (M, ...), in chunks of `chunk` reference
    images; for binary images, the Hamming distance. (N,). book/08_reconstructions reads it
    against a real test image's and `shuffle_pixels` noise's distance."""
    A = images.flatten(1).float()
    a2 = A.square().sum(1, keepdim=True)
    best = A.new_full((len(A),), float("inf"))
    for s in range(0, len(reference), chunk):
        B = reference[s:s + chunk].flatten(1).float()
        best = torch.minimum(best, (a2 - 2 * A @ B.T + B.square().sum(1)).clamp_min(0).amin(1))
    return best


def shuffle_pixels(images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image (N, C, H, W) with its pixels put in a random order: the same ink, no shape
    (the control of `nearest_distance`)."""
    flat = images.flatten(1)
    order = torch.rand(flat.shape, generator=generator).argsort(1)
    return flat.gather(1, order.to(flat.device)).view_as(images)


def fig_trajectories(grid: list[list[tuple[torch.Tensor, str]]], n_show: int = 8, height: float = 5.2):
    """A figure of sample trajectories: `grid` holds rows of (X, title) panels, X one
    episode's states (n_reads + 1, n, C, H, W) from `sample_trajectory` (its 'X'[:, b]); each
    panel shows the first `n_show` samples, one per line, the raw sample then each read."""
    import matplotlib.pyplot as plt  # deferred: matplotlib is only needed to draw

    ncols = max(len(row) for row in grid)
    fig, axes = plt.subplots(len(grid), ncols, figsize=(8, height * len(grid)), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()  # panels left empty by a shorter row stay blank
    for i, row in enumerate(grid):
        for j, (X, title) in enumerate(row):
            states = X[:, :n_show]  # (steps, n_show, C, H, W)
            image_grid(axes[i, j], states.transpose(0, 1).reshape(-1, *X.shape[-3:]), X.shape[0], title)
    fig.tight_layout()
    return fig
