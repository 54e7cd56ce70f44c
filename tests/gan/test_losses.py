"""Adversarial losses against hand-computed values; the gradient penalty's gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from transfigure.gan import losses as L
from transfigure.gan.networks import Discriminator, DiscriminatorConfig


def sp(x: float) -> float:  # softplus
    return math.log1p(math.exp(x))


REAL = torch.tensor([0.0, 2.0])
FAKE = torch.tensor([-1.0, 1.0])


def test_bce_discriminator_loss_by_hand():
    expected = (sp(-0.0) + sp(-2.0)) / 2 + (sp(-1.0) + sp(1.0)) / 2
    assert L.bce_discriminator_loss(REAL, FAKE).item() == pytest.approx(expected, rel=1e-6)


def test_bce_one_sided_label_smoothing_by_hand():
    t = 0.9  # real target; fake target stays 0
    real = sum(t * sp(-x) + (1 - t) * sp(x) for x in (0.0, 2.0)) / 2
    fake = (sp(-1.0) + sp(1.0)) / 2
    got = L.bce_discriminator_loss(REAL, FAKE, smoothing=0.1)
    assert got.item() == pytest.approx(real + fake, rel=1e-6)


def test_bce_label_noise_flip_all_by_hand():
    # flip=1 swaps every target: reals are called fake (0), fakes real (smoothed 0.8)
    real = (sp(0.0) + sp(2.0)) / 2
    fake = sum(0.8 * sp(-x) + 0.2 * sp(x) for x in (-1.0, 1.0)) / 2
    got = L.bce_discriminator_loss(REAL, FAKE, smoothing=0.2, flip=1.0)
    assert got.item() == pytest.approx(real + fake, rel=1e-6)


def test_bce_label_noise_flips_the_requested_fraction_reproducibly():
    # confident logits: a flipped real costs ~10, an unflipped one ~0
    real = torch.full((20000,), 10.0)
    fake = torch.full((20000,), -10.0)
    a = L.bce_discriminator_loss(real, fake, flip=0.3, generator=torch.Generator().manual_seed(0))
    b = L.bce_discriminator_loss(real, fake, flip=0.3, generator=torch.Generator().manual_seed(0))
    assert a.item() == b.item()
    assert a.item() == pytest.approx(2 * 0.3 * 10.0, rel=0.03)


def test_nonsaturating_generator_loss_by_hand():
    assert L.nonsaturating_generator_loss(FAKE).item() == pytest.approx(
        (sp(1.0) + sp(-1.0)) / 2, rel=1e-6
    )
    # gradient does not vanish when D confidently rejects the fakes (the point of the trick)
    x = torch.tensor([-8.0], requires_grad=True)
    L.nonsaturating_generator_loss(x).backward()
    assert x.grad.item() == pytest.approx(-1.0 / (1.0 + math.exp(-8.0)), rel=1e-6)


def test_least_squares_by_hand():
    real, fake = torch.tensor([0.5, 1.5]), torch.tensor([0.2, -0.4])
    assert L.least_squares_discriminator_loss(real, fake).item() == pytest.approx(0.175)
    assert L.least_squares_generator_loss(fake).item() == pytest.approx(0.65)


def test_hinge_by_hand():
    real, fake = torch.tensor([0.5, 2.0]), torch.tensor([-2.0, 0.5])
    assert L.hinge_discriminator_loss(real, fake).item() == pytest.approx(1.0)
    assert L.hinge_generator_loss(fake).item() == pytest.approx(0.75)


def test_wasserstein_by_hand():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([0.5, -1.5])
    assert L.wasserstein_discriminator_loss(real, fake).item() == pytest.approx(-2.5)
    assert L.wasserstein_generator_loss(fake).item() == pytest.approx(0.5)


def test_discriminator_losses_reject_unflattened_outputs():
    with pytest.raises(ValueError, match=r"\(B,\)"):
        L.wasserstein_discriminator_loss(torch.zeros(2, 1), torch.zeros(2))
    with pytest.raises(ValueError, match="smoothing"):
        L.bce_discriminator_loss(REAL, FAKE, smoothing=1.0)


class Linear(nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x, *cond):
        return (x * self.w).flatten(1).sum(1)


def test_gradient_penalty_of_a_linear_critic_by_hand():
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    unit = Linear(torch.full((1, 2, 2), 0.5))  # ‖w‖ = 1 → no penalty
    assert L.gradient_penalty(unit, real, fake).item() == pytest.approx(0.0, abs=1e-12)
    steep = Linear(torch.full((1, 2, 2), 1.5))  # ‖w‖ = 3 → (3 - 1)² = 4
    assert L.gradient_penalty(steep, real, fake).item() == pytest.approx(4.0, rel=1e-6)


def test_gradient_penalty_of_a_quadratic_critic_by_hand():
    # D(x) = ½‖x‖² → ∇D(x̂) = x̂; with real = 2·1, fake = 0, x̂ = 2ε·1 and ‖x̂‖ = 2ε·√4 = 4ε
    def critic(x):
        return 0.5 * x.flatten(1).pow(2).sum(1)

    real, fake = torch.full((4, 1, 2, 2), 2.0), torch.zeros(4, 1, 2, 2)
    eps = torch.rand(4, 1, 1, 1, generator=torch.Generator().manual_seed(3))
    expected = ((4 * eps.flatten() - 1) ** 2).mean().item()
    got = L.gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(3))
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_gradient_penalty_passes_conditions_to_the_critic():
    seen = []

    def critic(x, labels):
        seen.append(labels)
        return x.flatten(1).sum(1) * labels

    real = torch.zeros(2, 1, 2, 2)
    labels = torch.tensor([1.0, 2.0])  # ‖∇‖ = label · √4 = 2, 4 → ((1)² + (3)²)/2 = 5
    assert L.gradient_penalty(critic, real, real, labels).item() == pytest.approx(5.0)
    assert seen[0] is labels


class SmoothCritic(nn.Module):
    """Tiny critic with smooth activations, so finite differences are meaningful."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(2 * 2 * 2, 1)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).flatten(1)).view(-1)


def test_gradcheck_gradient_penalty_wrt_inputs_and_critic_weights():
    torch.manual_seed(0)
    critic = SmoothCritic().double()
    real = torch.randn(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)

    def gp_inputs(r, f):  # same ε on every call
        return L.gradient_penalty(critic, r, f, generator=torch.Generator().manual_seed(0))

    assert torch.autograd.gradcheck(gp_inputs, (real, fake))

    names = [n for n, _ in critic.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in critic.parameters())

    def gp_weights(*ps):  # the gradient that actually trains the critic (double backward)
        def f(x):
            return torch.func.functional_call(critic, dict(zip(names, ps, strict=True)), (x,))

        return L.gradient_penalty(
            f, real.detach(), fake.detach(), generator=torch.Generator().manual_seed(0)
        )

    assert torch.autograd.gradcheck(gp_weights, params)


def test_penalty_pulls_the_critic_gradient_norm_towards_one():
    torch.manual_seed(0)
    critic = Discriminator(DiscriminatorConfig(image_size=16, channels=1, width=4, norm="layer"))
    real, fake = torch.rand(16, 1, 16, 16) * 2 - 1, torch.rand(16, 1, 16, 16) * 2 - 1
    probe = 0.5 * (real + fake)

    def distance():
        return (L.gradient_norm(critic, probe) - 1).abs().mean().item()

    before = distance()
    opt = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.0, 0.9))
    for _ in range(60):
        opt.zero_grad()
        (10 * L.gradient_penalty(critic, real, fake)).backward()
        opt.step()
    after = distance()
    assert before > 0.5  # N(0, 0.02) weights: a nearly flat critic
    assert after < 0.1 * before


def test_clip_weights():
    lin = nn.Linear(3, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[-1.0, 0.005, 0.5]] * 3))
    L.clip_weights(lin, 0.01)
    torch.testing.assert_close(lin.weight[0], torch.tensor([-0.01, 0.005, 0.01]))
    assert lin.bias.abs().max() <= 0.01
    with pytest.raises(ValueError):
        L.clip_weights(lin, 0.0)


def test_loss_registry():
    assert set(L.LOSSES) == {"bce", "lsgan", "hinge", "wasserstein"}
    assert L.get_loss("hinge").generator is L.hinge_generator_loss
    with pytest.raises(ValueError, match="unknown loss"):
        L.get_loss("minimax")
