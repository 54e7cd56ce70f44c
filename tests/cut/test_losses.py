"""PatchNCE: known values on tiny tensors, the reference's formulation, gradcheck, the full term."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from transfigure.cut import PatchNCELoss, PatchSampleMLP, feature_channels, patch_nce_loss, patchnce
from transfigure.cyclegan.networks import GeneratorConfig, build_generator


def _reference_patchnce(feat_q: torch.Tensor, feat_k: torch.Tensor, batch: int, t: float):
    """The reference's PatchNCELoss.forward, literally: (B·N, C) inputs, per-patch losses."""
    num_patches, dim = feat_q.shape
    feat_k = feat_k.detach()
    l_pos = torch.bmm(feat_q.view(num_patches, 1, -1), feat_k.view(num_patches, -1, 1))
    l_pos = l_pos.view(num_patches, 1)
    feat_q = feat_q.view(batch, -1, dim)
    feat_k = feat_k.view(batch, -1, dim)
    npatches = feat_q.size(1)
    l_neg_curbatch = torch.bmm(feat_q, feat_k.transpose(2, 1))
    diagonal = torch.eye(npatches, dtype=torch.bool)[None, :, :]
    l_neg_curbatch.masked_fill_(diagonal, -10.0)
    l_neg = l_neg_curbatch.view(-1, npatches)
    out = torch.cat((l_pos, l_neg), dim=1) / t
    return F.cross_entropy(out, torch.zeros(out.size(0), dtype=torch.long), reduction="none")


def test_known_value_orthogonal_patches():
    q = torch.eye(2, dtype=torch.float64)[None]  # patch 0 = e1, patch 1 = e2; keys equal
    # logits of patch 0: [q0·k0, masked self, q0·k1] = [1, -10, 0] at τ = 1
    expected = math.log(1 + math.exp(-11) + math.exp(-1))
    loss = patch_nce_loss(q, q, temperature=1.0)
    torch.testing.assert_close(loss, torch.full((1, 2), expected, dtype=torch.float64))
    # at τ = 0.07 the positive dominates: loss = log(1 + e^{-1/τ} + e^{-11/τ})
    loss = patch_nce_loss(q, q, temperature=0.07)
    expected = math.log1p(math.exp(-1 / 0.07) + math.exp(-11 / 0.07))
    torch.testing.assert_close(loss, torch.full((1, 2), expected, dtype=torch.float64))


def test_known_value_swapped_keys():
    # Each query matches the *other* location's key: the positive is 0, a negative is 1.
    q = torch.eye(2, dtype=torch.float64)[None]
    k = q.flip(1)
    expected = math.log(math.exp(0) + math.exp(-10) + math.exp(1))  # - logit_pos (= 0)
    torch.testing.assert_close(
        patch_nce_loss(q, k, temperature=1.0), torch.full((1, 2), expected, dtype=torch.float64)
    )


def test_matches_the_reference_formulation():
    g = torch.Generator().manual_seed(0)
    b, n, c = 3, 5, 4
    q = F.normalize(torch.randn(b, n, c, generator=g), dim=-1)
    k = F.normalize(torch.randn(b, n, c, generator=g), dim=-1)
    ours = patch_nce_loss(q, k, 0.07)
    ref = _reference_patchnce(q.reshape(b * n, c), k.reshape(b * n, c), b, 0.07)
    torch.testing.assert_close(ours.reshape(-1), ref)
    torch.testing.assert_close(PatchNCELoss(0.07)(q, k), ref.mean())


def test_negatives_come_from_the_same_image_only():
    g = torch.Generator().manual_seed(1)
    q = F.normalize(torch.randn(2, 4, 3, generator=g), dim=-1)
    k = F.normalize(torch.randn(2, 4, 3, generator=g), dim=-1)
    both = patch_nce_loss(q, k)
    # Changing image 1's keys leaves image 0's losses unchanged.
    k2 = k.clone()
    k2[1] = F.normalize(torch.randn(4, 3, generator=g), dim=-1)
    changed = patch_nce_loss(q, k2)
    torch.testing.assert_close(changed[0], both[0])
    assert not torch.allclose(changed[1], both[1])


def test_gradcheck_float64():
    g = torch.Generator().manual_seed(2)
    q = torch.randn(2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(2, 3, 4, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: patch_nce_loss(x, k, 0.5), (q,))
    # through the normalisation and the projection head as well
    head = PatchSampleMLP([4], nc=5).double()
    ids = [torch.tensor([0, 2])]

    def through_head(x):
        feats = [x.view(2, 4, 3, 1)]
        (query,), _ = head(feats, 2, ids)
        (key,), _ = head([k.view(2, 4, 3, 1)], 2, ids)
        return patch_nce_loss(query, key, 0.07).mean()

    assert torch.autograd.gradcheck(through_head, (q,))


def test_keys_are_detached():
    q = torch.randn(1, 3, 2, requires_grad=True)
    k = torch.randn(1, 3, 2, requires_grad=True)
    patch_nce_loss(q, k).sum().backward()
    assert q.grad is not None and k.grad is None


def test_input_checks():
    with pytest.raises(ValueError, match="must both be"):
        patch_nce_loss(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="temperature"):
        patch_nce_loss(torch.zeros(1, 2, 3), torch.zeros(1, 2, 3), temperature=0)


def test_patchnce_term_shares_locations_and_is_low_for_identity():
    torch.manual_seed(0)
    net = build_generator(GeneratorConfig(ngf=4, antialias=True), generator=torch.Generator())
    layers = (0, 4, 8, 12, 16)
    head = PatchSampleMLP(feature_channels(net, layers, 3), nc=8)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    other = torch.rand(2, 3, 16, 16) * 2 - 1
    kwargs = dict(layers=layers, num_patches=16, temperature=0.07)
    same = patchnce(net, head, x, x, generator=torch.Generator().manual_seed(0), **kwargs)
    diff = patchnce(net, head, x, other, generator=torch.Generator().manual_seed(0), **kwargs)
    assert same.ndim == 0 and torch.isfinite(same)
    assert same < diff  # a translation identical to its input is the easiest to match
    # the same generator seed draws the same locations: a deterministic value
    again = patchnce(net, head, x, other, generator=torch.Generator().manual_seed(0), **kwargs)
    torch.testing.assert_close(again, diff)
    # flipped: queries of flip(x) flipped back equal those of x at the first layers
    flipped = patchnce(
        net,
        head,
        x,
        torch.flip(x, dims=[3]),
        flipped=True,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )
    assert flipped < diff


def test_patch_sampler_shapes_and_unit_norm():
    head = PatchSampleMLP([3, 6], nc=8)
    feats = [torch.randn(2, 3, 4, 4), torch.randn(2, 6, 2, 2)]
    out, ids = head(feats, num_patches=5, generator=torch.Generator().manual_seed(0))
    assert [tuple(o.shape) for o in out] == [(2, 5, 8), (2, 4, 8)]  # 2×2 map: all 4 locations
    assert [len(i) for i in ids] == [5, 4]
    for o in out:
        torch.testing.assert_close(o.norm(dim=-1), torch.ones(o.shape[:2]))
    assert sorted(head.state_dict()) == [
        "mlp_0.0.bias",
        "mlp_0.0.weight",
        "mlp_0.2.bias",
        "mlp_0.2.weight",
        "mlp_1.0.bias",
        "mlp_1.0.weight",
        "mlp_1.2.bias",
        "mlp_1.2.weight",
    ]
