"""Apply an image-to-image network to images of any size: padding and seamless tiling.

A fully convolutional generator accepts any size whose sides are a multiple of its total stride
(4 for the ResNet generator), and its memory grows with the pixel count. Large images are
therefore cut into overlapping tiles, each tile is translated, and the tiles are blended back with
a separable weight window:

    weight along one axis  =  0 over a `margin` at an interior tile edge (where the tile's own
                              border effects live), then a raised-cosine ramp up to 1,
                              then 1 in the middle, and the mirror image at the other end.

At an image border the window stays 1 (there is no neighbour). Neighbouring ramps are
complementary (sin^2 + cos^2), and the accumulated weights are divided out at the end, so the
blend is exact where the tiles agree and smooth where they do not.

Instance normalisation is the one non-local operation in a CycleGAN generator: each tile would
otherwise normalise with its own statistics and come out in a slightly different colour.
`shared_norm_statistics` fixes the statistics of every `InstanceNorm` layer to those measured on a
downscaled copy of the whole image, so that all tiles are normalised alike (no seams, no colour
patches). The downscaled statistics approximate the full-resolution ones; that approximation is
the price of translating an image that does not fit in memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfigure.events import Event

__all__ = [
    "MULTIPLE",
    "blend_window",
    "crop_to",
    "pad_to_multiple",
    "shared_norm_statistics",
    "tile_starts",
    "tiled_apply",
]

#: Sides of every tensor given to a generator are padded to a multiple of this (two stride-2
#: down-samplings in the ResNet generator; the U-Net needs more and is not tiled here).
MULTIPLE = 4


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def pad_to_multiple(
    x: Tensor, multiple: int = MULTIPLE, *, min_size: int = 16
) -> tuple[Tensor, tuple[int, int]]:
    """Pad the bottom and right of a batch so that both sides are multiples of ``multiple``.

    Reflection padding continues the image content without a hard edge. Sides shorter than
    ``min_size`` are padded up to it too (a ResNet generator needs at least 2×2 features at 1/4
    scale for its reflection padding); where reflection cannot reach that far (an image a few
    pixels wide), the padding repeats the reflection, then falls back to replication.

    Args:
        x: ``(B, C, H, W)`` tensor.
        multiple: both output sides are multiples of this.
        min_size: both output sides are at least this (rounded up to ``multiple``).

    Returns:
        The padded ``(B, C, H', W')`` tensor and the original ``(H, W)`` for :func:`crop_to`.
    """
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    target_h = _round_up(max(h, min_size), multiple)
    target_w = _round_up(max(w, min_size), multiple)
    while x.shape[-2] < target_h or x.shape[-1] < target_w:
        cur_h, cur_w = x.shape[-2:]
        # Reflection needs pad < size; grow by at most size - 1 per round.
        pad_h = min(target_h - cur_h, cur_h - 1)
        pad_w = min(target_w - cur_w, cur_w - 1)
        if (pad_h == 0 and cur_h < target_h) or (pad_w == 0 and cur_w < target_w):
            # A side of one pixel cannot be reflected: replicate it.
            x = F.pad(x, (0, target_w - cur_w, 0, target_h - cur_h), mode="replicate")
            break
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    return x, (h, w)


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Undo :func:`pad_to_multiple`: keep the top-left ``size = (H, W)`` of ``(..., H', W')``."""
    return x[..., : size[0], : size[1]]


def tile_starts(length: int, tile: int, overlap: int, multiple: int = MULTIPLE) -> list[int]:
    """Start offsets of tiles of ``tile`` pixels covering ``length`` with at least ``overlap``.

    Tiles are spread evenly, starts rounded to a multiple of ``multiple`` (so every tile sits on
    the same stride grid as the whole image) and the last tile ends exactly at ``length``.
    With ``tile`` and ``overlap`` multiples of ``multiple``, neighbours overlap by at least
    ``overlap`` pixels. ``length <= tile`` gives one tile starting at 0.

    >>> tile_starts(1000, 512, 128)
    [0, 244, 488]
    """
    if tile <= 0 or overlap < 0 or overlap >= tile:
        raise ValueError(f"need 0 <= overlap < tile, got tile={tile}, overlap={overlap}")
    if length <= tile:
        return [0]
    n = math.ceil((length - tile) / (tile - overlap)) + 1
    span = length - tile
    # round(i * span / (n - 1)) on the multiple-grid; rounding is monotone and consecutive
    # ideal starts are <= tile - overlap apart, so rounded ones are too (tile - overlap is a
    # multiple of `multiple`).
    starts = [multiple * round(i * span / ((n - 1) * multiple)) for i in range(n)]
    starts[-1] = span
    return starts


def _axis_window(
    length: int, overlap: int, ramp_start: bool, ramp_end: bool, device, dtype
) -> Tensor:
    """1-D window: zero margin + raised-cosine ramp at interior ends, 1 elsewhere."""
    w = torch.ones(length, device=device, dtype=dtype)
    if overlap == 0:
        return w
    margin = overlap // 4
    ramp = overlap - 2 * margin
    # Raised cosine sampled at pixel centres: ramp_up[k] + ramp_down[k] == 1 for a neighbour
    # whose ramp covers the same pixels in the other direction.
    k = torch.arange(ramp, device=device, dtype=torch.float64)
    up = (0.5 - 0.5 * torch.cos(math.pi * (k + 0.5) / ramp)).to(dtype)
    if ramp_start:
        w[:margin] = 0
        w[margin : margin + ramp] = up
    if ramp_end:
        w[length - margin :] = 0
        w[length - margin - ramp : length - margin] = up.flip(0)
    return w


def blend_window(
    tile_h: int,
    tile_w: int,
    overlap: int,
    *,
    top: bool = True,
    bottom: bool = True,
    left: bool = True,
    right: bool = True,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Separable ``(tile_h, tile_w)`` blending weights for one tile.

    Each flag says whether that edge is interior (a neighbouring tile overlaps it), in which case
    the weight falls to 0 over the edge's ``overlap // 4`` outermost pixels after a raised-cosine
    ramp over the next ``overlap - 2 * (overlap // 4)``; an edge on the image border keeps weight 1.
    """
    wy = _axis_window(tile_h, overlap, top, bottom, device, dtype)
    wx = _axis_window(tile_w, overlap, left, right, device, dtype)
    return wy[:, None] * wx[None, :]


def tiled_apply(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    *,
    tile: int,
    overlap: int,
    batch_size: int = 1,
    multiple: int = MULTIPLE,
    callback: Callable[[Event], None] | None = None,
    task: str = "tiles",
) -> Tensor:
    """Apply a size-preserving ``fn`` to ``x`` in overlapping tiles blended without seams.

    Args:
        fn: maps ``(N, C, th, tw)`` to ``(N, C', th, tw)`` (e.g. a generator); called with up to
            ``batch_size`` tiles at a time, all of one size.
        x: ``(B, C, H, W)``; ``H`` and ``W`` should be multiples of ``multiple`` (see
            :func:`pad_to_multiple`) so that every tile sits on the network's stride grid.
        tile: tile side in pixels, a multiple of ``multiple``.
        overlap: minimum overlap between neighbouring tiles, a multiple of ``multiple`` and at most
            ``tile // 2``. Border effects of ``fn`` reaching less than ``overlap // 4`` pixels into
            a tile are removed exactly.
        batch_size: tiles per call of ``fn``.
        multiple: stride grid of the tiles.
        callback: receives an :class:`~transfigure.events.Event` after each call of ``fn``
            (``task``, tiles completed of the total, unit ``"tile"``): progress within one
            large image.
        task: the label of those events.

    Returns:
        ``(B, C', H, W)`` float tensor on ``x``'s device (float32 unless ``fn`` returns float64).
    """
    if x.ndim != 4:
        raise ValueError(f"expected a (B, C, H, W) tensor, got shape {tuple(x.shape)}")
    if tile % multiple or overlap % multiple:
        raise ValueError(f"tile ({tile}) and overlap ({overlap}) must be multiples of {multiple}")
    if tile < 2 * multiple or overlap > tile // 2:
        raise ValueError(
            f"need tile >= {2 * multiple} and overlap <= tile // 2, got {tile} and {overlap}"
        )
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    b, _, h, w = x.shape
    ys = tile_starts(h, tile, overlap, multiple)
    xs = tile_starts(w, tile, overlap, multiple)
    th, tw = min(tile, h), min(tile, w)
    boxes = [(y0, x0) for y0 in ys for x0 in xs]

    out: Tensor | None = None
    weight = torch.zeros(1, 1, h, w, device=x.device, dtype=torch.float32)
    for i in range(0, len(boxes), batch_size):
        group = boxes[i : i + batch_size]
        # (len(group) * B, C, th, tw): tiles of every image in the batch, tile-major.
        patches = torch.cat([x[:, :, y0 : y0 + th, x0 : x0 + tw] for y0, x0 in group])
        y = fn(patches)
        if y.shape[-2:] != (th, tw):
            raise ValueError(
                f"fn changed the tile size from {(th, tw)} to {tuple(y.shape[-2:])}; tiling "
                "needs a size-preserving network"
            )
        if out is None:
            dtype = torch.float64 if y.dtype == torch.float64 else torch.float32
            out = torch.zeros(b, y.shape[1], h, w, device=x.device, dtype=dtype)
            weight = weight.to(dtype)
        y = y.to(out.dtype)
        for j, (y0, x0) in enumerate(group):
            win = blend_window(
                th,
                tw,
                overlap,
                top=y0 > 0,
                bottom=y0 + th < h,
                left=x0 > 0,
                right=x0 + tw < w,
                device=x.device,
                dtype=out.dtype,
            )
            out[:, :, y0 : y0 + th, x0 : x0 + tw] += y[j * b : (j + 1) * b] * win
            weight[:, :, y0 : y0 + th, x0 : x0 + tw] += win
        if callback is not None:
            done = i + len(group)
            callback(
                Event(task, completed=done, total=len(boxes), unit="tile", done=done == len(boxes))
            )
    assert out is not None  # at least one tile always exists
    return out / weight.clamp_min(1e-12)


# --------------------------------------------------------------------------- shared statistics


def _is_stat_free_instance_norm(m: nn.Module) -> bool:
    # Only layers that compute statistics from their input: an InstanceNorm with running stats
    # in eval mode already uses fixed statistics and is tile-safe as it is.
    return isinstance(m, nn.modules.instancenorm._InstanceNorm) and not (
        m.track_running_stats and not m.training
    )


@contextmanager
def shared_norm_statistics(net: nn.Module, reference: Tensor | None) -> Iterator[int]:
    """Fix every instance-norm layer of ``net`` to the statistics of ``reference``.

    Inside the context, ``net(reference)`` is run once (no grad) and each stat-free
    :class:`torch.nn.InstanceNorm2d` records its per-channel mean and variance; then every later
    call normalises with those recorded values instead of its input's own. On exit the layers are
    restored. With ``reference=None`` or no such layers it does nothing.

    Args:
        net: the network (not modified permanently).
        reference: ``(1, C, h, w)`` input whose statistics stand for the whole image — typically
            the image downscaled to fit in memory.

    Yields:
        The number of layers whose statistics are shared.
    """
    layers = [m for m in net.modules() if _is_stat_free_instance_norm(m)]
    if reference is None or not layers:
        yield 0
        return
    if reference.shape[0] != 1:
        raise ValueError(f"reference must be a single image, got batch {reference.shape[0]}")
    stats: dict[int, tuple[Tensor, Tensor]] = {}

    def make_forward(m: nn.modules.instancenorm._InstanceNorm, idx: int):
        def forward(inp: Tensor) -> Tensor:
            if idx not in stats:  # recording pass
                flat = inp.float().flatten(2)
                stats[idx] = (
                    flat.mean(-1)[..., None, None],
                    flat.var(-1, unbiased=False)[..., None, None],
                )
            mean, var = stats[idx]
            y = (inp.float() - mean) * torch.rsqrt(var + m.eps)
            if m.affine:
                y = y * m.weight[:, None, None] + m.bias[:, None, None]
            return y.to(inp.dtype)

        return forward

    for idx, m in enumerate(layers):
        m.forward = make_forward(m, idx)  # instance attribute shadows the class method
    try:
        with torch.no_grad():
            net(reference)
        yield len(layers)
    finally:
        for m in layers:
            del m.forward
