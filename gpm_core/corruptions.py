"""Corrupted queries for the denoising experiments, and the Hamming error.

GPM section 3.2 / Table 2 / Figs. 2, 7, 8 and DKM section 4 corrupt binarized Omniglot
test images in three ways. The papers give the kind and the level, not the details, so
each choice below is ours and stated:

- `salt_pepper(X, p)`: flip exactly round(p * H * W) pixels of each image, chosen uniformly
  without replacement (DKM: "randomly flipping 15% of the bits"; GPM: "salt & pepper noise
  (15%)"). An exact count, so the corruption's Hamming distance is the same for every image.
- `block(X, size)`: set a size x size square at a uniformly random position inside the image
  to `fill` (default 1, ink): an opaque block that covers part of the pattern (GPM Fig. 7b:
  "block noise (12 x 12 block) to cover a part of the correct pattern").
- `rotate(X, degrees)`: rotate each image by +degrees or -degrees (sign uniformly random)
  about its centre, nearest-neighbour, pixels entering from outside set to 0 (GPM Table 2:
  "rotation noise (30 deg)"; Fig. 7c draws the angle from [-45, 45]; `rotate(X, (lo, hi))`
  draws it uniformly from [lo, hi]).
- `gaussian(X, sigma)`: add independent N(0, sigma^2) noise to every pixel and clip to
  [0, 1] (GPM Fig. 7d: "Gaussian noise with standard deviation 0.5"). The query stays
  real-valued (the encoder reads it as it is; clipping keeps it in the range the encoder was
  trained on); its Hamming error against the clean image is that of the thresholded query,
  a pixel flipping when the noise pushes it across 0.5 (probability 1 - Phi(0.5 / sigma)).

Every function takes a `torch.Generator` and is deterministic given its state; images are
float tensors (..., C, H, W) with values in {0, 1}, returned as new tensors of the same
shape (in {0, 1} except for `gaussian`, in [0, 1]). `hamming(X, Y)` counts differing pixels per image after thresholding at 0.5: the
papers' "Hamming error"; a retrieval is a success when it is at most 1 % of the pixels
(7 of 784, GPM Table 2: "at most 1% error, which is equivalent to 7 pixels").
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

KINDS = ("salt_pepper", "block", "rotation", "gaussian")


def _check_images(X: Tensor) -> None:
    if X.dim() < 3:
        raise ValueError(f"images must be (..., C, H, W), got shape {tuple(X.shape)}")


def salt_pepper(X: Tensor, p: float, generator: torch.Generator | None = None) -> Tensor:
    """Flip exactly round(p * H * W) pixels (all channels) of each image: x -> 1 - x."""
    _check_images(X)
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"salt-and-pepper fraction must be in [0, 1], got {p}")
    *lead, C, H, W = X.shape
    n = int(round(p * H * W))
    flat = X.reshape(-1, C, H * W).clone()
    keys = torch.rand(flat.shape[0], H * W, generator=generator).to(X.device)
    idx = keys.argsort(dim=-1)[:, :n]  # n distinct pixels per image
    mask = torch.zeros(flat.shape[0], H * W, dtype=torch.bool, device=X.device)
    mask.scatter_(1, idx, True)
    mask = mask[:, None, :].expand_as(flat)
    flat[mask] = 1.0 - flat[mask]
    return flat.reshape(X.shape)


def block(X: Tensor, size: int, generator: torch.Generator | None = None, fill: float = 1.0) -> Tensor:
    """Set a size x size square at a uniformly random position inside each image to `fill`."""
    _check_images(X)
    *lead, C, H, W = X.shape
    if not 0 <= size <= min(H, W):
        raise ValueError(f"block size must be in [0, {min(H, W)}] for {H}x{W} images, got {size}")
    flat = X.reshape(-1, C, H, W).clone()
    N = flat.shape[0]
    top = torch.randint(H - size + 1, (N,), generator=generator).tolist()
    left = torch.randint(W - size + 1, (N,), generator=generator).tolist()
    for i in range(N):
        flat[i, :, top[i]:top[i] + size, left[i]:left[i] + size] = fill
    return flat.reshape(X.shape)


def rotate(X: Tensor, degrees: float | tuple[float, float],
           generator: torch.Generator | None = None) -> Tensor:
    """Rotate each image about its centre (nearest neighbour, zeros from outside).

    degrees: a number d -> the angle is +d or -d with equal probability; a pair (lo, hi) ->
    uniform in [lo, hi]. Positive angles turn counter-clockwise as displayed (row 0 on top).
    """
    _check_images(X)
    *lead, C, H, W = X.shape
    flat = X.reshape(-1, C, H, W)
    N = flat.shape[0]
    if isinstance(degrees, (tuple, list)):
        lo, hi = float(degrees[0]), float(degrees[1])
        if lo > hi:
            raise ValueError(f"rotation range must have lo <= hi, got {degrees}")
        angles = lo + (hi - lo) * torch.rand(N, generator=generator, dtype=torch.float64)
    else:
        sign = torch.randint(2, (N,), generator=generator).to(torch.float64) * 2 - 1
        angles = sign * float(degrees)
    th = angles * math.pi / 180.0
    # output pixel (x, y) in normalised coordinates samples the input at R(-th) (x, y);
    # y grows downwards, so the displayed image turns counter-clockwise by th
    cos, sin = th.cos(), th.sin()
    theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(th)], -1),
                         torch.stack([sin, cos, torch.zeros_like(th)], -1)], 1)
    theta = theta.to(device=X.device, dtype=X.dtype if X.is_floating_point() else torch.float32)
    grid = torch.nn.functional.affine_grid(theta, (N, C, H, W), align_corners=False)
    out = torch.nn.functional.grid_sample(flat.to(grid.dtype), grid, mode="nearest",
                                          padding_mode="zeros", align_corners=False)
    return out.to(X.dtype).reshape(X.shape)


def gaussian(X: Tensor, sigma: float, generator: torch.Generator | None = None) -> Tensor:
    """X + sigma * eps, eps ~ N(0, I) drawn per pixel and channel, clipped to [0, 1]."""
    _check_images(X)
    if not sigma >= 0.0:
        raise ValueError(f"Gaussian noise standard deviation must be >= 0, got {sigma}")
    eps = torch.randn(X.shape, generator=generator, dtype=torch.float32).to(device=X.device)
    return (X + sigma * eps.to(X.dtype)).clamp(0.0, 1.0)


def corrupt(X: Tensor, kind: str, level, generator: torch.Generator | None = None) -> Tensor:
    """Dispatch: kind "salt_pepper" (level = fraction), "block" (level = side in pixels),
    "rotation" (level = degrees, or a (lo, hi) range), "gaussian" (level = standard deviation)."""
    if kind == "salt_pepper":
        return salt_pepper(X, float(level), generator)
    if kind == "block":
        return block(X, int(level), generator)
    if kind == "rotation":
        return rotate(X, level if isinstance(level, (tuple, list)) else float(level), generator)
    if kind == "gaussian":
        return gaussian(X, float(level), generator)
    raise ValueError(f"unknown corruption {kind!r}; valid: {', '.join(KINDS)}")


def hamming(X: Tensor, Y: Tensor) -> Tensor:
    """Number of pixels (all channels) that differ after thresholding at 0.5, per image:
    (..., C, H, W) x (..., C, H, W) -> (...,) int64."""
    if X.shape != Y.shape:
        raise ValueError(f"hamming needs equal shapes, got {tuple(X.shape)} and {tuple(Y.shape)}")
    _check_images(X)
    return ((X > 0.5) != (Y > 0.5)).flatten(-3).sum(-1)


def success_threshold(n_pixels: int, fraction: float = 0.01) -> int:
    """The largest Hamming error that counts as a successful retrieval: floor(1 % of the
    pixels), 7 for 28 x 28 images (GPM Table 2)."""
    return int(math.floor(fraction * n_pixels + 1e-9))
