"""The training config of the GAN core and its three presets.

DCGAN, WGAN-GP and CGAN are one step on the training engine; a preset is only a set of field
values:

========  =============  ========  =========  ================  ====================
preset    loss           n_critic  gp_weight  Adam (lr, β)       critic norm / labels
========  =============  ========  =========  ================  ====================
dcgan     bce + NS G     1         0          2e-4, (0.5, .999)  batch norm
wgan-gp   wasserstein    5         10         1e-4, (0.0, 0.9)   layer norm
cgan      bce + NS G     1         0          2e-4, (0.5, .999)  batch norm, labels (+)
========  =============  ========  =========  ================  ====================

Values from Radford et al. (2015, §4), Gulrajani et al. (2017, Algorithm 1) and Mirza &
Osindero (2014). (+) cgan also shows D real images under wrong labels as fakes (``mismatch``,
Reed et al. 2016), and its G upsamples by nearest neighbour + convolution instead of
transposed convolutions (``upsample="nearest"``, Odena et al. 2016): on the synthetic shapes
its samples show their label 0.850 / 0.810 of the time (seeds 0 / 1) against 0.785 / 0.775,
with the data's variety; on the digits 0.995 / 0.996 against 0.999 / 0.998
(``benchmarks/cgan_quality.py``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from transfigure.gan.data import TORCHVISION_DATASETS
from transfigure.gan.losses import LOSSES
from transfigure.gan.networks import (
    CONDITIONINGS,
    G_CONDITIONINGS,
    NORMS,
    SUPPORTED_IMAGE_SIZES,
    UPSAMPLE_MODES,
    DiscriminatorConfig,
    GeneratorConfig,
)
from transfigure.training.options import TrainOptions, option

__all__ = ["PRESETS", "TrainConfig", "native_channels", "preset"]


def native_channels(data: str) -> int:
    """The channels a ``DATA`` argument has by nature: 1 for mnist-like data, else 3."""
    return TORCHVISION_DATASETS.get(data.lower(), (None, 3))[1]


@dataclass
class TrainConfig(TrainOptions):
    """Everything that defines a GAN training run (saved in ``config.json`` and checkpoints)."""

    data: str = option("", "a folder, shapes[:N], mnist, fashion-mnist or cifar10", cli=False)
    limit: int | None = option(
        None, "train on a seeded random subset of this many images", minimum=1
    )
    image_size: int = option(
        64,
        "side of the (square) images; the data is resized and centre-cropped to it",
        choices=SUPPORTED_IMAGE_SIZES,
    )
    channels: int | None = option(
        None, "1 for grayscale, 3 for RGB [default: the data's own]", choices=(1, 3)
    )
    conditional: bool = option(False, "condition both networks on the class labels", cli=False)
    latent_dim: int = option(100, "length of the latent vector z", minimum=1, aliases=("--nz",))
    g_width: int = option(64, "generator width (feature maps)", minimum=1, aliases=("--ngf",))
    d_width: int = option(64, "discriminator width (feature maps)", minimum=1, aliases=("--ndf",))
    upsample: str = option(
        "transpose",
        "generator upsampling: transposed convolutions, or nearest + convolution (no "
        "checkerboard artefacts)",
        choices=UPSAMPLE_MODES,
    )
    d_norm: str = option(
        "batch",
        "discriminator normalisation: of the activations (batch, layer, instance; no batch "
        "norm with a gradient penalty) or of the weights (spectral, Miyato et al. 2018)",
        choices=NORMS,
    )
    dropout: float = option(0.0, "dropout in the discriminator", minimum=0.0)
    minibatch_std: bool = option(
        False,
        "give D the batch's feature standard deviation as one more feature map, so that a "
        "generator collapsing to a few modes is told apart (Karras et al. 2018)",
    )
    pack: int = option(
        1,
        "PacGAN (Lin et al. 2018): D judges packs of this many samples stacked along the "
        "channels (of one label in a cgan), so a generator that drops a mode is told apart "
        "(1 = off)",
        minimum=1,
    )
    d_first_bias: bool = option(
        False,
        "a bias on D's input convolution also when --d-norm layer or instance normalises the "
        "later layers (without it such a D cannot see an image's contrast)",
    )
    g_conditioning: str = option(
        "concat",
        "cgan: how G sees the label: a one-hot vector beside z, or a per-class scale and shift "
        "in every batch norm",
        choices=G_CONDITIONINGS,
    )
    d_conditioning: str = option(
        "concat",
        "cgan: how D sees the label: one-hot channels beside the image, a projection of its "
        "features onto a class embedding (Miyato & Koyama 2018), or not at all: D predicts it "
        "with a second head and G is rewarded for fakes filed under their label (auxiliary, "
        "AC-GAN, Odena et al. 2017)",
        choices=CONDITIONINGS,
    )
    aux_weight: float = option(
        1.0,
        "cgan with --d-conditioning auxiliary: weight of the class losses (D's on real images, "
        "G's on its fakes) beside the adversarial ones",
        minimum=0.0,
    )
    loss: str = option("bce", "adversarial loss pair", choices=tuple(LOSSES))
    n_critic: int = option(1, "discriminator steps per generator step", minimum=1)
    gp_weight: float = option(0.0, "gradient penalty weight (0 = none)", minimum=0.0)
    clip_value: float = option(0.0, "weight clipping of the original WGAN (0 = none)", minimum=0.0)
    label_smoothing: float = option(0.0, "one-sided label smoothing (bce loss)", minimum=0.0)
    label_noise: float = option(0.0, "probability of flipping a label (bce loss)", minimum=0.0)
    mode_seeking: float = option(
        0.0,
        "weight of the mode-seeking term (Mao et al. 2019): G is penalised when two latents "
        "(under the same label for a cgan) give nearly the same image, against mode and colour "
        "collapse (0 = off; the paper uses 1)",
        minimum=0.0,
    )
    mismatch: bool = option(
        False,
        "cgan: also show D real images under wrong labels as fakes (matching-aware D; not with "
        "--d-conditioning auxiliary, whose D does not see labels)",
    )
    lr_g: float = option(2e-4, "generator learning rate", resumable=True, minimum=0.0)
    lr_d: float = option(2e-4, "discriminator learning rate", resumable=True, minimum=0.0)
    beta1: float = option(0.5, "Adam β1", resumable=True, minimum=0.0)
    beta2: float = option(0.999, "Adam β2", resumable=True, minimum=0.0)
    ema_decay: float = option(
        0.999,
        "moving average of G's weights used for samples and export (0 = off); warmed up, so "
        "early samples already follow training",
        minimum=0.0,
    )
    epochs: int = option(
        25, "passes over the data", resumable=True, minimum=1, aliases=("--niter",)
    )
    batch_size: int = option(64, "images per step and process", minimum=1)
    flip: bool = option(False, "random horizontal flips of the training images")
    log_every: int = option(
        50, "steps per line of metrics.jsonl (epochs always end a line)", resumable=True, minimum=1
    )
    sample_columns: int = option(8, "columns of the per-epoch sample grid", minimum=1)

    @property
    def total_epochs(self) -> int:
        return self.epochs

    @property
    def image_channels(self) -> int:
        """``channels``, or the data's own when it is not set."""
        return self.channels if self.channels is not None else native_channels(self.data)

    @property
    def is_critic(self) -> bool:
        """True when D is a Wasserstein critic (scores, not logits of a probability)."""
        return self.loss == "wasserstein"

    def validate(self) -> None:
        """Check the fields and their combinations; raises ``ValueError`` naming the problem."""
        super().validate()
        if self.gp_weight > 0 and self.d_norm == "batch":
            # batch norm mixes the samples, so the per-sample gradient the penalty constrains
            # is not defined (Gulrajani et al. 2017, §4)
            raise ValueError(
                "the gradient penalty needs a critic without batch norm: use --d-norm layer, "
                "instance, spectral or none"
            )
        if not all(0.0 <= b < 1.0 for b in (self.beta1, self.beta2)):
            raise ValueError(f"betas must be in [0, 1), got {self.beta1}, {self.beta2}")
        if self.lr_g <= 0 or self.lr_d <= 0:
            raise ValueError("learning rates must be positive")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.label_noise <= 0.5:
            raise ValueError("label smoothing must be in [0, 1) and label noise in [0, 0.5]")
        if (self.label_smoothing or self.label_noise) and self.loss != "bce":
            raise ValueError("label smoothing and label noise apply to the bce loss only")
        if self.mode_seeking > 0 and self.batch_size < 2:
            raise ValueError("mode seeking compares pairs of fakes: it needs --batch-size >= 2")
        if self.mismatch and not self.conditional:
            raise ValueError("mismatch (wrong-label real images) needs a conditional GAN")
        if self.pack > 1:
            if self.conditional and self.d_conditioning == "auxiliary":
                raise ValueError("--pack needs a D that sees the labels, not auxiliary")
            if self.mode_seeking > 0:
                raise ValueError("--pack and --mode-seeking pair the fakes differently: use one")
            if self.batch_size < 2 * self.pack:
                raise ValueError(f"--pack {self.pack} needs --batch-size >= {2 * self.pack}")

    def generator_config(self, n_classes: int) -> GeneratorConfig:
        """G's architecture for data with ``n_classes`` labels (used only if conditional)."""
        return GeneratorConfig(
            latent_dim=self.latent_dim,
            image_size=self.image_size,
            channels=self.image_channels,
            width=self.g_width,
            n_classes=n_classes if self.conditional else 0,
            upsample=self.upsample,
            conditioning=self.g_conditioning,
        )

    def discriminator_config(self, n_classes: int) -> DiscriminatorConfig:
        """D's (or the critic's) architecture."""
        return DiscriminatorConfig(
            image_size=self.image_size,
            channels=self.image_channels,
            width=self.d_width,
            n_classes=n_classes if self.conditional else 0,
            norm=self.d_norm,
            dropout=self.dropout,
            conditioning=self.d_conditioning,
            minibatch_std=self.minibatch_std,
            pack=self.pack,
            first_bias=self.d_first_bias,
        )


def _presets() -> dict[str, dict[str, Any]]:
    from transfigure.registry import TRAINERS

    return {
        name: dict(t.preset)
        for name, t in TRAINERS.items()
        if t.config == "transfigure.gan.config:TrainConfig"
    }


PRESETS: dict[str, dict[str, Any]] = _presets()


def preset(name: str, **overrides: Any) -> TrainConfig:
    """The configuration of a preset, with field overrides.

    Args:
        name: ``dcgan``, ``wgan-gp`` or ``cgan``.
        **overrides: fields to change.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown GAN preset {name!r}; choose one of {', '.join(PRESETS)}")
    config = TrainConfig(**{**PRESETS[name], **overrides})
    config.validate()
    return config


def preset_defaults(name: str) -> TrainConfig:
    """The preset's config with no data: the defaults its command line shows."""
    return dataclasses.replace(TrainConfig(), **PRESETS[name])
