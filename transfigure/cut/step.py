"""CUT and FastCUT training (Park et al., ECCV 2020) as a step on the training engine.

One generator ``G: A → B``, a PatchGAN ``D`` on domain B and the patch projection head ``F``.
Each step, as the reference's ``optimize_parameters``:

1. translate: ``G(A)`` — with the identity term, ``G`` runs on A and B in one batch and also
   gives ``idt_B = G(B)``; FastCUT flips the whole batch horizontally with probability ½
   (flip-equivariance: the PatchNCE features are flipped back before comparison);
2. update D (LSGAN): real B against ``G(A)``, detached;
3. update G and F: ``λ_GAN · GAN(D(G(A))) + λ_NCE · PatchNCE(A, G(A))``, with the identity term
   averaged in as ``½ [PatchNCE(A, G(A)) + PatchNCE(B, G(B))]``.

The patch locations and flips come from the step's own seeded generators, saved with its state,
so a resumed run draws what an uninterrupted one would. The exported
``generator_a2b.safetensors`` is a ``cyclegan-generator`` model file (the reference's
anti-aliased ResNet), which ``translate`` and ``evaluate`` use as they use a CycleGAN one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from transfigure import runtime
from transfigure.checkpoint import save_model
from transfigure.cut.config import TrainConfig
from transfigure.cut.losses import patchnce
from transfigure.cut.networks import PatchSampleMLP, feature_channels
from transfigure.cyclegan.losses import discriminator_loss, generator_adversarial_loss
from transfigure.cyclegan.networks import build_discriminator, build_generator, init_weights
from transfigure.cyclegan.step import fixed_images, to_rgb01
from transfigure.cyclegan.translation_step import TranslationStep, unpaired_dataset
from transfigure.datasets.folders import UnpairedDataset
from transfigure.training.step import set_requires_grad

__all__ = ["LOSS_TERMS", "CUTStep"]

# The reference's loss names (NCE_Y only with the identity term).
LOSS_TERMS = ("G_GAN", "D_real", "D_fake", "G", "NCE", "NCE_Y")

CUT_PANELS = (
    ("adversarial", (("G_GAN", "G_GAN"), ("D_real", "D_real"), ("D_fake", "D_fake"))),
    ("PatchNCE", (("NCE", "NCE"), ("NCE_Y", "NCE_Y"))),
    ("learning rate", (("lr", "lr"),)),
)


class CUTStep(TranslationStep):
    """A generator, a discriminator, the projection head and their three Adam optimisers."""

    trainer = "cut"
    title = "CUT"
    panels = CUT_PANELS
    shown = ("G_GAN", "NCE", "D_real", "D_fake")
    averaged = ("G",)
    discriminator_losses = ("D_real", "D_fake")
    generator_losses = ("G_GAN",)

    def __init__(self, config: TrainConfig, *, device: torch.device | str, precision: str) -> None:
        super().__init__(config, device=device, precision=precision)
        cfg = config
        init = torch.Generator().manual_seed(cfg.seed)
        self.G = build_generator(cfg.generator_config(), generator=init)
        self.D = build_discriminator(cfg.discriminator_config(), generator=init)
        layers = cfg.layers
        if layers[-1] >= len(self.G.model):
            raise ValueError(
                f"nce_layers {cfg.nce_layers} reach past the generator's {len(self.G.model)} layers"
            )
        channels = feature_channels(self.G, layers, cfg.input_nc)
        self.F = init_weights(
            PatchSampleMLP(channels, nc=cfg.net_f_nc),
            cfg.init_type,
            cfg.init_gain,
            generator=init,
        )
        for net in self.networks().values():
            net.to(self.device).train()
        for net in (self.G, self.D):
            net.to(memory_format=self.memory_format)
        # D's update goes through DDP; G and F are called several times per backward (the
        # translation and the encoder features), so their gradients are averaged by hand.
        self.d = self.distribute(self.D)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr)
        self.opt_F = torch.optim.Adam(self.F.parameters(), lr=cfg.lr)
        self.apply_betas()
        self.patch_generator = torch.Generator().manual_seed(cfg.seed + 104729)
        self.flip_generator = torch.Generator().manual_seed(cfg.seed + 1299709)

    def optimizers(self) -> tuple[torch.optim.Optimizer, ...]:
        return (self.opt_G, self.opt_D, self.opt_F)

    # -- the engine's contract -----------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, "F": self.F}

    def dataset(self) -> UnpairedDataset:
        self._dataset = unpaired_dataset(self.config)
        return self._dataset

    def describe_data(self) -> str:
        dir_a, dir_b = self.config.domain_dirs()
        return f"{dir_a} → {dir_b} ({self.config.mode})"

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> None:
        self.schedule.observe(means.get("G", 0.0))

    def _nce(self, source: Tensor, translated: Tensor, flipped: bool) -> Tensor:
        cfg = self.config
        return patchnce(
            self.G,
            self.F,
            source,
            translated,
            layers=cfg.layers,
            num_patches=cfg.num_patches,
            temperature=cfg.nce_t,
            flipped=flipped,
            generator=self.patch_generator,
        )

    def train_step(self, batch: Any) -> dict[str, Tensor]:
        cfg = self.config
        real_A = batch["A"].contiguous(memory_format=self.memory_format)
        real_B = batch["B"].contiguous(memory_format=self.memory_format)
        mode = cfg.gan_mode
        terms: dict[str, Tensor] = {}
        n = real_A.shape[0]

        # (1) translate A (and B, for the identity term), flipped half the time in FastCUT
        real = torch.cat([real_A, real_B]) if cfg.nce_idt else real_A
        flipped = bool(
            cfg.flip_equivariance and torch.rand((), generator=self.flip_generator) < 0.5
        )
        if flipped:
            real = torch.flip(real, dims=[3])
        with self.autocast():
            fake = self.G(real)
        fake_B, idt_B = fake[:n], fake[n:]

        # (2) update D: real B against G(A), detached
        set_requires_grad([self.D], True)
        with self.autocast():
            pred_fake = self.d(fake_B.detach())
            pred_real = self.d(real_B)
            loss_D = discriminator_loss(pred_real, pred_fake, mode)
            # the reference's halves, loss_D = ½ (D_real + D_fake); the "real" half is the
            # generator's formula applied to real images
            terms["D_real"] = generator_adversarial_loss(pred_real, mode)
            terms["D_fake"] = 2.0 * loss_D - terms["D_real"]
        if not self.skip_d:
            self.optimizer_step(loss_D, self.opt_D)

        # (3) update G and F: fool D (frozen, bare), keep the patches' correspondence
        set_requires_grad([self.D], False)
        with self.autocast():
            terms["G_GAN"] = generator_adversarial_loss(self.D(fake_B), mode) * cfg.lambda_gan
            terms["NCE"] = self._nce(real_A, fake_B, flipped) * cfg.lambda_nce
            nce_both = terms["NCE"]
            if cfg.nce_idt:
                terms["NCE_Y"] = self._nce(real_B, idt_B, flipped) * cfg.lambda_nce
                nce_both = (terms["NCE"] + terms["NCE_Y"]) * 0.5
            terms["G"] = terms["G_GAN"] + nce_both
        self.opt_G.zero_grad(set_to_none=True)
        self.opt_F.zero_grad(set_to_none=True)
        self.scaler.scale(terms["G"]).backward()
        if runtime.is_distributed():
            _average_gradients([self.G, self.F])
        self.scaler.step(self.opt_G)
        self.scaler.step(self.opt_F)
        set_requires_grad([self.D], True)
        self.scaler.update()
        return {k: v.detach().float() for k, v in terms.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.optimizer_states(),
            "patch_generator": self.patch_generator.get_state(),
            "flip_generator": self.flip_generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.load_optimizer_states(state)
        self.patch_generator.set_state(state["patch_generator"])
        self.flip_generator.set_state(state["flip_generator"])

    @torch.no_grad()
    def sample(self, nets: Mapping[str, nn.Module]) -> tuple[Tensor, int] | None:
        """Rows of real A, G(A), real B, G(B) on fixed images (testA/testB when present)."""
        cfg = self.config
        fixed = {}
        for i, (domain, nc) in enumerate((("A", cfg.input_nc), ("B", cfg.output_nc))):
            folder = cfg.domain_dirs()[i]
            if cfg.data_root is not None and (Path(cfg.data_root) / f"test{domain}").is_dir():
                folder = Path(cfg.data_root) / f"test{domain}"
            fixed[domain] = fixed_images(
                folder, size=cfg.crop_size, grayscale=nc == 1, n=cfg.n_samples
            )
        if fixed["A"] is None:
            return None
        G = nets["G"]
        mode = G.training
        G.eval()
        try:
            cells: list[Tensor] = []
            for i in range(len(fixed["A"])):
                x = fixed["A"][i : i + 1].to(self.device)
                cells += [to_rgb01(x), to_rgb01(G(x))]
                b = fixed["B"]
                if b is not None and i < len(b) and cfg.input_nc == cfg.output_nc:
                    y = b[i : i + 1].to(self.device)
                    cells += [to_rgb01(y), to_rgb01(G(y))]
                else:
                    cells += [torch.zeros_like(cells[-1])] * 2
            return torch.cat([c.cpu() for c in cells]), 4
        finally:
            G.train(mode)

    def export(
        self, run_dir: Path, nets: Mapping[str, nn.Module], info: dict[str, Any]
    ) -> list[Path]:
        cfg = self.config
        dir_a, dir_b = cfg.domain_dirs()
        path = save_model(
            nets["G"],
            run_dir / "generator_a2b.safetensors",
            kind="cyclegan-generator",
            config=cfg.generator_config(),
            extra={
                **info,
                "direction": "a2b",
                "domain_a": str(dir_a),
                "domain_b": str(dir_b),
                "model": cfg.mode,
                "trained_with": f"transfigure train cut --mode {cfg.mode}",
            },
        )
        return [path]

    def slow_run_advice(self) -> str:
        return (
            "--mode fastcut, --crop-size 128 --load-size 143 (4× fewer pixels), "
            "--ngf 32 --ndf 32, --num-patches 64, or --max-dataset-size 200"
        )


def _average_gradients(nets: list[nn.Module]) -> None:
    """All-reduce the gradients of ``nets`` to their mean over the processes."""
    world = dist.get_world_size()
    for net in nets:
        for p in net.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
                p.grad.div_(world)
