"""Shared fixtures: an empty data root, and tiny experiment files on fabricated data.

Everything here is sized for a 2-core CPU: 4-filter nets, 4-image episodes, a handful of
steps. Tests never touch the real data root unless GPM_DATA points at real data (those
tests skip otherwise).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

TINY_TOML = """\
experiment = "{experiment}"
description = "a tiny run on fabricated images (tests)"

[model]
kind = "{kind}"
likelihood = "{likelihood}"
filters = 4
code_size = 8
memory_slots = 4
n_mixtures = 2

[data]
dataset = "{dataset}"
binarize = "{binarize}"
episode_length = 4
image_size = {image_size}

[train]
batch_size = 2
steps = {steps}
lr = 1e-3
checkpoint_every = {checkpoint_every}
log_every = 2

[eval]
episodes = 4
batch_size = 2
seed = 7

[profiles.quick.train]
steps = {steps}
"""


def tiny_toml(path: Path, kind: str = "gpm", likelihood: str = "bernoulli", steps: int = 6,
              checkpoint_every: int = 3, experiment: str = "tiny") -> Path:
    """Write a tiny experiment file (synthetic data) and return its path."""
    rgb = likelihood == "dmol"
    path.write_text(TINY_TOML.format(
        experiment=experiment, kind=kind, likelihood=likelihood, steps=steps,
        checkpoint_every=checkpoint_every, dataset="synthetic_rgb" if rgb else "synthetic",
        binarize="none" if rgb else "threshold", image_size=12 if rgb else 16))
    return path


@pytest.fixture
def data_root(tmp_path, monkeypatch) -> Path:
    """An empty data root, set as GPM_DATA for the test (and an empty GPM_CACHE beside it)."""
    root = tmp_path / "data"
    root.mkdir()
    monkeypatch.setenv("GPM_DATA", str(root))
    monkeypatch.setenv("GPM_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GPM_DOWNLOAD", raising=False)
    return root


@pytest.fixture
def no_fault(monkeypatch):
    """No injected faults, and torch's global state (RNG, deterministic mode) restored after
    the test, since `gpm_core.train.train` seeds and sets both."""
    import torch

    monkeypatch.delenv("GPM_FAULT", raising=False)
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=[]):
        yield
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def subprocess_env(**extra) -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("GPM_FAULT", None)
    env.update(extra)
    return env
