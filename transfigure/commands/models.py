"""``transfigure models list | download NAME... | import FILE``: pretrained CycleGAN and pix2pix
models."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape

from transfigure.checkpoint import read_model_info
from transfigure.cli_support import AppState, pass_state
from transfigure.cyclegan import zoo
from transfigure.download import DownloadError


def _complete_name(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    return [name for name in zoo.pretrained_names() if name.startswith(incomplete)]


@click.group("models")
def models() -> None:
    """List, download and import pretrained CycleGAN and pix2pix generators.

    The reference implementation's 18 CycleGAN and 6 pix2pix generators are fetched from its
    servers (override the base URLs with $TRANSFIGURE_MODELS_URL and
    $TRANSFIGURE_PIX2PIX_MODELS_URL), converted to transfigure model files and cached in
    $TRANSFIGURE_CACHE (default ~/.cache/transfigure). `transfigure translate NAME ...` downloads
    a model on first use as well.
    """


@models.command("list")
def list_command() -> None:
    """Print the pretrained model names and whether each is downloaded.

    On a terminal: name, status and description in columns. Through a pipe: tab-separated
    NAME, STATUS (the cached model file, or "-") and DESCRIPTION per line.
    """
    on_terminal = sys.stdout.isatty()
    width = max(len(n) for n in zoo.PRETRAINED)
    for name, entry in zoo.PRETRAINED.items():
        cached = zoo.is_cached(name)
        if on_terminal:
            status = "cached" if cached else "-"
            click.echo(f"{name:<{width}}  {status:<6}  {entry.description}")
        else:
            status = str(zoo.cached_path(name)) if cached else "-"
            click.echo(f"{name}\t{status}\t{entry.description}")


@models.command("download")
@click.argument("names", nargs=-1, required=True, metavar="NAME...", shell_complete=_complete_name)
@click.option("--force", is_flag=True, help="Download and convert again even if cached.")
@pass_state
def download_command(state: AppState, names: tuple[str, ...], force: bool) -> None:
    """Download pretrained model(s) NAME, convert them, and print each model file.

    Use `all` for every model. An interrupted download resumes where it stopped.
    """
    wanted = zoo.pretrained_names() if names == ("all",) else list(dict.fromkeys(names))
    for name in wanted:
        if name not in zoo.PRETRAINED:
            raise click.BadParameter(zoo.unknown_name_message(name), param_hint="NAME")
    with state.renderer() as renderer:
        for name in wanted:
            try:
                path = zoo.ensure_pretrained(name, callback=renderer, force=force)
            except DownloadError as exc:  # the message names the mirror and models import
                raise click.ClickException(str(exc)) from exc
            state.echo_result(path)


@models.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="OUT",
    default=None,
    help="Model file to write (default: FILE with the suffix .safetensors).",
)
@click.option("--name", default=None, help="Name stored in the model file (default: FILE's stem).")
@click.option(
    "--direction",
    type=click.Choice(["a2b", "b2a"]),
    default=None,
    help="Direction to record (a reference run's G_A is a2b, G_B is b2a).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@pass_state
def import_command(
    state: AppState,
    file: Path,
    out: Path | None,
    name: str | None,
    direction: str | None,
    overwrite: bool,
) -> None:
    """Convert a generator FILE (.pth) into a transfigure model file.

    The file is read with torch.load(weights_only=True), so no code in it is run; the
    InstanceNorm running statistics that old files carry are dropped, and the architecture
    (blocks, width, channels) is inferred from the weights. Besides the reference CycleGAN
    generators this reads the reference's pix2pix U-Nets, official CUT generators and
    re-implementations of the same networks (other names, affine instance norm, weights inside
    a checkpoint dict): their layers are placed by order and shape, and what was inferred is
    said on stderr and stored in the model file.
    """
    if not file.is_file():
        raise click.BadParameter(f"{file}: no such file", param_hint="FILE")
    out = out or file.with_suffix(".safetensors")
    if out.suffix.lower() != ".safetensors":
        raise click.BadParameter(
            f"{out}: the model file must end in .safetensors", param_hint="--output"
        )
    if out.resolve() == file.resolve():
        raise click.BadParameter("the output would replace the input file", param_hint="--output")
    if out.exists() and not overwrite:
        raise click.ClickException(f"{out}: exists (pass --overwrite to replace it)")
    path = zoo.import_official(file, out, name=name, direction=direction)
    for note in read_model_info(path).extra.get("inferred", []):
        state.info(f"inferred: {escape(note)}")
    state.echo_result(path)


@models.command("export")
@click.argument("run_dir", metavar="RUN", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint to export (default: RUN/checkpoints/latest.pt; e.g. "
    "RUN/checkpoints/epoch_010.pt).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write the model files into (default: RUN itself).",
)
@pass_state
def export_command(
    state: AppState, run_dir: Path, checkpoint: Path | None, output: Path | None
) -> None:
    """Write the model files of a training run from one of its checkpoints.

    Training exports its models with every checkpoint; this rebuilds them from any checkpoint
    of RUN (an interrupted run, a kept epoch), for 'transfigure translate' or 'sample'.
    """
    from transfigure.registry import TRAINERS, load
    from transfigure.training import TrainingError, export_models, read_run_config

    try:
        trainer = read_run_config(run_dir)["trainer"]
    except (FileNotFoundError, ValueError) as e:
        raise click.BadParameter(str(e), param_hint="RUN") from e
    if trainer not in TRAINERS:
        raise click.ClickException(f"{run_dir}: a run of an unknown trainer {trainer!r}")
    spec = TRAINERS[trainer]
    try:
        paths = export_models(
            load(spec.step),
            load(spec.config),
            run_dir,
            checkpoint=checkpoint,
            output=output,
            device=state.device,
        )
    except TrainingError as e:
        raise click.ClickException(str(e)) from e
    for path in paths:
        state.echo_result(path)
