"""Did the translation reach the target domain? A linear probe on bundled-VGG19 features.

A logistic regression is trained to tell real domain-A images from real domain-B images by
their pooled VGG19 features; the translated images are then classified, and the fraction
assigned to the target domain is reported. This is the analogue of the CycleGAN paper's "FCN
score" (a fixed recogniser applied to the outputs), with a classifier fitted to the two
domains at hand because no pretrained recogniser for them is available offline.

A probe that cannot separate the real domains says nothing about translations, so a balanced
accuracy on held-out real images (every ``holdout_every``-th image) is reported beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfigure.evaluate.cache import FeatureCache, extractor_key
from transfigure.evaluate.features import VGG_SIZE, FeatureSet, PooledVGG19, extract_features
from transfigure.events import Callback
from transfigure.images import list_images

__all__ = [
    "LinearProbe",
    "ProbeConfig",
    "ProbeResult",
    "fit_probe",
    "probe_translation",
    "sample_paths",
]


@dataclass
class ProbeConfig:
    """Settings of the domain probe (the only home of their defaults)."""

    size: int = VGG_SIZE
    batch_size: int = 32
    steps: int = 200  # L-BFGS iterations; the problem is convex and small
    l2: float = 1e-3  # weight decay on standardised features: keeps the fit finite
    holdout_every: int = 5  # every 5th real image of each domain is held out for the accuracy
    # Real images per domain: a seeded sample is enough for a linear probe on 512 features and
    # keeps it to minutes on a CPU (None: every image).
    sample: int | None = 300
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        for name in ("batch_size", "steps", "holdout_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.l2 < 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2}")
        if self.sample is not None and self.sample < 2:
            raise ValueError(f"sample must be >= 2 or None (all images), got {self.sample}")


@dataclass
class LinearProbe:
    """A logistic regression on standardised features: ``P(B | x) = sigmoid(w·z + b)``.

    Attributes:
        mean, std: ``(D,)`` standardisation fitted on the training features.
        weight: ``(D,)``; bias: scalar tensor.
    """

    mean: Tensor
    std: Tensor
    weight: Tensor
    bias: Tensor

    def logits(self, features: Tensor) -> Tensor:
        """``(N, D)`` features → ``(N,)`` logits (positive = domain B)."""
        z = (features.to(self.mean) - self.mean) / self.std
        return z @ self.weight + self.bias

    def prob_b(self, features: Tensor) -> Tensor:
        """``(N, D)`` features → ``(N,)`` probability of domain B, in ``[0, 1]``."""
        return torch.sigmoid(self.logits(features))


def fit_probe(
    features_a: Tensor, features_b: Tensor, *, steps: int = 200, l2: float = 1e-3
) -> LinearProbe:
    """Fit a class-balanced logistic regression, A = 0 and B = 1, by full-batch L-BFGS.

    Deterministic: the weights start at zero and the objective is convex.

    Args:
        features_a: ``(N_a, D)`` features of domain A (N_a >= 1).
        features_b: ``(N_b, D)`` features of domain B (N_b >= 1).
        steps: maximum L-BFGS iterations.
        l2: ridge penalty ``l2 / 2 * |w|²`` added to the mean loss.
    """
    if len(features_a) < 1 or len(features_b) < 1:
        raise ValueError("the probe needs at least one image of each domain")
    if features_a.shape[1:] != features_b.shape[1:] or features_a.ndim != 2:
        raise ValueError(
            f"feature shapes differ: {tuple(features_a.shape)}, {tuple(features_b.shape)}"
        )
    x = torch.cat([features_a, features_b]).double()
    y = torch.cat([torch.zeros(len(features_a)), torch.ones(len(features_b))]).double()
    # Each domain weighs half, whatever the folder sizes.
    sample_weight = torch.where(y > 0, 0.5 / len(features_b), 0.5 / len(features_a))
    mean = x.mean(0)
    std = x.std(0, unbiased=False).clamp_min(1e-6)  # dead ReLU channels have zero spread
    z = (x - mean) / std

    weight = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS(
        [weight, bias], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe"
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        logits = z @ weight + bias
        losses = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
        loss = (losses * sample_weight).sum() + 0.5 * l2 * weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return LinearProbe(mean, std, weight.detach(), bias.detach())


def _balanced_accuracy(probe: LinearProbe, features_a: Tensor, features_b: Tensor) -> float:
    correct_a = (probe.prob_b(features_a) < 0.5).double().mean()
    correct_b = (probe.prob_b(features_b) >= 0.5).double().mean()
    return float((correct_a + correct_b) / 2)


@dataclass
class ProbeResult:
    """Outcome of the probe on a folder of translated images.

    Attributes:
        target: the domain the translations should be in (``"B"``).
        n_a, n_b: real images the probe was fitted on.
        heldout_accuracy: balanced accuracy on held-out real images (``None`` when a domain
            has fewer than ``holdout_every`` images); near 1.0 means the probe is meaningful.
        train_accuracy: balanced accuracy of the final probe on all the real images.
        n_translated: translated images classified.
        fraction_target: fraction of them assigned to the target domain (the success rate).
        mean_probability: their mean probability of the target domain.
        size: images were resized to ``size x size``.
        skipped: files that could not be decoded.
    """

    target: str
    n_a: int
    n_b: int
    heldout_accuracy: float | None
    train_accuracy: float
    n_translated: int
    fraction_target: float
    mean_probability: float
    size: int
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _split(n: int, every: int) -> tuple[Tensor, Tensor]:
    index = torch.arange(n)
    held = index % every == every - 1
    return index[~held], index[held]


def _paths(source: str | Path | Sequence[Path], name: str) -> list[Path]:
    if isinstance(source, (str, Path)):
        folder = Path(source)
        if not folder.exists():
            raise FileNotFoundError(f"{folder}: no such folder ({name})")
        paths = list_images(folder, recursive=True)
    else:
        paths = [Path(p) for p in source]
    if not paths:
        raise ValueError(f"{source}: no images found ({name})")
    return paths


def sample_paths(paths: Sequence[Path], n: int | None, *, seed: int = 0) -> list[Path]:
    """A fixed, seeded sample of ``n`` files (all of them when ``n`` is ``None`` or larger).

    The files are sorted first, so the sample depends on the folder's content, not on the order
    the file system lists it in; the sample keeps that sorted order.
    """
    ordered = sorted(Path(p) for p in paths)
    if n is None or n >= len(ordered):
        return ordered
    pick = torch.randperm(len(ordered), generator=torch.Generator().manual_seed(seed))[:n]
    return [ordered[i] for i in sorted(pick.tolist())]


def probe_translation(
    domain_a: str | Path | Sequence[Path],
    domain_b: str | Path | Sequence[Path],
    translated: str | Path | Sequence[Path] | FeatureSet,
    config: ProbeConfig | None = None,
    *,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    extractor: nn.Module | None = None,
    vgg_weights: str | Path | None = None,
    callback: Callback | None = None,
    cache: bool = False,
) -> ProbeResult:
    """Fraction of translated images that a real-A-vs-real-B probe assigns to domain B.

    For B→A translations, pass the domains the other way round.

    Args:
        domain_a: real images of the source domain (folder or files).
        domain_b: real images of the target domain.
        translated: the translations (folder or files), or their features already extracted
            with the same network and ``config.size``.
        config: probe settings.
        device: where VGG19 runs.
        precision: autocast precision of VGG19.
        extractor: a prebuilt :class:`~transfigure.evaluate.features.PooledVGG19` on ``device``.
        vgg_weights: VGG19 weight source when ``extractor`` is not given.
        callback: progress events ("probe A", "probe B", "probe translated").
        cache: keep each image's features on disk (:mod:`transfigure.evaluate.cache`) and reuse
            them for files with the same content.

    Each real domain is sampled to ``config.sample`` images (seeded: the same images every
    time); the translated images are all classified.
    """
    config = config or ProbeConfig()
    device = torch.device(device)
    if extractor is None:
        extractor = PooledVGG19(weights=vgg_weights).to(device)
    store = None
    if cache:
        store = FeatureCache(extractor_key(extractor, size=config.size, precision=precision))

    def features(paths: list[Path], task: str) -> FeatureSet:
        return extract_features(
            paths,
            extractor,
            size=config.size,
            batch_size=config.batch_size,
            device=device,
            precision=precision,
            callback=callback,
            task=task,
            cache=store,
        )

    def sample(paths: list[Path]) -> list[Path]:
        return sample_paths(paths, config.sample, seed=config.seed)

    set_a = features(sample(_paths(domain_a, "domain A")), "probe A")
    set_b = features(sample(_paths(domain_b, "domain B")), "probe B")
    if isinstance(translated, FeatureSet):
        set_t = translated
    else:
        set_t = features(_paths(translated, "translated images"), "probe translated")
    if len(set_a) < 1 or len(set_b) < 1 or len(set_t) < 1:
        raise ValueError(
            f"the probe needs decodable images in every set (A {len(set_a)}, B {len(set_b)}, "
            f"translated {len(set_t)})"
        )
    fa, fb = set_a.features, set_b.features

    heldout = None
    every = config.holdout_every
    if every > 1 and len(fa) >= every and len(fb) >= every:
        (train_a, test_a), (train_b, test_b) = _split(len(fa), every), _split(len(fb), every)
        check = fit_probe(fa[train_a], fb[train_b], steps=config.steps, l2=config.l2)
        heldout = _balanced_accuracy(check, fa[test_a], fb[test_b])

    probe = fit_probe(fa, fb, steps=config.steps, l2=config.l2)
    prob = probe.prob_b(set_t.features)
    return ProbeResult(
        target="B",
        n_a=len(set_a),
        n_b=len(set_b),
        heldout_accuracy=heldout,
        train_accuracy=_balanced_accuracy(probe, fa, fb),
        n_translated=len(set_t),
        fraction_target=float((prob >= 0.5).double().mean()),
        mean_probability=float(prob.mean()),
        size=config.size,
        skipped=[str(e) for e in set_a.errors + set_b.errors + set_t.errors],
    )
