"""Learning-rate schedules."""

from __future__ import annotations

import math

import pytest

from transfigure.cyclegan.schedule import LRSchedule, lr_factor


def test_linear_is_the_reference_rule_unshifted():
    # the reference's lambda(e) = 1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1)
    # (epoch_count = 1), applied to epoch e; the reference's train.py applies lambda(e + 1)
    got = [lr_factor("linear", e, n_epochs=3, n_epochs_decay=4) for e in range(7)]
    assert got == pytest.approx([1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2])
    assert lr_factor("linear", 100, n_epochs=3, n_epochs_decay=4) == 0.0


def test_linear_full_rate_for_n_epochs_and_no_idle_last_epoch():
    # 2 + 2 epochs: the reference's train.py runs 1, 2/3, 1/3, 0 (one shifted step); here the
    # first n_epochs run at the full rate and the last epoch still learns
    got = [lr_factor("linear", e, n_epochs=2, n_epochs_decay=2) for e in range(4)]
    assert got == pytest.approx([1.0, 1.0, 2 / 3, 1 / 3])


def test_cosine_constant_then_half_cosine():
    got = [lr_factor("cosine", e, n_epochs=2, n_epochs_decay=3) for e in range(5)]
    assert got[:1] == [1.0]
    assert got[2] == pytest.approx(0.5 * (1 + math.cos(math.pi * 1 / 4)))
    assert got[4] == pytest.approx(0.5 * (1 + math.cos(math.pi * 3 / 4)))
    assert all(a >= b for a, b in zip(got, got[1:], strict=False))


def test_step():
    got = [
        lr_factor("step", e, n_epochs=1, n_epochs_decay=1, step_size=2, gamma=0.5) for e in range(5)
    ]
    assert got == pytest.approx([1, 1, 0.5, 0.5, 0.25])


def test_plateau_reduces_after_patience_and_round_trips():
    s = LRSchedule("plateau", n_epochs=1, n_epochs_decay=1, plateau_patience=2)
    s.observe(1.0)
    for _ in range(2):
        s.observe(0.995)  # within the 1 % threshold: not an improvement
    assert s.factor(5) == 1.0
    s.observe(1.0)
    assert s.factor(5) == pytest.approx(0.2)
    t = LRSchedule("plateau", n_epochs=1, n_epochs_decay=1, plateau_patience=2)
    t.load_state_dict(s.state_dict())
    assert t.factor(0) == pytest.approx(0.2) and t.best == 1.0


def test_bad_policy():
    with pytest.raises(ValueError, match="policy"):
        LRSchedule("exp", n_epochs=1, n_epochs_decay=1)
    with pytest.raises(ValueError, match="policy"):
        lr_factor("exp", 0, n_epochs=1, n_epochs_decay=1)
