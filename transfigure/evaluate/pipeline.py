"""One evaluation as ``transfigure evaluate`` runs it: scores, optional probe, optional page."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from transfigure.evaluate.features import build_extractor, load_batch
from transfigure.evaluate.metrics import EvaluateConfig, Scores, compute_scores
from transfigure.evaluate.probe import ProbeConfig, ProbeResult, probe_translation
from transfigure.events import Callback
from transfigure.images import save_image
from transfigure.report import Report

__all__ = ["Evaluation", "run_evaluation", "summary_rows", "write_evaluation_report"]


@dataclass
class Evaluation:
    """Everything one evaluation produced.

    Attributes:
        scores: FID and KID.
        probe: the domain probe's result, when it was asked for.
        real_paths, fake_paths: the images that were scored.
        skipped: files that could not be decoded, as ``"path: reason"`` (each set once).
    """

    scores: Scores
    probe: ProbeResult | None
    real_paths: list[Path]
    fake_paths: list[Path]
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scores": self.scores.to_dict(),
            "probe": self.probe.to_dict() if self.probe else None,
            "n_real": len(self.real_paths),
            "n_fake": len(self.fake_paths),
            "skipped": list(self.skipped),
        }


def run_evaluation(
    real: str | Path,
    fake: str | Path,
    config: EvaluateConfig | None = None,
    *,
    probe_domains: tuple[str | Path, str | Path] | None = None,
    device: torch.device | str = "cpu",
    precision: str = "fp32",
    vgg_weights: str | Path | None = None,
    callback: Callback | None = None,
    probe_sample: int | None = ProbeConfig.sample,
    cache: bool = False,
) -> Evaluation:
    """FID/KID of ``fake`` against ``real``, and optionally the probe.

    Args:
        real: folder of real images (usually the target domain's test images).
        fake: folder of generated or translated images.
        config: feature network, size, batch size, KID sampling.
        probe_domains: ``(domain_a_dir, domain_b_dir)``: fit the probe on these real images
            and report the fraction of ``fake`` assigned to domain B.
        device, precision: where and how the feature networks run.
        vgg_weights: VGG19 weight source (bundled by default).
        callback: progress events.
        probe_sample: real images per domain the probe is fitted on (a seeded sample; ``None``
            for all).
        cache: keep features on disk, keyed by file content, and reuse them.
    """
    config = config or EvaluateConfig()
    device = torch.device(device)
    extractor = build_extractor(config.features, vgg_weights=vgg_weights).to(device)
    scores, real_set, fake_set = compute_scores(
        real,
        fake,
        config,
        device=device,
        precision=precision,
        extractor=extractor,
        callback=callback,
        cache=cache,
    )
    probe = None
    if probe_domains is not None:
        if config.features == "vgg19":
            # Same network and size: the translated images' features are reused.
            probe_config = ProbeConfig(
                size=config.image_size, batch_size=config.batch_size, sample=probe_sample
            )
            probe_extractor, translated = extractor, fake_set
        else:
            probe_config = ProbeConfig(batch_size=config.batch_size, sample=probe_sample)
            probe_extractor, translated = None, fake_set.paths
        probe = probe_translation(
            probe_domains[0],
            probe_domains[1],
            translated,
            probe_config,
            device=device,
            precision=precision,
            extractor=probe_extractor,
            vgg_weights=vgg_weights,
            callback=callback,
            cache=cache,
        )
    skipped = list(dict.fromkeys(scores.skipped + (probe.skipped if probe else [])))
    return Evaluation(scores, probe, real_set.paths, fake_set.paths, skipped)


def summary_rows(evaluation: Evaluation) -> list[tuple[str, str]]:
    """(name, value) rows for a table: the scores, what they were computed on, the probe."""
    s = evaluation.scores
    rows = [
        (s.fid_name, f"{s.fid:.4f}"),
        (
            s.kid_name,
            f"{s.kid_mean:.6f} ± {s.kid_std:.6f} ({s.kid_subsets} subsets of {s.kid_subset_size})",
        ),
        ("images", f"real {s.n_real}, fake {s.n_fake}, resized to {s.size}×{s.size}"),
        ("features", f"{s.features}: {s.feature_layers}, weights {s.feature_source}"),
    ]
    p = evaluation.probe
    if p is not None:
        rows.append(
            (
                f"probe: translated → domain {p.target}",
                f"{p.fraction_target:.3f} of {p.n_translated} (mean P(B) {p.mean_probability:.3f})",
            )
        )
        heldout = (
            "n/a (too few images)" if p.heldout_accuracy is None else f"{p.heldout_accuracy:.3f}"
        )
        rows.append(
            (
                "probe: real A vs B accuracy",
                f"held-out {heldout}, train {p.train_accuracy:.3f} "
                f"(fitted on {p.n_a} A + {p.n_b} B, {p.size}×{p.size})",
            )
        )
    if evaluation.skipped:
        rows.append(("skipped files", str(len(evaluation.skipped))))
    return rows


def write_evaluation_report(
    evaluation: Evaluation, out_dir: str | Path, *, n_samples: int = 8
) -> Path:
    """Write ``out_dir/index.html``: the scores and a few real and fake images as scored.

    The sample images are copied (resized as the network saw them) into ``out_dir/real`` and
    ``out_dir/fake``, so the page does not depend on the evaluated folders.
    """
    out_dir = Path(out_dir)
    s = evaluation.scores
    report = Report("Evaluation", subtitle=f"{s.fid_name}, {s.kid_name}")
    section = report.section("Scores", intro=_explanation(s))
    section.table(["metric", "value"], summary_rows(evaluation))
    for name, paths in (("real", evaluation.real_paths), ("fake", evaluation.fake_paths)):
        chosen = paths[:: max(1, len(paths) // n_samples)][:n_samples]
        images, loaded, _ = load_batch(chosen, s.size)
        figures = []
        for i, (image, source) in enumerate(zip(images, loaded, strict=True)):
            target = save_image(image, out_dir / name / f"{i:02d}.png", overwrite=True)
            figures.append((target, source.name))
        report.section(f"{name.capitalize()} images (as scored)").images(figures, width=128)
    if evaluation.skipped:
        report.section("Skipped files").text("; ".join(evaluation.skipped))
    return report.write(out_dir / "index.html")


def _explanation(scores: Scores) -> str:
    if scores.features == "inception":
        return (
            "FID and KID on the standard Inception pool3 features; lower is better. FID is "
            "biased upwards for small sets: compare numbers computed on equal set sizes."
        )
    return (
        "Distances on pooled features of the bundled VGG19 (works offline); lower is better. "
        "These numbers are on their own scale: do not compare them with published "
        "Inception FID."
    )
