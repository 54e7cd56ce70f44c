"""Scoring generated images: FID / KID (torchmetrics) and a linear domain probe.

Public API:
    - :class:`EvaluateConfig`, :class:`Scores`, :func:`compute_scores`,
      :func:`fid_kid_from_features` — FID and KID on Inception or bundled-VGG19 features.
    - :class:`ProbeConfig`, :class:`ProbeResult`, :func:`probe_translation`,
      :func:`fit_probe`, :class:`LinearProbe` — did a translation reach the target domain?
    - :class:`PooledVGG19`, :func:`build_extractor`, :func:`extract_features`,
      :class:`FeatureSet`, :class:`FeaturesUnavailableError` — the feature networks.
"""

from transfigure.evaluate.features import (
    FEATURES,
    FeatureSet,
    FeaturesUnavailableError,
    PooledVGG19,
    build_extractor,
    extract_features,
)
from transfigure.evaluate.metrics import (
    EvaluateConfig,
    Scores,
    compute_scores,
    default_size,
    fid_kid_from_features,
    metric_names,
)
from transfigure.evaluate.probe import (
    LinearProbe,
    ProbeConfig,
    ProbeResult,
    fit_probe,
    probe_translation,
)

__all__ = [
    "FEATURES",
    "EvaluateConfig",
    "FeatureSet",
    "FeaturesUnavailableError",
    "LinearProbe",
    "PooledVGG19",
    "ProbeConfig",
    "ProbeResult",
    "Scores",
    "build_extractor",
    "compute_scores",
    "default_size",
    "extract_features",
    "fid_kid_from_features",
    "fit_probe",
    "metric_names",
    "probe_translation",
]
