"""The HTML report builder: structure, escaping, paths, and rendering in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.browser import fresh_profile, image_check, is_blank, require_chromium, screenshot
from transfigure.report import Figure, Report

RED = (220, 20, 30)


def _png(path: Path, size: int, colour=None, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if colour is None:
        rng = np.random.default_rng(seed)
        array = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    else:
        array = np.full((size, size, 3), colour, dtype=np.uint8)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def page_dir(tmp_path) -> Path:
    """A report folder: samples (small and large), pairs, a big solid red figure."""
    out = tmp_path / "run"
    for i in range(4):
        _png(out / "samples" / f"epoch_{i}.png", 16 if i % 2 else 96, seed=i)
    for i in range(2):
        _png(out / "pairs" / f"in {i}.png", 64, seed=10 + i)  # a space in the name
        _png(out / "pairs" / f"out#{i}.png", 64, seed=20 + i)  # a '#' in the name
    _png(out / "losses.png", 300, colour=RED)
    return out


def _build(out: Path) -> Report:
    report = Report("Run <summer2winter>", subtitle="3 epochs & 64 px")
    section = report.section("Samples", intro="One grid per epoch.")
    section.images([(out / "samples" / f"epoch_{i}.png", f"epoch {i}") for i in range(4)])
    report.section("Translations").image_pairs(
        [(out / "pairs" / f"in {i}.png", out / "pairs" / f"out#{i}.png") for i in range(2)],
        labels=("summer", "winter"),
    )
    report.section("Losses").image(out / "losses.png", caption="loss curves", width=300)
    scores = report.section("Scores")
    scores.table(["metric", "value"], [["FID", 12.345678], ["images", 40]])
    scores.key_values({"device": "cpu", "note": "<b>not bold</b>"})
    return report


# -- the page as text -------------------------------------------------------------------------


def test_page_is_self_contained_and_escaped(page_dir):
    page = _build(page_dir).write(page_dir / "index.html")
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # No scripts, no stylesheets or images from elsewhere.
    assert "<script" not in html and "<link" not in html
    assert not re.search(r"(src|href)=\"(https?:|//|/)", html)
    assert "@import" not in html and "url(" not in html
    # Text is escaped wherever it appears.
    assert "Run &lt;summer2winter&gt;" in html and "3 epochs &amp; 64 px" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>" not in html
    assert "12.35" in html  # floats shown with 4 significant digits
    assert html.count("<section>") == 4


def test_image_paths_are_relative_and_quoted(page_dir, tmp_path):
    outside = _png(tmp_path / "elsewhere" / "x.png", 8)
    report = _build(page_dir)
    report.section("Outside").images([outside])
    html = report.render(page_dir)
    srcs = re.findall(r'src="([^"]+)"', html)
    assert srcs[:4] == [f"samples/epoch_{i}.png" for i in range(4)]
    assert "pairs/in%200.png" in srcs and "pairs/out%230.png" in srcs
    assert srcs[-1] == "../elsewhere/x.png"
    assert report.images()[0] == page_dir / "samples" / "epoch_0.png"
    assert len(report.images()) == len(srcs) == 4 + 4 + 1 + 1


def test_small_images_are_scaled_up_crisply(page_dir):
    html = _build(page_dir).render(page_dir)
    small = re.search(r'<img src="samples/epoch_1.png"[^>]*>', html).group(0)
    large = re.search(r'<img src="samples/epoch_0.png"[^>]*>', html).group(0)
    assert 'width="160" height="160"' in small and 'class="pixelated"' in small
    assert 'width="160" height="160"' in large and "pixelated" not in large


def test_every_image_links_to_itself_to_enlarge_it(page_dir):
    html = _build(page_dir).render(page_dir)
    images = re.findall(r'<a href="([^"]+)"><img src="([^"]+)"', html)
    assert len(images) == len(re.findall(r"<img ", html)) == 9
    assert all(href == src for href, src in images)


def test_missing_image_is_an_error_unless_unchecked(page_dir):
    report = Report("t")
    report.section("s").images([page_dir / "nope.png"])
    with pytest.raises(FileNotFoundError, match="nope.png"):
        report.write(page_dir / "index.html")
    assert not (page_dir / "index.html").exists()
    assert 'src="nope.png"' in report.render(page_dir, check_images=False)


def test_write_is_atomic(page_dir, monkeypatch):
    page = _build(page_dir).write(page_dir / "index.html")
    before = page.read_text()
    broken = Report("t")
    broken.section("s").images([page_dir / "missing.png"])
    with pytest.raises(FileNotFoundError):
        broken.write(page)
    assert page.read_text() == before
    assert sorted(p.name for p in page_dir.iterdir() if p.is_file()) == ["index.html", "losses.png"]


def test_shape_errors():
    section = Report("t").section("s")
    with pytest.raises(ValueError, match="3 cells"):
        section.table(["a", "b"], [[1, 2, 3]])
    with pytest.raises(ValueError, match="expected 2"):
        section.image_rows([["a.png"]], labels=("in", "out"))
    assert Figure.of(("a.png", 3)) == Figure(Path("a.png"), "3")


# -- the page in a browser --------------------------------------------------------------------


def test_page_renders_in_headless_chromium(page_dir, tmp_path):
    chromium = require_chromium()
    page = _build(page_dir).write(page_dir / "index.html")

    check = image_check(chromium, page, fresh_profile(tmp_path))
    assert check["total"] == 9 and check["loaded"] == 9, check
    assert check["broken"] == []
    assert not list(page_dir.glob(".image-check-*"))  # the probe copy is removed

    shot = screenshot(chromium, page, tmp_path / "shot.png", fresh_profile(tmp_path))
    assert not is_blank(shot)
    # The 300 x 300 red figure is drawn: a large patch of exactly its colour.
    pixels = np.asarray(Image.open(shot).convert("RGB"))
    red = np.all(pixels == RED, axis=-1)
    assert red.sum() >= 0.9 * 300 * 300


def test_browser_check_catches_a_missing_image(page_dir, tmp_path):
    chromium = require_chromium()
    page = _build(page_dir).write(page_dir / "index.html")
    (page_dir / "pairs" / "out#1.png").unlink()
    check = image_check(chromium, page, fresh_profile(tmp_path))
    assert check["total"] == 9 and check["loaded"] == 8
    assert check["broken"] == ["pairs/out%231.png"]


def test_blank_screenshot_is_detected(tmp_path):
    flat = tmp_path / "flat.png"
    Image.new("RGB", (200, 100), (255, 255, 255)).save(flat)
    assert is_blank(flat)


def test_run_report_shows_every_artefact_of_a_run_folder(tmp_path):
    import json

    from transfigure.report import write_run_report

    run = tmp_path / "run"
    for epoch in (1, 2):
        _png(run / "samples" / f"epoch_{epoch:03d}.png", 32, seed=epoch)
    _png(run / "losses.png", 64, colour=RED)
    (run / "config.json").write_text(json.dumps({"lr": 0.0002, "netG": "resnet_9blocks"}))
    (run / "metrics.jsonl").write_text(
        json.dumps({"epoch": 1, "G_A": 0.5}) + "\n" + json.dumps({"epoch": 2, "G_A": 0.25}) + "\n"
    )
    (run / "generator_a2b.safetensors").write_bytes(b"0" * 2000)
    page = write_run_report(run, title="CycleGAN run x")
    assert page == run / "index.html"
    html = page.read_text()
    srcs = re.findall(r'<img[^>]*src="([^"]+)"', html)
    assert srcs == ["losses.png", "samples/epoch_002.png", "samples/epoch_001.png"]
    assert "0.25" in html and "0.5<" not in html  # the latest metrics only
    assert "resnet_9blocks" in html and "generator_a2b.safetensors" in html


def test_run_report_of_an_empty_folder_has_no_images(tmp_path):
    from transfigure.report import write_run_report

    html = write_run_report(tmp_path).read_text()
    assert "<img" not in html
