"""``transfigure datasets list | download NAME``: the reference CycleGAN datasets."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from transfigure.cli_support import AliasOption, AppState, pass_state
from transfigure.datasets.catalog import (
    DATASETS,
    DATASETS_URL_ENV,
    UnknownDatasetError,
    download_dataset,
    list_datasets,
)
from transfigure.download import DownloadError


def _complete_name(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [name for name in list_datasets() if name.startswith(incomplete)]


@click.group("datasets")
def datasets() -> None:
    """List and download the reference CycleGAN datasets.

    Archives come from the reference implementation's server (override the base URL with
    $TRANSFIGURE_DATASETS_URL) and are cached in $TRANSFIGURE_CACHE while downloading.
    """


@datasets.command("list")
def list_command() -> None:
    """Print the dataset names, one per line (with a description on a terminal)."""
    on_terminal = sys.stdout.isatty()
    width = max(len(name) for name in DATASETS)
    for name in list_datasets():
        # A pipe gets bare names, so `transfigure datasets list | xargs ...` works.
        click.echo(f"{name:<{width}}  {DATASETS[name]}" if on_terminal else name)


@datasets.command("download")
@click.argument("name", shell_complete=_complete_name)
@click.option(
    "-o",
    "--output",
    "root",
    cls=AliasOption,
    aliases=("--root",),
    type=click.Path(file_okay=False, path_type=Path),
    metavar="ROOT",
    default=Path("datasets"),
    show_default=True,
    help="Folder that receives NAME/ (trainA, trainB, testA, testB).",
)
@pass_state
def download_command(state: AppState, name: str, root: Path) -> None:
    """Download dataset NAME, extract it safely into ROOT/NAME and print that folder.

    An interrupted download resumes where it stopped; a dataset already downloaded is not
    fetched again.
    """
    try:
        with state.renderer() as renderer:
            folder = download_dataset(name, root, callback=renderer)
    except UnknownDatasetError as exc:
        raise click.BadParameter(str(exc), param_hint="NAME") from exc
    except DownloadError as exc:
        # Network failures name the URL: point at the way to use a mirror.
        hint = f" (a mirror can be set with ${DATASETS_URL_ENV})" if "://" in str(exc) else ""
        raise click.ClickException(f"{exc}{hint}") from exc
    state.echo_result(folder)
