"""gpm_core.corruptions against independent references: exact flip counts, explicit block
windows, torch.rot90 and torchvision's rotate, and a pixel-by-pixel Hamming count."""

import math

import pytest
import torch
import torchvision.transforms.functional as TF

from gpm_core import corruptions as c


def _images(n=6, seed=0, shape=(1, 28, 28)):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, *shape, generator=g) > 0.85).float()


def _gen(seed=1):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p", [0.0, 0.05, 0.15, 0.2, 1.0])
def test_salt_pepper_flips_exactly_round_p_pixels(p):
    X = _images()
    Y = c.salt_pepper(X, p, _gen())
    assert torch.equal(c.hamming(X, Y), torch.full((6,), round(p * 784)))
    changed = Y != X
    assert torch.equal(Y[changed], 1 - X[changed])  # flips, nothing else
    assert set(Y.unique().tolist()) <= {0.0, 1.0}


def test_corruptions_are_deterministic_and_leave_input_alone():
    X = _images()
    X0 = X.clone()
    for kind, level in [("salt_pepper", 0.15), ("block", 12), ("rotation", 30), ("rotation", (-45, 45)),
                        ("gaussian", 0.5)]:
        A = c.corrupt(X, kind, level, _gen(7))
        B = c.corrupt(X, kind, level, _gen(7))
        assert torch.equal(A, B), kind
        assert A.shape == X.shape
        assert torch.equal(X, X0), f"{kind} modified its input"
    assert not torch.equal(c.salt_pepper(X, 0.15, _gen(1)), c.salt_pepper(X, 0.15, _gen(2)))


def test_block_sets_one_square_window_to_fill():
    X = _images(n=20)
    Y = c.block(X, 12, _gen())
    for x, y in zip(X, Y):
        diff = (y != x)[0]
        window = (y[0] == 1.0)
        # find a 12x12 window that is all ones and contains every changed pixel
        found = False
        for top in range(28 - 12 + 1):
            for left in range(28 - 12 + 1):
                box = torch.zeros(28, 28, dtype=torch.bool)
                box[top:top + 12, left:left + 12] = True
                if window[box].all() and not diff[~box].any():
                    found = True
                    break
            if found:
                break
        assert found


def test_block_positions_cover_the_image():
    X = torch.zeros(2000, 1, 28, 28)  # 9 x 9 = 81 positions for a 20 x 20 block
    Y = c.block(X, 20, _gen())
    assert torch.equal(Y.sum((1, 2, 3)), torch.full((2000,), 400.0))
    covered = Y.sum(0)[0] > 0
    assert covered.all(), "some pixel is never inside a block: positions are not uniform over the image"


def test_rotation_by_90_is_rot90_and_matches_torchvision():
    X = _images()
    assert torch.equal(c.rotate(X, (90, 90), _gen()), torch.rot90(X, 1, dims=(-2, -1)))
    assert torch.equal(c.rotate(X, (0, 0), _gen()), X)
    for angle in (15.0, -30.0, 45.0):
        ours = c.rotate(X, (angle, angle), _gen())
        ref = TF.rotate(X, angle, interpolation=TF.InterpolationMode.NEAREST)
        assert (ours == ref).float().mean() > 0.995, angle


def test_rotation_sign_is_random_with_fixed_magnitude():
    X = _images(n=40)
    Y = c.rotate(X, 30, _gen())
    plus = TF.rotate(X, 30.0, interpolation=TF.InterpolationMode.NEAREST)
    minus = TF.rotate(X, -30.0, interpolation=TF.InterpolationMode.NEAREST)
    is_plus = (Y == plus).flatten(1).float().mean(1) > 0.995
    is_minus = (Y == minus).flatten(1).float().mean(1) > 0.995
    assert (is_plus | is_minus).all()
    assert is_plus.any() and is_minus.any()


def test_gaussian_is_clipped_normal_noise_pixel_by_pixel():
    X = _images(n=4)
    Y = c.gaussian(X, 0.5, _gen(3))
    eps = torch.randn(X.shape, generator=_gen(3))  # the same draws, taken independently
    for x, y, e in zip(X.flatten().tolist(), Y.flatten().tolist(), eps.flatten().tolist()):
        assert y == pytest.approx(min(1.0, max(0.0, x + 0.5 * e)), abs=1e-6)
    assert torch.equal(c.corrupt(X, "gaussian", 0.5, _gen(3)), Y)
    assert torch.equal(c.gaussian(X, 0.0, _gen(3)), X)


def test_gaussian_flips_the_thresholded_pixels_at_the_normal_tail_rate():
    # a pixel crosses 0.5 when the noise pushes it past 0.5 in its direction:
    # P = 1 - Phi(0.5 / sigma), Phi from math.erf (sigma = 0.5: 0.1587)
    X = _images(n=400)
    for sigma in (0.25, 0.5, 1.0):
        rate = c.hamming(X, c.gaussian(X, sigma, _gen(5))).double().sum() / X.numel()
        expected = 0.5 * (1 - math.erf(0.5 / sigma / math.sqrt(2)))
        assert abs(rate.item() - expected) < 4 * math.sqrt(expected * (1 - expected) / X.numel()), sigma


def test_hamming_counts_pixels_after_thresholding():
    X = _images(n=3)
    Y = X.clone()
    Y[0, 0, 0, :5] = 1 - Y[0, 0, 0, :5]
    Y[2] = 1 - Y[2]
    Y[1] = Y[1] * 0.9 + 0.05  # same after thresholding at 0.5
    expected = torch.tensor([5, 0, 784])
    assert torch.equal(c.hamming(X, Y), expected)
    manual = torch.tensor([sum(int((a > 0.5) != (b > 0.5)) for a, b in zip(x.flatten(), y.flatten()))
                           for x, y in zip(X, Y)])
    assert torch.equal(manual, expected)


def test_success_threshold_is_7_pixels_for_28x28():
    assert c.success_threshold(784) == 7
    assert c.success_threshold(100) == 1


def test_bad_arguments_say_what_is_wrong():
    X = _images(n=1)
    with pytest.raises(ValueError, match="fraction must be in"):
        c.salt_pepper(X, 1.5)
    with pytest.raises(ValueError, match="block size must be in"):
        c.block(X, 40)
    with pytest.raises(ValueError, match="standard deviation must be >= 0"):
        c.gaussian(X, -0.1)
    with pytest.raises(ValueError, match="unknown corruption 'blur'"):
        c.corrupt(X, "blur", 1)
    with pytest.raises(ValueError, match=r"\(..., C, H, W\)"):
        c.salt_pepper(torch.zeros(28, 28), 0.1)
    with pytest.raises(ValueError, match="equal shapes"):
        c.hamming(X, X[..., :27])
