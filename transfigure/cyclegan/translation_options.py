"""Settings every image-to-image trainer built on these networks shares (pix2pix, CUT).

Data pipeline, network widths, Adam and the epoch schedule mean the same thing, with the same
reference defaults, in every translator; a trainer's config extends :class:`TranslationOptions`
and redeclares only what differs (a field redeclared in a subclass keeps its place and takes the
new default).
"""

from __future__ import annotations

from dataclasses import dataclass

from transfigure.cyclegan.networks import (
    DISCRIMINATOR_NETS,
    INIT_TYPES,
    NORMS,
    DiscriminatorConfig,
    GeneratorConfig,
)
from transfigure.cyclegan.schedule import POLICIES
from transfigure.datasets.transforms import PREPROCESS_MODES
from transfigure.training.options import TrainOptions, default_workers, option

__all__ = ["TranslationOptions"]


@dataclass
class TranslationOptions(TrainOptions):
    """The shared fields; subclasses add the data folders, the generator and the objective."""

    data_root: str | None = option(None, "the dataset folder", cli=False)
    domain_a: str | None = option(None, "folder of A images (instead of DATA_ROOT)", cli=False)
    domain_b: str | None = option(None, "folder of B images (instead of DATA_ROOT)", cli=False)
    preprocess: str = option("resize_and_crop", "image preprocessing", choices=PREPROCESS_MODES)
    load_size: int = option(286, "resize images to this size first", minimum=1)
    crop_size: int = option(256, "then crop to this size", minimum=1)
    flip: bool = option(True, "random horizontal flips")
    input_nc: int = option(3, "channels of the input (domain A) images", choices=(1, 3))
    output_nc: int = option(3, "channels of the output (domain B) images", choices=(1, 3))
    serial_batches: bool = option(False, "take images in order (no shuffling)")
    max_dataset_size: int | None = option(
        None, "use at most this many images (pairs) per domain", minimum=1
    )
    batch_size: int = option(1, "images per step and process", minimum=1)
    workers: int = option(
        default_factory=default_workers,
        help="data-loading worker processes [default: the CPUs available, at most 4]",
        resumable=True,
        minimum=0,
        aliases=("--num_threads",),
    )
    # networks
    net_d: str = option(
        DiscriminatorConfig.netD,
        "discriminator: basic (70x70 PatchGAN), n_layers, pixel",
        choices=DISCRIMINATOR_NETS,
        aliases=("--netD",),
    )
    ngf: int = option(GeneratorConfig.ngf, "generator width (filters)", minimum=1)
    ndf: int = option(DiscriminatorConfig.ndf, "discriminator width (filters)", minimum=1)
    n_layers_d: int = option(
        DiscriminatorConfig.n_layers,
        "discriminator layers (net-d n_layers)",
        minimum=1,
        aliases=("--n_layers_D",),
    )
    norm: str = option(GeneratorConfig.norm, "normalisation", choices=NORMS)
    init_type: str = option(GeneratorConfig.init_type, "weight initialisation", choices=INIT_TYPES)
    init_gain: float = option(GeneratorConfig.init_gain, "initialisation scale")
    # optimisation
    lr: float = option(2e-4, "Adam learning rate", resumable=True, minimum=0.0)
    beta1: float = option(0.5, "Adam beta1", resumable=True, minimum=0.0)
    beta2: float = option(0.999, "Adam beta2", resumable=True, minimum=0.0)
    n_epochs: int | None = option(
        100, "epochs at the initial learning rate", resumable=True, minimum=0
    )
    n_epochs_decay: int | None = option(
        100, "epochs of decay to zero after that", resumable=True, minimum=0
    )
    lr_policy: str = option("linear", "learning-rate policy", choices=POLICIES)
    lr_decay_iters: int = option(50, "epochs per step (lr-policy step)", minimum=1)
    # run
    channels_last: bool = option(True, "channels-last memory format on CUDA")
    checkpoint_every: int = option(
        100,
        "steps between checkpoints (and exported generator) within an epoch; epochs always "
        "end with one (0: at epoch ends only)",
        resumable=True,
        minimum=0,
        aliases=("--save_latest_freq",),
    )
    n_samples: int = option(4, "fixed images (pairs) in the sample strips", minimum=0)

    @property
    def total_epochs(self) -> int:
        return int(self.n_epochs or 0) + int(self.n_epochs_decay or 0)

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting."""
        super().validate()
        if (self.data_root is None) == (self.domain_a is None and self.domain_b is None):
            raise ValueError("give either data_root or both domain_a and domain_b")
        if self.data_root is None and (self.domain_a is None or self.domain_b is None):
            raise ValueError("domain_a and domain_b must be given together")
        if self.total_epochs < 1:
            raise ValueError("n_epochs + n_epochs_decay must be at least 1")
        if self.lr <= 0:
            raise ValueError(f"lr must be positive, got {self.lr}")

    def discriminator_reading(self, input_nc: int) -> DiscriminatorConfig:
        """A discriminator of these settings reading ``input_nc`` channels."""
        return DiscriminatorConfig(
            netD=self.net_d,
            input_nc=input_nc,
            ndf=self.ndf,
            n_layers=self.n_layers_d,
            norm=self.norm,
            init_type=self.init_type,
            init_gain=self.init_gain,
        )
