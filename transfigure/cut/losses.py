"""The PatchNCE loss of contrastive unpaired translation (Park et al., ECCV 2020).

For every sampled location ``i`` the query ``q_i`` (a patch feature of the translation) must pick
its key ``k_i`` (the feature of the *same* location in the input) out of the keys of all other
sampled locations of the same image (the negatives):

    ℓ_i = -log  exp(q_i·k_i / τ) / (exp(q_i·k_i / τ) + Σ_{j≠i} exp(q_i·k_j / τ))

with τ = 0.07. As in the reference (``models/patchnce.py``), keys are detached, negatives come
from the same image only (``nce_includes_all_negatives_from_minibatch=False``), and the
self-similarity entries ``q_i·k_i`` among the negatives are replaced by -10 before dividing by τ
(so they contribute ``exp(-10/τ)`` ≈ 0) rather than removed.

:func:`patch_nce_loss` is the loss on projected features; :func:`patchnce` is the whole
multi-layer term of the generator objective, from images to a scalar.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from transfigure.cut.networks import PatchSampleMLP, encoder_features

__all__ = ["PatchNCELoss", "patch_nce_loss", "patchnce"]

# The reference's fill value for the self-similarities among the negatives.
_DIAGONAL_FILL = -10.0


def patch_nce_loss(query: Tensor, key: Tensor, temperature: float = 0.07) -> Tensor:
    """PatchNCE loss between query and key patch features, per patch.

    Args:
        query: (B, N, C) features of the translation, usually unit vectors.
        key: (B, N, C) features of the same N locations of the input; detached here.
        temperature: τ, the softmax temperature.

    Returns:
        (B, N) loss of every patch (take ``.mean()`` for the reference's reduction); dtype and
        device follow ``query``.

    Example:
        >>> q = torch.eye(2)[None]  # two orthogonal patches
        >>> patch_nce_loss(q, q, temperature=1.0).shape
        torch.Size([1, 2])
    """
    if query.ndim != 3 or key.shape != query.shape:
        raise ValueError(
            f"query and key must both be (B, N, C); got {tuple(query.shape)}, {tuple(key.shape)}"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    b, n, _ = query.shape
    key = key.detach()
    l_pos = (query * key).sum(dim=-1, keepdim=True)  # (B, N, 1)
    l_neg = torch.bmm(query, key.transpose(1, 2))  # (B, N, N): q_i · k_j
    diagonal = torch.eye(n, dtype=torch.bool, device=query.device)[None]
    l_neg = l_neg.masked_fill(diagonal, _DIAGONAL_FILL)
    logits = torch.cat([l_pos, l_neg], dim=-1) / temperature  # (B, N, 1 + N)
    # The positive is class 0: -log softmax(logits)[0].
    return torch.logsumexp(logits, dim=-1) - logits[..., 0]


class PatchNCELoss(nn.Module):
    """Module wrapper of :func:`patch_nce_loss`, reduced to the mean over patches."""

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        return patch_nce_loss(query, key, self.temperature).mean()


def patchnce(
    net_g: nn.Module,
    head: PatchSampleMLP,
    source: Tensor,
    translated: Tensor,
    *,
    layers: Sequence[int],
    num_patches: int = 256,
    temperature: float = 0.07,
    flipped: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """The multi-layer PatchNCE term: mean over ``layers`` of the mean per-patch loss.

    The keys are the generator's encoder features of ``source``, the queries those of
    ``translated`` (= G(source)); the patch locations are drawn once per layer, on the keys, and
    shared with the queries.

    Args:
        net_g: the generator (its ``model`` layer list provides the encoder features).
        head: the projection head (one MLP per layer).
        source: (B, C, H, W) input images in [-1, 1].
        translated: (B, C', H, W) their translations.
        layers: encoder layer indices (the paper's ``0, 4, 8, 12, 16``).
        num_patches: sampled locations per layer.
        temperature: τ.
        flipped: ``translated`` was computed from horizontally flipped inputs (FastCUT's
            flip-equivariance): its features are flipped back before comparison.
        generator: random source of the patch locations.

    Returns:
        A scalar; gradients reach ``net_g`` and ``head`` through the queries only (the keys are
        detached, as in the reference).
    """
    feat_q = encoder_features(net_g, translated, layers)
    if flipped:
        feat_q = [torch.flip(f, dims=[3]) for f in feat_q]
    feat_k = encoder_features(net_g, source, layers)
    key, ids = head(feat_k, num_patches, None, generator=generator)
    query, _ = head(feat_q, num_patches, ids)
    total = sum(patch_nce_loss(q, k, temperature).mean() for q, k in zip(query, key, strict=True))
    return total / len(layers)
