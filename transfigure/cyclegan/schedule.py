"""Learning-rate schedules for CycleGAN, as a pure function of the epoch.

The reference keeps the rate constant for ``n_epochs`` and then decays it linearly over
``n_epochs_decay``; it also offers step, cosine and plateau policies. Here the factor for an epoch
is computed from the epoch index and the totals alone (plateau excepted, which keeps a little
state), so a resumed run needs no ``--epoch_count`` and an *extended* run simply follows the
schedule it would have had if the new totals had been asked for from the start.

Departure, kept on purpose: the reference's ``train.py`` steps its scheduler at the *start* of
every epoch (since 2020; PyTorch warns about it, the reference's issue #1100), which shifts its
rule by one epoch: its epoch k (1-based) runs at ``lambda(k)`` instead of ``lambda(k - 1)``, so
only ``n_epochs - 1`` epochs get the full rate and the last epoch runs at a rate of 0 (it trains
nothing; with 2 + 2 epochs the factors are 1, ⅔, ⅓, 0 there and 1, 1, ⅔, ⅓ here). Here every
epoch e (0-based) runs at ``lambda(e)``, the schedule the reference's documentation and the
paper describe (constant for ``n_epochs``, then a linear decay towards zero) and that its code
followed before that change. Over the usual 100 + 100 epochs the two differ by one epoch; in a
short run the difference is large.
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["POLICIES", "LRSchedule", "lr_factor"]

POLICIES = ("linear", "step", "cosine", "plateau")


def lr_factor(
    policy: str,
    epoch: int,
    *,
    n_epochs: int,
    n_epochs_decay: int,
    step_size: int = 50,
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based).

    - ``linear``: 1 for the first ``n_epochs`` epochs, then ``1 - k / (n_epochs_decay + 1)`` in
      the k-th decay epoch (k = 1 … n_epochs_decay) — the reference's ``lambda_rule`` applied
      as its documentation describes (see the module docstring for its one-epoch shift), which
      reaches zero just after the last epoch.
    - ``cosine``: like ``linear`` but a half cosine over the decay epochs. (The reference anneals
      over ``n_epochs`` only and then rises again; we keep the constant-then-decay shape.)
    - ``step``: ``gamma ** (epoch // step_size)`` (the reference's StepLR, step 50, gamma 0.1).
    - ``plateau``: 1 (the reduction is stateful; see :class:`LRSchedule`).
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if policy in ("linear", "cosine"):
        k = max(0, epoch + 1 - n_epochs)
        progress = min(k / (n_epochs_decay + 1), 1.0)
        if policy == "linear":
            return 1.0 - progress
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if policy == "step":
        if step_size < 1:
            raise ValueError(f"step_size must be >= 1, got {step_size}")
        return gamma ** (epoch // step_size)
    if policy == "plateau":
        return 1.0
    raise ValueError(f"unknown lr policy {policy!r}; expected one of {', '.join(POLICIES)}")


class LRSchedule:
    """The learning-rate factor per epoch, with the plateau policy's state.

    Plateau follows the reference's ReduceLROnPlateau(mode="min", factor=0.2, threshold=0.01,
    patience=5): after more than ``patience`` epochs whose metric did not improve on the best by a
    relative 1 %, the factor is multiplied by ``plateau_factor``. The metric is whatever the
    trainer passes to :meth:`observe` (CycleGAN: the epoch's mean generator loss).
    """

    def __init__(
        self,
        policy: str,
        *,
        n_epochs: int,
        n_epochs_decay: int,
        step_size: int = 50,
        gamma: float = 0.1,
        plateau_factor: float = 0.2,
        plateau_patience: int = 5,
        plateau_threshold: float = 0.01,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"unknown lr policy {policy!r}; expected one of {', '.join(POLICIES)}")
        self.policy = policy
        self.n_epochs = n_epochs
        self.n_epochs_decay = n_epochs_decay
        self.step_size = step_size
        self.gamma = gamma
        self.plateau_factor = plateau_factor
        self.plateau_patience = plateau_patience
        self.plateau_threshold = plateau_threshold
        self.best = math.inf
        self.bad_epochs = 0
        self.reduction = 1.0

    def factor(self, epoch: int) -> float:
        """Multiplier of the base learning rate for ``epoch`` (0-based)."""
        if self.policy == "plateau":
            return self.reduction
        return lr_factor(
            self.policy,
            epoch,
            n_epochs=self.n_epochs,
            n_epochs_decay=self.n_epochs_decay,
            step_size=self.step_size,
            gamma=self.gamma,
        )

    def observe(self, metric: float) -> None:
        """Report an epoch's metric (lower is better); only the plateau policy uses it."""
        if self.policy != "plateau" or not math.isfinite(metric):
            return
        if metric < self.best * (1.0 - self.plateau_threshold):
            self.best = metric
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.plateau_patience:
                self.reduction *= self.plateau_factor
                self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "reduction": self.reduction}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best = float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])
        self.reduction = float(state["reduction"])
