"""``transfigure demo`` end to end (reduced size), its page in a browser, its pieces."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.browser import fresh_profile, image_check, is_blank, require_chromium, screenshot
from transfigure.cli import main
from transfigure.demo import MARKER, DemoConfig, DemoError, painting, run_demo


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """``transfigure demo --quick --out out`` through the CLI, run in an empty working folder."""
    from click.testing import CliRunner

    try:
        runner = CliRunner(mix_stderr=False)
    except TypeError:  # Click >= 8.2 always separates them
        runner = CliRunner()
    base = tmp_path_factory.mktemp("demo")
    workdir = base / "cwd"
    workdir.mkdir()
    threads = torch.get_num_threads()
    # Module fixtures run before the function-scoped autouse ones: limit threads here too.
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("TRANSFIGURE_CACHE", str(base / "cache"))
            mp.chdir(workdir)
            result = runner.invoke(main, ["--device", "cpu", "demo", "--quick", "--out", "out"])
    finally:
        torch.set_num_threads(threads)
    return workdir, workdir / "out", result


def _expected_images(out: Path, config: DemoConfig) -> set[str]:
    n_show = min(6, config.n_train)
    names = {f"data/train{d}/{i:05d}.png" for d in "AB" for i in range(n_show)}
    n_test = min(config.n_shown, config.n_test)
    names |= {f"data/test{d}/{i:05d}.png" for d in "AB" for i in range(n_test)}
    names |= {f"translated/{d}/{i:05d}.png" for d in ("a2b", "b2a") for i in range(n_test)}
    epochs = config.epochs + config.epochs_decay
    names |= {f"run/samples/epoch_{e:03d}.png" for e in range(1, epochs + 1)}
    names |= {"run/losses.png", "stylize/content.png", "stylize/style.png", "stylize/stylized.png"}
    return names


def test_demo_writes_one_page_with_every_image(quick_demo):
    workdir, out, result = quick_demo
    assert result.exit_code == 0, result.output + result.stderr
    page = out / "index.html"
    assert result.stdout.strip() == "out/index.html"  # stdout: the page's path only
    html = page.read_text()
    shown = set(re.findall(r'<img src="([^"]+)"', html))
    assert shown == _expected_images(out, DemoConfig.quick())
    for src in shown:
        assert (out / src).is_file(), src
    for heading in ("Synthetic training data", "CycleGAN training", "held-out scenes",
                    "Did the translation work", "Neural style transfer"):  # fmt: skip
        assert heading in html
    assert "[6/6]" in result.stderr  # the steps are logged on stderr


def test_demo_writes_nothing_outside_its_folder(quick_demo):
    workdir, out, _ = quick_demo
    assert [p.name for p in workdir.iterdir()] == ["out"]
    assert (out / MARKER).is_file()
    assert (out / "run" / "generator_a2b.safetensors").is_file()


def test_demo_outputs_have_the_configured_sizes(quick_demo):
    from PIL import Image

    _, out, _ = quick_demo
    config = DemoConfig.quick()
    assert Image.open(out / "translated" / "a2b" / "00000.png").size == (config.size,) * 2
    assert Image.open(out / "stylize" / "stylized.png").size == (config.stylize_side,) * 2


def test_demo_page_renders_in_headless_chromium(quick_demo, tmp_path):
    chromium = require_chromium()
    _, out, result = quick_demo
    assert result.exit_code == 0
    page = out / "index.html"
    check = image_check(chromium, page, fresh_profile(tmp_path))
    expected = len(re.findall(r"<img ", page.read_text()))
    assert check["broken"] == [] and check["loaded"] == check["total"] == expected
    shot = screenshot(chromium, page, tmp_path / "demo.png", fresh_profile(tmp_path))
    assert not is_blank(shot)


def test_rerun_replaces_a_previous_demo_but_refuses_other_folders(tmp_path, runner):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "thesis.txt").write_text("keep me")
    result = runner.invoke(main, ["demo", "--quick", "--out", str(busy)])
    assert result.exit_code == 1
    assert "not empty" in result.stderr and (busy / "thesis.txt").read_text() == "keep me"

    with pytest.raises(DemoError, match="not a folder"):
        run_demo(busy / "thesis.txt", DemoConfig.quick())


def test_quick_demo_twice_into_the_same_folder(tmp_path):
    config = DemoConfig.quick(n_train=4, n_test=2, epochs=1, epochs_decay=0, stylize_iterations=1)
    first = run_demo(tmp_path / "d", config)
    stale = tmp_path / "d" / "translated" / "a2b" / "stale.png"
    stale.write_bytes(b"")
    second = run_demo(tmp_path / "d", config)
    assert second.page == first.page and second.page.is_file()
    assert not stale.exists()  # the previous demo's outputs were replaced, not mixed in
    assert set(second.seconds) >= {"data", "train", "translate", "evaluate", "stylize", "total"}
    assert 0.0 <= second.metrics["probe_translated"] <= 1.0
    assert second.metrics["probe_real_winter"] == pytest.approx(1.0)
    assert second.metrics["probe_input"] == pytest.approx(0.0)


def test_bad_size_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(main, ["demo", "--quick", "--size", "30", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "multiple of 4" in result.stderr
    assert not (tmp_path / "x").exists()


def test_painting_is_deterministic_and_colourful():
    a, b = painting(64, seed=3), painting(64, seed=3)
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, painting(64, seed=4))
    assert a.std() > 20  # bands and ribbons, not a flat fill
    with pytest.raises(ValueError, match="size"):
        painting(8)


def test_config_checks():
    assert DemoConfig().stylize_side == 2 * DemoConfig().size
    assert DemoConfig.quick(size=48).size == 48
    with pytest.raises(ValueError, match="n_test"):
        DemoConfig(n_test=1)
    with pytest.raises(ValueError, match="epochs"):
        DemoConfig(epochs=0, epochs_decay=0)


@pytest.mark.slow
def test_full_demo(tmp_path):
    """The demo as users run it (a few minutes on two CPU cores): the translation works."""
    result = run_demo(tmp_path / "demo", DemoConfig())
    assert result.page.is_file()
    # Most held-out summer scenes come out as winter, by the probe's judgement.
    assert result.metrics["probe_translated"] >= 0.75
    assert result.metrics["fid_vgg19_translated"] < result.metrics["fid_vgg19_input"]
