"""CUT's feature path: encoder features of the generator and the patch projection head.

Contrastive unpaired translation (Park et al., ECCV 2020) compares patches of the input and of
the translation in the generator's own encoder. :func:`encoder_features` runs the generator's
``model`` layer list up to the deepest requested index and returns the outputs of the requested
layers; for the CUT reference's ``resnet_9blocks`` (anti-aliased layout) the paper's layers
``0, 4, 8, 12, 16`` are the padded input, the two downsampling convolutions and the outputs of
residual blocks 1 and 5.

:class:`PatchSampleMLP` is the reference's ``PatchSampleF`` with ``netF=mlp_sample``: it samples
``num_patches`` spatial locations per layer, projects each feature vector with a two-layer MLP
(Linear, ReLU, Linear; ``nc`` = 256 units) and L2-normalises it. The same locations are reused
for the query (the translation) and the key (the input). Parameter names (``mlp_0.0.weight`` …)
follow the reference, so its ``net_F`` state dicts load.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CUT_NCE_LAYERS", "PatchSampleMLP", "encoder_features", "feature_channels"]

#: The CUT reference's ``--nce_layers`` for resnet generators.
CUT_NCE_LAYERS: tuple[int, ...] = (0, 4, 8, 12, 16)


def _layers_of(net: nn.Module) -> nn.Sequential:
    model = getattr(net, "model", None)
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"{type(net).__name__} has no sequential `model` layer list; PatchNCE features need "
            "a resnet generator"
        )
    return model


def encoder_features(net: nn.Module, x: Tensor, layers: Sequence[int]) -> list[Tensor]:
    """Outputs of the generator's layers ``layers`` (indices into ``net.model``) for input ``x``.

    Only the layers up to ``max(layers)`` run (the reference's ``encode_only``).

    Args:
        net: a generator whose ``model`` is an ``nn.Sequential`` (:class:`ResnetGenerator`).
        x: (B, C, H, W) input in [-1, 1].
        layers: increasing layer indices.

    Returns:
        One (B, C_l, H_l, W_l) tensor per requested layer, in order.
    """
    model = _layers_of(net)
    wanted = sorted(set(int(i) for i in layers))
    if not wanted or list(layers) != wanted:
        raise ValueError(f"layers must be increasing and distinct, got {list(layers)}")
    if wanted[0] < 0 or wanted[-1] >= len(model):
        raise ValueError(f"layers must lie in 0..{len(model) - 1}, got {list(layers)}")
    feats = []
    feat = x
    for index, layer in enumerate(model):
        feat = layer(feat)
        if index in wanted:
            feats.append(feat)
        if index == wanted[-1]:
            break
    return feats


def feature_channels(net: nn.Module, layers: Sequence[int], input_nc: int) -> list[int]:
    """Channel counts of :func:`encoder_features` for ``net`` (one dry run on a 16² input)."""
    param = next(net.parameters())
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            x = torch.zeros(1, input_nc, 16, 16, device=param.device, dtype=param.dtype)
            return [int(f.shape[1]) for f in encoder_features(net, x, layers)]
    finally:
        net.train(was_training)


class PatchSampleMLP(nn.Module):
    """Sample patch locations of feature maps, project them with an MLP, L2-normalise.

    Args:
        in_channels: channels of each feature map (from :func:`feature_channels`).
        nc: width of the projection (the reference's ``netF_nc``, 256).
        use_mlp: project with ``Linear(C, nc) → ReLU → Linear(nc, nc)`` (``mlp_sample``); without
            it the sampled features are only normalised (``sample``).
    """

    def __init__(self, in_channels: Sequence[int], nc: int = 256, use_mlp: bool = True) -> None:
        super().__init__()
        self.in_channels = [int(c) for c in in_channels]
        self.nc = nc
        self.use_mlp = use_mlp
        if use_mlp:
            for i, c in enumerate(self.in_channels):
                mlp = nn.Sequential(nn.Linear(c, nc), nn.ReLU(), nn.Linear(nc, nc))
                setattr(self, f"mlp_{i}", mlp)

    def forward(
        self,
        feats: Sequence[Tensor],
        num_patches: int = 256,
        patch_ids: Sequence[Tensor] | None = None,
        *,
        generator: torch.Generator | None = None,
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Project ``num_patches`` locations of every feature map.

        Args:
            feats: (B, C_l, H_l, W_l) feature maps, one per layer.
            num_patches: locations per layer (all of them when a map is smaller).
            patch_ids: flat location indices per layer to reuse (the key's, for the query);
                ``None`` draws them without replacement.
            generator: the random source of the draw (a CPU ``torch.Generator``).

        Returns:
            ``(projected, ids)``: per layer a (B, N_l, nc) tensor of unit vectors (the same N_l
            locations in every image of the batch) and the (N_l,) location indices used.
        """
        if len(feats) != len(self.in_channels):
            raise ValueError(f"expected {len(self.in_channels)} feature maps, got {len(feats)}")
        out, ids = [], []
        for i, feat in enumerate(feats):
            b, c, h, w = feat.shape
            flat = feat.permute(0, 2, 3, 1).reshape(b, h * w, c)  # (B, H·W, C)
            if patch_ids is not None:
                idx = patch_ids[i].to(feat.device)
            else:
                perm = torch.randperm(h * w, generator=generator)
                idx = perm[: min(num_patches, h * w)].to(feat.device)
            sample = flat[:, idx, :]  # (B, N, C)
            if self.use_mlp:
                sample = getattr(self, f"mlp_{i}")(sample)
            # The reference divides by (norm + 1e-7); F.normalize clamps the norm at eps instead:
            # identical for any feature vector that is not (almost) zero.
            out.append(F.normalize(sample, dim=-1, eps=1e-7))
            ids.append(idx)
        return out, ids
