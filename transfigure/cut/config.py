"""The CUT / FastCUT training config: the only home of their defaults.

The defaults are the CUT reference's (taesungp/contrastive-unpaired-translation,
``--model cut``): resnet_9blocks with anti-aliased sampling, instance norm, Xavier
initialisation, the 70×70 PatchGAN, LSGAN, Adam 2e-4 with β (0.5, 0.999), batch 1, no image
pool, the ``mlp_sample`` projection head of 256 units, 256 patches per layer at the layers
0, 4, 8, 12, 16, τ = 0.07. ``mode`` picks the reference's presets for the settings left unset:

- ``cut``: λ_NCE 1 with the identity term NCE(G(Y), Y), 200 + 200 epochs;
- ``fastcut``: λ_NCE 10, no identity term, flip-equivariance augmentation, 150 + 50 epochs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from transfigure.cut.networks import CUT_NCE_LAYERS
from transfigure.cyclegan.losses import GAN_MODES
from transfigure.cyclegan.networks import INIT_TYPES, NORMS, DiscriminatorConfig, GeneratorConfig
from transfigure.cyclegan.translation_options import TranslationOptions
from transfigure.training.options import option

__all__ = ["MODES", "MODE_PRESETS", "TrainConfig"]

MODES = ("cut", "fastcut")

#: What ``mode`` sets when the field is left unset (None).
MODE_PRESETS: dict[str, dict[str, object]] = {
    "cut": {
        "lambda_nce": 1.0,
        "nce_idt": True,
        "flip_equivariance": False,
        "n_epochs": 200,
        "n_epochs_decay": 200,
    },
    "fastcut": {
        "lambda_nce": 10.0,
        "nce_idt": False,
        "flip_equivariance": True,
        "n_epochs": 150,
        "n_epochs_decay": 50,
    },
}

# The generators CUT's PatchNCE reads encoder features from (a sequential layer list).
RESNET_NETS = ("resnet_9blocks", "resnet_6blocks")


@dataclass
class TrainConfig(TranslationOptions):
    """Everything a CUT or FastCUT run is made of (saved in ``config.json``)."""

    mode: str = option(
        "cut", "cut, or fastcut (presets for the settings left unset)", choices=MODES
    )
    # data
    data_root: str | None = option(
        None, "folder with trainA/ and trainB/ (and optionally testA/, testB/)", cli=False
    )
    # networks
    net_g: str = option(
        "resnet_9blocks", "generator architecture", choices=RESNET_NETS, aliases=("--netG",)
    )
    antialias: bool = option(
        True,
        "anti-aliased down/up-sampling in the generator (the reference's; its --no_antialias)",
    )
    norm: str = option("instance", "normalisation (generator and discriminator)", choices=NORMS)
    init_type: str = option("xavier", "weight initialisation", choices=INIT_TYPES)
    # objective
    gan_mode: str = option("lsgan", "adversarial loss: lsgan, vanilla (BCE)", choices=GAN_MODES)
    lambda_gan: float = option(1.0, "weight of the adversarial loss", minimum=0.0)
    lambda_nce: float | None = option(
        None,
        "weight of the PatchNCE loss [default: 1 for cut, 10 for fastcut]",
        minimum=0.0,
        aliases=("--lambda_NCE",),
    )
    nce_idt: bool | None = option(
        None, "identity PatchNCE term NCE(G(Y), Y) [default: on for cut, off for fastcut]"
    )
    flip_equivariance: bool | None = option(
        None, "flip-equivariance augmentation [default: off for cut, on for fastcut]"
    )
    nce_layers: str = option(
        ",".join(map(str, CUT_NCE_LAYERS)), "generator layers PatchNCE compares, comma-separated"
    )
    net_f_nc: int = option(
        256, "width of the patch projection MLP", minimum=1, aliases=("--netF_nc",)
    )
    num_patches: int = option(256, "patch locations sampled per layer", minimum=1)
    nce_t: float = option(0.07, "PatchNCE temperature", minimum=0.0, aliases=("--nce_T",))
    # optimisation
    n_epochs: int | None = option(
        None,
        "epochs at the initial learning rate [default: 200 for cut, 150 for fastcut]",
        resumable=True,
        minimum=0,
    )
    n_epochs_decay: int | None = option(
        None,
        "epochs of decay to zero after that [default: 200 for cut, 50 for fastcut]",
        resumable=True,
        minimum=0,
    )

    def __post_init__(self) -> None:
        # The mode's presets fill what was left unset, so config.json states what was used.
        for name, value in MODE_PRESETS.get(self.mode, {}).items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    @property
    def layers(self) -> tuple[int, ...]:
        """:attr:`nce_layers` as integers."""
        return tuple(int(x) for x in self.nce_layers.split(",") if x.strip())

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        super().validate()
        if self.gan_mode == "wgangp":
            raise ValueError("CUT trains with lsgan or vanilla; wgangp is not offered")
        try:
            layers = self.layers
        except ValueError:
            raise ValueError(
                f"nce_layers must be comma-separated integers, got {self.nce_layers!r}"
            ) from None
        if not layers or list(layers) != sorted(set(layers)) or layers[0] < 0:
            raise ValueError(f"nce_layers must be increasing and >= 0, got {self.nce_layers!r}")
        if self.nce_idt and self.input_nc != self.output_nc:
            raise ValueError(
                "the identity NCE term runs G on B images: it needs input_nc == output_nc "
                f"(got {self.input_nc} and {self.output_nc}); use --no-nce-idt"
            )
        if self.nce_t <= 0:
            raise ValueError(f"nce_t must be positive, got {self.nce_t}")

    def generator_config(self) -> GeneratorConfig:
        """Architecture of the generator A → B (dropout off, as in the reference)."""
        return GeneratorConfig(
            netG=self.net_g,
            input_nc=self.input_nc,
            output_nc=self.output_nc,
            ngf=self.ngf,
            norm=self.norm,
            init_type=self.init_type,
            init_gain=self.init_gain,
            antialias=self.antialias,
        )

    def discriminator_config(self) -> DiscriminatorConfig:
        """Architecture of the discriminator judging domain B."""
        return self.discriminator_reading(self.output_nc)

    def domain_dirs(self) -> tuple[Path, Path]:
        if self.data_root is not None:
            return Path(self.data_root) / "trainA", Path(self.data_root) / "trainB"
        assert self.domain_a is not None and self.domain_b is not None
        return Path(self.domain_a), Path(self.domain_b)
