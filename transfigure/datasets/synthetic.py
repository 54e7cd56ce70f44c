"""Procedurally generated image datasets for tests and the offline demo.

Everything here is a pure function of its arguments: the same ``seed`` gives byte-identical
images (one :class:`numpy.random.Generator` per call, no global random state). Across NumPy
builds, vectorised float32 ``sin``/``exp`` may differ in the last bit, which can move a rare
pixel by one level; within one installation the bytes are always the same.

Drawing is vectorised over the whole batch: 200 scenes of 64 px take about half a second.

Two families:

* :func:`shapes` — labelled shapes (circle, square, triangle, cross) at random positions,
  scales, rotations and colours on random backgrounds, for the GAN core (CGAN) and for
  classifiers that judge its samples. Colour, size and position carry no information about
  the label; only the outline does.
* :func:`seasons` — small photo-like landscapes (sky gradient, sun, clouds, rolling hills,
  trees) rendered as summer or winter, for CycleGAN. Both seasons come from the SAME layout
  generator: for a given ``seed`` the summer and winter batches show the same scenes, so the
  domains differ in appearance only, never in content distribution.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "SEASONS",
    "SHAPE_CLASSES",
    "seasons",
    "shapes",
    "write_seasons",
    "write_shapes",
]

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross")
_MIN_RADIUS_PX = 4.0  # the smallest shape "radius" at any size (see shapes)
SEASONS: tuple[str, ...] = ("summer", "winter")

_IMAGE_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg"}


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def _check_count(n: int, name: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {n!r}")
    return int(n)


def _check_size(size: int, minimum: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < minimum:
        raise ValueError(f"size must be an integer >= {minimum}, got {size!r}")
    return int(size)


def _coverage(sdf: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] from a signed distance in pixels (negative inside)."""
    return np.clip(0.5 - sdf, 0.0, 1.0)


def _over(canvas: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> None:
    """Alpha-composite ``colour`` over ``canvas`` in place.

    canvas (N, H, W, C); colour broadcastable to it; alpha (N, H, W) in [0, 1].
    """
    canvas += alpha[..., None] * (colour - canvas)


def _smooth_noise(rng: np.random.Generator, n: int, size: int, cells: int) -> np.ndarray:
    """Bilinearly interpolated value noise, (n, size, size) float32, roughly N(0, 1)."""
    grid = rng.standard_normal((n, cells + 1, cells + 1), dtype=np.float32)
    t = (np.arange(size, dtype=np.float32) + 0.5) / size * cells
    i0 = np.minimum(t.astype(np.int64), cells - 1)
    f = (t - i0).astype(np.float32)
    # interpolate rows, then columns: (n, size, cells+1) -> (n, size, size)
    rows = grid[:, i0, :] * (1 - f)[None, :, None] + grid[:, i0 + 1, :] * f[None, :, None]
    return rows[:, :, i0] * (1 - f)[None, None, :] + rows[:, :, i0 + 1] * f[None, None, :]


def _to_uint8(canvas: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def _save_png_or_jpeg(array: np.ndarray, path: Path, fmt: str) -> None:
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if fmt == "png":
        image.save(path, format="PNG")
    else:
        image.save(path, format="JPEG", quality=95)


def _image_format(fmt: str) -> str:
    key = fmt.lower().lstrip(".")
    if key not in _IMAGE_FORMATS:
        raise ValueError(f"format must be 'png' or 'jpg', got {fmt!r}")
    return "png" if key == "png" else "jpg"


# --------------------------------------------------------------------------------------
# shapes
# --------------------------------------------------------------------------------------


def shapes(
    n: int, *, size: int = 32, seed: int = 0, channels: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled shapes on random backgrounds.

    Each image holds one filled shape of class ``SHAPE_CLASSES[label]`` with a random centre,
    scale (a "radius" of 0.16–0.3 of the size, at least 4 px), small rotation (±22.5°) and
    colour, over a random background colour with a soft gradient and sensor-like noise. The
    shape colour differs from the background by 80–176 levels (cyclically) in every channel, so
    the shape is always visible, while colour, brightness, area and position are independent
    of the label. Labels are balanced (``n // 4`` or ``n // 4 + 1`` of each) in random order.

    Args:
        n: number of images.
        size: height and width in pixels (>= 8).
        seed: seed of the generator; the same seed gives identical bytes.
        channels: 3 (RGB) or 1 (grayscale).

    Returns:
        ``(images, labels)``: uint8 array (n, size, size, channels) in [0, 255] and int64
        array (n,) of indices into :data:`SHAPE_CLASSES`.
    """
    n = _check_count(n)
    size = _check_size(size, 8)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels!r}")
    rng = np.random.default_rng(seed)
    n_classes = len(SHAPE_CLASSES)
    labels = rng.permutation(np.arange(n) % n_classes).astype(np.int64)

    # Geometry, in pixels. The "radius" r is scaled per class below so that the classes
    # cover similar areas (circle ~3.1 r², square ~2.9 r², triangle ~2.2 r², cross ~2.2 r²).
    # r spans 0.16–0.3 of the size, but never less than 4 px (which binds below 25 px): a
    # circle of r = 2.6 px and a square of the same area differ in a few anti-aliased corner
    # pixels, which a classifier of crisp real images still tells apart but a 16-px conditional
    # GAN did not draw (label accuracy 0.47 → 0.79 with the floor; benchmarks/cgan_quality.py).
    r = rng.uniform(0.16, 0.3, n)
    low = min(_MIN_RADIUS_PX, 0.3 * size)
    if 0.16 * size < low:  # the same draw, mapped onto [low, 0.3 size]
        r = (low + (r - 0.16) / 0.14 * (0.3 * size - low)) / size
    r = r.astype(np.float32) * size
    extent = 1.3 * r  # farthest point of any class from its centre
    cx = rng.uniform(extent, size - extent).astype(np.float32)
    cy = rng.uniform(extent, size - extent).astype(np.float32)
    theta = rng.uniform(-math.pi / 8, math.pi / 8, n).astype(np.float32)

    background = rng.integers(0, 256, (n, channels)).astype(np.float32)
    offset = rng.integers(80, 177, (n, channels)).astype(np.float32)
    foreground = (background + offset) % 256
    grad_angle = rng.uniform(0, 2 * math.pi, n).astype(np.float32)
    grad_amp = rng.uniform(0, 30, n).astype(np.float32)
    noise = rng.normal(0.0, 5.0, (n, size, size, channels)).astype(np.float32)

    coords = np.arange(size, dtype=np.float32) + 0.5
    dx = coords[None, None, :] - cx[:, None, None]  # (n, 1, W)
    dy = coords[None, :, None] - cy[:, None, None]  # (n, H, 1)
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u = cos * dx + sin * dy  # (n, H, W), shape-aligned axes
    v = -sin * dx + cos * dy
    rr = r[:, None, None]

    sdf = np.empty((n, size, size), dtype=np.float32)
    for k, name in enumerate(SHAPE_CLASSES):
        sel = labels == k
        if not sel.any():
            continue
        uk, vk, rk = u[sel], v[sel], rr[sel]
        if name == "circle":
            d = np.sqrt(uk * uk + vk * vk) - rk
        elif name == "square":
            d = np.maximum(np.abs(uk), np.abs(vk)) - 0.85 * rk
        elif name == "triangle":
            # equilateral, apex up (v grows downwards); circumradius 1.3 r, inradius 0.65 r
            d = vk - 0.65 * rk
            for angle in (-math.pi / 6, math.pi + math.pi / 6):
                d = np.maximum(d, math.cos(angle) * uk + math.sin(angle) * vk - 0.65 * rk)
        else:  # cross: union of two bars, arms of length r, half-width 0.33 r
            au, av = np.abs(uk), np.abs(vk)
            bar_h = np.maximum(au - rk, av - 0.33 * rk)
            bar_v = np.maximum(au - 0.33 * rk, av - rk)
            d = np.minimum(bar_h, bar_v)
        sdf[sel] = d

    # background: a linear ramp in a random direction, plus the noise added at the end
    gx, gy = coords / size - 0.5, coords / size - 0.5
    ramp = (
        np.cos(grad_angle)[:, None, None] * gx[None, None, :]
        + np.sin(grad_angle)[:, None, None] * gy[None, :, None]
    )  # (n, H, W)
    canvas = np.broadcast_to(background[:, None, None, :], (n, size, size, channels)).copy()
    canvas += (ramp * grad_amp[:, None, None])[..., None]
    _over(canvas, foreground[:, None, None, :], _coverage(sdf))
    canvas += noise
    return _to_uint8(canvas), labels


def write_shapes(
    root: str | Path,
    n_per_class: int,
    *,
    size: int = 32,
    seed: int = 0,
    channels: int = 3,
) -> Path:
    """Write :func:`shapes` as class sub-folders of PNGs: ``root/<class>/00000.png``.

    Loads with :class:`~transfigure.datasets.LabelledFolderDataset`. Note that the dataset
    numbers classes in sorted folder order (circle, cross, square, triangle), not in
    :data:`SHAPE_CLASSES` order: map labels through its ``class_to_idx``.

    Args:
        root: output folder (created; existing files of the same names are replaced).
        n_per_class: images per class.
        size: image size in pixels.
        seed: generator seed.
        channels: 3 or 1.

    Returns:
        ``root`` as a Path.
    """
    n_per_class = _check_count(n_per_class, "n_per_class")
    root = Path(root)
    images, labels = shapes(
        n_per_class * len(SHAPE_CLASSES), size=size, seed=seed, channels=channels
    )
    for k, name in enumerate(SHAPE_CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images[labels == k]):
            _save_png_or_jpeg(image, folder / f"{i:05d}.png", "png")
    return root


# --------------------------------------------------------------------------------------
# seasons
# --------------------------------------------------------------------------------------

_N_HILLS = 3  # far, middle, near
_N_TREES = 6  # per layer that carries trees (middle and near)
_N_CLOUDS = 3
_N_PUFFS = 4  # blobs per cloud


@dataclass
class _Layout:
    """Scene geometry for a batch, shared by both seasons. Units: fractions of the size."""

    size: int
    sky_tone: np.ndarray  # (n,) brightness variation of the sky, about ±1
    sun: np.ndarray  # (n, 3) x, y, radius
    sun_visible: np.ndarray  # (n,) bool
    puffs: np.ndarray  # (n, clouds*puffs, 4) x, y, rx, ry
    puff_on: np.ndarray  # (n, clouds*puffs) bool
    hills: np.ndarray  # (n, layers, W) ground height profile (v of the ridge at each column)
    slopes: np.ndarray  # (n, layers, W) d(profile)/du
    trees: np.ndarray  # (n, 2, trees, 3) x, base v, height; layer 0 = middle, 1 = near
    tree_kind: np.ndarray  # (n, 2, trees) 0 deciduous, 1 conifer
    tree_on: np.ndarray  # (n, 2, trees) bool
    tree_phase: np.ndarray  # (n, 2, trees) phase of crown lobes / branches
    fine: np.ndarray  # (n, H, W) per-pixel noise
    coarse: np.ndarray  # (n, H, W) smooth noise


def _scene_layout(n: int, size: int, rng: np.random.Generator) -> _Layout:
    f32 = np.float32
    u = (np.arange(size, dtype=f32) + 0.5) / size

    sky_tone = rng.uniform(-1, 1, n).astype(f32)
    sun = np.stack(
        [rng.uniform(0.1, 0.9, n), rng.uniform(0.08, 0.3, n), rng.uniform(0.045, 0.075, n)], -1
    ).astype(f32)
    sun_visible = rng.random(n) < 0.75

    centres = np.stack(
        [rng.uniform(0.0, 1.0, (n, _N_CLOUDS)), rng.uniform(0.06, 0.3, (n, _N_CLOUDS))], -1
    )
    spread = rng.normal(0.0, 1.0, (n, _N_CLOUDS, _N_PUFFS, 2)) * np.array([0.07, 0.02])
    xy = centres[:, :, None, :] + spread
    radii = rng.uniform(0.04, 0.09, (n, _N_CLOUDS, _N_PUFFS, 1)) * np.array([1.6, 0.7])
    puffs = np.concatenate([xy, radii], -1).reshape(n, _N_CLOUDS * _N_PUFFS, 4).astype(f32)
    n_clouds = rng.integers(0, _N_CLOUDS + 1, n)
    puff_on = (np.arange(_N_CLOUDS)[None, :] < n_clouds[:, None]).repeat(_N_PUFFS, axis=1)

    # Rolling hills: each layer's ridge is a base height plus three sinusoids.
    base = np.stack(
        [rng.uniform(0.45, 0.55, n), rng.uniform(0.58, 0.68, n), rng.uniform(0.72, 0.82, n)], -1
    )  # (n, layers)
    amp = rng.uniform(0.01, 0.05, (n, _N_HILLS, 3)) * np.array([1.0, 0.6, 0.35])
    freq = rng.uniform(0.5, 1.2, (n, _N_HILLS, 3)) * np.array([1.0, 2.0, 4.0])
    phase = rng.uniform(0, 2 * np.pi, (n, _N_HILLS, 3))
    arg = 2 * np.pi * freq[..., None] * u + phase[..., None]  # (n, layers, 3, W)
    hills = (base[..., None] + (amp[..., None] * np.sin(arg)).sum(2)).astype(f32)
    slopes = (amp[..., None] * 2 * np.pi * freq[..., None] * np.cos(arg)).sum(2).astype(f32)

    # Trees stand on the middle (layer 1) and near (layer 2) hills.
    tree_x = rng.uniform(0.03, 0.97, (n, 2, _N_TREES))
    col = np.clip((tree_x * size).astype(np.int64), 0, size - 1)
    ridge = np.take_along_axis(hills[:, 1:, :], col, axis=2)  # (n, 2, trees)
    tree_base = ridge + rng.uniform(0.01, 0.04, (n, 2, _N_TREES)) * np.array([1.0, 2.0])[:, None]
    tree_h = rng.uniform(0.7, 1.3, (n, 2, _N_TREES)) * np.array([0.13, 0.26])[:, None]
    trees = np.stack([tree_x, tree_base, tree_h], -1).astype(f32)
    # Near trees are sorted by base so lower (nearer) ones are drawn last.
    order = np.argsort(trees[..., 1], axis=2)
    trees = np.take_along_axis(trees, order[..., None], axis=2)
    tree_kind = rng.integers(0, 2, (n, 2, _N_TREES))
    n_trees = np.stack([rng.integers(0, _N_TREES + 1, n), rng.integers(0, 4, n)], -1)
    tree_on = rng.permuted(np.arange(_N_TREES)[None, None, :] < n_trees[..., None], axis=2)
    tree_phase = rng.uniform(0, 2 * np.pi, (n, 2, _N_TREES)).astype(f32)

    fine = rng.standard_normal((n, size, size), dtype=f32)
    coarse = _smooth_noise(rng, n, size, max(2, size // 8))
    return _Layout(
        size,
        sky_tone,
        sun,
        sun_visible,
        puffs,
        puff_on,
        hills,
        slopes,
        trees,
        tree_kind,
        tree_on,
        tree_phase,
        fine,
        coarse,
    )


@dataclass(frozen=True)
class _Palette:
    """Season appearance. Colours are RGB in [0, 255]."""

    sky_top: tuple[float, float, float]
    sky_horizon: tuple[float, float, float]
    sun: tuple[float, float, float]
    sun_alpha: float
    glow: float
    cloud: tuple[float, float, float]
    cloud_shade: tuple[float, float, float]
    cloud_alpha: float
    hills: tuple[tuple[float, float, float], ...]  # far, middle, near
    hill_shadow: tuple[float, float, float]
    ground_texture: float
    trunk: tuple[float, float, float]
    crown: tuple[float, float, float]  # deciduous crown (leaves, or bare twigs)
    crown_light: tuple[float, float, float]  # its lit side (light leaves, or snow)
    conifer: tuple[float, float, float]
    conifer_snow: tuple[float, float, float]
    conifer_snow_fraction: float
    bare: bool  # winter crowns: twigs let the sky through, snow on the lit side
    haze: tuple[float, float, float]
    haze_alpha: float


_PALETTES = {
    "summer": _Palette(
        sky_top=(52, 110, 210),
        sky_horizon=(165, 205, 245),
        sun=(255, 246, 205),
        sun_alpha=1.0,
        glow=0.35,
        cloud=(252, 252, 255),
        cloud_shade=(200, 208, 222),
        cloud_alpha=0.92,
        # A sunlit meadow, with trees in much darker greens: as in winter, where the trees
        # stand dark against the snow, each tree can be told from the ground around it by its
        # colour, so a translator can see where the winter trees go. (When the crowns were the
        # grass's own greens, the summer → winter translations smeared them into the snow.)
        hills=((105, 150, 135), (130, 176, 74), (152, 194, 80)),
        hill_shadow=(105, 148, 62),
        ground_texture=14.0,
        trunk=(92, 62, 36),
        crown=(38, 92, 30),
        crown_light=(80, 134, 42),
        conifer=(20, 55, 42),
        conifer_snow=(20, 55, 42),
        conifer_snow_fraction=0.0,
        bare=False,
        haze=(200, 220, 240),
        haze_alpha=0.0,
    ),
    "winter": _Palette(
        sky_top=(118, 134, 160),
        sky_horizon=(198, 204, 215),
        sun=(235, 236, 228),
        sun_alpha=0.55,
        glow=0.15,
        cloud=(212, 216, 224),
        cloud_shade=(165, 172, 186),
        cloud_alpha=0.97,
        hills=((178, 188, 205), (222, 228, 238), (240, 243, 249)),
        hill_shadow=(165, 180, 208),
        ground_texture=4.0,
        trunk=(72, 62, 58),
        crown=(96, 84, 78),
        crown_light=(236, 240, 247),  # snow on the crowns
        conifer=(20, 55, 42),  # evergreen: the summer needles, under snow
        conifer_snow=(236, 240, 247),
        conifer_snow_fraction=0.45,
        bare=True,
        haze=(205, 210, 220),
        haze_alpha=0.12,
    ),
}


def _render(layout: _Layout, palette: _Palette) -> np.ndarray:
    f32 = np.float32
    size = layout.size
    n = layout.fine.shape[0]
    col = _col
    coords = (np.arange(size, dtype=f32) + 0.5) / size
    u = coords[None, None, :]  # (1, 1, W)
    v = coords[None, :, None]  # (1, H, 1)
    px = float(size)  # converts distances in size units to pixels (for anti-aliasing)

    # 1. sky: vertical gradient, darker at the top, varied per image
    t = np.clip(v / 0.6, 0, 1) ** 0.8  # (1, H, 1)
    tone = 1.0 + 0.08 * layout.sky_tone[:, None, None, None]
    sky = col(palette.sky_top) * (1 - t[..., None]) + col(palette.sky_horizon) * t[..., None]
    canvas = np.broadcast_to(sky * tone, (n, size, size, 3)).astype(f32)

    # 2. sun: a disc with a soft glow
    sx, sy, sr = (layout.sun[:, i, None, None] for i in range(3))
    dist = np.sqrt((u - sx) ** 2 + (v - sy) ** 2)
    vis = layout.sun_visible[:, None, None].astype(f32)
    glow = palette.glow * np.exp(-((dist / (3.0 * sr)) ** 2))
    disc = _coverage((dist - sr) * px) * palette.sun_alpha
    _over(canvas, col(palette.sun), (1 - (1 - glow) * (1 - disc)) * vis)  # glow, then disc

    # 3. clouds: sums of elliptical Gaussian puffs, shaded darker at the bottom
    p = layout.puffs[:, :, None, None, :]  # (n, P, 1, 1, 4)
    on = layout.puff_on[:, :, None, None]
    g = (
        np.exp(
            -(
                ((u[:, None] - p[..., 0]) / p[..., 2]) ** 2
                + ((v[:, None] - p[..., 1]) / p[..., 3]) ** 2
            )
        )
        * on
    )  # (n, P, H, W)
    density = g.sum(1)
    cloud_alpha = np.clip(density * 1.6 - 0.25, 0, 1) * palette.cloud_alpha
    # shade the underside of each puff, weighted by how much that puff contributes
    below = (g * np.clip((v[:, None] - p[..., 1]) / p[..., 3], 0, 1)).sum(1)
    shade = (0.6 * below / (density + 1e-3))[..., None]
    cloud = _col(palette.cloud) * (1 - shade) + _col(palette.cloud_shade) * shade
    _over(canvas, cloud, cloud_alpha)

    # 4. hills, far to near; the middle and near hills each get their trees after them
    for layer in range(_N_HILLS):
        ridge = layout.hills[:, layer, None, :]  # (n, 1, W)
        slope = layout.slopes[:, layer, None, :]
        alpha = _coverage((ridge - v) * px)
        # light from the upper left: slopes that fall to the right are in shadow
        light = np.clip(0.5 + 1.5 * slope, 0, 1)  # (n, 1, W) 0 = lit, 1 = shadow
        depth = np.clip((v - ridge) / 0.25, 0, 1)  # darker/greener further down the slope
        mix = (0.45 * light + 0.25 * depth)[..., None]
        ground = col(palette.hills[layer]) * (1 - mix) + col(palette.hill_shadow) * mix
        texture = palette.ground_texture * (0.6 * layout.coarse + 0.4 * layout.fine)
        ground = ground + texture[..., None] * (0.4 + 0.3 * layer)
        _over(canvas, ground, alpha)
        if layer >= 1:
            _draw_trees(canvas, layout, palette, layer - 1, u, v, px)

    # 5. atmosphere and sensor noise
    if palette.haze_alpha > 0:
        _over(canvas, col(palette.haze), np.full((n, size, size), palette.haze_alpha, f32))
    canvas += 2.0 * layout.fine[..., None]
    return _to_uint8(canvas)


def _draw_trees(
    canvas: np.ndarray,
    layout: _Layout,
    palette: _Palette,
    group: int,
    u: np.ndarray,
    v: np.ndarray,
    px: float,
) -> None:
    """Draw the trees of ``group`` (0 middle hill, 1 near hill), back to front.

    Each tree is drawn only on the images that carry it, so the cost follows the number of
    trees actually drawn rather than the batch size times the maximum.
    """
    for k in range(_N_TREES):
        for kind in (0, 1):
            on = layout.tree_on[:, group, k] & (layout.tree_kind[:, group, k] == kind)
            idx = np.nonzero(on)[0]
            if idx.size == 0:
                continue
            x, base, h = (layout.trees[idx, group, k, i, None, None] for i in range(3))
            fine = layout.fine[idx]
            sub = canvas[idx]
            if kind == 0:
                phase = layout.tree_phase[idx, group, k, None, None]
                _deciduous(sub, palette, u, v, x, base, h, phase, fine, px)
            else:
                _conifer(sub, palette, u, v, x, base, h, fine, px)
            canvas[idx] = sub


def _col(c: tuple[float, float, float]) -> np.ndarray:
    return np.asarray(c, dtype=np.float32)


def _deciduous(sub, palette, u, v, x, base, h, phase, fine, px) -> None:
    # trunk: a thin rectangle from the base up to 60 % of the height
    trunk = np.maximum(
        np.abs(u - x) - 0.04 * h - 0.5 / px, np.maximum(base - 0.6 * h - v, v - base)
    )
    _over(sub, _col(palette.trunk), _coverage(trunk * px))
    # crown: a lobed ellipse around the upper part of the tree
    ru, rv = 0.3 * h, 0.34 * h
    eu, ev = (u - x) / ru, (v - (base - 0.68 * h)) / rv
    lobes = 1.0 + 0.1 * np.sin(5 * np.arctan2(ev, eu) + phase)
    crown = _coverage((np.sqrt(eu * eu + ev * ev) - lobes) * np.minimum(ru, rv) * px)
    # Lighter towards the upper left. In summer: leaves, light green where lit. In winter the
    # crown keeps its outline (a bare crown seen from afar is a grey-brown haze of twigs) and
    # carries snow where the leaves caught the light, so the seasons differ in appearance only.
    lit = np.clip(0.5 - 0.5 * (eu + ev) / 1.4, 0, 1)[..., None]
    if palette.bare:
        lit = np.clip((lit - 0.45) * 4.0, 0, 1)  # a crisp cap of snow on the lit side
    leaves = _col(palette.crown) * (1 - lit) + _col(palette.crown_light) * lit
    # the bare twigs let a little of the sky through
    _over(sub, leaves + 14.0 * fine[..., None], crown * (0.85 if palette.bare else 1.0))


def _conifer(sub, palette, u, v, x, base, h, fine, px) -> None:
    du = np.abs(u - x)
    trunk = np.maximum(du - 0.04 * h - 0.5 / px, np.maximum(base - 0.3 * h - v, v - base))
    _over(sub, _col(palette.trunk), _coverage(trunk * px))
    # a tiered cone; in winter the upper part of each tier carries snow
    top, bottom = base - 1.05 * h, base - 0.15 * h
    along = np.clip((v - top) / (bottom - top), 0, 1)
    tier = (along * 3.0) % 1.0  # three tiers, 0 at each tier's top
    half = 0.24 * h * along * (0.75 + 0.25 * tier)
    cone = _coverage(np.maximum(du - half, np.maximum(top - v, v - bottom)) * px)
    snow = (tier < palette.conifer_snow_fraction)[..., None]
    needles = np.where(snow, _col(palette.conifer_snow), _col(palette.conifer))
    _over(sub, needles + 8.0 * fine[..., None], cone)


def seasons(n: int, *, season: str = "summer", size: int = 64, seed: int = 0) -> np.ndarray:
    """Photo-like landscapes in summer or winter.

    Each scene has a sky gradient, an optional sun with glow, up to three clouds, three layers
    of rolling hills lit from the upper left, and up to six trees on the middle hill and three
    on the near one (round deciduous crowns or tiered conifers). Summer: blue sky, white
    clouds, a sunlit meadow, leafy crowns and dark conifers that stand out from it. Winter:
    grey-blue overcast sky, pale sun, snow-white ground with blue shadows, bare crowns (same
    outlines) capped with snow, the same conifers under snow, light haze.

    The layout (positions, sizes, hill profiles, noise) depends only on ``seed`` and ``n``,
    not on ``season``: ``seasons(n, season="summer", seed=s)`` and ``season="winter"`` show
    the same scenes, which makes aligned ground truth for scoring a translation.

    Args:
        n: number of images.
        season: "summer" or "winter".
        size: height and width in pixels (>= 16).
        seed: generator seed; the same seed gives identical bytes.

    Returns:
        uint8 array (n, size, size, 3), RGB in [0, 255].
    """
    n = _check_count(n)
    size = _check_size(size, 16)
    if season not in _PALETTES:
        raise ValueError(f"season must be one of {SEASONS}, got {season!r}")
    layout = _scene_layout(n, size, np.random.default_rng(seed))
    return _render(layout, _PALETTES[season])


def write_seasons(
    root: str | Path,
    n_train: int,
    n_test: int,
    *,
    size: int = 64,
    seed: int = 0,
    format: str = "png",
) -> Path:
    """Write a CycleGAN-style two-domain dataset: summer (A) and winter (B).

    Layout: ``root/trainA`` (summer), ``root/trainB`` (winter), ``root/testA``, ``root/testB``,
    files ``00000.png`` … The two training folders use independent layouts (truly
    unpaired). The test folders share one layout, so ``testA/i`` and ``testB/i`` show the
    same scene in both seasons: ground truth for scoring a translation.

    Args:
        root: output folder (created; files of the same names are replaced).
        n_train: images per training domain.
        n_test: images per test domain.
        size: image size in pixels.
        seed: generator seed.
        format: "png" or "jpg".

    Returns:
        ``root`` as a Path.
    """
    n_train = _check_count(n_train, "n_train")
    n_test = _check_count(n_test, "n_test")
    fmt = _image_format(format)
    suffix = _IMAGE_FORMATS[fmt]
    root = Path(root)
    # Independent streams per split, all derived from the one seed.
    seed_a, seed_b, seed_test = np.random.SeedSequence(seed).generate_state(3)
    splits = {
        "trainA": seasons(n_train, season="summer", size=size, seed=int(seed_a)),
        "trainB": seasons(n_train, season="winter", size=size, seed=int(seed_b)),
        "testA": seasons(n_test, season="summer", size=size, seed=int(seed_test)),
        "testB": seasons(n_test, season="winter", size=size, seed=int(seed_test)),
    }
    for name, images in splits.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(images):
            _save_png_or_jpeg(image, folder / f"{i:05d}{suffix}", fmt)
    return root
