"""One CycleGAN update against the algorithm written out in plain PyTorch.

The written-out update is the published CycleGAN training step with the reference
implementation's settings (checked against that implementation on identical weights, batches
and pool draws by ``benchmarks/cyclegan_lockstep.py``): LSGAN targets 1/0, λ_A = λ_B = 10, identity
weight 0.5·λ, the discriminator loss halved, one Adam (lr 2e-4, betas 0.5/0.999) over both
generators and one over both discriminators, the generators updated first, then ``D_A`` on real
B against ``G_A``'s fakes and ``D_B`` on real A against ``G_B``'s, the fakes being those made
before the generator update (through the pool, which returns them unchanged while it fills).
"""

from __future__ import annotations

import copy
import itertools

import torch
import torch.nn.functional as F

from transfigure.cyclegan.config import TrainConfig
from transfigure.cyclegan.step import CycleGANStep


def _written_out_step(nets: dict, opts: tuple, real_A, real_B, lam: float = 10.0) -> dict:
    G_A, G_B, D_A, D_B = nets["G_A"], nets["G_B"], nets["D_A"], nets["D_B"]
    opt_G, opt_D = opts

    def mse(pred, target: float):
        return F.mse_loss(pred, torch.full_like(pred, target))

    # (1) generators, discriminators frozen
    fake_B, fake_A = G_A(real_A), G_B(real_B)
    for d in (D_A, D_B):
        d.requires_grad_(False)
    losses = {
        "idt_A": F.l1_loss(G_A(real_B), real_B) * lam * 0.5,
        "idt_B": F.l1_loss(G_B(real_A), real_A) * lam * 0.5,
        "G_A": mse(D_A(fake_B), 1.0),
        "G_B": mse(D_B(fake_A), 1.0),
        "cycle_A": F.l1_loss(G_B(fake_B), real_A) * lam,
        "cycle_B": F.l1_loss(G_A(fake_A), real_B) * lam,
    }
    opt_G.zero_grad()
    sum(losses.values()).backward()
    opt_G.step()
    # (2) discriminators, on the fakes made before the generator update
    for d in (D_A, D_B):
        d.requires_grad_(True)
    losses["D_A"] = 0.5 * (mse(D_A(real_B), 1.0) + mse(D_A(fake_B.detach()), 0.0))
    losses["D_B"] = 0.5 * (mse(D_B(real_A), 1.0) + mse(D_B(fake_A.detach()), 0.0))
    opt_D.zero_grad()
    (losses["D_A"] + losses["D_B"]).backward()
    opt_D.step()
    return {k: v.detach() for k, v in losses.items()}


def _relative(ours: list[torch.Tensor], theirs: list[torch.Tensor]) -> float:
    num = sum(float((a - b).double().square().sum()) for a, b in zip(ours, theirs, strict=True))
    return (num / sum(float(b.double().square().sum()) for b in theirs)) ** 0.5


def test_updates_equal_the_written_out_algorithm():
    """Each update, from the same state (weights, Adam moments), computes the written-out
    algorithm's losses and gradients, to float rounding.

    The states are synchronised before every step rather than compared after several: a
    rounding-level difference (the step runs G's two inputs as one batch, the written-out
    algorithm one at a time) turns into ±lr at Adam's first step for any weight whose gradient
    is itself rounding noise, and GAN training compounds that within a few steps.

    48 px, not less: a discriminator this narrow on a 32-px image has channels of a few pixels
    with almost no spread before its instance norms, where a rounding-level change of its input
    moves a LeakyReLU kink and with it 2 % of the gradient (in float64 as much as in float32).
    """
    cfg = TrainConfig(
        data_root="unused", ngf=4, ndf=4, net_g="resnet_6blocks", load_size=52, crop_size=48,
    )  # fmt: skip
    step = CycleGANStep(cfg, device="cpu", precision="fp32")
    step.start_epoch(0)
    nets = {k: copy.deepcopy(v) for k, v in step.networks().items()}
    before = step.G_A.model[1].weight.detach().clone()

    def adam(*names):
        params = itertools.chain(*(nets[n].parameters() for n in names))
        return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))

    opts = (adam("G_A", "G_B"), adam("D_A", "D_B"))
    g = torch.Generator().manual_seed(0)
    for _ in range(3):  # the pool still fills: it hands back the new fakes
        for name, net in step.networks().items():
            nets[name].load_state_dict(net.state_dict())
        for theirs, ours in zip(opts, (step.opt_G, step.opt_D), strict=True):
            theirs.load_state_dict(ours.state_dict())
        real_A = torch.rand(1, 3, 48, 48, generator=g) * 2 - 1
        real_B = torch.rand(1, 3, 48, 48, generator=g) * 2 - 1
        got = step.train_step({"A": real_A.clone(), "B": real_B.clone()})
        expected = _written_out_step(nets, opts, real_A, real_B)
        for name, value in expected.items():
            torch.testing.assert_close(
                got[name], value, rtol=1e-5, atol=1e-6, msg=lambda m, n=name: f"{n}: {m}"
            )
        for name, net in step.networks().items():
            ours = [p.grad for p in net.parameters()]
            theirs = [p.grad for p in nets[name].parameters()]
            assert _relative(ours, theirs) < 1e-3, name
    assert not torch.equal(step.G_A.model[1].weight, before)  # the nets did learn
