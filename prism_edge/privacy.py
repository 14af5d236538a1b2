"""Differential privacy: each client privatises its data statistics once.

Release (per client): the sum of per-example feature vectors, each clipped to L2 norm C, plus
Gaussian noise N(0, (sigma C)^2 I); and the example count plus N(0, sigma^2), both per class for
a class-conditional model (a (K, D) sum and a K-bin histogram). Under adding or removing one
example the sums move by at most C and the counts by 1 (one class row), so each query is a Gaussian
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
from .stats import DataStats, class_sums

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


def gaussian_release(total: torch.Tensor, counts: torch.Tensor, sigma: float, clip: float,
                     seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two Gaussian queries: sums + N(0, (sigma clip)^2 I), counts + N(0, sigma^2 I)."""
    gen = torch.Generator().manual_seed(seed)
    noisy_sum = total + sigma * clip * torch.randn(total.shape, generator=gen)
    counts = torch.as_tensor(counts, dtype=torch.float64)
    return noisy_sum, counts + sigma * torch.randn(counts.shape, generator=gen, dtype=torch.float64)


def private_stats(fm: FeatureMap, images: torch.Tensor | np.ndarray, epsilon: float, delta: float,
                  clip: float, seed: int, labels: torch.Tensor | None = None, classes: int = 0
                  ) -> DataStats:
    """The privatised (per-class) mean embedding of one client's data: noisy sums / noisy count.

    One example moves one row of the clipped per-class sums by at most ``clip`` and one entry of
    the class histogram by 1, so the sensitivities are those of the unconditional release."""
    sigma = calibrate_sigma(epsilon, delta)
    sums, counts = class_sums(fm, images, labels, classes, clip)
    noisy_sum, noisy_counts = gaussian_release(sums, counts, sigma, clip, seed)
    # post-processing: a count is at least 1, class shares are non-negative
    count = max(float(noisy_counts.sum()), 1.0)
    probs = None
    if classes:
        pos = noisy_counts.clamp_min(0)
        probs = (pos / pos.sum() if pos.sum() > 0 else torch.full_like(pos, 1 / classes)).float()
    achieved = epsilon_for(sigma, delta)
    return DataStats(noisy_sum / count, int(round(count)),
                     {"dp": True, "epsilon": achieved, "delta": delta, "sigma": sigma,
                      "clip": clip, "target_epsilon": epsilon}, probs)

