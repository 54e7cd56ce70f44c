"""CycleGAN objectives: known values, agreement with the reference's GANLoss, gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transfigure.cyclegan.losses import (
    GANLoss,
    cycle_loss,
    discriminator_loss,
    generator_adversarial_loss,
    identity_loss,
    patch_gradient_penalty,
)


def test_lsgan_known_values():
    real = torch.tensor([[[[1.0, 0.0], [2.0, 1.0]]]])  # (1, 1, 2, 2): (D-1)² = 0, 1, 1, 0
    fake = torch.tensor([[[[0.0, 1.0], [0.0, 1.0]]]])  # D² = 0, 1, 0, 1
    # ½ (mean 0.5 + mean 0.5)
    assert discriminator_loss(real, fake, "lsgan").item() == pytest.approx(0.5)
    # reference G term: MSE(D(G(x)), 1) = mean(1, 0, 1, 0)
    assert generator_adversarial_loss(fake, "lsgan").item() == pytest.approx(0.5)


def test_vanilla_known_values():
    zeros = torch.zeros(2, 1, 3, 3)
    # BCE(0 logit, any target) = log 2
    assert discriminator_loss(zeros, zeros, "vanilla").item() == pytest.approx(
        torch.log(torch.tensor(2.0)).item()
    )
    big = torch.full((1, 1, 2, 2), 20.0)
    assert generator_adversarial_loss(big, "vanilla").item() == pytest.approx(0.0, abs=1e-8)
    assert generator_adversarial_loss(-big, "vanilla").item() == pytest.approx(20.0, rel=1e-6)


def test_wgan_known_values():
    real = torch.full((2, 1, 2, 2), 3.0)
    fake = torch.full((2, 1, 2, 2), -1.0)
    assert discriminator_loss(real, fake, "wgangp").item() == pytest.approx(-4.0)
    assert generator_adversarial_loss(fake, "wgangp").item() == pytest.approx(1.0)


@pytest.mark.parametrize("mode", ["lsgan", "vanilla", "wgangp"])
def test_ganloss_module_agrees_with_functions(mode):
    g = torch.Generator().manual_seed(0)
    real = torch.randn(3, 1, 4, 4, generator=g)
    fake = torch.randn(3, 1, 4, 4, generator=g)
    loss = GANLoss(mode)
    if mode == "wgangp":
        expected_d = loss(fake, False) - real.mean()
    else:
        expected_d = 0.5 * (loss(real, True) + loss(fake, False))
    torch.testing.assert_close(discriminator_loss(real, fake, mode), expected_d)
    torch.testing.assert_close(generator_adversarial_loss(fake, mode), loss(fake, True))
    if mode == "lsgan":  # the reference's MSELoss
        torch.testing.assert_close(loss(real, True), F.mse_loss(real, torch.ones_like(real)))


def test_bad_mode():
    with pytest.raises(ValueError, match="gan_mode"):
        discriminator_loss(torch.zeros(1), torch.zeros(1), "hinge")
    with pytest.raises(ValueError, match="gan_mode"):
        GANLoss("wgan")


@pytest.mark.parametrize("mode", ["lsgan", "vanilla", "wgangp"])
def test_losses_gradcheck(mode):
    g = torch.Generator().manual_seed(1)
    real = torch.randn(2, 1, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    fake = torch.randn(2, 1, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda r, f: discriminator_loss(r, f, mode), (real, fake))
    assert torch.autograd.gradcheck(lambda f: generator_adversarial_loss(f, mode), (fake,))


def test_cycle_and_identity_are_l1():
    a = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]]])
    b = torch.zeros_like(a)
    assert cycle_loss(a, b).item() == pytest.approx(0.625)
    assert identity_loss(a, b).item() == pytest.approx(0.625)
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    y = torch.randn(1, 3, 4, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: cycle_loss(t, y), (x,))


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = conv1x1 with weight w: the per-image mean score has gradient w/(H·W) per pixel, so
    its norm is ‖w‖·sqrt(H·W)/(H·W) = ‖w‖/sqrt(H·W) everywhere."""
    disc = nn.Conv2d(3, 1, 1, bias=False)
    with torch.no_grad():
        disc.weight.copy_(torch.tensor([3.0, 0.0, 4.0]).view(1, 3, 1, 1))
    real = torch.randn(2, 3, 4, 4)
    fake = torch.randn(2, 3, 4, 4)
    gp = patch_gradient_penalty(disc, real, fake, generator=torch.Generator().manual_seed(0))
    norm = 5.0 / 4.0
    assert gp.item() == pytest.approx((norm - 1.0) ** 2)
    gp.backward()  # the penalty reaches the critic's weights
    assert disc.weight.grad is not None and disc.weight.grad.abs().sum() > 0


def test_gradient_penalty_is_zero_for_unit_gradient():
    disc = nn.Conv2d(1, 1, 1, bias=False)
    with torch.no_grad():
        disc.weight.fill_(2.0)  # per-image mean over a 2×2 map: gradient norm 2·2/4 = 1
    gp = patch_gradient_penalty(disc, torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2))
    assert gp.item() == pytest.approx(0.0, abs=1e-10)
