"""Self-describing model files and training state.

A *model file* is a ``.safetensors`` file: the module's weights plus, in the safetensors metadata,
everything needed to rebuild the network without unpickling code::

    transfigure.kind          "cyclegan-generator"            (a registered model kind)
    transfigure.config        '{"ngf": 64, "n_blocks": 9, ...}' (dataclasses.asdict as JSON)
    transfigure.config_class  "transfigure.cyclegan.networks.ResnetGeneratorConfig"
    transfigure.version       "0.1.0"                          (transfigure.__version__)
    transfigure.extra         '{"direction": "a2b"}'           (free-form JSON)

The built-in kinds are listed in :mod:`transfigure.registry` (imported on first use; more can be
added with :func:`register_model`); :func:`load_model` looks the kind up, rebuilds the network
from the stored config and loads the weights strictly.

*Training state* (optimisers, schedulers, step counters, random states) is written with
``torch.save`` atomically and read back with ``torch.load(weights_only=True)``, so resuming a run
never executes pickled code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import stat
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

import transfigure
from transfigure.fileio import atomic_path

__all__ = [
    "ModelFileError",
    "ModelInfo",
    "config_from_dict",
    "load_model",
    "load_training_state",
    "load_weights_only",
    "model_kinds",
    "read_model_info",
    "register_model",
    "save_model",
    "save_training_state",
]

_META_KIND = "transfigure.kind"
_META_CONFIG = "transfigure.config"
_META_CONFIG_CLASS = "transfigure.config_class"
_META_VERSION = "transfigure.version"
_META_EXTRA = "transfigure.extra"


class ModelFileError(Exception):
    """A model or training-state file cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class _Registration:
    config_cls: type
    build: Callable[[Any], nn.Module]


_REGISTRY: dict[str, _Registration] = {}


@dataclass
class ModelInfo:
    """What a model file says about itself (read from the metadata, no weights loaded).

    Attributes:
        path: the file.
        kind: the registered model kind, e.g. ``"cyclegan-generator"``.
        config: the architecture config as a plain dict (JSON-decoded).
        version: the transfigure version that wrote the file.
        extra: free-form metadata (direction, labels, training settings...).
        config_class: qualified name of the config dataclass that wrote ``config``.
    """

    path: Path
    kind: str
    config: dict[str, Any]
    version: str
    extra: dict[str, Any] = field(default_factory=dict)
    config_class: str = ""


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_model(kind: str, config_cls: type, build: Callable[[Any], nn.Module]) -> None:
    """Register a model kind so that :func:`load_model` can rebuild it from a file.

    Args:
        kind: a short, stable name stored in every file (``"dcgan-generator"``).
        config_cls: the architecture's ``@dataclass`` config.
        build: ``build(config) -> nn.Module`` — a freshly initialised network for that config.

    Raises:
        TypeError: ``config_cls`` is not a dataclass.
        ValueError: ``kind`` is already registered with a different config class.
    """
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise TypeError(f"config_cls for {kind!r} must be a dataclass type, got {config_cls!r}")
    previous = _REGISTRY.get(kind)
    # Re-registering the same class (a module imported twice, or reloaded) is harmless.
    if previous is not None and _qualname(previous.config_cls) != _qualname(config_cls):
        raise ValueError(
            f"model kind {kind!r} is already registered with config "
            f"{_qualname(previous.config_cls)}, not {_qualname(config_cls)}"
        )
    _REGISTRY[kind] = _Registration(config_cls=config_cls, build=build)


def model_kinds() -> list[str]:
    """The registered model kinds (the built-in ones of :mod:`transfigure.registry` and any
    added with :func:`register_model`), sorted."""
    from transfigure.registry import MODEL_KINDS

    return sorted(set(_REGISTRY) | set(MODEL_KINDS))


def _registration(kind: str) -> _Registration | None:
    """The registration of ``kind``; built-in kinds are imported on first use."""
    if kind not in _REGISTRY:
        from transfigure.registry import MODEL_KINDS, load

        if kind in MODEL_KINDS:
            config_path, build_path = MODEL_KINDS[kind]
            register_model(kind, load(config_path), load(build_path))
    return _REGISTRY.get(kind)


# --------------------------------------------------------------------------------------------
# config (de)serialisation


def _unwrap_optional(hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _coerce(hint: Any, value: Any) -> Any:
    """Turn a JSON-decoded value back into what the dataclass field expects (tuples, nested)."""
    hint = _unwrap_optional(hint)
    if value is None:
        return None
    if isinstance(hint, type) and dataclasses.is_dataclass(hint) and isinstance(value, dict):
        return config_from_dict(hint, value)
    # JSON has no tuples: a tuple field comes back as a list.
    if (hint is tuple or typing.get_origin(hint) is tuple) and isinstance(value, list):
        return tuple(value)
    return value


def config_from_dict(config_cls: type, d: Mapping[str, Any]) -> Any:
    """Build a config dataclass from a dict such as a model file's stored config.

    Missing keys take the dataclass defaults (files from older versions keep loading); unknown
    keys are an error, because silently dropping an architecture setting would build the wrong
    network. Tuple fields stored as JSON lists are turned back into tuples; nested dataclass
    fields are built recursively.

    Raises:
        TypeError: ``config_cls`` is not a dataclass.
        ModelFileError: ``d`` is not a dict, has unknown keys, or the dataclass rejects a value.
    """
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise TypeError(f"{config_cls!r} is not a dataclass type")
    name = config_cls.__name__
    if not isinstance(d, Mapping):
        raise ModelFileError(f"config for {name} must be a JSON object, got {type(d).__name__}")
    fields = {f.name: f for f in dataclasses.fields(config_cls) if f.init}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ModelFileError(
            f"config does not fit {name}: unknown key(s) {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(fields))}); was it written by a newer transfigure?"
        )
    try:
        hints = typing.get_type_hints(config_cls)
    except Exception:  # unresolved forward references: fall back to no coercion
        hints = {}
    kwargs = {key: _coerce(hints.get(key), value) for key, value in d.items()}
    try:
        return config_cls(**kwargs)
    except (TypeError, ValueError) as e:
        raise ModelFileError(f"config does not fit {name}: {e}") from e


# --------------------------------------------------------------------------------------------
# model files


def _tensors_for_saving(module: nn.Module) -> dict[str, torch.Tensor]:
    tensors = {}
    for key, value in module.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"state_dict entry {key!r} is not a tensor ({type(value).__name__})")
        # safetensors refuses tensors that share storage (tied weights, views) and non-contiguous
        # ones; a private contiguous CPU copy of each tensor sidesteps both.
        tensors[key] = value.detach().to("cpu", copy=True).contiguous()
    return tensors


def save_model(
    module: nn.Module,
    path: str | Path,
    *,
    kind: str,
    config: Any,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``module``'s weights and its description to a ``.safetensors`` model file.

    Args:
        module: the network; its ``state_dict`` is saved (tensors copied to CPU).
        path: destination, written atomically (temp file in the same folder, then rename);
            parent folders are created.
        kind: a registered model kind.
        config: the dataclass instance the network was built from (an instance of the kind's
            registered config class).
        extra: JSON-serialisable metadata to keep alongside (direction, labels, ...).

    Returns:
        The path written.

    Raises:
        ValueError: ``kind`` is not registered, or ``config`` is not of its config class.
        TypeError: ``extra`` or ``config`` is not JSON-serialisable.
    """
    path = Path(path)
    registration = _registration(kind)
    if registration is None:
        raise ValueError(
            f"unknown model kind {kind!r}: register it first (known: {', '.join(model_kinds())})"
        )
    if not isinstance(config, registration.config_cls):
        raise ValueError(
            f"config for {kind!r} must be a {registration.config_cls.__name__}, "
            f"got {type(config).__name__}"
        )
    metadata = {
        _META_KIND: kind,
        _META_CONFIG: json.dumps(dataclasses.asdict(config), sort_keys=True),
        _META_CONFIG_CLASS: _qualname(type(config)),
        _META_VERSION: transfigure.__version__,
        _META_EXTRA: json.dumps(dict(extra or {}), sort_keys=True),
    }
    tensors = _tensors_for_saving(module)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        mode = stat.S_IMODE(tmp.stat().st_mode)  # the umask's permissions, as for every output
        save_file(tensors, str(tmp), metadata=metadata)
        # safetensors replaces the file with one of its own, created 0600: other users and
        # services could not read the model.
        os.chmod(tmp, mode)
    return path


def _read_metadata(path: Path) -> dict[str, str]:
    if not path.exists():
        raise ModelFileError(f"{path}: no such file")
    if not path.is_file():
        raise ModelFileError(f"{path}: not a file")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata()
    except Exception as e:  # safetensors raises its own error types for every kind of damage
        raise ModelFileError(
            f"{path}: not a readable safetensors file (corrupt or truncated?): {e}"
        ) from e
    return dict(metadata or {})


def read_model_info(path: str | Path) -> ModelInfo:
    """Read a model file's description without loading its weights.

    Raises:
        ModelFileError: the file is missing, not a safetensors file, or has no transfigure
            metadata.
    """
    path = Path(path)
    metadata = _read_metadata(path)
    if _META_KIND not in metadata:
        raise ModelFileError(
            f"{path}: no transfigure metadata (not a transfigure model file; a reference "
            f"CycleGAN .pth is converted with `transfigure models import`)"
        )
    try:
        config = json.loads(metadata.get(_META_CONFIG, "{}"))
        extra = json.loads(metadata.get(_META_EXTRA, "{}"))
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path}: damaged transfigure metadata: {e}") from e
    if not isinstance(config, dict) or not isinstance(extra, dict):
        raise ModelFileError(f"{path}: damaged transfigure metadata: config/extra not objects")
    return ModelInfo(
        path=path,
        kind=metadata[_META_KIND],
        config=config,
        version=metadata.get(_META_VERSION, "unknown"),
        extra=extra,
        config_class=metadata.get(_META_CONFIG_CLASS, ""),
    )


def _check_state_dict(path: Path, expected: Mapping[str, torch.Tensor], found: Mapping) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = [
        f"{k} (file {tuple(found[k].shape)}, model {tuple(expected[k].shape)})"
        for k in sorted(set(expected) & set(found))
        if tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    if not (missing or unexpected or mismatched):
        return

    def some(keys: list[str]) -> str:
        return ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")

    problems = []
    if missing:
        problems.append(f"missing {some(missing)}")
    if unexpected:
        problems.append(f"unexpected {some(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatch {some(mismatched)}")
    raise ModelFileError(f"{path}: weights do not fit the network: {'; '.join(problems)}")


def load_model(
    path: str | Path,
    *,
    kind: str | Sequence[str] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[nn.Module, ModelInfo]:
    """Rebuild a network from a model file alone and load its weights.

    Args:
        path: a ``.safetensors`` file written by :func:`save_model`.
        kind: the kind (or kinds) the caller can use; another kind is an error.
        device: where the returned module lives.

    Returns:
        ``(module, info)`` — the module in eval mode on ``device``, and the file's description.

    Raises:
        ModelFileError: missing / corrupt file, no transfigure metadata, unknown kind, a kind
            other than ``kind``, a config that does not fit, or weights that do not fit.
    """
    path = Path(path)
    info = read_model_info(path)
    if kind is not None:
        wanted = [kind] if isinstance(kind, str) else list(kind)
        if info.kind not in wanted:
            raise ModelFileError(
                f"{path}: is a {info.kind!r} model, expected {' or '.join(repr(k) for k in wanted)}"
            )
    registration = _registration(info.kind)
    if registration is None:
        known = ", ".join(model_kinds()) or "none"
        raise ModelFileError(
            f"{path}: unknown model kind {info.kind!r} (written by transfigure {info.version}; "
            f"known kinds: {known})"
        )
    try:
        config = config_from_dict(registration.config_cls, info.config)
    except ModelFileError as e:
        raise ModelFileError(f"{path}: {e}") from e
    module = registration.build(config)

    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {key: f.get_tensor(key) for key in f.keys()}
    except Exception as e:
        raise ModelFileError(f"{path}: cannot read the weights (corrupt or truncated?): {e}") from e
    _check_state_dict(path, module.state_dict(), state)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelFileError(f"{path}: weights do not fit the network: {e}") from e
    module.to(device)
    module.eval()
    return module, info


# --------------------------------------------------------------------------------------------
# training state


def save_training_state(path: str | Path, state: Mapping[str, Any]) -> Path:
    """Write a training state dict with ``torch.save``, atomically (temp, fsync, rename).

    Keep ``state`` to tensors, dicts, lists, tuples, numbers, strings and None (what
    ``optimizer.state_dict()``, ``scheduler.state_dict()`` and ``runtime.get_rng_state()`` give),
    so that :func:`load_training_state` can read it with ``weights_only=True``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(dict(state), tmp)
    return path


_UNSAFE_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")
_UNPICKLER_DETAIL = re.compile(r"WeightsUnpickler error:\s*(.+?)\s*(?:\n\n|$)", re.S)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _load_failure(error: BaseException) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line of our own words.

    PyTorch's message advises retrying with ``weights_only=False``, which would run whatever
    code the file carries: that advice is not passed on.
    """
    text = _ANSI.sub("", str(error))
    unsafe = _UNSAFE_GLOBAL.search(text)
    if unsafe:
        return (
            f"not a safe model file: it holds a pickled Python object ({unsafe.group(1)}) that "
            "only code run from the file could rebuild; transfigure reads plain weights only "
            "(tensors, numbers, strings, lists, dicts)"
        )
    if "Weights only load failed" in text:
        detail = _UNPICKLER_DETAIL.search(text)
        reason = f" ({detail.group(1).strip()})" if detail else ""
        return (
            "not a safe model file: it is damaged, not a PyTorch file, or holds pickled data "
            f"beyond plain weights{reason}"
        )
    lines = text.strip().splitlines()
    return f"not a readable PyTorch file: {lines[0] if lines else type(error).__name__}"


def load_weights_only(path: str | Path, map_location: str | torch.device | None = "cpu") -> Any:
    """``torch.load(path, weights_only=True)``, with failures reported as :class:`ModelFileError`.

    No code in the file is ever run: pickled objects other than tensors and plain containers
    are refused.

    Raises:
        ModelFileError: the file is missing, damaged, or not plain weights; the message names
            the file and says why.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # zip errors, EOF, unpickler refusals: all mean "cannot use this file"
        raise ModelFileError(f"{path}: {_load_failure(e)}") from e


def load_training_state(
    path: str | Path, map_location: str | torch.device | None = "cpu"
) -> dict[str, Any]:
    """Read a training state written by :func:`save_training_state` (``weights_only=True``).

    Raises:
        ModelFileError: the file is missing, damaged, holds objects that need unpickling code,
            or is not a dict.
    """
    path = Path(path)
    try:
        state = load_weights_only(path, map_location)
    except ModelFileError as e:
        if not path.is_file():
            raise
        reason = str(e).removeprefix(f"{path}: ")
        raise ModelFileError(f"{path}: cannot read training state: {reason}") from e
    if not isinstance(state, dict):
        raise ModelFileError(f"{path}: training state must be a dict, found {type(state).__name__}")
    return state
