"""Adversarial losses, written once as functions and paired by name for the training loop.

Every discriminator loss takes the raw outputs (logits / critic scores) on a real and a fake
batch, shape ``(B,)``, and returns a scalar to *minimise*; every generator loss takes the
outputs on a fake batch. Conventions follow the papers:

- ``bce``: Goodfellow et al. (2014) with the non-saturating generator loss, one-sided label
  smoothing (Salimans et al. 2016) and label noise (flipped labels, as in "ganhacks").
- ``lsgan``: least squares, Mao et al. (2017), targets a=0, b=c=1, with the paper's 1/2 factor.
- ``hinge``: Lim & Ye (2017) / Miyato et al. (2018).
- ``wasserstein``: Arjovsky et al. (2017); pair it with ``gradient_penalty`` (Gulrajani et al.
  2017) or ``clip_weights`` (the original WGAN).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "bce_discriminator_loss",
    "nonsaturating_generator_loss",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "hinge_discriminator_loss",
    "hinge_generator_loss",
    "wasserstein_discriminator_loss",
    "wasserstein_generator_loss",
    "gradient_penalty",
    "gradient_norm",
    "clip_weights",
    "LossPair",
    "LOSSES",
    "get_loss",
]


def _check_pair(real: Tensor, fake: Tensor) -> None:
    if real.ndim != 1 or fake.ndim != 1:
        raise ValueError(
            f"expected outputs of shape (B,), got {tuple(real.shape)} and {tuple(fake.shape)}"
        )


def bce_discriminator_loss(
    real_logits: Tensor,
    fake_logits: Tensor,
    *,
    smoothing: float = 0.0,
    flip: float = 0.0,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Binary cross-entropy of D: ``-log D(x) - log(1 - D(G(z)))``, on logits.

    Args:
        real_logits: D's logits on real images, ``(B,)``.
        fake_logits: D's logits on generated images, ``(B',)``.
        smoothing: one-sided label smoothing: real targets become ``1 - smoothing``; fake
            targets stay 0 (smoothing them too would reward D for calling fakes real).
        flip: label noise: each target is swapped (real ↔ fake) with this probability.
        generator: randomness for the flips.

    Returns:
        Scalar: mean BCE over the real batch plus mean BCE over the fake batch.
    """
    _check_pair(real_logits, fake_logits)
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"smoothing must be in [0, 1), got {smoothing}")
    if not 0.0 <= flip <= 1.0:
        raise ValueError(f"flip must be in [0, 1], got {flip}")
    real_is_real = torch.ones_like(real_logits)
    fake_is_real = torch.zeros_like(fake_logits)
    if flip > 0.0:
        real_is_real = _flip(real_is_real, flip, generator)
        fake_is_real = _flip(fake_is_real, flip, generator)
    # whichever samples are labelled "real" get the smoothed target
    real_target = real_is_real * (1.0 - smoothing)
    fake_target = fake_is_real * (1.0 - smoothing)
    return F.binary_cross_entropy_with_logits(
        real_logits, real_target
    ) + F.binary_cross_entropy_with_logits(fake_logits, fake_target)


def _flip(target: Tensor, p: float, generator: torch.Generator | None) -> Tensor:
    device = generator.device if generator is not None else target.device
    u = torch.rand(target.shape, generator=generator, device=device).to(target.device)
    return torch.where(u < p, 1.0 - target, target)


def nonsaturating_generator_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating G loss ``-log D(G(z))`` (Goodfellow et al. 2014, §3), on logits.

    Args:
        fake_logits: D's logits on generated images, ``(B,)``.

    Returns:
        Scalar ``mean(softplus(-logits))``.
    """
    if fake_logits.ndim != 1:
        raise ValueError(f"expected logits of shape (B,), got {tuple(fake_logits.shape)}")
    return F.softplus(-fake_logits).mean()


def least_squares_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """LSGAN D loss ``½ E[(D(x) - 1)²] + ½ E[D(G(z))²]`` (Mao et al. 2017, eq. 2, a=0, b=1).

    Args:
        real: D's outputs on real images, ``(B,)``.
        fake: D's outputs on generated images, ``(B',)``.
    """
    _check_pair(real, fake)
    return 0.5 * (real - 1.0).pow(2).mean() + 0.5 * fake.pow(2).mean()


def least_squares_generator_loss(fake: Tensor) -> Tensor:
    """LSGAN G loss ``½ E[(D(G(z)) - 1)²]`` (c = 1)."""
    return 0.5 * (fake - 1.0).pow(2).mean()


def hinge_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Hinge D loss ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``."""
    _check_pair(real, fake)
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_generator_loss(fake: Tensor) -> Tensor:
    """Hinge G loss ``-E[D(G(z))]``."""
    return -fake.mean()


def wasserstein_discriminator_loss(real: Tensor, fake: Tensor) -> Tensor:
    """Critic loss ``E[D(G(z))] - E[D(x)]``: minus the Wasserstein-1 estimate.

    Args:
        real: critic scores on real images, ``(B,)``.
        fake: critic scores on generated images, ``(B',)``.
    """
    _check_pair(real, fake)
    return fake.mean() - real.mean()


def wasserstein_generator_loss(fake: Tensor) -> Tensor:
    """WGAN G loss ``-E[D(G(z))]``."""
    return -fake.mean()


def gradient_penalty(
    critic: Callable[..., Tensor],
    real: Tensor,
    fake: Tensor,
    *cond: Tensor,
    generator: torch.Generator | None = None,
    target: float = 1.0,
) -> Tensor:
    """WGAN-GP gradient penalty ``E[(‖∇ D(x̂)‖₂ - 1)²]`` on random interpolates (Gulrajani et al.).

    ``x̂ = ε x + (1 - ε) x̃`` with one ``ε ~ U[0, 1]`` per sample. The graph is kept
    (``create_graph=True``) so the penalty can be back-propagated into the critic's weights.
    Multiply by the penalty weight λ (10 in the paper) yourself.

    Args:
        critic: callable ``(x, *cond) -> (B,)`` scores.
        real: real images ``(B, C, H, W)``.
        fake: generated images, same shape (detach them for the critic step).
        *cond: extra critic inputs (e.g. the labels ``(B,)`` of a conditional critic), passed
            unchanged.
        generator: randomness for ε (on ``real``'s device, or CPU: ε is moved there).
        target: the norm the gradient is pulled towards (1 in the paper).

    Returns:
        Scalar penalty.
    """
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must match, got {tuple(real.shape)}, {tuple(fake.shape)}")
    eps_shape = (real.shape[0],) + (1,) * (real.ndim - 1)
    gen_device = generator.device if generator is not None else real.device
    eps = torch.rand(eps_shape, generator=generator, device=gen_device, dtype=real.dtype)
    eps = eps.to(real.device)
    interpolates = (eps * real + (1.0 - eps) * fake).requires_grad_(True)
    norms = gradient_norm(critic, interpolates, *cond, create_graph=True)
    return (norms - target).pow(2).mean()


def gradient_norm(
    critic: Callable[..., Tensor], x: Tensor, *cond: Tensor, create_graph: bool = False
) -> Tensor:
    """Per-sample L2 norm of ``∇ₓ D(x)``, shape ``(B,)``.

    Args:
        critic: callable ``(x, *cond) -> (B,)`` scores; samples must not interact (no batch
            norm), otherwise the per-sample gradient is not what this measures.
        x: inputs ``(B, ...)``; made to require grad if it does not.
        *cond: extra critic inputs.
        create_graph: keep the graph for a higher-order backward (the penalty needs it).
    """
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    scores = critic(x, *cond)
    (grad,) = torch.autograd.grad(
        scores.sum(), x, create_graph=create_graph, retain_graph=create_graph
    )
    return grad.flatten(1).norm(2, dim=1)


@torch.no_grad()
def clip_weights(module: nn.Module, clip_value: float = 0.01) -> None:
    """Clamp every parameter into ``[-c, c]`` in place: the original WGAN's Lipschitz constraint."""
    if clip_value <= 0:
        raise ValueError(f"clip_value must be positive, got {clip_value}")
    for p in module.parameters():
        p.clamp_(-clip_value, clip_value)


@dataclass(frozen=True)
class LossPair:
    """A discriminator loss ``(real, fake) -> scalar`` and its generator loss ``fake -> scalar``."""

    discriminator: Callable[..., Tensor]
    generator: Callable[[Tensor], Tensor]


LOSSES: dict[str, LossPair] = {
    "bce": LossPair(bce_discriminator_loss, nonsaturating_generator_loss),
    "lsgan": LossPair(least_squares_discriminator_loss, least_squares_generator_loss),
    "hinge": LossPair(hinge_discriminator_loss, hinge_generator_loss),
    "wasserstein": LossPair(wasserstein_discriminator_loss, wasserstein_generator_loss),
}


def get_loss(name: str) -> LossPair:
    """Return the loss pair called ``name`` (one of ``LOSSES``)."""
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}") from None
