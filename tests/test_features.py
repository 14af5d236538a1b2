import pytest
import torch

from prism_edge.errors import PrismError
from prism_edge.features import FEATURE_KINDS, make_feature_map
from prism_edge.stats import DataStats, compute_stats, mmd_loss


@pytest.mark.parametrize("kind", FEATURE_KINDS)
def test_feature_maps_are_seeded_and_differentiable(kind):
    a = make_feature_map(kind, (1, 28, 28), seed=3, n_features=512)
    b = make_feature_map(kind, (1, 28, 28), seed=3, n_features=512)
    x = (torch.rand(4, 1, 28, 28) * 2 - 1).requires_grad_()
    fa = a(x)
    assert torch.equal(fa, b(x)) and fa.ndim == 2
    fa.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_user_encoder_file(tmp_path):
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 16), torch.nn.Tanh())
    path = tmp_path / "enc.pt"
    torch.jit.script(enc).save(str(path))
    fm = make_feature_map(f"encoder:{path}", (1, 28, 28))
    assert fm(torch.zeros(2, 1, 28, 28)).shape == (2, 16)
    with pytest.raises(PrismError, match="TorchScript"):
        make_feature_map(f"encoder:{tmp_path / 'missing.pt'}", (1, 28, 28))
    with pytest.raises(PrismError, match="unknown feature map"):
        make_feature_map("vgg", (1, 28, 28))


def test_several_encoders_give_their_features_side_by_side(tmp_path):
    paths = []
    for i, width in enumerate((16, 8)):
        torch.manual_seed(i)
        enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, width), torch.nn.Tanh())
        paths.append(tmp_path / f"enc{i}.pt")
        torch.jit.script(enc).save(str(paths[-1]))
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    both = make_feature_map(f"encoder:{paths[0]},{paths[1]}", (1, 28, 28))(x)
    alone = [make_feature_map(f"encoder:{p}", (1, 28, 28))(x) for p in paths]
    assert both.shape == (3, 24) and torch.equal(both, torch.cat(alone, 1))
    kernel = make_feature_map(f"encoder-rff100:{paths[0]},{paths[1]}", (1, 28, 28),
                              n_features=64)(x)
    assert kernel.shape == (3, 24 + 64) and torch.equal(kernel[:, :24], both)
    with pytest.raises(PrismError, match="empty encoder path"):
        make_feature_map(f"encoder:{paths[0]},", (1, 28, 28))
    with pytest.raises(PrismError, match="TorchScript"):
        make_feature_map(f"encoder:{paths[0]},{tmp_path / 'missing.pt'}", (1, 28, 28))


def test_builtin_map_plus_encoder(tmp_path):
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 16))
    path = tmp_path / "enc.pt"
    torch.jit.script(enc).save(str(path))
    fm = make_feature_map(f"rff+encoder:{path}", (1, 28, 28), n_features=256)
    x = (torch.rand(3, 1, 28, 28) * 2 - 1).requires_grad_()
    f = fm(x)
    assert f.shape == (3, 256 + 16)
    # the encoder part is unit-normalised per image, then scaled like every part by 1/sqrt(2)
    assert torch.allclose(f[:, 256:].norm(dim=1), torch.full((3,), 2 ** -0.5), atol=1e-5)
    rff_alone = make_feature_map("rff", (1, 28, 28), n_features=256)(x)
    assert torch.allclose(f[:, :256], rff_alone / 2 ** 0.5, atol=1e-6)
    f.sum().backward()
    assert x.grad.abs().sum() > 0
    for bad, msg in [("rff+encoder:", "names no encoder file"), ("vgg+encoder:x.pt", "unknown"),
                     ("", "unknown")]:
        with pytest.raises(PrismError, match=msg):
            make_feature_map(bad, (1, 28, 28))


def test_unbiased_mmd_is_near_zero_for_data_and_larger_for_noise():
    fm = make_feature_map("rff", (1, 28, 28), 0, 2048)
    g = torch.Generator().manual_seed(0)
    data = torch.rand(2000, 1, 28, 28, generator=g) * 0.2 - 1  # dark images
    stats = compute_stats(fm, data)
    same = mmd_loss(fm(torch.rand(64, 1, 28, 28, generator=g) * 0.2 - 1), stats)
    other = mmd_loss(fm(torch.rand(64, 1, 28, 28, generator=g) * 2 - 1), stats)
    assert abs(float(same)) < 0.2 * float(other)
    with pytest.raises(ValueError):
        mmd_loss(fm(data[:4]), DataStats(stats.mean, 1), "nope")


def test_rff_half_stored_matrix_matches_a_plain_float32_matmul():
    # W is stored in float16 and multiplied a block of rows at a time; the result and its
    # gradient must equal one float32 matmul with the same (rounded) W, odd sizes included
    from prism_edge.features import RFF

    rff = RFF(dim=300, n_features=4000, seed=5)  # 131 rows a block: 3 blocks
    assert rff.w.dtype == torch.float16 and rff._buf.shape[0] < 300
    v = torch.randn(7, 300, requires_grad=True)
    w = rff.w.float()
    ref = rff.scale * torch.cos(v @ w + rff.b)
    out = rff(v)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-6)
    up = torch.randn_like(ref)
    (g_ref,) = torch.autograd.grad((ref * up).sum(), v)
    (g,) = torch.autograd.grad((out * up).sum(), v)
    torch.testing.assert_close(g, g_ref, rtol=1e-5, atol=1e-6)


def test_encoder_with_gaussian_kernel(tmp_path):
    # no bias: halving the image halves the encoder's features
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 16, bias=False))
    path = tmp_path / "enc.pt"
    torch.jit.script(enc).save(str(path))
    x = (torch.rand(3, 1, 28, 28) * 2 - 1).requires_grad_()
    raw = make_feature_map(f"encoder:{path}", (1, 28, 28))(x)
    both = make_feature_map(f"encoder-rff100:{path}", (1, 28, 28), seed=1, n_features=256)
    f = both(x)
    # the raw features (linear kernel) first, then 256 RFF of the unit-normalised ones, scaled
    # by sqrt(100): each RFF vector has norm about 1 before the scale
    assert f.shape == (3, 16 + 256) and torch.allclose(f[:, :16], raw)
    assert torch.allclose(f[:, 16:].norm(dim=1), torch.full((3,), 10.0), rtol=0.2)
    # features half as long have the same unit vector: the Gaussian part is blind to their
    # scale, only the linear part changes
    g = both(x * 0.5)
    assert torch.allclose(g[:, 16:], f[:, 16:], atol=1e-5) and not torch.allclose(g[:, :16],
                                                                                   f[:, :16])
    alone = make_feature_map(f"encoder-rff-1:{path}", (1, 28, 28), seed=1, n_features=256)(x)
    assert alone.shape == (3, 256) and torch.allclose(alone * 10, f[:, 16:], atol=1e-5)
    f.sum().backward()
    assert x.grad.abs().sum() > 0
    with pytest.raises(PrismError, match="names no encoder file"):
        make_feature_map("encoder-rff100:", (1, 28, 28))


def test_stage_kernel_gives_each_encoder_stage_its_own_gaussian_kernel(tmp_path):
    from prism_edge.encoder import PublicEncoder, stage_dims

    torch.manual_seed(0)
    enc = PublicEncoder(1, 28, 10, grid=(4, 3)).eval()
    path, louder = tmp_path / "enc.pt", tmp_path / "louder.pt"
    torch.jit.script(enc).save(str(path))
    assert stage_dims(torch.jit.load(str(path))) == [32 * 16, 64 * 9, 128 * 9]
    # the same encoder with its last stage's features doubled (ReLU and max-pool keep the factor)
    with torch.no_grad():
        enc.c3.weight.mul_(2)
        enc.c3.bias.mul_(2)
    torch.jit.script(enc).save(str(louder))
    x = torch.rand(3, 1, 28, 28) * 2 - 1

    def fm(kind: str, p) -> torch.Tensor:
        return make_feature_map(f"{kind}:{p}", (1, 28, 28), seed=1, n_features=300)(x)

    f, g = fm("encoder-stage-rff100", path), fm("encoder-stage-rff100", louder)
    assert f.shape == (3, 2240 + 300)
    assert torch.allclose(g[:, :1088], f[:, :1088]) and torch.allclose(g[:, 1088:2240],
                                                                         2 * f[:, 1088:2240])
    # three blocks of 100 random features, each of norm about 1 scaled by sqrt(100 / 3); each
    # stage is normalised on its own, so the louder last stage moves none of them
    for block in f[:, 2240:].split(100, 1):
        assert torch.allclose(block.norm(dim=1), torch.full((3,), (100 / 3) ** 0.5), rtol=0.2)
    assert torch.allclose(g[:, 2240:], f[:, 2240:], atol=1e-5)
    # in the one-kernel map the louder last stage changes the unit vector, so the kernel moves
    one, one_louder = fm("encoder-rff100", path), fm("encoder-rff100", louder)
    assert not torch.allclose(one_louder[:, 2240:], one[:, 2240:], atol=1e-2)
    # two encoders side by side: each one's stages in turn
    both = make_feature_map(f"encoder-stage-rff100:{path},{louder}", (1, 28, 28), n_features=600)
    assert both.parts[0].stages == [512, 576, 1152] * 2
    # the map names its blocks in output order (bench.loss_gap reports a gap per block)
    stage_map = make_feature_map(f"encoder-stage-rff100:{path}", (1, 28, 28), n_features=300)
    assert stage_map.named_parts(2540) == [("raw", 2240), ("stage 1 Gaussian", 100),
                                           ("stage 2 Gaussian", 100), ("stage 3 Gaussian", 100)]
    gauss_only = make_feature_map(f"encoder-stage-rff-100:{path}", (1, 28, 28), n_features=300)
    assert [n for n, _ in gauss_only.named_parts(300)] == [f"stage {i} Gaussian" for i in (1, 2, 3)]
    assert make_feature_map("rff", (1, 28, 28), n_features=64).named_parts(64) == [("all", 64)]


def test_stage_kernel_needs_an_encoder_that_records_its_stages(tmp_path):
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 16))
    path = tmp_path / "enc.pt"
    torch.jit.script(enc).save(str(path))
    with pytest.raises(PrismError, match="does not record its stages"):
        make_feature_map(f"encoder-stage-rff100:{path}", (1, 28, 28))
