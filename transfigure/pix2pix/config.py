"""The pix2pix training config: the only home of its defaults.

The defaults are the pix2pix reference's (``--model pix2pix``: U-Net 256 with dropout, the
70×70 PatchGAN judging (input, output) pairs, batch norm, vanilla GAN loss + λ_L1 = 100, Adam
2e-4 with β1 0.5, no image pool, 100 + 100 epochs with linear decay). The other generator,
discriminator and norm choices are CycleGAN's; the fields every translator shares live in
:class:`~transfigure.cyclegan.translation_options.TranslationOptions`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transfigure.cyclegan.losses import GAN_MODES
from transfigure.cyclegan.networks import (
    GENERATOR_NETS,
    NORMS,
    UPSAMPLE_MODES,
    DiscriminatorConfig,
    GeneratorConfig,
)
from transfigure.cyclegan.translation_options import TranslationOptions
from transfigure.datasets.aligned import DIRECTIONS
from transfigure.training.options import option

__all__ = ["TrainConfig"]


@dataclass
class TrainConfig(TranslationOptions):
    """Everything a pix2pix run is made of (saved in ``config.json`` and every checkpoint)."""

    # data
    data_root: str | None = option(
        None, "folder with train/ of A|B images (and optionally val/ or test/)", cli=False
    )
    domain_b: str | None = option(
        None, "folder of B images with the same file names (instead of DATA_ROOT)", cli=False
    )
    direction: str = option("AtoB", "which side is the input", choices=DIRECTIONS)
    # networks
    net_g: str = option(
        "unet_256", "generator architecture", choices=GENERATOR_NETS, aliases=("--netG",)
    )
    norm: str = option("batch", "normalisation", choices=NORMS)
    use_dropout: bool = option(True, "dropout in the generator (the reference's noise source)")
    dropout_at_test: bool = option(
        True,
        "keep dropout on when translating, as the reference tests (recorded in the model file)",
    )
    upsample: str = option(
        GeneratorConfig.upsample,
        "generator upsampling (resnet only): transposed convolutions or resize + convolution",
        choices=UPSAMPLE_MODES,
    )
    # objective
    gan_mode: str = option(
        "vanilla", "adversarial loss: vanilla (BCE), lsgan, wgangp", choices=GAN_MODES
    )
    lambda_l1: float = option(
        100.0, "weight of the L1 distance to the target", minimum=0.0, aliases=("--lambda_L1",)
    )
    lambda_gp: float = option(10.0, "gradient penalty weight (wgangp)", minimum=0.0)
    pool_size: int = option(0, "generated pairs kept for the discriminator (0: none)", minimum=0)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        super().validate()
        if self.gan_mode == "wgangp" and self.norm == "batch":
            raise ValueError(
                "wgangp needs a discriminator whose samples do not interact: "
                "use norm instance or none, not batch"
            )
        if self.net_g.startswith("unet") and self.upsample != "transpose":
            raise ValueError("upsample resize_conv is for resnet generators only")

    def generator_config(self) -> GeneratorConfig:
        """Architecture of the generator (input → output)."""
        return GeneratorConfig(
            netG=self.net_g,
            input_nc=self.input_nc,
            output_nc=self.output_nc,
            ngf=self.ngf,
            norm=self.norm,
            use_dropout=self.use_dropout,
            upsample=self.upsample,
            init_type=self.init_type,
            init_gain=self.init_gain,
            dropout_at_test=self.use_dropout and self.dropout_at_test,
        )

    def discriminator_config(self) -> DiscriminatorConfig:
        """The conditional discriminator: it sees the input and the output, concatenated."""
        return self.discriminator_reading(self.input_nc + self.output_nc)

    def train_source(self) -> Path | tuple[Path, Path]:
        """``DATA_ROOT/train`` (side-by-side pairs), or the two folders."""
        if self.data_root is not None:
            return Path(self.data_root) / "train"
        assert self.domain_a is not None and self.domain_b is not None
        return Path(self.domain_a), Path(self.domain_b)

    @property
    def translates(self) -> str:
        """``a2b`` or ``b2a``: what the exported generator does."""
        return "a2b" if self.direction == "AtoB" else "b2a"
