"""``transfigure train dcgan|wgan-gp|cgan``: train the GAN core on images, shapes or MNIST.

The three commands are one command built three times: each takes its option defaults from its
preset (:mod:`transfigure.gan.config`), the only home of those values.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from transfigure import runtime
from transfigure.cli_support import AppState, pass_state
from transfigure.gan.config import TrainConfig, preset
from transfigure.gan.data import (
    TORCHVISION_DATASETS,
    DataError,
    DataNotFoundError,
    resolve_dataset,
)
from transfigure.gan.losses import LOSSES
from transfigure.gan.networks import NORMS, SUPPORTED_IMAGE_SIZES, UPSAMPLE_MODES
from transfigure.gan.train import TrainingError, read_run, train
from transfigure.progress import NullRenderer

__all__ = ["cgan", "dcgan", "register", "wgan_gp"]

# option name → (where the value lives: "" top level, "g"/"d" a network, "gd" both, "beta"),
# field, click type, help
_OPTIONS: list[tuple[str, str, str, Any, str]] = [
    ("epochs", "", "epochs", click.IntRange(min=1), "Passes over the data."),
    ("batch_size", "", "batch_size", click.IntRange(min=1), "Images per step and process."),
    (
        "image_size",
        "gd",
        "image_size",
        click.Choice([str(s) for s in SUPPORTED_IMAGE_SIZES]),
        "Side of the (square) images; the data is resized and centre-cropped to it.",
    ),
    (
        "channels",
        "gd",
        "channels",
        click.Choice(["1", "3"]),
        "1 for grayscale, 3 for RGB [default: 1 for mnist / fashion-mnist, else 3].",
    ),
    ("latent_dim", "g", "latent_dim", click.IntRange(min=1), "Length of the latent vector z."),
    ("g_width", "g", "width", click.IntRange(min=1), "Generator width (feature maps)."),
    ("d_width", "d", "width", click.IntRange(min=1), "Discriminator width (feature maps)."),
    (
        "upsample",
        "g",
        "upsample",
        click.Choice(UPSAMPLE_MODES),
        "Generator upsampling: transposed convolutions, or nearest + convolution (no "
        "checkerboard artefacts).",
    ),
    (
        "d_norm",
        "d",
        "norm",
        click.Choice(NORMS),
        "Discriminator normalisation (no batch norm with a gradient penalty).",
    ),
    (
        "dropout",
        "d",
        "dropout",
        click.FloatRange(0.0, 1.0, max_open=True),
        "Dropout in the discriminator.",
    ),
    ("loss", "", "loss", click.Choice(list(LOSSES)), "Adversarial loss pair."),
    ("n_critic", "", "n_critic", click.IntRange(min=1), "Discriminator steps per generator step."),
    (
        "gp_weight",
        "",
        "gp_weight",
        click.FloatRange(min=0.0),
        "Gradient penalty weight (0 = none).",
    ),
    (
        "clip_value",
        "",
        "clip_value",
        click.FloatRange(min=0.0),
        "Weight clipping of the original WGAN (0 = none).",
    ),
    ("lr_g", "", "lr_g", click.FloatRange(min=0.0, min_open=True), "Generator learning rate."),
    ("lr_d", "", "lr_d", click.FloatRange(min=0.0, min_open=True), "Discriminator learning rate."),
    ("beta1", "beta", "0", click.FloatRange(0.0, 1.0, max_open=True), "Adam β1."),
    ("beta2", "beta", "1", click.FloatRange(0.0, 1.0, max_open=True), "Adam β2."),
    (
        "ema_decay",
        "",
        "ema_decay",
        click.FloatRange(0.0, 1.0, max_open=True),
        "Moving average of G's weights used for samples and export (0 = off).",
    ),
    (
        "label_smoothing",
        "",
        "label_smoothing",
        click.FloatRange(0.0, 1.0, max_open=True),
        "One-sided label smoothing (bce loss).",
    ),
    (
        "label_noise",
        "",
        "label_noise",
        click.FloatRange(0.0, 0.5),
        "Probability of flipping a label (bce loss).",
    ),
    (
        "mismatch",
        "",
        "mismatch",
        bool,
        "cgan: also show D real images under wrong labels as fakes (matching-aware D).",
    ),
    ("flip", "", "flip", bool, "Random horizontal flips of the training images."),
    ("log_every", "", "log_every", click.IntRange(min=1), "Steps per metrics.jsonl line."),
    (
        "checkpoint_every",
        "",
        "checkpoint_every",
        click.IntRange(min=0),
        "Also checkpoint every N steps (0 = at epoch ends only).",
    ),
    (
        "keep_every",
        "",
        "keep_every",
        click.IntRange(min=0),
        "Keep checkpoints/epoch_XXX.pt every N epochs (0 = never).",
    ),
    (
        "sample_columns",
        "",
        "sample_columns",
        click.IntRange(min=1),
        "Columns of the per-epoch sample grid.",
    ),
    ("workers", "", "num_workers", click.IntRange(min=0), "Data loader worker processes."),
]

# what a resumed run may change: the length of training and how it is logged
_RESUMABLE = {"epochs", "workers", "log_every", "checkpoint_every", "keep_every"}


def _default(config: TrainConfig, where: str, field: str) -> Any:
    if where == "beta":
        return config.betas[int(field)]
    if where in ("g", "gd"):
        return getattr(config.generator, field)
    if where == "d":
        return getattr(config.discriminator, field)
    return getattr(config, field)


def _config_options(name: str) -> Callable[[Callable], Callable]:
    """One option per entry of ``_OPTIONS``, with the preset's value as default."""
    config = preset(name)

    def decorator(fn: Callable) -> Callable:
        for option, where, field, kind, help_text in reversed(_OPTIONS):
            default = _default(config, where, field)
            flag = "--" + option.replace("_", "-")
            if kind is bool:
                fn = click.option(
                    f"{flag}/--no-{flag[2:]}",
                    option,
                    default=default,
                    show_default=True,
                    help=help_text,
                )(fn)
            elif option == "channels":  # default depends on the data
                fn = click.option(flag, option, type=kind, default=None, help=help_text)(fn)
            else:
                fn = click.option(
                    flag,
                    option,
                    type=kind,
                    default=str(default) if isinstance(kind, click.Choice) else default,
                    show_default=True,
                    help=help_text,
                )(fn)
        return fn

    return decorator


def _overrides(options: dict[str, Any], names: set[str]) -> dict[str, Any]:
    """The ``preset(...)`` keyword arguments for the options in ``names``."""
    out: dict[str, Any] = {"generator": {}, "discriminator": {}}
    betas: dict[int, float] = {}
    table = {o: (w, f, k) for o, w, f, k, _ in _OPTIONS}
    for option in names:
        where, field, kind = table[option]
        value = options[option]
        if isinstance(kind, click.Choice) and option in ("image_size", "channels"):
            value = int(value)
        if where == "beta":
            betas[int(field)] = float(value)
        elif where == "g":
            out["generator"][field] = value
        elif where == "d":
            out["discriminator"][field] = value
        elif where == "gd":
            out["generator"][field] = value
            out["discriminator"][field] = value
        else:
            out[field] = value
    if betas:
        out["betas"] = (betas.get(0), betas.get(1))
    return out


def _explicit(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


def _default_run_dir(name: str, data: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(data).name or data).strip("-.") or "data"
    return Path("runs") / f"{name}-{slug}"


def _run(
    ctx: click.Context,
    state: AppState,
    name: str,
    data: str | None,
    out: Path | None,
    resume_dir: Path | None,
    limit: int | None,
    options: dict[str, Any],
) -> None:
    given = {o for o in options if _explicit(ctx, o)}
    if resume_dir is not None:
        if data is not None:
            raise click.UsageError("--resume takes its data from the run; give no DATA")
        if out is not None and out.resolve() != resume_dir.resolve():
            raise click.UsageError("--resume writes to the run's own folder; drop --out")
        fixed = sorted(given - _RESUMABLE) + (["limit"] if limit is not None else [])
        if fixed:
            flags = ", ".join("--" + n.replace("_", "-") for n in fixed)
            raise click.UsageError(f"cannot change {flags} when resuming a run")
        try:
            info = read_run(resume_dir)
        except TrainingError as e:
            raise click.BadParameter(str(e), param_hint="--resume") from e
        if info.preset and info.preset != name:
            raise click.UsageError(
                f"{resume_dir} is a {info.preset} run: resume it with "
                f"'transfigure train {info.preset} --resume {resume_dir}'"
            )
        changes = _overrides(options, given)
        changes.pop("generator"), changes.pop("discriminator")
        config = dataclasses.replace(info.config, **changes)
        root = ctx.find_root()
        if root.get_parameter_source("precision") == ParameterSource.COMMANDLINE:
            config = dataclasses.replace(config, precision=state.precision)
        spec, limit, run_dir = info.data, info.limit, resume_dir
    else:
        if data is None:
            raise click.UsageError(
                "give DATA (a folder, shapes, mnist, fashion-mnist or cifar10), or --resume RUN_DIR"
            )
        if "channels" not in given:
            native = TORCHVISION_DATASETS.get(data.lower(), (None, 3))[1]
            options["channels"] = str(native)
            given.add("channels")
        try:
            config = preset(
                name,
                **_overrides(options, given),
                precision=state.precision,
                seed=state.seed if state.seed is not None else TrainConfig.seed,
            )
        except ValueError as e:
            raise click.UsageError(str(e)) from e
        spec = data
        run_dir = out or _default_run_dir(name, data)
        if (run_dir / "config.json").exists():
            raise click.UsageError(
                f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                "or choose another --out"
            )

    try:
        dataset = resolve_dataset(
            spec,
            image_size=config.generator.image_size,
            channels=config.generator.channels,
            labelled=config.conditional,
            seed=config.seed,
            limit=limit,
        )
    except DataNotFoundError as e:
        raise click.BadParameter(str(e), param_hint="DATA") from e
    except DataError as e:
        raise click.ClickException(str(e)) from e

    # torchrun sets RANK before the process group exists; only rank 0 draws and prints
    main_rank = int(os.environ.get("RANK", "0")) == 0
    renderer = state.renderer() if main_rank else NullRenderer()
    try:
        with renderer:
            result = train(
                config,
                dataset,
                run_dir,
                device=state.device,
                resume=resume_dir is not None,
                preset=name,
                callback=renderer,
            )
    except (TrainingError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    finally:
        runtime.cleanup_distributed()  # a no-op outside torchrun
    if main_rank:
        state.echo_result(result.run_dir)
        state.echo_result(result.generator)


_HELP = {
    "dcgan": "Train a DCGAN (Radford et al. 2015): BCE loss, Adam(2e-4, β1 0.5).",
    "wgan-gp": "Train a WGAN-GP (Gulrajani et al. 2017): Wasserstein loss, gradient penalty "
    "10, 5 critic steps per generator step, Adam(1e-4, β 0/0.9), layer-norm critic.",
    "cgan": "Train a conditional DCGAN (Mirza & Osindero 2014) on labelled data: class "
    "sub-folders, shapes, mnist, fashion-mnist or cifar10.",
}

_SHORT = {
    "dcgan": "Train a DCGAN on images, shapes or mnist-like data.",
    "wgan-gp": "Train a WGAN-GP (Wasserstein loss, gradient penalty).",
    "cgan": "Train a conditional GAN on labelled data.",
}

_EPILOG = """\b
DATA is a folder of images (class sub-folders for cgan), "shapes" / "shapes:N" (synthetic
labelled shapes), or mnist, fashion-mnist, cifar10 (downloaded by torchvision when online).

\b
The run folder gets config.json, checkpoints/latest.pt, samples/epoch_XXX.png, metrics.jsonl,
losses.png, progress.gif and generator.safetensors (for 'transfigure sample'); stdout lists the
run folder and the generator. --resume RUN_DIR continues exactly where the run stopped (a larger
--epochs extends it).
Multi-process: torchrun --standalone --nproc-per-node N -m transfigure train ...
"""


def _make(name: str) -> click.Command:
    @click.command(name, help=f"{_HELP[name]}\n\n{_EPILOG}", short_help=_SHORT[name])
    @click.argument("data", required=False)
    @click.option(
        "-o",
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        help=f"Run folder to create [default: runs/{name}-DATA].",
    )
    @click.option(
        "--resume",
        "resume_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Continue the run in this folder where it stopped.",
    )
    @click.option(
        "--limit",
        type=click.IntRange(min=1),
        help="Train on a seeded random subset of this many images.",
    )
    @_config_options(name)
    @pass_state
    @click.pass_context
    def command(
        ctx: click.Context,
        state: AppState,
        data: str | None,
        out: Path | None,
        resume_dir: Path | None,
        limit: int | None,
        **options: Any,
    ) -> None:
        _run(ctx, state, name, data, out, resume_dir, limit, options)

    return command


dcgan = _make("dcgan")
wgan_gp = _make("wgan-gp")
cgan = _make("cgan")


def register(group: click.Group) -> None:
    """Add the three commands to a ``train`` group (the lazy group also finds them by name)."""
    for command in (dcgan, wgan_gp, cgan):
        group.add_command(command)
