"""Padding, tile layout, blending windows and shared normalisation statistics."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from transfigure.cyclegan.networks import ResnetGenerator, init_weights
from transfigure.cyclegan.tiling import (
    blend_window,
    crop_to,
    pad_to_multiple,
    shared_norm_statistics,
    tile_starts,
    tiled_apply,
)
from transfigure.cyclegan.translate import translate_tensor


def local_net(seed: int = 0) -> nn.Module:
    """Fully convolutional, no normalisation, receptive radius 2 (two 3×3 convolutions)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1), nn.Tanh()
    ).eval()


class SmoothNormNet(nn.Module):
    """Blur → InstanceNorm → 1×1 mix → tanh: smooth outputs, so any seam is a visible step."""

    def __init__(self) -> None:
        super().__init__()
        self.blur = nn.Conv2d(3, 3, 3, padding=1, groups=3, bias=False)
        self.norm = nn.InstanceNorm2d(3)
        self.mix = nn.Conv2d(3, 3, 1)
        with torch.no_grad():
            self.blur.weight.fill_(1 / 9)
            self.mix.weight.copy_(
                torch.tensor([[0.9, 0.2, 0.1], [0.1, 0.8, 0.3], [0.2, 0.1, 0.7]])[..., None, None]
            )
            self.mix.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.mix(self.norm(self.blur(x))))


def smooth_image(h: int, w: int) -> torch.Tensor:
    """(1, 3, h, w) in [-1, 1]: slow sinusoids with a left-to-right brightness ramp."""
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return (
        0.8
        * torch.stack(
            [
                torch.sin(6 * xx + 2 * yy) * xx,
                torch.cos(5 * yy - 3 * xx),
                torch.sin(8 * xx * yy) + xx - 0.5,
            ]
        )[None].clamp(-1.25, 1.25)
        / 1.25
    )


def seam_ratio(y: torch.Tensor, boundaries: list[int]) -> float:
    """Largest mean |horizontal step| at the given columns over the median step elsewhere."""
    steps = (y[..., 1:] - y[..., :-1]).abs().mean(dim=(0, 1, 2))  # (W - 1,)
    at = steps[[b - 1 for b in boundaries]]
    return float(at.max() / steps.median())


# ---------------------------------------------------------------------------------- padding


@pytest.mark.parametrize("size", [(37, 53), (1, 1), (2, 3), (16, 16), (64, 30)])
def test_pad_to_multiple_shapes_and_round_trip(size):
    x = torch.rand(2, 3, *size)
    padded, original = pad_to_multiple(x, 4, min_size=16)
    assert original == size
    hp, wp = padded.shape[-2:]
    assert hp % 4 == 0 and wp % 4 == 0
    assert hp >= max(size[0], 16) and wp >= max(size[1], 16)
    assert hp - max(size[0], 16) < 4 and wp - max(size[1], 16) < 4
    torch.testing.assert_close(crop_to(padded, original), x)


def test_pad_reflects_content():
    x = torch.arange(6.0).view(1, 1, 1, 6).expand(1, 1, 4, 6)
    padded, _ = pad_to_multiple(x, 4, min_size=4)
    assert padded.shape[-1] == 8
    torch.testing.assert_close(padded[0, 0, 0, 6:], torch.tensor([4.0, 3.0]))  # reflection


# ---------------------------------------------------------------------------------- layout


@pytest.mark.parametrize(
    ("length", "tile", "overlap"),
    [
        (1000, 512, 128),
        (3000, 512, 128),
        (4000, 512, 128),
        (200, 64, 16),
        (68, 64, 16),
        (64, 64, 16),
    ],
)
def test_tile_starts_cover_with_overlap(length, tile, overlap):
    starts = tile_starts(length, tile, overlap)
    assert starts[0] == 0
    assert starts[-1] + min(tile, length) == length
    assert all(s % 4 == 0 for s in starts)
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(0 < g <= tile - overlap for g in gaps)  # every pair overlaps by >= overlap


def test_tile_starts_known_values():
    assert tile_starts(1000, 512, 128) == [0, 244, 488]
    assert tile_starts(500, 512, 128) == [0]


def test_tile_starts_rejects_bad_overlap():
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 32, 32)


def test_blend_window_borders_and_complementary_ramps():
    w = blend_window(32, 32, 16, top=False, bottom=True, left=False, right=False)
    torch.testing.assert_close(w[:, 0], torch.cat([torch.ones(20), w[20:28, 0], torch.zeros(4)]))
    torch.testing.assert_close(w[0], torch.ones(32))  # no interior edge across the columns
    assert w[:16].min() == 1 and w[-4:].max() == 0
    # Two neighbours overlapping by exactly `overlap`: their weights sum to 1 everywhere.
    a = blend_window(1, 32, 16, top=False, bottom=False, left=False, right=True)[0]
    b = blend_window(1, 32, 16, top=False, bottom=False, left=True, right=False)[0]
    total = torch.zeros(48)
    total[:32] += a
    total[16:] += b
    torch.testing.assert_close(total, torch.ones(48))


# ---------------------------------------------------------------------------------- tiled_apply


def test_tiled_identity_is_exact():
    x = torch.rand(2, 3, 100, 136)
    torch.testing.assert_close(tiled_apply(lambda t: t, x, tile=32, overlap=16), x)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_tiled_local_net_matches_untiled(batch_size):
    # Border effects of this net reach 2 px into a tile, less than the 4 px zero-weight margin
    # of overlap 16: tiles reproduce the untiled result exactly, edges included.
    net = local_net()
    x = torch.rand(2, 3, 100, 136) * 2 - 1
    with torch.no_grad():
        full = net(x)
        tiled = tiled_apply(net, x, tile=32, overlap=16, batch_size=batch_size)
    torch.testing.assert_close(tiled, full, atol=1e-5, rtol=1e-5)


def test_tiled_wide_net_matches_away_from_tile_borders():
    # Receptive radius 6 > the 2 px margin of overlap 8: tiles differ from the whole image only
    # close to where a tile was cut, and by little.
    torch.manual_seed(1)
    layers: list[nn.Module] = []
    for i in range(6):
        layers += [nn.Conv2d(3 if i == 0 else 8, 8 if i < 5 else 3, 3, padding=1), nn.Tanh()]
    net = nn.Sequential(*layers).eval()
    x = torch.rand(1, 3, 96, 96) * 2 - 1
    with torch.no_grad():
        full = net(x)
        tiled = tiled_apply(net, x, tile=48, overlap=8)
    assert (tiled - full).abs().mean() < 0.02 * full.abs().mean()
    # Columns far from every tile boundary of this layout are exact.
    starts = tile_starts(96, 48, 8)
    cuts = set(starts[1:]) | {s + 48 for s in starts[:-1]}
    far = [c for c in range(96) if all(abs(c - k) > 8 for k in cuts)]
    torch.testing.assert_close(tiled[..., far][..., far, :], full[..., far][..., far, :])


def test_tiled_rejects_bad_sizes():
    with pytest.raises(ValueError, match="multiples of 4"):
        tiled_apply(lambda t: t, torch.rand(1, 3, 64, 64), tile=30, overlap=8)
    with pytest.raises(ValueError, match="size-preserving"):
        tiled_apply(lambda t: t[..., :-1], torch.rand(1, 3, 64, 64), tile=32, overlap=8)


# ---------------------------------------------------------------------------------- statistics


def test_shared_statistics_of_the_image_itself_change_nothing_and_are_restored():
    net = init_weights(
        ResnetGenerator(3, 3, ngf=4, n_blocks=6), generator=torch.Generator().manual_seed(0)
    ).eval()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = net(x)
        with shared_norm_statistics(net, x) as n_layers:
            inside = net(x)
            other = net(torch.zeros_like(x))
        after = net(x)
    assert n_layers == 3 + 2 * 6 + 2
    torch.testing.assert_close(inside, expected, atol=1e-5, rtol=1e-4)
    assert other.std() > 0  # zeros normalised with x's statistics are not zeros
    torch.testing.assert_close(after, expected)
    assert not any("forward" in vars(m) for m in net.modules())


def test_no_seams_with_shared_statistics_and_blending():
    net = SmoothNormNet().eval()
    x = smooth_image(96, 192)
    tile, overlap = 64, 16
    with torch.no_grad():
        full = net(x)
        naive = tiled_apply(net, x, tile=tile, overlap=0)  # per-tile statistics, hard cuts
        ours = translate_tensor(net, x, tile=tile, overlap=overlap)
    naive_cuts = tile_starts(192, tile, 0)[1:]
    starts = tile_starts(192, tile, overlap)
    our_cuts = starts[1:] + [s + tile for s in starts[:-1]]
    # The metric sees seams where they exist...
    assert seam_ratio(naive, naive_cuts) > 3
    # ...and finds none in the blended result: steps at the cuts are like those elsewhere.
    assert seam_ratio(ours, our_cuts) < 1.5
    assert seam_ratio(full, our_cuts) < 1.5
    assert (ours - full).abs().mean() < 0.5 * (naive - full).abs().mean()


def test_tiled_resnet_is_closer_to_untiled_than_per_tile_statistics():
    net = init_weights(
        ResnetGenerator(3, 3, ngf=4, n_blocks=6), generator=torch.Generator().manual_seed(0)
    ).eval()
    x = smooth_image(128, 128)
    with torch.no_grad():
        full = net(x)
        naive = tiled_apply(net, x, tile=64, overlap=16)  # blended, but per-tile statistics
        ours = translate_tensor(net, x, tile=64, overlap=16)
    assert ours.shape == full.shape
    assert (ours - full).abs().mean() < 0.7 * (naive - full).abs().mean()


def test_tiles_report_progress_within_one_image():
    events: list = []
    x = torch.rand(1, 3, 96, 160)
    out = tiled_apply(lambda t: t * 2, x, tile=64, overlap=16, callback=events.append, task="big")
    torch.testing.assert_close(out, x * 2)
    starts = len(tile_starts(96, 64, 16, 4)) * len(tile_starts(160, 64, 16, 4))
    assert [e.completed for e in events] == list(range(1, starts + 1))
    assert all(e.total == starts and e.unit == "tile" and e.task == "big" for e in events)
    assert events[-1].done and not any(e.done for e in events[:-1])
