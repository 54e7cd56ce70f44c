"""``transfigure translate MODEL INPUT... -o OUTDIR``: photos through a CycleGAN generator."""

from __future__ import annotations

from pathlib import Path

import click

from transfigure.batch import BatchEvent
from transfigure.cli_support import AppState, PartialFailure, pass_state
from transfigure.cyclegan.translate import (
    DIRECTIONS,
    TranslateConfig,
    Translator,
    load_translator,
    model_multiple,
    translate_files,
)
from transfigure.images import ImageError, walk_images
from transfigure.runtime import keep_freed_memory

_DEFAULTS = TranslateConfig()
_FORMATS = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff")


def _positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1, got {value}")
    return value


@click.command("translate")
@click.argument("model")
@click.argument(
    "inputs", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="INPUT..."
)
@click.option(
    "-o",
    "--output",
    "outdir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    metavar="OUTDIR",
    help="Output folder; outputs mirror the inputs' names and sub-folders.",
)
@click.option(
    "--direction",
    type=click.Choice(DIRECTIONS),
    default=None,
    help="Which generator of a run folder (default a2b); checked against a model file.",
)
@click.option("-r", "--recursive", is_flag=True, help="Walk sub-folders of input folders.")
@click.option(
    "--batch-size",
    type=int,
    default=_DEFAULTS.batch_size,
    callback=_positive,
    help=TranslateConfig.__dataclass_fields__["batch_size"].metadata["help"],
)
@click.option(
    "--tile",
    type=int,
    default=_DEFAULTS.tile,
    help=TranslateConfig.__dataclass_fields__["tile"].metadata["help"],
)
@click.option(
    "--overlap",
    type=int,
    default=_DEFAULTS.overlap,
    help=TranslateConfig.__dataclass_fields__["overlap"].metadata["help"],
)
@click.option(
    "--size",
    type=int,
    default=_DEFAULTS.size,
    callback=_positive,
    help="Resize each image so that its shorter side is SIZE pixels before translating "
    "(the output keeps that size). Default: translate at the original size.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(_FORMATS, case_sensitive=False),
    default=_DEFAULTS.format,
    help="Output format; default: the same as each input.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (never the inputs).")
@click.option(
    "--compare", is_flag=True, help="Also write OUTDIR/index.html: inputs beside outputs."
)
@click.option(
    "--workers",
    type=int,
    default=_DEFAULTS.workers,
    show_default=True,
    callback=_positive,
    help="Threads decoding images ahead of the network.",
)
@click.option(
    "--quality",
    type=click.IntRange(1, 100),
    default=_DEFAULTS.quality,
    show_default=True,
    help="JPEG / WebP quality.",
)
@pass_state
def translate(
    state: AppState,
    model: str,
    inputs: tuple[Path, ...],
    outdir: Path,
    direction: str | None,
    recursive: bool,
    batch_size: int | None,
    tile: int | None,
    overlap: int | None,
    size: int | None,
    fmt: str | None,
    overwrite: bool,
    compare: bool,
    workers: int,
    quality: int,
) -> None:
    """Translate the images in INPUT (files and folders) with MODEL into OUTDIR.

    MODEL is a model file (.safetensors), a training run folder (pick the generator with
    --direction), a reference CycleGAN .pth, or a pretrained model name such as horse2zebra
    (see `transfigure models list`; downloaded on first use).

    Every output has its input's size (padded to a multiple of 4 and cropped back) unless
    --size is given. Images larger than --tile² pixels are translated in overlapping tiles
    blended without seams. Existing outputs are skipped unless --overwrite. Each file written
    is printed on stdout; unreadable inputs are named on stderr and the exit code is 1.
    """
    if tile is not None and tile != 0 and (tile < 64 or tile % 4):
        raise click.BadParameter(
            f"must be 0 or a multiple of 4 >= 64, got {tile}", param_hint="--tile"
        )
    if overlap is not None and (overlap < 0 or overlap % 4):
        raise click.BadParameter(
            f"must be a multiple of 4 >= 0, got {overlap}", param_hint="--overlap"
        )
    if overlap is not None and tile and overlap > tile // 2:
        raise click.BadParameter(f"must be at most half of --tile ({tile})", param_hint="--overlap")
    try:
        items = walk_images(inputs, recursive=recursive)
    except ImageError as exc:
        raise click.BadParameter(str(exc), param_hint="INPUT") from exc
    if not items:
        hint = "" if recursive else " (sub-folders are walked with --recursive)"
        raise click.UsageError(f"no images found in {', '.join(map(str, inputs))}{hint}")

    keep_freed_memory()
    with state.renderer() as renderer:
        try:
            net, info = load_translator(
                model, direction=direction, device=state.device, callback=renderer
            )
        except KeyError as exc:
            raise click.BadParameter(exc.args[0], param_hint="MODEL") from exc
        name = info.extra.get("name") or info.path.name
        multiple = model_multiple(net, info)
        if tile and tile % multiple:
            raise click.BadParameter(
                f"must be a multiple of {multiple} for this model", param_hint="--tile"
            )
        translator = Translator(
            net,
            precision=state.precision,
            tile=tile,
            overlap=overlap,
            batch_size=batch_size,
            multiple=multiple,
            callback=renderer,
        )
        renderer.log(
            f"translating {len(items)} image(s) with {name} on {state.device} "
            f"({state.precision}, tile {translator.tile or 'off'}, batch {translator.batch_size})"
        )

        def on_event(event) -> None:
            renderer(event)
            if isinstance(event, BatchEvent):
                if event.status == "written":
                    state.echo_result(event.output)
                elif event.status == "failed":
                    state.error(event.error or f"{event.source}: failed")

        report = translate_files(
            translator,
            items,
            outdir,
            size=size,
            fmt=fmt,
            overwrite=overwrite,
            workers=workers,
            quality=quality,
            callback=on_event,
        )
        renderer.log(report.summary())
    if compare:
        from transfigure.cyclegan.compare import write_compare_page

        page = write_compare_page(
            outdir / "index.html",
            report.entries,
            title=f"transfigure translate — {name}",
            subtitle=f"{info.path.name}, {state.precision}"
            + (f", shorter side {size} px" if size else ""),
        )
        state.echo_result(page)
    if report.failed:
        raise PartialFailure(len(report.failed), len(items))
