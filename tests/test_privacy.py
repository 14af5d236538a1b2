"""DP: the noise really reaches what leaves the client, and the guarantee is computed."""

import numpy as np
import pytest
import torch

from prism_edge.architectures import build_generator
from prism_edge.client import client_update
from prism_edge.config import ClientConfig, RunConfig
from prism_edge.errors import PrismError
from prism_edge.features import make_feature_map
from prism_edge.privacy import (
    calibrate_sigma,
    check_dp_options,
    clipped_sum,
    epsilon_for,
    gaussian_release,
    private_stats,
)
from prism_edge.stats import compute_stats
from prism_edge.train import run


@pytest.fixture(scope="module")
def fm():
    return make_feature_map("rff", (1, 28, 28), 0, 1024)


@pytest.mark.parametrize("clip", [0.1, 0.5, 1.0])
def test_one_example_moves_the_clipped_sum_by_at_most_the_sensitivity(fm, mnist_train, clip):
    x = mnist_train.images[:300]
    base = clipped_sum(fm, x, clip)
    worst_add_remove, worst_replace = 0.0, 0.0
    for i in range(0, 300, 30):
        removed = clipped_sum(fm, torch.cat([x[:i], x[i + 1:]]), clip)
        worst_add_remove = max(worst_add_remove, float((base - removed).norm()))
        other = torch.cat([x[:i], mnist_train.images[1000 + i:1001 + i], x[i + 1:]])
        worst_replace = max(worst_replace, float((base - clipped_sum(fm, other, clip)).norm()))
    assert worst_add_remove <= clip + 1e-5
    assert worst_replace <= 2 * clip + 1e-5
    assert worst_add_remove > 0.5 * clip  # the bound is nearly met: clipping is active


def test_empirical_noise_matches_the_calibrated_sigma():
    sigma, clip = calibrate_sigma(2.0, 1e-5), 0.7
    total = torch.zeros(2000)
    sums, counts = zip(*(gaussian_release(total, 100, sigma, clip, seed) for seed in range(300)))
    sums = torch.stack(sums)
    # 600,000 draws: the std is known to about 0.1 %
    assert float(sums.std()) == pytest.approx(sigma * clip, rel=0.01)
    assert float(np.std(counts)) == pytest.approx(sigma, rel=0.15)
    assert abs(float(sums.mean())) < 0.01 * sigma * clip


@pytest.mark.parametrize("eps", [0.5, 1.0, 10.0])
def test_accountant_epsilon_for_the_sigma_used_is_within_target(eps):
    sigma = calibrate_sigma(eps, 1e-5)
    assert epsilon_for(sigma, 1e-5) <= eps
    assert epsilon_for(sigma * 0.9, 1e-5) > eps  # and it is not needlessly large


def test_dp_changes_what_is_sent(fm, mnist_train):
    gen = build_generator("mnist-small", 42)
    x = mnist_train.images[:2000]
    cfg = ClientConfig(local_steps=5, batch=16)
    scores = torch.zeros(gen.num_masked)
    plain = client_update(gen, fm, compute_stats(fm, x), scores, cfg, None, seed=7)
    again = client_update(gen, fm, compute_stats(fm, x), scores, cfg, None, seed=7)
    private = client_update(gen, fm, private_stats(fm, x, 1.0, 1e-5, 1.0, seed=3), scores, cfg,
                            None, seed=7)
    assert np.array_equal(plain.packed, again.packed)  # same seed, same upload
    assert not np.array_equal(plain.packed, private.packed)
    st = private_stats(fm, x, 1.0, 1e-5, 1.0, seed=3)
    assert st.privacy["dp"] and st.privacy["epsilon"] <= 1.0


def test_fail_closed():
    with pytest.raises(PrismError, match="data-independent"):
        check_dp_options("encoder:/tmp/enc.pt", 1e-5, 6000)
    with pytest.raises(PrismError, match="smaller delta"):
        check_dp_options("rff", 1e-3, 6000)
    with pytest.raises(PrismError, match="epsilon > 0"):
        calibrate_sigma(0.0, 1e-5)


def test_run_with_dp_records_the_guarantee(tmp_path, data_root):
    from exporters.onnx_export import export
    from prism_edge.bitsfile import read_bits

    cfg = RunConfig(data_dir=str(data_root), clients=2, rounds=1, split="iid", sample_every=0,
                    dp_epsilon=2.0, client=ClientConfig(local_steps=2, batch=8, n_features=256))
    summary = run(cfg, tmp_path, progress=False)
    assert summary["privacy"].startswith("(2, 1e-05)-DP") or summary["privacy"].startswith("(2")
    assert "DP" in read_bits(tmp_path / "final.bits").meta["privacy"]
    assert (tmp_path / "config.json").read_text().count('"dp_epsilon": 2.0') == 1
    assert "DP" in (tmp_path / "metrics.jsonl").read_text()
    export(tmp_path / "final.bits", 42, tmp_path / "g.onnx")
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "g.onnx")).metadata_props}
    assert "DP" in meta["prism_edge.privacy"]
