"""``transfigure train NAME``: one command per registered trainer, built from its config.

Each subcommand's options come from its config dataclass
(:mod:`transfigure.commands.config_options`); the command only parses, builds the config and
calls the training engine (:func:`transfigure.training.train`).
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import click

from transfigure.cli_support import AliasOption, AppState, pass_state
from transfigure.registry import TRAINERS, Trainer, load

__all__ = ["train"]

_EPILOG = """\b
Every run folder gets config.json, metrics.jsonl, checkpoints/latest.pt (every
--checkpoint-every steps and at each epoch's end, with the exported models),
samples/epoch_XXX.png, losses.png and index.html; stdout lists the run folder and the model
files. Ctrl-C stops at the next step with a checkpoint; --resume RUN_DIR continues exactly
there, and may change learning rates, betas and lengths (more epochs extend a run).
Multi-process: torchrun --standalone --nproc-per-node N -m transfigure train ..."""


def _default_run_dir(trainer: str, name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "data"
    return Path("runs") / f"{trainer}-{slug}"


def _run(
    ctx: click.Context,
    state: AppState,
    spec: Trainer,
    data: str | None,
    domain_a: Path | None,
    domain_b: Path | None,
    output: Path | None,
    resume_dir: Path | None,
    max_steps: int | None,
    epochs: int | None,
    options: dict[str, Any],
) -> None:
    from transfigure import runtime
    from transfigure.commands.config_options import given_options
    from transfigure.progress import NullRenderer
    from transfigure.training import TrainingError, load_config, resumable_fields, train
    from transfigure.training.run import RunFolder

    config_cls = load(spec.config)
    step_cls = load(spec.step)
    given = given_options(ctx, config_cls, options)
    if epochs is not None:
        if "n_epochs" in given or "n_epochs_decay" in given:
            raise click.UsageError("give either --epochs or --n-epochs/--n-epochs-decay")
        given["n_epochs"], given["n_epochs_decay"] = epochs - epochs // 2, epochs // 2

    if resume_dir is not None:
        if data is not None or domain_a is not None or domain_b is not None:
            raise click.UsageError("--resume takes its data from the run; give no DATA")
        if output is not None and output.resolve() != resume_dir.resolve():
            raise click.UsageError("--resume writes to the run's own folder; drop --output")
        try:
            config = load_config(config_cls, resume_dir, spec.name)
        except TrainingError as e:
            raise click.BadParameter(str(e), param_hint="--resume") from e
        if state.seed is not None:
            given["seed"] = state.seed
        fixed = sorted(
            k
            for k, v in given.items()
            if k not in resumable_fields(config_cls) and getattr(config, k) != v
        )
        if fixed:
            flags = ", ".join("--" + n.replace("_", "-") for n in fixed)
            allowed = ", ".join(
                "--" + n.replace("_", "-") for n in sorted(resumable_fields(config_cls))
            )
            raise click.UsageError(
                f"cannot change {flags} when resuming a run (it shapes the model or the data); "
                f"what may change: {allowed}"
            )
        config = dataclasses.replace(config, **given)
        run_dir = resume_dir
    else:
        values: dict[str, Any] = {**spec.preset, **given}
        values["seed"] = state.seed if state.seed is not None else 0
        if spec.data == "domains":
            if data is None and (domain_a is None or domain_b is None):
                raise click.UsageError("give DATA_ROOT, or both --domain-a and --domain-b")
            if data is not None and (domain_a is not None or domain_b is not None):
                raise click.UsageError("give DATA_ROOT or --domain-a/--domain-b, not both")
            if data is not None:
                values["data_root"] = data
                name = Path(data).resolve().name
            else:
                assert domain_a is not None and domain_b is not None
                values["domain_a"], values["domain_b"] = str(domain_a), str(domain_b)
                name = f"{domain_a.resolve().name}2{domain_b.resolve().name}"
        else:
            if data is None:
                raise click.UsageError("give DATA, or --resume RUN_DIR")
            values["data"] = data
            name = Path(data).name or data
        try:
            config = config_cls(**values)
            config.validate()
        except ValueError as e:
            raise click.UsageError(str(e)) from e
        run_dir = output or _default_run_dir(spec.name, name)
        if RunFolder(run_dir).exists():
            raise click.UsageError(
                f"{run_dir} already holds a run: continue it with --resume {run_dir}, "
                "or choose another --output"
            )
    try:
        config.validate()
    except ValueError as e:
        raise click.UsageError(str(e)) from e

    # torchrun sets RANK before the process group exists; only rank 0 draws and prints
    main_rank = int(os.environ.get("RANK", "0")) == 0
    renderer = state.renderer() if main_rank else NullRenderer()
    try:
        with renderer:
            result = train(
                step_cls,
                config,
                run_dir,
                device=state.device,
                precision=state.precision,
                resume=resume_dir is not None,
                callback=renderer,
                max_steps=max_steps,
            )
    except FileNotFoundError as e:  # the data named on the command line is not there
        raise click.BadParameter(
            str(e), param_hint=spec.data == "domains" and "DATA_ROOT" or "DATA"
        ) from e
    except (TrainingError, ValueError) as e:
        raise click.ClickException(str(e)) from e
    finally:
        runtime.cleanup_distributed()  # a no-op outside torchrun
    if main_rank:
        state.echo_result(result.run_dir)
        for path in result.models:
            state.echo_result(path)


def _command(spec: Trainer) -> click.Command:
    from transfigure.commands.config_options import config_options

    config_cls = load(spec.config)
    defaults = config_cls(**spec.preset)
    field_names = {f.name for f in dataclasses.fields(config_cls)}
    has_epoch_pair = {"n_epochs", "n_epochs_decay"} <= field_names
    data_name = "DATA_ROOT" if spec.data == "domains" else "DATA"

    @click.command(
        spec.name, help=f"{spec.help}\n\n{_EPILOG}", short_help=spec.summary, no_args_is_help=True
    )
    @click.argument("data", metavar=data_name, required=False)
    @click.option(
        "-o",
        "--output",
        cls=AliasOption,
        aliases=("--out",),
        type=click.Path(file_okay=False, path_type=Path),
        help=f"Run folder to create [default: runs/{spec.name}-NAME].",
    )
    @click.option(
        "--resume",
        "resume_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Continue the run in this folder where it stopped.",
    )
    @click.option(
        "--max-steps",
        type=click.IntRange(min=1),
        help="Stop after this many steps (with a checkpoint; --resume continues).",
    )
    @config_options(config_cls, defaults)
    @pass_state
    @click.pass_context
    def command(
        ctx: click.Context,
        state: AppState,
        data: str | None,
        output: Path | None,
        resume_dir: Path | None,
        max_steps: int | None,
        domain_a: Path | None = None,
        domain_b: Path | None = None,
        dataroot: str | None = None,
        epochs_total: int | None = None,
        **options: Any,
    ) -> None:
        _run(
            ctx,
            state,
            spec,
            data if data is not None else dataroot,
            domain_a,
            domain_b,
            output,
            resume_dir,
            max_steps,
            epochs_total,
            options,
        )

    if spec.data == "domains":
        folder = click.Path(file_okay=False, path_type=Path)
        command.params += [
            click.Option(
                ["--domain-a"],
                type=folder,
                help=f"Folder of domain A images (instead of {data_name}).",
            ),
            click.Option(
                ["--domain-b"],
                type=folder,
                help=f"Folder of domain B images (instead of {data_name}).",
            ),
            click.Option(
                ["--dataroot"], hidden=True, help="The reference's spelling of DATA_ROOT."
            ),
        ]
    if has_epoch_pair:
        command.params.append(
            click.Option(
                ["--epochs", "epochs_total"],
                type=click.IntRange(min=1),
                help="Total epochs: the first half at the full learning rate, the second half "
                "decaying (shorthand for --n-epochs and --n-epochs-decay).",
            )
        )
    return command


class _TrainGroup(click.Group):
    """Subcommands built from the registry on first use; ``--help`` imports none of them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(TRAINERS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in TRAINERS:
            self.commands[cmd_name] = _command(TRAINERS[cmd_name])
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Trainers"):
            formatter.write_dl([(name, t.summary) for name, t in TRAINERS.items()])


@click.group(cls=_TrainGroup)
def train() -> None:
    """Train a model; each writes a run folder (config, checkpoints, samples, metrics).

    \b
    transfigure train dcgan|wgan-gp|cgan DATA [options]
    transfigure train cyclegan DATA_ROOT [options]
    Resume an interrupted run with --resume RUN_DIR.
    """
