"""``transfigure demo``: the whole toolkit, offline, in a few minutes; prints the page."""

from __future__ import annotations

from pathlib import Path

import click

from transfigure.cli_support import AppState, pass_state
from transfigure.demo import DEFAULT_OUT, DemoConfig, DemoError, run_demo


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default=True,
    help="Folder for everything the demo writes, created in the current folder unless a path "
    "is given (new, empty, or a previous demo's). Nothing is written outside it.",
)
@click.option(
    "--size",
    type=int,
    default=None,
    help=f"Side of the generated scenes in pixels: a multiple of 128 (default "
    f"{DemoConfig.size}), or of 4 with --quick (default 32).",
)
@click.option(
    "--quick",
    is_flag=True,
    help="A reduced run (tiny images, a few iterations): under a minute instead of about two.",
)
@pass_state
def demo(state: AppState, out_dir: Path, size: int | None, quick: bool) -> None:
    """Run the whole toolkit offline in about two minutes and write one HTML page.

    \b
    Trains a small CycleGAN on generated summer and winter scenes and measures its
    translations against the true other-season scenes, stylizes two bundled photographs after
    two bundled paintings (bundled VGG19 weights), trains a conditional GAN on bundled
    handwritten digits, and writes OUT/index.html, whose path is printed. Nothing is
    downloaded, nothing is written outside OUT.
    """
    changes = {"size": size} if size is not None else {}
    if state.seed is not None:
        changes["seed"] = state.seed
    try:
        config = DemoConfig.quick(**changes) if quick else DemoConfig(**changes)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--size") from exc
    try:
        with state.renderer() as renderer:
            result = run_demo(
                out_dir, config, device=state.device, precision=state.precision, callback=renderer
            )
    except DemoError as exc:
        raise click.ClickException(str(exc)) from exc
    state.info(f"demo finished in {result.seconds['total']:.0f} s; open the page in a browser:")
    state.echo_result(result.page)
