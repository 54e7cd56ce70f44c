"""Training that watches itself: the ways GAN training is known to fail, detected as it runs.

:class:`Monitor` reads every step's losses and, every ``watch_every`` steps, looks for

- a **discriminator that overpowers** the generator: its loss collapsed towards zero (or it
  tells almost every fake apart) while the generator's adversarial loss climbs;
- **mode collapse**: samples for different inputs (latents, photos) far less varied than the
  data (the step measures both, :meth:`Step.diversity`);
- **stalled** losses (flat for two windows) and **oscillating** ones (large swings that flip
  sign from step to step);

and at the end of a run the step may add its own checks (:meth:`Step.final_checks`: the
nearest-neighbour memorisation check of generators of new images). Each finding says what is
happening and what usually helps; the engine shows it on stderr, writes it to
``diagnostics.jsonl`` and the run page.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["Finding", "Monitor", "spread"]


@dataclass(frozen=True)
class Finding:
    """One detected problem (or, with ``kind`` ending in ``_ok``, a passed final check)."""

    kind: str
    step: int
    message: str
    figures: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def spread(images: Any) -> float:
    """Mean pairwise mean-absolute distance of ``(N, C, H, W)`` images (compared at 32 px at
    most): how varied a batch is."""
    import torch
    from torch.nn import functional as F

    if images.shape[-1] > 32:
        images = F.interpolate(images, size=32, mode="area")
    flat = images.flatten(1).float()
    n = flat.shape[0]
    if n < 2:
        return 0.0
    d = torch.cdist(flat, flat, p=1.0) / flat.shape[1]
    return float(d.sum() / (n * (n - 1)))


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _lag1_autocorrelation(values: list[float]) -> float:
    m = _mean(values)
    var = sum((v - m) ** 2 for v in values)
    if var == 0 or len(values) < 3:
        return 0.0
    return sum((a - m) * (b - m) for a, b in zip(values, values[1:], strict=False)) / var


class Monitor:
    """Failure detectors over a stream of step losses.

    Args:
        discriminator_losses: the discriminator loss names (empty: no adversarial checks).
        generator_losses: the generator's adversarial loss names.
        watch_every: steps per look; the detectors compare the last window with the one
            before and with the first (0 turns the monitor off).
        advice: what usually helps against an overpowering discriminator, in this trainer's
            option names.
    """

    def __init__(
        self,
        discriminator_losses: tuple[str, ...],
        generator_losses: tuple[str, ...],
        *,
        watch_every: int = 50,
        advice: str = "",
    ) -> None:
        self.d_names = discriminator_losses
        self.g_names = generator_losses
        self.window = watch_every
        self.advice = advice
        self.history: dict[str, deque[float]] = {}
        self.first: dict[str, float] = {}  # mean over the first window of the run
        self.first_counts: dict[str, list[float]] = {}
        self.reported: set[str] = set()

    # -- state (a resumed run keeps watching where it was) ---------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "history": {k: list(v) for k, v in self.history.items()},
            "first": dict(self.first),
            "first_counts": {k: list(v) for k, v in self.first_counts.items()},
            "reported": sorted(self.reported),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        size = 2 * max(self.window, 1)
        self.history = {k: deque(v, maxlen=size) for k, v in state["history"].items()}
        self.first = dict(state["first"])
        self.first_counts = {k: list(v) for k, v in state["first_counts"].items()}
        self.reported = set(state["reported"])

    # -- observing ---------------------------------------------------------------------------------
    def _series(self, names: tuple[str, ...]) -> list[float]:
        series = [list(self.history.get(n, ())) for n in names]
        series = [s for s in series if s]
        if not series:
            return []
        n = min(len(s) for s in series)
        return [sum(s[-n:][i] for s in series) / len(series) for i in range(n)]

    def observe(self, step: int, losses: Mapping[str, float]) -> list[Finding]:
        """Record one step's losses; every ``watch_every`` steps, look for problems."""
        if self.window <= 0:
            return []
        for k, v in losses.items():
            if not math.isfinite(v):
                continue
            self.history.setdefault(k, deque(maxlen=2 * self.window)).append(float(v))
            if k not in self.first:
                seen = self.first_counts.setdefault(k, [])
                seen.append(float(v))
                if len(seen) >= self.window:
                    self.first[k] = _mean(seen)
                    del self.first_counts[k]
        if step % self.window:
            return []
        return [f for f in (self._overpowering(step), *self._stalls(step)) if f is not None]

    def _once(self, finding: Finding | None) -> Finding | None:
        if finding is None or finding.kind in self.reported:
            return None
        self.reported.add(finding.kind)
        return finding

    def _overpowering(self, step: int) -> Finding | None:
        if not self.d_names or not self.g_names:
            return None
        d = self._series(self.d_names)[-self.window :]
        g = self._series(self.g_names)
        d0 = _mean([self.first[n] for n in self.d_names if n in self.first])
        g0 = _mean([self.first[n] for n in self.g_names if n in self.first])
        accuracy = self._series(("d_fake_acc",))[-self.window :]
        if len(d) < self.window or len(g) < 2 * self.window or not d0 > 0 or not g0 > 0:
            return None  # not enough steps yet, or a critic (Wasserstein losses can be < 0)
        d_now, g_before, g_now = _mean(d), _mean(g[: self.window]), _mean(g[self.window :])
        collapsed = d_now < 0.1 * d0
        fooled_never = bool(accuracy) and _mean(accuracy) > 0.98
        climbing = g_now > 1.5 * g0 and g_now > 1.05 * g_before
        if not ((collapsed or fooled_never) and climbing):
            return None
        why = f"its loss fell to {d_now:.3g} from {d0:.3g}"
        if accuracy:
            why += f", it calls {100 * _mean(accuracy):.0f}% of fakes fake"
        return self._once(
            Finding(
                "discriminator_overpowering",
                step,
                f"the discriminator is overpowering the generator at step {step}: {why}, while "
                f"the generator's adversarial loss climbs ({g0:.3g} at the start, {g_now:.3g} "
                "now), so the generator gets little useful gradient. What usually helps: "
                + (
                    self.advice
                    or "a lower discriminator learning rate, label smoothing, "
                    "instance noise, or skipping D updates while its loss is low (--d-skip-below)."
                ),
                {"d_loss": d_now, "d_loss_start": d0, "g_loss": g_now, "g_loss_start": g0},
            )
        )

    def _stalls(self, step: int) -> list[Finding | None]:
        out: list[Finding | None] = []
        names = [*self.d_names, *self.g_names] or sorted(self.history)
        flat, swinging = [], []
        for name in names:
            values = list(self.history.get(name, ()))
            if len(values) < 2 * self.window:
                continue
            before, now = values[: self.window], values[self.window :]
            scale = max(abs(_mean(values)), 1e-8)
            if (
                abs(_mean(now) - _mean(before)) / scale < 0.005
                and statistics.pstdev(values) / scale < 0.005
            ):
                flat.append(name)
            if statistics.pstdev(now) > 0.5 * scale and _lag1_autocorrelation(now) < -0.5:
                swinging.append(name)
        if flat and len(flat) == len([n for n in names if n in self.history]):
            out.append(
                self._once(
                    Finding(
                        "stalled",
                        step,
                        f"the losses ({', '.join(flat)}) have not moved for {2 * self.window} "
                        f"steps (step {step}): training has stalled. What usually helps: check "
                        "the learning rates are not tiny (or decayed to zero), that the data "
                        "loads, and that the discriminator still sees both real and fake images.",
                        {n: _mean(list(self.history[n])) for n in flat},
                    )
                )
            )
        if swinging:
            out.append(
                self._once(
                    Finding(
                        "oscillating",
                        step,
                        f"the losses ({', '.join(swinging)}) swing wildly from step to step "
                        f"(step {step}) without settling: the two networks are chasing each "
                        "other. What usually helps: lower learning rates, Adam β1 0.5 or 0, a "
                        "gradient penalty, or an image pool for the discriminator.",
                        {n: statistics.pstdev(list(self.history[n])) for n in swinging},
                    )
                )
            )
        return out

    def diversity(self, step: int, generated: float, real: float) -> Finding | None:
        """Compare the spread of generated samples with the data's (mean pairwise distance)."""
        if not real > 0:
            return None
        ratio = generated / real
        if ratio >= 0.25:
            return None
        return self._once(
            Finding(
                "mode_collapse",
                step,
                f"mode collapse at step {step}: samples for different inputs are far less "
                f"varied than the data (pairwise spread {generated:.3g} against the data's "
                f"{real:.3g}, {100 * ratio:.0f}%), so the generator draws the same few images. "
                "What usually helps: a lower generator learning rate, a stronger or different "
                "adversarial loss (WGAN-GP), minibatch diversity in D, or restarting from an "
                "earlier checkpoint.",
                {"diversity": generated, "data_diversity": real, "ratio": ratio},
            )
        )
