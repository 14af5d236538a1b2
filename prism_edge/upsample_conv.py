"""Nearest 2x upsampling followed by a stride-1 conv, computed without the upsampled tensor.

A 3x3 conv (padding 1) on a nearest-upsampled image is a stride-2 transposed conv with a 4x4
kernel (padding 1) on the small input: output pixel (2i + a, 2j + b) sees a 2x2 window of the
input whose taps are sums of the 3x3 taps. 16 instead of 36 multiply-adds per input pixel, no
4x-sized tensor to keep for backward, and one oneDNN deconvolution instead of four phase convs
(1.4x faster a paper-resnet step than the phases, bench/results/upsample_conv.md). A 1x1 conv
commutes with the upsampling, so it runs on the small input. Training (torch) and the ONNX
exporter both use ``DECONV_TAPS``, so the two computations cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# 4 transposed-conv taps (rows, and likewise columns) <- 3 conv taps. With stride 2 and padding
# 1, tap t puts input i at output 2i - 1 + t. An even output 2i sees x[i] through t = 1 (3x3 rows
# 1 + 2) and x[i - 1] through t = 3 (row 0); an odd output 2i + 1 sees x[i] through t = 2 (rows
# 0 + 1) and x[i + 1] through t = 0 (row 2).
_ROWS = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], np.float32)
DECONV_TAPS = np.einsum("ka,lb->abkl", _ROWS, _ROWS).reshape(9, 16)  # flat 3x3 -> flat 4x4
_TAPS = torch.from_numpy(DECONV_TAPS)


def deconv_kernel(weight: torch.Tensor) -> torch.Tensor:
    """(cout, cin, 3, 3) conv weight -> (cin, cout, 4, 4) transposed-conv weight."""
    cout, cin = weight.shape[:2]
    k4 = weight.reshape(cout, cin, 9) @ _TAPS.to(weight.device, weight.dtype)
    return k4.view(cout, cin, 4, 4).transpose(0, 1)


def up2_conv(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """``conv2d(upsample_nearest_2x(x), weight, padding=padding)`` for a 1x1 or 3x3 kernel."""
    k = weight.shape[-1]
    if k == 1 and padding == 0:
        return F.interpolate(F.conv2d(x, weight), scale_factor=2.0, mode="nearest")
    if k != 3 or padding != 1:
        return F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), weight,
                        padding=padding)
    return F.conv_transpose2d(x, deconv_kernel(weight), stride=2, padding=1)
