"""Drawing images from a trained generator: seeded samples, label grids, latent walks and a
nearest-neighbour memorisation check.

Latent vectors are drawn on the CPU from a seeded ``torch.Generator``, one row at a time, so the
same seed gives the same latents on every device and the first ``n`` latents of a larger request
are the ``n`` latents of a smaller one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor, nn

from transfigure.runtime import autocast

__all__ = [
    "interpolate",
    "label_grid",
    "latents",
    "nearest_grid",
    "nearest_neighbours",
    "resolve_label",
    "sample_images",
    "slerp",
    "to_unit_range",
]


def _device_of(module: nn.Module) -> torch.device:
    for p in module.parameters():
        return p.device
    return torch.device("cpu")


def to_unit_range(images: Tensor) -> Tensor:
    """Map generator output from [-1, 1] to [0, 1] (for saving)."""
    return images.add(1.0).div(2.0).clamp(0.0, 1.0)


def latents(n: int, latent_dim: int, *, seed: int = 0) -> Tensor:
    """``n`` latent vectors ``z ~ N(0, I)``, ``(n, latent_dim)`` float32 on the CPU.

    Row ``i`` depends only on ``seed`` and ``i``: ``latents(8, d, seed=s)`` equals the first 8
    rows of ``latents(64, d, seed=s)``.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    gen = torch.Generator().manual_seed(seed)
    if n == 0:
        return torch.empty(0, latent_dim)
    return torch.cat([torch.randn(1, latent_dim, generator=gen) for _ in range(n)])


def _n_classes(g: nn.Module) -> int:
    return int(getattr(getattr(g, "config", None), "n_classes", 0))


@torch.no_grad()
def generate(
    g: nn.Module,
    z: Tensor,
    labels: Tensor | None = None,
    *,
    batch_size: int = 64,
    precision: str = "fp32",
) -> Tensor:
    """Run ``g`` on latents ``z`` (and labels) in batches; returns ``(N, C, S, S)`` in [-1, 1] on
    the CPU. ``g`` should be in eval mode (batch norm then uses its stored statistics, so each
    image depends only on its own latent). ``precision``: ``fp32``, ``bf16`` or ``fp16``
    autocast."""
    device = _device_of(g)
    out = []
    for start in range(0, z.shape[0], batch_size):
        zb = z[start : start + batch_size].to(device)
        lb = None if labels is None else labels[start : start + batch_size].to(device)
        with autocast(device, precision):
            y = g(zb, lb) if lb is not None else g(zb)
        out.append(y.float().cpu())
    if not out:
        cfg = g.config
        return torch.empty(0, cfg.channels, cfg.image_size, cfg.image_size)
    return torch.cat(out)


def sample_images(
    g: nn.Module,
    n: int,
    *,
    label: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    precision: str = "fp32",
) -> tuple[Tensor, Tensor | None]:
    """Draw ``n`` images from the seeded latents.

    Args:
        g: a generator in eval mode.
        n: number of images.
        label: class index for a conditional generator. ``None`` there gives labels cycling
            through the classes (``0, 1, …, K-1, 0, …``).
        seed: seed of the latents.
        batch_size: images per forward pass (does not change the result).
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast.

    Returns:
        ``(images, labels)``: ``(n, C, S, S)`` in [-1, 1] on the CPU, and the ``(n,)`` labels
        used (``None`` for an unconditional generator).
    """
    k = _n_classes(g)
    z = latents(n, g.config.latent_dim, seed=seed)
    labels = None
    if k:
        if label is None:
            labels = torch.arange(n) % k
        else:
            if not 0 <= label < k:
                raise ValueError(f"label must be in [0, {k - 1}], got {label}")
            labels = torch.full((n,), label, dtype=torch.int64)
    elif label is not None:
        raise ValueError("this generator is unconditional: it takes no label")
    return generate(g, z, labels, batch_size=batch_size, precision=precision), labels


def label_grid(
    g: nn.Module, columns: int, *, seed: int = 0, precision: str = "fp32"
) -> tuple[Tensor, Tensor]:
    """One row per class, the same ``columns`` latents in every row (a conditional generator).

    Returns:
        ``(images, labels)``: ``(K * columns, C, S, S)`` in [-1, 1] row by row, and the labels.
    """
    k = _n_classes(g)
    if not k:
        raise ValueError("label_grid needs a conditional generator")
    z = latents(columns, g.config.latent_dim, seed=seed).repeat(k, 1)  # (K·cols, d)
    labels = torch.arange(k).repeat_interleave(columns)
    return generate(g, z, labels, precision=precision), labels


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between latent vectors (White 2016), linear if they are parallel.

    Args:
        a, b: ``(d,)`` endpoints.
        t: ``(T,)`` positions in [0, 1].

    Returns:
        ``(T, d)``.
    """
    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.acos((a_n * b_n).sum().clamp(-1.0, 1.0))
    t = t[:, None]
    if omega.abs() < 1e-6:
        return (1.0 - t) * a + t * b
    so = torch.sin(omega)
    return (torch.sin((1.0 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


def interpolate(
    g: nn.Module,
    seed_a: int,
    seed_b: int,
    steps: int = 10,
    *,
    label: int | None = None,
    spherical: bool = True,
    precision: str = "fp32",
) -> Tensor:
    """A latent walk from the first latent of ``seed_a`` to the first latent of ``seed_b``.

    Args:
        g: a generator in eval mode.
        seed_a, seed_b: seeds of the two endpoints (``latents(1, d, seed=...)``).
        steps: images along the walk, endpoints included (>= 2).
        label: class for a conditional generator (default 0).
        spherical: slerp (keeps the latents on the Gaussian shell) or straight lines.
        precision: ``fp32``, ``bf16`` or ``fp16`` autocast.

    Returns:
        ``(steps, C, S, S)`` in [-1, 1].
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    d = g.config.latent_dim
    a, b = latents(1, d, seed=seed_a)[0], latents(1, d, seed=seed_b)[0]
    t = torch.linspace(0.0, 1.0, steps)
    z = slerp(a, b, t) if spherical else (1 - t[:, None]) * a + t[:, None] * b
    labels = None
    k = _n_classes(g)
    if k:
        label = 0 if label is None else label
        if not 0 <= label < k:
            raise ValueError(f"label must be in [0, {k - 1}], got {label}")
        labels = torch.full((steps,), label, dtype=torch.int64)
    elif label is not None:
        raise ValueError("this generator is unconditional: it takes no label")
    return generate(g, z, labels, precision=precision)


def nearest_neighbours(
    samples: Tensor, reference: Iterable[Tensor], k: int = 3
) -> tuple[Tensor, Tensor]:
    """For each sample, the ``k`` reference images nearest in mean absolute (L1) distance.

    A generator that memorised its training set produces samples at (near) zero distance from
    a training image.

    Args:
        samples: ``(N, C, S, S)``.
        reference: batches ``(M_i, C, S, S)`` of the same size and value range (streamed, so
            large datasets need not fit in memory).
        k: neighbours per sample.

    Returns:
        ``(distances, indices)``, both ``(N, k)``, sorted nearest first; indices count the
        reference images in the order streamed. Fewer than ``k`` columns if the reference has
        fewer images.
    """
    flat = samples.flatten(1).float()
    best_d = torch.empty(flat.shape[0], 0)
    best_i = torch.empty(flat.shape[0], 0, dtype=torch.int64)
    offset = 0
    for batch in reference:
        ref = batch.flatten(1).float().to(flat.device)
        if ref.shape[1] != flat.shape[1]:
            raise ValueError(
                f"reference images {tuple(batch.shape[1:])} do not match samples "
                f"{tuple(samples.shape[1:])}"
            )
        d = torch.cdist(flat, ref, p=1.0) / flat.shape[1]  # (N, M) mean |a - b|
        idx = torch.arange(offset, offset + ref.shape[0]).expand(flat.shape[0], -1)
        all_d, all_i = torch.cat([best_d, d.cpu()], 1), torch.cat([best_i, idx], 1)
        keep = min(k, all_d.shape[1])
        best_d, order = all_d.topk(keep, dim=1, largest=False, sorted=True)
        best_i = all_i.gather(1, order)
        offset += ref.shape[0]
    return best_d, best_i


def nearest_grid(samples: Tensor, neighbours: Sequence[Tensor]) -> Tensor:
    """Rows of ``sample, neighbour 1, …, neighbour k`` for a side-by-side memorisation view.

    Args:
        samples: ``(N, C, S, S)``.
        neighbours: ``N`` tensors ``(k, C, S, S)``.

    Returns:
        ``(N * (k + 1), C, S, S)``, to be laid out with ``nrow = k + 1``.
    """
    rows = [torch.cat([s[None], nb]) for s, nb in zip(samples, neighbours, strict=True)]
    return torch.cat(rows)


def resolve_label(label: str | int, classes: Sequence[str], n_classes: int) -> int:
    """A ``--label`` value (class name or index) as a class index.

    Raises:
        ValueError: unknown name or index out of range (the message lists the classes).
    """
    if isinstance(label, int) or str(label).lstrip("-").isdigit():
        index = int(label)
        if not 0 <= index < n_classes:
            raise ValueError(f"label index must be in [0, {n_classes - 1}], got {index}")
        return index
    if label in classes:
        return list(classes).index(label)
    known = ", ".join(classes) if classes else f"indices 0..{n_classes - 1}"
    raise ValueError(f"unknown label {label!r}; known labels: {known}")
