"""The GAN step: networks, optimisers and one update of D (and of G every ``n_critic`` steps).

DCGAN, WGAN-GP and CGAN share this code; what differs is the :class:`TrainConfig`. Each step
follows the two-phase update of the papers (pytorch/examples ``dcgan``; Gulrajani et al. 2017,
Algorithm 1)::

    (1) update D: minimise  L_D(D(x), D(G(z)).detach())  [+ λ·GP]      every step
    (2) update G: minimise  L_G(D(G(z)))                                 every n_critic steps

The run folder around it (files, epochs, resume) is :mod:`transfigure.gan.train`.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler

import transfigure
from transfigure import runtime
from transfigure.gan.config import TrainConfig
from transfigure.gan.losses import clip_weights, get_loss, gradient_penalty
from transfigure.gan.networks import Discriminator, Generator

__all__ = [
    "EMA",
    "GANTrainer",
    "NonFiniteLossError",
    "TrainingError",
    "epoch_batches",
    "recalibrate_batch_norm",
]

_STATE_FORMAT = "transfigure.gan.train/1"


class TrainingError(Exception):
    """A training run cannot start or continue; the message says why and what to do."""


class NonFiniteLossError(TrainingError):
    """A loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


class EMA:
    """Exponential moving average of a network's weights (buffers are copied as they are).

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so short runs
    are not dominated by the random initialisation (the TensorFlow ``num_updates`` rule).

    Args:
        model: the network to track; a frozen copy is made.
        decay: the long-run decay in [0, 1).
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))
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
    g: nn.Module, *, batches: int = 8, batch_size: int = 64, seed: int = 0
) -> nn.Module:
    """Replace a generator's batch-norm running statistics by exact averages over random
    latents ("standing statistics", Brock et al. 2019), then switch it to eval mode.

    An averaged generator's weights never produced the running statistics it carries (those
    belong to the live generator), so they are re-estimated before sampling. Uses its own
    seeded generator: no global random state is consumed.

    Args:
        g: the generator (modified in place).
        batches, batch_size: amount of latents averaged over.
        seed: seed of the latents and labels.
    """
    norms = [m for m in g.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return g.eval()
    device = next(g.parameters()).device
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    g.train()
    gen = torch.Generator().manual_seed(seed)
    k = g.config.n_classes
    for _ in range(batches):
        z = torch.randn(batch_size, g.config.latent_dim, generator=gen).to(device)
        labels = torch.randint(0, k, (batch_size,), generator=gen).to(device) if k else None
        g(z, labels) if k else g(z)
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return g.eval()


# newer PyTorch renames DDP's broadcast_buffers (and warns about the old name)
_NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
    else {"broadcast_buffers": False}
)


class GANTrainer:
    """The networks, optimisers and counters of one run, and the step that updates them.

    Args:
        config: the run's configuration (fitted to the data: see ``TrainConfig.for_data``).
        device: where to train.

    Attributes:
        generator, discriminator: the bare networks (``generator_ddp`` / ``discriminator_ddp``
            are the DistributedDataParallel wrappers when running under torchrun, else the same).
        ema: the moving average of G, or ``None`` when ``ema_decay == 0``.
        epoch, step_in_epoch, global_step, g_steps: where the run stands.
    """

    def __init__(self, config: TrainConfig, *, device: torch.device | str = "cpu") -> None:
        config.validate()
        self.config = config
        self.device = torch.device(device)
        self.losses = get_loss(config.loss)
        self.generator = Generator(config.generator).to(self.device)
        self.discriminator = Discriminator(config.discriminator).to(self.device)
        self.ema = EMA(self.generator, config.ema_decay) if config.ema_decay > 0 else None
        self.opt_g = torch.optim.Adam(
            self.generator.parameters(), lr=config.lr_g, betas=config.betas
        )
        self.opt_d = torch.optim.Adam(
            self.discriminator.parameters(), lr=config.lr_d, betas=config.betas
        )
        # fp16 gradients underflow without loss scaling; bf16 has fp32's range and needs none
        use_scaler = config.precision == "fp16" and self.device.type == "cuda"
        self.scaler_g = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.scaler_d = torch.amp.GradScaler("cuda", enabled=use_scaler)
        self.generator_ddp: nn.Module = self.generator
        self.discriminator_ddp: nn.Module = self.discriminator
        if runtime.is_distributed():
            ids = [self.device.index] if self.device.type == "cuda" else None
            # buffers are not broadcast: D's batch-norm statistics are never used in eval mode,
            # and G's are re-estimated before sampling (recalibrate_batch_norm)
            self.generator_ddp = DistributedDataParallel(
                self.generator, device_ids=ids, **_NO_BUFFER_SYNC
            )
            self.discriminator_ddp = DistributedDataParallel(
                self.discriminator, device_ids=ids, **_NO_BUFFER_SYNC
            )
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.g_steps = 0

    def _amp(self):
        return runtime.autocast(self.device, self.config.precision)

    def train_step(self, real: Tensor, labels: Tensor | None = None) -> dict[str, float]:
        """One discriminator update, and a generator update every ``n_critic`` calls.

        Args:
            real: real images ``(B, C, S, S)`` in [-1, 1] on the trainer's device.
            labels: ``(B,)`` class indices (used only by a conditional GAN).

        Returns:
            This step's numbers, averaged over processes: ``loss_d`` (without the penalty),
            ``d_real``, ``d_fake`` (mean raw outputs), ``gp`` and, on generator steps, ``loss_g``.
        """
        cfg = self.config
        cond: tuple[Tensor, ...] = (labels,) if cfg.conditional else ()
        b = real.shape[0]
        g_turn = (self.global_step + 1) % cfg.n_critic == 0
        if cfg.flip:
            mask = torch.rand(b, device=real.device) < 0.5
            real = torch.where(mask[:, None, None, None], real.flip(3), real)

        # (1) update D: maximise log D(x) + log(1 - D(G(z))) (or its loss's equivalent).
        # The fakes keep their graph on generator turns so that step (2) reuses them, as in
        # pytorch/examples dcgan; D only ever sees them detached.
        z = torch.randn(b, cfg.generator.latent_dim, device=self.device)
        with torch.set_grad_enabled(g_turn), self._amp():
            fake = (self.generator_ddp if g_turn else self.generator)(z, *cond)
        with self._amp():
            d_real = self.discriminator_ddp(real, *cond).float()
            d_fake = self.discriminator_ddp(fake.detach(), *cond).float()
            if cfg.mismatch and cfg.conditional:
                # matching-aware D (Reed et al. 2016, GAN-CLS): real images under a wrong label
                # also count as fake, so D learns label-image consistency from real data; the
                # fake side of every loss then averages fakes and mismatches, ½ each
                k = cfg.generator.n_classes
                wrong = (labels + torch.randint(1, k, labels.shape, device=labels.device)) % k
                d_fake = torch.cat([d_fake, self.discriminator_ddp(real, wrong).float()])
        loss_d = self._d_loss(d_real, d_fake)
        gp = torch.zeros((), device=self.device)
        if cfg.gp_weight > 0:
            gp = self._penalty(real, fake.detach(), cond)
        self.opt_d.zero_grad(set_to_none=True)
        self.scaler_d.scale(loss_d + cfg.gp_weight * gp).backward()
        self.scaler_d.step(self.opt_d)
        self.scaler_d.update()
        if cfg.clip_value > 0:
            clip_weights(self.discriminator, cfg.clip_value)

        # (2) update G: maximise log D(G(z)) (the non-saturating loss) every n_critic steps.
        # The bare D is used so no gradient of D is computed or synchronised here.
        loss_g = torch.zeros((), device=self.device)
        if g_turn:
            self.discriminator.requires_grad_(False)
            with self._amp():
                loss_g = self.losses.generator(self.discriminator(fake, *cond).float())
            self.opt_g.zero_grad(set_to_none=True)
            self.scaler_g.scale(loss_g).backward()
            self.scaler_g.step(self.opt_g)
            self.scaler_g.update()
            self.discriminator.requires_grad_(True)
            if self.ema is not None:
                self.ema.update(self.generator)
            self.g_steps += 1
        self.global_step += 1

        stats = torch.stack(
            [
                loss_d.detach(),
                gp.detach(),
                loss_g.detach(),
                d_real.detach().mean(),
                d_fake.detach().mean(),
            ]
        )
        values = runtime.all_reduce_mean(stats).tolist()  # one sync: every rank sees the same
        out = dict(zip(("loss_d", "gp", "loss_g", "d_real", "d_fake"), values, strict=True))
        if not g_turn:
            del out["loss_g"]
        if cfg.gp_weight <= 0:
            del out["gp"]
        return out

    def _d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        cfg = self.config
        if cfg.loss == "bce":
            return self.losses.discriminator(
                d_real, d_fake, smoothing=cfg.label_smoothing, flip=cfg.label_noise
            )
        return self.losses.discriminator(d_real, d_fake)

    def _penalty(self, real: Tensor, fake: Tensor, cond: tuple[Tensor, ...]) -> Tensor:
        if self.config.precision == "fp16":
            # the penalty's double backward in fp16 would need the loss scale inside
            # autograd.grad; computing it in fp32 is simpler and exact
            with torch.autocast(self.device.type, enabled=False):
                return gradient_penalty(self.discriminator_ddp, real.float(), fake.float(), *cond)
        with self._amp():
            return gradient_penalty(self.discriminator_ddp, real, fake.to(real.dtype), *cond)

    def sampling_generator(self, *, seed: int = 0) -> nn.Module:
        """A copy of the EMA generator (or G) with recalibrated batch norm, in eval mode."""
        source = self.ema.model if self.ema is not None else self.generator
        g = copy.deepcopy(source).requires_grad_(False)
        return recalibrate_batch_norm(g, batch_size=self.config.batch_size, seed=seed)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly here, except the random states."""
        return {
            "format": _STATE_FORMAT,
            "version": transfigure.__version__,
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "g_steps": self.g_steps,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != _STATE_FORMAT:
            raise TrainingError(f"not a GAN training state (format {state.get('format')!r})")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.ema is not None:
            if state["ema"] is None:
                raise TrainingError("the checkpoint has no EMA generator but ema_decay > 0")
            self.ema.load_state_dict(state["ema"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        if state["scaler_g"]:
            self.scaler_g.load_state_dict(state["scaler_g"])
            self.scaler_d.load_state_dict(state["scaler_d"])
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.g_steps = int(state["g_steps"])


def epoch_batches(
    n: int, *, epoch: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """This process's batches of dataset indices for ``epoch``: a shuffle that depends only on
    ``(seed, epoch)`` (``DistributedSampler``'s), split across ranks; incomplete batches dropped.
    Because the order is a pure function, resuming mid-epoch just skips the batches done."""
    sampler = DistributedSampler(
        range(n),
        num_replicas=world_size,
        rank=rank,
        shuffle=True,
        seed=seed,
        drop_last=world_size > 1,
    )
    sampler.set_epoch(epoch)
    indices = list(sampler)
    return [
        indices[i : i + batch_size] for i in range(0, len(indices) - batch_size + 1, batch_size)
    ]
