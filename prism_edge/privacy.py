"""Differential privacy: each client privatises its data statistics once.

Release (per client): the sum of per-example feature vectors, each clipped to L2 norm C, plus
Gaussian noise N(0, (sigma C)^2 I); and the example count plus N(0, sigma^2). Under adding or
removing one example the sum moves by at most C and the count by 1, so each query is a Gaussian
mechanism with noise multiplier sigma. The two are composed by dp-accounting's RDP accountant
(an upper bound on epsilon, fast enough to calibrate in a second) and sigma is calibrated with
``calibrate_dp_mechanism`` to the target (epsilon, delta). Training, every uploaded mask and the
final model only read the released mean = noisy sum / noisy count, so they are post-processing:
the guarantee holds for any number of rounds.
"""

from __future__ import annotations

import numpy as np
import torch

from .errors import PrismError
from .features import FEATURE_KINDS, FeatureMap
from .stats import DataStats, float_batch

# every built-in map is regenerated from a seed; only an encoder file may have seen private data
DP_FEATURES = FEATURE_KINDS


def _event(sigma: float):
    import dp_accounting as dpa

    return dpa.ComposedDpEvent([dpa.GaussianDpEvent(sigma), dpa.GaussianDpEvent(sigma)])


def _accountant():
    from dp_accounting.rdp import RdpAccountant

    return RdpAccountant()


def epsilon_for(sigma: float, delta: float) -> float:
    """The accountant's epsilon of the two-query release at noise multiplier ``sigma``."""
    acc = _accountant()
    acc.compose(_event(sigma))
    return float(acc.get_epsilon(delta))


def calibrate_sigma(epsilon: float, delta: float) -> float:
    """Smallest noise multiplier whose composed release is (epsilon, delta)-DP."""
    import dp_accounting as dpa

    if epsilon <= 0 or not 0 < delta < 1:
        raise PrismError(f"need epsilon > 0 and 0 < delta < 1, got ({epsilon}, {delta})")
    sigma = dpa.calibrate_dp_mechanism(_accountant, _event, epsilon, delta,
                                       dpa.mechanism_calibration.LowerEndpointAndGuess(0.05, 1.0),
                                       tol=1e-4)
    return float(sigma)


def check_dp_options(features: str, delta: float, smallest_client: int) -> None:
    """Fail closed: refuse combinations under which the stated guarantee would not hold."""
    if features not in DP_FEATURES:
        raise PrismError(f"--dp-epsilon needs a data-independent feature map ({', '.join(DP_FEATURES)});"
                         f" {features!r} may have been fitted to private data")
    if delta >= 1.0 / smallest_client:
        raise PrismError(f"--dp-delta {delta:g} is not below 1/n = {1 / smallest_client:.2g} for a "
                         f"client with {smallest_client} examples; choose a smaller delta")


@torch.no_grad()
def clipped_sum(fm: FeatureMap, images: torch.Tensor | np.ndarray, clip: float, batch: int = 200
                ) -> torch.Tensor:
    """Sum of per-example feature vectors, each scaled to L2 norm at most ``clip``."""
    total = None
    for i in range(0, len(images), batch):
        f = fm(float_batch(images, i, i + batch))
        norms = f.norm(dim=1, keepdim=True).clamp_min(1e-12)
        s = (f * torch.clamp(clip / norms, max=1.0)).sum(0)
        total = s if total is None else total + s
    return total


def gaussian_release(total: torch.Tensor, count: int, sigma: float, clip: float, seed: int
                     ) -> tuple[torch.Tensor, float]:
    """The two Gaussian queries: sum + N(0, (sigma clip)^2 I), count + N(0, sigma^2)."""
    gen = torch.Generator().manual_seed(seed)
    noisy_sum = total + sigma * clip * torch.randn(total.shape, generator=gen)
    return noisy_sum, count + sigma * float(torch.randn((), generator=gen))


def private_stats(fm: FeatureMap, images: torch.Tensor | np.ndarray, epsilon: float, delta: float,
                  clip: float, seed: int) -> DataStats:
    """The privatised mean embedding of one client's data (noisy sum / noisy count)."""
    sigma = calibrate_sigma(epsilon, delta)
    noisy_sum, noisy_count = gaussian_release(clipped_sum(fm, images, clip), len(images), sigma,
                                              clip, seed)
    count = max(noisy_count, 1.0)  # post-processing: a count is at least 1
    achieved = epsilon_for(sigma, delta)
    return DataStats(noisy_sum / count, int(round(count)),
                     {"dp": True, "epsilon": achieved, "delta": delta, "sigma": sigma,
                      "clip": clip, "target_epsilon": epsilon})

