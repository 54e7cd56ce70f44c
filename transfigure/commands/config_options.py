"""Command-line options built from a trainer's config dataclass.

Every field declared with :func:`transfigure.training.options.option` and ``cli=True`` becomes
``--field-name`` (booleans ``--x/--no-x``) with the field's help, choices and default, and is
also accepted under the reference tools' spellings: the underscore form (``--n_epochs``,
``--no_flip``) and the field's own ``aliases`` (``--netG``, ``--lambda_A``), hidden from
``--help``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import click
from click.core import ParameterSource

__all__ = ["ConfigOption", "config_options", "given_options"]


class ConfigOption(click.Option):
    """An option with hidden alternative spellings (on- and off-flags alike)."""

    def __init__(self, param_decls: Sequence[str], *, aliases: Sequence[str] = (), **attrs: Any):
        super().__init__([*param_decls, *aliases], **attrs)
        self.hidden_names = {part.strip() for a in aliases for part in a.split("/") if part.strip()}

    @contextlib.contextmanager
    def _visible(self) -> Iterator[None]:
        opts, secondary = self.opts, self.secondary_opts
        self.opts = [o for o in opts if o not in self.hidden_names]
        self.secondary_opts = [o for o in secondary if o not in self.hidden_names]
        try:
            yield
        finally:
            self.opts, self.secondary_opts = opts, secondary

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        with self._visible():
            return super().get_help_record(ctx)

    def get_error_hint(self, ctx: click.Context) -> str:
        with self._visible():
            return super().get_error_hint(ctx)


def _base_type(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0]
    return hint


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def config_options(
    config_cls: type, defaults: Any, *, exclude: Sequence[str] = ()
) -> Callable[[Callable], Callable]:
    """A decorator adding one option per command-line field of ``config_cls``.

    Args:
        config_cls: the config dataclass.
        defaults: an instance whose values are shown as defaults (a preset's).
        exclude: fields handled by the command itself.
    """
    hints = typing.get_type_hints(config_cls)

    def decorator(fn: Callable) -> Callable:
        for f in reversed(dataclasses.fields(config_cls)):
            meta = f.metadata
            if not meta.get("cli", False) or f.name in exclude:
                continue
            flag = _flag(f.name)
            underscore = "--" + f.name
            kind = _base_type(hints[f.name])
            default = getattr(defaults, f.name)
            help_text = meta.get("help", "")
            help_text = help_text[:1].upper() + help_text[1:]
            shows_default = "[default:" in help_text
            if kind is bool:
                aliases = [
                    f"{underscore}/--no_{f.name}" if underscore != flag else f" /--no_{f.name}"
                ]
                for alias in meta.get("aliases", ()):
                    aliases.append(f" /{alias}" if alias.startswith("--no_") else alias)
                fn = click.option(
                    f"{flag}/--no-{flag[2:]}",
                    f.name,
                    cls=ConfigOption,
                    aliases=aliases,
                    default=default,
                    show_default=True,
                    help=help_text,
                )(fn)
                continue
            aliases = [underscore] if underscore != flag else []
            aliases += list(meta.get("aliases", ()))
            choices = meta.get("choices")
            click_type: Any = kind
            if choices:
                click_type = click.Choice([str(c) for c in choices])
            elif kind in (int, float) and meta.get("minimum") is not None:
                click_type = (click.IntRange if kind is int else click.FloatRange)(
                    min=meta["minimum"]
                )
            fn = click.option(
                flag,
                f.name,
                cls=ConfigOption,
                aliases=aliases,
                type=click_type,
                default=str(default) if choices and default is not None else default,
                show_default=default is not None and not shows_default,
                help=help_text,
            )(fn)
        return fn

    return decorator


def given_options(ctx: click.Context, config_cls: type, options: dict[str, Any]) -> dict[str, Any]:
    """The config fields the user set on the command line (or in the environment), converted to
    the field's type (choices arrive as strings)."""
    hints = typing.get_type_hints(config_cls)
    out: dict[str, Any] = {}
    for name, value in options.items():
        source = ctx.get_parameter_source(name)
        if source not in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT):
            continue
        kind = _base_type(hints[name])
        out[name] = kind(value) if value is not None and kind in (int, float) else value
    return out
