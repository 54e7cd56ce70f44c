"""Seeded sampling, label grids, latent walks, nearest neighbours; the run-folder plots."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from transfigure.gan import sampling as S
from transfigure.gan.networks import Generator, GeneratorConfig
from transfigure.gan.step import GAN_PANELS
from transfigure.plots import plot_metrics, progress_gif, read_metrics


@pytest.fixture
def g():
    torch.manual_seed(0)
    return Generator(GeneratorConfig(latent_dim=8, image_size=16, width=4)).eval()


@pytest.fixture
def cg():
    torch.manual_seed(0)
    return Generator(GeneratorConfig(latent_dim=8, image_size=16, width=4, n_classes=3)).eval()


def test_latents_are_seeded_and_prefix_stable():
    a = S.latents(20, 100, seed=4)
    torch.testing.assert_close(S.latents(20, 100, seed=4), a, rtol=0, atol=0)
    torch.testing.assert_close(S.latents(3, 100, seed=4), a[:3], rtol=0, atol=0)
    assert not torch.equal(S.latents(3, 100, seed=5), a[:3])
    assert a.mean().item() == pytest.approx(0.0, abs=0.1) and a.std().item() == pytest.approx(
        1.0, abs=0.1)  # fmt: skip


def test_sample_images(g, cg):
    x, labels = S.sample_images(g, 5, seed=1)
    assert x.shape == (5, 3, 16, 16) and labels is None
    y, _ = S.sample_images(g, 5, seed=1, batch_size=2)  # batching does not change the result
    torch.testing.assert_close(x, y)
    _, labels = S.sample_images(cg, 5)
    assert labels.tolist() == [0, 1, 2, 0, 1]
    _, labels = S.sample_images(cg, 2, label=2)
    assert labels.tolist() == [2, 2]
    with pytest.raises(ValueError, match="unconditional"):
        S.sample_images(g, 2, label=0)
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        S.sample_images(cg, 2, label=3)


def test_label_grid_shares_latents_across_rows(cg):
    images, labels = S.label_grid(cg, 4, seed=2)
    assert images.shape == (12, 3, 16, 16)
    assert labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    single, _ = S.sample_images(cg, 4, label=1, seed=2)  # row 1 = those latents, label 1
    torch.testing.assert_close(images[4:8], single)
    with pytest.raises(ValueError, match="conditional"):
        S.label_grid(Generator(GeneratorConfig(image_size=16, width=2)), 2)


def test_slerp_endpoints_and_norm():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 2.0])
    path = S.slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
    torch.testing.assert_close(path[0], a)
    torch.testing.assert_close(path[2], b)
    # halfway on the arc between orthogonal vectors: sin(π/4)/sin(π/2) of each
    torch.testing.assert_close(path[1], torch.tensor([2**-0.5, 2 * 2**-0.5]))
    same = S.slerp(a, a, torch.tensor([0.3]))
    torch.testing.assert_close(same[0], a)


def test_interpolate_ends_at_the_seeds(g):
    walk = S.interpolate(g, 3, 8, steps=4)
    assert walk.shape == (4, 3, 16, 16)
    start = S.generate(g, S.latents(1, 8, seed=3))
    end = S.generate(g, S.latents(1, 8, seed=8))
    torch.testing.assert_close(walk[0], start[0])
    torch.testing.assert_close(walk[-1], end[0])
    with pytest.raises(ValueError, match="steps"):
        S.interpolate(g, 0, 1, steps=1)


def test_nearest_neighbours_by_hand():
    ref = torch.stack([torch.full((1, 2, 2), v) for v in (0.0, 0.5, -1.0, 0.9)])
    samples = torch.stack([torch.full((1, 2, 2), 0.8), torch.full((1, 2, 2), -0.6)])
    batches = [ref[:3], ref[3:]]  # streamed in two batches
    d, i = S.nearest_neighbours(samples, batches, k=2)
    assert i.tolist() == [[3, 1], [2, 0]]
    torch.testing.assert_close(d, torch.tensor([[0.1, 0.3], [0.4, 0.6]]))
    d1, i1 = S.nearest_neighbours(samples, [ref[:1]], k=3)  # fewer references than k
    assert i1.shape == (2, 1)
    grid = S.nearest_grid(samples, [ref[[3, 1]], ref[[2, 0]]])
    assert grid.shape == (6, 1, 2, 2)
    torch.testing.assert_close(grid[1], ref[3])


def test_resolve_label():
    classes = ["circle", "square"]
    assert S.resolve_label("square", classes, 2) == 1
    assert S.resolve_label("0", classes, 2) == 0
    with pytest.raises(ValueError, match="circle, square"):
        S.resolve_label("hexagon", classes, 2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        S.resolve_label("2", classes, 2)


def _metrics(path, critic):
    rows = []
    for step in range(1, 7):
        row = {
            "epoch": 1 + step // 4,
            "step": step,
            "loss_d": 1.0 / step,
            "loss_g": 0.5 * step,
            "end_of_epoch": step % 3 == 0,
        }
        if critic:
            row.update(wasserstein=0.1 * step, gp=0.01)
        rows.append(json.dumps(row))
    path.write_text("\n".join(rows) + "\n{broken line\n")


@pytest.mark.parametrize("critic", [False, True])
def test_plot_losses(tmp_path, critic):
    _metrics(tmp_path / "m.jsonl", critic)
    assert len(read_metrics(tmp_path / "m.jsonl")) == 6  # the cut line is skipped
    out = plot_metrics(tmp_path / "m.jsonl", tmp_path / "losses.png", GAN_PANELS)
    with Image.open(out) as im:
        assert im.size == (800, 600 if critic else 350)
    assert plot_metrics(tmp_path / "none.jsonl", tmp_path / "x.png", GAN_PANELS) is None
    assert not (tmp_path / "x.png").exists()


def test_progress_gif(tmp_path):
    frames = []
    for i in range(5):
        frames.append(tmp_path / f"epoch_{i:03d}.png")
        Image.new("RGB", (10, 10), (40 * i, 0, 0)).save(frames[-1])
    out = progress_gif(frames, tmp_path / "p.gif", max_frames=3)
    with Image.open(out) as gif:
        assert gif.n_frames == 3
        gif.seek(2)
        assert gif.convert("RGB").getpixel((0, 0))[0] == pytest.approx(160, abs=8)  # last frame
    assert progress_gif([], tmp_path / "q.gif") is None


def test_bf16_samples_stay_above_35_db_of_fp32():
    import kornia.metrics

    g = Generator(
        GeneratorConfig(image_size=64, channels=3), generator=torch.Generator().manual_seed(0)
    )
    # Trained-like: He-scale convolutions and batch-norm statistics measured on real activations
    # (a fresh DCGAN's N(0, 0.02) weights with unit running variances give a flat grey image).
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for m in g.modules():
            if isinstance(m, torch.nn.ConvTranspose2d | torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if isinstance(m, torch.nn.BatchNorm2d):
                m.momentum = None  # running statistics = the average over the calibration batches
        g.train()
        with torch.no_grad():
            for _ in range(4):
                g(torch.randn(32, g.config.latent_dim))
    g.eval()
    fp32, _ = S.sample_images(g, 16, seed=3)
    bf16, _ = S.sample_images(g, 16, seed=3, precision="bf16")
    fp32, bf16 = S.to_unit_range(fp32), S.to_unit_range(bf16)
    assert fp32.std() > 0.1  # images, not a flat grey
    assert kornia.metrics.psnr(bf16, fp32, 1.0).item() >= 35.0
