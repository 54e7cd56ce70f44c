"""``transfigure sample``: images from a trained GAN generator — a grid, files, a latent walk, or
a nearest-neighbour memorisation check."""

from __future__ import annotations

import math
from pathlib import Path

import click
import torch
from torch.utils.data import DataLoader

from transfigure.cli_support import AliasOption, AppState, pass_state
from transfigure.images import IMAGE_EXTENSIONS, save_grid, save_image

__all__ = ["sample"]


def _model_path(model: Path) -> Path:
    if model.is_dir():
        candidate = model / "generator.safetensors"
        if not candidate.is_file():
            raise click.BadParameter(f"{model} holds no generator.safetensors", param_hint="MODEL")
        return candidate
    return model


def _write(
    images: torch.Tensor, names: list[str], out: Path, *, nrow: int, overwrite: bool
) -> list[Path]:
    """A grid if ``out`` has an image extension, else one PNG per image in the folder ``out``."""
    from transfigure.gan.sampling import to_unit_range

    images = to_unit_range(images)
    if out.suffix.lower() in IMAGE_EXTENSIONS:
        if out.exists() and not overwrite:
            raise click.ClickException(f"{out} exists (pass --overwrite to replace it)")
        return [save_grid(images, out, nrow=nrow, overwrite=True)]
    if out.exists() and not out.is_dir():
        raise click.BadParameter(
            f"{out} is a file without an image extension", param_hint="--output"
        )
    paths = [out / f"{name}.png" for name in names]
    clashes = [p for p in paths if p.exists()]
    if clashes and not overwrite:
        raise click.ClickException(
            f"{len(clashes)} file(s) already in {out}, e.g. {clashes[0].name} "
            "(pass --overwrite to replace them)"
        )
    return [save_image(img, p, overwrite=True) for img, p in zip(images, paths, strict=True)]


@click.command("sample")
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option(
    "-n",
    "--num",
    "n",
    type=click.IntRange(min=1),
    default=64,
    show_default=True,
    help="Images to draw (for a conditional model without --label: per label row, "
    "n / labels columns).",
)
@click.option("--label", help="Class name or index (conditional models).")
@click.option(
    "--seed",
    type=int,
    default=None,
    help="Seed of the latents [default: the global --seed, else 0].",
)
@click.option(
    "-o",
    "--output",
    "out",
    cls=AliasOption,
    aliases=("--out",),
    type=click.Path(path_type=Path),
    required=True,
    help="grid.png (one picture) or a folder (one PNG per image).",
)
@click.option("--nrow", type=click.IntRange(min=1), help="Images per grid row.")
@click.option(
    "--interpolate",
    is_flag=True,
    help="A latent walk from the latent of --seed to that of --seed-b.",
)
@click.option("--seed-b", type=int, default=None, help="End of the walk [default: seed + 1].")
@click.option(
    "--steps",
    type=click.IntRange(min=2),
    default=10,
    show_default=True,
    help="Images along the walk.",
)
@click.option("--linear", is_flag=True, help="Walk in a straight line instead of slerp.")
@click.option(
    "--nearest",
    "nearest_data",
    metavar="DATA",
    help="Memorisation check: show each sample beside its nearest training images "
    "(L1) from DATA (a folder, shapes:N, mnist, ...).",
)
@click.option(
    "-k",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Neighbours per sample for --nearest.",
)
@click.option("--overwrite", is_flag=True, help="Replace existing output files.")
@pass_state
def sample(
    state: AppState,
    model: Path,
    n: int,
    label: str | None,
    seed: int | None,
    out: Path,
    nrow: int | None,
    interpolate: bool,
    seed_b: int | None,
    steps: int,
    linear: bool,
    nearest_data: str | None,
    k: int,
    overwrite: bool,
) -> None:
    """Generate images from a GAN generator (MODEL: generator.safetensors or its run folder).

    \b
    transfigure sample runs/dcgan-shapes -n 64 -o grid.png
    transfigure sample G.safetensors --label circle -n 16 -o circles/
    transfigure sample G.safetensors --interpolate --seed 1 --seed-b 2 -o walk.png
    transfigure sample G.safetensors --nearest shapes -n 8 -o nearest.png

    The same seed gives the same images. A conditional model without --label draws one row
    per label with the same latents in every row.
    """
    import transfigure.gan  # noqa: F401  (registers the model kinds)
    from transfigure.checkpoint import load_model
    from transfigure.gan import sampling
    from transfigure.runtime import keep_freed_memory

    keep_freed_memory()
    if interpolate and nearest_data:
        raise click.UsageError("choose --interpolate or --nearest, not both")
    g, info = load_model(_model_path(model), kind="gan-generator", device=state.device)
    classes = [str(c) for c in info.extra.get("classes", [])]
    n_classes = g.config.n_classes
    if "ema" in info.extra:  # said, so that early samples are not mistaken for a bug
        which = (
            "the moving average (EMA) of the generator's weights"
            if info.extra["ema"]
            else "the generator's own weights (no EMA)"
        )
        when = f" after epoch {info.extra['epoch']}" if "epoch" in info.extra else ""
        when += f", step {info.extra['step']}" if "step" in info.extra else ""
        state.info(f"sampling {which}{when}")
    seed = seed if seed is not None else (state.seed if state.seed is not None else 0)
    label_index = None
    if label is not None:
        if not n_classes:
            raise click.BadParameter("this generator is unconditional", param_hint="--label")
        try:
            label_index = sampling.resolve_label(label, classes, n_classes)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--label") from e

    def label_name(i: int) -> str:
        return classes[i] if i < len(classes) else str(i)

    if interpolate:
        b = seed_b if seed_b is not None else seed + 1
        rows = [label_index] if (label_index is not None or not n_classes) else range(n_classes)
        images = torch.cat(
            [
                sampling.interpolate(
                    g, seed, b, steps, label=r, spherical=not linear, precision=state.precision
                )
                for r in rows
            ]
        )
        names = [
            f"{label_name(r) + '_' if r is not None else ''}step_{i:03d}"
            for r in rows
            for i in range(steps)
        ]
        paths = _write(images, names, out, nrow=nrow or steps, overwrite=overwrite)
    elif n_classes and label_index is None:
        columns = math.ceil(n / n_classes)
        images, labels = sampling.label_grid(g, columns, seed=seed, precision=state.precision)
        names = [f"{label_name(int(lab))}_{i % columns:04d}" for i, lab in enumerate(labels)]
        if nearest_data:
            paths = _nearest(state, g, images, nearest_data, k, out, overwrite)
        else:
            paths = _write(images, names, out, nrow=nrow or columns, overwrite=overwrite)
    else:
        images, _ = sampling.sample_images(
            g, n, label=label_index, seed=seed, precision=state.precision
        )
        prefix = f"{label_name(label_index)}_" if label_index is not None else "sample_"
        names = [f"{prefix}{i:04d}" for i in range(n)]
        if nearest_data:
            paths = _nearest(state, g, images, nearest_data, k, out, overwrite)
        else:
            paths = _write(
                images, names, out, nrow=nrow or math.ceil(math.sqrt(n)), overwrite=overwrite
            )
    if len(paths) == 1:
        state.echo_result(paths[0])
    else:
        state.echo_result(out)


def _nearest(
    state: AppState,
    g: torch.nn.Module,
    images: torch.Tensor,
    data: str,
    k: int,
    out: Path,
    overwrite: bool,
) -> list[Path]:
    """Samples beside their nearest training images; distances summarised on stderr."""
    from transfigure.gan import sampling
    from transfigure.gan.data import DataError, DataNotFoundError, resolve_dataset

    cfg = g.config
    try:
        dataset = resolve_dataset(data, image_size=cfg.image_size, channels=cfg.channels).dataset
    except DataNotFoundError as e:
        raise click.BadParameter(str(e), param_hint="--nearest") from e
    except DataError as e:
        raise click.ClickException(str(e)) from e

    def batches():
        for batch, _ in DataLoader(dataset, batch_size=256, shuffle=False):
            yield batch

    distances, indices = sampling.nearest_neighbours(images, batches(), k=k)
    neighbours = [torch.stack([dataset[int(i)][0] for i in row]) for row in indices]
    # the spread of the data itself: each of a few training images to its nearest other image
    probe = torch.stack([dataset[i][0] for i in range(min(len(dataset), images.shape[0]))])
    own, _ = sampling.nearest_neighbours(probe, batches(), k=2)
    baseline = own[:, 1].median().item() if own.shape[1] > 1 else float("nan")
    nearest = distances[:, 0]
    state.info(
        f"nearest training image (mean |Δ| on [-1, 1] pixels): median {nearest.median():.4f}, "
        f"min {nearest.min():.4f}; training images to their nearest other image: "
        f"median {baseline:.4f} (samples much closer than that suggest memorisation)"
    )
    grid = sampling.nearest_grid(images, neighbours)
    if out.suffix.lower() not in IMAGE_EXTENSIONS:
        out = out / "nearest.png"
    return _write(grid, [], out, nrow=neighbours[0].shape[0] + 1, overwrite=overwrite)
