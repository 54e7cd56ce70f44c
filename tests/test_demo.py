"""``transfigure demo`` end to end (reduced size), its page in a browser, its pieces."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.browser import fresh_profile, image_check, is_blank, require_chromium, screenshot
from transfigure.cli import main
from transfigure.demo import (
    MARKER,
    PAIRS,
    DemoConfig,
    DemoError,
    asset,
    load_digits,
    run_demo,
    season_scores,
)


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
            # caches and the home folder are watched: the demo must write nothing there
            mp.setenv("TRANSFIGURE_CACHE", str(base / "cache"))
            mp.setenv("HOME", str(base / "home"))
            mp.delenv("XDG_CACHE_HOME", raising=False)
            mp.chdir(workdir)
            result = runner.invoke(main, ["--device", "cpu", "demo", "--quick", "--out", "out"])
    finally:
        torch.set_num_threads(threads)
    return workdir, workdir / "out", result


def _expected_images(config: DemoConfig) -> set[str]:
    k = min(config.n_shown, config.n_test)
    names = {f"data/test{d}/{i:05d}.png" for d in "AB" for i in range(k)}
    names |= {f"translated/{d}/{i:05d}.png" for d in ("a2b", "b2a") for i in range(k)}
    for photo, painting in PAIRS:
        result = f"{Path(photo).stem}_after_{Path(painting).stem}.png"
        names |= {f"stylize/{photo}", f"stylize/{painting}", f"stylize/{result}"}
    names.add("cgan/samples_per_label.png")
    return names


def test_demo_writes_one_page_with_every_image(quick_demo):
    workdir, out, result = quick_demo
    assert result.exit_code == 0, result.output + result.stderr
    page = out / "index.html"
    assert result.stdout.strip() == "out/index.html"  # stdout: the page's path only
    html = page.read_text()
    shown = set(re.findall(r'<img src="([^"]+)"', html))
    assert shown == _expected_images(DemoConfig.quick())
    for src in shown:
        assert (out / src).is_file(), src
        assert f'<a href="{src}">' in html  # a click shows it at full size
    headings = re.findall(r"<h2>([^<]+)</h2>", html)
    assert headings == [
        "1. Summer → winter with CycleGAN",
        "2. Winter → summer with CycleGAN",
        "3. Scoring without the right answer",
        "4. Neural style transfer",
        "5. A conditional GAN",
        "How this was made",
        "Timings",  # last
    ]
    # each section says in one sentence what it shows
    intros = re.findall(r'<p class="intro">([^<]+)</p>', html)
    assert len(intros) == len(headings)
    assert all(intro.count(". ") == 0 and intro.endswith(".") for intro in intros)
    assert "[6/6]" in result.stderr  # the steps are logged on stderr


def test_demo_shows_scenes_enlarged_beside_their_truth(quick_demo):
    _, out, _ = quick_demo
    html = (out / "index.html").read_text()
    config = DemoConfig.quick()
    for i in range(min(config.n_shown, config.n_test)):
        # input, translation and the right answer in one row, each at least 256 px wide
        row = re.search(
            rf'<tr><td>.*?src="data/testA/{i:05d}.png"[^>]*width="(\d+)".*?'
            rf'src="translated/a2b/{i:05d}.png".*?src="data/testB/{i:05d}.png".*?</tr>',
            html,
        )
        assert row is not None and int(row.group(1)) >= 256
    assert re.search(r"<figcaption>error \d+, SSIM [-0-9.]+</figcaption>", html)


def test_demo_reports_the_errors_on_the_page_and_on_stderr(quick_demo):
    _, out, result = quick_demo
    html = (out / "index.html").read_text()
    for direction in ("summer → winter", "winter → summer"):
        assert f"{direction}: error to the true scene" in result.stderr
    for source, target in (("summer", "winter"), ("winter", "summer")):
        # the figures stand right under the heading, before the pictures they describe
        section = html.split("<h2>", 3)[1 if source == "summer" else 2]
        assert section.index(f"error to the true {target} scene") < section.index("<img ")
        assert f"{source} input, as it is" in section and "SSIM to it" in section
    assert re.search(r"conditional GAN: \d+% of samples show their label", result.stderr)


def test_demo_writes_nothing_outside_its_folder(quick_demo):
    workdir, out, _ = quick_demo
    assert [p.name for p in workdir.iterdir()] == ["out"]
    assert [p.name for p in workdir.parent.iterdir()] == ["cwd"]  # no cache, no home files
    assert (out / MARKER).is_file()
    assert (out / "run" / "generator_a2b.safetensors").is_file()


def test_demo_outputs_have_the_configured_sizes(quick_demo):
    from PIL import Image

    _, out, _ = quick_demo
    config = DemoConfig.quick()
    assert Image.open(out / "translated" / "a2b" / "00000.png").size == (config.size,) * 2
    photo, painting = PAIRS[0]
    result = out / "stylize" / f"{Path(photo).stem}_after_{Path(painting).stem}.png"
    assert max(Image.open(result).size) == config.stylize_size
    grid = Image.open(out / "cgan" / "samples_per_label.png")
    assert grid.height > grid.width * 0.9  # ten rows of ten


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
    steps = {"data", "cyclegan", "translate", "evaluate", "stylize", "cgan", "report", "total"}
    assert set(second.seconds) == steps
    m = second.metrics
    assert 0.0 <= m["probe_translated"] <= 1.0
    assert m["probe_real_winter"] == pytest.approx(1.0)
    assert m["probe_input"] == pytest.approx(0.0)
    # summer and winter differ a lot: the untranslated input is far from the true scene
    assert m["a2b_mae_input"] == pytest.approx(m["b2a_mae_input"]) and m["a2b_mae_input"] > 40
    assert 0.0 <= m["cgan_label_accuracy"] <= 1.0 and 0.0 <= m["classifier_accuracy"] <= 1.0


def test_bad_size_is_a_usage_error(runner, tmp_path):
    result = runner.invoke(main, ["demo", "--quick", "--size", "30", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "multiple of 4" in result.stderr  # --quick: a ResNet generator
    assert not (tmp_path / "x").exists()


def test_season_scores_known_values():
    truth = torch.zeros(2, 3, 16, 16)
    same, _ = season_scores(truth, truth)
    torch.testing.assert_close(same, torch.zeros(2))
    shifted = truth.clone()
    shifted[1] += 0.2  # every pixel 51 levels off
    mae, ssim = season_scores(shifted, truth)
    torch.testing.assert_close(mae, torch.tensor([0.0, 51.0]))
    assert ssim[0] == pytest.approx(1.0) and ssim[1] < 1.0
    with pytest.raises(ValueError, match="batches"):
        season_scores(truth, truth[:1])


def test_bundled_pictures_and_digits_are_there_with_their_licences():
    from PIL import Image

    readme = asset("README.md").read_text()
    for photo, painting in PAIRS:
        for name in (photo, painting):
            with Image.open(asset(name)) as image:
                assert image.format == "JPEG" and 256 <= max(image.size) <= 384
            assert f"`{name}`" in readme
    images, labels = load_digits(16)
    assert images.shape == (1797, 16, 16) and images.dtype == np.uint8
    assert sorted(set(labels.tolist())) == list(range(10))
    assert np.bincount(labels).min() > 170  # about 180 of each digit
    with pytest.raises(FileNotFoundError):
        asset("nope.jpg")


def test_config_checks():
    assert DemoConfig.quick(size=48).size == 48
    with pytest.raises(ValueError, match="multiple of 128"):
        DemoConfig(size=64)  # the U-Net halves the image seven times
    with pytest.raises(ValueError, match="n_test"):
        DemoConfig(n_test=1)
    with pytest.raises(ValueError, match="epochs"):
        DemoConfig(epochs=0, epochs_decay=0)
    with pytest.raises(ValueError, match="cgan_size"):
        DemoConfig(cgan_size=24)


@pytest.mark.slow
def test_full_demo(tmp_path):
    """The demo as users run it (about two minutes on two CPU cores): the translations
    bring the error to the true scene to at most half the input's, both ways."""
    result = run_demo(tmp_path / "demo", DemoConfig())
    m = result.metrics
    for d in ("a2b", "b2a"):
        assert m[f"{d}_mae"] <= 0.5 * m[f"{d}_mae_input"]
    assert m["probe_translated"] >= 0.75
    assert m["cgan_label_accuracy"] >= 0.5
