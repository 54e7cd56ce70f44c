"""Winograd F(4×4, 3×3) convolution: exact against PyTorch's, differentiable, used only where it
pays off."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from transfigure import winograd
from transfigure.cyclegan.networks import ResnetGenerator
from transfigure.winograd import Conv3x3, pays_off, winograd_conv3x3


@pytest.mark.parametrize(
    ("n", "c", "k", "h", "w"),
    [(1, 3, 5, 6, 6), (2, 4, 3, 10, 13), (1, 2, 2, 3, 3), (3, 5, 4, 9, 8), (1, 1, 1, 18, 7)],
)
def test_equals_direct_convolution_in_float64(n: int, c: int, k: int, h: int, w: int) -> None:
    # every size, including ones that are not a multiple of the 4×4 tile
    gen = torch.Generator().manual_seed(n * 100 + h)
    x = torch.randn(n, c, h, w, generator=gen, dtype=torch.float64)
    weight = torch.randn(k, c, 3, 3, generator=gen, dtype=torch.float64)
    bias = torch.randn(k, generator=gen, dtype=torch.float64)
    for b in (bias, None):
        torch.testing.assert_close(
            winograd_conv3x3(x, weight, b), F.conv2d(x, weight, b), rtol=1e-12, atol=1e-12
        )


def test_float32_rounding_is_small() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1, 256, 34, 34, generator=gen)
    weight = torch.randn(256, 256, 3, 3, generator=gen) / 48
    exact = F.conv2d(x.double(), weight.double())
    err = (winograd_conv3x3(x, weight).double() - exact).abs().max() / exact.abs().max()
    assert err < 5e-5


def test_gradients_pass_gradcheck() -> None:
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 7, 9, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(4, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(winograd_conv3x3, (x, weight, bias))
    assert torch.autograd.gradcheck(lambda a, b: winograd_conv3x3(a, b), (x, weight))


def test_only_the_needed_gradients_are_computed() -> None:
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    weight = torch.randn(3, 2, 3, 3)  # frozen, as in style transfer's VGG
    winograd_conv3x3(x, weight).sum().backward()
    assert x.grad is not None and weight.grad is None


def test_second_derivatives_pass_gradgradcheck() -> None:
    # a gradient penalty (WGAN-GP, R1) differentiates the backward pass itself
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(1, 2, 6, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(winograd_conv3x3, (x, weight, bias))


@pytest.mark.parametrize(
    ("x_shape", "w_shape"), [((2, 3, 8), (4, 3, 3, 3)), ((1, 3, 8, 8), (4, 2, 3, 3))]
)
def test_bad_shapes_are_refused(x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected input"):
        winograd_conv3x3(torch.zeros(x_shape), torch.zeros(w_shape))


def test_input_smaller_than_the_kernel_is_refused() -> None:
    with pytest.raises(ValueError, match="smaller than the 3×3 kernel"):
        winograd_conv3x3(torch.zeros(1, 2, 2, 5), torch.zeros(3, 2, 3, 3))


def test_pays_off_only_for_large_float32_cpu_layers() -> None:
    big = torch.zeros(1, 256, 34, 34)
    assert pays_off(big, 256)
    assert pays_off(torch.zeros(1, 256, 32, 32), 256, padding=(1, 1))
    assert not pays_off(big, 128)  # 128 output channels: only from 64×64 on
    assert not pays_off(torch.zeros(1, 128, 34, 34), 256)  # the same for input channels
    assert pays_off(torch.zeros(1, 128, 66, 66), 128)
    assert not pays_off(torch.zeros(1, 64, 258, 258), 64)  # 64 channels: never
    assert not pays_off(torch.zeros(1, 256, 18, 18), 256)  # 16×16: too few tiles
    assert pays_off(torch.zeros(4, 256, 18, 18), 256)  # ... unless the batch brings them
    assert not pays_off(big.double(), 256)
    assert not pays_off(big.bfloat16(), 256)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not pays_off(big, 256)  # bf16 autocast keeps the direct kernels


def _pair(padding: int, padding_mode: str) -> tuple[Conv3x3, nn.Conv2d]:
    torch.manual_seed(0)
    fast = Conv3x3(256, 256, padding=padding, padding_mode=padding_mode)
    plain = nn.Conv2d(256, 256, 3, padding=padding, padding_mode=padding_mode)
    plain.load_state_dict(fast.state_dict())
    return fast, plain


@pytest.mark.parametrize(("padding", "padding_mode"), [(0, "zeros"), (1, "zeros"), (1, "reflect")])
def test_conv3x3_matches_conv2d(padding: int, padding_mode: str) -> None:
    fast, plain = _pair(padding, padding_mode)
    x = torch.randn(1, 256, 35 - 2 * padding, 34 - 2 * padding, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    assert pays_off(x, 256, (padding, padding))
    out, expected = fast(x), plain(x2)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    with winograd.enabled(False):
        assert torch.equal(fast(x), expected)  # switched off: PyTorch's own kernel
    (out * expected.detach()).sum().backward()
    (expected * expected.detach()).sum().backward()
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(fast.weight.grad, plain.weight.grad, rtol=1e-3, atol=1e-2)
    torch.testing.assert_close(fast.bias.grad, plain.bias.grad, rtol=1e-4, atol=1e-3)


def test_conv3x3_takes_the_fast_path_only_where_it_pays(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []
    original = winograd._WinogradConv.apply

    def spy(x: torch.Tensor, *args: object) -> torch.Tensor:
        calls.append(tuple(x.shape))
        return original(x, *args)

    monkeypatch.setattr(winograd._WinogradConv, "apply", spy)
    fast, _ = _pair(1, "zeros")
    fast(torch.randn(1, 256, 32, 32))
    fast(torch.randn(1, 256, 8, 8))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert fast(torch.randn(1, 256, 32, 32)).dtype == torch.bfloat16
    assert calls == [(1, 256, 34, 34)]


def test_conv3x3_is_a_conv2d_with_the_same_state_dict() -> None:
    fast = Conv3x3(4, 5, padding=1, bias=False)
    assert isinstance(fast, nn.Conv2d)
    plain = nn.Conv2d(4, 5, 3, padding=1, bias=False)
    assert fast.state_dict().keys() == plain.state_dict().keys()
    fast.load_state_dict(plain.state_dict())


@pytest.mark.parametrize(("name", "value"), [("stride", 2), ("kernel_size", 5), ("groups", 2)])
def test_conv3x3_refuses_other_geometries(name: str, value: int) -> None:
    with pytest.raises(ValueError, match=f"needs {name}="):
        Conv3x3(4, 4, **{name: value})


@pytest.mark.parametrize("antialias", [False, True])
def test_resnet_generator_output_unchanged_to_rounding(antialias: bool) -> None:
    # 128 px puts the 256-channel blocks at 32×32, where the Winograd path is taken
    torch.manual_seed(0)
    net = ResnetGenerator(n_blocks=2, antialias=antialias).eval()
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        fast = net(x)
        with winograd.enabled(False):
            plain = net(x)
    assert not torch.equal(fast, plain)  # the fast path ran ...
    assert (fast - plain).abs().max() < 1e-4  # ... and changed nothing an image can show


def test_environment_switches_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    assert winograd.is_enabled()
    monkeypatch.setenv("TRANSFIGURE_WINOGRAD", "0")
    assert not winograd.is_enabled()
    with winograd.enabled(True):
        assert winograd.is_enabled()  # the block's choice wins
    assert not winograd.is_enabled()
