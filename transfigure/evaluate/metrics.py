"""FID and KID between a folder of real images and a folder of generated ones.

The statistics are torchmetrics' own (:class:`~torchmetrics.image.fid.FrechetInceptionDistance`,
:class:`~torchmetrics.image.kid.KernelInceptionDistance`). Features are extracted once per image
set (:mod:`transfigure.evaluate.features`) and handed to both metrics through a pass-through
feature module, so FID and KID never run the network twice and the same features can also
feed the domain probe.

``features="inception"`` is the standard FID network (comparable to published numbers when the
sets are large: FID is biased upwards for small sets). ``features="vgg19"`` uses the bundled
VGG19, pooled ``relu5_4`` activations: it works offline, but its numbers live on their own
scale and are labelled as such.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from transfigure.evaluate.cache import FeatureCache, extractor_key
from transfigure.evaluate.features import (
    FEATURES,
    INCEPTION_SIZE,
    VGG_LAYERS,
    VGG_SIZE,
    FeatureSet,
    build_extractor,
    extract_features,
)
from transfigure.events import Callback
from transfigure.images import list_images

__all__ = [
    "EvaluateConfig",
    "Scores",
    "compute_scores",
    "default_size",
    "fid_kid_from_features",
    "metric_names",
]


@dataclass
class EvaluateConfig:
    """Settings of ``transfigure evaluate`` (the only home of their defaults)."""

    features: str = field(
        default="inception",
        metadata={
            "help": "Feature network: the standard FID Inception (downloads its weights once) "
            "or the bundled VGG19 (offline; not comparable to published FID).",
            "choices": FEATURES,
        },
    )
    size: int | None = field(
        default=None,
        metadata={
            "help": "Images are resized to SIZE x SIZE first (default: 299 for inception, "
            "224 for vgg19; inception only accepts 299).",
            "type": int,
        },
    )
    batch_size: int = field(default=32, metadata={"help": "Images per forward pass."})
    kid_subsets: int = field(
        default=100, metadata={"help": "Random subsets averaged for KID (and its std)."}
    )
    kid_subset_size: int = field(
        default=1000,
        metadata={"help": "Images per KID subset (capped at the smaller set's size)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the KID subset sampling."})

    def __post_init__(self) -> None:
        if self.features not in FEATURES:
            raise ValueError(f"features must be one of {FEATURES}, not {self.features!r}")
        if self.size is not None and self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        if self.features == "inception" and self.size not in (None, INCEPTION_SIZE):
            raise ValueError(
                f"the FID Inception network always sees {INCEPTION_SIZE} x {INCEPTION_SIZE} "
                f"images; size {self.size} is only for --features vgg19"
            )
        for name in ("batch_size", "kid_subsets", "kid_subset_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def image_size(self) -> int:
        return self.size if self.size is not None else default_size(self.features)


def default_size(features: str) -> int:
    """The side every image is resized to for a feature network."""
    return INCEPTION_SIZE if features == "inception" else VGG_SIZE


def metric_names(features: str) -> tuple[str, str]:
    """Display names of (FID, KID) for a feature network: VGG19 scores are labelled apart."""
    if features == "inception":
        return "FID", "KID"
    return "FID-VGG19 (not comparable to Inception FID)", "KID-VGG19"


@dataclass
class Scores:
    """FID and KID of a generated image set against a real one.

    Attributes:
        features: ``"inception"`` or ``"vgg19"``.
        feature_source: where the network weights came from.
        feature_layers: what was pooled (``"pool3 (2048)"`` or the VGG layers).
        size: images were resized to ``size x size``.
        n_real, n_fake: images scored in each set.
        fid: Fréchet distance between Gaussian fits of the two feature sets (0 = identical).
        kid_mean, kid_std: kernel (polynomial, degree 3) MMD², mean and std over subsets.
        kid_subsets, kid_subset_size: how KID was sampled.
        skipped: files that could not be decoded, as ``"path: reason"``.
    """

    features: str
    feature_source: str
    feature_layers: str
    size: int
    n_real: int
    n_fake: int
    fid: float
    kid_mean: float
    kid_std: float
    kid_subsets: int
    kid_subset_size: int
    skipped: list[str] = field(default_factory=list)

    @property
    def fid_name(self) -> str:
        return metric_names(self.features)[0]

    @property
    def kid_name(self) -> str:
        return metric_names(self.features)[1]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["fid_name"] = self.fid_name
        out["kid_name"] = self.kid_name
        return out


class _Precomputed(nn.Module):
    """A torchmetrics feature module whose input is already the feature batch ``(B, D)``."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: Tensor) -> Tensor:
        if features.ndim != 2 or features.shape[1] != self.num_features:
            raise ValueError(f"expected (B, {self.num_features}) features, got {features.shape}")
        return features


def fid_kid_from_features(
    real: Tensor,
    fake: Tensor,
    *,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float, int]:
    """FID and KID (torchmetrics) of two feature sets.

    Args:
        real: ``(N, D)`` features of real images (N >= 2).
        fake: ``(M, D)`` features of generated images (M >= 2).
        kid_subsets: subsets averaged for KID.
        kid_subset_size: images per subset, capped at ``min(N, M)``.
        seed: KID draws its subsets with torch's global generator; it is forked and seeded
            here, so the result is reproducible and the caller's random state is untouched.

    Returns:
        ``(fid, kid_mean, kid_std, subset_size_used)``.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance
    from torchmetrics.image.kid import KernelInceptionDistance

    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sets differ in shape: {tuple(real.shape)}, {tuple(fake.shape)}")
    if len(real) < 2 or len(fake) < 2:
        raise ValueError(
            f"FID and KID need at least 2 images in each set (real {len(real)}, fake {len(fake)})"
        )
    dim = real.shape[1]
    subset_size = min(kid_subset_size, len(real), len(fake))
    fid = FrechetInceptionDistance(feature=_Precomputed(dim), normalize=True)
    # The warning is about memory for huge sets; the features are held here anyway.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        kid = KernelInceptionDistance(
            feature=_Precomputed(dim), subsets=kid_subsets, subset_size=subset_size, normalize=True
        )
    # Float64 throughout: the matrix square root in FID is sensitive to rounding.
    real, fake = real.double().cpu(), fake.double().cpu()
    fid.update(real, real=True)
    fid.update(fake, real=False)
    kid.update(real, real=True)
    kid.update(fake, real=False)
    fid_value = float(fid.compute())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    # A perfect match can come out a hair below zero from the eigenvalue rounding.
    return max(fid_value, 0.0), float(kid_mean), float(kid_std), subset_size


def _paths(source: str | Path | Sequence[Path], name: str) -> list[Path]:
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.exists():
            raise FileNotFoundError(f"{folder}: no such folder ({name} images)")
        paths = list_images(folder, recursive=True)
    else:
        paths = [Path(p) for p in source]
    if len(paths) < 2:
        raise ValueError(f"{source}: FID and KID need at least 2 {name} images, found {len(paths)}")
    return paths


def compute_scores(
    real: str | Path | Sequence[Path],
    fake: str | Path | Sequence[Path],
    config: EvaluateConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    extractor: nn.Module | None = None,
    vgg_weights: str | Path | None = None,
    callback: Callback | None = None,
    cache: bool = False,
) -> tuple[Scores, FeatureSet, FeatureSet]:
    """FID and KID of the images in ``fake`` against those in ``real``.

    Args:
        real: a folder (searched recursively) or a list of image files.
        fake: the same, for generated images.
        config: features, size, batch size and KID sampling.
        device: where the feature network runs.
        precision: autocast precision of the feature network.
        extractor: a prebuilt feature network (``build_extractor``), already on ``device``.
        vgg_weights: VGG19 weight source for ``features="vgg19"``.
        callback: progress events ("features real", "features fake").
        cache: keep each image's features on disk (:mod:`transfigure.evaluate.cache`) and reuse
            them for files with the same content.

    Returns:
        ``(scores, real_features, fake_features)``: the features can be reused (e.g. by the
        probe when it uses the same network and size).

    Raises:
        FeaturesUnavailableError: the Inception weights cannot be downloaded.
        ValueError: fewer than 2 decodable images in a set.
    """
    config = config or EvaluateConfig()
    real_paths = _paths(real, "real")
    fake_paths = _paths(fake, "fake")
    device = torch.device(device)
    if extractor is None:
        extractor = build_extractor(config.features, vgg_weights=vgg_weights).to(device)
    size = config.image_size
    store = (
        FeatureCache(extractor_key(extractor, size=size, precision=precision)) if cache else None
    )
    sets = []
    for name, paths in (("real", real_paths), ("fake", fake_paths)):
        sets.append(
            extract_features(
                paths,
                extractor,
                size=size,
                batch_size=config.batch_size,
                device=device,
                precision=precision,
                callback=callback,
                task=f"features {name}",
                cache=store,
            )
        )
    real_set, fake_set = sets
    fid, kid_mean, kid_std, subset_size = fid_kid_from_features(
        real_set.features,
        fake_set.features,
        kid_subsets=config.kid_subsets,
        kid_subset_size=config.kid_subset_size,
        seed=config.seed,
    )
    layers = "pool3 (2048-d)" if config.features == "inception" else "+".join(VGG_LAYERS)
    if config.features == "vgg19":
        layers += f" global average ({int(getattr(extractor, 'num_features', 0))}-d)"
    scores = Scores(
        features=config.features,
        feature_source=str(getattr(extractor, "source", type(extractor).__name__)),
        feature_layers=layers,
        size=size,
        n_real=len(real_set),
        n_fake=len(fake_set),
        fid=fid,
        kid_mean=kid_mean,
        kid_std=kid_std,
        kid_subsets=config.kid_subsets,
        kid_subset_size=subset_size,
        skipped=[str(e) for e in real_set.errors + fake_set.errors],
    )
    return scores, real_set, fake_set
