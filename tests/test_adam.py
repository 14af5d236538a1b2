"""The written-out Adam is torch's Adam, and its state round-trips."""

import subprocess
import sys

import pytest
import torch

from prism_edge.adam import Adam


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(5, 3, generator=g)),
            torch.nn.Parameter(torch.randn(7, generator=g))]


def _grads(step: int, params) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return [torch.randn(p.shape, generator=g) * (step + 1) for p in params]


def test_matches_torch_adam_and_resumes():
    ours, ref = _params(0), _params(0)
    opt = Adam(ours, 0.1, (0.5, 0.999))
    topt = torch.optim.Adam(ref, lr=0.1, betas=(0.5, 0.999))
    for step in range(6):
        if step == 3:  # continue from a saved state, as the next round does
            opt = Adam(ours, 0.1, (0.5, 0.999), state=opt.state_dict())
        for p, q, g in zip(ours, ref, _grads(step, ours)):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        topt.step()
        for p, q in zip(ours, ref):
            torch.testing.assert_close(p.data, q.data, rtol=0, atol=1e-6)
    assert opt.state_dict()["step"] == 6


def test_state_of_another_size_is_refused():
    state = Adam(_params(0), 0.1).state_dict()
    with pytest.raises(ValueError, match="another architecture"):
        Adam(_params(0)[:1], 0.1, state=state)


def test_adam_does_not_import_torch_dynamo():
    # the reason this module exists: torch.optim pulls in ~70 MB of compiler modules on a device
    code = ("import sys, torch\n"
            "from prism_edge.adam import Adam\n"
            "p = torch.nn.Parameter(torch.zeros(3)); o = Adam([p], 0.1)\n"
            "p.grad = torch.ones(3); o.step()\n"
            "assert 'torch._dynamo' not in sys.modules, 'torch._dynamo was imported'\n"
            "assert 'sympy' not in sys.modules, 'sympy was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)
