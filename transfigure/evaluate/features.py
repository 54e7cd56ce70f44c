"""Image features for scoring: the FID Inception network and pooled bundled-VGG19 features.

Both extractors take a batch of RGB images in ``[0, 1]`` that this module has already resized
to one square size, so every image is seen at the same scale whatever its file size.
Features are computed once per image set (:func:`extract_features`) and reused by FID, KID and
the domain probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfigure.evaluate.cache import FeatureCache, file_key
from transfigure.events import Callback, Event
from transfigure.images import ImageError, load_image
from transfigure.runtime import autocast

__all__ = [
    "FEATURES",
    "INCEPTION_SIZE",
    "VGG_LAYERS",
    "VGG_SIZE",
    "FeatureSet",
    "FeaturesUnavailableError",
    "PooledVGG19",
    "build_extractor",
    "extract_features",
    "inception_extractor",
    "load_batch",
]

FEATURES = ("inception", "vgg19")
# The FID Inception network was trained and is always evaluated at 299 x 299.
INCEPTION_SIZE = 299
# VGG19's ImageNet resolution; features are pooled, so other sizes work too.
VGG_SIZE = 224
# The deepest layer: its channels respond to objects and textures rather than pixels.
VGG_LAYERS: tuple[str, ...] = ("relu5_4",)


class FeaturesUnavailableError(RuntimeError):
    """A feature network cannot be built (e.g. its weights cannot be downloaded offline)."""


class PooledVGG19(nn.Module):
    """Bundled VGG19 activations, global-average-pooled over space and concatenated.

    Args:
        layers: VGG19 layer names (``relu1_1`` … ``relu5_4``) to pool.
        weights: VGG19 weight source for :func:`transfigure.styletransfer.vgg.build_vgg`
            (``None`` = torchvision's cached weights if present, else the bundled ones).

    Shape:
        input ``(B, 3, H, W)`` RGB in ``[0, 1]``; output ``(B, D)`` float, with
        ``D = num_features`` (512 for ``relu5_4``).
    """

    def __init__(self, layers: Sequence[str] = VGG_LAYERS, weights: str | Path | None = None):
        super().__init__()
        from transfigure.styletransfer.vgg import build_vgg

        self.layers = tuple(layers)
        self.vgg = build_vgg(self.layers, weights=weights)
        channels = {"1": 64, "2": 128, "3": 256, "4": 512, "5": 512}
        # torchmetrics reads ``num_features`` instead of running a dummy 299 px image.
        self.num_features = sum(channels[name[-3]] for name in self.layers)
        self.source = self.vgg.source

    def forward(self, images: Tensor) -> Tensor:
        acts = self.vgg(images, self.layers)
        return torch.cat([acts[name].float().mean(dim=(2, 3)) for name in self.layers], dim=1)


class _InceptionFloat(nn.Module):
    """torchmetrics' FID Inception (2048-d pool features) fed with floats in [0, 1].

    The network itself takes uint8 (as the reference TensorFlow implementation quantised its
    inputs), so the conversion happens here, after resizing.
    """

    num_features = 2048

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        self.source = "torch-fidelity inception-v3-compat"

    def forward(self, images: Tensor) -> Tensor:
        return self.net((images.clamp(0, 1) * 255).round().to(torch.uint8)).float()


def inception_extractor() -> nn.Module:
    """The standard FID InceptionV3 from torchmetrics / torch-fidelity.

    Its weights are downloaded into the torch hub cache on first use. Raises
    :class:`FeaturesUnavailableError` with advice when that fails (no internet).
    """
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3
    except ImportError as exc:  # pragma: no cover - both are dependencies
        raise FeaturesUnavailableError(
            f"the FID Inception network needs torchmetrics and torch-fidelity ({exc})"
        ) from exc
    try:
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"])
    except Exception as exc:  # noqa: BLE001 - urllib/HTTP/OS errors all mean the same here
        raise FeaturesUnavailableError(
            "could not load the FID Inception weights (torch-fidelity downloads "
            f"{_inception_file()} into {torch.hub.get_dir()}/checkpoints on first use; "
            f"{type(exc).__name__}: {exc}). Without internet, use '--features vgg19' (bundled "
            "VGG19 weights; scores are not comparable to published FID)."
        ) from exc
    return _InceptionFloat(net)


def _inception_file() -> str:
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3
    except ImportError:  # pragma: no cover
        return "its weights"
    return URL_INCEPTION_V3.rsplit("/", 1)[-1]


def build_extractor(features: str, *, vgg_weights: str | Path | None = None) -> nn.Module:
    """A feature network by name: ``"inception"`` or ``"vgg19"``; it has ``num_features``."""
    if features == "inception":
        return inception_extractor()
    if features == "vgg19":
        return PooledVGG19(weights=vgg_weights)
    raise ValueError(f"features must be one of {FEATURES}, not {features!r}")


def load_batch(paths: Sequence[Path], size: int) -> tuple[Tensor, list[Path], list[ImageError]]:
    """Decode images and resize each to ``size x size`` (bilinear, antialiased).

    Returns:
        ``(images, loaded, errors)``: images ``(N, 3, size, size)`` in ``[0, 1]`` for the files
        in ``loaded``; the files that could not be decoded are in ``errors``.
    """
    images, loaded, errors = [], [], []
    for path in paths:
        try:
            image = load_image(path)
        except ImageError as exc:
            errors.append(exc)
            continue
        # Aspect ratio is not kept: FID's reference implementation also squashes to a square.
        image = F.interpolate(
            image[None], size=(size, size), mode="bilinear", align_corners=False, antialias=True
        )[0]
        images.append(image.clamp(0, 1))
        loaded.append(Path(path))
    if not images:
        return torch.empty(0, 3, size, size), loaded, errors
    return torch.stack(images), loaded, errors


@dataclass
class FeatureSet:
    """Features of one set of images.

    Attributes:
        features: ``(N, D)`` float64 on the CPU, one row per file in ``paths``.
        paths: the files that were decoded, in order.
        errors: files that could not be decoded (skipped).
    """

    features: Tensor
    paths: list[Path]
    errors: list[ImageError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.paths)


@torch.no_grad()
def extract_features(
    paths: Sequence[Path],
    extractor: nn.Module,
    *,
    size: int,
    batch_size: int = 32,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    callback: Callback | None = None,
    task: str = "features",
    cache: FeatureCache | None = None,
) -> FeatureSet:
    """Run ``extractor`` over image files in batches.

    The next batch is decoded on a thread while the network runs on this one.

    Args:
        paths: image files.
        extractor: a module mapping ``(B, 3, size, size)`` in ``[0, 1]`` to ``(B, D)``; it must
            already be on ``device``.
        size: every image is resized to ``size x size`` first.
        batch_size: images per forward pass.
        device: where the extractor runs.
        precision: ``fp32`` / ``bf16`` / ``fp16`` autocast for the forward pass.
        callback: receives an :class:`~transfigure.events.Event` per batch (unit ``img``).
        task: the progress bar's label.
        cache: features on disk for this extractor, size and precision
            (:class:`~transfigure.evaluate.cache.FeatureCache`): files whose content is there
            are not decoded; the others are added.

    Returns:
        A :class:`FeatureSet` (features in float64 on the CPU), in the order of ``paths``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device)
    total = len(paths)
    found: dict[int, Tensor] = {}
    failed: dict[int, ImageError] = {}
    keys: dict[int, str] = {}
    todo: list[int] = []
    for i, path in enumerate(paths):
        if cache is not None:
            try:
                keys[i] = file_key(path)
            except OSError as exc:
                failed[i] = ImageError(path, f"cannot read ({exc.strerror or exc})")
                continue
            hit = cache.get(keys[i])
            if hit is not None:
                found[i] = hit
                continue
        todo.append(i)

    done = len(found)
    if callback is not None and (found or not todo):
        callback(Event(task, completed=done, total=total, unit="img", done=done == total))
    batches = [todo[start : start + batch_size] for start in range(0, len(todo), batch_size)]

    def decode(batch: list[int]) -> tuple[Tensor, list[Path], list[ImageError]]:
        return load_batch([Path(paths[i]) for i in batch], size)

    with ThreadPoolExecutor(1, thread_name_prefix="decode") as pool:
        ahead = pool.submit(decode, batches[0]) if batches else None
        for n, batch in enumerate(batches):
            assert ahead is not None
            images, ok, bad = ahead.result()
            ahead = pool.submit(decode, batches[n + 1]) if n + 1 < len(batches) else None
            by_path = {Path(paths[i]): i for i in batch}
            for error in bad:
                failed[by_path[Path(error.path)]] = error
            if ok:
                with autocast(device, precision):
                    feats = extractor(images.to(device)).detach().double().cpu()
                for path, row in zip(ok, feats, strict=True):
                    i = by_path[path]
                    found[i] = row
                    if cache is not None:
                        cache.put(keys[i], row)
            done += len(batch)
            if callback is not None:
                callback(Event(task, completed=done, total=total, unit="img", done=done == total))
    order = [i for i in range(total) if i in found]
    dim = int(getattr(extractor, "num_features", 0))
    features = (
        torch.stack([found[i] for i in order])
        if order
        else torch.empty(0, dim, dtype=torch.float64)
    )
    errors = [failed[i] for i in sorted(failed)]
    return FeatureSet(features, [Path(paths[i]) for i in order], errors)
