"""up2_conv (the training path of Up2 + conv) equals upsampling then convolving, with gradients."""

import pytest
import torch
import torch.nn.functional as F

from prism_edge.upsample_conv import up2_conv


@pytest.mark.parametrize("k,pad", [(3, 1), (1, 0), (3, 0)])
def test_up2_conv_equals_upsample_then_conv(k, pad):
    g = torch.Generator().manual_seed(k * 10 + pad)
    x = torch.randn(3, 5, 4, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(7, 5, k, k, generator=g, dtype=torch.float64, requires_grad=True)
    ref = F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), w, padding=pad)
    out = up2_conv(x, w, pad)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    up = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    gx_ref, gw_ref = torch.autograd.grad((ref * up).sum(), (x, w))
    gx, gw = torch.autograd.grad((out * up).sum(), (x, w))
    torch.testing.assert_close(gx, gx_ref, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(gw, gw_ref, rtol=1e-12, atol=1e-12)
