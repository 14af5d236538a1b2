"""Class-conditional generators: the label lives in the latent; per-class MMD; --label."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from device_client.generate import OnnxGenerator
from exporters.onnx_export import export
from prism_edge.architectures import build_generator, label_latent
from prism_edge.bitsfile import write_bits
from prism_edge.features import make_feature_map
from prism_edge.latent import latents
from prism_edge.masked import layer_sizes, set_flat_mask
from prism_edge.stats import DataStats, compute_stats, mmd_loss


def test_label_latent_reads_the_argmax_or_the_given_label():
    z = torch.randn(5, 12)
    out = label_latent(z, None, 4, 8.0)
    assert torch.equal(out[:, 4:], z[:, 4:])
    assert torch.equal(out[:, :4].argmax(1), z[:, :4].argmax(1))
    assert sorted(out[:, :4].unique().tolist()) == [0.0, 8.0]
    given = label_latent(z, torch.tensor([3, 3, 0, 1, 2]), 4, 2.0)
    assert given[:, :4].argmax(1).tolist() == [3, 3, 0, 1, 2] and float(given.max()) >= 2.0
    # plain Gaussian latents pick every label about equally often
    counts = np.bincount(latents(20000, 64, 0)[:, :10].argmax(1), minlength=10) / 20000
    assert counts.min() > 0.09 and counts.max() < 0.11
    # a latent built for a label reads back as that label
    assert (latents(7, 64, 1, classes=10, label=6)[:, :10].argmax(1) == 6).all()


def test_classes_must_fit_the_latent():
    from prism_edge.architectures import ArchitectureError

    with pytest.raises(ArchitectureError, match="nz > classes"):
        build_generator("mnist-small", 1, {"classes": 64})


def brute_force_mmd(f, y, data_f, data_y):
    """sum_c pi_c^2 ||m_c - mu_c||^2 for k(x, x') = <f, f'>, term by term: pi_c the data's class
    share; ||m_c||^2 from the generated pairs i != j of class c (data terms exact)."""
    total = 0.0
    for c in data_y.unique():
        g, d = f[y == c], data_f[data_y == c]
        pi = len(d) / len(data_f)
        k_gg = g @ g.T
        gg = (k_gg.sum() - k_gg.diagonal().sum()) / (len(g) * (len(g) - 1))
        total = total + pi**2 * (gg - 2 * (g @ d.T).mean() + (d @ d.T).mean())
    return total


def test_per_class_mmd_matches_the_kernel_definition():
    g = torch.Generator().manual_seed(0)
    data_f, data_y = torch.randn(40, 6, generator=g, dtype=torch.float64), torch.arange(40) % 3
    f, y = torch.randn(8, 6, generator=g, dtype=torch.float64), torch.tensor([0, 0, 1, 1, 1, 2, 2, 0])
    mean = torch.zeros(3, 6, dtype=torch.float64).index_add(0, data_y, data_f) / 40
    probs = torch.bincount(data_y).double() / 40  # 14 / 13 / 13 of 40
    stats = DataStats(mean, 40, class_probs=probs)
    assert float(mmd_loss(f, stats, "unbiased", y)) == pytest.approx(
        float(brute_force_mmd(f, y, data_f, data_y)), rel=1e-10)
    # one class: the plain (unconditional) MMD
    one = DataStats(data_f.mean(0, keepdim=True), 40)
    zeros = torch.zeros(40, dtype=torch.long)
    assert float(mmd_loss(f, one)) == pytest.approx(
        float(brute_force_mmd(f, torch.zeros(8, dtype=torch.long), data_f, zeros)), rel=1e-10)


def test_per_class_mmd_is_unbiased_for_the_fixed_label_shares_of_a_batch():
    """Generated features from the data's own class distributions score 0 on average, and
    class means scaled away from the data's score more, although each batch holds only 3-4
    images of each of ten classes (the shares batch_labels fixes, not i.i.d. labels: a single
    U-statistic over the batch averaged -0.96 here and scored 1.4-1.6x the means best)."""
    g = torch.Generator().manual_seed(1)
    mu = 2 * torch.randn(10, 8, generator=g, dtype=torch.float64)
    probs = torch.full((10,), 0.1, dtype=torch.float64)
    stats = DataStats(probs[:, None] * mu, 1000, class_probs=probs)
    y = stats.batch_labels(32)

    def mean_loss(scale: float, gamma: float = 1.0, batches: int = 3000) -> tuple[float, float]:
        losses = torch.stack([mmd_loss(scale * mu[y] + torch.randn(32, 8, generator=g,
                                                                   dtype=torch.float64),
                                       stats, "unbiased", y, gamma) for _ in range(batches)])
        return float(losses.mean()), float(losses.std() / batches**0.5)

    m, se = mean_loss(1.0)
    assert abs(m) < 4 * se, (m, se)
    assert mean_loss(1.4)[0] > m + 10 * se and mean_loss(0.8)[0] > m + 10 * se
    # --mean-scale 1.5: the optimum moves to 1.5x the data's class means, and only there
    m, se = mean_loss(1.5, 1.5)
    assert abs(m) < 4 * se, (m, se)
    assert mean_loss(1.0, 1.5)[0] > m + 10 * se


def test_class_guidance_moves_each_target_away_from_the_client_mean():
    """--class-guidance G: the loss is zero exactly where each generated class mean equals
    gamma mu_c + G (mu_c - mu), mu the client's overall mean; classes the client lacks add
    nothing, and with one class there is nothing to guide away from."""
    g = torch.Generator().manual_seed(2)
    probs = torch.tensor([0.5, 0.0, 0.3, 0.2], dtype=torch.float64)
    mu = torch.randn(4, 5, generator=g, dtype=torch.float64)
    stats = DataStats(probs[:, None] * mu, 100, class_probs=probs)
    y = stats.batch_labels(20)
    overall = (probs[:, None] * mu).sum(0)
    for gamma, guide in ((1.0, 0.4), (1.3, 0.15)):
        target = gamma * mu + guide * (mu - overall)
        assert float(mmd_loss(target[y], stats, "biased", y, gamma, guide)) == pytest.approx(
            0, abs=1e-12)
        # the same images against the scale alone, or against another guidance, score more
        assert float(mmd_loss(target[y], stats, "biased", y, gamma)) > 1e-3
        assert float(mmd_loss(target[y], stats, "biased", y, gamma, 2 * guide)) > 1e-3
    one = DataStats(overall[None], 100)
    f = torch.randn(8, 5, generator=g, dtype=torch.float64)
    assert float(mmd_loss(f, one, mean_scale=1.2, class_guidance=0.5)) == pytest.approx(
        float(mmd_loss(f, one, mean_scale=1.2)), rel=1e-12)


def test_guidance_center_replaces_the_client_mean():
    """--guidance-center model: the loss is zero where each generated class mean equals
    mu_c + G (mu_c - centre); the client's own mean as the centre is the default loss."""
    g = torch.Generator().manual_seed(3)
    probs = torch.tensor([0.6, 0.4, 0.0], dtype=torch.float64)
    mu = torch.randn(3, 6, generator=g, dtype=torch.float64)
    stats = DataStats(probs[:, None] * mu, 50, class_probs=probs)
    y = stats.batch_labels(10)
    center = torch.randn(6, generator=g, dtype=torch.float64)
    target = mu + 0.4 * (mu - center)
    assert float(mmd_loss(target[y], stats, "biased", y, 1.0, 0.4, center)) == pytest.approx(
        0, abs=1e-12)
    assert float(mmd_loss(target[y], stats, "biased", y, 1.0, 0.4)) > 1e-3
    f = torch.randn(10, 6, generator=g, dtype=torch.float64)
    assert float(mmd_loss(f, stats, "unbiased", y, 1.0, 0.4, stats.mean.sum(0))) == float(
        mmd_loss(f, stats, "unbiased", y, 1.0, 0.4))


@pytest.mark.parametrize("per_class", [32, 5])
def test_model_center_is_the_mean_features_of_every_class(per_class):
    """client.model_center: --center-per-class images of each class (32 by default) from the
    model, averaged in feature space; the same draws give the same centre."""
    from prism_edge.client import model_center
    from prism_edge.config import ClientConfig
    from prism_edge.masked import set_mode

    gen = build_generator("mnist-small", 0, {"classes": 10})
    set_mode(gen, "sample")
    fm = make_feature_map("rff", (1, 28, 28), 0, 64)
    cfg = ClientConfig(batch=16, center_per_class=per_class)
    torch.manual_seed(5)
    c = model_center(gen, fm, cfg)
    torch.manual_seed(5)
    feats = []
    with torch.no_grad():
        for chunk in torch.arange(10).repeat_interleave(per_class).split(16):
            feats.append(fm(gen(torch.randn(len(chunk), gen.nz), chunk)))
    assert sum(len(f) for f in feats) == 10 * per_class and c.shape == (64,)
    assert torch.allclose(c, torch.cat(feats).mean(0), atol=1e-5)


def test_batch_labels_follow_the_client_class_shares(mnist_train):
    st = DataStats(torch.zeros(4, 2), 1, class_probs=torch.tensor([0.5, 0.25, 0.2, 0.05]))
    labels = st.batch_labels(64)
    assert np.bincount(labels.numpy(), minlength=4).tolist() == [32, 16, 13, 3]
    fm = make_feature_map("rff", (1, 28, 28), 0, 256)
    sevens = mnist_train.labels == 7
    one_class = compute_stats(fm, mnist_train.images[sevens][:500],
                              mnist_train.labels[sevens][:500], 10)
    assert set(one_class.batch_labels(64).tolist()) == {7}
    assert float(one_class.mean[7].norm()) > 0 and float(one_class.mean[:7].abs().sum()) == 0


@pytest.fixture(scope="module")
def conditional_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cond")
    gen = build_generator("mnist-small", 42, {"classes": 10})
    mask = (np.random.default_rng(1).random(gen.num_masked) < 0.6).astype(np.uint8)
    write_bits(tmp / "c.bits", mask, gen.describe(), layer_sizes(gen), 42, {"dataset": "mnist"})
    set_flat_mask(gen, mask)
    export(tmp / "c.bits", 42, tmp / "c.onnx")
    return tmp, gen


def test_onnx_graph_reads_the_label_like_torch(conditional_model):
    tmp, gen = conditional_model
    onnx_gen = OnnxGenerator(tmp / "c.onnx")
    assert onnx_gen.classes == 10
    for z in (latents(12, 64, 0), latents(5, 64, 2, classes=10, label=3)):
        with torch.no_grad():
            ref = gen(torch.from_numpy(z)).numpy()
        assert np.abs(onnx_gen.run(z) - ref).max() < 1e-4
    # the label changes the image
    assert np.abs(onnx_gen.generate(4, 0, label=1) - onnx_gen.generate(4, 0, label=8)).max() > 0.1


def test_generate_label_cli(conditional_model, tmp_path):
    tmp, _ = conditional_model

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "prism_edge.cli", *args],
                              capture_output=True, text=True)

    ok = cli("generate", "--model", str(tmp / "c.onnx"), "--label", "4", "-n", "3",
             "-o", str(tmp_path / "four.npy"))
    assert ok.returncode == 0, ok.stderr
    four = np.load(tmp_path / "four.npy")
    assert np.array_equal(four, OnnxGenerator(tmp / "c.onnx").generate(3, 0, label=4))
    rows = cli("generate", "--model", str(tmp / "c.bits"), "--mask-seed", "42", "--by-class",
               "-n", "3", "-o", str(tmp_path / "rows.npy"))  # the torch path
    assert rows.returncode == 0, rows.stderr
    by_class = OnnxGenerator(tmp / "c.onnx").generate(3, 0, by_class=True)
    assert by_class.shape == (30, 1, 28, 28)
    assert np.abs(np.load(tmp_path / "rows.npy") - by_class).max() < 1e-4
    assert np.array_equal(by_class[12:15], OnnxGenerator(tmp / "c.onnx").run(
        latents(30, 64, 0, 10, 4)[12:15]))  # row 4: the draws of rows 0-3 come first
    bad = cli("generate", "--model", str(tmp / "c.onnx"), "--label", "10", "-o",
              str(tmp_path / "x.png"))
    assert bad.returncode == 2 and "0..9" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x.png").exists()


def test_label_unknown_to_an_unconditional_model(tmp_path):
    gen = build_generator("mnist-small", 42)
    mask = np.ones(gen.num_masked, np.uint8)
    write_bits(tmp_path / "u.bits", mask, gen.describe(), layer_sizes(gen), 42, {})
    r = subprocess.run([sys.executable, "-m", "prism_edge.cli", "generate", "--model",
                        str(tmp_path / "u.bits"), "--mask-seed", "42", "--label", "1", "-o",
                        str(tmp_path / "u.png")], capture_output=True, text=True)
    assert r.returncode == 2 and "class-conditional" in r.stderr and "Traceback" not in r.stderr


def test_short_training_makes_the_requested_digits(mnist_train):
    """100 local steps on 10,000 real MNIST images: the LeNet reads the requested label."""
    from prism_edge.client import local_train
    from prism_edge.config import ClientConfig
    from prism_edge.evaluation.classifier import embed, get_classifier
    from prism_edge.masked import get_flat_scores, set_mode

    torch.set_num_threads(2)
    fm = make_feature_map("rff+pool2+pool4", (1, 28, 28), 0, 2048)
    stats = compute_stats(fm, mnist_train.images[:10000], mnist_train.labels[:10000], 10)
    gen = build_generator("mnist-small", 42, {"classes": 10})
    lenet = get_classifier(mnist_train)

    def label_accuracy() -> float:
        p = torch.sigmoid(get_flat_scores(gen)).numpy()
        set_flat_mask(gen, (p > 0.5).astype(np.uint8))
        hits = []
        for label in range(10):
            with torch.no_grad():
                x = gen(torch.from_numpy(latents(50, 64, label, 10, label))).numpy()
            hits.append(float((embed(lenet, x)[1].argmax(1) == label).mean()))
        set_mode(gen, "sample", "ste")
        return float(np.mean(hits))

    before = label_accuracy()
    torch.manual_seed(0)
    local_train(gen, fm, stats, ClientConfig(local_steps=100), 0.1, None)
    after = label_accuracy()
    # measured: 0.10 before (every image read as one digit), 0.76 after
    assert before < 0.2 and after > 0.5, (before, after)


def _client_of_3s_and_8s(mnist_train):
    """A client holding only MNIST 3s and 8s: a class-conditional generator, the feature map,
    the client's statistics and the generator's start scores."""
    from prism_edge.masked import get_flat_scores

    keep = np.flatnonzero(np.isin(mnist_train.labels.numpy(), [3, 8]))[:600]
    fm = make_feature_map("rff", (1, 28, 28), 0, 256)
    stats = compute_stats(fm, mnist_train.images[keep], mnist_train.labels[keep], 10)
    gen = build_generator("mnist-small", 0, {"classes": 10})
    return gen, fm, stats, get_flat_scores(gen).clone()


def _guided_losses(client, center: str, **options) -> list[float]:
    """local_train's losses from the start scores with guidance from ``center``; "server" gets
    the model's centre of the same draws, as the server would send it."""
    from prism_edge.client import local_train, model_center
    from prism_edge.config import ClientConfig
    from prism_edge.masked import set_flat_scores, set_mode

    gen, fm, stats, start = client
    set_flat_scores(gen, start)
    set_mode(gen, "sample")
    cfg = ClientConfig(batch=16, lr=0.1, guidance_center=center, **options)
    torch.manual_seed(0)
    sent = model_center(gen, fm, cfg).numpy() if center == "server" else None
    return local_train(gen, fm, stats, cfg, cfg.lr, None, center=sent)[0]


def test_local_training_uses_the_model_center(mnist_train):
    """A client of a few classes (MNIST 3s and 8s) trains against the model's centre when asked:
    its first loss differs from the one against its own mean, and both runs' losses fall."""
    client = _client_of_3s_and_8s(mnist_train)
    losses = {c: _guided_losses(client, c, local_steps=12, class_guidance=0.4)
              for c in ("client", "model")}
    assert losses["client"][0] != pytest.approx(losses["model"][0], rel=1e-3)
    for ls in losses.values():
        assert np.isfinite(ls).all() and np.mean(ls[-4:]) < np.mean(ls[:4])


def test_an_unknown_guidance_center_is_refused():
    """A Flower run config's guidance-center is checked as the CLI's choice list is."""
    from prism_edge.config import ClientConfig, RunConfig, check_settings
    from prism_edge.errors import PrismError

    with pytest.raises(PrismError, match="guidance centre 'data'.*client, model"):
        check_settings(RunConfig(client=ClientConfig(guidance_center="data")))
    check_settings(RunConfig(client=ClientConfig(guidance_center="model")))


def test_the_server_centre_is_the_model_centre_computed_once(mnist_train):
    """--guidance-center server moves model_center from each client to the server: a client
    given the centre of the same draws trains exactly as with "model"; without a centre, or
    with one of another feature map's size, it stops with the fix."""
    from prism_edge.client import local_train
    from prism_edge.config import ClientConfig
    from prism_edge.errors import PrismError

    client = _client_of_3s_and_8s(mnist_train)
    losses = {c: _guided_losses(client, c, local_steps=6, class_guidance=0.3)
              for c in ("model", "server")}
    assert losses["server"] == losses["model"]
    gen, fm, stats, _ = client
    cfg = ClientConfig(local_steps=6, batch=16, class_guidance=0.3, guidance_center="server")
    with pytest.raises(PrismError, match="carries no guidance centre"):
        local_train(gen, fm, stats, cfg, cfg.lr, None)
    with pytest.raises(PrismError, match=r"shape \(255,\), expected \(256,\)"):
        local_train(gen, fm, stats, cfg, cfg.lr, None, center=np.zeros(255, np.float32))
