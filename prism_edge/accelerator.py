"""Which torch device the simulation trains on: the CPU (default) or a CUDA GPU.

The seed contract does not depend on it (frozen weights are regenerated on the CPU and copied
over), but the random draws of training do: a run and its resume must use the same device to
end bit-identical.
"""

from __future__ import annotations

import torch

from .errors import PrismError

DEVICE_CHOICES = "cpu | cuda | cuda:N | auto"


def resolve_device(name: str) -> torch.device:
    """``auto`` is a CUDA GPU when torch sees one, else the CPU; anything unusable is a
    PrismError that names the fix."""
    name = name.strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise PrismError(f"unknown device {name!r}; use {DEVICE_CHOICES}") from None
    if dev.type not in ("cpu", "cuda"):
        raise PrismError(f"unknown device {name!r}; use {DEVICE_CHOICES}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise PrismError(f"--device {name}: this torch ({torch.__version__}) sees no CUDA "
                             "GPU; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise PrismError(f"--device {name}: only {torch.cuda.device_count()} CUDA GPU(s); "
                             "use cuda:0 .. cuda:N-1")
    return dev


def describe_device(dev: torch.device) -> str:
    """For summaries: 'cpu' or 'cuda:0 (NVIDIA H100 80GB HBM3)'."""
    if dev.type != "cuda":
        return "cpu"
    index = dev.index if dev.index is not None else torch.cuda.current_device()
    return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
