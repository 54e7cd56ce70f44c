"""Losses of optimisation-based style transfer: content, Gram style, total variation.

Normalisation, and how it departs from Gatys, Ecker & Bethge (2016). The paper writes every
term as a sum: content ``1/2 Σ (F - P)²``, Gram ``G_ij = Σ_k F_ik F_jk`` and per-layer style
``E_l = 1/(4 N_l² M_l²) Σ (G - A)²`` (N channels, M = H·W positions). Sums grow with the image,
so the paper's weights must be retuned for every size. Here every term is a mean:

- the Gram matrix is divided by ``C·H·W`` (the paper divides by nothing, then by ``2 N M``
  inside ``E_l``), so it does not change with the image size;
- content and style losses are mean squared errors (means over features / Gram entries, not
  sums), so their balance does not drift as the image grows;
- total variation is the mean of squared neighbour differences (the paper has none; this is
  the L2 form of Mahendran & Vedaldi), a per-pixel quantity, again independent of size.

departure: with ``normalize=True`` (the default) each layer's error is also divided by the mean
square of its target (a relative error, dimensionless). Without it, the layers' raw errors
differ by four orders of magnitude (with the original VGG19 relu4_1 makes ~97% of the style
loss and relu1_1 / relu5_1 next to nothing, which gives a noisy texture); and VGG19 weight
sets differ in activation scale (the Caffe model sees pixels in 0..255, torchvision's
retrained one pixels of unit standard deviation). Relative errors weigh every layer alike
and make one set of default weights hold for any image size and either weight source.

Every function is differentiable and follows its inputs' device and dtype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "blend_grams",
    "content_loss",
    "gram_matrix",
    "style_loss",
    "total_variation",
]


def gram_matrix(features: Tensor) -> Tensor:
    """Channel co-activation matrix, normalised by the number of feature values.

    Args:
        features: ``(B, C, H, W)`` activations.

    Returns:
        ``(B, C, C)``: ``G[b, i, j] = Σ_hw F[b, i, h, w] F[b, j, h, w] / (C·H·W)``.

    Example:
        >>> f = torch.ones(1, 2, 2, 2)
        >>> gram_matrix(f)
        tensor([[[0.5000, 0.5000],
                 [0.5000, 0.5000]]])
    """
    if features.ndim != 4:
        raise ValueError(f"expected (B, C, H, W) features, got shape {tuple(features.shape)}")
    b, c, h, w = features.shape
    flat = features.reshape(b, c, h * w)  # (B, C, M)
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)  # (B, C, C)


def _energy(target: Tensor) -> Tensor:
    # Mean square of a (constant) target; the floor keeps an all-zero target finite.
    return target.detach().pow(2).mean().clamp_min(1e-8)


def content_loss(features: Tensor, target: Tensor, *, normalize: bool = True) -> Tensor:
    """Mean squared feature error (the paper's ``1/2 Σ`` becomes a mean).

    Args:
        features: ``(B, C, H, W)`` activations of the image being optimised.
        target: activations of the content image, same shape.
        normalize: divide by ``mean(target²)`` (a relative error; see the module docstring).

    Returns:
        Scalar.
    """
    if features.shape != target.shape:
        raise ValueError(
            f"content features {tuple(features.shape)} and target {tuple(target.shape)} differ"
        )
    loss = F.mse_loss(features, target)
    return loss / _energy(target) if normalize else loss


def style_loss(
    features: Mapping[str, Tensor],
    target_grams: Mapping[str, Tensor],
    layer_weights: Mapping[str, float] | None = None,
    *,
    normalize: bool = True,
) -> Tensor:
    """Weighted sum over layers of the mean squared Gram error.

    Args:
        features: layer name → ``(B, C, H, W)`` activations of the image being optimised.
        target_grams: layer name → ``(C, C)`` or ``(B, C, C)`` target Gram matrix (see
            :func:`blend_grams`); its keys are the style layers.
        layer_weights: layer name → weight; missing layers weigh 1. ``None``: all 1.
        normalize: divide each layer's error by ``mean(A_l²)`` (see the module docstring).

    Returns:
        Scalar ``Σ_l w_l · mean((gram(F_l) - A_l)²) [/ mean(A_l²)]``.
    """
    if not target_grams:
        raise ValueError("style_loss needs at least one target layer")
    total: Tensor | None = None
    for name, target in target_grams.items():
        if name not in features:
            raise KeyError(f"no features for style layer {name!r}")
        gram = gram_matrix(features[name])
        weight = 1.0 if layer_weights is None else float(layer_weights.get(name, 1.0))
        target = target.to(gram.dtype).expand_as(gram)
        term = F.mse_loss(gram, target)
        if normalize:
            term = term / _energy(target)
        term = weight * term
        total = term if total is None else total + term
    assert total is not None
    return total


def blend_grams(
    grams: Sequence[Mapping[str, Tensor]], weights: Sequence[float] | None = None
) -> dict[str, Tensor]:
    """One style target from several style images: the weighted mean of their Gram matrices.

    Args:
        grams: per style image, layer name → ``(C, C)`` (or ``(1, C, C)``) Gram matrix.
        weights: blend weights, one per image (normalised to sum to 1). ``None``: equal.

    Returns:
        layer name → ``(C, C)`` blended Gram matrix.
    """
    if not grams:
        raise ValueError("blend_grams needs at least one style")
    if weights is None:
        weights = [1.0] * len(grams)
    if len(weights) != len(grams):
        raise ValueError(f"{len(weights)} blend weights for {len(grams)} style images")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"blend weights must be non-negative with a positive sum, got {weights}")
    total = float(sum(weights))
    out: dict[str, Tensor] = {}
    for layer in grams[0]:
        out[layer] = sum(
            (w / total) * g[layer].reshape(g[layer].shape[-2:])
            for g, w in zip(grams, weights, strict=True)
        )  # type: ignore[assignment]
    return out


def total_variation(image: Tensor) -> Tensor:
    """Mean squared difference between horizontally and vertically adjacent pixels.

    Args:
        image: ``(B, C, H, W)`` with ``H, W >= 2``.

    Returns:
        Scalar ``mean(Δx²) + mean(Δy²)``.
    """
    if image.ndim != 4 or image.shape[-1] < 2 or image.shape[-2] < 2:
        raise ValueError(f"expected (B, C, H>=2, W>=2), got shape {tuple(image.shape)}")
    dx = image[..., :, 1:] - image[..., :, :-1]
    dy = image[..., 1:, :] - image[..., :-1, :]
    return dx.pow(2).mean() + dy.pow(2).mean()
