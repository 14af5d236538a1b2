"""Nearest 2x upsampling followed by a stride-1 conv, computed without the upsampled tensor.

A 3x3 conv (padding 1) on a nearest-upsampled image is, for each of the four output phases (row
parity a, column parity b), a 2x2 conv on the small input whose taps are sums of the 3x3 taps:
16 instead of 36 multiply-adds per input pixel, and no 4x-sized tensor to keep for backward. A
1x1 conv commutes with the upsampling, so it runs on the small input. Training (torch) and the
ONNX exporter both use ``tap_matrix``, so the two computations cannot drift apart.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# rows (or columns) of a 3-tap kernel that land on input offset 0 and 1, for output phase 0 / 1
PHASE_TAPS = {0: ((0,), (1, 2)), 1: ((0, 1), (2,))}


def tap_matrix(a: int, b: int) -> np.ndarray:
    """(9, 4) 0/1 matrix: flattened 3x3 taps -> flattened 2x2 taps of output phase (a, b)."""
    comb = np.zeros((9, 4), np.float32)
    for p, rows in enumerate(PHASE_TAPS[a]):
        for q, cols in enumerate(PHASE_TAPS[b]):
            for dy in rows:
                for dx in cols:
                    comb[dy * 3 + dx, p * 2 + q] = 1.0
    return comb


_ALL_PHASES = torch.from_numpy(np.concatenate([tap_matrix(a, b) for a in (0, 1) for b in (0, 1)],
                                              axis=1))  # (9, 16)


def up2_conv(x: torch.Tensor, weight: torch.Tensor, padding: int) -> torch.Tensor:
    """``conv2d(upsample_nearest_2x(x), weight, padding=padding)`` for a 1x1 or 3x3 kernel."""
    k = weight.shape[-1]
    if k == 1 and padding == 0:
        return F.interpolate(F.conv2d(x, weight), scale_factor=2.0, mode="nearest")
    if k != 3 or padding != 1:
        return F.conv2d(F.interpolate(x, scale_factor=2.0, mode="nearest"), weight,
                        padding=padding)
    cout, cin = weight.shape[:2]
    n, _, h, w = x.shape
    kernels = (weight.reshape(cout, cin, 9) @ _ALL_PHASES.to(weight.dtype)).view(
        cout, cin, 4, 2, 2)
    xp = F.pad(x, (1, 1, 1, 1))
    phases = [F.conv2d(xp[:, :, a:a + h + 1, b:b + w + 1], kernels[:, :, a * 2 + b])
              for a in (0, 1) for b in (0, 1)]
    # (n, cout, a, b, h, w) -> pixel (2i + a, 2j + b)
    y = torch.stack(phases, 2).view(n, cout, 2, 2, h, w)
    return y.permute(0, 1, 4, 2, 5, 3).reshape(n, cout, 2 * h, 2 * w)
