"""gpm_core: Generative Pseudo-Inverse Memory (Pham et al., ICLR 2022) and the
Dynamic Kanerva Machine (Wu et al., NeurIPS 2018) in PyTorch.

The memory operations are pure tensor functions (`gpm_core.pinv`, `gpm_core.gpm`,
`gpm_core.dkm`); networks, likelihoods and models live in `nets`, `likelihoods` and
`models`; `python -m gpm_core train CONFIG` trains any configuration in `configs/`.
"""

__version__ = "0.1.0"

# The repository, named here only: the chapters' Colab setup cell (gpm_core.colab) clones it;
# _config.yml (repository.url) and pyproject.toml ([project.urls]) must say the same
# (tests/test_colab.py checks).
REPO_URL = "https://github.com/gpm-book/gpm-book"
