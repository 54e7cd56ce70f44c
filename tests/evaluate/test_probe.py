"""The linear domain probe: real B is ~always B, real A ~never; the fit itself."""

from __future__ import annotations

import pytest
import torch

from tests.evaluate.conftest import SIZE
from transfigure.evaluate import ProbeConfig, fit_probe, probe_translation

CONFIG = ProbeConfig(size=SIZE, batch_size=16)


@pytest.fixture(scope="module")
def probe_results(seasons_root, vgg_extractor):
    """Fitted on the training scenes; applied to unseen test scenes of each season."""
    root = seasons_root

    def run(translated):
        return probe_translation(
            root / "trainA", root / "trainB", translated, CONFIG, extractor=vgg_extractor
        )

    return {"A": run(root / "testA"), "B": run(root / "testB")}


def test_real_target_images_count_as_translated(probe_results):
    result = probe_results["B"]
    assert result.fraction_target == pytest.approx(1.0, abs=0.05)
    assert result.mean_probability == pytest.approx(1.0, abs=0.1)
    assert result.n_translated == 12 and result.target == "B"


def test_real_source_images_do_not(probe_results):
    result = probe_results["A"]
    assert result.fraction_target == pytest.approx(0.0, abs=0.05)
    assert result.mean_probability == pytest.approx(0.0, abs=0.1)


def test_probe_reports_its_own_accuracy(probe_results):
    result = probe_results["A"]
    assert (result.n_a, result.n_b, result.size) == (24, 24, SIZE)
    assert result.heldout_accuracy == pytest.approx(1.0)
    assert result.train_accuracy == pytest.approx(1.0)
    assert result.to_dict()["fraction_target"] == result.fraction_target


def test_fit_probe_on_separable_gaussians():
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(50, 4, generator=gen, dtype=torch.float64)
    b = torch.randn(30, 4, generator=gen, dtype=torch.float64) + torch.tensor([0, 0, 6.0, 0])
    probe = fit_probe(a, b, steps=100)
    assert probe.weight.shape == (4,)
    # The discriminative direction is the third feature.
    assert probe.weight.abs().argmax().item() == 2 and probe.weight[2] > 0
    assert torch.all(probe.prob_b(a) < 0.5) and torch.all(probe.prob_b(b) > 0.5)
    prob = probe.prob_b(torch.cat([a, b]))
    assert torch.all((prob >= 0) & (prob <= 1))


def test_fit_probe_is_deterministic_and_balanced():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(90, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(10, 3, generator=gen, dtype=torch.float64) + 0.5
    first, second = fit_probe(a, b), fit_probe(a, b)
    torch.testing.assert_close(first.weight, second.weight)
    torch.testing.assert_close(first.bias, second.bias)
    # Class-balanced: a 9:1 imbalance does not push the decision to "always A". The midpoint of
    # the two class means sits near the boundary.
    midpoint = ((a.mean(0) + b.mean(0)) / 2)[None]
    assert float(first.prob_b(midpoint)) == pytest.approx(0.5, abs=0.1)


def test_fit_probe_rejects_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        fit_probe(torch.zeros(0, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="shapes differ"):
        fit_probe(torch.zeros(2, 3), torch.zeros(2, 4))


def test_probe_needs_images(tmp_path, seasons_root, vgg_extractor):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        probe_translation(
            tmp_path / "empty",
            seasons_root / "trainB",
            seasons_root / "testB",
            CONFIG,
            extractor=vgg_extractor,
        )


def test_probe_config_checks():
    with pytest.raises(ValueError, match="size"):
        ProbeConfig(size=8)
    with pytest.raises(ValueError, match="steps"):
        ProbeConfig(steps=0)
