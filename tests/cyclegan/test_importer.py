"""Importing generators by structure: re-implementations, wrapped checkpoints, reference U-Nets
and official CUT generators (all built here from their layouts, no downloads)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.cut.test_networks import cut_reference_keys
from transfigure.checkpoint import ModelFileError
from transfigure.cyclegan.importer import convert_generator, find_state_dict
from transfigure.cyclegan.networks import (
    GeneratorConfig,
    NLayerDiscriminator,
    UnetGenerator,
    build_generator,
    init_weights,
)


class _Block(nn.Module):
    """A residual block as re-implementations write it (conv1/norm1/conv2/norm2)."""

    def __init__(self, f: int, norm, bias: bool) -> None:
        super().__init__()
        self.pad1, self.pad2 = nn.ReflectionPad2d(1), nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(f, f, 3, bias=bias)
        self.norm1 = norm(f)
        self.conv2 = nn.Conv2d(f, f, 3, bias=bias)
        self.norm2 = norm(f)

    def forward(self, x):
        y = torch.relu(self.norm1(self.conv1(self.pad1(x))))
        return x + self.norm2(self.conv2(self.pad2(y)))


class ForeignGenerator(nn.Module):
    """The reference ResNet generator's layers, in order, under other names."""

    def __init__(self, ngf=4, n_blocks=9, affine=False, bias=True):
        super().__init__()

        def norm(c):
            return nn.InstanceNorm2d(c, affine=affine)

        self.head = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7, bias=bias), norm(ngf), nn.ReLU()
        )
        self.down = nn.Sequential(
            nn.Conv2d(ngf, 2 * ngf, 3, 2, 1, bias=bias),
            norm(2 * ngf),
            nn.ReLU(),
            nn.Conv2d(2 * ngf, 4 * ngf, 3, 2, 1, bias=bias),
            norm(4 * ngf),
            nn.ReLU(),
        )
        self.res_blocks = nn.Sequential(*[_Block(4 * ngf, norm, bias) for _ in range(n_blocks)])
        self.up = nn.Sequential(
            nn.ConvTranspose2d(4 * ngf, 2 * ngf, 3, 2, 1, output_padding=1, bias=bias),
            norm(2 * ngf),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * ngf, ngf, 3, 2, 1, output_padding=1, bias=bias),
            norm(ngf),
            nn.ReLU(),
        )
        self.tail = nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh())

    def forward(self, x):
        return self.tail(self.up(self.res_blocks(self.down(self.head(x)))))


def _assert_same_output(ours: torch.Tensor, foreign: torch.Tensor) -> None:
    # equal to float rounding: transfigure's instance norm is a group-norm kernel, the foreign
    # network's PyTorch's instance norm, and the residual blocks compound last-bit differences
    torch.testing.assert_close(ours, foreign, atol=1e-4, rtol=1e-4)


def _randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return net.eval()


@pytest.mark.parametrize(
    ("affine", "bias", "norm"),
    [(False, True, "instance"), (True, True, "instance_affine"), (True, False, "instance_affine")],
)
def test_reimplementation_maps_by_structure_and_computes_the_same(affine, bias, norm):
    foreign = _randomised(ForeignGenerator(affine=affine, bias=bias))
    result = convert_generator(foreign.state_dict(), source="foreign.pth")
    assert result.config.netG == "resnet_9blocks"
    assert (result.config.ngf, result.config.norm) == (4, norm)
    assert any("placed by order and shape" in n for n in result.notes)
    assert any(n.startswith("dropout: not visible") for n in result.notes)
    if not bias:
        assert any("without bias" in n and "head.1.weight" in n for n in result.notes)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    _assert_same_output(result.net(x), foreign(x))


def test_wrapped_checkpoint_with_extra_keys():
    foreign = _randomised(ForeignGenerator(n_blocks=6))
    checkpoint = {
        "epoch": 12,
        "netG": {f"module.{k}": v for k, v in foreign.state_dict().items()},
        "netD": NLayerDiscriminator(3, 4).state_dict(),
        "args": {"lr": 2e-4},
    }
    result = convert_generator(checkpoint, source="ckpt.pth")
    assert result.config.netG == "resnet_6blocks"
    assert result.notes[0].startswith("weights taken from the entry 'netG' (ignored: epoch, netD")
    assert "module." in result.notes[1]
    x = torch.rand(1, 3, 16, 16)
    _assert_same_output(result.net(x), foreign(x))


def test_ambiguous_or_empty_wrappers_are_refused():
    g = ForeignGenerator().state_dict()
    with pytest.raises(ModelFileError, match="several state dicts among its entries: a, b"):
        find_state_dict({"a": g, "b": g}, "two.pth")
    with pytest.raises(ModelFileError, match="not a plain state dict"):
        find_state_dict({"epoch": 3}, "odd.pth")
    with pytest.raises(ModelFileError, match="not a state dict"):
        find_state_dict([1, 2], "list.pth")


def test_refusal_names_the_first_tensor_it_cannot_place():
    state = _randomised(ForeignGenerator()).state_dict()
    state["res_blocks.4.conv2.weight"] = torch.zeros(16, 16, 1, 1)  # a 1×1 where a 3×3 belongs
    with pytest.raises(ModelFileError) as info:
        convert_generator(state, source="bad.pth")
    message = str(info.value)
    assert message.startswith("bad.pth: cannot place res_blocks.4.conv2.weight (16, 16, 1, 1)")
    assert "model.14.conv_block.5.weight (16, 16, 3, 3)" in message
    # a leftover layer is named too
    state = _randomised(ForeignGenerator()).state_dict()
    state["extra.weight"] = torch.zeros(3, 3, 1, 1)
    with pytest.raises(
        ModelFileError, match=r"cannot place extra.weight \(3, 3, 1, 1\): .* complete"
    ):
        convert_generator(state, source="more.pth")
    # a discriminator is not a generator
    with pytest.raises(ModelFileError, match=r"cannot place model.0.weight \(4, 3, 4, 4\)"):
        convert_generator(NLayerDiscriminator(3, 4).state_dict(), source="d.pth")


@pytest.mark.parametrize(("num_downs", "net_g"), [(7, "unet_128"), (8, "unet_256")])
def test_reference_unet_imports_strictly(num_downs, net_g):
    ref = init_weights(UnetGenerator(3, 3, num_downs, ngf=4, norm="batch", use_dropout=True))
    ref = _randomised(ref, seed=1)
    with torch.no_grad():  # running statistics as training leaves them
        for m in ref.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    state = ref.state_dict()
    # files saved before PyTorch 0.4.1 have no num_batches_tracked
    old = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    result = convert_generator(old, source="facades.pth")
    cfg = result.config
    assert (cfg.netG, cfg.norm, cfg.ngf, cfg.use_dropout, cfg.dropout_at_test) == (
        net_g,
        "batch",
        4,
        True,
        True,
    )
    assert not any("placed by order" in n for n in result.notes)  # the reference's own names
    assert any("num_batches_tracked" in n for n in result.notes)
    assert set(result.state) == set(state)
    for key, value in old.items():
        torch.testing.assert_close(result.state[key], value)
    plain = build_generator(GeneratorConfig(**{**cfg.__dict__, "dropout_at_test": False}))
    plain.load_state_dict(result.state)
    x = torch.rand(1, 3, 2**num_downs, 2**num_downs)
    torch.testing.assert_close(plain.eval()(x), ref(x))
    # dropout stays on at test time: two runs differ
    assert not torch.equal(result.net(x), result.net(x))
    assert convert_generator(old, dropout_at_test=False).config.dropout_at_test is False


def test_official_cut_generator_layout_imports_strictly():
    keys = cut_reference_keys(ngf=4)
    g = torch.Generator().manual_seed(3)
    truth = build_generator(GeneratorConfig(ngf=4, antialias=True)).state_dict()
    state = {
        k: truth[k].clone() if k.endswith(".filt") else torch.randn(shape, generator=g) * 0.1
        for k, shape in keys.items()
    }
    result = convert_generator(state, source="latest_net_G.pth")
    cfg = result.config
    assert (cfg.netG, cfg.antialias, cfg.norm, cfg.ngf) == ("resnet_9blocks", True, "instance", 4)
    assert any("anti-aliased" in n for n in result.notes)
    assert list(result.state) == list(keys)
    for key in keys:
        torch.testing.assert_close(result.state[key], state[key])


def test_stale_instance_norm_statistics_are_dropped():
    foreign = _randomised(ForeignGenerator())
    state = dict(foreign.state_dict())
    state_with_stats = {}
    for k, v in state.items():
        state_with_stats[k] = v
        if k == "head.1.bias":
            state_with_stats["head.2.running_mean"] = torch.zeros(4)
            state_with_stats["head.2.running_var"] = torch.ones(4)
    result = convert_generator(state_with_stats)
    assert any("stale InstanceNorm" in n for n in result.notes)
    x = torch.rand(1, 3, 16, 16)
    _assert_same_output(result.net(x), foreign(x))
