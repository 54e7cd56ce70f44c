"""Image decoding, encoding and folder walking.

Every image that enters transfigure goes through :func:`load_image` (or :func:`load_array` for
albumentations pipelines): EXIF orientation applied, any Pillow mode turned into RGB (alpha
composited on white, 16-bit scaled by 65535), a pixel limit checked from the header before any
pixel is decoded, and one error type, :class:`ImageError`, that names the file and the reason.

Every image that leaves goes through :func:`save_image`: format from the extension, written
atomically (temp file beside the target, then rename), never onto an existing file unless asked,
and never onto one of the input files.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from transfigure.fileio import atomic_path

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "READ_EXTENSIONS",
    "AnimationWarning",
    "ImageError",
    "list_images",
    "load_array",
    "load_image",
    "pil_to_tensor",
    "save_grid",
    "save_image",
    "tensor_to_pil",
    "walk_images",
]

PathLike = str | os.PathLike[str]

#: Extensions of the images transfigure reads and writes.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
)

#: Extensions of the images found in folders: GIF is read (its first frame), never written.
READ_EXTENSIONS: frozenset[str] = IMAGE_EXTENSIONS | {".gif"}

# Pillow's own hard limit (2 * Image.MAX_IMAGE_PIXELS with the stock setting).
DEFAULT_MAX_PIXELS = 178_956_970

# Pillow format names we decode. MPO is what many phone cameras write into a .jpg.
_READ_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF"})

_WRITE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}

# Modes each encoder is given as they are; anything else is converted to RGB (alpha on white).
_WRITE_MODES = {
    "JPEG": frozenset({"L", "RGB"}),
    "BMP": frozenset({"L", "RGB"}),
    "PNG": frozenset({"L", "LA", "RGB", "RGBA"}),
    "WEBP": frozenset({"RGB", "RGBA"}),
    "TIFF": frozenset({"L", "LA", "RGB", "RGBA"}),
}

_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})


class AnimationWarning(UserWarning):
    """An animated image (GIF, animated PNG or WebP) was read as its first frame only."""


_animation_reported = False
_animation_lock = threading.Lock()


def _report_animation(path: Path, n_frames: int) -> None:
    """Warn that only the first frame is used, for the first animation of the process only."""
    global _animation_reported
    with _animation_lock:
        if _animation_reported:
            return
        _animation_reported = True
    warnings.warn(
        AnimationWarning(
            f"{path}: an animation of {n_frames} frames; only its first frame is used "
            "(for this and any other animation)"
        ),
        stacklevel=4,
    )


class ImageError(Exception):
    """An image that cannot be read or written.

    Attributes:
        path: the file concerned.
        reason: what is wrong with it, in words.
    """

    def __init__(self, path: PathLike, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"

    def __reduce__(self):  # keeps the two-argument constructor picklable (DataLoader workers)
        return (type(self), (self.path, self.reason))


# ----------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------


def _open_decoded(path: Path, max_pixels: int | None) -> Image.Image:
    """Open, check, fully decode and orient ``path``; the returned image owns its pixels."""
    if path.is_dir():
        raise ImageError(path, "is a directory, not an image file")
    try:
        size_on_disk = path.stat().st_size
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except OSError as e:
        raise ImageError(path, f"cannot access file ({e.strerror or e})") from e
    if size_on_disk == 0:
        raise ImageError(path, "empty file (0 bytes)")

    try:
        with warnings.catch_warnings():
            # Our own pixel limit below replaces Pillow's warning; its hard error still applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                fmt = img.format
                if fmt not in _READ_FORMATS:
                    raise ImageError(
                        path,
                        f"unsupported image format {fmt} "
                        f"(supported: {', '.join(sorted(_READ_FORMATS - {'MPO'}))})",
                    )
                width, height = img.size
                if max_pixels is not None and width * height > max_pixels:
                    # Checked from the header, before any pixel is decoded.
                    raise ImageError(
                        path,
                        f"image is {width}x{height} = {width * height:,} pixels, over the limit "
                        f"of {max_pixels:,} pixels (raise max_pixels if the file is trusted)",
                    )
                # Force the full decode here so a truncated file fails now, not later. An
                # animation decodes its first frame.
                img.load()
                n_frames = getattr(img, "n_frames", 1)
                if n_frames > 1:
                    _report_animation(path, n_frames)
                try:
                    oriented = ImageOps.exif_transpose(img)
                except Exception:  # broken EXIF must not make the pixels unreadable
                    oriented = img.copy()
                if oriented is img:
                    oriented = img.copy()
                oriented.format = fmt
                return oriented
    except ImageError:
        raise
    except Image.DecompressionBombError as e:
        # Pillow's message names the size and its limit; say what ours was as well.
        raise ImageError(
            path, f"refused as a possible decompression bomb ({e}; max_pixels={max_pixels})"
        ) from e
    except FileNotFoundError:
        raise ImageError(path, "no such file") from None
    except UnidentifiedImageError:
        raise ImageError(path, "not an image file, or a format Pillow cannot identify") from None
    except IsADirectoryError:
        raise ImageError(path, "is a directory, not an image file") from None
    except PermissionError as e:
        raise ImageError(path, f"permission denied ({e.strerror or e})") from e
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        struct.error,
        IndexError,
        KeyError,
        TypeError,
    ) as e:
        # Pillow signals truncated or corrupt data with any of these (its plugins parse
        # untrusted headers with struct and indexing, so malformed files surface as these too).
        raise ImageError(path, f"truncated or corrupt image data ({e})") from e


def _has_alpha(img: Image.Image) -> bool:
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        return True
    return img.mode == "P" and img.palette is not None and img.palette.mode == "RGBA"


def _float_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow image → (H, W, 3) float32 RGB in [0, 1], alpha composited on white."""
    mode = img.mode
    alpha: np.ndarray | None = None
    if mode in _SIXTEEN_BIT_MODES:
        gray = np.asarray(img).astype(np.float32) / 65535.0
        rgb = np.repeat(gray[..., None], 3, axis=2)
    elif mode == "I":
        # 32-bit integer images come from 16-bit PNG/TIFF in practice: same 0..65535 scale.
        gray = np.clip(np.asarray(img).astype(np.float32) / 65535.0, 0.0, 1.0)
        rgb = np.repeat(gray[..., None], 3, axis=2)
    elif mode == "F":
        # Float images are taken to be in [0, 1]; out-of-range values (HDR) are clipped.
        gray = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0)
        gray = np.clip(gray, 0.0, 1.0)
        rgb = np.repeat(gray[..., None], 3, axis=2)
    elif mode == "L" and "transparency" not in img.info:
        gray = np.asarray(img, dtype=np.float32) / 255.0
        rgb = np.repeat(gray[..., None], 3, axis=2)
    elif mode == "RGB" and "transparency" not in img.info:
        rgb = np.asarray(img, dtype=np.float32) / 255.0
    elif _has_alpha(img):
        # P with tRNS, L/RGB with a transparent colour, LA, PA, premultiplied modes...
        rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
        rgb, alpha = rgba[..., :3], rgba[..., 3:]
    else:
        # 1, P, CMYK, YCbCr, LAB, HSV, RGBX: Pillow's own conversions are exact enough.
        rgb = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    if alpha is not None:
        rgb = rgb * alpha + (1.0 - alpha)  # over a white background
    return np.ascontiguousarray(rgb, dtype=np.float32)


def _uint8_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow image → (H, W, 3) uint8 RGB; the same pixels as :func:`_float_rgb` * 255."""
    if img.mode == "RGB" and "transparency" not in img.info:
        return np.array(img, dtype=np.uint8)  # the common case, without a float round trip
    if img.mode == "L" and "transparency" not in img.info:
        return np.repeat(np.asarray(img, dtype=np.uint8)[..., None], 3, axis=2)
    return np.round(_float_rgb(img) * 255.0).astype(np.uint8)


def load_image(path: PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> Tensor:
    """Read an image file as an RGB float tensor.

    JPEG, PNG, WebP, BMP, TIFF and GIF are accepted; an animation gives its first frame (the
    first animation of the process is reported with an :class:`AnimationWarning`). EXIF
    orientation is applied; grayscale, palette,
    CMYK, 16-bit and float images are converted to RGB; transparent pixels are composited on
    white.

    Args:
        path: the image file.
        max_pixels: refuse images with more pixels than this (width * height, read from the
            header before decoding), as a guard against decompression bombs. ``None`` disables
            this check (Pillow's own hard limit still applies).

    Returns:
        (3, H, W) float32 tensor in [0, 1].

    Raises:
        ImageError: the file is missing, empty, a folder, not an image, of an unsupported format,
            truncated or corrupt, or over the pixel limit. ``str(e)`` names the file.
    """
    path = Path(path)
    img = _open_decoded(path, max_pixels)
    try:
        return torch.from_numpy(_float_rgb(img)).permute(2, 0, 1).contiguous()
    except (OSError, ValueError) as e:
        raise ImageError(path, f"cannot convert {img.mode} image to RGB ({e})") from e


def load_array(path: PathLike, *, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as an RGB uint8 array (what albumentations pipelines consume).

    Same decoding and errors as :func:`load_image`.

    Returns:
        (H, W, 3) uint8 array.
    """
    path = Path(path)
    img = _open_decoded(path, max_pixels)
    try:
        return _uint8_rgb(img)
    except (OSError, ValueError) as e:
        raise ImageError(path, f"cannot convert {img.mode} image to RGB ({e})") from e


def pil_to_tensor(img: Image.Image) -> Tensor:
    """Convert a Pillow image of any mode to an RGB float tensor, as :func:`load_image` does.

    EXIF orientation is not applied (the image is already in memory; use
    ``PIL.ImageOps.exif_transpose`` first if it came from a file).

    Returns:
        (3, H, W) float32 tensor in [0, 1].
    """
    return torch.from_numpy(_float_rgb(img)).permute(2, 0, 1).contiguous()


def tensor_to_pil(t: Tensor) -> Image.Image:
    """Convert an image tensor in [0, 1] to a Pillow image.

    Args:
        t: (3, H, W) → RGB, (1, H, W) or (H, W) → L, (4, H, W) → RGBA. Floating point values
            are clamped to [0, 1] and rounded to 8 bits; a uint8 tensor is taken as it is. Any
            device and dtype.

    Raises:
        ValueError: wrong shape, or NaN / infinite values (a diverged model should not be saved
            as a quietly black picture).
    """
    if not isinstance(t, Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(t).__name__}")
    t = t.detach().cpu()
    if t.ndim == 2:
        t = t.unsqueeze(0)
    if t.ndim != 3 or t.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"expected an image tensor of shape (1|3|4, H, W) or (H, W), got {tuple(t.shape)}"
        )
    if t.dtype != torch.uint8:
        t = t.float()
        if not torch.isfinite(t).all():
            raise ValueError("image tensor contains NaN or infinite values")
        t = t.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    array = t.permute(1, 2, 0).contiguous().numpy()
    # uint8 (H, W) → L, (H, W, 3) → RGB, (H, W, 4) → RGBA.
    return Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)


# ----------------------------------------------------------------------------------------------
# Encoding
# ----------------------------------------------------------------------------------------------


def _as_pil(image: Tensor | Image.Image | np.ndarray) -> Image.Image:
    if isinstance(image, Image.Image):
        return image
    if isinstance(image, Tensor):
        return tensor_to_pil(image)
    if isinstance(image, np.ndarray):
        if image.dtype == np.uint8:
            if image.ndim == 3 and image.shape[2] == 1:
                image = image[..., 0]
            if image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4)):
                return Image.fromarray(np.ascontiguousarray(image))
            raise ValueError(f"expected a (H, W), (H, W, 3) or (H, W, 4) array, got {image.shape}")
        if np.issubdtype(image.dtype, np.floating) and image.ndim in (2, 3):
            t = torch.from_numpy(np.ascontiguousarray(image))
            return tensor_to_pil(t if t.ndim == 2 else t.permute(2, 0, 1))
        raise ValueError(f"unsupported array: dtype {image.dtype}, shape {image.shape}")
    raise TypeError(f"cannot save an object of type {type(image).__name__} as an image")


def _encodable(img: Image.Image, fmt: str) -> Image.Image:
    """Convert ``img`` to a mode the encoder of ``fmt`` takes; alpha is flattened onto white."""
    if img.mode in _WRITE_MODES[fmt]:
        return img
    if fmt in ("PNG", "TIFF") and img.mode in _SIXTEEN_BIT_MODES:
        return img  # keeps 16-bit data 16-bit
    if img.mode in ("1", "P") and fmt in ("PNG", "BMP", "TIFF") and not _has_alpha(img):
        return img
    if fmt == "WEBP" and img.mode in ("L", "LA"):
        return img.convert("RGBA" if img.mode == "LA" else "RGB")
    if _has_alpha(img):
        if fmt in ("PNG", "TIFF", "WEBP"):
            return img.convert("RGBA")
        return Image.fromarray(_uint8_rgb(img))  # RGB, composited on white
    if img.mode in ("I", "F") or img.mode in _SIXTEEN_BIT_MODES:
        return Image.fromarray(_uint8_rgb(img)[..., 0])  # L, scaled as load_image does
    return img.convert("RGB")


def _is_protected(target: Path, protect: Iterable[PathLike]) -> bool:
    """Whether writing ``target`` would replace one of the ``protect`` files.

    Compares file identity (device, inode), which catches every alias of a file: the same path
    spelt differently, ``..``, symbolic links and hard links. A target that does not exist yet
    cannot be an existing input file, so batch jobs pay for the comparison only when they
    overwrite.
    """
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return False
    except OSError:
        # Cannot inspect the target: fall back to comparing resolved paths.
        resolved = target.resolve()
        return any(Path(p).resolve() == resolved for p in protect)
    identity = (st.st_dev, st.st_ino)
    for p in protect:
        try:
            other = os.stat(p)
        except OSError:
            continue  # a protected path with no file behind it cannot be the existing target
        if (other.st_dev, other.st_ino) == identity:
            return True
    return False


def save_image(
    image: Tensor | Image.Image | np.ndarray,
    path: PathLike,
    *,
    overwrite: bool = False,
    protect: Iterable[PathLike] = (),
    quality: int = 95,
) -> Path:
    """Write an image atomically, in the format its extension names.

    Args:
        image: a (3, H, W) or (1, H, W) tensor in [0, 1] (a (4, H, W) one keeps its alpha where the
            format can), a Pillow image, or a uint8 (H, W[, C]) array.
        path: the destination; ``.jpg .jpeg .png .webp .bmp .tif .tiff``. Parent folders are
            created.
        overwrite: replace an existing file.
        protect: files that must never be written to, even with ``overwrite`` (the inputs of a
            batch job); compared by file identity, so no alias (``..``, a symbolic or hard
            link) gets through.
        quality: JPEG and WebP quality, 1-100.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        ImageError: unknown extension, ``path`` is a protected file or a folder, or the encoder or
            the file system failed (nothing is left behind; a previous file stays intact).
        FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    path = Path(path)
    fmt = _WRITE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImageError(
            path,
            f"unknown image extension {path.suffix or '(none)'!r} "
            f"(use one of {', '.join(sorted(_WRITE_FORMATS))})",
        )
    if _is_protected(path, protect):
        raise ImageError(path, "refusing to overwrite an input file")
    if path.is_dir():
        raise ImageError(path, "is a directory")
    if path.exists() and not overwrite:
        raise FileExistsError(
            errno.EEXIST, "file exists (pass overwrite=True to replace it)", str(path)
        )

    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    pil = _encodable(_as_pil(image), fmt)
    params: dict = {}
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = int(quality)
    try:
        with atomic_path(path) as tmp:
            pil.save(tmp, format=fmt, **params)
    except (OSError, ValueError) as e:
        raise ImageError(path, f"could not write {fmt} file ({e})") from e
    return path


def save_grid(
    images: Tensor | Sequence[Tensor],
    path: PathLike,
    *,
    nrow: int = 8,
    padding: int = 2,
    overwrite: bool = True,
) -> Path:
    """Save a batch of images as one grid picture (``torchvision.utils.make_grid``).

    Args:
        images: (N, C, H, W) tensor, C in {1, 3}, values in [0, 1]; or a list of (C, H, W).
        path: destination, as for :func:`save_image`.
        nrow: images per row.
        padding: pixels of black between images.
        overwrite: replace an existing file (the default: grids are rewritten every epoch).

    Returns:
        ``path`` as a ``Path``.
    """
    from torchvision.utils import make_grid

    if isinstance(images, Tensor):
        if images.ndim != 4:
            raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(images.shape)}")
        images = images.detach().float().cpu()
    else:
        images = [im.detach().float().cpu() for im in images]
    grid = make_grid(images, nrow=nrow, padding=padding)
    return save_image(grid, path, overwrite=overwrite)


# ----------------------------------------------------------------------------------------------
# Folder walking
# ----------------------------------------------------------------------------------------------


def _is_hidden(path: Path) -> bool:
    if path.name.startswith("."):
        return True
    if os.name != "nt":
        return False
    # Windows marks hidden files with an attribute rather than a dot.
    attrs = getattr(os.stat(path, follow_symlinks=False), "st_file_attributes", 0)
    return bool(attrs & 0x2)


def _walk_folder(
    root: Path,
    folder: Path,
    recursive: bool,
    out: list[tuple[Path, Path]],
    visited: set[Path],
) -> None:
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as e:
        raise ImageError(folder, f"cannot read folder ({e.strerror or e})") from e
    for entry in entries:
        try:
            if _is_hidden(entry):
                continue
            if entry.is_dir():
                # Symlinked folders are followed once each, so a link loop cannot recurse forever.
                real = entry.resolve()
                if recursive and real not in visited:
                    visited.add(real)
                    _walk_folder(root, entry, recursive, out, visited)
            elif entry.is_file() and entry.suffix.lower() in READ_EXTENSIONS:
                out.append((entry, entry.relative_to(root)))
        except OSError:
            continue  # vanished or unreadable entry: not an image we can use


def _as_inputs(inputs: PathLike | Iterable[PathLike]) -> list[Path]:
    if isinstance(inputs, str | os.PathLike):
        return [Path(inputs)]
    return [Path(p) for p in inputs]


def walk_images(
    inputs: PathLike | Iterable[PathLike], *, recursive: bool = False
) -> list[tuple[Path, Path]]:
    """Find image files among files and folders, with their paths relative to what was named.

    Folders contribute their image files (by extension, see :data:`READ_EXTENSIONS`) in sorted
    name order, skipping hidden files and hidden folders; with ``recursive`` sub-folders are
    walked too, depth-first in the same order (a symlinked folder is followed once). A file
    named directly is kept whatever its suffix. Inputs keep the given order; a file reached twice
    is listed once, at its first place.

    Args:
        inputs: one path or several.
        recursive: walk sub-folders.

    Returns:
        (file, relative) pairs: ``relative`` is the file's path under the folder it was found in
        (sub-folders preserved) or just its name for files named directly. Use it to mirror the
        inputs in an output folder.

    Raises:
        ImageError: an input does not exist, or a folder cannot be read.
    """
    found: list[tuple[Path, Path]] = []
    for item in _as_inputs(inputs):
        if item.is_dir():
            _walk_folder(item, item, recursive, found, {item.resolve()})
        elif item.is_file():
            found.append((item, Path(item.name)))
        elif item.exists():
            raise ImageError(item, "not a regular file or folder")
        else:
            raise ImageError(item, "no such file or folder")
    seen: set[Path] = set()
    unique: list[tuple[Path, Path]] = []
    for file, rel in found:
        key = file.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((file, rel))
    return unique


def list_images(inputs: PathLike | Iterable[PathLike], *, recursive: bool = False) -> list[Path]:
    """The image files among ``inputs`` (files and folders), as :func:`walk_images` finds them.

    Returns:
        Paths in a stable order: inputs in the given order, sorted by name within folders.

    Raises:
        ImageError: an input does not exist, or a folder cannot be read.
    """
    return [file for file, _ in walk_images(inputs, recursive=recursive)]
