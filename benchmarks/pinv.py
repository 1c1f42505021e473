"""Ben-Cohen pseudo-inverse vs torch.linalg.pinv on GPM's matrix shapes: speed and error.

    python benchmarks/pinv.py [--device cpu|cuda] [--repeats 3] [--batch 16]

Matrices: batches of Gaussian N(0, 1) matrices, the scale of an initial memory M0 (the
authors initialise it with torch.randn(K, C); learned memories drift from it). Shapes are
the memories of GPM appendix C: 32 x 100 (binarized data, paper alpha 1e-3) and 128 x 512
(real-valued data, paper alpha 5e-5). Timings are float32 with check=False (the training
path, auto alpha included in its time); errors are against torch.linalg.pinv in float64:
err = ||X - A^+||_F / ||A^+||_F and res = ||A X A - A||_F / ||A||_F, median over the batch.
speedup = t(torch.linalg.pinv) / t(ben_cohen_pinv), both float32 on the same device.
CPU timings on a shared machine are noisy (best of --repeats rounds); the errors are not.

The other two tables reproduce the auto_alpha measurements quoted in gpm_core/pinv.py
(float64, so they show the iteration's error, not float32 rounding).
"""

import argparse
import time

import torch

from gpm_core.pinv import auto_alpha, ben_cohen_pinv, penrose_residual, sigma_max_sq_bound

PAPER_ALPHA = {(32, 100): 1e-3, (128, 512): 5e-5}  # GPM appendix C, memory pseudo-inverses


def timed(fn, device, repeats):
    """Seconds per call of fn(): the best of `repeats` rounds of n calls, n chosen so that a
    round lasts >= 20 ms (timeit-style; the minimum is the least disturbed by other
    processes on a shared machine). A warm-up call comes first."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def round_time(n):
        sync()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        sync()
        return time.perf_counter() - t0

    fn()  # warm-up
    n = 1
    while (t := round_time(n)) < 0.02:
        n *= 4
    return min([t] + [round_time(n) for _ in range(repeats - 1)]) / n


def errors(A64, X, P):
    """Median relative error against P = torch.linalg.pinv(A64) and Penrose residual."""
    err = torch.linalg.matrix_norm(X.double() - P) / torch.linalg.matrix_norm(P)
    return err.median().item(), penrose_residual(A64, X.double()).median().item()


def speed_table(device, repeats, batch, gen):
    print(f"Ben-Cohen vs torch.linalg.pinv: batch {batch}, float32, N(0,1) entries, {device}")
    header = (f"{'shape':>9} {'alpha':>10} {'steps':>5} {'err':>9} {'res':>9} "
              f"{'ms':>8} {'pinv ms':>8} {'speedup':>7}")
    print(header)
    print("-" * len(header))
    for (m, n), paper_alpha in PAPER_ALPHA.items():
        A64 = torch.randn(batch, m, n, dtype=torch.float64, generator=gen)
        A = A64.to(device=device, dtype=torch.float32)
        P = torch.linalg.pinv(A64)
        t_pinv = timed(lambda: torch.linalg.pinv(A), device, repeats)
        for alpha in (paper_alpha, "auto"):
            for steps in (7, 15):
                run = lambda: ben_cohen_pinv(A, steps, alpha, check=False)  # noqa: E731
                t = timed(run, device, repeats)
                err, res = errors(A64, run().cpu(), P)
                name = f"{alpha:g} paper" if alpha != "auto" else "auto"
                print(f"{m:>4}x{n:<4} {name:>10} {steps:>5} {err:>9.2e} {res:>9.2e} "
                      f"{1e3 * t:>8.2f} {1e3 * t_pinv:>8.2f} {t_pinv / t:>7.2f}")


def rayleigh_sq(A, iters):
    """sigma_max^2 estimated by `iters` vector power iterations (a lower bound)."""
    G = A @ A.mT if A.shape[-2] <= A.shape[-1] else A.mT @ A
    v = torch.ones(*G.shape[:-1], 1, dtype=A.dtype)
    for _ in range(iters):
        v = G @ v
        v = v / torch.linalg.vector_norm(v, dim=-2, keepdim=True)
    return (v.mT @ G @ v)[..., 0, 0]


def alpha_table(batch, gen):
    print(f"\nauto_alpha methods (float64, {batch} matrices each): median error;")
    print("'bound' = power bound / sigma_max^2 (max), 'rayl.' = Rayleigh quotient after 3")
    print("vector power iterations / sigma_max^2 (min): it underestimates, the bound cannot.")
    M0 = torch.randn(batch, 32, 100, dtype=torch.float64, generator=gen)
    Z = torch.randn(batch, 32, 100, dtype=torch.float64, generator=gen)
    mats = {
        "M0 32x100": M0,
        "W0 32x32": Z @ torch.linalg.pinv(M0),  # W0 = Z M0^+ with T = K = 32
        "M0 128x512": torch.randn(batch, 128, 512, dtype=torch.float64, generator=gen),
    }
    print(f"{'matrix':>11} {'cond':>6} {'steps':>5} {'fro':>9} {'power':>9} "
          f"{'bound':>6} {'rayl.':>6}")
    for name, A in mats.items():
        s = torch.linalg.svdvals(A)
        P = torch.linalg.pinv(A)
        cond = (s[..., 0] / s[..., -1]).median().item()
        over = (sigma_max_sq_bound(A) / s[..., 0] ** 2).max().item()
        under = (rayleigh_sq(A, 3) / s[..., 0] ** 2).min().item()
        for steps in (7, 15):
            errs = [errors(A, per_matrix(A, steps, method=m), P)[0] for m in ("fro", "power")]
            print(f"{name:>11} {cond:>6.3g} {steps:>5} {errs[0]:>9.2e} {errs[1]:>9.2e} "
                  f"{over:>6.3f} {under:>6.3f}")

    print("\nsafety factor c of alpha = c / bound (float64, 7 steps): median error")
    cs = (1.0, 1.5, 1.8, 1.9)
    print(f"{'matrix':>11} " + " ".join(f"{'c=' + str(c):>9}" for c in cs))
    for name, A in mats.items():
        P = torch.linalg.pinv(A)
        errs = [errors(A, per_matrix(A, 7, scale=c / 1.8), P)[0] for c in cs]
        print(f"{name:>11} " + " ".join(f"{e:>9.2e}" for e in errs))


def per_matrix(A, steps, method="power", scale=1.0):
    """ben_cohen_pinv with a float alpha = scale * auto_alpha(a, method) for each matrix a."""
    return torch.stack([ben_cohen_pinv(a, steps, scale * float(auto_alpha(a, method))) for a in A])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but torch.cuda.is_available() is False; use --device cpu")
    gen = torch.Generator().manual_seed(args.seed)
    speed_table(torch.device(args.device), args.repeats, args.batch, gen)
    alpha_table(8, gen)  # 8 matrices per shape keep the float64 tables fast


if __name__ == "__main__":
    main()
