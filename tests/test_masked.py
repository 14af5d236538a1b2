import numpy as np
import pytest
import torch

from prism_edge.architectures import ARCHITECTURES, build_generator
from prism_edge.masked import (
    get_flat_scores,
    masked_layers,
    sample_mask,
    set_flat_mask,
    set_flat_scores,
    set_mode,
)


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_batch_of_8_equals_8_single_generations(name):
    gen = build_generator(name, 42)
    mask = np.random.default_rng(0).random(gen.num_masked) < 0.5
    set_flat_mask(gen, mask)
    z = torch.randn(8, gen.nz, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        batch = gen(z)
        singles = torch.cat([gen(z[i:i + 1]) for i in range(8)])
    assert batch.shape == (8, *gen.out_shape)
    assert torch.allclose(batch, singles, atol=1e-5)
    assert batch.abs().max() <= 1.0


def test_masked_weight_counts():
    counts = {n: build_generator(n).num_masked for n in ARCHITECTURES}
    assert counts["mnist-small"] == 533_504
    assert counts["mnist-wide"] == 1_329_152
    # 64 x 6,272 linear + 128 x 64 x 9 + 64 x 1 x 9: 3x3 taps instead of 4x4
    assert counts["mnist-resize"] == 475_712
    assert counts["mnist-resize-wide"] == 1_098_880
    # mnist-resize + a 128 x 128 x 9 conv at 7x7 + a 64 x 64 x 9 conv at 14x14
    assert counts["mnist-resize-deep"] == 475_712 + 147_456 + 36_864
    assert abs(counts["paper-resnet"] - 3_543_616) / 3_543_616 < 0.001  # paper: 3.54M


@pytest.mark.parametrize("estimator", ["ste", "paper"])
def test_estimator_gradients(estimator):
    s = torch.tensor([0.0, 2.0, -2.0], requires_grad=True)
    torch.manual_seed(0)
    m = sample_mask(s, estimator)
    assert set(m.detach().tolist()) <= {0.0, 1.0}
    m.sum().backward()
    p = torch.sigmoid(s.detach())
    want = p * (1 - p) if estimator == "ste" else p
    assert torch.allclose(s.grad, want)


def test_sampled_masks_follow_probability():
    s = torch.full((200_000,), 1.0)
    m = sample_mask(s)
    assert abs(m.mean().item() - torch.sigmoid(torch.tensor(1.0)).item()) < 0.01


def test_training_mode_draws_fresh_masks_and_gets_score_gradients():
    gen = build_generator("mnist-small", 1)
    set_mode(gen, "sample", "ste")
    z = torch.randn(4, gen.nz)
    a, b = gen(z), gen(z)
    assert not torch.allclose(a, b)
    a.mean().backward()
    assert all(m.scores.grad is not None and m.scores.grad.abs().sum() > 0 for m in masked_layers(gen))


def test_fixed_mask_is_applied_and_scores_roundtrip():
    gen = build_generator("mnist-small", 1)
    flat = torch.randn(gen.num_masked)
    set_flat_scores(gen, flat)
    assert torch.equal(get_flat_scores(gen), flat)
    set_flat_mask(gen, np.zeros(gen.num_masked))
    with torch.no_grad():
        out = gen(torch.randn(2, gen.nz))
    assert torch.allclose(out, torch.zeros_like(out))  # all weights masked -> tanh(0)
    with pytest.raises(ValueError, match="masked weights"):
        set_flat_mask(gen, np.zeros(10))


@pytest.mark.parametrize("name", ["mnist-resize", "paper-resnet"])
def test_fused_upsample_convs_equal_upsampling_then_convolving(name):
    """The generator runs Up2 + conv as one transposed conv (run_fused); running every module
    of the body one by one (the upsampled tensor made, then convolved) gives the same images."""
    from prism_edge.architectures import ResBlock, label_latent

    def unfused(module, x):
        if isinstance(module, ResBlock):
            return unfused(module.main, x) + unfused(module.shortcut, x)
        if isinstance(module, torch.nn.Sequential):
            for child in module:
                x = unfused(child, x)
            return x
        return module(x)

    gen = build_generator(name, 7, {"classes": 10})
    set_flat_mask(gen, np.random.default_rng(1).random(gen.num_masked) < 0.5)
    z = torch.randn(4, gen.nz, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([0, 3, 5, 9])
    with torch.no_grad():
        fused = gen(z, labels)
        plain = unfused(gen.body, label_latent(z, labels, 10, gen.config.label_scale))
    assert torch.allclose(fused, plain, atol=1e-5)
