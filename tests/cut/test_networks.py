"""The CUT generator layout (anti-aliased ResNet), its blur-pool layers and encoder features."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from transfigure.checkpoint import load_model, save_model
from transfigure.cut import CUT_NCE_LAYERS, encoder_features, feature_channels
from transfigure.cyclegan.networks import (
    Downsample,
    DropoutAtTest,
    GeneratorConfig,
    Upsample,
    build_generator,
)


def cut_reference_keys(ngf: int = 64, n_blocks: int = 9, nc: int = 3) -> dict[str, tuple]:
    """The CUT reference ResnetGenerator(nc, nc, ngf, instance norm, n_blocks) state dict,
    written out from its layer list: pad, conv7, norm, relu, 2 × (conv3 s1, norm, relu,
    Downsample), blocks, 2 × (Upsample, conv3, norm, relu), pad, conv7, tanh."""
    keys: dict[str, tuple] = {
        "model.1.weight": (ngf, nc, 7, 7),
        "model.1.bias": (ngf,),
        "model.4.weight": (2 * ngf, ngf, 3, 3),
        "model.4.bias": (2 * ngf,),
        "model.7.filt": (2 * ngf, 1, 3, 3),
        "model.8.weight": (4 * ngf, 2 * ngf, 3, 3),
        "model.8.bias": (4 * ngf,),
        "model.11.filt": (4 * ngf, 1, 3, 3),
    }
    for b in range(12, 12 + n_blocks):
        for c in (1, 5):
            keys[f"model.{b}.conv_block.{c}.weight"] = (4 * ngf, 4 * ngf, 3, 3)
            keys[f"model.{b}.conv_block.{c}.bias"] = (4 * ngf,)
    i = 12 + n_blocks
    keys[f"model.{i}.filt"] = (4 * ngf, 1, 4, 4)
    keys[f"model.{i + 1}.weight"] = (2 * ngf, 4 * ngf, 3, 3)
    keys[f"model.{i + 1}.bias"] = (2 * ngf,)
    keys[f"model.{i + 4}.filt"] = (2 * ngf, 1, 4, 4)
    keys[f"model.{i + 5}.weight"] = (ngf, 2 * ngf, 3, 3)
    keys[f"model.{i + 5}.bias"] = (ngf,)
    keys[f"model.{i + 9}.weight"] = (nc, ngf, 7, 7)
    keys[f"model.{i + 9}.bias"] = (nc,)
    return keys


@pytest.mark.parametrize("n_blocks", [9, 6])
def test_antialiased_generator_has_the_cut_reference_layout(n_blocks):
    net_g = f"resnet_{n_blocks}blocks"
    net = build_generator(GeneratorConfig(netG=net_g, antialias=True))
    found = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert found == cut_reference_keys(n_blocks=n_blocks)
    assert list(found) == list(cut_reference_keys(n_blocks=n_blocks))  # same order


def test_antialiased_generator_shapes():
    net = build_generator(GeneratorConfig(ngf=8, antialias=True))
    for size in (16, 32, 36):
        assert net(torch.zeros(2, 3, size, size)).shape == (2, 3, size, size)


def test_blur_filters_match_the_reference():
    down = Downsample(2)
    up = Upsample(2)
    row3 = torch.tensor([1.0, 2.0, 1.0])
    row4 = torch.tensor([1.0, 3.0, 3.0, 1.0])
    torch.testing.assert_close(down.filt[0, 0], torch.outer(row3, row3) / 16)
    torch.testing.assert_close(up.filt[1, 0], torch.outer(row4, row4) / 16)  # ×4 / 64
    x = torch.randn(1, 2, 8, 8)
    # the reference: reflect-pad 1, depthwise conv stride 2
    ref = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), down.filt, stride=2, groups=2)
    torch.testing.assert_close(down(x), ref)
    assert up(x).shape == (1, 2, 16, 16)
    # a constant image stays constant away from the borders (the filters keep the mean)
    const = torch.full((1, 2, 8, 8), 0.5)
    torch.testing.assert_close(down(const), torch.full((1, 2, 4, 4), 0.5))
    torch.testing.assert_close(up(const), torch.full((1, 2, 16, 16), 0.5))


def test_antialias_model_file_round_trip(tmp_path):
    cfg = GeneratorConfig(ngf=4, antialias=True)
    net = build_generator(cfg, generator=torch.Generator().manual_seed(0))
    path = save_model(net, tmp_path / "g.safetensors", kind="cyclegan-generator", config=cfg)
    loaded, info = load_model(path)
    assert info.config["antialias"] is True
    x = torch.randn(1, 3, 16, 16)
    torch.testing.assert_close(loaded.eval()(x), net.eval()(x))


def test_antialias_is_resnet_only_and_excludes_resize_conv():
    with pytest.raises(ValueError, match="resnet"):
        build_generator(GeneratorConfig(netG="unet_128", antialias=True))
    with pytest.raises(ValueError, match="own upsampling"):
        build_generator(GeneratorConfig(antialias=True, upsample="resize_conv"))


def test_encoder_features_at_the_paper_layers():
    net = build_generator(GeneratorConfig(ngf=4, antialias=True))
    x = torch.randn(2, 3, 32, 32)
    feats = encoder_features(net, x, CUT_NCE_LAYERS)
    # padded input, conv after stage 1 (full res), conv after stage 2 (half res), blocks 1 and 5
    assert [tuple(f.shape) for f in feats] == [
        (2, 3, 38, 38),
        (2, 8, 32, 32),
        (2, 16, 16, 16),
        (2, 16, 8, 8),
        (2, 16, 8, 8),
    ]
    assert feature_channels(net, CUT_NCE_LAYERS, 3) == [3, 8, 16, 16, 16]
    torch.testing.assert_close(feats[0], F.pad(x, (3, 3, 3, 3), mode="reflect"))
    with pytest.raises(ValueError, match="increasing"):
        encoder_features(net, x, (4, 0))
    with pytest.raises(ValueError, match="0..31"):
        encoder_features(net, x, (0, 40))


def test_dropout_at_test_stays_on_in_eval():
    cfg = GeneratorConfig(netG="unet_128", ngf=4, norm="batch", use_dropout=True)
    plain = build_generator(cfg)
    kept = build_generator(GeneratorConfig(**{**cfg.__dict__, "dropout_at_test": True}))
    assert not any(isinstance(m, DropoutAtTest) for m in plain.modules())
    assert sum(isinstance(m, DropoutAtTest) for m in kept.modules()) == 2  # 7 - 5 levels
    assert plain.state_dict().keys() == kept.state_dict().keys()
    drop = DropoutAtTest(0.5).eval()
    torch.manual_seed(0)
    y = drop(torch.ones(1000))
    assert set(y.unique().tolist()) == {0.0, 2.0}
