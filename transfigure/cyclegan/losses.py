"""CycleGAN objectives: adversarial (lsgan / vanilla / wgangp), cycle consistency and identity.

The adversarial terms reuse :mod:`transfigure.gan.losses`. Discriminator outputs here are
PatchGAN maps (B, 1, H', W'); every patch is one sample for the loss, which is what the
reference's ``GANLoss`` (an elementwise MSE / BCE averaged over the map) computes.

Scaling follows the reference so that λ_cycle = 10 and λ_idt = 0.5 keep their meaning:
D loss = ½ (loss on real + loss on fake); G adversarial loss = MSE(D(G(x)), 1) for lsgan,
−log D(G(x)) for vanilla, −E[D(G(x))] for wgangp.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfigure.gan.losses import (
    bce_discriminator_loss,
    gradient_penalty,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    nonsaturating_generator_loss,
    wasserstein_discriminator_loss,
    wasserstein_generator_loss,
)

__all__ = [
    "GAN_MODES",
    "GANLoss",
    "discriminator_loss",
    "generator_adversarial_loss",
    "patch_gradient_penalty",
    "cycle_loss",
    "identity_loss",
]

GAN_MODES = ("lsgan", "vanilla", "wgangp")


def _check_mode(mode: str) -> None:
    if mode not in GAN_MODES:
        raise ValueError(f"unknown gan_mode {mode!r}; expected one of {', '.join(GAN_MODES)}")


def discriminator_loss(real_pred: Tensor, fake_pred: Tensor, mode: str = "lsgan") -> Tensor:
    """Discriminator loss on PatchGAN outputs, without any gradient penalty.

    Args:
        real_pred: D's raw outputs on real images, any shape (B, ...) — e.g. (B, 1, 30, 30).
        fake_pred: D's raw outputs on (pooled, detached) fakes, any shape.
        mode: ``lsgan`` → ½[(D(y)−1)² + D(G(x))²] averaged over patches; ``vanilla`` →
            ½[BCE(D(y), 1) + BCE(D(G(x)), 0)] on logits; ``wgangp`` → E[D(G(x))] − E[D(y)]
            (add :func:`patch_gradient_penalty` for WGAN-GP).

    Returns:
        Scalar to minimise.
    """
    _check_mode(mode)
    real, fake = real_pred.flatten(), fake_pred.flatten()
    if mode == "lsgan":
        # gan.losses already carries the ½ of Mao et al. on each term
        return least_squares_discriminator_loss(real, fake)
    if mode == "vanilla":
        return 0.5 * bce_discriminator_loss(real, fake)
    return wasserstein_discriminator_loss(real, fake)


def generator_adversarial_loss(fake_pred: Tensor, mode: str = "lsgan") -> Tensor:
    """Adversarial loss of a generator from D's raw outputs on its fakes (any shape)."""
    _check_mode(mode)
    fake = fake_pred.flatten()
    if mode == "lsgan":
        # The reference's G term is MSE(D(G(x)), 1) without the ½ of Mao et al.; undo it so the
        # balance against λ_cycle = 10 is the reference's.
        return 2.0 * least_squares_generator_loss(fake)
    if mode == "vanilla":
        return nonsaturating_generator_loss(fake)
    return wasserstein_generator_loss(fake)


def patch_gradient_penalty(
    discriminator: nn.Module,
    real: Tensor,
    fake: Tensor,
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP penalty for a PatchGAN critic: ``E[(‖∇ₓ̂ mean_patches D(x̂)‖₂ − 1)²]``.

    The critic's score of an image is the mean of its patch map, the quantity the Wasserstein
    loss above uses. (The reference differentiates the *sum* of the patches, which ties the
    penalty's scale to the image size; it also never applies the penalty in CycleGAN.)

    Args:
        discriminator: (B, C, H, W) → (B, 1, H', W').
        real: real images (B, C, H, W); fake: detached fakes of the same shape.
        generator: randomness for the interpolation weights.

    Returns:
        Scalar penalty (multiply by λ_gp).
    """

    def critic(x: Tensor) -> Tensor:
        return discriminator(x).flatten(1).mean(1)

    return gradient_penalty(critic, real, fake, generator=generator)


def cycle_loss(reconstructed: Tensor, real: Tensor) -> Tensor:
    """Cycle consistency ‖F(G(x)) − x‖₁ (mean absolute error); multiply by λ_A or λ_B."""
    return F.l1_loss(reconstructed, real)


def identity_loss(same: Tensor, real: Tensor) -> Tensor:
    """Identity mapping ‖G(y) − y‖₁ (mean absolute error); multiply by λ·λ_idt."""
    return F.l1_loss(same, real)


class GANLoss(nn.Module):
    """The reference's per-target interface: ``loss(pred, target_is_real)``.

    ``MSE(pred, 1 or 0)`` (lsgan), BCE on logits against 1 or 0 (vanilla), ``∓mean(pred)``
    (wgangp). ``½ (loss(D(y), True) + loss(D(G(x)), False))`` equals :func:`discriminator_loss`
    for lsgan and vanilla; ``loss(D(G(x)), True)`` equals :func:`generator_adversarial_loss`.
    """

    def __init__(self, mode: str = "lsgan") -> None:
        super().__init__()
        _check_mode(mode)
        self.mode = mode

    def forward(self, pred: Tensor, target_is_real: bool) -> Tensor:
        if target_is_real:
            return generator_adversarial_loss(pred, self.mode)
        if self.mode == "lsgan":
            return F.mse_loss(pred, torch.zeros_like(pred))
        if self.mode == "vanilla":
            return F.binary_cross_entropy_with_logits(pred, torch.zeros_like(pred))
        return pred.mean()
