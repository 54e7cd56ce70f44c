"""The ``transfigure`` command line: one Click group, global options, exit codes.

Commands live in ``transfigure/commands/`` and are imported only when used, so ``--help`` and
quick commands stay fast. The CLI is thin: parse, build a config, call the library, print the
paths written on stdout; all else goes to stderr through one rich console.

Exit codes: 0 success, 1 some inputs failed or a fatal error, 2 usage error, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from transfigure import __version__
from transfigure.choices import DEVICES, PRECISIONS
from transfigure.cli_support import AppState
from transfigure.progress import make_console
from transfigure.threads import set_openmp_wait_policy

# Before any command imports torch: idle OpenMP threads sleep rather than spin, so a busy
# neighbour process slows the work by at most the share of the cores it takes (see threads.py).
set_openmp_wait_policy()

EXIT_INTERRUPTED = 130

# name -> "module:attribute"; each module is one command (or group).
COMMANDS: dict[str, str] = {
    "train": "transfigure.commands.train:train",
    "sample": "transfigure.commands.sample:sample",
    "translate": "transfigure.commands.translate:translate",
    "stylize": "transfigure.commands.stylize:stylize",
    "evaluate": "transfigure.commands.evaluate:evaluate",
    "models": "transfigure.commands.models:models",
    "datasets": "transfigure.commands.datasets:datasets",
    "demo": "transfigure.commands.demo:demo",
}

SUMMARIES: dict[str, str] = {
    "train": "Train a GAN (dcgan, wgan-gp, cgan) or a CycleGAN.",
    "sample": "Generate images from a trained GAN generator.",
    "translate": "Translate photos with a CycleGAN generator.",
    "stylize": "Stylize photos with neural style transfer.",
    "evaluate": "Score generated images against real ones (FID, KID).",
    "models": "List, download and import pretrained models.",
    "datasets": "List and download the reference datasets.",
    "demo": "Run the whole toolkit offline on generated data.",
}


def _user_errors() -> tuple[type[BaseException], ...]:
    """Library errors that are the user's input, not our bug: shown without a traceback."""
    errors: list[type[BaseException]] = []
    for module, name in (
        ("transfigure.images", "ImageError"),
        ("transfigure.checkpoint", "ModelFileError"),
        ("transfigure.download", "DownloadError"),
    ):
        try:
            errors.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _show_own_warnings(ctx: click.Context, console: Console) -> None:
    """Show transfigure's own warnings as ``warning: message`` lines on the console (no source
    line), for as long as ``ctx`` lives; other libraries' warnings keep Python's format."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        if category.__module__.split(".")[0] == "transfigure":
            console.print(f"[yellow]warning:[/yellow] {escape(str(message))}", soft_wrap=True)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show

    def restore() -> None:
        warnings.showwarning = default

    ctx.call_on_close(restore)


def _not_available(name: str) -> click.Command:
    def run() -> None:
        raise click.ClickException(f"'transfigure {name}' is not available yet in this version")

    return click.Command(
        name,
        callback=run,
        help=f"{SUMMARIES.get(name, '')} (Not available yet in this version.)",
        short_help=f"{SUMMARIES.get(name, '')} (not available yet)",
    )


# Options of the group that stay in front of the command: after it they mean the command's own.
_NEVER_HOISTED = frozenset({"-h", "--help", "--version"})


def _option_arity(params: list[click.Parameter]) -> dict[str, int]:
    """Every spelling of every option in ``params`` -> the number of values it takes."""
    arity: dict[str, int] = {}
    for param in params:
        if not isinstance(param, click.Option):
            continue
        n = 0 if (param.is_flag or param.count) else max(param.nargs, 1)
        for name in (*param.opts, *param.secondary_opts):
            arity[name] = n
    return arity


def _command_position(args: list[str], options: dict[str, int]) -> int | None:
    """Index of the first argument that is not one of ``options`` (or its value): the command."""
    i = 0
    while i < len(args):
        token = args[i]
        if token == "--":
            return None
        if not token.startswith("-") or token == "-":
            return i
        name = token.split("=", 1)[0]
        i += 1 if "=" in token else 1 + options.get(name, 0)
    return None


def _unparsed(ctx: click.Context) -> list[str]:
    """What the parse of a group's own options left: the command name and its arguments."""
    protected = ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args
    return [*protected, *ctx.args]


def _command_chain(group: click.Group, ctx: click.Context, args: list[str]) -> list[click.Command]:
    """The command ``args[0]`` names and, through nested groups, the subcommands after it."""
    chain: list[click.Command] = []
    command: click.Command | None = group.get_command(ctx, args[0]) if args else None
    while command is not None:
        chain.append(command)
        if not isinstance(command, click.Group):
            break
        args = args[1:]
        position = _command_position(args, _option_arity(command.params))
        if position is None:
            break
        args = args[position:]
        command = command.get_command(ctx, args[0])
    return chain


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use.

    ``lazy`` maps a command name to ``"module:attribute"``. A module that does not exist yet
    gives a command that says so plainly, with working ``--help``.
    """

    def __init__(
        self,
        *args: Any,
        lazy: dict[str, str] | None = None,
        summaries: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})
        self.summaries = dict(summaries or {})

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Known summaries avoid importing every command (and torch's heavier parts) for --help.
        rows = []
        for name in self.list_commands(ctx):
            summary = self.summaries.get(name)
            if summary is None:
                command = self.get_command(ctx, name)
                if command is None or command.hidden:
                    continue
                summary = command.get_short_help_str(limit=formatter.width - 20)
            rows.append((name, summary))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        target = self.lazy.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            command = _not_available(cmd_name)
        else:
            command = getattr(module, attribute)
        self.commands[cmd_name] = command
        return command

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, self._hoist_global_options(ctx, list(args)))

    def _parse_command_line(self, ctx: click.Context, args: list[str]) -> None:
        """Parse ``args`` (the command and its arguments, through nested groups) without running
        anything.

        A usage error or ``--help`` then ends the program before the group's callback resolves
        the device and precision, which imports torch. The command line is parsed again when
        the command runs.
        """
        group: click.Group = self
        parent = ctx
        with contextlib.ExitStack() as contexts:
            while args:
                name, command, args = group.resolve_command(parent, args)
                if name is None or command is None:  # only under resilient parsing
                    return
                parent = contexts.enter_context(command.make_context(name, args, parent=parent))
                if not isinstance(command, click.Group):
                    return
                group, args = command, _unparsed(parent)

    def _hoist_global_options(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Move this group's options written after the command name to before it.

        ``transfigure stylize a.jpg --style b.jpg --precision bf16`` then means the same as
        ``transfigure --precision bf16 stylize ...``. An option that the command (or its
        subcommand) defines itself keeps its place and its meaning there (``sample --seed``).
        Nothing after ``--`` is touched.
        """
        own = _option_arity(self.params)
        position = _command_position(args, own)
        if position is None:
            return args
        chain = _command_chain(self, ctx, args[position:])
        theirs: dict[str, int] = {}
        for command in chain:
            theirs.update(_option_arity(command.params))
        moved: list[str] = []
        kept: list[str] = args[: position + 1]
        rest = args[position + 1 :]
        i = 0
        while i < len(rest):
            token = rest[i]
            if token == "--":
                kept.extend(rest[i:])
                break
            name, has_value = token.split("=", 1)[0], "=" in token
            if name in theirs:
                width = 1 if has_value else 1 + theirs[name]
            elif name in own and name not in _NEVER_HOISTED:
                width = 1 if has_value else 1 + own[name]
                moved.extend(rest[i : i + width])
                i += width
                continue
            else:
                width = 1
            kept.extend(rest[i : i + width])
            i += width
        if not moved:
            return args
        return args[:position] + moved + kept[position:]

    def invoke(self, ctx: click.Context) -> Any:
        self._parse_command_line(ctx, _unparsed(ctx))
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            # Files are written atomically, so nothing half-written stays behind.
            make_console().print("[yellow]interrupted[/yellow]")
            ctx.exit(EXIT_INTERRUPTED)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except Exception as exc:
            if isinstance(exc, _user_errors()):
                raise click.ClickException(str(exc)) from exc
            raise


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    summaries=SUMMARIES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--device",
    type=click.Choice(DEVICES, case_sensitive=False),
    default="auto",
    show_default=True,
    envvar="TRANSFIGURE_DEVICE",
    help="Where to compute: auto picks CUDA, then Apple MPS, then the CPU.",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="Precision of the heavy work. auto: bf16 autocast on GPUs with native bf16 and, for "
    "inference, on CPUs with AVX-512 BF16 or AMX; fp32 elsewhere (never fp16). The precision "
    "used is said on stderr.",
)
@click.option("--seed", type=int, default=None, help="Seed every random generator.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars or logs; errors still shown.")
@click.version_option(__version__, "--version", prog_name="transfigure")
@click.pass_context
def main(ctx: click.Context, device: str, precision: str, seed: int | None, quiet: bool) -> None:
    """transfigure: image-to-image translation with GANs, CycleGAN and neural style transfer.

    Results (paths written) go to stdout; progress and logs go to stderr. The options below
    may also follow the command (transfigure stylize ... --precision bf16).
    """
    state = AppState(
        device_name=device.lower(),
        precision=precision,
        seed=seed,
        quiet=quiet,
        console=make_console(quiet=quiet),
    )
    ctx.obj = state
    _show_own_warnings(ctx, state.console)
    # Resolve now, so that an unavailable device is a usage error before any work starts (the
    # command line has parsed by now, and asks for no help: see LazyGroup._parse_command_line).
    _ = state.device
    _resolve_precision(ctx, state, precision)
    if seed is not None:
        from transfigure.runtime import seed_everything

        seed_everything(seed)


#: Commands that train (``auto`` keeps fp32 for training on the CPU); the others infer.
_TRAINING_COMMANDS = frozenset({"train", "demo"})
#: Commands that keep fp32 under ``auto``: scores must not depend on the machine they ran on.
_FP32_COMMANDS = frozenset({"evaluate"})
#: Commands whose heavy work runs under ``--precision``.
_COMPUTING_COMMANDS = frozenset({"train", "demo", "translate", "stylize", "evaluate", "sample"})


def _resolve_precision(ctx: click.Context, state: AppState, requested: str) -> None:
    """Turn ``--precision auto`` into the precision the command runs in, and say which."""
    from transfigure.runtime import resolve_precision

    command = ctx.invoked_subcommand
    training = command in _TRAINING_COMMANDS
    state.precision = resolve_precision(requested, state.device, training=training)
    if requested == "auto" and command in _FP32_COMMANDS:
        state.precision = "fp32"
    if requested == "auto" and command in _COMPUTING_COMMANDS:
        work = "training" if training else "scores" if command in _FP32_COMMANDS else "inference"
        state.info(
            f"precision: {state.precision} (auto for {work} on {state.device.type}; "
            "--precision fp32|bf16|fp16 to choose)"
        )


if __name__ == "__main__":  # pragma: no cover
    main()
