"""The convolutional encoder e(x) -> z and decoder d(z) shared by GPM, DKM and the VAE.

GPM appendix C: "The encoder consists of 4 layers, each of which is a convolution layer
with 4x4 filter with stride 2 followed by a Resnet block with bottleneck (He et al., 2016).
The decoder is simply a mirror of the encoder with transpose convolutional layer. We use
the swish activation function ... 16 filters for binarized datasets, 256 filters for
real-valued datasets." The networks end (encoder) and start (decoder) with a linear map
to / from the code size C.

Spatial sizes. Each stride-2 conv uses padding 2 (as the authors' `cnn_resnet.py`), so a
side of n pixels becomes n // 2 + 1: 28 -> 15 -> 8 -> 5 -> 3, 32 -> 17 -> 9 -> 5 -> 3,
64 -> 33 -> 17 -> 9 -> 5. (Padding 1 would give 28 -> ... -> 1, i.e. only `filters`
numbers, 16 for Omniglot, in front of a 100-dim code.) The decoder retraces the same
sizes backwards: a transposed conv maps m to 2m - 2, and `output_padding` (0 or 1) adds
the row/column the encoder's floor dropped, so the output is exactly H x W for any H, W;
no crop or pad is needed.

Two families, chosen by `model.net` (`make_nets`):
- "paper" (`Encoder`, `Decoder`): the paper's text, 4 layers, swish, bottleneck blocks, no
  normalisation, so an image's code never depends on the other images in the batch;
- "authors" (`ResNetEncoder`, `ResNetDecoder`): the structure of the authors' released
  Omniglot nets (`cnn_resnet.py`): 3 stride-2 convs, each followed by a basic residual block
  with BatchNorm and ReLU, and PyTorch's default initialisation. They learn about twice as
  fast per step (book chapter 07 measures it); "authors_nobn" is the same without
  BatchNorm (an ablation arm).

Deviation from DKM appendix B (Glorot initialisation): with swish, whose slope at 0 is
1/2, Glorot weights shrink the signal about 4x per layer; a fresh 16-filter encoder gave
codes of std 0.01 and decoder logits of std 5e-5, so the writing noise (sigma_xi = 0.5)
would swamp the codes until the encoder had grown them 50x. He (Kaiming) uniform
initialisation keeps the codes at std 0.2-1.2 for the 16- and 256-filter nets.
"""

from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

BOTTLENECK = 4  # He et al. 2016: the 1x1-3x3-1x1 block narrows the channels by 4


def _pair(image_size) -> tuple[int, int]:
    if isinstance(image_size, int):
        return image_size, image_size
    H, W = image_size
    return int(H), int(W)


def deconv_padding(m: int, target: int, kernel: int = 4, stride: int = 2) -> tuple[int, int]:
    """(padding, output_padding) of a transposed conv that maps a side m to `target`:
    out = (m - 1) * stride - 2 * padding + kernel + output_padding."""
    d = (m - 1) * stride + kernel - target  # = 2 * padding - output_padding
    if d < 0:
        raise ValueError(f"a transposed conv (kernel {kernel}, stride {stride}) cannot grow {m} to {target}")
    pad = (d + 1) // 2
    return pad, 2 * pad - d


def conv_sizes(n: int, layers: int = 4) -> list[int]:
    """Side lengths after each stride-2 conv (kernel 4, padding 2): [n, n//2+1, ...]."""
    sizes = [n]
    for _ in range(layers):
        sizes.append(sizes[-1] // 2 + 1)
    return sizes


class Bottleneck(nn.Module):
    """Pre-activation bottleneck residual block (He et al. 2016): x + f(x), where f is
    swish-1x1 (F -> F/4), swish-3x3 (F/4 -> F/4), swish-1x1 (F/4 -> F). Keeps (N, F, h, w)."""

    def __init__(self, channels: int):
        super().__init__()
        mid = max(channels // BOTTLENECK, 1)
        self.reduce = nn.Conv2d(channels, mid, 1)
        self.conv = nn.Conv2d(mid, mid, 3, padding=1)
        self.expand = nn.Conv2d(mid, channels, 1)

    def forward(self, x):  # (N, F, h, w)
        h = self.reduce(F.silu(x))
        h = self.conv(F.silu(h))
        h = self.expand(F.silu(h))
        return x + h


def he_init_(module: nn.Module) -> None:
    """He-uniform weights (fan in, ReLU gain), zero biases, for every conv and linear layer."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class Encoder(nn.Module):
    """e(x): images (N, in_channels, H, W) -> codes (N, code_size) (GPM app. C).

    4 x [conv 4x4 stride 2 -> swish -> bottleneck block], then swish and a linear map of
    the flattened (filters, h, w) feature map to C = code_size."""

    def __init__(self, in_channels: int, filters: int, code_size: int, image_size):
        super().__init__()
        H, W = _pair(image_size)
        self.in_channels, self.image_size = in_channels, (H, W)
        hs, ws = conv_sizes(H), conv_sizes(W)
        chans = [in_channels] + [filters] * 4
        self.convs = nn.ModuleList(nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=2)
                                   for i in range(4))
        self.blocks = nn.ModuleList(Bottleneck(filters) for _ in range(4))
        self.linear = nn.Linear(filters * hs[-1] * ws[-1], code_size)
        he_init_(self)

    def forward(self, x):  # (N, c, H, W)
        if tuple(x.shape[-3:]) != (self.in_channels, *self.image_size):
            raise ValueError(f"Encoder expects images of shape (N, {self.in_channels}, "
                             f"{self.image_size[0]}, {self.image_size[1]}), got {tuple(x.shape)}; "
                             "build the model with the data's image shape.")
        h = x
        for conv, block in zip(self.convs, self.blocks):
            h = block(F.silu(conv(h)))  # (N, F, h_i, w_i)
        return self.linear(F.silu(h).flatten(1))  # (N, C)


class Decoder(nn.Module):
    """d(z): codes (N, code_size) -> likelihood parameters (N, out_channels, H, W).

    The mirror of `Encoder`: a linear map to a (filters, h, w) feature map, then
    4 x [bottleneck block -> swish -> transposed conv 4x4 stride 2], the last one emitting
    `out_channels` maps (logits for Bernoulli, mixture parameters for the DMoL)."""

    def __init__(self, out_channels: int, filters: int, code_size: int, image_size):
        super().__init__()
        H, W = _pair(image_size)
        self.filters, self.image_size = filters, (H, W)
        hs, ws = conv_sizes(H)[::-1], conv_sizes(W)[::-1]  # e.g. [3, 5, 8, 15, 28]
        self.start = (hs[0], ws[0])
        self.linear = nn.Linear(code_size, filters * hs[0] * ws[0])
        self.blocks = nn.ModuleList(Bottleneck(filters) for _ in range(4))
        chans = [filters] * 4 + [out_channels]
        # a transposed conv (k 4, s 2, p 2) maps m -> 2m - 2; output_padding adds the rest
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(chans[i], chans[i + 1], 4, stride=2, padding=2,
                               output_padding=(hs[i + 1] - (2 * hs[i] - 2),
                                               ws[i + 1] - (2 * ws[i] - 2)))
            for i in range(4))
        he_init_(self)

    def forward(self, z):  # (N, C)
        h = self.linear(z).view(-1, self.filters, *self.start)  # (N, F, h_0, w_0)
        for block, deconv in zip(self.blocks, self.deconvs):
            h = deconv(F.silu(block(h)))  # (N, F or out_channels, h_{i+1}, w_{i+1})
        return h  # (N, out_channels, H, W)


# --------------------------------------------------------------------------------------
# The authors' network structure (net = "authors" / "authors_nobn")
# --------------------------------------------------------------------------------------

class BasicBlock(nn.Module):
    """The basic residual block of He et al. (2016) as the authors' `cnn_resnet.py` uses it:
    x + BN(conv3x3(ReLU(BN(conv3x3(x))))), identity skip, no activation after the sum.
    Keeps (N, F, h, w). With batch_norm=False the BNs are dropped and the convs get biases."""

    def __init__(self, channels: int, batch_norm: bool = True):
        super().__init__()
        norm = (lambda: nn.BatchNorm2d(channels)) if batch_norm else nn.Identity
        conv = lambda: nn.Conv2d(channels, channels, 3, padding=1, bias=not batch_norm)  # noqa: E731
        self.body = nn.Sequential(conv(), norm(), nn.ReLU(), conv(), norm())

    def forward(self, x):  # (N, F, h, w)
        return x + self.body(x)


class ResNetEncoder(nn.Module):
    """e(x) of the authors' code: 3 x [conv 4x4 stride 2 (padding 2) -> basic block], then a
    linear map of the flattened (filters, h, w) map to C (28 -> 15 -> 8 -> 5: 16 * 25 = 400
    inputs for Omniglot, as their Linear(400, 100)). No activation outside the blocks."""

    def __init__(self, in_channels: int, filters: int, code_size: int, image_size, batch_norm: bool = True):
        super().__init__()
        H, W = _pair(image_size)
        self.in_channels, self.image_size = in_channels, (H, W)
        hs, ws = conv_sizes(H, 3), conv_sizes(W, 3)
        chans = [in_channels] + [filters] * 3
        self.stages = nn.Sequential(*(
            nn.Sequential(nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=2),
                          BasicBlock(filters, batch_norm)) for i in range(3)))
        self.linear = nn.Linear(filters * hs[-1] * ws[-1], code_size)

    def forward(self, x):  # (N, c, H, W)
        if tuple(x.shape[-3:]) != (self.in_channels, *self.image_size):
            raise ValueError(f"Encoder expects images of shape (N, {self.in_channels}, "
                             f"{self.image_size[0]}, {self.image_size[1]}), got {tuple(x.shape)}; "
                             "build the model with the data's image shape.")
        return self.linear(self.stages(x).flatten(1))  # (N, C)


class ResNetDecoder(nn.Module):
    """d(z) mirroring `ResNetEncoder`: the code as a (C, 1, 1) map, then 4 x [transposed conv
    -> basic block]; the first maps 1x1 to the encoder's last size (5x5 for 28x28), the next
    three retrace the encoder's sizes (5 -> 8 -> 15 -> 28) and the last emits `out_channels`
    maps, followed, as in the authors' decoder, by a basic block on those maps.

    Deviation from the authors' code: their decoder goes 1 -> 4 -> 8 -> 15 -> 28 with kernels
    4, 4, 3, 4, a layout that only fits 28x28; ours is the exact mirror of the encoder with
    kernel 4 throughout, so 32x32 and 64x64 images work too.

    out_block=False drops the last basic block (ours, for the DMoL): the authors' Bernoulli
    decoder emits 1 map, where that block is cheap; a 10-component DMoL emits 30 (grey) or 100
    (RGB) maps, and two 3x3 convs with BatchNorm on them at full resolution cost more than the
    rest of a 16-filter network (on a CPU, a 28x28 GPM step takes twice as long with it)."""

    def __init__(self, out_channels: int, filters: int, code_size: int, image_size, batch_norm: bool = True,
                 out_block: bool = True):
        super().__init__()
        H, W = _pair(image_size)
        hs, ws = conv_sizes(H, 3)[::-1], conv_sizes(W, 3)[::-1]  # e.g. [5, 8, 15, 28]
        first = nn.ConvTranspose2d(code_size, filters, (hs[0], ws[0]))  # 1x1 -> h0 x w0
        layers = [nn.Sequential(first, BasicBlock(filters, batch_norm))]
        chans = [filters] * 3 + [out_channels]
        for i in range(3):
            (ph, oh), (pw, ow) = deconv_padding(hs[i], hs[i + 1]), deconv_padding(ws[i], ws[i + 1])
            deconv = nn.ConvTranspose2d(chans[i], chans[i + 1], 4, stride=2, padding=(ph, pw),
                                        output_padding=(oh, ow))
            last = i == 2
            block = BasicBlock(chans[i + 1], batch_norm) if out_block or not last else nn.Identity()
            layers.append(nn.Sequential(deconv, block))
        self.stages = nn.Sequential(*layers)

    def forward(self, z):  # (N, C)
        return self.stages(z[:, :, None, None])  # (N, out_channels, H, W)


NETS = ("paper", "authors", "authors_nobn")


def make_nets(net: str, in_channels: int, out_channels: int, filters: int, code_in: int,
              code_out: int, image_size, out_block: bool = True) -> tuple[nn.Module, nn.Module]:
    """(encoder: images -> code_out numbers, decoder: code_in numbers -> out_channels maps)
    of the family `net` (one of NETS; see the module docstring). out_block: whether the
    authors' decoder ends with a basic block on its output maps (`ResNetDecoder`)."""
    if net == "paper":
        if not out_block:
            raise ValueError("out_block=False is an option of the authors' nets; the paper's decoder "
                             "has no block after its last transposed conv: leave model.out_block = true")
        return (Encoder(in_channels, filters, code_out, image_size),
                Decoder(out_channels, filters, code_in, image_size))
    if net in ("authors", "authors_nobn"):
        bn = net == "authors"
        return (ResNetEncoder(in_channels, filters, code_out, image_size, bn),
                ResNetDecoder(out_channels, filters, code_in, image_size, bn, out_block))
    raise ValueError(f"unknown network family {net!r}; set model.net to one of {', '.join(NETS)}")
