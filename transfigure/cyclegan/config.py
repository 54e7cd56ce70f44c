"""The CycleGAN training config: the only home of its defaults.

The defaults are the reference's CycleGAN settings (``--model cycle_gan``, ``--no_dropout`` as
in its training scripts and pretrained models). Options accept the reference's spellings
(``--netG``, ``--n_epochs``, ``--lambda_A``) as hidden aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transfigure.cyclegan.losses import GAN_MODES
from transfigure.cyclegan.networks import (
    GENERATOR_NETS,
    UPSAMPLE_MODES,
    DiscriminatorConfig,
    GeneratorConfig,
)
from transfigure.cyclegan.translation_options import TranslationOptions
from transfigure.training.options import option

__all__ = ["TrainConfig", "check_sizes"]


def check_sizes(crop_size: int, net_g: str, net_d: str, n_layers_d: int) -> None:
    """Raise ``ValueError`` when ``crop_size`` is too small for the networks (their feature maps
    would shrink below one pixel), saying what would work."""
    if net_g.startswith("unet_"):
        depth = int(net_g.split("_")[1])
        if crop_size % depth:
            raise ValueError(
                f"--crop-size {crop_size} does not fit {net_g}: its size must be a multiple of "
                f"{depth} (or use a resnet generator, which takes any multiple of 4)"
            )
    if net_d != "pixel" and crop_size < 4 * 2**n_layers_d:
        raise ValueError(
            f"--crop-size {crop_size} is too small for a {n_layers_d}-layer PatchGAN "
            f"discriminator: use at least {4 * 2**n_layers_d}, or fewer --n-layers-d"
        )


@dataclass
class TrainConfig(TranslationOptions):
    """Everything a CycleGAN run is made of (saved in ``config.json`` and every checkpoint).

    The data pipeline, discriminator, Adam and schedule fields are the translators' shared
    ones (:class:`~transfigure.cyclegan.translation_options.TranslationOptions`).
    """

    data_root: str | None = option(
        None, "folder with trainA/ and trainB/ (and optionally testA/, testB/)", cli=False
    )
    # networks
    net_g: str = option(
        GeneratorConfig.netG, "generator architecture", choices=GENERATOR_NETS, aliases=("--netG",)
    )
    use_dropout: bool = option(
        GeneratorConfig.use_dropout, "dropout in the generators", aliases=("--no_dropout",)
    )
    upsample: str = option(
        GeneratorConfig.upsample,
        "generator upsampling: transposed convolutions (reference) or resize + convolution "
        "(no checkerboard artefacts)",
        choices=UPSAMPLE_MODES,
    )
    # objective
    gan_mode: str = option(
        "lsgan", "adversarial loss: lsgan, vanilla (BCE), wgangp", choices=GAN_MODES
    )
    lambda_a: float = option(
        10.0, "weight of the A → B → A cycle loss", minimum=0.0, aliases=("--lambda_A",)
    )
    lambda_b: float = option(
        10.0, "weight of the B → A → B cycle loss", minimum=0.0, aliases=("--lambda_B",)
    )
    lambda_identity: float = option(
        0.5, "identity loss weight, relative to the cycle weights (0 disables)", minimum=0.0
    )
    lambda_gp: float = option(10.0, "gradient penalty weight (wgangp)", minimum=0.0)
    pool_size: int = option(50, "generated images kept for the discriminators", minimum=0)
    checkpoint_every: int = option(
        100,
        "steps between checkpoints (and exported generators) within an epoch; epochs always "
        "end with one (0: at epoch ends only)",
        resumable=True,
        minimum=0,
        aliases=("--save_latest_freq",),
    )
    n_samples: int = option(4, "fixed images per direction in the sample strips", minimum=0)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        super().validate()
        if self.lambda_identity > 0 and self.input_nc != self.output_nc:
            raise ValueError(
                "the identity loss needs input_nc == output_nc "
                f"(got {self.input_nc} and {self.output_nc}); set lambda_identity to 0"
            )
        if self.gan_mode == "wgangp" and self.norm == "batch":
            raise ValueError(
                "wgangp needs a discriminator whose samples do not interact: "
                "use norm instance or none, not batch"
            )
        check_sizes(self.crop_size, self.net_g, self.net_d, self.n_layers_d)

    def generator_config(self, direction: str) -> GeneratorConfig:
        """Architecture of ``G_A`` (``"a2b"``) or ``G_B`` (``"b2a"``)."""
        nc_in, nc_out = (self.input_nc, self.output_nc)
        if direction == "b2a":
            nc_in, nc_out = nc_out, nc_in
        elif direction != "a2b":
            raise ValueError(f"direction must be a2b or b2a, got {direction!r}")
        return GeneratorConfig(
            netG=self.net_g,
            input_nc=nc_in,
            output_nc=nc_out,
            ngf=self.ngf,
            norm=self.norm,
            use_dropout=self.use_dropout,
            upsample=self.upsample,
            init_type=self.init_type,
            init_gain=self.init_gain,
        )

    def discriminator_config(self, domain: str) -> DiscriminatorConfig:
        """Architecture of the discriminator judging domain ``"A"`` (D_B) or ``"B"`` (D_A)."""
        return self.discriminator_reading({"A": self.input_nc, "B": self.output_nc}[domain])

    def domain_dirs(self) -> tuple[Path, Path]:
        if self.data_root is not None:
            return Path(self.data_root) / "trainA", Path(self.data_root) / "trainB"
        assert self.domain_a is not None and self.domain_b is not None
        return Path(self.domain_a), Path(self.domain_b)
