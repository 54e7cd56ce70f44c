"""``transfigure demo``: the whole toolkit, offline, on generated data; prints the page."""

from __future__ import annotations

from pathlib import Path

import click

from transfigure.cli_support import AppState, pass_state
from transfigure.demo import DemoConfig, DemoError, run_demo


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("transfigure-demo"),
    show_default=True,
    help="Folder for everything the demo writes (new, empty, or a previous demo's).",
)
@click.option(
    "--size",
    type=int,
    default=None,
    help=f"Side of the generated scenes in pixels (default {DemoConfig.size}; "
    "32 with --quick). The stylized image is twice as large.",
)
@click.option(
    "--quick",
    is_flag=True,
    help="A reduced run (tiny images, a few iterations): seconds instead of minutes.",
)
@pass_state
def demo(state: AppState, out_dir: Path, size: int | None, quick: bool) -> None:
    """Run the whole toolkit offline on generated data and write one HTML page.

    \b
    Generates summer and winter scenes, trains a small CycleGAN briefly, translates held-out
    scenes, scores them, stylizes a scene after a generated painting (bundled VGG19 weights),
    and writes OUT/index.html, whose path is printed. Nothing is downloaded, nothing is
    written outside OUT.
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
