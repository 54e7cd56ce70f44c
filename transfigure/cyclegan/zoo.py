"""The reference implementation's pretrained CycleGAN generators: names, download, import.

The reference (junyanz/pytorch-CycleGAN-and-pix2pix, ``scripts/download_cyclegan_model.sh``)
publishes 18 generators at ``http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/
NAME.pth``. Each file is a plain ``state_dict`` of a 9-block ResNet generator (ngf=64, instance
norm, no dropout) with keys ``model.1.weight`` … ``model.26.bias``; files saved by PyTorch < 0.4
also carry InstanceNorm ``running_mean`` / ``running_var`` (and sometimes
``num_batches_tracked``) entries that a stat-free InstanceNorm does not have.

:func:`import_official` reads such a file with ``torch.load(weights_only=True)`` (no code is
unpickled), drops those stale entries, infers the architecture from the keys and shapes, and
writes a self-describing transfigure model file. :func:`ensure_pretrained` downloads a named
model into the cache on first use (``$TRANSFIGURE_CACHE``, see
:func:`transfigure.download.cache_dir`) and converts it; ``$TRANSFIGURE_MODELS_URL`` replaces the
base URL (a mirror, or a local server in tests).

The reference's pretrained pix2pix generators (``scripts/download_pix2pix_model.sh``:
``http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/NAME.pth``, U-Net 256 with batch norm
and dropout, tested with dropout on) are in the same table with ``family="pix2pix"``; the three
whose names CycleGAN models already use carry a ``_pix2pix`` suffix. Files in other layouts (a
U-Net, the CUT reference's anti-aliased ResNet, re-implementations with other names) are
converted by structure with :mod:`transfigure.cyclegan.importer`.

The reference publishes no checksums. A download is verified by what it must contain: it has to
load as a weights-only state dict and fit the generator exactly, or it is deleted and reported.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from transfigure.checkpoint import ModelFileError, load_weights_only, save_model
from transfigure.cyclegan.networks import GeneratorConfig, build_generator
from transfigure.events import Event

__all__ = [
    "DEFAULT_BASE_URL",
    "PRETRAINED",
    "PretrainedModel",
    "base_url",
    "cached_path",
    "convert_state_dict",
    "ensure_pretrained",
    "import_official",
    "is_cached",
    "load_official",
    "models_dir",
    "pretrained_names",
    "unknown_name_message",
]

MODEL_KIND = "cyclegan-generator"

#: Where the reference's download script fetches ``NAME.pth``.
DEFAULT_BASE_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"

#: Environment variable replacing :data:`DEFAULT_BASE_URL` (a mirror, or a test server).
BASE_URL_ENV = "TRANSFIGURE_MODELS_URL"


@dataclass(frozen=True)
class PretrainedModel:
    """One generator of the reference zoo.

    Attributes:
        name: the reference's name (``NAME.pth`` on its server).
        description: what it translates, in words.
        sha256: expected digest of ``NAME.pth`` when known (the reference publishes none).
        family: ``"cyclegan"`` or ``"pix2pix"`` (which reference server and layout).
        file_name: the name on the server when it differs from ``name``.
    """

    name: str
    description: str
    sha256: str | None = None
    family: str = "cyclegan"
    file_name: str | None = None


_MODELS = [
    ("apple2orange", "apples → oranges (ImageNet)"),
    ("orange2apple", "oranges → apples (ImageNet)"),
    ("summer2winter_yosemite", "Yosemite in summer → winter (Flickr)"),
    ("winter2summer_yosemite", "Yosemite in winter → summer (Flickr)"),
    ("horse2zebra", "horses → zebras (ImageNet)"),
    ("zebra2horse", "zebras → horses (ImageNet)"),
    ("monet2photo", "Monet paintings → photos"),
    ("style_monet", "photos → Monet-style paintings"),
    ("style_cezanne", "photos → Cézanne-style paintings"),
    ("style_ukiyoe", "photos → Ukiyo-e-style prints"),
    ("style_vangogh", "photos → Van Gogh-style paintings"),
    ("sat2map", "satellite photos → Google Maps tiles"),
    ("map2sat", "Google Maps tiles → satellite photos"),
    ("cityscapes_photo2label", "Cityscapes street photos → label maps"),
    ("cityscapes_label2photo", "Cityscapes label maps → street photos"),
    ("facades_photo2label", "building facade photos → label maps (CMP Facades)"),
    ("facades_label2photo", "facade label maps → photos (CMP Facades)"),
    ("iphone2dslr_flower", "iPhone flower photos → DSLR shallow depth of field"),
]

#: Where the pix2pix reference's download script fetches ``NAME.pth``.
DEFAULT_PIX2PIX_BASE_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch"

#: Environment variable replacing :data:`DEFAULT_PIX2PIX_BASE_URL`.
PIX2PIX_BASE_URL_ENV = "TRANSFIGURE_PIX2PIX_MODELS_URL"

# (our name, the reference's file name, description)
_PIX2PIX_MODELS = [
    ("facades_label2photo_pix2pix", "facades_label2photo", "pix2pix: facade label maps → photos"),
    ("sat2map_pix2pix", "sat2map", "pix2pix: aerial photos → Google Maps tiles"),
    ("map2sat_pix2pix", "map2sat", "pix2pix: Google Maps tiles → aerial photos"),
    ("edges2shoes", "edges2shoes", "pix2pix: edge maps → shoe photos"),
    ("edges2handbags", "edges2handbags", "pix2pix: edge maps → handbag photos"),
    ("day2night", "day2night", "pix2pix: daytime → night-time scenes"),
]

#: The reference's 18 pretrained CycleGAN generators, in its order, then its 6 pix2pix ones.
PRETRAINED: dict[str, PretrainedModel] = {n: PretrainedModel(n, d) for n, d in _MODELS} | {
    n: PretrainedModel(n, d, family="pix2pix", file_name=f) for n, f, d in _PIX2PIX_MODELS
}


def pretrained_names() -> list[str]:
    """The names of the pretrained generators, in the reference's order."""
    return list(PRETRAINED)


def base_url() -> str:
    """``$TRANSFIGURE_MODELS_URL`` if set, else the reference's server (no trailing slash)."""
    return (os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL).rstrip("/")


def model_url(name: str) -> str:
    """Where ``NAME.pth`` is downloaded from."""
    _check_name(name)
    entry = PRETRAINED[name]
    if entry.family == "pix2pix":
        base = (os.environ.get(PIX2PIX_BASE_URL_ENV) or DEFAULT_PIX2PIX_BASE_URL).rstrip("/")
        return f"{base}/{entry.file_name or name}.pth"
    return f"{base_url()}/{name}.pth"


def models_dir() -> Path:
    """Cache folder of converted pretrained generators (``cache_dir()/models/cyclegan``)."""
    from transfigure.download import cache_dir

    return cache_dir() / "models" / "cyclegan"


def cached_path(name: str) -> Path:
    """Where the converted model file of ``name`` lives (whether or not it exists yet)."""
    _check_name(name)
    return models_dir() / f"{name}.safetensors"


def is_cached(name: str) -> bool:
    """Whether ``name`` has been downloaded and converted."""
    return cached_path(name).is_file()


def unknown_name_message(name: str) -> str:
    """Why ``name`` is not a pretrained model, with the closest names and the full list."""
    import difflib

    close = difflib.get_close_matches(name, list(PRETRAINED), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    return f"unknown pretrained model {name!r}{hint}; available: {', '.join(PRETRAINED)}"


def _check_name(name: str) -> None:
    if name not in PRETRAINED:
        raise KeyError(unknown_name_message(name))


def ensure_pretrained(
    name: str,
    *,
    callback: Callable[[Event], None] | None = None,
    force: bool = False,
    timeout: float = 60,
) -> Path:
    """Return the model file of a pretrained generator, downloading and converting it if needed.

    The reference ``NAME.pth`` is streamed into the cache (resumable, with progress events),
    converted with :func:`import_official`, and deleted once the model file is written.

    Args:
        name: one of :data:`PRETRAINED`.
        callback: receives download progress events (bytes) and a log message.
        force: download and convert again even if the model file exists.
        timeout: network timeout in seconds.

    Returns:
        The cached ``.safetensors`` model file.

    Raises:
        KeyError: unknown name (the message lists the names).
        transfigure.download.DownloadError: the download failed (the message names the URL).
        ModelFileError: the downloaded file is not a reference ResNet generator (it is deleted).
    """
    from transfigure.download import DownloadError, download, removing_empty_folders

    out = cached_path(name)
    if out.is_file() and not force:
        return out
    entry = PRETRAINED[name]
    url = model_url(name)
    pth = models_dir() / "downloads" / f"{name}.pth"
    if callback is not None:
        callback(Event(task="models", message=f"downloading {name} from {url}"))
    with removing_empty_folders(pth.parent):
        try:
            download(
                url, pth, sha256=entry.sha256, callback=callback, timeout=timeout, overwrite=force
            )
        except DownloadError as e:
            raise DownloadError(_download_failed_message(name, e)) from e
        try:
            import_official(pth, out, name=name, source=url)
        except ModelFileError:
            # Not what the server should have sent (an HTML error page, a truncated file):
            # remove it, so the next attempt downloads afresh instead of converting the same
            # bytes.
            pth.unlink(missing_ok=True)
            raise
        pth.unlink(missing_ok=True)
    return out


def _download_failed_message(name: str, error: Exception) -> str:
    """Why ``name`` could not be downloaded, and the two ways forward without that server."""
    mirror = (
        f"${BASE_URL_ENV} is {base_url()}: check that it serves {name}.pth"
        if os.environ.get(BASE_URL_ENV)
        else f"set ${BASE_URL_ENV} to a mirror (a base URL) that serves {name}.pth"
    )
    return (
        f"could not download the pretrained model {name} ({error}). Without that server, "
        f"either get {name}.pth another way and run `transfigure models import {name}.pth` "
        f"(it writes {name}.safetensors: give translate that file instead of the name), or "
        f"{mirror}"
    )


# --------------------------------------------------------------------------------------------
# conversion of reference state dicts

# Entries that old PyTorch versions saved for InstanceNorm layers, which had running statistics
# by default before 0.4. The reference's own loader deletes them the same way.
_STALE_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
_BLOCK_KEY = re.compile(r"^model\.(\d+)\.conv_block\.(\d+)\.")


def _strip_prefix(state: Mapping[str, Any]) -> dict[str, Any]:
    # Files saved from a DataParallel wrapper prefix every key with "module.".
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def convert_state_dict(
    state: Mapping[str, Any], *, source: str = "state dict"
) -> tuple[GeneratorConfig, dict[str, Tensor]]:
    """Infer a reference ResNet generator's config from its ``state_dict`` and clean it.

    Inferred: ``input_nc`` and ``ngf`` (first convolution), ``output_nc`` (last convolution),
    the number of residual blocks (6 or 9), dropout (the second block convolution at index 6
    instead of 5), batch versus instance norm (BatchNorm has affine weights; the reference gives
    convolutions a bias exactly under instance norm) and the upsampling layers (transposed
    convolutions, or transfigure's resize-convolutions). A stat-free norm without parameters is
    taken to be instance norm, as in every reference CycleGAN model.

    Args:
        state: the loaded state dict.
        source: a name for error messages (the file).

    Returns:
        ``(config, cleaned_state)``: the cleaned state loads into ``build_generator(config)``
        with ``strict=True``.

    Raises:
        ModelFileError: not a ResNet generator state dict (the message says what was found).
    """
    config, cleaned, _net = _convert(state, source)
    return config, cleaned


def _is_reference_resnet(state: Mapping[str, Any]) -> bool:
    """Keys of the reference CycleGAN ResnetGenerator (converted here, with its messages)."""
    return (
        "model.1.weight" in state
        and all(isinstance(v, Tensor) for v in state.values())
        and not any(k.startswith("model.model.") or k.endswith(".filt") for k in state)
    )


def _by_structure(
    state: Mapping[str, Any], source: str, notes: list[str] | None
) -> tuple[GeneratorConfig, dict[str, Tensor], nn.Module]:
    from transfigure.cyclegan.importer import convert_generator

    imported = convert_generator(state, source=source)
    if notes is not None:
        notes.extend(imported.notes)
    return imported.config, imported.state, imported.net


def _convert(
    state: Mapping[str, Any], source: str, notes: list[str] | None = None
) -> tuple[GeneratorConfig, dict[str, Tensor], nn.Module]:
    if not isinstance(state, Mapping) or not state:
        raise ModelFileError(f"{source}: not a state dict (found {type(state).__name__})")
    state = _strip_prefix(state)
    if not _is_reference_resnet(state):
        # a U-Net, the CUT layout, a re-implementation or a wrapped checkpoint: by structure
        return _by_structure(state, source, notes)
    keys = list(state)

    blocks = sorted({int(m.group(1)) for k in keys if (m := _BLOCK_KEY.match(k))})
    if blocks != list(range(10, 10 + len(blocks))):
        raise ModelFileError(
            f"{source}: residual blocks at unexpected indices {blocks} (expected 10, 11, …)"
        )
    n_blocks = len(blocks)
    if n_blocks not in (6, 9):
        raise ModelFileError(
            f"{source}: a ResNet generator with {n_blocks} residual blocks; transfigure builds "
            "the reference's resnet_6blocks and resnet_9blocks only"
        )

    first = state["model.1.weight"]
    if first.ndim != 4 or tuple(first.shape[2:]) != (7, 7):
        raise ModelFileError(
            f"{source}: model.1.weight has shape {tuple(first.shape)}, expected (ngf, C, 7, 7)"
        )
    ngf, input_nc = int(first.shape[0]), int(first.shape[1])
    last_index = 10 + n_blocks + 7  # blocks, 2 × (up, norm, ReLU), pad, conv
    last = state.get(f"model.{last_index}.weight")
    if last is None or last.ndim != 4:
        raise ModelFileError(
            f"{source}: no final convolution model.{last_index}.weight for {n_blocks} blocks"
        )
    output_nc = int(last.shape[0])

    batch_norm = "model.2.weight" in state
    norm = "batch" if batch_norm else "instance"
    use_dropout = any(
        k.startswith(f"model.{blocks[0]}.conv_block.6.")
        and k.endswith("weight")
        and state[k].ndim == 4
        for k in keys
    ) or any(k.startswith(f"model.{blocks[0]}.conv_block.7.") for k in keys)
    up = state.get(f"model.{10 + n_blocks}.weight")
    # ConvTranspose2d weights are (in, out, k, k), Conv2d ones (out, in, k, k).
    upsample = "transpose"
    if up is not None and up.ndim == 4 and up.shape[0] == 2 * ngf and up.shape[1] == 4 * ngf:
        upsample = "resize_conv"

    cleaned: dict[str, Tensor] = {}
    for key, value in state.items():
        if not batch_norm and key.rsplit(".", 1)[-1] in _STALE_SUFFIXES:
            continue  # stale InstanceNorm statistics
        cleaned[key] = value.detach().to("cpu", torch.float32).contiguous()

    config = GeneratorConfig(
        netG=f"resnet_{n_blocks}blocks",
        input_nc=input_nc,
        output_nc=output_nc,
        ngf=ngf,
        norm=norm,
        use_dropout=use_dropout,
        upsample=upsample,
    )
    net = build_generator(config)
    expected = net.state_dict()
    missing = sorted(set(expected) - set(cleaned))
    unexpected = sorted(set(cleaned) - set(expected))
    wrong = [k for k in expected if k in cleaned and cleaned[k].shape != expected[k].shape]
    if missing or unexpected or wrong:
        problems = []
        if missing:
            problems.append(f"missing {', '.join(missing[:3])}")
        if unexpected:
            problems.append(f"unexpected {', '.join(unexpected[:3])}")
        if wrong:
            problems.append(
                "shape mismatch "
                + ", ".join(
                    f"{k} {tuple(cleaned[k].shape)} vs {tuple(expected[k].shape)}"
                    for k in wrong[:3]
                )
            )
        reason = ModelFileError(
            f"{source}: does not fit a reference {config.netG} generator "
            f"(ngf={ngf}, {norm} norm): {'; '.join(problems)}"
        )
        try:  # the reference's names, another variant (affine instance norm...): by structure
            return _by_structure(state, source, notes)
        except ModelFileError:
            raise reason from None
    net.load_state_dict(cleaned, strict=True)
    return config, cleaned, net.eval()


def _read_pth(path: Path) -> Mapping[str, Any]:
    state = load_weights_only(path, "cpu")
    # Some training scripts wrap the weights: {"state_dict": {...}} or {"netG_A": {...}}.
    if (
        isinstance(state, Mapping)
        and "state_dict" in state
        and isinstance(state["state_dict"], Mapping)
    ):
        state = state["state_dict"]
    return state


def load_official(
    path: str | os.PathLike[str], *, device: str | torch.device = "cpu"
) -> tuple[nn.Module, GeneratorConfig]:
    """Build a generator from a reference ``.pth`` file directly (no model file written).

    Returns:
        ``(network in eval mode on device, config)``.

    Raises:
        ModelFileError: unreadable file, or not a reference ResNet generator.
    """
    path = Path(path)
    config, _state, net = _convert(_read_pth(path), str(path))
    return net.to(device).eval(), config


def import_official(
    pth_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    *,
    name: str | None = None,
    direction: str | None = None,
    source: str | None = None,
) -> Path:
    """Convert a reference CycleGAN generator ``.pth`` into a transfigure model file.

    Args:
        pth_path: a reference ``state_dict`` (e.g. ``latest_net_G_A.pth`` or a zoo file).
        out_path: the ``.safetensors`` file to write (atomically; parents created).
        name: a name stored in the file (defaults to the ``.pth`` file's stem).
        direction: ``"a2b"`` or ``"b2a"`` if known (``G_A`` of a reference run is a2b).
        source: where the file came from (a URL), stored in the metadata.

    Returns:
        ``out_path``.

    Raises:
        ModelFileError: unreadable file or not a reference ResNet generator; nothing is written.
        ValueError: ``direction`` is not a2b / b2a.
    """
    pth_path, out_path = Path(pth_path), Path(out_path)
    if direction is not None and direction not in ("a2b", "b2a"):
        raise ValueError(f"direction must be 'a2b' or 'b2a', got {direction!r}")
    notes: list[str] = []
    config, _state, net = _convert(_read_pth(pth_path), str(pth_path), notes)
    extra: dict[str, Any] = {
        "name": name or pth_path.stem,
        "imported_from": "reference pytorch-CycleGAN-and-pix2pix state dict",
        "source": source or pth_path.name,
    }
    if notes:
        extra["imported_from"] = "a generator state dict, mapped by structure"
        extra["inferred"] = notes
    if direction is not None:
        extra["direction"] = direction
    return save_model(net, out_path, kind=MODEL_KIND, config=config, extra=extra)
