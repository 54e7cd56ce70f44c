"""DCGAN generator, discriminator and WGAN critic, optionally conditioned on a class label.

The architecture follows Radford et al. (2015): the generator projects the latent vector to a
small feature map (4×4, or 7×7 for 28-pixel images) and doubles its resolution with strided
transposed convolutions (batch norm + ReLU, ``tanh`` output); the discriminator mirrors it with
strided convolutions (LeakyReLU(0.2), batch norm everywhere but the input layer) and ends in one
logit. A WGAN critic is the same discriminator with ``norm`` other than ``"batch"`` — batch norm
couples the samples of a batch, which breaks the per-sample gradient penalty (Gulrajani et al.
2017, §4). Conditioning follows Mirza & Osindero (2014) by default (``conditioning="concat"``):
a one-hot label is concatenated to the latent vector in G and broadcast as extra image channels
in D. The alternatives of Miyato & Koyama (2018): ``"projection"`` in D adds the inner product
of a learned class embedding with D's pooled last features to the logit, so the label meets
the features that decide the shape instead of only biasing the first layer; ``"batchnorm"`` in
G gives every batch norm a per-class scale and shift (:class:`ClassBatchNorm2d`). And the AC-GAN
of Odena et al. (2017): ``"auxiliary"`` in D does not see the label at all but predicts it, with
a second head beside the real/fake logit (``forward(x, classes=True)``); the trainer rewards G
for fakes that head files under their intended label.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

__all__ = [
    "SUPPORTED_IMAGE_SIZES",
    "UPSAMPLE_MODES",
    "NORMS",
    "CONDITIONINGS",
    "G_CONDITIONINGS",
    "ClassBatchNorm2d",
    "GeneratorConfig",
    "DiscriminatorConfig",
    "Generator",
    "Discriminator",
    "init_dcgan_weights",
]

SUPPORTED_IMAGE_SIZES = (16, 28, 32, 64, 128, 256)
UPSAMPLE_MODES = ("transpose", "nearest")
NORMS = ("batch", "layer", "instance", "spectral", "none")
CONDITIONINGS = ("concat", "projection", "auxiliary")
G_CONDITIONINGS = ("concat", "batchnorm")


def _resolution_plan(image_size: int) -> tuple[int, int]:
    """``(base, n)``: the first feature map is ``base``×``base``, then doubled ``n`` times."""
    if image_size not in SUPPORTED_IMAGE_SIZES:
        raise ValueError(
            f"image_size must be one of {', '.join(map(str, SUPPORTED_IMAGE_SIZES))}, "
            f"got {image_size}"
        )
    if image_size == 28:  # MNIST-like data: 7 → 14 → 28
        return 7, 2
    return 4, int(math.log2(image_size)) - 2


def _check_common(image_size: int, channels: int, width: int, n_classes: int) -> None:
    _resolution_plan(image_size)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    if n_classes < 0:
        raise ValueError(f"n_classes must be >= 0 (0 = unconditional), got {n_classes}")


@dataclass
class GeneratorConfig:
    """Architecture of the DCGAN generator; stored in every generator model file.

    Attributes:
        latent_dim: length of the latent vector z ~ N(0, I).
        image_size: output side in pixels, one of ``SUPPORTED_IMAGE_SIZES``.
        channels: output channels, 1 (grayscale) or 3 (RGB).
        width: feature maps of the last hidden layer (``ngf`` in the DCGAN code); layers nearer
            the latent vector have ``width × 2^k`` maps, capped at ``width × max_width_multiplier``.
        n_classes: number of class labels for a conditional GAN; 0 = unconditional.
        upsample: ``"transpose"`` (strided transposed convolution, as in the paper) or
            ``"nearest"`` (nearest upsampling then a 3×3 convolution, which avoids checkerboard
            artefacts; Odena et al. 2016).
        max_width_multiplier: cap on the width multiplier so 128/256-pixel models stay sane.
        conditioning: how a label enters (used only if ``n_classes > 0``): ``"concat"``, a
            one-hot vector beside z (Mirza & Osindero 2014), or ``"batchnorm"``, a per-class
            scale and shift in every batch norm (de Vries et al. 2017; Miyato & Koyama 2018).
    """

    latent_dim: int = 100
    image_size: int = 64
    channels: int = 3
    width: int = 64
    n_classes: int = 0
    upsample: str = "transpose"
    max_width_multiplier: int = 8
    conditioning: str = "concat"

    def __post_init__(self) -> None:
        _check_common(self.image_size, self.channels, self.width, self.n_classes)
        if self.conditioning not in G_CONDITIONINGS:
            raise ValueError(
                f"conditioning must be one of {G_CONDITIONINGS}, got {self.conditioning!r}"
            )
        if self.latent_dim < 1:
            raise ValueError(f"latent_dim must be positive, got {self.latent_dim}")
        if self.upsample not in UPSAMPLE_MODES:
            raise ValueError(f"upsample must be one of {UPSAMPLE_MODES}, got {self.upsample!r}")
        if self.max_width_multiplier < 1:
            raise ValueError("max_width_multiplier must be >= 1")


@dataclass
class DiscriminatorConfig:
    """Architecture of the DCGAN discriminator / WGAN critic; stored in its model file.

    Attributes:
        image_size: input side in pixels, one of ``SUPPORTED_IMAGE_SIZES``.
        channels: input channels, 1 or 3.
        width: feature maps of the first layer (``ndf``); doubled per layer up to
            ``width × max_width_multiplier``.
        n_classes: number of class labels for a conditional GAN; 0 = unconditional.
        norm: ``"batch"`` (DCGAN discriminator) or, for a WGAN-GP critic, ``"layer"``,
            ``"instance"`` or ``"none"``; these are never applied to the input layer.
            ``"spectral"`` normalises the weights instead of the activations: every layer's
            weight is divided by its largest singular value (Miyato et al. 2018, one power
            iteration per training forward), so D is 1-Lipschitz per layer without removing
            any per-image brightness or contrast from its view.
        dropout: dropout probability after each hidden LeakyReLU (0 = none).
        max_width_multiplier: cap on the width multiplier.
        conditioning: how a label enters (used only if ``n_classes > 0``): ``"concat"``, one-hot
            channels beside the image (Mirza & Osindero 2014), or ``"projection"``, the inner
            product of a class embedding with the pooled last features added to the logit
            (Miyato & Koyama 2018), or ``"auxiliary"``: D does not see the label but predicts it
            with a second head (AC-GAN, Odena et al. 2017). The default is the older one, so
            that model files written before the field existed rebuild the network they hold.
        minibatch_std: append the batch's mean feature standard deviation as one more feature
            map before the last layer (Karras et al. 2018, §3), so that D sees how varied a
            batch is and can reject a generator that collapses to a few modes.
        pack: PacGAN (Lin et al. 2018): D judges ``pack`` consecutive samples at once, stacked
            along the channels, and gives one logit per pack. A generator that drops a mode
            makes packs whose members look too alike, which one sample alone cannot show. A
            conditional D takes one label per pack (the caller groups samples of a label).
        first_bias: give the input convolution a bias even when an activation norm follows the
            later layers. Without it, a layer- or instance-norm D divides every image's
            contrast out again (its first layers are linear in the image up to LeakyReLU), so
            it cannot tell a faint image from a stark one.
    """

    image_size: int = 64
    channels: int = 3
    width: int = 64
    n_classes: int = 0
    norm: str = "batch"
    dropout: float = 0.0
    max_width_multiplier: int = 8
    conditioning: str = "concat"
    minibatch_std: bool = False
    pack: int = 1
    first_bias: bool = False

    def __post_init__(self) -> None:
        _check_common(self.image_size, self.channels, self.width, self.n_classes)
        if self.pack < 1:
            raise ValueError(f"pack must be >= 1, got {self.pack}")
        if self.pack > 1 and self.n_classes and self.conditioning == "auxiliary":
            raise ValueError("pack > 1 needs a D that sees the labels, not 'auxiliary'")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.max_width_multiplier < 1:
            raise ValueError("max_width_multiplier must be >= 1")
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(
                f"conditioning must be one of {CONDITIONINGS}, got {self.conditioning!r}"
            )


def init_dcgan_weights(
    module: nn.Module, *, std: float = 0.02, generator: torch.Generator | None = None
) -> nn.Module:
    """Initialise weights as in DCGAN: convolutions, linear layers and embeddings ~ N(0, std),
    norm scales ~ N(1, std), biases 0.

    Args:
        module: the network; every sub-module is visited.
        std: standard deviation (0.02 in the paper).
        generator: optional ``torch.Generator`` for reproducible initialisation.

    Returns:
        ``module``, initialised in place.
    """
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                m.weight.normal_(0.0, std, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.Embedding):
                m.weight.normal_(0.0, std, generator=generator)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm, nn.InstanceNorm2d)):
                if m.weight is not None:
                    m.weight.normal_(1.0, std, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
    return module


def _one_hot(labels: Tensor | None, n_classes: int, batch: int, like: Tensor) -> Tensor:
    if labels is None:
        raise ValueError(f"this network is conditioned on {n_classes} classes: pass labels")
    if labels.shape != (batch,):
        raise ValueError(f"labels must have shape ({batch},), got {tuple(labels.shape)}")
    if labels.dtype.is_floating_point:
        raise ValueError("labels must be integer class indices")
    return F.one_hot(labels.long(), n_classes).to(dtype=like.dtype)


class ClassBatchNorm2d(nn.Module):
    """Batch norm whose scale and shift depend on the class: ``γ_y · BN(x) + β_y``.

    ``γ_y = 1 + e_γ[y]`` and ``β_y = e_β[y]`` with embeddings drawn by
    :func:`init_dcgan_weights` around 0, so it starts as the DCGAN's batch norm.

    Shapes:
        ``forward(x, labels)``: x ``(B, C, H, W)``, labels ``(B,)`` int64 → ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, n_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(n_classes, channels)
        self.shift = nn.Embedding(n_classes, channels)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        gamma = 1.0 + self.scale(labels.long())[:, :, None, None]  # (B, C, 1, 1)
        return gamma * self.norm(x) + self.shift(labels.long())[:, :, None, None]


class Generator(nn.Module):
    """DCGAN generator: ``z`` (and optionally a label) → image in [-1, 1].

    Args:
        config: the architecture.
        generator: optional ``torch.Generator`` for the N(0, 0.02) initialisation.

    Shapes:
        ``forward(z, labels)``: z ``(B, latent_dim)``, labels ``(B,)`` int64 in
        ``[0, n_classes)`` (required iff ``n_classes > 0``) → ``(B, channels, S, S)`` in [-1, 1].
    """

    def __init__(self, config: GeneratorConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        base, n = _resolution_plan(config.image_size)
        cap = config.max_width_multiplier
        # feature maps at the j-th resolution (j = 0 is base×base, j = n is the image)
        widths = [config.width * min(2 ** (n - 1 - j), cap) for j in range(n)]
        k = config.n_classes
        self._concat = k if config.conditioning == "concat" else 0
        in_ch = config.latent_dim + self._concat

        def norm(c: int) -> nn.Module:
            return ClassBatchNorm2d(c, k) if k and not self._concat else nn.BatchNorm2d(c)

        layers: list[nn.Module] = [
            # a 1×1 → base×base transposed convolution is the paper's projection + reshape
            nn.ConvTranspose2d(in_ch, widths[0], base, 1, 0, bias=False),
            norm(widths[0]),
            nn.ReLU(True),
        ]
        for j in range(1, n):
            layers += [
                self._up(widths[j - 1], widths[j], config.upsample),
                norm(widths[j]),
                nn.ReLU(True),
            ]
        layers += [self._up(widths[-1], config.channels, config.upsample), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        init_dcgan_weights(self, generator=generator)

    @staticmethod
    def _up(c_in: int, c_out: int, mode: str) -> nn.Module:
        if mode == "transpose":
            return nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        )

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        cfg = self.config
        if z.ndim != 2 or z.shape[1] != cfg.latent_dim:
            raise ValueError(f"z must have shape (B, {cfg.latent_dim}), got {tuple(z.shape)}")
        if cfg.n_classes:
            onehot = _one_hot(labels, cfg.n_classes, z.shape[0], z)
        if self._concat:
            z = torch.cat([z, onehot], dim=1)
        x = z[:, :, None, None]  # (B, latent [+ K], 1, 1) → … → (B, C, S, S)
        for layer in self.net:
            x = layer(x, labels) if isinstance(layer, ClassBatchNorm2d) else layer(x)
        return x


class Discriminator(nn.Module):
    """DCGAN discriminator or WGAN critic: image (and optionally a label) → one logit / score.

    Args:
        config: the architecture; ``norm="batch"`` gives the DCGAN discriminator, anything else
            a critic suitable for the gradient penalty.
        generator: optional ``torch.Generator`` for the N(0, 0.02) initialisation.

    Shapes:
        ``forward(x, labels)``: x ``(B, channels, S, S)`` in [-1, 1], labels ``(B,)`` int64
        (required iff ``n_classes > 0``, unused by an ``"auxiliary"`` D) → ``(B,)`` unbounded
        logits (no sigmoid); with ``pack`` m > 1, B must be a multiple of m, samples
        ``i·m … i·m + m − 1`` form pack i and the logits are ``(B / m,)``; a projection D reads
        the label of a pack's first member, a concat D each member's own one-hot channels.
        ``forward(x, classes=True)`` of an ``"auxiliary"`` D returns ``(logits,
        class_logits)``, the latter ``(B, n_classes)``.
    """

    def __init__(self, config: DiscriminatorConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        base, n = _resolution_plan(config.image_size)
        cap = config.max_width_multiplier
        widths = [config.width * min(2**j, cap) for j in range(n)]
        # a following activation norm makes a conv bias redundant
        bias = config.norm in ("none", "spectral")
        self._concat = config.n_classes if config.conditioning == "concat" else 0
        layers: list[nn.Module] = [
            nn.Conv2d(
                (config.channels + self._concat) * config.pack,
                widths[0],
                4,
                2,
                1,
                bias=bias or config.first_bias,
            ),
            nn.LeakyReLU(0.2, inplace=True),
        ]
        if config.dropout:
            layers.append(nn.Dropout(config.dropout))
        for j in range(1, n):
            layers.append(nn.Conv2d(widths[j - 1], widths[j], 4, 2, 1, bias=bias))
            norm = self._norm(config.norm, widths[j])
            if norm is not None:
                layers.append(norm)
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if config.dropout:
                layers.append(nn.Dropout(config.dropout))
        extra = 1 if config.minibatch_std else 0  # the minibatch standard deviation map
        layers.append(nn.Conv2d(widths[-1] + extra, 1, base, 1, 0))  # base×base → 1×1 logit
        self.net = nn.Sequential(*layers)
        self.embed: nn.Embedding | None = None
        if config.n_classes and config.conditioning == "projection":
            self.embed = nn.Embedding(config.n_classes, widths[-1])
        self.classifier: nn.Conv2d | None = None
        if config.n_classes and config.conditioning == "auxiliary":
            # the class head mirrors the logit's: base×base → 1×1, one map per class
            self.classifier = nn.Conv2d(widths[-1], config.n_classes, base, 1, 0)
        init_dcgan_weights(self, generator=generator)
        if config.norm == "spectral":
            # after the initialisation, which writes the plain weights
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding)):
                    spectral_norm(m)

    @staticmethod
    def _norm(kind: str, channels: int) -> nn.Module | None:
        if kind == "batch":
            return nn.BatchNorm2d(channels)
        if kind == "layer":
            # layer norm over (C, H, W) with a per-channel affine, as in the WGAN-GP code
            return nn.GroupNorm(1, channels)
        if kind == "instance":
            return nn.InstanceNorm2d(channels, affine=True)
        return None

    def forward(
        self, x: Tensor, labels: Tensor | None = None, *, classes: bool = False
    ) -> Tensor | tuple[Tensor, Tensor]:
        cfg = self.config
        if classes and self.classifier is None:
            raise ValueError("classes=True needs a discriminator with conditioning='auxiliary'")
        expected = (cfg.channels, cfg.image_size, cfg.image_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must have shape (B, {', '.join(map(str, expected))}), got {tuple(x.shape)}"
            )
        b, _, h, w = x.shape
        if cfg.n_classes and self.classifier is None:
            onehot = _one_hot(labels, cfg.n_classes, b, x)
        if self._concat:
            x = torch.cat([x, onehot[:, :, None, None].expand(b, cfg.n_classes, h, w)], dim=1)
        if cfg.pack > 1:
            if b % cfg.pack:
                raise ValueError(f"a batch of {b} does not split into packs of {cfg.pack}")
            b //= cfg.pack
            x = x.reshape(b, -1, h, w)  # consecutive samples side by side in the channels
            if labels is not None:
                labels = labels[:: cfg.pack]
        features = self.net[:-1](x)  # (B, widths[-1], base, base)
        head = features
        if cfg.minibatch_std:
            # one number per batch: the features' standard deviation over the batch, averaged
            spread = features.float().std(0, unbiased=False).mean().to(features.dtype)
            head = torch.cat([features, spread.expand(b, 1, *features.shape[2:])], dim=1)
        logit = self.net[-1](head).view(-1)  # (B, 1, 1, 1) → (B,)
        if self.embed is not None:
            # projection: + ⟨embed(y), Σ_spatial φ(x)⟩ (Miyato & Koyama 2018, eq. 3)
            logit = logit + (self.embed(labels.long()) * features.sum((2, 3))).sum(1)
        if classes:
            assert self.classifier is not None
            return logit, self.classifier(features).flatten(1)
        return logit
