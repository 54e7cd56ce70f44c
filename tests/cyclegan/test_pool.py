"""The image history pool."""

from __future__ import annotations

import pytest
import torch

from transfigure.cyclegan.pool import ImagePool


def _batch(value: float, n: int = 1) -> torch.Tensor:
    return torch.full((n, 1, 2, 2), value)


def test_fills_then_mixes():
    pool = ImagePool(3, seed=0)
    for v in range(3):
        torch.testing.assert_close(pool.query(_batch(float(v))), _batch(float(v)))
    assert len(pool) == 3
    seen_old = False
    for v in range(3, 40):
        out = pool.query(_batch(float(v)))
        assert out.shape == (1, 1, 2, 2)
        value = out[0, 0, 0, 0].item()
        assert value == v or value < v  # either the new image or an earlier one
        seen_old |= value < v
        assert len(pool) == 3
    assert seen_old
    stored = sorted(im[0, 0, 0, 0].item() for im in pool.images)
    assert len(set(stored)) == 3


def test_about_half_come_from_history():
    pool = ImagePool(5, seed=1)
    pool.query(torch.zeros(5, 1, 1, 1))
    out = pool.query(torch.ones(2000, 1, 1, 1))
    from_history = (out != 1).sum().item()
    # the first swaps return zeros; after that swapped-out images are ones as well, so count
    # swaps by construction instead: at most 5 zeros can come out
    assert from_history == 5
    pool2 = ImagePool(5, seed=1)
    pool2.query(torch.zeros(5, 1, 1, 1))
    values = pool2.query(torch.arange(1, 2001, dtype=torch.float32).view(-1, 1, 1, 1)).flatten()
    swapped = (values != torch.arange(1, 2001)).float().mean().item()
    assert swapped == pytest.approx(0.5, abs=0.04)


def test_zero_size_passes_through_and_detaches():
    pool = ImagePool(0)
    x = torch.randn(2, 1, 2, 2, requires_grad=True)
    out = pool.query(x)
    assert not out.requires_grad
    torch.testing.assert_close(out, x.detach())
    with pytest.raises(ValueError):
        ImagePool(-1)


def test_state_round_trip_gives_identical_draws():
    a = ImagePool(4, seed=7)
    for v in range(10):
        a.query(_batch(float(v), 2))
    state = a.state_dict()
    b = ImagePool(4, seed=99)
    b.load_state_dict(state)
    for v in range(10, 30):
        torch.testing.assert_close(a.query(_batch(float(v), 2)), b.query(_batch(float(v), 2)))
