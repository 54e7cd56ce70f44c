"""The GAN step: one update of D (and of G every ``n_critic`` steps), on the training engine.

DCGAN, WGAN-GP and CGAN share this code; what differs is the :class:`TrainConfig`. Each step
follows the two-phase update of the papers (pytorch/examples ``dcgan``; Gulrajani et al. 2017,
Algorithm 1)::

    (1) update D: minimise  L_D(D(x), D(G(z)).detach())  [+ λ·GP]      every step
    (2) update G: minimise  L_G(D(G(z)))                                 every n_critic steps

With ``mode_seeking`` λ > 0 (MSGAN, Mao et al. 2019) the second half of each batch of fakes
reuses the first half's labels, and G also minimises ``λ·mean(1 / (r + ε))`` over the pairs,
``r = mean|G(z₁) − G(z₂)| / mean|z₁ − z₂|``: two latents that give nearly the same image cost G,
whatever D can or cannot see (a layer-norm D is blind to an image's contrast, for one).

With an auxiliary classifier (AC-GAN, ``d_conditioning="auxiliary"``) D also minimises
``w·CE(C(x), y)`` on the real images and G ``w·CE(C(G(z, y)), y)``. Odena et al. (2017) train
D's classifier on the fakes too; here it learns from real images only, so G is rewarded for
looking like the real class, never for a code that G and D agree on between themselves.

The run folder around it (files, epochs, resume, EMA, guards) is the engine's
(:func:`transfigure.training.train`). Exports ``generator.safetensors`` (the EMA generator with
recalibrated batch norm, for ``transfigure sample``) and ``discriminator.safetensors`` /
``critic.safetensors``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfigure import runtime
from transfigure.checkpoint import save_model
from transfigure.gan.config import TrainConfig
from transfigure.gan.data import GANData, resolve_dataset
from transfigure.gan.losses import clip_weights, get_loss, gradient_penalty
from transfigure.gan.networks import Discriminator, Generator
from transfigure.gan.sampling import generate, latents, to_unit_range
from transfigure.training.ema import recalibrate_batch_norm
from transfigure.training.monitor import spread
from transfigure.training.step import Step

__all__ = ["CGANStep", "DCGANStep", "GANStep", "WGANGPStep", "sampling_copy"]

GAN_PANELS = (
    ("loss", (("loss_d", "D loss"), ("loss_g", "G loss"))),
    ("critic", (("wasserstein", "Wasserstein estimate"), ("gp", "gradient penalty"))),
    (
        "class",
        (
            ("loss_class_d", "D class loss (real)"),
            ("loss_class_g", "G class loss"),
            ("class_acc_fake", "fakes filed under their label"),
        ),
    ),
    ("modes", (("mode_seeking", "image / latent distance of paired fakes"),)),
)

MODE_SEEKING_EPS = 1e-5  # MSGAN's ε in 1 / (r + ε)


@torch.no_grad()
def sampling_copy(g: nn.Module, *, batch_size: int = 64, seed: int = 0) -> nn.Module:
    """A copy of generator ``g`` with batch-norm statistics re-estimated over random latents
    (its running statistics belong to the live generator when ``g`` is an average), in eval
    mode."""
    g = copy.deepcopy(g).requires_grad_(False)
    device = next(g.parameters()).device
    k = g.config.n_classes

    def forward(gen: torch.Generator) -> None:
        z = torch.randn(batch_size, g.config.latent_dim, generator=gen).to(device)
        if k:
            g(z, torch.randint(0, k, (batch_size,), generator=gen).to(device))
        else:
            g(z)

    return recalibrate_batch_norm(g, forward, seed=seed)


class GANStep(Step):
    """Generator, discriminator (or critic), their Adam optimisers and the GAN update."""

    title = "GAN"
    panels = GAN_PANELS
    shown = ("loss_d", "loss_g")
    averaged = ("generator",)
    drop_last = True  # batch norm in D: no batch of one at an epoch's end
    discriminator_losses = ("loss_d",)
    generator_losses = ("loss_g",)

    def __init__(self, config: TrainConfig, *, device: torch.device | str, precision: str) -> None:
        super().__init__(config, device=device, precision=precision)
        cfg = config
        with runtime.main_process_first():  # rank 0 downloads or generates the data first
            self.data: GANData = resolve_dataset(
                cfg.data,
                image_size=cfg.image_size,
                channels=cfg.image_channels,
                labelled=cfg.conditional,
                seed=cfg.seed,
                limit=cfg.limit,
            )
        k = len(self.data.classes)
        if cfg.conditional and k < 2:
            raise ValueError("a conditional GAN needs labelled data with at least two classes")
        self.generator_config = cfg.generator_config(k)
        self.discriminator_config = cfg.discriminator_config(k)
        self.losses = get_loss(cfg.loss)
        self.generator = Generator(self.generator_config).to(self.device)
        self.discriminator = Discriminator(self.discriminator_config).to(self.device)
        # buffers are not broadcast: D's batch-norm statistics are never used in eval mode,
        # and G's are re-estimated before sampling (sampling_copy)
        self.g = self.distribute(self.generator, sync_buffers=False)
        self.d = self.distribute(self.discriminator, sync_buffers=False)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=cfg.lr_g)
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=cfg.lr_d)
        self._apply_optimizer_settings()
        self.d_steps = 0
        self.g_steps = 0
        # the fixed latent batch: every epoch's grid shows the same z (per label for a CGAN)
        cols = cfg.sample_columns
        if self.generator_config.n_classes:
            kk = self.generator_config.n_classes
            self.fixed_z = latents(cols, cfg.latent_dim, seed=cfg.seed).repeat(kk, 1)
            self.fixed_labels: Tensor | None = torch.arange(kk).repeat_interleave(cols)
        else:
            self.fixed_z = latents(cols * cols, cfg.latent_dim, seed=cfg.seed)
            self.fixed_labels = None

    def _apply_optimizer_settings(self) -> None:
        cfg = self.config
        for opt, lr in ((self.opt_g, cfg.lr_g), (self.opt_d, cfg.lr_d)):
            for group in opt.param_groups:
                group["lr"] = lr
                group["betas"] = (cfg.beta1, cfg.beta2)

    # -- the engine's contract -----------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    def dataset(self) -> Any:
        return self.data.dataset

    def describe_data(self) -> str:
        return self.data.description

    def train_step(self, batch: Any) -> dict[str, Tensor]:
        """One discriminator update, and a generator update every ``n_critic`` calls.

        ``batch`` is ``(real, labels)``: real images ``(B, C, S, S)`` in [-1, 1] and ``(B,)``
        class indices (used only by a conditional GAN).
        """
        real, labels = batch
        cfg = self.config
        if cfg.pack > 1:
            real, labels = self._into_packs(real, labels)
        cond: tuple[Tensor, ...] = (labels,) if cfg.conditional else ()
        aux = cfg.conditional and cfg.d_conditioning == "auxiliary"
        b = real.shape[0]
        g_turn = (self.d_steps + 1) % cfg.n_critic == 0
        if cfg.flip:
            mask = torch.rand(b, device=real.device) < 0.5
            real = torch.where(mask[:, None, None, None], real.flip(3), real)

        # (1) update D: maximise log D(x) + log(1 - D(G(z))) (or its loss's equivalent).
        # The fakes keep their graph on generator turns so that step (2) reuses them, as in
        # pytorch/examples dcgan; D only ever sees them detached.
        z = torch.randn(b, cfg.latent_dim, device=self.device)
        fake_labels = labels
        pairs = b // 2 if cfg.mode_seeking > 0 else 0
        if pairs and cfg.conditional:  # each pair of fakes shares a label
            fake_labels = torch.cat([labels[:pairs], labels[:pairs], labels[2 * pairs :]])
        fake_cond = (fake_labels,) if cfg.conditional else ()
        with torch.set_grad_enabled(g_turn), self.autocast():
            fake = (self.g if g_turn else self.generator)(z, *fake_cond)
        with self.autocast():
            if aux:
                d_real, class_real = self.d(real, classes=True)
                d_real, class_real = d_real.float(), class_real.float()
            else:
                d_real = self.d(real, *cond).float()
            d_fake = self.d(fake.detach(), *fake_cond).float()
            if cfg.mismatch and cfg.conditional and not aux:
                # matching-aware D (Reed et al. 2016, GAN-CLS): real images under a wrong label
                # also count as fake, so D learns label-image consistency from real data; the
                # fake side of every loss then averages fakes and mismatches, ½ each
                k = self.generator_config.n_classes
                shift = torch.randint(1, k, (b // cfg.pack,), device=labels.device)
                wrong = (labels + shift.repeat_interleave(cfg.pack)) % k  # one per pack
                d_fake = torch.cat([d_fake, self.d(real, wrong).float()])
        loss_d = self._d_loss(d_real, d_fake)
        if aux:
            loss_class_d = F.cross_entropy(class_real, labels)
            loss_d = loss_d + cfg.aux_weight * loss_class_d
        gp = torch.zeros((), device=self.device)
        if cfg.gp_weight > 0:
            gp = self._penalty(real, fake.detach(), cond)
        if not self.skip_d:
            self.optimizer_step(loss_d + cfg.gp_weight * gp, self.opt_d)
            if cfg.clip_value > 0:
                clip_weights(self.discriminator, cfg.clip_value)

        # (2) update G: maximise log D(G(z)) (the non-saturating loss) every n_critic steps.
        # The bare D is used so no gradient of D is computed or synchronised here.
        out = {"loss_d": loss_d.detach(), "d_real": d_real.detach().mean()}
        out["d_fake"] = d_fake.detach().mean()
        if not cfg.is_critic:  # the share of fakes D calls fake (its logit below 0)
            out["d_fake_acc"] = (d_fake.detach()[: b // cfg.pack] < 0).float().mean()
        if aux:
            out["loss_class_d"] = loss_class_d.detach()
        if g_turn:
            self.discriminator.requires_grad_(False)
            with self.autocast():
                if aux:
                    d_g, class_g = self.discriminator(fake, classes=True)
                    loss_class_g = F.cross_entropy(class_g.float(), fake_labels)
                    loss_g = self.losses.generator(d_g.float()) + cfg.aux_weight * loss_class_g
                    # the share of fakes D's classifier files under the label G was given
                    filed = class_g.detach().argmax(1) == fake_labels
                    out["class_acc_fake"] = filed.float().mean()
                    out["loss_class_g"] = loss_class_g.detach()
                else:
                    loss_g = self.losses.generator(self.discriminator(fake, *fake_cond).float())
            if pairs:
                ratio = self._mode_seeking_ratio(fake, z, pairs)
                loss_g = loss_g + cfg.mode_seeking * (1.0 / (ratio + MODE_SEEKING_EPS)).mean()
                out["mode_seeking"] = ratio.detach().mean()
            self.optimizer_step(loss_g, self.opt_g)
            self.discriminator.requires_grad_(True)
            self.g_steps += 1
            out["loss_g"] = loss_g.detach()
        self.scaler.update()
        self.d_steps += 1
        if cfg.gp_weight > 0:
            out["gp"] = gp.detach()
        if cfg.is_critic:
            out["wasserstein"] = out["d_real"] - out["d_fake"]
        return out

    def _into_packs(self, real: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        """Reorder a batch so that samples ``i·m … i·m + m − 1`` form pack i (``m = pack``), all
        of one label in a cgan; the samples that fill no pack are left out of this step. The
        fakes take the same labels in the same order, so their packs match the real ones."""
        m = self.config.pack
        if not self.config.conditional:
            keep = torch.arange(real.shape[0] - real.shape[0] % m, device=real.device)
        else:
            order = torch.argsort(labels, stable=True)
            grouped = labels[order]
            counts = torch.bincount(grouped, minlength=self.generator_config.n_classes)
            starts = torch.cumsum(counts, 0) - counts
            rank = torch.arange(len(order), device=labels.device) - starts[grouped]
            keep = order[rank < (counts // m * m)[grouped]]
        if keep.numel() == 0:
            raise ValueError(
                f"a batch of {real.shape[0]} holds no {m} samples of one label to pack: use a "
                "larger --batch-size or a smaller --pack"
            )
        return real[keep], labels[keep]

    @staticmethod
    def _mode_seeking_ratio(fake: Tensor, z: Tensor, pairs: int) -> Tensor:
        """Per pair ``(fake[i], fake[i + pairs])``: mean absolute image distance over mean
        absolute latent distance, ``(pairs,)`` in fp32 (MSGAN's ``d_I / d_z``)."""
        f = fake.float().flatten(1)
        image = (f[:pairs] - f[pairs : 2 * pairs]).abs().mean(1)
        latent = (z[:pairs] - z[pairs : 2 * pairs]).abs().mean(1)
        return image / latent

    def _d_loss(self, d_real: Tensor, d_fake: Tensor) -> Tensor:
        cfg = self.config
        if cfg.loss == "bce":
            return self.losses.discriminator(
                d_real, d_fake, smoothing=cfg.label_smoothing, flip=cfg.label_noise
            )
        return self.losses.discriminator(d_real, d_fake)

    def _penalty(self, real: Tensor, fake: Tensor, cond: tuple[Tensor, ...]) -> Tensor:
        # with --pack the critic scores packs; the interpolation weight and the gradient norm
        # stay per image, which pulls each member's norm (not the pack's) towards 1
        if self.precision == "fp16":
            # the penalty's double backward in fp16 would need the loss scale inside
            # autograd.grad; computing it in fp32 is simpler and exact
            with torch.autocast(self.device.type, enabled=False):
                return gradient_penalty(self.d, real.float(), fake.float(), *cond)
        with self.autocast():
            return gradient_penalty(self.d, real, fake.to(real.dtype), *cond)

    def state_dict(self) -> dict[str, Any]:
        return {
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "d_steps": self.d_steps,
            "g_steps": self.g_steps,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self._apply_optimizer_settings()  # a resumed run may change them
        self.d_steps = int(state["d_steps"])
        self.g_steps = int(state["g_steps"])

    def sample(self, nets: Mapping[str, nn.Module]) -> tuple[Tensor, int] | None:
        g = sampling_copy(
            nets["generator"], batch_size=self.config.batch_size, seed=self.config.seed
        )
        images = generate(g, self.fixed_z, self.fixed_labels)
        return to_unit_range(images), self.config.sample_columns

    def export(
        self, run_dir: Path, nets: Mapping[str, nn.Module], info: dict[str, Any]
    ) -> list[Path]:
        cfg = self.config
        g = sampling_copy(nets["generator"], batch_size=cfg.batch_size, seed=cfg.seed)
        extra = {
            **info,
            "classes": list(self.data.classes),
            "preset": self.trainer,
            "data": self.data.spec,
            "ema": "generator" in info.get("ema", ()),
        }
        name = "critic" if cfg.is_critic else "discriminator"
        return [
            save_model(
                g,
                run_dir / "generator.safetensors",
                kind="gan-generator",
                config=self.generator_config,
                extra=extra,
            ),
            save_model(
                nets["discriminator"],
                run_dir / f"{name}.safetensors",
                kind=f"gan-{name}",
                config=self.discriminator_config,
                extra=extra,
            ),
        ]

    def slow_run_advice(self) -> str:
        return "--image-size 32, --g-width 32 --d-width 32, --limit 5000, or fewer --epochs"

    def overpowering_advice(self) -> str:
        lr_d, lr_g = self.config.lr_d, self.config.lr_g
        return (
            f"a lower discriminator learning rate (--lr-d {lr_d / 4:g}; two time-scale updates "
            f"keep G at --lr-g {lr_g:g}), one-sided label smoothing (--label-smoothing 0.1), "
            "label noise (--label-noise 0.05), dropout in D (--dropout 0.3), or skipping D "
            "updates while its loss is low (--d-skip-below 0.3)."
        )

    @torch.no_grad()
    def _real_images(self, n: int) -> Tensor:
        dataset = self.data.dataset
        return torch.stack([dataset[i][0] for i in range(min(n, len(dataset)))])

    @torch.no_grad()
    def diversity(self) -> tuple[float, float] | None:
        """Mean pairwise L1 distance of 32 samples of the live generator (fixed latents, a
        label each when conditional), and of 32 training images."""
        if not hasattr(self, "_data_spread"):
            self._data_spread = spread(self._real_images(32))
        g = self.generator
        was_training = g.training
        g.eval()
        try:
            z = self.fixed_z[:32].to(self.device)
            labels = None if self.fixed_labels is None else self.fixed_labels[:32].to(self.device)
            images = g(z, labels) if labels is not None else g(z)
        finally:
            g.train(was_training)
        return spread(images.float().cpu()), self._data_spread

    @torch.no_grad()
    def final_checks(self, nets: Mapping[str, nn.Module]) -> list[tuple[str, str, dict]]:
        """The nearest-neighbour memorisation check: are samples closer to training images
        than training images are to each other?"""
        from transfigure.gan.sampling import nearest_neighbours

        g = sampling_copy(nets["generator"], batch_size=self.config.batch_size, seed=0)
        samples = generate(g, latents(64, self.config.latent_dim, seed=1), self._labels(64))
        dataset = self.data.dataset
        n = min(len(dataset), 4096)

        def reference():
            for start in range(0, n, 256):
                yield torch.stack([dataset[i][0] for i in range(start, min(start + 256, n))])

        d_samples, _ = nearest_neighbours(samples, reference(), k=1)
        probe = self._real_images(64)
        d_real, _ = nearest_neighbours(probe, reference(), k=2)  # the first is the image itself
        if d_real.shape[1] < 2:
            return []
        sample_nn = float(d_samples[:, 0].median())
        real_nn = float(d_real[:, 1].median())
        figures = {"sample_nn": sample_nn, "real_nn": real_nn}
        if real_nn > 0 and sample_nn < 0.5 * real_nn:
            return [
                (
                    "memorisation",
                    f"the samples look memorised: their nearest training image is {sample_nn:.3g} "
                    f"away (median mean absolute difference), while training images are "
                    f"{real_nn:.3g} from their nearest neighbour. What usually helps: more data "
                    "(or augmentation: --flip), fewer epochs, or a smaller generator; look at "
                    f"'transfigure sample generator.safetensors --nearest {self.data.spec}'.",
                    figures,
                )
            ]
        return [
            (
                "memorisation_ok",
                f"memorisation check passed: samples are {sample_nn:.3g} from their nearest "
                f"training image, training images {real_nn:.3g} from theirs.",
                figures,
            )
        ]

    def _labels(self, n: int) -> Tensor | None:
        k = self.generator_config.n_classes
        return torch.arange(n) % k if k else None


class DCGANStep(GANStep):
    trainer = "dcgan"
    title = "DCGAN"


class WGANGPStep(GANStep):
    trainer = "wgan-gp"
    title = "WGAN-GP"
    shown = ("loss_d", "loss_g", "wasserstein")


class CGANStep(GANStep):
    trainer = "cgan"
    title = "Conditional GAN"
