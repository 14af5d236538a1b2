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
    epsilon_for,
    gaussian_release,
    private_stats,
)
from prism_edge.stats import class_sums, compute_stats
from prism_edge.train import run


@pytest.fixture(scope="module")
def fm():
    return make_feature_map("rff", (1, 28, 28), 0, 1024)


def clipped_sum(fm, x, clip, y=None, classes=0):
    return class_sums(fm, x, y, classes, clip)


@pytest.mark.parametrize("clip,classes", [(0.1, 0), (0.5, 0), (1.0, 0), (1.0, 10)])
def test_one_example_moves_the_clipped_sum_by_at_most_the_sensitivity(fm, mnist_train, clip,
                                                                        classes):
    x, y = mnist_train.images[:300], mnist_train.labels[:300]
    base, counts = clipped_sum(fm, x, clip, y, classes)
    worst_add_remove, worst_replace = 0.0, 0.0
    for i in range(0, 300, 30):
        removed, c = clipped_sum(fm, torch.cat([x[:i], x[i + 1:]]), clip,
                                 torch.cat([y[:i], y[i + 1:]]), classes)
        worst_add_remove = max(worst_add_remove, float((base - removed).norm()))
        assert float((counts - c).norm()) == 1.0  # the class histogram: sensitivity 1
        j = 1000 + i
        other = torch.cat([x[:i], mnist_train.images[j:j + 1], x[i + 1:]])
        other_y = torch.cat([y[:i], mnist_train.labels[j:j + 1], y[i + 1:]])
        worst_replace = max(worst_replace,
                            float((base - clipped_sum(fm, other, clip, other_y, classes)[0]).norm()))
    assert worst_add_remove <= clip + 1e-5
    assert worst_replace <= 2 * clip + 1e-5
    assert worst_add_remove > 0.5 * clip  # the bound is nearly met: clipping is active


def test_empirical_noise_matches_the_calibrated_sigma():
    sigma, clip = calibrate_sigma(2.0, 1e-5), 0.7
    total = torch.zeros(2000)
    sums, counts = zip(*(gaussian_release(total, torch.tensor([100.0]), sigma, clip, seed)
                         for seed in range(300)))
    sums, counts = torch.stack(sums), torch.cat(counts).numpy()
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


def test_conditional_release_is_per_class(fm, mnist_train):
    x, y = mnist_train.images[:3000], mnist_train.labels[:3000]
    st = private_stats(fm, x, 1.0, 1e-5, 1.0, seed=3, labels=y, classes=10)
    plain = compute_stats(fm, x, y, 10)
    assert st.mean.shape == plain.mean.shape == (10, 1024)
    assert float(st.class_probs.min()) >= 0 and float(st.class_probs.sum()) == pytest.approx(1)
    # 3,000 examples: the noisy shares are close to the true ones, the noisy rows are not equal
    assert float((st.class_probs - plain.class_probs).abs().max()) < 0.01
    assert not torch.equal(st.mean, plain.mean)
    gen = build_generator("mnist-small", 42, {"classes": 10})
    res = client_update(gen, fm, st, torch.zeros(gen.num_masked), ClientConfig(local_steps=2,
                        batch=16), None, seed=7)
    assert res.packed.nbytes == (gen.num_masked + 7) // 8


def test_fail_closed():
    with pytest.raises(PrismError, match="data-independent"):
        check_dp_options("encoder:/tmp/enc.pt", 1e-5, 6000)
    with pytest.raises(PrismError, match="data-independent"):
        check_dp_options("encoder-rff1000:/tmp/enc.pt", 1e-5, 6000)
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
