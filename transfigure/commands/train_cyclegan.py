"""``transfigure train cyclegan``: train a CycleGAN on two folders of images."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from transfigure.cli_support import AppState, options_from_dataclass, pass_state
from transfigure.cyclegan.train import RESUMABLE_CHANGES, TrainConfig, load_run_config, train
from transfigure.progress import NullRenderer

_BY_HAND = ("data_root", "domain_a", "domain_b", "seed")


def _explicit(ctx: click.Context, name: str) -> bool:
    return ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE


def _default_out(data_root: Path | None, domain_a: Path | None, domain_b: Path | None) -> Path:
    if data_root is not None:
        name = data_root.resolve().name
    else:
        assert domain_a is not None and domain_b is not None
        name = f"{domain_a.resolve().name}2{domain_b.resolve().name}"
    return Path("runs") / f"cyclegan-{name}"


@click.command("cyclegan")
@click.argument("data_root", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--domain-a",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of domain A images (instead of DATA_ROOT/trainA).",
)
@click.option(
    "--domain-b",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of domain B images (instead of DATA_ROOT/trainB).",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder to create [default: runs/cyclegan-NAME].",
)
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Continue the run in this folder where it stopped (no other flags needed).",
)
@click.option(
    "--epochs",
    type=click.IntRange(min=1),
    help="Total epochs: the first half at the full learning rate, the second half decaying "
    "(shorthand for --n-epochs and --n-epochs-decay).",
)
@options_from_dataclass(TrainConfig, exclude=_BY_HAND)
@pass_state
@click.pass_context
def cyclegan(
    ctx: click.Context,
    state: AppState,
    data_root: Path | None,
    domain_a: Path | None,
    domain_b: Path | None,
    out: Path | None,
    resume_dir: Path | None,
    epochs: int | None,
    **options: Any,
) -> None:
    """Train a CycleGAN between two unpaired image domains.

    \b
    DATA_ROOT holds trainA/ and trainB/ (testA/, testB/ give the sample strips), as the
    reference datasets do; or give two folders with --domain-a and --domain-b.

    \b
    The run folder gets config.json, checkpoints/, metrics.jsonl, samples/epoch_XXX.png,
    losses.png and the exported generators generator_a2b.safetensors and
    generator_b2a.safetensors (listed on stdout).

    \b
    --resume RUN_DIR continues an interrupted run at the same epoch, step, learning rate and
    random state. To extend a run, resume it with a larger --epochs (or --n-epochs /
    --n-epochs-decay): the remaining epochs follow the learning-rate schedule that a run started
    with the new totals would have had.
    """
    if epochs is not None:
        if _explicit(ctx, "n_epochs") or _explicit(ctx, "n_epochs_decay"):
            raise click.UsageError("give either --epochs or --n-epochs/--n-epochs-decay")
        options["n_epochs"] = epochs - epochs // 2
        options["n_epochs_decay"] = epochs // 2

    if resume_dir is not None:
        if data_root is not None or domain_a is not None or domain_b is not None:
            raise click.UsageError("--resume takes its data from the run; give no DATA_ROOT")
        if out is not None and out.resolve() != resume_dir.resolve():
            raise click.UsageError("--resume writes to the run's own folder; drop --out")
        given = {n for n in options if _explicit(ctx, n)}
        if epochs is not None:
            given |= {"n_epochs", "n_epochs_decay"}
        fixed = sorted(given - RESUMABLE_CHANGES)
        if fixed:
            flags = ", ".join("--" + n.replace("_", "-") for n in fixed)
            raise click.UsageError(f"cannot change {flags} when resuming a run")
        try:
            config = load_run_config(resume_dir, **{n: options[n] for n in given})
        except FileNotFoundError as e:
            raise click.BadParameter(str(e), param_hint="--resume") from e
        run_dir = resume_dir
    else:
        if data_root is None and (domain_a is None or domain_b is None):
            raise click.UsageError("give DATA_ROOT, or both --domain-a and --domain-b")
        if data_root is not None and (domain_a is not None or domain_b is not None):
            raise click.UsageError("give DATA_ROOT or --domain-a/--domain-b, not both")
        seed = state.seed if state.seed is not None else TrainConfig.seed
        config = TrainConfig(
            data_root=str(data_root) if data_root is not None else None,
            domain_a=str(domain_a) if domain_a is not None else None,
            domain_b=str(domain_b) if domain_b is not None else None,
            seed=seed,
            **options,
        )
        run_dir = out or _default_out(data_root, domain_a, domain_b)
        if (run_dir / "config.json").exists():
            raise click.UsageError(
                f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                "or choose another --out"
            )
    try:
        config.validate()
    except ValueError as e:
        raise click.UsageError(str(e)) from e

    main_rank = int(os.environ.get("RANK", "0")) == 0
    if main_rank:
        state.info(f"run folder: {run_dir}")
    renderer = state.renderer() if main_rank else NullRenderer()
    try:
        with renderer:
            result = train(
                config,
                run_dir,
                device=state.device,
                precision=state.precision,
                resume=resume_dir is not None,
                callback=renderer,
            )
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    if main_rank:
        for path in (result.generator_a2b, result.generator_b2a):
            if path is not None:
                state.echo_result(path)
