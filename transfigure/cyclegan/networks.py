"""CycleGAN networks with the reference implementation's parameter layout.

The module trees below mirror junyanz/pytorch-CycleGAN-and-pix2pix (``models/networks.py``) layer
for layer, so a reference ``state_dict`` loads with ``strict=True``:

- ``ResnetGenerator`` (9 blocks, ngf=64): keys ``model.1.weight`` … ``model.26.bias``, residual
  convolutions at ``model.{10..18}.conv_block.{1,5}``, 11,378,179 parameters. With
  ``antialias=True`` it has the layout of the CUT reference (taesungp/contrastive-unpaired-
  translation): blur-pool ``Downsample`` / ``Upsample`` layers with fixed ``filt`` buffers,
  residual blocks at ``model.{12..20}``, last convolution ``model.30``.
- ``UnetGenerator``: nested ``model.model.1.model.3…`` skip blocks (unet_128 / unet_256).
- ``NLayerDiscriminator``: the 70×70 PatchGAN (``n_layers=3``): a (B, 1, 30, 30) map for 256².
- ``PixelDiscriminator``: the 1×1 PatchGAN (one logit per pixel).

Networks are plain modules: no I/O, no device choice. ``build_generator`` /
``build_discriminator`` turn a config dataclass into an initialised network, and both kinds are
registered with :mod:`transfigure.checkpoint` so a model file rebuilds them from metadata alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn import init

from transfigure.winograd import Conv3x3

__all__ = [
    "NORMS",
    "INIT_TYPES",
    "GENERATOR_NETS",
    "DISCRIMINATOR_NETS",
    "UPSAMPLE_MODES",
    "get_norm_layer",
    "InstanceNorm2d",
    "ResnetBlock",
    "ResizeConv2d",
    "Downsample",
    "Upsample",
    "DropoutAtTest",
    "ResnetGenerator",
    "UnetSkipConnectionBlock",
    "UnetGenerator",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "init_weights",
    "GeneratorConfig",
    "DiscriminatorConfig",
    "build_generator",
    "build_discriminator",
]

NORMS = ("instance", "batch", "none", "instance_affine")
INIT_TYPES = ("normal", "xavier", "kaiming", "orthogonal")
GENERATOR_NETS = ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256")
DISCRIMINATOR_NETS = ("basic", "n_layers", "pixel")
UPSAMPLE_MODES = ("transpose", "resize_conv")
PADDING_TYPES = ("reflect", "replicate", "zero")


class InstanceNorm2d(nn.InstanceNorm2d):
    """:class:`torch.nn.InstanceNorm2d` computed on the CPU as a group norm with one channel per
    group.

    The two are the same function (each image's channels normalised by their own mean and
    biased variance, then the optional affine scale and shift) with the same parameters and
    ``state_dict`` keys, equal to float rounding. PyTorch's CPU instance norm runs batch norm on
    a reshaped view; its group norm is a direct kernel. Measured on one Xeon core, 64 channels
    at 256²: 38 ms against 22 ms in fp32, 14 against 9 ms in bf16, as accurate against a float64
    reference. Only contiguous (N, C, H, W) inputs take that path: PyTorch's channels-last group
    norm computes the variance as E[x²] − E[x]², which loses every digit on a channel with a
    large mean and a small spread (an error of 9 on values 100 ± 0.01). Layers with running
    statistics, unbatched (C, H, W) or channels-last inputs and other devices use PyTorch's
    instance norm.
    """

    def forward(self, input: Tensor) -> Tensor:
        if (
            self.track_running_stats
            or input.dim() != 4
            or input.shape[1] != self.num_features  # PyTorch's layer gives the error
            or input.device.type != "cpu"
            or not input.is_contiguous()
        ):
            return super().forward(input)
        return F.group_norm(input, self.num_features, self.weight, self.bias, self.eps)


def get_norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """Return a factory ``channels -> norm module`` for ``norm`` in :data:`NORMS`.

    ``instance`` is InstanceNorm2d without affine parameters or running statistics (the
    reference's CycleGAN setting); ``batch`` is BatchNorm2d with both; ``instance_affine`` is
    InstanceNorm2d with a learned scale and shift (no statistics), as many re-implementations of
    the reference generator use.
    """
    if norm == "instance":
        return functools.partial(InstanceNorm2d, affine=False, track_running_stats=False)
    if norm == "instance_affine":
        return functools.partial(InstanceNorm2d, affine=True, track_running_stats=False)
    if norm == "batch":
        return functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True)
    if norm == "none":
        return lambda _channels: nn.Identity()
    raise ValueError(f"unknown norm {norm!r}; expected one of {', '.join(NORMS)}")


def _use_bias(norm: str) -> bool:
    # The reference gives convolutions a bias exactly when the norm is InstanceNorm (BatchNorm's
    # shift makes a bias redundant). Departure: with no norm it also passes bias=False, leaving
    # the convolutions without any offset; we keep the bias there. Instance and batch layouts are
    # unchanged, so reference checkpoints load.
    return norm != "batch"


class ResnetBlock(nn.Module):
    """Residual block ``x + conv_block(x)`` with two 3×3 convolutions at constant width.

    Layout (``padding_type="reflect"``, no dropout): ``conv_block.{0: pad, 1: conv, 2: norm,
    3: ReLU, 4: pad, 5: conv, 6: norm}``; dropout inserts ``Dropout(0.5)`` at index 4.
    """

    def __init__(
        self,
        dim: int,
        padding_type: str = "reflect",
        norm: str = "instance",
        use_dropout: bool = False,
        use_bias: bool | None = None,
    ) -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        bias = _use_bias(norm) if use_bias is None else use_bias
        layers: list[nn.Module] = []
        for second in (False, True):
            pad, layers_pad = _padding(padding_type, 1)
            layers += layers_pad
            layers += [Conv3x3(dim, dim, padding=pad, bias=bias), norm_layer(dim)]
            if not second:
                layers.append(nn.ReLU(True))
                if use_dropout:
                    layers.append(nn.Dropout(0.5))
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


def _padding(padding_type: str, amount: int) -> tuple[int, list[nn.Module]]:
    """(conv padding, explicit padding layers) for the reference's three padding types."""
    if padding_type == "reflect":
        return 0, [nn.ReflectionPad2d(amount)]
    if padding_type == "replicate":
        return 0, [nn.ReplicationPad2d(amount)]
    if padding_type == "zero":
        return amount, []
    raise ValueError(
        f"unknown padding_type {padding_type!r}; expected one of {', '.join(PADDING_TYPES)}"
    )


class ResizeConv2d(nn.Conv2d):
    """Nearest-neighbour ×2 upsampling followed by a 3×3 convolution (Odena et al., 2016).

    A drop-in for the generator's stride-2 ``ConvTranspose2d`` that avoids its checkerboard
    artefacts. It *is* a ``Conv2d`` (parameters ``weight`` (out, in, 3, 3) and ``bias``), so it
    occupies one ``nn.Sequential`` index and every other key of the generator keeps its
    reference name; only the weight shapes at the two upsampling indices differ.
    """

    def __init__(
        self, in_channels: int, out_channels: int, *, bias: bool = True, padding_mode: str = "zeros"
    ) -> None:
        super().__init__(
            in_channels,
            out_channels,
            kernel_size=3,
            padding=1,
            bias=bias,
            padding_mode=padding_mode,
        )

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _binomial_filter(size: int) -> Tensor:
    """The normalised 2-D binomial filter of side ``size`` (3: [1, 2, 1] ⊗ [1, 2, 1] / 16)."""
    row = torch.tensor([float(math.comb(size - 1, k)) for k in range(size)])
    filt = row[:, None] * row[None, :]
    return filt / filt.sum()


class Downsample(nn.Module):
    """Anti-aliased ×2 downsampling (Zhang, 2019): blur with a fixed binomial filter, stride 2.

    The CUT reference's ``Downsample(channels)``: reflection padding of 1, a depthwise 3×3
    [1, 2, 1] ⊗ [1, 2, 1] / 16 filter stored as the buffer ``filt`` (channels, 1, 3, 3), so
    reference state dicts (which carry ``filt``) load strictly. (B, C, H, W) → (B, C, ⌈H/2⌉, ⌈W/2⌉).
    """

    def __init__(self, channels: int, filt_size: int = 3) -> None:
        super().__init__()
        self.channels = channels
        left, right = (filt_size - 1) // 2, filt_size // 2
        self.pad = nn.ReflectionPad2d((left, right, left, right))
        filt = _binomial_filter(filt_size)
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(self.pad(x), self.filt.to(x.dtype), stride=2, groups=x.shape[1])


class Upsample(nn.Module):
    """Anti-aliased ×2 upsampling: transposed depthwise convolution with a fixed binomial filter.

    The CUT reference's ``Upsample(channels)``: replication padding of 1, a 4×4
    [1, 3, 3, 1] ⊗ [1, 3, 3, 1] / 64 filter scaled by 4 (buffer ``filt`` (channels, 1, 4, 4)),
    stride 2, and the reference's cropping. (B, C, H, W) → (B, C, 2H, 2W).
    """

    def __init__(self, channels: int, filt_size: int = 4) -> None:
        super().__init__()
        self.channels = channels
        self.filt_odd = filt_size % 2 == 1
        self.pad_size = (filt_size - 1) // 2
        self.pad = nn.ReplicationPad2d(1)
        filt = _binomial_filter(filt_size) * 4  # stride ** 2 keeps the mean
        self.register_buffer("filt", filt[None, None].repeat(channels, 1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv_transpose2d(
            self.pad(x),
            self.filt.to(x.dtype),
            stride=2,
            padding=1 + self.pad_size,
            groups=x.shape[1],
        )[:, :, 1:, 1:]
        return out if self.filt_odd else out[:, :, :-1, :-1]


class DropoutAtTest(nn.Dropout):
    """Dropout that stays on in ``eval()`` mode.

    The pix2pix reference tests with dropout active (its noise source; ``test.py`` never calls
    ``eval()`` unless asked), so a generator built with ``dropout_at_test=True`` uses this in
    place of ``nn.Dropout``. It has no parameters: state dicts are unchanged.
    """

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, training=True, inplace=self.inplace)


class ResnetGenerator(nn.Module):
    """Johnson-style ResNet generator: c7s1-ngf, d2·ngf, d4·ngf, n residual blocks, u2·ngf, u·ngf,
    c7s1-output_nc, tanh.

    Input (B, input_nc, H, W) in [-1, 1]; output (B, output_nc, H, W) in [-1, 1]. H and W must be
    multiples of 4 for the output to come back at the input size.

    ``model`` indices (9 blocks): 0 pad, 1 conv7, 2 norm, 3 ReLU, 4/7 stride-2 convs, 5/8 norms,
    6/9 ReLUs, 10..18 residual blocks, 19/22 upsampling, 20/23 norms, 21/24 ReLUs, 25 pad,
    26 conv7, 27 tanh (with 6 blocks everything after the blocks shifts down by 3).

    ``antialias=True`` (the CUT reference's default layout): each downsampling is a stride-1
    3×3 convolution, norm, ReLU and :class:`Downsample` (indices 4-7, 8-11), the blocks sit at
    12..20, each upsampling is :class:`Upsample`, a 3×3 convolution, norm and ReLU (21-24,
    25-28), then 29 pad, 30 conv7, 31 tanh.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        norm: str = "instance",
        use_dropout: bool = False,
        n_blocks: int = 9,
        padding_type: str = "reflect",
        upsample: str = "transpose",
        antialias: bool = False,
    ) -> None:
        super().__init__()
        if n_blocks < 0:
            raise ValueError(f"n_blocks must be >= 0, got {n_blocks}")
        if upsample not in UPSAMPLE_MODES:
            raise ValueError(
                f"unknown upsample {upsample!r}; expected one of {', '.join(UPSAMPLE_MODES)}"
            )
        _padding(padding_type, 1)  # validate early
        norm_layer = get_norm_layer(norm)
        use_bias = _use_bias(norm)

        model: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=use_bias),
            norm_layer(ngf),
            nn.ReLU(True),
        ]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2**i
            stride = 1 if antialias else 2
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=stride, padding=1, bias=use_bias),
                norm_layer(ngf * mult * 2),
                nn.ReLU(True),
            ]
            if antialias:
                model.append(Downsample(ngf * mult * 2))
        mult = 2**n_downsampling
        for _ in range(n_blocks):
            model.append(ResnetBlock(ngf * mult, padding_type, norm, use_dropout, use_bias))
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            in_c, out_c = ngf * mult, ngf * mult // 2
            if antialias:
                model.append(Upsample(in_c))
                up: nn.Module = nn.Conv2d(in_c, out_c, 3, stride=1, padding=1, bias=use_bias)
            elif upsample == "transpose":
                up = nn.ConvTranspose2d(
                    in_c, out_c, 3, stride=2, padding=1, output_padding=1, bias=use_bias
                )
            else:
                mode = {"reflect": "reflect", "replicate": "replicate", "zero": "zeros"}
                up = ResizeConv2d(in_c, out_c, bias=use_bias, padding_mode=mode[padding_type])
            model += [up, norm_layer(out_c), nn.ReLU(True)]
        model += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*model)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class UnetSkipConnectionBlock(nn.Module):
    """One level of the U-Net: ``x -> [down, submodule, up]`` concatenated with ``x``.

    The outermost level returns the up path alone (no skip), the innermost has no submodule.
    """

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        self.outermost = outermost
        norm_layer = get_norm_layer(norm)
        use_bias = _use_bias(norm)
        if input_nc is None:
            input_nc = outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, stride=2, padding=1, bias=use_bias)
        downrelu = nn.LeakyReLU(0.2, True)
        uprelu = nn.ReLU(True)
        if outermost:
            assert submodule is not None
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, stride=2, padding=1)
            model = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=use_bias)
            model = [downrelu, downconv, uprelu, upconv, norm_layer(outer_nc)]
        else:
            assert submodule is not None
            upconv = nn.ConvTranspose2d(
                inner_nc * 2, outer_nc, 4, stride=2, padding=1, bias=use_bias
            )
            model = [downrelu, downconv, norm_layer(inner_nc), submodule]
            model += [uprelu, upconv, norm_layer(outer_nc)]
            if use_dropout:
                model.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*model)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)


class UnetGenerator(nn.Module):
    """U-Net generator with ``num_downs`` stride-2 levels (7 for 128², 8 for 256²).

    Input (B, input_nc, H, W) in [-1, 1] with H, W multiples of ``2**num_downs``; output
    (B, output_nc, H, W) in [-1, 1].
    """

    def __init__(
        self,
        input_nc: int,
        output_nc: int,
        num_downs: int,
        ngf: int = 64,
        norm: str = "batch",
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        self.num_downs = num_downs
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True, norm=norm)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, norm=norm, use_dropout=use_dropout
            )
        block = UnetSkipConnectionBlock(ngf * 4, ngf * 8, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf * 2, ngf * 4, submodule=block, norm=norm)
        block = UnetSkipConnectionBlock(ngf, ngf * 2, submodule=block, norm=norm)
        self.model = UnetSkipConnectionBlock(
            output_nc, ngf, input_nc=input_nc, submodule=block, outermost=True, norm=norm
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator; ``n_layers=3`` is the 70×70 PatchGAN.

    Input (B, input_nc, H, W); output (B, 1, H', W') raw scores (logits / critic values), one per
    overlapping patch: 256² → 30×30 with 3 layers.
    """

    def __init__(
        self, input_nc: int, ndf: int = 64, n_layers: int = 3, norm: str = "instance"
    ) -> None:
        super().__init__()
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        norm_layer = get_norm_layer(norm)
        use_bias = _use_bias(norm)
        kw, padw = 4, 1
        sequence: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kw, stride=2, padding=padw),
            nn.LeakyReLU(0.2, True),
        ]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2**n, 8)
            sequence += [
                nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kw, 2, padw, bias=use_bias),
                norm_layer(ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]
        nf_mult_prev, nf_mult = nf_mult, min(2**n_layers, 8)
        sequence += [
            nn.Conv2d(ndf * nf_mult_prev, ndf * nf_mult, kw, 1, padw, bias=use_bias),
            norm_layer(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * nf_mult, 1, kw, stride=1, padding=padw),
        ]
        self.model = nn.Sequential(*sequence)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


class PixelDiscriminator(nn.Module):
    """1×1 PatchGAN: one score per pixel. (B, input_nc, H, W) → (B, 1, H, W)."""

    def __init__(self, input_nc: int, ndf: int = 64, norm: str = "instance") -> None:
        super().__init__()
        norm_layer = get_norm_layer(norm)
        use_bias = _use_bias(norm)
        self.net = nn.Sequential(
            nn.Conv2d(input_nc, ndf, 1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, ndf * 2, 1, bias=use_bias),
            norm_layer(ndf * 2),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * 2, 1, 1, bias=use_bias),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def init_weights(
    net: nn.Module,
    init_type: str = "normal",
    init_gain: float = 0.02,
    *,
    generator: torch.Generator | None = None,
) -> nn.Module:
    """Initialise conv / linear weights in place as the reference does; returns ``net``.

    Conv and Linear weights: N(0, gain) (``normal``), Xavier-normal(gain), Kaiming-normal
    (fan_in; gain unused) or orthogonal(gain); their biases zero. BatchNorm: weight N(1, gain),
    bias zero. ``generator`` makes the draw reproducible independently of the global RNG.
    """
    if init_type not in INIT_TYPES:
        raise ValueError(
            f"unknown init_type {init_type!r}; expected one of {', '.join(INIT_TYPES)}"
        )

    def init_func(m: nn.Module) -> None:
        weight = getattr(m, "weight", None)
        if isinstance(m, nn.modules.conv._ConvNd | nn.Linear) and weight is not None:
            if init_type == "normal":
                init.normal_(weight, 0.0, init_gain, generator=generator)
            elif init_type == "xavier":
                init.xavier_normal_(weight, gain=init_gain, generator=generator)
            elif init_type == "kaiming":
                init.kaiming_normal_(weight, a=0, mode="fan_in", generator=generator)
            else:
                init.orthogonal_(weight, gain=init_gain, generator=generator)
            if getattr(m, "bias", None) is not None:
                init.zeros_(m.bias)
        elif isinstance(m, nn.modules.batchnorm._BatchNorm) and weight is not None:
            init.normal_(weight, 1.0, init_gain, generator=generator)
            init.zeros_(m.bias)

    with torch.no_grad():
        net.apply(init_func)
    return net


@dataclass
class GeneratorConfig:
    """Architecture of a CycleGAN generator (stored in every model file).

    ``upsample="resize_conv"`` (resnet only) swaps the two transposed convolutions for
    nearest-×2 + 3×3 convolution at the same ``model`` indices; such files are not
    reference-compatible (the upsampling weights are (out, in, 3, 3)), which this field records.
    ``antialias=True`` (resnet only) is the CUT generator layout; ``dropout_at_test=True``
    (with ``use_dropout``) makes the network's dropout layers :class:`DropoutAtTest`.
    """

    netG: str = "resnet_9blocks"
    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    norm: str = "instance"
    use_dropout: bool = False
    upsample: str = "transpose"
    init_type: str = "normal"
    init_gain: float = 0.02
    #: resnet only: the CUT reference's anti-aliased down/up-sampling layout (blur-pool layers).
    antialias: bool = False
    #: keep dropout active in ``eval()`` (the pix2pix reference tests that way).
    dropout_at_test: bool = False


@dataclass
class DiscriminatorConfig:
    """Architecture of a CycleGAN discriminator: ``basic`` (70×70 PatchGAN), ``n_layers`` or
    ``pixel``."""

    netD: str = "basic"
    input_nc: int = 3
    ndf: int = 64
    n_layers: int = 3
    norm: str = "instance"
    init_type: str = "normal"
    init_gain: float = 0.02


def build_generator(cfg: GeneratorConfig, *, generator: torch.Generator | None = None) -> nn.Module:
    """Build and initialise the generator described by ``cfg``."""
    if cfg.norm not in NORMS:
        raise ValueError(f"unknown norm {cfg.norm!r}; expected one of {', '.join(NORMS)}")
    if cfg.upsample not in UPSAMPLE_MODES:
        raise ValueError(
            f"unknown upsample {cfg.upsample!r}; expected one of {', '.join(UPSAMPLE_MODES)}"
        )
    common = dict(ngf=cfg.ngf, norm=cfg.norm, use_dropout=cfg.use_dropout)
    if cfg.netG in ("resnet_9blocks", "resnet_6blocks"):
        if cfg.antialias and cfg.upsample != "transpose":
            raise ValueError("antialias=True has its own upsampling; leave upsample='transpose'")
        n_blocks = 9 if cfg.netG == "resnet_9blocks" else 6
        net: nn.Module = ResnetGenerator(
            cfg.input_nc,
            cfg.output_nc,
            n_blocks=n_blocks,
            upsample=cfg.upsample,
            antialias=cfg.antialias,
            **common,
        )
    elif cfg.netG in ("unet_128", "unet_256"):
        if cfg.upsample != "transpose":
            raise ValueError("upsample='resize_conv' is only available for resnet generators")
        if cfg.antialias:
            raise ValueError("antialias=True is only available for resnet generators")
        num_downs = 7 if cfg.netG == "unet_128" else 8
        net = UnetGenerator(cfg.input_nc, cfg.output_nc, num_downs, **common)
    else:
        raise ValueError(f"unknown netG {cfg.netG!r}; expected one of {', '.join(GENERATOR_NETS)}")
    if cfg.dropout_at_test:
        _keep_dropout_at_test(net)
    return init_weights(net, cfg.init_type, cfg.init_gain, generator=generator)


def _keep_dropout_at_test(net: nn.Module) -> None:
    for module in list(net.modules()):
        for name, child in module.named_children():
            if type(child) is nn.Dropout:
                setattr(module, name, DropoutAtTest(child.p))


def build_discriminator(
    cfg: DiscriminatorConfig, *, generator: torch.Generator | None = None
) -> nn.Module:
    """Build and initialise the discriminator described by ``cfg``."""
    if cfg.norm not in NORMS:
        raise ValueError(f"unknown norm {cfg.norm!r}; expected one of {', '.join(NORMS)}")
    if cfg.netD == "basic":
        net: nn.Module = NLayerDiscriminator(cfg.input_nc, cfg.ndf, 3, cfg.norm)
    elif cfg.netD == "n_layers":
        net = NLayerDiscriminator(cfg.input_nc, cfg.ndf, cfg.n_layers, cfg.norm)
    elif cfg.netD == "pixel":
        net = PixelDiscriminator(cfg.input_nc, cfg.ndf, cfg.norm)
    else:
        raise ValueError(
            f"unknown netD {cfg.netD!r}; expected one of {', '.join(DISCRIMINATOR_NETS)}"
        )
    return init_weights(net, cfg.init_type, cfg.init_gain, generator=generator)
