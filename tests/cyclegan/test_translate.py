"""Translation of tensors, files and folders, and the `translate` command."""

from __future__ import annotations

import html
import re
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from transfigure.batch import BatchEvent
from transfigure.checkpoint import ModelFileError, save_model
from transfigure.cli import main
from transfigure.cyclegan.networks import GeneratorConfig, build_generator
from transfigure.cyclegan.translate import (
    Translator,
    auto_tile,
    load_translator,
    model_multiple,
    output_path,
    resize_short_side,
    translate_files,
    translate_tensor,
)
from transfigure.images import walk_images

TINY = GeneratorConfig(netG="resnet_6blocks", ngf=4)


def tiny_generator(config: GeneratorConfig = TINY, seed: int = 0) -> nn.Module:
    return build_generator(config, generator=torch.Generator().manual_seed(seed)).eval()


def write_model(path: Path, config: GeneratorConfig = TINY, **extra) -> Path:
    return save_model(
        tiny_generator(config), path, kind="cyclegan-generator", config=config, extra=extra
    )


def write_image(path: Path, size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> Path:
    """A smooth random picture (w, h) = size, in `mode`."""
    rng = np.random.default_rng(seed)
    w, h = size
    small = rng.integers(0, 256, (max(2, h // 8), max(2, w // 8), 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((w, h), Image.BILINEAR).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    return write_model(tmp_path / "gen.safetensors", direction="a2b")


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """photos/{a.png 53×37, b.jpg 40×32}, photos/sub/c.png (gray), photos/sub/deep/d.png."""
    root = tmp_path / "photos"
    write_image(root / "a.png", (53, 37), seed=1)
    write_image(root / "b.jpg", (40, 32), seed=2)
    write_image(root / "sub" / "c.png", (24, 24), mode="L", seed=3)
    write_image(root / "sub" / "deep" / "d.png", (32, 40), seed=4)
    return root


def translator_for(net: nn.Module, **kwargs) -> Translator:
    kwargs.setdefault("tile", 512)
    return Translator(net, **kwargs)


# ---------------------------------------------------------------------------------- tensors


@pytest.mark.parametrize("size", [(37, 53), (16, 16), (5, 7), (64, 48)])
def test_translate_tensor_keeps_odd_sizes(size):
    net = tiny_generator()
    x = torch.rand(2, 3, *size) * 2 - 1
    y = translate_tensor(net, x)
    assert y.shape == (2, 3, *size)
    assert y.dtype == torch.float32
    assert y.abs().max() <= 1


def test_translate_tensor_equals_network_on_multiples_of_4():
    net = tiny_generator()
    x = torch.rand(1, 3, 32, 48) * 2 - 1
    with torch.no_grad():
        expected = net(x)
    torch.testing.assert_close(translate_tensor(net, x, tile=0), expected)


def test_translate_tensor_is_batch_independent():
    net = tiny_generator()
    x = torch.rand(3, 3, 24, 20) * 2 - 1
    together = translate_tensor(net, x)
    apart = torch.cat([translate_tensor(net, x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(together, apart, atol=1e-5, rtol=1e-5)


def test_translate_tensor_tiles_large_images_of_a_local_net_exactly():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 3, 3, padding=1))
    x = torch.rand(1, 3, 150, 201) * 2 - 1
    untiled = translate_tensor(net.eval(), x, tile=0)
    tiled = translate_tensor(net, x, tile=64, overlap=16)
    assert tiled.shape == x.shape
    torch.testing.assert_close(tiled, untiled, atol=1e-5, rtol=1e-5)


def test_bf16_autocast_is_close_to_fp32():
    net = tiny_generator()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    full = translate_tensor(net, x)
    half = translate_tensor(net, x, precision="bf16")
    assert half.dtype == torch.float32
    assert (half - full).abs().mean() < 0.05


def test_auto_tile_on_cpu_is_the_documented_default():
    assert auto_tile(tiny_generator(), torch.device("cpu")) == 512


def test_resize_short_side_keeps_aspect_ratio():
    image = torch.rand(3, 300, 400)
    out = resize_short_side(image, 150)
    assert out.shape == (3, 150, 200)
    assert resize_short_side(torch.rand(3, 40, 20), 10).shape == (3, 20, 10)


def test_output_path_mirrors_and_changes_format(tmp_path):
    assert output_path(tmp_path, Path("sub/a.JPG"), None) == tmp_path / "sub/a.JPG"
    assert output_path(tmp_path, Path("sub/a.jpg"), "png") == tmp_path / "sub/a.png"
    assert output_path(tmp_path, Path("noext"), None) == tmp_path / "noext.png"


# ---------------------------------------------------------------------------------- files


def test_translate_files_mirrors_folders_and_keeps_sizes(tmp_path, photos):
    events: list = []
    report = translate_files(
        translator_for(tiny_generator()),
        walk_images([photos], recursive=True),
        tmp_path / "out",
        callback=events.append,
    )
    expected = {
        "a.png": (53, 37),
        "b.jpg": (40, 32),
        "sub/c.png": (24, 24),
        "sub/deep/d.png": (32, 40),
    }
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in report.written) == sorted(
        expected
    )
    for rel, size in expected.items():
        with Image.open(tmp_path / "out" / rel) as img:
            assert img.size == size
            assert img.mode == "RGB"  # the grayscale input went through a 3-channel model
    assert not report.failed and not report.skipped
    done = [e for e in events if isinstance(e, BatchEvent) and e.status == "written"]
    assert len(done) == 4 and all(e.unit == "img" and e.total == 4 for e in done)
    assert done[-1].completed == 4 and done[-1].done


def test_translate_files_output_matches_translate_tensor(tmp_path):
    src = write_image(tmp_path / "x.png", (20, 12))
    net = tiny_generator()
    report = translate_files(translator_for(net), [(src, Path("x.png"))], tmp_path / "out")
    from transfigure.images import load_image

    x = load_image(src)[None] * 2 - 1
    expected = (translate_tensor(net, x)[0] + 1) / 2
    written = load_image(report.written[0])
    torch.testing.assert_close(written, expected, atol=1 / 255 + 1e-6, rtol=0)


def test_one_channel_model_gets_luma_and_writes_gray(tmp_path):
    config = GeneratorConfig(netG="resnet_6blocks", ngf=4, input_nc=1, output_nc=1)
    src = write_image(tmp_path / "rgb.png", (30, 22))
    report = translate_files(
        translator_for(tiny_generator(config)), [(src, Path("rgb.png"))], tmp_path / "out"
    )
    with Image.open(report.written[0]) as img:
        assert img.mode == "L" and img.size == (30, 22)


def test_corrupt_file_is_reported_and_others_written(tmp_path, photos):
    (photos / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    report = translate_files(
        translator_for(tiny_generator(), batch_size=2), walk_images([photos]), tmp_path / "out"
    )
    assert [p.name for p, _ in report.failed] == ["broken.jpg"]
    assert "broken.jpg" in report.failed[0][1]
    assert sorted(p.name for p in report.written) == ["a.png", "b.jpg"]
    statuses = {e.source.name: e.status for e in report.entries}
    assert statuses == {"a.png": "written", "b.jpg": "written", "broken.jpg": "failed"}


def test_existing_outputs_skipped_then_overwritten(tmp_path, photos):
    out = tmp_path / "out"
    items = walk_images([photos])
    (out).mkdir()
    (out / "a.png").write_bytes(b"keep me")
    report = translate_files(translator_for(tiny_generator()), items, out)
    assert [o.name for _, o in report.skipped] == ["a.png"]
    assert [p.name for p in report.written] == ["b.jpg"]
    assert (out / "a.png").read_bytes() == b"keep me"
    report = translate_files(translator_for(tiny_generator()), items, out, overwrite=True)
    assert sorted(p.name for p in report.written) == ["a.png", "b.jpg"]
    with Image.open(out / "a.png") as img:
        assert img.size == (53, 37)


def test_inputs_are_never_overwritten(tmp_path, photos):
    before = (photos / "a.png").read_bytes()
    report = translate_files(
        translator_for(tiny_generator()), walk_images([photos]), photos, overwrite=True
    )
    assert not report.written
    assert len(report.failed) == 2
    assert all("would overwrite an input" in reason for _, reason in report.failed)
    assert (photos / "a.png").read_bytes() == before


def test_colliding_outputs_fail_the_second(tmp_path):
    one = write_image(tmp_path / "one" / "x.png", (16, 16))
    two = write_image(tmp_path / "two" / "x.png", (16, 16), seed=5)
    report = translate_files(
        translator_for(tiny_generator()), walk_images([one, two]), tmp_path / "out"
    )
    assert [p for p in report.written] == [tmp_path / "out" / "x.png"]
    assert report.failed[0][0] == two and "also the output of" in report.failed[0][1]


def test_format_and_size_options(tmp_path):
    src = write_image(tmp_path / "in.jpg", (64, 48))
    report = translate_files(
        translator_for(tiny_generator()),
        [(src, Path("in.jpg"))],
        tmp_path / "out",
        fmt="png",
        size=24,
    )
    assert report.written == [tmp_path / "out" / "in.png"]
    with Image.open(report.written[0]) as img:
        assert img.size == (32, 24)  # shorter side 24, aspect ratio kept


def test_large_image_is_tiled_and_keeps_its_size(tmp_path):
    src = write_image(tmp_path / "big.png", (301, 203))
    translator = translator_for(tiny_generator(), tile=128, overlap=32, batch_size=4)
    report = translate_files(translator, [(src, Path("big.png"))], tmp_path / "out")
    with Image.open(report.written[0]) as img:
        assert img.size == (301, 203)
    assert translator.batch_limit(203, 301) == 1
    assert translator.batch_limit(32, 32) == 4


def test_mixed_sizes_are_batched_by_size(tmp_path, monkeypatch):
    paths = [write_image(tmp_path / f"{i}.png", (16, 16) if i % 2 else (20, 24)) for i in range(7)]
    translator = translator_for(tiny_generator(), batch_size=3)
    shapes: list[tuple[int, ...]] = []
    call = Translator.__call__

    def spy(self, x):
        shapes.append(tuple(x.shape))
        return call(self, x)

    monkeypatch.setattr(Translator, "__call__", spy)
    report = translate_files(translator, [(p, Path(p.name)) for p in paths], tmp_path / "out")
    assert len(report.written) == 7
    # 4 images of 24×20 and 3 of 16×16 in alternation: two full batches of 3, one of 1.
    assert sorted(s[0] for s in shapes) == [1, 3, 3]


# ---------------------------------------------------------------------------------- models


def test_load_translator_from_run_folder_and_direction(tmp_path):
    run = tmp_path / "run"
    write_model(run / "generator_a2b.safetensors", direction="a2b")
    write_model(run / "generator_b2a.safetensors", direction="b2a")
    _, info = load_translator(run)
    assert info.path.name == "generator_a2b.safetensors"
    _, info = load_translator(run, direction="b2a")
    assert info.path.name == "generator_b2a.safetensors"
    with pytest.raises(ModelFileError, match="translates a2b, not b2a"):
        load_translator(run / "generator_a2b.safetensors", direction="b2a")
    with pytest.raises(ModelFileError, match="no generator_a2b"):
        load_translator(tmp_path)


def test_load_translator_unknown_name_lists_pretrained_models():
    with pytest.raises(KeyError, match="did you mean horse2zebra"):
        load_translator("hrose2zebra")


def test_load_translator_refuses_other_model_kinds(tmp_path):
    from transfigure.cyclegan.networks import DiscriminatorConfig, build_discriminator

    cfg = DiscriminatorConfig(ndf=4)
    path = save_model(
        build_discriminator(cfg),
        tmp_path / "d.safetensors",
        kind="cyclegan-discriminator",
        config=cfg,
    )
    with pytest.raises(ModelFileError, match="expected 'cyclegan-generator'"):
        load_translator(path)


# ---------------------------------------------------------------------------------- CLI


def run_cli(runner, *args: str):
    return runner.invoke(main, ["--device", "cpu", "--quiet", *map(str, args)])


def test_cli_mirrors_subfolders_and_prints_outputs(runner, tmp_path, model_file, photos):
    out = tmp_path / "out"
    result = run_cli(runner, "translate", model_file, photos, "-r", "-o", out)
    assert result.exit_code == 0, result.output
    printed = sorted(Path(line).relative_to(out).as_posix() for line in result.stdout.splitlines())
    assert printed == ["a.png", "b.jpg", "sub/c.png", "sub/deep/d.png"]
    assert all((out / p).is_file() for p in printed)


def test_cli_without_recursive_takes_the_top_folder_only(runner, tmp_path, model_file, photos):
    result = run_cli(runner, "translate", model_file, photos, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 2


def test_cli_corrupt_file_named_on_stderr_others_written_exit_1(
    runner, tmp_path, model_file, photos
):
    (photos / "zzz-corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "out"
    result = run_cli(runner, "translate", model_file, photos, "-o", out)
    assert result.exit_code == 1
    assert "zzz-corrupt.png" in result.stderr
    assert "1 of 3 input(s) failed" in result.stderr
    assert sorted(Path(p).name for p in result.stdout.splitlines()) == ["a.png", "b.jpg"]
    assert not (out / "zzz-corrupt.png").exists()


def test_cli_skips_existing_and_overwrites_on_request(runner, tmp_path, model_file, photos):
    out = tmp_path / "out"
    assert run_cli(runner, "translate", model_file, photos, "-o", out).exit_code == 0
    stamp = (out / "a.png").stat().st_mtime_ns
    (out / "b.jpg").unlink()
    result = runner.invoke(
        main, ["--device", "cpu", "translate", str(model_file), str(photos), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert [Path(p).name for p in result.stdout.splitlines()] == ["b.jpg"]
    assert "skipping 1 image(s)" in result.stderr
    assert (out / "a.png").stat().st_mtime_ns == stamp
    result = run_cli(runner, "translate", model_file, photos, "-o", out, "--overwrite")
    assert result.exit_code == 0
    assert sorted(Path(p).name for p in result.stdout.splitlines()) == ["a.png", "b.jpg"]


@pytest.mark.parametrize(
    ("flags", "used"), [({"avx512_bf16", "amx_bf16"}, "bf16"), ({"avx2"}, "fp32")]
)
def test_cli_auto_precision_is_the_default_and_is_said(
    runner, tmp_path, model_file, photos, monkeypatch, flags, used
):
    from transfigure import runtime

    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    args = ["--device", "cpu", "translate", str(model_file), str(photos), "-o", str(tmp_path)]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert f"precision: {used} (auto for inference on cpu" in result.stderr
    assert f"on cpu ({used}, tile" in result.stderr  # the run's own log line
    assert len(result.stdout.splitlines()) == 2


def test_cli_compare_page_references_every_image(runner, tmp_path, model_file, photos):
    weird = write_image(photos / "sub" / "a <b> & 'c'.png", (16, 16))
    (photos / "sub" / "bad.png").write_bytes(b"garbage")
    out = tmp_path / "out"
    result = run_cli(runner, "translate", model_file, photos, "-r", "-o", out, "--compare")
    assert result.exit_code == 1
    page = out / "index.html"
    assert str(page) in result.stdout.splitlines()
    text = page.read_text(encoding="utf-8")
    sources = [
        (out / unquote(html.unescape(s))).resolve() for s in re.findall(r'<img src="([^"]+)"', text)
    ]
    good = [p for p, _ in walk_images([photos], recursive=True) if p.name != "bad.png"]
    assert len(good) == 5
    # One row per translated image: the input, then its output beside it.
    expected = []
    for p in good:
        expected += [p.resolve(), (out / p.relative_to(photos)).resolve()]
    assert sources == expected
    assert (out / "sub" / weird.name).is_file()
    assert "<b>" not in text and "a &lt;b&gt; &amp;" in text  # names are escaped
    assert "Failed" in text and "bad.png" in text  # the failure is listed with its reason
    assert "http" not in text and "<script" not in text  # self-contained


def test_cli_format_option(runner, tmp_path, model_file, photos):
    result = run_cli(
        runner, "translate", model_file, photos / "b.jpg", "-o", tmp_path / "o", "--format", "png"
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(tmp_path / "o" / "b.png")


def test_cli_usage_errors(runner, tmp_path, model_file, photos):
    result = run_cli(runner, "translate", model_file, photos, "-o", tmp_path / "o", "--tile", "30")
    assert result.exit_code == 2 and "--tile" in result.stderr
    result = run_cli(runner, "translate", model_file, tmp_path / "missing", "-o", tmp_path / "o")
    assert result.exit_code == 2 and "missing" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run_cli(runner, "translate", model_file, empty, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "no images found" in result.stderr
    result = run_cli(runner, "translate", "no-such-model", photos, "-o", tmp_path / "o")
    assert result.exit_code == 2 and "pretrained" in result.stderr


def test_cli_run_folder_with_direction(runner, tmp_path, photos):
    run = tmp_path / "run"
    write_model(run / "generator_a2b.safetensors", direction="a2b")
    write_model(run / "generator_b2a.safetensors", direction="b2a")
    result = run_cli(
        runner, "translate", run, photos / "a.png", "--direction", "b2a", "-o", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "a.png").is_file()


def test_out_of_memory_splits_the_batch_then_lowers_the_tile(tmp_path, monkeypatch):
    # Simulated CUDA OOM (no GPU needed): any pass over more than 128² pixels "runs out".
    import transfigure.cyclegan.translate as tr

    real = tr.translate_tensor
    calls: list[tuple[int, int | None]] = []

    def limited(net, x, *, tile=None, **kwargs):
        calls.append((x.shape[0], tile))
        side = min(tile or 10**9, max(x.shape[-2:]))
        if x.shape[0] * side * side > 128 * 128:
            raise torch.cuda.OutOfMemoryError("simulated")
        return real(net, x, tile=tile, **kwargs)

    monkeypatch.setattr(tr, "translate_tensor", limited)
    messages: list[str] = []
    translator = translator_for(
        tiny_generator(),
        tile=256,
        overlap=32,
        batch_size=2,
        callback=lambda e: e.message and messages.append(e.message),
    )
    items = [
        (write_image(tmp_path / f"{i}.png", (100, 100), seed=i), Path(f"{i}.png")) for i in range(2)
    ]
    items.append((write_image(tmp_path / "big.png", (300, 200)), Path("big.png")))
    report = translate_files(translator, items, tmp_path / "out")
    assert not report.failed
    assert translator.tile == 128
    assert any("tile lowered to 128" in m for m in messages)
    assert (2, 256) in calls and (1, 256) in calls  # the pair was split before the tile shrank
    with Image.open(tmp_path / "out" / "big.png") as img:
        assert img.size == (300, 200)


def test_out_of_memory_at_the_smallest_tile_fails_that_image_only(tmp_path, monkeypatch):
    import transfigure.cyclegan.translate as tr

    def always(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("simulated")

    monkeypatch.setattr(tr, "translate_tensor", always)
    src = write_image(tmp_path / "x.png", (64, 64))
    report = translate_files(
        translator_for(tiny_generator(), tile=128), [(src, Path("x.png"))], tmp_path / "o"
    )
    assert [p for p, _ in report.failed] == [src]
    assert "OutOfMemoryError" in report.failed[0][1]


def test_a_folder_named_like_a_pretrained_model_is_not_a_run_folder(tmp_path, monkeypatch):
    from transfigure.cyclegan import zoo

    monkeypatch.chdir(tmp_path)
    (tmp_path / "horse2zebra" / "trainA").mkdir(parents=True)  # a dataset, not a run
    wanted = write_model(zoo.cached_path("horse2zebra"), name="horse2zebra")
    _, info = load_translator("horse2zebra")
    assert info.path == wanted


# ---------------------------------------------------------------------------------- precision


def photo_like(h: int, w: int, seed: int = 0) -> torch.Tensor:
    """``(1, 3, H, W)`` in [-1, 1]: smooth colour gradients, a few edges and a little noise."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.linspace(0, 1, h).view(h, 1).expand(h, w)
    x = torch.linspace(0, 1, w).view(1, w).expand(h, w)
    img = torch.stack([0.2 + 0.6 * x, 0.3 + 0.5 * y * x, 0.7 - 0.4 * y])
    img[:, h // 3 : h // 2, w // 5 : w // 2] = torch.tensor([0.8, 0.5, 0.2]).view(3, 1, 1)
    img = img + 0.05 * torch.randn(3, h, w, generator=gen)
    return img.clamp(0, 1)[None] * 2 - 1


def trained_like(config: GeneratorConfig) -> nn.Module:
    """A generator with He-scale convolutions and, for batch norm, running statistics of
    photo-like inputs: a fresh N(0, 0.02) initialisation gives a nearly constant output that
    would make any precision look good."""
    net = tiny_generator(config)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
        if config.norm == "batch":
            net.train()
            with torch.no_grad():
                for seed in range(4):
                    net(photo_like(128, 128, seed=seed))
    return net.eval()


@pytest.mark.parametrize(
    "config",
    [
        GeneratorConfig(netG="resnet_9blocks", ngf=32),
        GeneratorConfig(netG="resnet_6blocks", ngf=16, upsample="resize_conv"),
        GeneratorConfig(netG="resnet_6blocks", ngf=16, antialias=True),  # CUT's layout
        GeneratorConfig(netG="unet_128", ngf=16, norm="batch"),  # pix2pix's
    ],
    ids=["resnet", "resize-conv", "antialiased", "unet-batchnorm"],
)
def test_bf16_translation_stays_above_35_db_of_fp32(config):
    import kornia.metrics

    net = trained_like(config)
    multiple = model_multiple(net)
    x = photo_like(96, 128)
    fp32 = (Translator(net, tile=0, multiple=multiple)(x) + 1) / 2
    bf16 = (Translator(net, precision="bf16", tile=0, multiple=multiple)(x) + 1) / 2
    assert fp32.std() > 0.1  # a real image, not a flat one
    assert kornia.metrics.psnr(bf16, fp32, 1.0).item() >= 35.0


def test_bf16_on_the_cpu_runs_a_bf16_copy_with_fp32_normalisation():
    net = trained_like(GeneratorConfig(netG="unet_128", ngf=8, norm="batch"))
    before = {k: v.clone() for k, v in net.state_dict().items()}
    translator = Translator(net, precision="bf16", tile=0, multiple=model_multiple(net))
    convs = [m for m in translator.net.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in translator.net.modules() if isinstance(m, nn.BatchNorm2d)]
    assert convs and all(m.weight.dtype == torch.bfloat16 for m in convs)
    assert norms and all(m.running_var.dtype == torch.float32 for m in norms)
    out = translator(photo_like(40, 56))
    assert out.dtype == torch.float32 and out.shape == (1, 3, 40, 56)
    # the caller's network is left as it was
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert Translator(net, tile=0).net is net  # fp32 runs the network itself


def test_default_batch_is_one_image_on_the_cpu():
    assert Translator(tiny_generator(), tile=0).batch_size == 1
    assert Translator(tiny_generator(), tile=0, batch_size=3).batch_size == 3
