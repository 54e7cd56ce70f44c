"""pix2pix on the engine: the paper's step, learning, exact resume, the exported model file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from transfigure.checkpoint import load_model, load_training_state
from transfigure.cyclegan.networks import DropoutAtTest
from transfigure.cyclegan.translate import load_translator
from transfigure.datasets.edges import write_edges2scenes
from transfigure.pix2pix.config import TrainConfig
from transfigure.pix2pix.step import LOSS_TERMS, Pix2PixStep, to_channels
from transfigure.training import load_config
from transfigure.training import train as engine_train


def train(config: TrainConfig, run_dir, **kwargs):
    return engine_train(Pix2PixStep, config, run_dir, **kwargs)


@pytest.fixture(scope="module")
def edges_root(tmp_path_factory) -> Path:
    """edges|scene pairs, 32 px: 6 training and 2 test pairs."""
    return write_edges2scenes(tmp_path_factory.mktemp("e2s"), 6, 2, size=32, seed=0)


def tiny(root: Path, **changes) -> TrainConfig:
    base = dict(
        data_root=str(root),
        load_size=36,
        crop_size=32,
        net_g="resnet_6blocks",  # the U-Nets need 128 / 256 px
        ngf=4,
        ndf=4,
        n_epochs=1,
        n_epochs_decay=1,
        workers=0,
        log_every=2,
        n_samples=2,
    )
    base.update(changes)
    return TrainConfig(**base)


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "event" not in r]


def test_reference_defaults():
    cfg = TrainConfig(data_root="x")
    assert (cfg.net_g, cfg.net_d, cfg.norm, cfg.use_dropout, cfg.dropout_at_test) == (
        "unet_256",
        "basic",
        "batch",
        True,
        True,
    )
    assert (cfg.gan_mode, cfg.lambda_l1, cfg.pool_size, cfg.lr, cfg.beta1) == (
        "vanilla",
        100.0,
        0,
        2e-4,
        0.5,
    )
    assert (cfg.lr_policy, cfg.n_epochs, cfg.n_epochs_decay, cfg.direction) == (
        "linear",
        100,
        100,
        "AtoB",
    )
    assert cfg.discriminator_config().input_nc == 6  # judges (input, output) pairs
    gen = cfg.generator_config()
    assert gen.netG == "unet_256" and gen.dropout_at_test


def test_one_step_updates_d_then_g_with_the_paper_losses():
    cfg = TrainConfig(data_root="unused", net_g="unet_128", ngf=2, ndf=2, lr=1e-3)
    step = Pix2PixStep(cfg, device="cpu", precision="fp32")
    fresh = Pix2PixStep(cfg, device="cpu", precision="fp32")
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 128, 128, generator=g) * 2 - 1
    b = torch.rand(1, 3, 128, 128, generator=g) * 2 - 1
    d_before = step.D.model[0].weight.clone()
    torch.manual_seed(1)
    terms = step.train_step({"A": a, "B": b})
    assert set(terms) == set(LOSS_TERMS)
    assert not torch.equal(step.D.model[0].weight, d_before)
    # G_L1 is λ · |G(A) − B|₁ of the translation before G's update (same dropout draw)
    torch.manual_seed(1)
    torch.testing.assert_close(terms["G_L1"], F.l1_loss(fresh.G(a), b).detach() * 100.0)


def test_training_lowers_the_l1_to_the_target(edges_root, tmp_path):
    cfg = tiny(edges_root, lr=2e-3, n_epochs=4, n_epochs_decay=0, log_every=6, flip=False)
    train(cfg, tmp_path / "run", max_steps=24)
    rows = _metrics(tmp_path / "run")
    assert len(rows) == 4
    assert rows[-1]["G_L1"] < 0.7 * rows[0]["G_L1"], (rows[0]["G_L1"], rows[-1]["G_L1"])


def _state(run: Path) -> dict[str, torch.Tensor]:
    state = load_training_state(run / "checkpoints" / "latest.pt")
    out = {}
    for net, sd in state["networks"].items():
        out.update({f"{net}.{k}": v for k, v in sd.items()})
    for opt in ("opt_0", "opt_1"):
        for i, s in state["step"][opt]["state"].items():
            out[f"{opt}.{i}.exp_avg"] = s["exp_avg"]
    out["pool"] = state["step"]["pool"]["images"]
    return out


def test_resume_equals_an_uninterrupted_run(edges_root, tmp_path):
    # dropout, an image pool and the flips exercise every random source
    cfg = tiny(edges_root, use_dropout=True, pool_size=2, log_every=3)
    train(cfg, tmp_path / "whole")
    first = train(cfg, tmp_path / "parts", max_steps=4)
    assert first.steps == 4
    resumed = load_config(TrainConfig, tmp_path / "parts", "pix2pix")
    assert resumed == cfg
    assert train(resumed, tmp_path / "parts", resume=True).steps == 12
    a, b = _state(tmp_path / "whole"), _state(tmp_path / "parts")
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    fa = load_file(tmp_path / "whole" / "generator_a2b.safetensors")
    fb = load_file(tmp_path / "parts" / "generator_a2b.safetensors")
    assert all(torch.equal(fa[k], fb[k]) for k in fa)
    assert _metrics(tmp_path / "whole") == _metrics(tmp_path / "parts")


@pytest.mark.parametrize("at_test", [True, False])
def test_exported_generator_states_dropout_at_test(edges_root, tmp_path, at_test):
    cfg = tiny(edges_root, use_dropout=True, dropout_at_test=at_test, direction="BtoA")
    result = train(cfg, tmp_path / "run", max_steps=2)
    assert result.models == [tmp_path / "run" / "generator_b2a.safetensors"]
    net, info = load_model(result.models[0], kind="cyclegan-generator")
    assert info.config["dropout_at_test"] is at_test and info.extra["dropout_at_test"] is at_test
    assert info.extra["direction"] == "b2a"
    assert info.extra["trained_with"] == "transfigure train pix2pix"
    assert any(isinstance(m, DropoutAtTest) for m in net.modules()) is at_test
    translator, _ = load_translator(tmp_path / "run", direction="b2a")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(translator(x), translator(x)) is not at_test


def test_sample_strip_and_config(edges_root, tmp_path):
    result = train(tiny(edges_root), tmp_path / "run")
    from PIL import Image

    with Image.open(result.samples[-1]) as im:  # 2 test pairs × (input, output, target)
        assert im.size == (3 * 34 + 2, 2 * 34 + 2)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["trainer"] == "pix2pix"
    assert config["config"] == dataclasses.asdict(tiny(edges_root))


def test_two_folders_and_gray_input(tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for i in range(3):
        img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        (tmp_path / "a").mkdir(exist_ok=True)
        (tmp_path / "b").mkdir(exist_ok=True)
        Image.fromarray(img).save(tmp_path / "a" / f"{i}.png")
        Image.fromarray(255 - img).save(tmp_path / "b" / f"{i}.png")
    cfg = tiny(None, data_root=None, domain_a=str(tmp_path / "a"), domain_b=str(tmp_path / "b"))
    cfg = dataclasses.replace(cfg, input_nc=1)
    result = train(cfg, tmp_path / "run", max_steps=2)
    _, info = load_model(result.models[0])
    assert info.config["input_nc"] == 1 and info.extra["domain_b"] == str(tmp_path / "b")


def test_to_channels():
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    gray = to_channels(x, 1)
    torch.testing.assert_close(gray, 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:])
    assert to_channels(x, 3) is x


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="either data_root"):
        TrainConfig().validate()
    with pytest.raises(ValueError, match="wgangp"):
        TrainConfig(data_root="x", gan_mode="wgangp").validate()
    with pytest.raises(ValueError, match="direction"):
        TrainConfig(data_root="x", direction="a2b").validate()
