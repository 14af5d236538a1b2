"""Adam on the generator's scores, written out.

torch.optim.Adam's first construction imports torch._dynamo, inductor and sympy: about 70 MB of
resident memory that a 1 GB device pays for nothing. This is the same update as torch's
single-tensor Adam (no weight decay, no amsgrad), in a few lines, with its state as three plain
values that travel easily (checkpoint, Flower's context.state): the step count and the flat first
and second moments.
"""

from __future__ import annotations

import torch


class Adam:
    def __init__(self, params: list[torch.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, state: dict | None = None):
        self.params, self.lr, self.betas, self.eps = list(params), lr, tuple(betas), eps
        n = sum(p.numel() for p in self.params)
        dev = self.params[0].device
        if state is None:
            state = {"step": 0, "exp_avg": torch.zeros(n, device=dev),
                     "exp_avg_sq": torch.zeros(n, device=dev)}
        if state["exp_avg"].numel() != n or state["exp_avg_sq"].numel() != n:
            raise ValueError(f"optimiser state holds {state['exp_avg'].numel()} values for {n} "
                             "parameters; it belongs to another architecture")
        # the moments are updated in place: the optimiser owns the state it is given
        self.step_count = int(state["step"])
        # a state read from a checkpoint (CPU) moves to the parameters' device once
        self.exp_avg, self.exp_avg_sq = state["exp_avg"].to(dev), state["exp_avg_sq"].to(dev)
        sizes = [p.numel() for p in self.params]
        # per-parameter views into the flat moments: updates land in the flat tensors
        self._m = [v.view(p.shape) for v, p in zip(self.exp_avg.split(sizes), self.params)]
        self._v = [v.view(p.shape) for v, p in zip(self.exp_avg_sq.split(sizes), self.params)]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        b1, b2 = self.betas
        self.step_count += 1
        bc1 = 1 - b1 ** self.step_count
        bc2_sqrt = (1 - b2 ** self.step_count) ** 0.5
        for p, m, v in zip(self.params, self._m, self._v):
            if p.grad is None:
                continue
            g = p.grad
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = v.sqrt().div_(bc2_sqrt).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bc1)

    def state_dict(self) -> dict:
        """The live state (not a copy): pass it to the next round's optimiser."""
        return {"step": self.step_count, "exp_avg": self.exp_avg, "exp_avg_sq": self.exp_avg_sq}
