"""The settings every trainer shares, and how a config field describes its own CLI option.

A trainer's config is a dataclass that extends :class:`TrainOptions`. Each field is declared
with :func:`option`, whose metadata carries the help text, the choices, the reference tool's
spelling (an alias, hidden from ``--help``) and whether the field may change when a run is
resumed. The command line builds its options from these fields, so defaults, help and choices
have one home.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "TrainOptions",
    "config_from_dict",
    "config_to_dict",
    "default_workers",
    "option",
    "resumable_fields",
]


def option(
    default: Any = dataclasses.MISSING,
    help: str = "",
    *,
    choices: typing.Sequence[Any] | None = None,
    aliases: typing.Sequence[str] = (),
    resumable: bool = False,
    cli: bool = True,
    minimum: float | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field that also describes its command-line option.

    Args:
        default: the default value (the only home of it).
        help: the option's help text.
        choices: the allowed values, if a closed set.
        aliases: other spellings accepted on the command line and hidden from ``--help``
            (the reference tools' ``--netG``, ``--n_epochs``, ``--lambda_A``...).
        resumable: the value may change when a run is resumed (learning rates, lengths,
            logging); every other field is structural and must match the run's.
        cli: expose the field as an option.
        minimum: the smallest allowed value of a number.
        default_factory: instead of ``default``, a callable that makes it.
    """
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "aliases": tuple(aliases),
        "resumable": resumable,
        "cli": cli,
        "minimum": minimum,
    }
    if default_factory is not dataclasses.MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


def default_workers() -> int:
    """Data-loading processes: up to 4, never more than this process may use."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = os.cpu_count() or 1
    return max(0, min(4, cpus))


@dataclass
class TrainOptions:
    """Settings shared by every trainer: the same option means the same unit everywhere.

    Steps are optimiser updates of the whole model (one batch per process); epochs are passes
    over the data.
    """

    batch_size: int = option(1, "images per step and process", minimum=1)
    workers: int = option(
        0,
        "data-loading worker processes (at most the CPUs this process may use)",
        resumable=True,
        minimum=0,
        aliases=("--num_threads",),
    )
    seed: int = option(0, "seed of initialisation, data order and augmentation", cli=False)
    log_every: int = option(
        100, "steps per line of metrics.jsonl (epochs always end a line)", resumable=True, minimum=1
    )
    checkpoint_every: int = option(
        500,
        "steps between checkpoints (and exported models) within an epoch; epochs always end "
        "with one (0: at epoch ends only)",
        resumable=True,
        minimum=0,
        aliases=("--save_latest_freq",),
    )
    keep_every: int = option(
        0,
        "keep a copy checkpoints/epoch_XXX.pt every this many epochs (0: never)",
        resumable=True,
        minimum=0,
        aliases=("--save_epoch_freq",),
    )
    ema_decay: float = option(
        0.0,
        "exponential moving average of the generators' weights, used for samples and export "
        "(0: off; 0.999 is usual)",
        minimum=0.0,
    )
    watch_every: int = option(
        50,
        "steps per look of the failure detectors (overpowering discriminator, mode collapse, "
        "stalled or oscillating losses; 0: off)",
        resumable=True,
        minimum=0,
    )
    d_skip_below: float = option(
        0.0,
        "skip a discriminator update while its loss is below this value, so an overpowering "
        "discriminator does not starve the generator (0: never skip)",
        resumable=True,
        minimum=0.0,
    )

    @property
    def total_epochs(self) -> int:  # pragma: no cover - every trainer overrides it
        raise NotImplementedError

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad setting (checks choices and minimums)."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            choices = f.metadata.get("choices")
            if choices and value is not None and value not in choices:
                raise ValueError(
                    f"{f.name} must be one of {', '.join(map(str, choices))}, got {value!r}"
                )
            minimum = f.metadata.get("minimum")
            if minimum is not None and value is not None and value < minimum:
                raise ValueError(f"{f.name} must be >= {minimum}, got {value}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay}")


def resumable_fields(config_cls: type) -> frozenset[str]:
    """The fields of a config that may change when a run is resumed."""
    return frozenset(f.name for f in dataclasses.fields(config_cls) if f.metadata.get("resumable"))


def config_to_dict(config: Any) -> dict[str, Any]:
    """A config as plain JSON-able values."""
    return dataclasses.asdict(config)


def _coerce(hint: Any, value: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return value if value is None else _coerce(args[0], value)
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def config_from_dict(config_cls: type, values: dict[str, Any]) -> Any:
    """Rebuild a config from :func:`config_to_dict`'s output.

    Unknown keys are an error (a run written by another trainer or a newer version); missing
    keys take their defaults.
    """
    hints = typing.get_type_hints(config_cls)
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)} for {config_cls.__name__}")
    return config_cls(**{k: _coerce(hints[k], v) for k, v in values.items()})
