"""CycleGAN training (Zhu et al., 2017) as a step on the training engine.

``G_A: A → B`` and ``G_B: B → A``; ``D_A`` tells real B from ``G_A``'s fakes and ``D_B`` real A
from ``G_B``'s (the reference's naming). Each step:

1. translate both ways and back: ``fake_B = G_A(A)``, ``rec_A = G_B(fake_B)``, and vice versa;
2. update both generators on adversarial + λ·cycle + λ·λ_idt·identity losses, D frozen;
3. update both discriminators on real images against fakes drawn from a 50-image history.

The run folder, resume, checkpoints and guards are the engine's
(:func:`transfigure.training.train`); this module adds the exported generators
``generator_a2b.safetensors`` / ``generator_b2a.safetensors`` and the sample strips (rows: real
A, fake B, rec A | real B, fake A, rec B on fixed images). The learning rate is a function of
the epoch and the totals (:mod:`~transfigure.cyclegan.schedule`), so a run resumed with larger
``n_epochs`` / ``n_epochs_decay`` follows the schedule of a run started with those totals.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from transfigure import runtime
from transfigure.checkpoint import save_model
from transfigure.cyclegan.config import TrainConfig
from transfigure.cyclegan.losses import (
    cycle_loss,
    discriminator_loss,
    generator_adversarial_loss,
    identity_loss,
    patch_gradient_penalty,
)
from transfigure.cyclegan.networks import build_discriminator, build_generator
from transfigure.cyclegan.pool import ImagePool
from transfigure.cyclegan.translation_step import TranslationStep, unpaired_dataset
from transfigure.datasets.folders import UnpairedDataset
from transfigure.datasets.transforms import eval_transform
from transfigure.images import ImageError, list_images, load_array
from transfigure.training.monitor import spread
from transfigure.training.step import set_requires_grad

__all__ = ["LOSS_TERMS", "CycleGANStep", "fixed_images", "to_rgb01"]

# The loss terms logged to metrics.jsonl (the reference's names); gp_* only in wgangp mode.
LOSS_TERMS = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")

CYCLEGAN_PANELS = (
    ("adversarial", (("D_A", "D_A"), ("G_A", "G_A"), ("D_B", "D_B"), ("G_B", "G_B"))),
    (
        "cycle / identity",
        (("cycle_A", "cycle_A"), ("cycle_B", "cycle_B"), ("idt_A", "idt_A"), ("idt_B", "idt_B")),
    ),
    ("gradient penalty", (("gp_A", "gp_A"), ("gp_B", "gp_B"))),
    ("learning rate", (("lr", "lr"),)),
)


def fixed_images(folder: Path, *, size: int, grayscale: bool, n: int) -> Tensor | None:
    """The first ``n`` readable images of ``folder``, resized to ``size``: ``(n, C, size, size)``
    in [-1, 1], or ``None`` when there are none."""
    if n < 1 or not folder.is_dir():
        return None
    transform = eval_transform(size=size, grayscale=grayscale)
    images = []
    for path in list_images([folder], recursive=True):
        try:
            images.append(transform(load_array(path)))
        except (ImageError, ValueError):  # skipped here; the dataset reports unreadable files
            continue
        if len(images) == n:
            break
    return torch.stack(images) if images else None


def to_rgb01(t: Tensor) -> Tensor:
    """Images in [-1, 1] with 1 or 3 channels → RGB in [0, 1]."""
    t = ((t.float() + 1.0) * 0.5).clamp(0.0, 1.0)
    return t.expand(-1, 3, -1, -1) if t.shape[1] == 1 else t


class CycleGANStep(TranslationStep):
    """Two generators, two discriminators, two Adam optimisers and two image pools."""

    trainer = "cyclegan"
    title = "CycleGAN"
    panels = CYCLEGAN_PANELS
    shown = ("G_A", "G_B", "D_A", "D_B", "cycle_A")
    averaged = ("G_A", "G_B")
    discriminator_losses = ("D_A", "D_B")
    generator_losses = ("G_A", "G_B")

    def __init__(self, config: TrainConfig, *, device: torch.device | str, precision: str) -> None:
        super().__init__(config, device=device, precision=precision)
        cfg = config
        init = torch.Generator().manual_seed(cfg.seed)
        self.G_A = build_generator(cfg.generator_config("a2b"), generator=init)
        self.G_B = build_generator(cfg.generator_config("b2a"), generator=init)
        self.D_A = build_discriminator(cfg.discriminator_config("B"), generator=init)
        self.D_B = build_discriminator(cfg.discriminator_config("A"), generator=init)
        for net in self.networks().values():
            net.to(self.device, memory_format=self.memory_format).train()
        if cfg.norm == "batch" and self.device.type == "cuda" and runtime.is_distributed():
            for name in ("G_A", "G_B", "D_A", "D_B"):
                setattr(self, name, nn.SyncBatchNorm.convert_sync_batchnorm(getattr(self, name)))
        # what the updates call: DDP wrappers under torchrun, else the networks themselves
        self.g_a, self.g_b = self.distribute(self.G_A), self.distribute(self.G_B)
        self.d_a, self.d_b = self.distribute(self.D_A), self.distribute(self.D_B)
        self.opt_G = torch.optim.Adam(
            itertools.chain(self.G_A.parameters(), self.G_B.parameters()), lr=cfg.lr
        )
        self.opt_D = torch.optim.Adam(
            itertools.chain(self.D_A.parameters(), self.D_B.parameters()), lr=cfg.lr
        )
        self.apply_betas()
        self.pool_fake_A = ImagePool(cfg.pool_size, seed=cfg.seed * 2 + 1)
        self.pool_fake_B = ImagePool(cfg.pool_size, seed=cfg.seed * 2 + 2)
        self.gp_generator = torch.Generator().manual_seed(cfg.seed + 7919)

    def optimizers(self) -> tuple[torch.optim.Optimizer, ...]:
        return (self.opt_G, self.opt_D)

    # -- the engine's contract -----------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"G_A": self.G_A, "G_B": self.G_B, "D_A": self.D_A, "D_B": self.D_B}

    def dataset(self) -> UnpairedDataset:
        return unpaired_dataset(self.config)

    def describe_data(self) -> str:
        dir_a, dir_b = self.config.domain_dirs()
        return f"{dir_a} ↔ {dir_b}"

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> None:
        self.schedule.observe(sum(means.get(k, 0.0) for k in ("G_A", "G_B", "cycle_A", "cycle_B")))

    def train_step(self, batch: Any) -> dict[str, Tensor]:
        cfg = self.config
        real_A = batch["A"].contiguous(memory_format=self.memory_format)
        real_B = batch["B"].contiguous(memory_format=self.memory_format)
        mode = cfg.gan_mode
        terms: dict[str, Tensor] = {}

        # (1) translate both ways and back, and (with identity terms) keep each domain.
        # G_A's two inputs (A to translate, B to keep) go through as one batch, and G_B's: the
        # same per-image computation in fewer, larger calls. Not with batch norm, whose
        # statistics the two halves would share.
        identity = cfg.lambda_identity > 0
        n = real_A.shape[0]
        with self.autocast():
            if identity and cfg.norm != "batch" and real_A.shape == real_B.shape:
                fake_B, idt_A = self.g_a(torch.cat([real_A, real_B])).split(n)
                fake_A, idt_B = self.g_b(torch.cat([real_B, real_A])).split(n)
            else:
                fake_B, fake_A = self.g_a(real_A), self.g_b(real_B)
                if identity:  # G_A should leave a B image unchanged, G_B an A image
                    idt_A, idt_B = self.g_a(real_B), self.g_b(real_A)
            rec_A = self.g_b(fake_B)
            rec_B = self.g_a(fake_A)

        # (2) update G_A and G_B: fool the discriminators, reconstruct, keep identities.
        # D is frozen, and the bare D is called so that DDP's gradient hooks are not armed for a
        # backward that gives D no gradients.
        set_requires_grad([self.D_A, self.D_B], False)
        with self.autocast():
            if identity:
                w = cfg.lambda_identity
                terms["idt_A"] = identity_loss(idt_A, real_B) * cfg.lambda_b * w
                terms["idt_B"] = identity_loss(idt_B, real_A) * cfg.lambda_a * w
            else:
                terms["idt_A"] = terms["idt_B"] = real_A.new_zeros(())
            terms["G_A"] = generator_adversarial_loss(self.D_A(fake_B), mode)
            terms["G_B"] = generator_adversarial_loss(self.D_B(fake_A), mode)
            terms["cycle_A"] = cycle_loss(rec_A, real_A) * cfg.lambda_a
            terms["cycle_B"] = cycle_loss(rec_B, real_B) * cfg.lambda_b
            loss_G = sum(terms[k] for k in ("G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B"))
        self.optimizer_step(loss_G, self.opt_G)

        # (3) update D_A and D_B: real images against fakes from the history pools
        set_requires_grad([self.D_A, self.D_B], True)
        pooled_B = self.pool_fake_B.query(fake_B.detach().float())
        pooled_A = self.pool_fake_A.query(fake_A.detach().float())
        with self.autocast():
            d_fake_B, d_fake_A = self.d_a(pooled_B), self.d_b(pooled_A)
            terms["D_A"] = discriminator_loss(self.d_a(real_B), d_fake_B, mode)
            terms["D_B"] = discriminator_loss(self.d_b(real_A), d_fake_A, mode)
        loss_D = terms["D_A"] + terms["D_B"]
        if mode == "wgangp":
            # in fp32, outside autocast: the double backward is fragile in half precision
            terms["gp_A"] = patch_gradient_penalty(
                self.D_A, real_B.float(), pooled_B, generator=self.gp_generator
            )
            terms["gp_B"] = patch_gradient_penalty(
                self.D_B, real_A.float(), pooled_A, generator=self.gp_generator
            )
            loss_D = loss_D + cfg.lambda_gp * (terms["gp_A"] + terms["gp_B"])
        if not self.skip_d:
            self.optimizer_step(loss_D, self.opt_D)
        self.scaler.update()
        out = {k: v.detach().float() for k, v in terms.items()}
        if mode != "wgangp":  # the share of fake patches D calls fake (below the 0.5 / 0 line)
            line = 0.5 if mode == "lsgan" else 0.0
            fakes = torch.cat([d_fake_B.detach().flatten(), d_fake_A.detach().flatten()])
            out["d_fake_acc"] = (fakes.float() < line).float().mean()
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.optimizer_states(),
            "pool_fake_A": self.pool_fake_A.state_dict(),
            "pool_fake_B": self.pool_fake_B.state_dict(),
            "gp_generator": self.gp_generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.load_optimizer_states(state)  # then the config's betas: a resume may change them
        self.pool_fake_A.load_state_dict(state["pool_fake_A"], self.device)
        self.pool_fake_B.load_state_dict(state["pool_fake_B"], self.device)
        self.gp_generator.set_state(state["gp_generator"])

    @torch.no_grad()
    def sample(self, nets: Mapping[str, nn.Module]) -> tuple[Tensor, int] | None:
        """Rows of real A, fake B, rec A, real B, fake A, rec B on fixed images."""
        cfg = self.config
        fixed = {}
        for domain, nc in (("A", cfg.input_nc), ("B", cfg.output_nc)):
            folder = cfg.domain_dirs()[0 if domain == "A" else 1]
            if cfg.data_root is not None and (Path(cfg.data_root) / f"test{domain}").is_dir():
                folder = Path(cfg.data_root) / f"test{domain}"
            fixed[domain] = fixed_images(
                folder, size=cfg.crop_size, grayscale=nc == 1, n=cfg.n_samples
            )
        if fixed["A"] is None and fixed["B"] is None:
            return None
        G_A, G_B = nets["G_A"], nets["G_B"]
        modes = (G_A.training, G_B.training)
        G_A.eval()
        G_B.eval()
        try:
            n = max(len(x) for x in fixed.values() if x is not None)
            cells: list[Tensor] = []
            for i in range(n):
                for real, g, f in ((fixed["A"], G_A, G_B), (fixed["B"], G_B, G_A)):
                    if real is None or i >= len(real):
                        continue
                    x = real[i : i + 1].to(self.device)
                    fake = g(x)
                    cells += [to_rgb01(x), to_rgb01(fake), to_rgb01(f(fake))]
            return torch.cat([c.cpu() for c in cells]), 6
        finally:
            G_A.train(modes[0])
            G_B.train(modes[1])

    def export(
        self, run_dir: Path, nets: Mapping[str, nn.Module], info: dict[str, Any]
    ) -> list[Path]:
        cfg = self.config
        dir_a, dir_b = cfg.domain_dirs()
        paths = []
        for name, direction in (("G_A", "a2b"), ("G_B", "b2a")):
            paths.append(
                save_model(
                    nets[name],
                    run_dir / f"generator_{direction}.safetensors",
                    kind="cyclegan-generator",
                    config=cfg.generator_config(direction),
                    extra={
                        **info,
                        "direction": direction,
                        "domain_a": str(dir_a),
                        "domain_b": str(dir_b),
                        "trained_with": "transfigure train cyclegan",
                    },
                )
            )
        return paths

    def overpowering_advice(self) -> str:
        return (
            "a smaller discriminator (--n-layers-d 2, --ndf 32), a larger image pool "
            "(--pool-size 50), or skipping D updates while its loss is low "
            "(--d-skip-below 0.05); the reference's LSGAN loss (--gan-mode lsgan) is gentler "
            "than vanilla."
        )

    @torch.no_grad()
    def diversity(self) -> tuple[float, float] | None:
        """Spread of G_A's translations of the fixed A images against the real B images'."""
        cfg = self.config
        if not hasattr(self, "_fixed"):
            folders = cfg.domain_dirs()
            self._fixed = [
                fixed_images(f, size=cfg.crop_size, grayscale=nc == 1, n=max(cfg.n_samples, 4))
                for f, nc in zip(folders, (cfg.input_nc, cfg.output_nc), strict=True)
            ]
        real_a, real_b = self._fixed
        if real_a is None or real_b is None or len(real_a) < 2 or len(real_b) < 2:
            return None
        was_training = self.G_A.training
        self.G_A.eval()
        try:
            fake_b = self.G_A(real_a.to(self.device)).float().cpu()
        finally:
            self.G_A.train(was_training)
        return spread(fake_b), spread(real_b)

    def slow_run_advice(self) -> str:
        return (
            "--crop-size 128 --load-size 143 (4× fewer pixels), --ngf 32 --ndf 32, "
            "--net-g resnet_6blocks, or --max-dataset-size 200"
        )
