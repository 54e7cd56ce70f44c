"""CycleGAN networks: the reference parameter layout, output shapes, norms and initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transfigure.checkpoint import load_model, model_kinds, save_model
from transfigure.cyclegan.networks import (
    DiscriminatorConfig,
    GeneratorConfig,
    InstanceNorm2d,
    NLayerDiscriminator,
    PixelDiscriminator,
    ResizeConv2d,
    ResnetGenerator,
    UnetGenerator,
    build_discriminator,
    build_generator,
    init_weights,
)


def _reference_resnet_keys(n_blocks: int) -> dict[str, tuple[int, ...]]:
    """The reference ResnetGenerator(3, 3, 64, InstanceNorm, n_blocks) state_dict, written out
    from its layer list (pad, conv7, norm, relu, 2×(conv s2, norm, relu), blocks, 2×(convT, norm,
    relu), pad, conv7, tanh) — instance norm has no parameters, so only convolutions appear."""
    keys: dict[str, tuple[int, ...]] = {
        "model.1.weight": (64, 3, 7, 7),
        "model.1.bias": (64,),
        "model.4.weight": (128, 64, 3, 3),
        "model.4.bias": (128,),
        "model.7.weight": (256, 128, 3, 3),
        "model.7.bias": (256,),
    }
    for i in range(10, 10 + n_blocks):
        for j in (1, 5):
            keys[f"model.{i}.conv_block.{j}.weight"] = (256, 256, 3, 3)
            keys[f"model.{i}.conv_block.{j}.bias"] = (256,)
    up = 10 + n_blocks
    keys[f"model.{up}.weight"] = (256, 128, 3, 3)  # ConvTranspose2d: (in, out, k, k)
    keys[f"model.{up}.bias"] = (128,)
    keys[f"model.{up + 3}.weight"] = (128, 64, 3, 3)
    keys[f"model.{up + 3}.bias"] = (64,)
    keys[f"model.{up + 7}.weight"] = (3, 64, 7, 7)
    keys[f"model.{up + 7}.bias"] = (3,)
    return keys


@pytest.mark.parametrize("n_blocks", [9, 6])
def test_resnet_generator_matches_reference_layout(n_blocks):
    net = ResnetGenerator(3, 3, ngf=64, norm="instance", n_blocks=n_blocks)
    got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert got == _reference_resnet_keys(n_blocks)
    assert list(got)[0] == "model.1.weight"


def test_resnet_9blocks_parameter_count_and_last_key():
    net = ResnetGenerator()
    assert sum(p.numel() for p in net.parameters()) == 11_378_179
    assert list(net.state_dict())[-1] == "model.26.bias"
    convs = [k for k in net.state_dict() if ".conv_block." in k and k.endswith("weight")]
    assert convs == [f"model.{i}.conv_block.{j}.weight" for i in range(10, 19) for j in (1, 5)]
    norms = [m for m in net.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 1 + 2 + 2 * 9 + 2  # first conv, downsampling, blocks, upsampling
    assert all(not m.affine and not m.track_running_stats for m in norms)


def test_resnet_loads_a_reference_state_dict_strictly():
    ref = {k: torch.randn(s) for k, s in _reference_resnet_keys(9).items()}
    net = ResnetGenerator()
    net.load_state_dict(ref, strict=True)
    torch.testing.assert_close(net.model[26].bias, ref["model.26.bias"])


def test_resize_conv_keeps_indices_and_count():
    a = ResnetGenerator(ngf=8, n_blocks=2)
    b = ResnetGenerator(ngf=8, n_blocks=2, upsample="resize_conv")
    assert list(a.state_dict()) == list(b.state_dict())
    assert sum(p.numel() for p in a.parameters()) == sum(p.numel() for p in b.parameters())
    assert isinstance(b.model[12], ResizeConv2d) and isinstance(b.model[15], ResizeConv2d)
    assert b.model[12].weight.shape == (16, 32, 3, 3)  # (out, in): not reference-compatible
    assert b(torch.zeros(1, 3, 20, 28)).shape == (1, 3, 20, 28)


@pytest.mark.parametrize("upsample", ["transpose", "resize_conv"])
@pytest.mark.parametrize("padding_type", ["reflect", "replicate", "zero"])
def test_resnet_shapes_and_range(upsample, padding_type):
    torch.manual_seed(0)
    net = ResnetGenerator(3, 1, ngf=4, n_blocks=1, padding_type=padding_type, upsample=upsample)
    y = net(torch.randn(2, 3, 16, 24))
    assert y.shape == (2, 1, 16, 24)
    assert y.abs().max() <= 1.0


def test_resnet_dropout_shifts_second_conv():
    net = ResnetGenerator(ngf=4, n_blocks=1, use_dropout=True)
    assert isinstance(net.model[10].conv_block[4], nn.Dropout)
    assert "model.10.conv_block.6.weight" in net.state_dict()


@pytest.mark.parametrize(("num_downs", "size"), [(7, 128), (8, 256)])
def test_unet_shapes(num_downs, size):
    net = UnetGenerator(3, 2, num_downs, ngf=4, norm="instance")
    x = torch.randn(1, 3, size, size)
    assert net(x).shape == (1, 2, size, size)
    # the innermost level works on a 1×1 map
    assert size // 2**num_downs == 1


def test_unet_256_reference_keys():
    net = UnetGenerator(3, 3, 8, ngf=64, norm="batch")
    keys = list(net.state_dict())
    assert keys[0] == "model.model.0.weight"  # outermost down conv, no bias with batch norm
    assert "model.model.0.bias" not in keys
    assert keys[-1] == "model.model.3.bias"  # outermost up conv keeps its bias
    assert "model.model.1.model.2.running_mean" in keys
    assert sum(p.numel() for p in net.parameters()) == 54_413_955


@pytest.mark.parametrize(
    ("n_layers", "size", "out"), [(3, 256, 30), (3, 64, 6), (1, 64, 30), (2, 64, 14)]
)
def test_patchgan_output_shape(n_layers, size, out):
    net = NLayerDiscriminator(3, ndf=4, n_layers=n_layers)
    assert net(torch.randn(2, 3, size, size)).shape == (2, 1, out, out)


def test_patchgan_70_receptive_field():
    """One output of the 3-layer PatchGAN sees a 70×70 input patch."""
    net = NLayerDiscriminator(1, ndf=2, n_layers=3, norm="none")
    x = torch.zeros(1, 1, 128, 128, requires_grad=True)
    net(x)[0, 0, 5, 5].backward()
    rows = x.grad[0, 0].abs().sum(1).nonzero()
    cols = x.grad[0, 0].abs().sum(0).nonzero()
    assert int(rows.max() - rows.min() + 1) == 70
    assert int(cols.max() - cols.min() + 1) == 70


def test_pixel_discriminator_shape():
    net = PixelDiscriminator(3, ndf=4)
    assert net(torch.randn(2, 3, 9, 11)).shape == (2, 1, 9, 11)


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_instance_norm_equals_torchs(affine, memory_format):
    torch.manual_seed(0)
    ours = InstanceNorm2d(5, affine=affine)
    theirs = nn.InstanceNorm2d(5, affine=affine)
    if affine:
        with torch.no_grad():
            ours.weight.uniform_(0.5, 2.0)
            ours.bias.uniform_(-1.0, 1.0)
        theirs.load_state_dict(ours.state_dict())
    assert ours.state_dict().keys() == theirs.state_dict().keys()
    # per-image, per-channel offsets and scales that a batch-wide norm would not remove
    x = torch.randn(3, 5, 7, 9) * (0.5 + torch.rand(3, 5, 1, 1)) + torch.randn(3, 5, 1, 1) * 3
    x = x.contiguous(memory_format=memory_format)
    got = ours(x)
    torch.testing.assert_close(got, theirs(x.contiguous()), atol=1e-5, rtol=1e-5)
    if not affine:
        assert float(got.mean((2, 3)).abs().max()) < 1e-5
    # unbatched input falls back to PyTorch's layer
    torch.testing.assert_close(ours(x[0]), theirs(x[0].contiguous()), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_instance_norm_is_as_accurate_as_torchs_on_a_large_mean(memory_format):
    # a channel at 100 ± 0.01: a variance taken as E[x²] − E[x]² in float32 loses every digit
    x = 100 + 0.01 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    exact = nn.InstanceNorm2d(3).double()(x.double()).float()
    torch_error = (nn.InstanceNorm2d(3)(x) - exact).abs().max()
    x = x.contiguous(memory_format=memory_format)
    assert (InstanceNorm2d(3)(x) - exact).abs().max() <= 2 * torch_error + 1e-4


def test_instance_norm_gradients():
    norm = InstanceNorm2d(2, affine=True).double()
    x = torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(norm, (x,))


def test_instance_norm_channel_mismatch_behaves_as_torchs():
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="num_features"):  # a scale and shift for 4 channels
        InstanceNorm2d(4, affine=True)(x)
    with pytest.warns(UserWarning, match="num_features"):  # without them PyTorch only warns
        torch.testing.assert_close(InstanceNorm2d(4)(x), nn.InstanceNorm2d(3)(x))


@pytest.mark.parametrize("norm", ["instance", "batch", "none"])
def test_norms(norm):
    net = ResnetGenerator(ngf=4, n_blocks=1, norm=norm)
    kinds = {type(m) for m in net.modules()}
    expected = {"instance": InstanceNorm2d, "batch": nn.BatchNorm2d, "none": None}[norm]
    if expected is None:
        assert not kinds & {InstanceNorm2d, nn.BatchNorm2d}
        assert net.model[1].bias is not None  # departure from the reference: keep the bias
    else:
        assert expected in kinds
        assert (net.model[4].bias is None) == (norm == "batch")
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 3, 8, 8)
    disc = NLayerDiscriminator(3, ndf=4, norm=norm)
    assert disc(torch.randn(2, 3, 32, 32)).shape == (2, 1, 2, 2)


def test_bad_arguments():
    with pytest.raises(ValueError, match="norm"):
        ResnetGenerator(norm="group")
    with pytest.raises(ValueError, match="upsample"):
        ResnetGenerator(upsample="pixelshuffle")
    with pytest.raises(ValueError, match="padding_type"):
        ResnetGenerator(padding_type="circular")
    with pytest.raises(ValueError, match="init_type"):
        init_weights(nn.Conv2d(1, 1, 1), "uniform")
    with pytest.raises(ValueError, match="netG"):
        build_generator(GeneratorConfig(netG="resnet_3blocks"))
    with pytest.raises(ValueError, match="resnet"):
        build_generator(GeneratorConfig(netG="unet_128", upsample="resize_conv"))
    with pytest.raises(ValueError, match="netD"):
        build_discriminator(DiscriminatorConfig(netD="huge"))


@pytest.mark.parametrize("init_type", ["normal", "xavier", "kaiming", "orthogonal"])
def test_init_types(init_type):
    net = nn.Sequential(nn.Conv2d(64, 64, 3), nn.BatchNorm2d(64), nn.Linear(64, 32))
    init_weights(net, init_type, 0.02, generator=torch.Generator().manual_seed(0))
    w = net[0].weight
    fan_in = 64 * 9
    expected_std = {
        "normal": 0.02,
        "xavier": 0.02 * (2.0 / (fan_in + 64 * 9)) ** 0.5,
        "kaiming": (2.0 / fan_in) ** 0.5,
        "orthogonal": None,
    }[init_type]
    if expected_std is not None:
        assert w.std().item() == pytest.approx(expected_std, rel=0.05)
    else:
        flat = w.reshape(64, -1)
        torch.testing.assert_close(flat @ flat.T, 0.02**2 * torch.eye(64), atol=1e-6, rtol=0)
    assert torch.count_nonzero(net[0].bias) == 0
    assert torch.count_nonzero(net[2].bias) == 0
    assert net[1].weight.mean().item() == pytest.approx(1.0, abs=0.01)
    assert net[1].weight.std().item() == pytest.approx(0.02, rel=0.3)


def test_init_is_deterministic_under_a_generator():
    cfg = GeneratorConfig(ngf=4, netG="resnet_6blocks")
    a = build_generator(cfg, generator=torch.Generator().manual_seed(3))
    b = build_generator(cfg, generator=torch.Generator().manual_seed(3))
    c = build_generator(cfg, generator=torch.Generator().manual_seed(4))
    for (ka, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(va, vb, msg=ka)
    assert not torch.equal(a.model[1].weight, c.model[1].weight)


@pytest.mark.parametrize(
    ("kind", "cfg", "build"),
    [
        ("cyclegan-generator", GeneratorConfig(netG="resnet_6blocks", ngf=4), build_generator),
        (
            "cyclegan-generator",
            GeneratorConfig(netG="unet_128", ngf=4, input_nc=1, output_nc=1, norm="batch"),
            build_generator,
        ),
        ("cyclegan-discriminator", DiscriminatorConfig(netD="pixel", ndf=4), build_discriminator),
    ],
)
def test_model_file_round_trip(tmp_path, kind, cfg, build):
    assert kind in model_kinds()
    net = build(cfg).eval()
    path = save_model(net, tmp_path / "m.safetensors", kind=kind, config=cfg, extra={"d": "a2b"})
    loaded, info = load_model(path, kind=kind)
    assert info.config == __import__("dataclasses").asdict(cfg)
    assert info.extra == {"d": "a2b"}
    x = torch.randn(1, cfg.input_nc, 128, 128)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), net(x))
