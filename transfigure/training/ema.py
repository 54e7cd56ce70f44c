"""Exponential moving average of a network's weights, with warm-up and batch-norm recalibration."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["EMA", "recalibrate_batch_norm"]


class EMA:
    """Exponential moving average of a network's weights (buffers are copied as they are).

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates (the
    TensorFlow ``num_updates`` rule), so that after a short run the average already follows
    the network instead of holding its random initialisation: after 100 updates it weighs the
    last ~12 steps, after 10,000 the long-run ``decay`` applies.

    Args:
        model: the network to track; a frozen copy is made.
        decay: the long-run decay in [0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @property
    def current_decay(self) -> float:
        """The decay the next update will use."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        d = self.current_decay
        for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
            ema_p.lerp_(p.detach(), 1.0 - d)
        for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
            ema_b.copy_(b)
        self.updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])


@torch.no_grad()
def recalibrate_batch_norm(
    net: nn.Module, forward: Callable[[torch.Generator], Any], *, batches: int = 8, seed: int = 0
) -> nn.Module:
    """Replace a network's batch-norm running statistics by exact averages over ``batches``
    forward passes ("standing statistics", Brock et al. 2019), then switch it to eval mode.

    An averaged network's weights never produced the running statistics it carries (those
    belong to the live network), so they are re-estimated before it is used.

    Args:
        net: the network (modified in place).
        forward: runs one batch through ``net``, drawing its inputs from the given generator.
        batches: number of forward passes averaged over.
        seed: seed of the generator passed to ``forward`` (no global random state is used).
    """
    norms = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return net.eval()
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    net.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(batches):
        forward(gen)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return net.eval()
