"""CUT and FastCUT on the engine: modes, the step, exact resume, the exported generator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from transfigure.checkpoint import load_model, load_training_state
from transfigure.cut.config import MODE_PRESETS, TrainConfig
from transfigure.cut.losses import patchnce
from transfigure.cut.step import CUTStep
from transfigure.cyclegan.translate import load_translator
from transfigure.datasets.synthetic import write_seasons
from transfigure.training import load_config
from transfigure.training import train as engine_train


def train(config: TrainConfig, run_dir, **kwargs):
    return engine_train(CUTStep, config, run_dir, **kwargs)


@pytest.fixture(scope="module")
def seasons_root(tmp_path_factory) -> Path:
    return write_seasons(tmp_path_factory.mktemp("seasons"), 6, 2, size=32, seed=0)


def tiny(root: Path, **changes) -> TrainConfig:
    base = dict(
        data_root=str(root),
        load_size=36,
        crop_size=32,
        net_g="resnet_6blocks",
        ngf=4,
        ndf=4,
        n_epochs=1,
        n_epochs_decay=1,
        workers=0,
        log_every=2,
        n_samples=2,
        num_patches=16,
        net_f_nc=8,
    )
    base.update(changes)
    return TrainConfig(**base)


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "event" not in r]


def test_mode_presets_are_the_papers():
    cut, fast = TrainConfig(data_root="x"), TrainConfig(data_root="x", mode="fastcut")
    assert (cut.lambda_nce, cut.nce_idt, cut.flip_equivariance) == (1.0, True, False)
    assert (fast.lambda_nce, fast.nce_idt, fast.flip_equivariance) == (10.0, False, True)
    assert (cut.total_epochs, fast.total_epochs) == (400, 200)
    for cfg in (cut, fast):
        assert (cfg.net_g, cfg.antialias, cfg.norm, cfg.init_type, cfg.gan_mode) == (
            "resnet_9blocks",
            True,
            "instance",
            "xavier",
            "lsgan",
        )
        assert (cfg.lr, cfg.beta1, cfg.beta2, cfg.batch_size) == (2e-4, 0.5, 0.999, 1)
        assert (cfg.net_f_nc, cfg.num_patches, cfg.nce_t, cfg.layers) == (
            256,
            256,
            0.07,
            (0, 4, 8, 12, 16),
        )
    # an explicit setting wins over the mode's preset
    assert TrainConfig(data_root="x", mode="fastcut", lambda_nce=2.0).lambda_nce == 2.0
    assert set(MODE_PRESETS["cut"]) == set(MODE_PRESETS["fastcut"])


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_step_losses_and_updates(mode):
    cfg = TrainConfig(data_root="x", mode=mode, ngf=4, ndf=4, num_patches=8, net_f_nc=8)
    step = CUTStep(cfg, device="cpu", precision="fp32")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    b = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    before = {n: next(net.parameters()).clone() for n, net in step.networks().items()}
    terms = step.train_step({"A": a, "B": b})
    expected = {"G_GAN", "D_real", "D_fake", "G", "NCE"} | ({"NCE_Y"} if mode == "cut" else set())
    assert set(terms) == expected
    nce = terms["NCE"] if mode == "fastcut" else (terms["NCE"] + terms["NCE_Y"]) / 2
    torch.testing.assert_close(terms["G"], terms["G_GAN"] + nce)
    for name, net in step.networks().items():  # G, D and the head F all learn
        assert not torch.equal(next(net.parameters()), before[name]), name
    # NCE is λ · PatchNCE(A, G(A)) on the step's own patch draw (and flip, in FastCUT)
    fresh = CUTStep(cfg, device="cpu", precision="fp32")
    flipped = bool(mode == "fastcut" and torch.rand((), generator=fresh.flip_generator) < 0.5)
    real = torch.cat([a, b]) if cfg.nce_idt else a
    with torch.no_grad():
        fake_b = fresh.G(torch.flip(real, dims=[3]) if flipped else real)[:1]
        expected_nce = patchnce(
            fresh.G,
            fresh.F,
            a,
            fake_b,
            layers=cfg.layers,
            num_patches=8,
            flipped=flipped,
            generator=fresh.patch_generator,
        )
    torch.testing.assert_close(terms["NCE"], expected_nce * cfg.lambda_nce)


def _state(run: Path) -> dict[str, torch.Tensor]:
    state = load_training_state(run / "checkpoints" / "latest.pt")
    out = {}
    for net, sd in state["networks"].items():
        out.update({f"{net}.{k}": v for k, v in sd.items()})
    for opt in ("opt_0", "opt_1", "opt_2"):
        for i, s in state["step"][opt]["state"].items():
            out[f"{opt}.{i}.exp_avg"] = s["exp_avg"]
    return out


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_resume_equals_an_uninterrupted_run(seasons_root, tmp_path, mode):
    cfg = tiny(seasons_root, mode=mode, log_every=3)
    train(cfg, tmp_path / "whole")
    train(cfg, tmp_path / "parts", max_steps=5)  # mid-epoch
    resumed = load_config(TrainConfig, tmp_path / "parts", "cut")
    assert resumed == cfg
    assert train(resumed, tmp_path / "parts", resume=True).steps == 12
    a, b = _state(tmp_path / "whole"), _state(tmp_path / "parts")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert _metrics(tmp_path / "whole") == _metrics(tmp_path / "parts")


def test_exported_generator_is_the_antialiased_layout_and_translates(seasons_root, tmp_path):
    result = train(tiny(seasons_root, mode="fastcut"), tmp_path / "run", max_steps=2)
    assert result.models == [tmp_path / "run" / "generator_a2b.safetensors"]
    net, info = load_model(result.models[0], kind="cyclegan-generator")
    assert info.config["antialias"] is True and info.extra["model"] == "fastcut"
    assert any(k.endswith(".filt") for k in net.state_dict())
    translator, _ = load_translator(tmp_path / "run")
    x = torch.rand(1, 3, 36, 36) * 2 - 1
    assert translator(x).shape == (1, 3, 36, 36)


def test_sample_strip_has_a_and_b_rows(seasons_root):
    step = CUTStep(tiny(seasons_root), device="cpu", precision="fp32")
    grid, columns = step.sample(step.networks())
    assert columns == 4 and grid.shape == (8, 3, 32, 32)  # 2 × (A, G(A), B, G(B))
    assert 0 <= grid.min() and grid.max() <= 1


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="nce_layers"):
        TrainConfig(data_root="x", nce_layers="4,0").validate()
    with pytest.raises(ValueError, match="input_nc == output_nc"):
        TrainConfig(data_root="x", input_nc=1).validate()
    TrainConfig(data_root="x", input_nc=1, nce_idt=False).validate()
    with pytest.raises(ValueError, match="reach past"):
        CUTStep(
            TrainConfig(data_root="x", nce_layers="0,40", ngf=2), device="cpu", precision="fp32"
        )


def test_bf16_trains_and_exports_finite_weights(seasons_root, tmp_path):
    result = train(tiny(seasons_root, mode="cut"), tmp_path / "run", precision="bf16", max_steps=3)
    rows = _metrics(tmp_path / "run")
    assert rows and all(torch.isfinite(torch.tensor(r["G"])) for r in rows)
    assert result.steps == 3
    net, _ = load_model(tmp_path / "run" / "generator_a2b.safetensors")
    assert all(torch.isfinite(p).all() for p in net.parameters())
