"""What every command shares: the application state on the Click context and exit-code errors."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.markup import escape

from transfigure.progress import (
    LogRenderer,
    NullRenderer,
    RichRenderer,
    make_console,
    make_renderer,
)

if TYPE_CHECKING:  # torch is imported when a device is first needed, not for --help
    import torch

__all__ = [
    "AliasOption",
    "AppState",
    "PartialFailure",
    "options_from_dataclass",
    "pass_state",
]


class PartialFailure(click.ClickException):
    """Some inputs of a batch failed (each already named on stderr): exit code 1."""

    exit_code = 1

    def __init__(self, n_failed: int, n_total: int | None = None) -> None:
        of = f" of {n_total}" if n_total is not None else ""
        super().__init__(f"{n_failed}{of} input(s) failed")
        self.n_failed = n_failed


@dataclass
class AppState:
    """Global options, shared with every subcommand through ``ctx.obj``."""

    device_name: str = "auto"
    precision: str = "fp32"
    seed: int | None = None
    quiet: bool = False
    console: Console = field(default_factory=make_console)
    _device: torch.device | None = field(default=None, repr=False)

    @property
    def device(self) -> torch.device:
        """The resolved device; an unavailable one is a usage error (exit 2)."""
        if self._device is None:
            from transfigure.runtime import DeviceUnavailableError, resolve_device

            try:
                self._device = resolve_device(self.device_name)
            except DeviceUnavailableError as exc:
                raise click.UsageError(str(exc)) from exc
        return self._device

    def renderer(self) -> RichRenderer | LogRenderer | NullRenderer:
        """A progress renderer on the stderr console: bars on a terminal, log lines elsewhere,
        nothing under ``--quiet``."""
        return make_renderer(self.console, self.quiet)

    def echo_result(self, path: Any) -> None:
        """Print a result (a path written) on stdout: the only thing stdout carries."""
        click.echo(os.fspath(path) if isinstance(path, os.PathLike) else str(path))

    def info(self, message: str) -> None:
        self.console.print(message)

    def warn(self, message: str) -> None:
        self.console.print(f"[yellow]warning:[/yellow] {message}")

    def error(self, message: str) -> None:
        """Name a failed input on stderr (shown even under ``--quiet``)."""
        console = make_console(quiet=False) if self.quiet else self.console
        # File names are not markup, and a path must stay on one line (soft_wrap: no breaks).
        console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)


pass_state = click.make_pass_decorator(AppState, ensure=True)


class AliasOption(click.Option):
    """An option that also accepts other spellings, not shown in ``--help`` or in messages.

    For old or foreign names that users type (a previous ``--out``, the reference's
    ``--dataroot``)::

        @click.option("-o", "--output", "out", cls=AliasOption, aliases=("--out",))
    """

    def __init__(
        self, param_decls: Sequence[str], *, aliases: Sequence[str] = (), **attrs: Any
    ) -> None:
        super().__init__([*param_decls, *aliases], **attrs)
        self.aliases = tuple(aliases)

    @contextlib.contextmanager
    def _without_aliases(self) -> Iterator[None]:
        opts = self.opts
        self.opts = [o for o in opts if o not in self.aliases]
        try:
            yield
        finally:
            self.opts = opts

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        with self._without_aliases():
            return super().get_help_record(ctx)

    def get_error_hint(self, ctx: click.Context) -> str:
        with self._without_aliases():
            return super().get_error_hint(ctx)


def options_from_dataclass(config_cls: type, *, exclude: tuple[str, ...] = ()) -> Any:
    """A decorator adding one ``--field-name`` option per simple dataclass field.

    Defaults and help come from the dataclass (help from ``field(metadata={"help": ...})``), so
    the config stays the only home of defaults. Fields of type bool become ``--x/--no-x`` flags.
    Tuples, lists and nested configs are skipped: expose those by hand.
    """

    def decorator(fn: Any) -> Any:
        instance = config_cls()
        for f in reversed(fields(config_cls)):
            if f.name in exclude or f.name.startswith("_"):
                continue
            default = getattr(instance, f.name)
            if not isinstance(default, (bool, int, float, str)) and default is not None:
                continue
            flag = "--" + f.name.replace("_", "-")
            help_text = f.metadata.get("help", "")
            choices = f.metadata.get("choices")
            if isinstance(default, bool):
                fn = click.option(
                    f"{flag}/--no-{flag[2:]}",
                    f.name,
                    default=default,
                    show_default=True,
                    help=help_text,
                )(fn)
                continue
            kind: Any = click.Choice(list(choices)) if choices else type(default)
            if default is None:
                kind = f.metadata.get("type", str)
            fn = click.option(
                flag, f.name, type=kind, default=default, show_default=True, help=help_text
            )(fn)
        return fn

    return decorator
