"""DKM's sequential write: `gpm_core.dkm.write` against the textbook loop, forward + backward.

    python benchmarks/dkm_write.py [--repeats 5] [--steps]

The textbook loop is Algorithm 1 as the papers state it, the way `dkm.write` computed it
until it carried the inverse of R R^T + sigma_xi^2 I through the rank-one updates (Woodbury)
and wrote its matrix-vector products with the vector on the left: for each image, address with
a Cholesky solve of the full R R^T + sigma_xi^2 I (`dkm.address`), then `dkm.update`. Both are
timed on the memory path alone (random codes Z, a random prior mean R0, U0 = I, sigma_xi = 1,
8 episodes of T = 32, the loss sum(R^2) + sum(W^2) backpropagated to Z and R0) for the two
memory sizes of GPM appendix C, interleaved round by round so a busy machine slows both alike;
the median of the rounds is printed with the ratio and the relative difference of W.

--steps also times one full training step (forward, backward, Adam) of the DKM models of
configs/table1_omniglot_dkm_resnet.toml (profile cpu) and configs/table3_fashion_mnist_dkm.toml
(profile cpu_long) with either write, on fabricated images.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import contextmanager
from unittest import mock

import torch

from gpm_core import dkm


def textbook_write(Z, R0, U0, sigma_xi, refine=0, *, check=None):
    R, U, Ws = R0, U0, []
    for t in range(Z.shape[-2]):
        z = Z[..., t, :]
        R_t, U_t = R, U
        for _ in range(1 + refine):
            w = dkm.address(z.unsqueeze(-2), R_t, sigma_xi).squeeze(-2)
            R_t, U_t = dkm.update(R, U, z, w, sigma_xi)
        R, U = R_t, U_t
        Ws.append(w)
    return R, U, torch.stack(Ws, dim=-2)


WRITES = {"textbook": textbook_write, "dkm.write": dkm.write}


def interleaved(fns: dict, repeats: int) -> dict:
    """Median seconds per call of each fn, the fns called in turn in every round."""
    times = {k: [] for k in fns}
    for f in fns.values():
        f()  # warm-up
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def memory_path(repeats: int):
    print("memory path, forward + backward, 8 episodes of T = 32, float32, one thread (ms):")
    print(f"{'memory':>10} {'textbook':>9} {'dkm.write':>9} {'speed-up':>8} {'rel. diff of W':>15}")
    g = torch.Generator().manual_seed(0)
    for K, C in ((32, 100), (128, 512)):
        Z, R0 = torch.randn(8, 32, C, generator=g), torch.randn(K, C, generator=g)

        def run(write):
            Zg, Rg = Z.clone().requires_grad_(), R0.clone().requires_grad_()
            R, U, W = write(Zg, Rg, torch.eye(K), 1.0)
            (R.square().sum() + W.square().sum()).backward()
            return W.detach()

        t = interleaved({k: (lambda w=w: run(w)) for k, w in WRITES.items()}, repeats)
        W_new, W_old = run(dkm.write), run(textbook_write)
        diff = ((W_new - W_old).norm() / W_old.norm()).item()
        print(f"{K:>4} x {C:<4} {1e3 * t['textbook']:>9.1f} {1e3 * t['dkm.write']:>9.1f} "
              f"{t['textbook'] / t['dkm.write']:>8.2f} {diff:>15.1e}")


@contextmanager
def write_as(fn):
    with mock.patch.object(dkm, "write", fn):
        yield


def training_steps(repeats: int):
    from gpm_core.config import load_config
    from gpm_core.models import build_model

    print("\none training step (forward, backward, Adam), batch 8, T = 32, one thread (s):")
    print(f"{'model':>38} {'textbook':>9} {'dkm.write':>9} {'speed-up':>8}")
    for path, profile in (("configs/table1_omniglot_dkm_resnet.toml", "cpu"),
                          ("configs/table3_fashion_mnist_dkm.toml", "cpu_long")):
        cfg = load_config(path, profile)
        torch.manual_seed(0)
        model = build_model(cfg.model, image_shape=(1, 28, 28))
        if cfg.train.channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)
        X = torch.rand(8, 32, 1, 28, 28)
        X = (X > 0.7).float() if cfg.model.likelihood == "bernoulli" else torch.round(X * 255) / 255

        def step(write):
            with write_as(write):
                out = model(X)
                opt.zero_grad(set_to_none=True)
                out["loss"].backward()
                opt.step()

        t = interleaved({k: (lambda w=w: step(w)) for k, w in WRITES.items()}, repeats)
        name = f"{cfg.experiment} {profile}"
        print(f"{name:>38} {t['textbook']:>9.3f} {t['dkm.write']:>9.3f} {t['textbook'] / t['dkm.write']:>8.2f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--steps", action="store_true", help="also time full training steps")
    args = p.parse_args()
    torch.set_num_threads(1)
    memory_path(args.repeats)
    if args.steps:
        training_steps(args.repeats)


if __name__ == "__main__":
    main()
