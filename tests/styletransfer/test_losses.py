"""Style-transfer losses: hand-computed values, gradcheck in float64, bad inputs."""

from __future__ import annotations

import pytest
import torch
from torch.autograd import gradcheck

from transfigure.styletransfer.losses import (
    blend_grams,
    content_loss,
    gram_matrix,
    style_loss,
    total_variation,
)


def test_gram_matrix_by_hand():
    # One image, C=2 channels, H=1, W=3: rows are the flattened channels.
    f = torch.tensor([[[[1.0, 2.0, 3.0]], [[0.0, -1.0, 4.0]]]])
    # F F^T = [[1+4+9, 0-2+12], [.., 0+1+16]] = [[14, 10], [10, 17]], divided by C·H·W = 6
    expected = torch.tensor([[[14.0, 10.0], [10.0, 17.0]]]) / 6
    torch.testing.assert_close(gram_matrix(f), expected)


def test_gram_matrix_is_size_invariant_and_batched():
    gen = torch.Generator().manual_seed(0)
    tile = torch.rand(2, 4, 3, 3, generator=gen)
    # The same texture repeated 4 times has the same (normalised) Gram matrix.
    big = tile.repeat(1, 1, 2, 2)
    torch.testing.assert_close(gram_matrix(big), gram_matrix(tile))
    g = gram_matrix(tile)
    assert g.shape == (2, 4, 4)
    torch.testing.assert_close(g, g.transpose(1, 2))
    torch.testing.assert_close(g[1], gram_matrix(tile[1:])[0])


def test_content_loss_values():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    t = torch.tensor([[[[1.0, 0.0], [3.0, 2.0]]]])
    # errors 0, 2, 0, 2 → mean square 2; mean(t²) = (1+0+9+4)/4 = 3.5
    assert content_loss(x, t, normalize=False).item() == pytest.approx(2.0)
    assert content_loss(x, t).item() == pytest.approx(2.0 / 3.5)
    assert content_loss(t, t).item() == 0.0
    with pytest.raises(ValueError, match="differ"):
        content_loss(x, t[..., :1])


def test_style_loss_values_and_layer_weights():
    a = torch.tensor([[[[1.0, 2.0, 3.0]], [[0.0, -1.0, 4.0]]]])  # gram [[14,10],[10,17]]/6
    b = torch.tensor([[[[1.0, 1.0]]]])  # C=1: gram [[1]]
    targets = {"a": torch.zeros(2, 2), "b": torch.full((1, 1), 3.0)}
    ga = torch.tensor([[14.0, 10.0], [10.0, 17.0]]) / 6
    raw_a = ga.pow(2).mean().item()
    raw_b = (1.0 - 3.0) ** 2
    feats = {"a": a, "b": b}
    assert style_loss(feats, targets, normalize=False).item() == pytest.approx(raw_a + raw_b)
    weighted = style_loss(feats, targets, {"a": 0.5, "b": 2.0}, normalize=False).item()
    assert weighted == pytest.approx(0.5 * raw_a + 2.0 * raw_b)
    # normalised: each layer divided by the mean square of its target (a zero target → floor)
    assert style_loss({"b": b}, {"b": targets["b"]}).item() == pytest.approx(raw_b / 9.0)
    with pytest.raises(KeyError, match="'c'"):
        style_loss(feats, {"c": torch.zeros(1, 1)})
    with pytest.raises(ValueError, match="at least one"):
        style_loss(feats, {})


def test_blend_grams_normalises_weights():
    g1 = {"x": torch.full((2, 2), 1.0)}
    g2 = {"x": torch.full((1, 2, 2), 4.0)}  # a batch of one is accepted too
    torch.testing.assert_close(blend_grams([g1, g2], [0.7, 0.3])["x"], torch.full((2, 2), 1.9))
    torch.testing.assert_close(blend_grams([g1, g2], [7, 3])["x"], torch.full((2, 2), 1.9))
    torch.testing.assert_close(blend_grams([g1, g2])["x"], torch.full((2, 2), 2.5))
    with pytest.raises(ValueError, match="2 blend weights for 1"):
        blend_grams([g1], [1.0, 2.0])
    with pytest.raises(ValueError, match="non-negative"):
        blend_grams([g1, g2], [1.0, -1.0])


def test_total_variation_by_hand():
    img = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    # horizontal differences 1, 1 → mean 1; vertical 2, 2 → mean 4
    assert total_variation(img).item() == pytest.approx(5.0)
    assert total_variation(torch.full((1, 3, 4, 5), 0.3)).item() == 0.0
    # a per-pixel mean: a tiled pattern scores the same at any size (up to the seams)
    stripes = torch.tensor([0.0, 1.0]).repeat(8).view(1, 1, 1, 16).expand(1, 1, 16, 16)
    assert total_variation(stripes).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="H>=2"):
        total_variation(torch.zeros(1, 3, 1, 4))


def test_gradcheck_float64():
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.rand(*shape, generator=gen, dtype=torch.float64, requires_grad=True)

    feats = rand(1, 3, 4, 5)
    target = torch.rand(1, 3, 4, 5, generator=gen, dtype=torch.float64)
    assert gradcheck(gram_matrix, (feats,))
    assert gradcheck(lambda f: content_loss(f, target), (feats,))
    assert gradcheck(lambda f: content_loss(f, target, normalize=False), (feats,))
    grams = {"a": torch.rand(3, 3, generator=gen, dtype=torch.float64), "b": torch.eye(2).double()}
    other = rand(1, 2, 3, 3)
    assert gradcheck(
        lambda f, o: style_loss({"a": f, "b": o}, grams, {"a": 0.3, "b": 2.0}), (feats, other)
    )
    assert gradcheck(lambda f: style_loss({"a": f}, {"a": grams["a"]}, normalize=False), (feats,))
    assert gradcheck(total_variation, (rand(2, 3, 4, 4),))
