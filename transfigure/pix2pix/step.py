"""pix2pix training (Isola et al., 2017) as a step on the training engine.

One generator ``G: A → B`` and a conditional PatchGAN ``D`` that judges (input, output) pairs,
concatenated along the channels. Each step, as the reference's ``optimize_parameters``:

1. translate: ``fake_B = G(A)``;
2. update D: maximise log D(A, B) + log(1 − D(A, G(A))), fakes detached;
3. update G: fool D and stay close to the target, ``GAN(D(A, G(A)), real) + λ_L1 · |G(A) − B|₁``.

Unlike CycleGAN (G then D), the reference updates D first here. The exported model file
``generator_a2b.safetensors`` (``generator_b2a`` when ``direction`` is BtoA) records whether
dropout stays on at test time (the reference's default; ``--no-dropout-at-test``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import Dataset

from transfigure import runtime
from transfigure.checkpoint import save_model
from transfigure.cyclegan.losses import (
    discriminator_loss,
    generator_adversarial_loss,
    patch_gradient_penalty,
)
from transfigure.cyclegan.networks import build_discriminator, build_generator
from transfigure.cyclegan.pool import ImagePool
from transfigure.cyclegan.step import to_rgb01
from transfigure.cyclegan.translation_step import TranslationStep
from transfigure.datasets.aligned import AlignedDataset
from transfigure.datasets.transforms import eval_transform, train_transform
from transfigure.pix2pix.config import TrainConfig
from transfigure.training.step import set_requires_grad

__all__ = ["LOSS_TERMS", "Pix2PixStep", "to_channels"]

# The reference's loss names.
LOSS_TERMS = ("G_GAN", "G_L1", "D_real", "D_fake")

PIX2PIX_PANELS = (
    ("adversarial", (("G_GAN", "G_GAN"), ("D_real", "D_real"), ("D_fake", "D_fake"))),
    ("L1 to the target", (("G_L1", "G_L1"),)),
    ("gradient penalty", (("gp", "gp"),)),
    ("learning rate", (("lr", "lr"),)),
)

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as the pipelines' grayscale


def to_channels(x: Tensor, nc: int) -> Tensor:
    """(B, 3, H, W) images in [-1, 1] as ``nc`` channels (1: ITU-R 601 luma); 3 unchanged."""
    if nc == x.shape[1]:
        return x
    if nc == 1 and x.shape[1] == 3:
        w = x.new_tensor(_LUMA).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    raise ValueError(f"cannot make {nc} channels from {x.shape[1]}")


class Pix2PixStep(TranslationStep):
    """A generator, a conditional discriminator, two Adam optimisers."""

    trainer = "pix2pix"
    title = "pix2pix"
    panels = PIX2PIX_PANELS
    shown = ("G_GAN", "G_L1", "D_real", "D_fake")
    averaged = ("G",)
    discriminator_losses = ("D_real", "D_fake")
    generator_losses = ("G_GAN",)

    def __init__(self, config: TrainConfig, *, device: torch.device | str, precision: str) -> None:
        super().__init__(config, device=device, precision=precision)
        cfg = config
        init = torch.Generator().manual_seed(cfg.seed)
        self.G = build_generator(cfg.generator_config(), generator=init)
        self.D = build_discriminator(cfg.discriminator_config(), generator=init)
        for net in self.networks().values():
            net.to(self.device, memory_format=self.memory_format).train()
        if cfg.norm == "batch" and self.device.type == "cuda" and runtime.is_distributed():
            self.G = nn.SyncBatchNorm.convert_sync_batchnorm(self.G)
            self.D = nn.SyncBatchNorm.convert_sync_batchnorm(self.D)
        self.g, self.d = self.distribute(self.G), self.distribute(self.D)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr)
        self.apply_betas()
        self.pool = ImagePool(cfg.pool_size, seed=cfg.seed * 2 + 1)
        self.gp_generator = torch.Generator().manual_seed(cfg.seed + 7919)

    def optimizers(self) -> tuple[torch.optim.Optimizer, ...]:
        return (self.opt_G, self.opt_D)

    # -- the engine's contract -----------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def _aligned(self, transform: Any, source: Path | tuple[Path, Path]) -> AlignedDataset:
        if isinstance(source, tuple):
            for name, folder in zip(("A", "B"), source, strict=True):
                if not folder.is_dir():
                    raise FileNotFoundError(f"folder of {name} images not found: {folder}")
            return AlignedDataset(
                dir_a=source[0],
                dir_b=source[1],
                transform=transform,
                direction=self.config.direction,
                seed=self.config.seed,
            )
        if not source.is_dir():
            raise FileNotFoundError(
                f"folder of A|B pairs not found: {source} (DATA_ROOT/train, or give --domain-a "
                "and --domain-b)"
            )
        return AlignedDataset(
            source, transform=transform, direction=self.config.direction, seed=self.config.seed
        )

    def dataset(self) -> Dataset:
        cfg = self.config
        pipeline = train_transform(
            load_size=cfg.load_size,
            crop_size=cfg.crop_size,
            preprocess=cfg.preprocess,
            flip=cfg.flip,
        )
        data = self._aligned(pipeline, cfg.train_source())
        if cfg.max_dataset_size is not None:
            data.pairs = data.pairs[: cfg.max_dataset_size]
        self._dataset = data
        return data

    def describe_data(self) -> str:
        source = self.config.train_source()
        where = f"{source[0]} + {source[1]}" if isinstance(source, tuple) else str(source)
        return f"{where} ({self.config.direction})"

    def end_epoch(self, epoch: int, means: Mapping[str, float]) -> None:
        self.schedule.observe(means.get("G_GAN", 0.0) + means.get("G_L1", 0.0))

    def train_step(self, batch: Any) -> dict[str, Tensor]:
        cfg = self.config
        real_A = to_channels(batch["A"], cfg.input_nc).contiguous(memory_format=self.memory_format)
        real_B = to_channels(batch["B"], cfg.output_nc).contiguous(memory_format=self.memory_format)
        mode = cfg.gan_mode
        terms: dict[str, Tensor] = {}

        # (1) translate
        with self.autocast():
            fake_B = self.g(real_A)

        # (2) update D: real pairs against fake pairs (detached; from the pool when it is on)
        set_requires_grad([self.D], True)
        real_AB = torch.cat([real_A, real_B], dim=1)
        fake_AB = self.pool.query(torch.cat([real_A, fake_B], dim=1).detach().float())
        with self.autocast():
            pred_real, pred_fake = self.d(real_AB), self.d(fake_AB)
            loss_D = discriminator_loss(pred_real, pred_fake, mode)
            # the reference's halves, loss_D = ½ (D_real + D_fake) (wgangp: no ½); the "real"
            # half is the generator's formula applied to real pairs
            terms["D_real"] = generator_adversarial_loss(pred_real, mode)
            scale = 1.0 if mode == "wgangp" else 2.0
            terms["D_fake"] = scale * loss_D - terms["D_real"]
        if mode == "wgangp":
            terms["gp"] = patch_gradient_penalty(
                self.D, real_AB.float(), fake_AB, generator=self.gp_generator
            )
            loss_D = loss_D + cfg.lambda_gp * terms["gp"]
        if not self.skip_d:
            self.optimizer_step(loss_D, self.opt_D)

        # (3) update G: fool D (frozen; the bare D arms no DDP hooks) and match the target
        set_requires_grad([self.D], False)
        with self.autocast():
            terms["G_GAN"] = generator_adversarial_loss(
                self.D(torch.cat([real_A, fake_B], dim=1)), mode
            )
            terms["G_L1"] = F.l1_loss(fake_B.float(), real_B.float()) * cfg.lambda_l1
            loss_G = terms["G_GAN"] + terms["G_L1"]
        self.optimizer_step(loss_G, self.opt_G)
        set_requires_grad([self.D], True)
        self.scaler.update()
        return {k: v.detach().float() for k, v in terms.items()}

    def state_dict(self) -> dict[str, Any]:
        return {
            **self.optimizer_states(),
            "pool": self.pool.state_dict(),
            "gp_generator": self.gp_generator.get_state(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.load_optimizer_states(state)
        self.pool.load_state_dict(state["pool"], self.device)
        self.gp_generator.set_state(state["gp_generator"])

    def _fixed_pairs(self) -> tuple[Tensor, Tensor] | None:
        cfg = self.config
        if cfg.n_samples < 1:
            return None
        source = cfg.train_source()
        if cfg.data_root is not None:
            for split in ("val", "test"):
                if (Path(cfg.data_root) / split).is_dir():
                    source = Path(cfg.data_root) / split
                    break
        quiet = logging.getLogger("transfigure.datasets")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # the training set's problems are reported by the dataset
        try:
            data = self._aligned(eval_transform(size=cfg.crop_size), source)
            items = [data[i] for i in range(min(cfg.n_samples, len(data)))]
        except (OSError, ValueError, RuntimeError):
            return None
        finally:
            quiet.setLevel(level)
        a = to_channels(torch.stack([it["A"] for it in items]), cfg.input_nc)
        b = to_channels(torch.stack([it["B"] for it in items]), cfg.output_nc)
        return a, b

    @torch.no_grad()
    def sample(self, nets: Mapping[str, nn.Module]) -> tuple[Tensor, int] | None:
        """Rows of input, output, target on fixed pairs (val/ or test/ when there is one)."""
        fixed = self._fixed_pairs()
        if fixed is None:
            return None
        G = nets["G"]
        mode = G.training
        G.eval()
        try:
            cells: list[Tensor] = []
            for a, b in zip(*fixed, strict=True):
                x = a[None].to(self.device)
                cells += [to_rgb01(x).cpu(), to_rgb01(G(x)).cpu(), to_rgb01(b[None])]
            return torch.cat(cells), 3
        finally:
            G.train(mode)

    def export(
        self, run_dir: Path, nets: Mapping[str, nn.Module], info: dict[str, Any]
    ) -> list[Path]:
        cfg = self.config
        direction = cfg.translates
        source = cfg.train_source()
        data = {"data_root": cfg.data_root} if cfg.data_root else {"domain_a": str(source[0])}
        if cfg.data_root is None:
            data["domain_b"] = str(source[1])
        path = save_model(
            nets["G"],
            run_dir / f"generator_{direction}.safetensors",
            kind="cyclegan-generator",
            config=cfg.generator_config(),
            extra={
                **info,
                **data,
                "direction": direction,
                "dropout_at_test": cfg.generator_config().dropout_at_test,
                "trained_with": "transfigure train pix2pix",
            },
        )
        return [path]

    def slow_run_advice(self) -> str:
        return (
            "--crop-size 128 --load-size 143 --net-g unet_128 (4× fewer pixels), "
            "--ngf 32 --ndf 32, or --max-dataset-size 200"
        )
