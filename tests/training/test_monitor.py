"""The failure detectors: each one fires on a constructed failing run and stays quiet on a
healthy one."""

from __future__ import annotations

import json
import math

import torch

from tests.gan.helpers import step_class, tiny
from transfigure.training import train
from transfigure.training.monitor import Monitor, spread


def _feed(monitor: Monitor, d, g, start: int = 1) -> list:
    found = []
    for i, (dv, gv) in enumerate(zip(d, g, strict=True), start=start):
        found += monitor.observe(i, {"loss_d": dv, "loss_g": gv})
    return found


def _healthy(n: int) -> tuple[list[float], list[float]]:
    """D and G losses near their equilibrium with a little noise (BCE: 2 ln 2 and ln 2)."""
    gen = torch.Generator().manual_seed(0)
    noise = (torch.rand(2, n, generator=gen) - 0.5) * 0.2
    return (1.3 + noise[0]).tolist(), (0.8 + noise[1]).tolist()


def test_a_healthy_run_raises_nothing():
    monitor = Monitor(("loss_d",), ("loss_g",), watch_every=20)
    assert _feed(monitor, *_healthy(200)) == []


def test_an_overpowering_discriminator_is_reported_once_with_advice():
    monitor = Monitor(("loss_d",), ("loss_g",), watch_every=20, advice="lower --lr-d")
    d, g = _healthy(40)
    d += [1.3 * math.exp(-i / 10) for i in range(80)]  # D wins...
    g += [0.8 + i * 0.05 for i in range(80)]  # ...while G's loss climbs
    found = _feed(monitor, d, g)
    assert [f.kind for f in found] == ["discriminator_overpowering"]
    assert "lower --lr-d" in found[0].message and found[0].figures["d_loss"] < 0.13


def test_stalled_and_oscillating_losses():
    monitor = Monitor(("loss_d",), ("loss_g",), watch_every=10)
    found = _feed(monitor, [0.5] * 40, [2.0] * 40)
    assert [f.kind for f in found] == ["stalled"]
    monitor = Monitor(("loss_d",), ("loss_g",), watch_every=10)
    swings = [0.1 if i % 2 else 3.0 for i in range(40)]
    found = _feed(monitor, _healthy(40)[0], swings)
    assert [f.kind for f in found] == ["oscillating"]


def test_mode_collapse_compares_sample_spread_with_the_data():
    monitor = Monitor(("loss_d",), ("loss_g",), watch_every=10)
    same = torch.rand(1, 3, 8, 8).expand(16, -1, -1, -1)
    varied = torch.rand(16, 3, 8, 8)
    assert spread(same) == 0.0 and spread(varied) > 0.2
    assert monitor.diversity(10, spread(varied), spread(varied)) is None
    found = monitor.diversity(20, spread(same) + 0.01, spread(varied))
    assert found is not None and found.kind == "mode_collapse"
    assert monitor.diversity(30, 0.0, spread(varied)) is None  # said once


def test_monitor_state_survives_a_resume():
    a = Monitor(("loss_d",), ("loss_g",), watch_every=10)
    _feed(a, *_healthy(15))
    b = Monitor(("loss_d",), ("loss_g",), watch_every=10)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    d, g = _healthy(60)
    assert _feed(a, d[15:], g[15:], start=16) == _feed(b, d[15:], g[15:], start=16)


def _diagnostics(run) -> list[dict]:
    path = run / "diagnostics.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def test_a_real_run_with_a_far_stronger_discriminator_is_flagged(tmp_path):
    """DCGAN whose D learns 50× faster than G: D wins within a few dozen steps."""
    cfg = tiny("dcgan", data="shapes:256", epochs=4, lr_d=5e-3, lr_g=1e-4, watch_every=10)
    events = []
    train(step_class("dcgan"), cfg, tmp_path / "strong_d", callback=events.append)
    kinds = [d["kind"] for d in _diagnostics(tmp_path / "strong_d")]
    assert "discriminator_overpowering" in kinds, kinds
    assert any(e.level == "warning" and "overpowering" in (e.message or "") for e in events)
    page = (tmp_path / "strong_d" / "index.html").read_text()
    assert "overpowering" in page

    healthy = tiny("dcgan", data="shapes:256", epochs=4, watch_every=10)
    train(step_class("dcgan"), healthy, tmp_path / "healthy")
    kinds = [d["kind"] for d in _diagnostics(tmp_path / "healthy")]
    assert "discriminator_overpowering" not in kinds and "memorisation_ok" in kinds, kinds
