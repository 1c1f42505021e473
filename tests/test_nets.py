"""Encoder/decoder shapes (GPM appendix C) for the image sizes the experiments use."""

import pytest
import torch

from gpm_core.nets import Decoder, Encoder, conv_sizes


@pytest.mark.parametrize("C,size,filters,code", [(1, 28, 16, 100), (3, 32, 8, 64), (3, 64, 4, 32),
                                                  (1, (28, 20), 4, 10)])
def test_encoder_decoder_shapes(C, size, filters, code):
    H, W = (size, size) if isinstance(size, int) else size
    enc, dec = Encoder(C, filters, code, size), Decoder(7, filters, code, size)
    x = torch.rand(2, C, H, W)
    z = enc(x)
    assert z.shape == (2, code)
    assert dec(z).shape == (2, 7, H, W)  # exact size: no crop, no pad


def test_spatial_sizes_mirror():
    assert conv_sizes(28) == [28, 15, 8, 5, 3]
    assert conv_sizes(32) == [32, 17, 9, 5, 3]
    dec = Decoder(1, 4, 10, 28)
    assert [m.output_padding for m in dec.deconvs] == [(1, 1), (0, 0), (1, 1), (0, 0)]


def test_wrong_image_size_says_what_to_do():
    with pytest.raises(ValueError, match="image shape"):
        Encoder(1, 4, 10, 28)(torch.rand(2, 1, 32, 32))


def test_no_batch_coupling():
    """No normalisation layers: an image's code does not depend on the rest of the batch."""
    torch.manual_seed(0)
    enc = Encoder(1, 4, 10, 28)
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(enc(x)[:1], enc(x[:1]))


def test_parameter_counts():
    """The binarized (16 filters, C = 100, 28x28) and real-valued (256, C = 512, 32x32) nets;
    the real-valued decoder emits the 100 maps of a 10-component RGB DMoL."""
    n = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n(Encoder(1, 16, 100, 28)) + n(Decoder(1, 16, 100, 28)) == 56_613
    assert n(Encoder(3, 256, 512, 32)) + n(Decoder(100, 256, 512, 32)) == 9_637_476
