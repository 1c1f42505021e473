"""gpm_core: Generative Pseudo-Inverse Memory (Pham et al., ICLR 2022) and the
Dynamic Kanerva Machine (Wu et al., NeurIPS 2018) in PyTorch.

The memory operations are pure tensor functions (`gpm_core.pinv`, `gpm_core.gpm`,
`gpm_core.dkm`); networks, likelihoods and models live in `nets`, `likelihoods` and
`models`; `python -m gpm_core train CONFIG` trains any configuration in `configs/`.
"""

__version__ = "0.1.0"
