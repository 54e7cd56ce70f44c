"""Translate images with a CycleGAN generator: tensors, files and whole folders.

Three layers, each usable alone:

- :func:`translate_tensor` — a batch ``(B, C, H, W)`` in [-1, 1] of any size: padded to the
  generator's stride (reflection) and cropped back, translated in overlapping tiles (see
  :mod:`transfigure.cyclegan.tiling`) when it is larger than ``tile``² pixels, in the chosen
  precision, channels-last on CUDA.
- :func:`translate_files` — a list of ``(file, relative path)`` pairs into an output folder that
  mirrors them, on the shared files → files job (:mod:`transfigure.batch`: decoding ahead,
  skipping existing outputs, atomic writes, each bad file named, claims shared with other
  processes). Progress arrives as :class:`~transfigure.batch.BatchEvent` (unit ``"img"``).
- :func:`load_translator` — a model file, a training run folder (with a direction), a reference
  ``.pth``, or the name of a pretrained model (downloaded and converted on first use).

Sizes. By default every output has exactly its input's size: the image is reflection-padded to a
multiple of 4 (two stride-2 convolutions) and cropped back. ``size=N`` first resizes the image so
that its *shorter* side is N pixels (aspect ratio kept, antialiased), and the output keeps that
new size — useful to run a model trained on 256² crops at the scale it knows.

Tiles. The default tile side (:func:`auto_tile`) comes from memory: on CUDA a 256² probe measures
the generator's peak activation bytes per pixel (``bpp``) and ``tile = sqrt(0.5 * free_memory /
bpp)`` rounded down to a multiple of 64 and clamped to [256, 4096] (half the free memory, so
cuDNN workspaces and the caching allocator have room); on Apple MPS 1024; on the CPU 512 (a
ResNet-9 generator at ngf=64 needs about 1 kB per pixel, so 512² tiles stay well under 1 GB
however large the photo is). An image is tiled when it has more than ``tile²`` pixels; smaller
images of one size are batched up to ``tile²`` pixels per batch. A CUDA out-of-memory error
splits the batch, then halves the tile, and carries on.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfigure.batch import BatchReport, Job, run_batch
from transfigure.checkpoint import ModelFileError, ModelInfo, load_model
from transfigure.cyclegan import networks as _networks  # noqa: F401  (registers the model kind)
from transfigure.cyclegan.tiling import (
    MULTIPLE,
    crop_to,
    pad_to_multiple,
    shared_norm_statistics,
    tiled_apply,
)
from transfigure.events import Event
from transfigure.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    ImageError,
    load_image,
)
from transfigure.runtime import autocast, inference_copy, module_dtype

__all__ = [
    "DIRECTIONS",
    "TranslateConfig",
    "Translator",
    "auto_tile",
    "load_translator",
    "output_path",
    "resize_short_side",
    "translate_files",
    "translate_tensor",
]

DIRECTIONS = ("a2b", "b2a")
MODEL_KINDS = ("cyclegan-generator",)
CPU_TILE = 512
MPS_TILE = 1024
MIN_TILE, MAX_TILE = 256, 4096
#: Smallest side given to a generator (its 1/4-scale features need 2 px for reflection padding).
MIN_SIDE = 16


@dataclass
class TranslateConfig:
    """Options of a translation job; the CLI takes its defaults from here."""

    batch_size: int | None = field(
        default=None,
        metadata={
            "help": "Images of one size per forward pass. Default: 1 on the CPU (larger batches "
            "only add memory traffic there), 4 on MPS, 16 on CUDA."
        },
    )
    tile: int | None = field(
        default=None,
        metadata={
            "help": "Tile side in pixels for large images (multiple of 4, >= 64; 0 = never). "
            "Default: from free memory on CUDA, 1024 on MPS, 512 on the CPU."
        },
    )
    overlap: int | None = field(
        default=None,
        metadata={"help": "Overlap between tiles (multiple of 4; default min(128, tile/4))."},
    )
    size: int | None = field(
        default=None,
        metadata={"help": "Resize so that the shorter side is this many pixels first."},
    )
    format: str | None = field(
        default=None, metadata={"help": "Output extension (jpg, png, webp...); default: keep."}
    )
    overwrite: bool = field(default=False, metadata={"help": "Replace existing outputs."})
    workers: int = field(default=2, metadata={"help": "Decoding threads."})
    quality: int = field(default=95, metadata={"help": "JPEG / WebP quality."})


# --------------------------------------------------------------------------------------------
# the network side


def _round_down(n: float, multiple: int) -> int:
    return int(n // multiple) * multiple


def model_channels(net: nn.Module) -> tuple[int, int]:
    """``(input, output)`` channels of an image-to-image network: first and last convolution."""
    convs = [m for m in net.modules() if isinstance(m, nn.modules.conv._ConvNd)]
    if not convs:
        raise ValueError("the network has no convolution; cannot tell its channel counts")
    first, last = convs[0], convs[-1]
    out_c = last.out_channels
    return first.in_channels, out_c


def model_multiple(net: nn.Module, info: ModelInfo | None = None) -> int:
    """Side multiple the network needs: 4 for ResNet generators, 2**num_downs for U-Nets."""
    num_downs = getattr(net, "num_downs", None)
    if isinstance(num_downs, int):
        return 2**num_downs
    if info is not None:
        net_g = str(info.config.get("netG", ""))
        if net_g == "unet_128":
            return 128
        if net_g == "unet_256":
            return 256
    return MULTIPLE


def _probe_bytes_per_pixel(
    net: nn.Module, device: torch.device, precision: str, in_channels: int, multiple: int
) -> float:
    side = max(256, multiple)
    x = torch.zeros(1, in_channels, side, side, device=device)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    with torch.no_grad(), autocast(device, precision):
        net(x)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    return max(float(peak), 1.0) / (side * side)


def auto_tile(
    net: nn.Module,
    device: torch.device,
    *,
    precision: str = "fp32",
    in_channels: int | None = None,
    multiple: int = MULTIPLE,
) -> int:
    """Default tile side for ``net`` on ``device`` (see the module docstring for the formula)."""
    if device.type == "cuda":
        if in_channels is None:
            in_channels = model_channels(net)[0]
        bpp = _probe_bytes_per_pixel(net, device, precision, in_channels, multiple)
        free, _total = torch.cuda.mem_get_info(device)
        tile = _round_down(math.sqrt(0.5 * free / bpp), 64)
        tile = min(max(tile, MIN_TILE), MAX_TILE)
    elif device.type == "mps":
        tile = MPS_TILE
    else:
        tile = CPU_TILE
    return max(_round_down(tile, multiple), multiple)


def default_batch_size(device: torch.device) -> int:
    """Images per forward pass when none is asked for (see :class:`TranslateConfig`).

    On the CPU a batch runs no faster per image than one image (the convolutions already fill
    the cores), while its 4× larger activations cost page faults and a slow first pass: measured
    with a ResNet-9 generator at 256², batches of 4 were 10-25 % slower per image than 1.
    """
    return {"cuda": 16, "mps": 4}.get(device.type, 1)


def default_overlap(tile: int) -> int:
    """``min(128, tile // 4)`` rounded down to a multiple of 4."""
    return _round_down(min(128, tile // 4), MULTIPLE)


def _thumbnail(x: Tensor, max_pixels: int, multiple: int) -> Tensor:
    """``x`` (1, C, H, W) scaled down to at most ``max_pixels``, sides multiples of ``multiple``."""
    h, w = x.shape[-2:]
    scale = min(1.0, math.sqrt(max_pixels / (h * w)))
    th = max(multiple, _round_down(h * scale, multiple))
    tw = max(multiple, _round_down(w * scale, multiple))
    if (th, tw) == (h, w):
        return x
    return F.interpolate(x.float(), size=(th, tw), mode="bilinear", antialias=True).to(x.dtype)


def translate_tensor(
    net: nn.Module,
    x: Tensor,
    *,
    tile: int | None = None,
    overlap: int | None = None,
    precision: str = "fp32",
    multiple: int = MULTIPLE,
    tile_batch: int = 1,
    callback: Callable[[Event], None] | None = None,
) -> Tensor:
    """Translate a batch of images of any size; the output has the input's size.

    Args:
        net: the generator, on ``x``'s device, in eval mode.
        x: ``(B, C, H, W)`` in [-1, 1].
        tile: images with more than ``tile²`` pixels (after padding) are translated in
            ``tile × tile`` tiles (a multiple of ``multiple``); ``None`` or 0 never tiles.
        overlap: tile overlap (multiple of 4, at most ``tile // 2``); default
            :func:`default_overlap`.
        precision: ``fp32``, ``bf16`` or ``fp16`` (autocast).
        multiple: the network's side multiple (padding to it, tile grid).
        tile_batch: tiles per forward pass.
        callback: receives an event per forward pass over tiles (task ``"tiles"``, unit
            ``"tile"``), so that a single large image shows progress.

    Returns:
        ``(B, C_out, H, W)`` float32 in [-1, 1] on ``x``'s device.

    With tiles, every instance norm uses statistics measured on a thumbnail of the whole image
    (Thumbnail Instance Normalization, Chen et al., AAAI 2022), so the tiles agree with each
    other; the result is close to, not identical with, translating the image in one piece.
    """
    if x.ndim != 4:
        raise ValueError(f"expected (B, C, H, W), got shape {tuple(x.shape)}")
    device = x.device
    channels_last = device.type == "cuda"
    padded, size = pad_to_multiple(x, multiple, min_size=max(MIN_SIDE, multiple))
    hp, wp = padded.shape[-2:]
    # A network already lowered (runtime.inference_copy) takes its own dtype, not autocast.
    dtype = module_dtype(net)
    if dtype != torch.float32:
        precision = "fp32"

    def run(t: Tensor) -> Tensor:
        if channels_last:
            t = t.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            return net(t.to(dtype)).float()

    with torch.no_grad():
        if not tile or hp * wp <= tile * tile:
            return crop_to(run(padded), size).contiguous()
        if tile % multiple:
            raise ValueError(f"tile ({tile}) must be a multiple of {multiple}")
        ov = default_overlap(tile) if overlap is None else overlap
        outs = []
        for i in range(padded.shape[0]):
            xi = padded[i : i + 1]
            ref = _thumbnail(xi, tile * tile, multiple).to(dtype)
            if channels_last:
                ref = ref.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision), shared_norm_statistics(net, ref):
                outs.append(
                    tiled_apply(
                        run,
                        xi,
                        tile=tile,
                        overlap=ov,
                        batch_size=tile_batch,
                        callback=callback,
                        task="tiles",
                    )
                )
        return crop_to(torch.cat(outs), size).contiguous()


# --------------------------------------------------------------------------------------------
# model resolution


def _has_generators(folder: Path) -> bool:
    return any(folder.rglob("generator_*.safetensors"))


def _run_folder_model(folder: Path, direction: str) -> Path:
    name = f"generator_{direction}.safetensors"
    for candidate in (folder / name, folder / "models" / name, folder / "export" / name):
        if candidate.is_file():
            return candidate
    found = sorted(p.relative_to(folder) for p in folder.rglob("generator_*.safetensors"))
    if len(found) == 1 and found[0].name == name:
        return folder / found[0]
    listing = ", ".join(str(p) for p in found[:5]) or "no generator_*.safetensors"
    raise ModelFileError(
        f"{folder}: no {name} in this run folder ({listing}); is training finished, and is "
        f"--direction right?"
    )


def load_translator(
    model: str | os.PathLike[str],
    *,
    direction: str | None = None,
    device: torch.device | str = "cpu",
    callback: Callable[[Event], None] | None = None,
) -> tuple[nn.Module, ModelInfo]:
    """Load a generator for translation from whatever the user named.

    Args:
        model: a ``.safetensors`` model file, a training run folder (``generator_a2b`` /
            ``generator_b2a.safetensors`` inside), a reference CycleGAN ``.pth`` (converted in
            memory), or the name of a pretrained model (:data:`transfigure.cyclegan.zoo.PRETRAINED`,
            downloaded and converted into the cache on first use).
        direction: ``a2b`` / ``b2a``; picks the generator of a run folder (default ``a2b``). For
            a model file it must agree with the direction recorded in the file, if any.
        device: where the network goes (channels-last on CUDA).
        callback: download progress for pretrained models.

    Returns:
        ``(network in eval mode, info)``.

    Raises:
        ModelFileError: unusable file, wrong kind, missing generator in a run folder, or a
            direction that contradicts the file.
        KeyError: not a path and not a pretrained model name (the message lists the names).
    """
    from transfigure.cyclegan import zoo

    if direction is not None and direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    device = torch.device(device)
    path = Path(model)
    if path.is_dir() and not (str(model) in zoo.PRETRAINED and not _has_generators(path)):
        path = _run_folder_model(path, direction or "a2b")
    elif not path.is_file():
        # Not a file, and not a run folder (a dataset folder called horse2zebra, say): a name.
        name = str(model)
        if name not in zoo.PRETRAINED:
            raise KeyError(
                f"{name}: no such model file or run folder, and not a pretrained model: "
                + zoo.unknown_name_message(name)
            )
        path = zoo.ensure_pretrained(name, callback=callback)
    if path.suffix.lower() in (".pth", ".pt"):
        net, config = zoo.load_official(path, device="cpu")
        info = ModelInfo(
            path=path,
            kind="cyclegan-generator",
            config=dataclasses.asdict(config),
            version="reference",
            extra={"name": path.stem, **({"direction": direction} if direction else {})},
        )
    else:
        net, info = load_model(path, kind=MODEL_KINDS, device="cpu")
        recorded = info.extra.get("direction")
        if direction is not None and recorded is not None and recorded != direction:
            raise ModelFileError(
                f"{path}: this generator translates {recorded}, not {direction} (for a run "
                "folder, --direction picks the file; a model file has one direction)"
            )
    net = net.to(device).eval()
    if device.type == "cuda":
        net = net.to(memory_format=torch.channels_last)
    return net, info


# --------------------------------------------------------------------------------------------
# files


def output_path(
    outdir: Path, relative: Path, fmt: str | None, *, default_suffix: str = ".png"
) -> Path:
    """Where the output of ``relative`` goes: mirrored under ``outdir``, extension ``fmt``.

    Without ``fmt`` the input's extension is kept, unless it is not a writable image extension
    (a file named directly with an odd suffix), which gets ``default_suffix``.
    """
    if fmt:
        suffix = "." + fmt.lower().lstrip(".")
    elif relative.suffix.lower() in IMAGE_EXTENSIONS:
        suffix = relative.suffix
    else:
        return outdir / relative.with_name(relative.name + default_suffix)
    return outdir / relative.with_suffix(suffix)


def resize_short_side(image: Tensor, size: int) -> Tensor:
    """Resize ``(C, H, W)`` so that ``min(H, W) == size``, aspect ratio kept (antialiased)."""
    h, w = image.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) == (h, w):
        return image
    return F.interpolate(
        image[None], size=(nh, nw), mode="bilinear", antialias=True, align_corners=False
    )[0].clamp(0, 1)


def _decode(path: Path, size: int | None, in_channels: int, max_pixels: int | None) -> Tensor:
    """Worker-thread side: file → (C, H, W) float32 in [-1, 1] for the network."""
    image = load_image(path, max_pixels=max_pixels)  # (3, H, W) in [0, 1], grayscale → RGB
    if size:
        image = resize_short_side(image, size)
    if in_channels == 1:
        # ITU-R 601 luma, as Pillow's RGB → L conversion.
        weights = torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1)
        image = (image * weights).sum(0, keepdim=True)
    elif in_channels != 3:
        raise ImageError(path, f"the model takes {in_channels}-channel images; cannot convert")
    return image.mul(2).sub(1)


class Translator:
    """A generator plus the settings to run it on images of any size.

    Holds the tile size, lowering it if CUDA runs out of memory, so that one bad image does not
    make every later one fail.
    """

    def __init__(
        self,
        net: nn.Module,
        *,
        precision: str = "fp32",
        tile: int | None = None,
        overlap: int | None = None,
        batch_size: int | None = None,
        multiple: int = MULTIPLE,
        callback: Callable[[Event], None] | None = None,
    ) -> None:
        self.device = next(iter(net.parameters())).device
        # bf16 on the CPU: weights stored in bf16 (faster than autocast; see inference_copy)
        self.net = inference_copy(net, precision)
        self.precision = precision
        self.multiple = multiple
        self.in_channels, self.out_channels = model_channels(net)
        if tile is None:
            tile = auto_tile(
                net,
                self.device,
                precision=precision,
                in_channels=self.in_channels,
                multiple=multiple,
            )
        if tile and (tile % multiple or tile < 2 * MULTIPLE):
            raise ValueError(f"tile must be 0 or a multiple of {multiple} >= 8, got {tile}")
        if overlap is not None and (overlap < 0 or overlap % MULTIPLE):
            raise ValueError(f"overlap must be a multiple of {MULTIPLE} >= 0, got {overlap}")
        if overlap is not None and tile and overlap > tile // 2:
            raise ValueError(f"overlap ({overlap}) must be at most half the tile ({tile})")
        self.tile = tile
        self.overlap = overlap
        if batch_size is None:
            batch_size = default_batch_size(self.device)
        self.batch_size = max(1, batch_size)
        self.callback = callback

    def batch_limit(self, h: int, w: int) -> int:
        """How many ``h × w`` images go into one forward pass (1 for tiled ones)."""
        hp = -(-max(h, MIN_SIDE) // self.multiple) * self.multiple
        wp = -(-max(w, MIN_SIDE) // self.multiple) * self.multiple
        if not self.tile:
            return self.batch_size
        return min(self.batch_size, max(1, (self.tile * self.tile) // (hp * wp)))

    def _overlap(self) -> int | None:
        if self.overlap is None or not self.tile:
            return self.overlap
        # The tile may have been lowered after an out-of-memory error.
        return min(self.overlap, _round_down(self.tile // 2, MULTIPLE))

    def __call__(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` in [-1, 1] on any device → output in [-1, 1] on the CPU."""
        x = x.to(self.device, non_blocking=True)
        try:
            y = translate_tensor(
                self.net,
                x,
                tile=self.tile,
                overlap=self._overlap(),
                precision=self.precision,
                multiple=self.multiple,
                tile_batch=1,  # tile² is the pixel budget of one pass
                callback=self.callback,
            )
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if x.shape[0] > 1:
                half = x.shape[0] // 2
                return torch.cat([self(x[:half]), self(x[half:])])
            side = self.tile or _round_down(math.sqrt(x.shape[-2] * x.shape[-1]), self.multiple)
            smaller = max(self.multiple, _round_down(side // 2, max(self.multiple, 64)))
            if smaller < 128 or smaller >= side:
                raise
            self.tile = smaller
            if self.callback is not None:
                self.callback(
                    Event(task="translate", message=f"out of GPU memory: tile lowered to {smaller}")
                )
            return self(x)
        return y.cpu()


def translate_files(
    translator: Translator,
    items: Sequence[tuple[Path, Path]],
    outdir: str | os.PathLike[str],
    *,
    size: int | None = None,
    fmt: str | None = None,
    overwrite: bool = False,
    workers: int = 2,
    quality: int = 95,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    callback: Callable[[Event], None] | None = None,
) -> BatchReport:
    """Translate image files into ``outdir``, mirroring their relative paths.

    The file handling (decoding ahead, skipping existing outputs, claims shared with other
    processes, atomic writes, per-file failures, Ctrl-C) is :func:`transfigure.batch.run_batch`;
    images of one size are batched up to the translator's limit.

    Args:
        translator: the network and its run settings.
        items: ``(file, relative path)`` pairs, as :func:`transfigure.images.walk_images` gives.
        outdir: output root; ``outdir / relative`` (extension changed by ``fmt``) is written.
        size: resize each input so its shorter side is ``size`` first (output at that size).
        fmt: output extension (``"png"``); ``None`` keeps each input's.
        overwrite: replace existing outputs (inputs are never replaced).
        workers: decoding threads.
        quality: JPEG / WebP quality.
        max_pixels: refuse inputs with more pixels (decompression-bomb guard).
        callback: receives a :class:`~transfigure.batch.BatchEvent` per finished image (task
            ``"translate"``, unit ``"img"``), tile progress of large images, and log messages.

    Returns:
        A :class:`~transfigure.batch.BatchReport`; failures are in it, not raised.
    """
    outdir = Path(outdir)
    in_channels = translator.in_channels

    def decode(path: Path) -> Tensor:
        return _decode(path, size, in_channels, max_pixels)

    def process(jobs: list[Job], images: list[Tensor]) -> Tensor:
        batch = torch.stack(images)  # (B, C, H, W), one size
        return translator(batch).add(1).div_(2).clamp_(0, 1)

    return run_batch(
        [(src, output_path(outdir, rel, fmt)) for src, rel in items],
        decode=decode,
        process=process,
        group=lambda image: tuple(image.shape),
        batch_limit=lambda image: translator.batch_limit(image.shape[-2], image.shape[-1]),
        overwrite=overwrite,
        workers=workers,
        quality=quality,
        task="translate",
        callback=callback,
    )
