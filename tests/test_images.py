"""Tests for transfigure.images: decoding every mode, encoding every format, errors, walking."""

from __future__ import annotations

import os
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from transfigure import images
from transfigure.images import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    READ_EXTENSIONS,
    AnimationWarning,
    ImageError,
    list_images,
    load_array,
    load_image,
    pil_to_tensor,
    save_grid,
    save_image,
    tensor_to_pil,
    walk_images,
)

# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _png_bytes(width: int, height: int, bit_depth: int, color_type: int, raw: bytes) -> bytes:
    """A PNG written by hand (Pillow cannot write 16-bit RGB, nor lie about its size)."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(raw))
        + _png_chunk(b"IEND", b"")
    )


def _gradient_rgb(h: int = 32, w: int = 32) -> np.ndarray:
    """A smooth uint8 picture that lossy codecs reproduce closely."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r = 255 * x / (w - 1)
    g = 255 * y / (h - 1)
    b = 128 + 60 * np.sin(x / 5) * np.cos(y / 7)
    return np.stack([r, g, b], axis=2).round().astype(np.uint8)


def _rgb_of(array_u8: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(array_u8.astype(np.float32) / 255).permute(2, 0, 1)


# ------------------------------------------------------------------------------------------------
# decoding: modes
# ------------------------------------------------------------------------------------------------


def test_constants():
    assert DEFAULT_MAX_PIXELS == 178_956_970
    assert IMAGE_EXTENSIONS == {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
    assert READ_EXTENSIONS == IMAGE_EXTENSIONS | {".gif"}  # GIF is read, never written


# ------------------------------------------------------------------------------------------------
# decoding: GIF
# ------------------------------------------------------------------------------------------------


def test_gif_is_read_exactly(tmp_path):
    colours = np.array([[[10, 20, 30], [200, 100, 0]], [[0, 0, 0], [255, 255, 255]]], np.uint8)
    Image.fromarray(colours).save(tmp_path / "still.gif")  # four colours: a lossless palette
    assert_close(load_image(tmp_path / "still.gif"), _rgb_of(colours), rtol=0, atol=0)
    assert_close(
        torch.from_numpy(load_array(tmp_path / "still.gif")).permute(2, 0, 1).float() / 255,
        _rgb_of(colours),
        rtol=0,
        atol=0,
    )


def test_gif_transparency_goes_white(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "t.gif", transparency=1)
    assert load_image(tmp_path / "t.gif")[:, 0].T.tolist() == [[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]]


def test_animated_gif_gives_its_first_frame_and_is_reported_once(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_animation_reported", False)  # as in a fresh process
    frames = [Image.new("RGB", (6, 4), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    for name in ("a.gif", "b.gif"):
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:], duration=50)
    with pytest.warns(AnimationWarning) as record:
        first = load_image(tmp_path / "a.gif")
        load_image(tmp_path / "b.gif")
        load_image(tmp_path / "a.gif")
    assert_close(first, torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 4, 6))
    assert len(record) == 1  # said once, not once per file
    assert str(record[0].message) == (
        f"{tmp_path / 'a.gif'}: an animation of 3 frames; only its first frame is used "
        "(for this and any other animation)"
    )
    assert record[0].filename == __file__  # points at the caller of load_image


def test_gif_files_are_found_in_folders(tmp_path):
    Image.new("RGB", (2, 2)).save(tmp_path / "a.gif")
    Image.new("RGB", (2, 2)).save(tmp_path / "b.png")
    assert list_images(tmp_path) == [tmp_path / "a.gif", tmp_path / "b.png"]


def test_rgb_png_exact(tmp_path):
    a = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4
    Image.fromarray(a).save(tmp_path / "x.png")
    t = load_image(tmp_path / "x.png")
    assert t.shape == (3, 4, 5) and t.dtype == torch.float32
    assert_close(t, _rgb_of(a))


def test_grayscale_l(tmp_path):
    Image.new("L", (3, 2), 51).save(tmp_path / "g.png")
    t = load_image(tmp_path / "g.png")
    assert t.shape == (3, 2, 3)
    assert_close(t, torch.full((3, 2, 3), 0.2))


def test_bilevel_1(tmp_path):
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "b.bmp")
    t = load_image(tmp_path / "b.bmp")
    assert_close(t, torch.tensor([[[0.0, 1.0]]] * 3))


def test_la_on_white(tmp_path):
    Image.new("LA", (2, 2), (0, 128)).save(tmp_path / "la.png")
    t = load_image(tmp_path / "la.png")
    a = 128 / 255
    assert_close(t, torch.full((3, 2, 2), 1 - a))


def test_rgba_half_transparent_red_on_white(tmp_path):
    img = Image.new("RGBA", (2, 2), (255, 0, 0, 128))
    img.putpixel((1, 1), (0, 0, 255, 0))  # fully transparent → white
    img.save(tmp_path / "rgba.png")
    t = load_image(tmp_path / "rgba.png")
    assert_close(t[:, 0, 0], torch.tensor([1.0, 0.5, 0.5]), atol=0.003, rtol=0)
    a = 128 / 255
    assert_close(t[:, 0, 0], torch.tensor([1.0, 1 - a, 1 - a]))
    assert_close(t[:, 1, 1], torch.ones(3))


def test_palette(tmp_path):
    img = Image.new("P", (3, 1))
    img.putpalette([255, 0, 0, 0, 255, 0, 10, 20, 30])
    for x in range(3):
        img.putpixel((x, 0), x)
    img.save(tmp_path / "p.png")
    t = load_image(tmp_path / "p.png")
    expected = np.array([[[255, 0, 0], [0, 255, 0], [10, 20, 30]]], dtype=np.uint8)
    assert_close(t, _rgb_of(expected))


def test_palette_with_transparency_goes_white(tmp_path):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 255, 255, 0, 0])
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "pt.png", transparency=1)
    with Image.open(tmp_path / "pt.png") as check:
        assert check.mode == "P" and check.info["transparency"] == 1
    t = load_image(tmp_path / "pt.png")
    assert_close(t[:, 0, 0], torch.tensor([0.0, 0.0, 1.0]))
    assert_close(t[:, 0, 1], torch.ones(3))


def test_grayscale_with_transparent_colour(tmp_path):
    img = Image.new("L", (2, 1), 7)
    img.putpixel((1, 0), 100)
    img.save(tmp_path / "lt.png", transparency=7)
    t = load_image(tmp_path / "lt.png")
    assert_close(t[:, 0, 0], torch.ones(3))
    assert_close(t[:, 0, 1], torch.full((3,), 100 / 255))


@pytest.mark.parametrize("suffix", [".tif", ".jpg"])
def test_cmyk(tmp_path, suffix):
    img = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red
    for x in range(8, 16):
        for y in range(16):
            img.putpixel((x, y), (0, 0, 0, 255))  # black
    img.save(tmp_path / f"c{suffix}", **({"quality": 95} if suffix == ".jpg" else {}))
    with Image.open(tmp_path / f"c{suffix}") as check:
        assert check.mode == "CMYK"
    t = load_image(tmp_path / f"c{suffix}")
    atol = 0 if suffix == ".tif" else 0.05
    assert_close(t[:, 2, 2], torch.tensor([1.0, 0.0, 0.0]), atol=atol, rtol=0)
    assert_close(t[:, 2, 13], torch.zeros(3), atol=atol, rtol=0)


def test_16bit_grayscale_png_scaled_by_65535(tmp_path):
    values = np.array([[0, 1000, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "g16.png")
    with Image.open(tmp_path / "g16.png") as check:
        assert check.mode.startswith("I")  # really stored and read as 16-bit
    t = load_image(tmp_path / "g16.png")
    expected = torch.from_numpy(values.astype(np.float32) / 65535)
    assert_close(t, expected.expand(3, 1, 4))
    # 1000/65535 is ~0.015: clipping to 255 first would give 1.0
    assert t[0, 0, 1].item() == pytest.approx(1000 / 65535, abs=1e-6)


def test_16bit_big_endian_tiff(tmp_path):
    img = Image.new("I;16B", (2, 1))
    img.putpixel((0, 0), 300)
    img.putpixel((1, 0), 65535)
    img.save(tmp_path / "g16b.tif")
    with Image.open(tmp_path / "g16b.tif") as check:
        assert check.mode == "I;16B"
    t = load_image(tmp_path / "g16b.tif")
    assert_close(t[0, 0], torch.tensor([300 / 65535, 1.0]))


def test_16bit_rgb_png_handwritten(tmp_path):
    # 48-bit RGB, colour type 2, depth 16: one row of two pixels, big-endian samples.
    pixels = [(65535, 32896, 0), (0, 0, 65535)]
    raw = b"\x00" + b"".join(struct.pack(">HHH", *p) for p in pixels)
    (tmp_path / "rgb48.png").write_bytes(_png_bytes(2, 1, 16, 2, raw))
    t = load_image(tmp_path / "rgb48.png")
    expected = torch.tensor([[1.0, 0.0], [32896 / 65535, 0.0], [0.0, 1.0]]).unsqueeze(1)
    assert_close(t, expected, atol=1 / 255, rtol=0)


def test_int32_and_float_tiff(tmp_path):
    Image.fromarray(np.array([[0, 65535, 70000]], dtype=np.int32)).save(tmp_path / "i.tif")
    Image.fromarray(np.array([[0.25, 1.5, -0.5]], dtype=np.float32)).save(tmp_path / "f.tif")
    with Image.open(tmp_path / "i.tif") as a, Image.open(tmp_path / "f.tif") as b:
        assert (a.mode, b.mode) == ("I", "F")
    assert_close(load_image(tmp_path / "i.tif")[0, 0], torch.tensor([0.0, 1.0, 1.0]))
    assert_close(load_image(tmp_path / "f.tif")[1, 0], torch.tensor([0.25, 1.0, 0.0]))


def _orient_reference(a: np.ndarray, orientation: int) -> np.ndarray:
    """What the EXIF spec says the viewer shows for a stored HWC array."""
    return {
        1: lambda: a,
        2: lambda: a[:, ::-1],
        3: lambda: a[::-1, ::-1],
        4: lambda: a[::-1],
        5: lambda: a.transpose(1, 0, 2),
        6: lambda: np.rot90(a, k=-1),  # 90 degrees clockwise
        7: lambda: np.rot90(a, k=-1)[::-1],  # transverse: flip across the anti-diagonal
        8: lambda: np.rot90(a, k=1),
    }[orientation]()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png(tmp_path, orientation):
    a = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10  # H=2, W=3, all distinct
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(tmp_path / "o.png", exif=exif)
    t = load_image(tmp_path / "o.png")
    assert_close(t, _rgb_of(np.ascontiguousarray(_orient_reference(a, orientation))))


def test_exif_orientation_6_moves_the_pixel(tmp_path):
    a = np.zeros((2, 3, 3), dtype=np.uint8)
    a[0, 0] = (255, 0, 0)  # stored top-left is red
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(a).save(tmp_path / "o6.png", exif=exif)
    t = load_image(tmp_path / "o6.png")
    assert t.shape == (3, 3, 2)
    # rotated 90 degrees clockwise for display: the top-left goes to the top-right
    assert_close(t[:, 0, 1], torch.tensor([1.0, 0.0, 0.0]))
    assert t.sum().item() == pytest.approx(1.0)


def test_exif_orientation_jpeg(tmp_path):
    a = np.zeros((16, 32, 3), dtype=np.uint8)
    a[:8, :8] = 255  # white block at the stored top-left
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90 counter-clockwise to display
    Image.fromarray(a).save(tmp_path / "o8.jpg", exif=exif, quality=95)
    t = load_image(tmp_path / "o8.jpg")
    assert t.shape == (3, 32, 16)
    assert t[:, 28, 4].min().item() > 0.9  # top-left went to bottom-left
    assert t[:, 4, 4].max().item() < 0.1


# ------------------------------------------------------------------------------------------------
# encoding: formats
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".tif", ".tiff", ".PNG"])
def test_lossless_round_trip(tmp_path, suffix):
    a = _gradient_rgb(16, 24)
    t = _rgb_of(a)
    out = save_image(t, tmp_path / f"x{suffix}")
    assert out == tmp_path / f"x{suffix}" and out.is_file()
    assert_close(load_image(out), t)
    assert np.array_equal(load_array(out), a)


@pytest.mark.parametrize(
    ("suffix", "fmt"), [(".jpg", "JPEG"), (".jpeg", "JPEG"), (".webp", "WEBP")]
)
def test_lossy_round_trip(tmp_path, suffix, fmt):
    t = _rgb_of(_gradient_rgb())
    out = save_image(t, tmp_path / f"x{suffix}", quality=95)
    with Image.open(out) as check:
        assert check.format == fmt and check.mode == "RGB"
    back = load_image(out)
    assert back.shape == t.shape
    assert (back - t).abs().mean().item() < 0.01
    assert (back - t).abs().max().item() < 0.1


def test_jpeg_quality_is_used(tmp_path):
    rng = np.random.default_rng(0)
    t = _rgb_of(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    low = save_image(t, tmp_path / "low.jpg", quality=10).stat().st_size
    high = save_image(t, tmp_path / "high.jpg", quality=95).stat().st_size
    assert high > 2 * low


@pytest.mark.parametrize(
    ("suffix", "mode"),
    [(".png", "L"), (".jpg", "L"), (".bmp", "L"), (".tif", "L"), (".webp", "RGB")],
)
def test_grayscale_tensor_saved_as_l(tmp_path, suffix, mode):
    t = torch.full((1, 8, 8), 0.4)
    out = save_image(t, tmp_path / f"g{suffix}")
    with Image.open(out) as check:
        assert check.mode == mode
    assert_close(load_image(out), torch.full((3, 8, 8), 102 / 255), atol=2 / 255, rtol=0)


@pytest.mark.parametrize(("suffix", "mode"), [(".jpg", "RGB"), (".bmp", "RGB"), (".png", "RGBA")])
def test_rgba_tensor(tmp_path, suffix, mode):
    t = torch.zeros(4, 8, 8)
    t[0] = 1.0  # red
    t[3] = 0.0  # fully transparent
    out = save_image(t, tmp_path / f"a{suffix}")
    with Image.open(out) as check:
        assert check.mode == mode
    # composited on white either at save time (JPEG/BMP) or at load time (PNG)
    assert_close(load_image(out), torch.ones(3, 8, 8), atol=2 / 255, rtol=0)


def test_save_accepts_pil_and_arrays(tmp_path):
    a = _gradient_rgb(8, 8)
    save_image(Image.fromarray(a), tmp_path / "pil.png")
    save_image(a, tmp_path / "arr.png")
    save_image(a[..., 0], tmp_path / "arr2d.png")
    save_image(Image.new("CMYK", (4, 4), (0, 255, 255, 0)), tmp_path / "cmyk.jpg")
    save_image(Image.new("I;16", (4, 4), 65535), tmp_path / "i16.bmp")
    assert np.array_equal(load_array(tmp_path / "pil.png"), a)
    assert np.array_equal(load_array(tmp_path / "arr.png"), a)
    assert np.array_equal(load_array(tmp_path / "arr2d.png")[..., 1], a[..., 0])
    assert_close(
        load_image(tmp_path / "cmyk.jpg")[:, 1, 1], torch.tensor([1.0, 0, 0]), atol=0.05, rtol=0
    )
    assert_close(load_image(tmp_path / "i16.bmp"), torch.ones(3, 4, 4))


def test_save_creates_parent_folders(tmp_path):
    out = save_image(torch.zeros(3, 4, 4), tmp_path / "a" / "b" / "c.png")
    assert out.is_file()


def test_save_unknown_extension(tmp_path):
    with pytest.raises(ImageError, match="unknown image extension") as info:
        save_image(torch.zeros(3, 4, 4), tmp_path / "x.gif")
    assert info.value.path == tmp_path / "x.gif"
    with pytest.raises(ImageError, match="extension"):
        save_image(torch.zeros(3, 4, 4), tmp_path / "noext")
    assert list(tmp_path.iterdir()) == []


def test_save_bad_tensor(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        save_image(torch.zeros(2, 4, 4), tmp_path / "x.png")
    with pytest.raises(ValueError, match="shape"):
        save_image(torch.zeros(1, 3, 4, 4), tmp_path / "x.png")
    bad = torch.zeros(3, 4, 4)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        save_image(bad, tmp_path / "x.png")
    with pytest.raises(ValueError, match="quality"):
        save_image(torch.zeros(3, 4, 4), tmp_path / "x.jpg", quality=0)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# overwrite / protect / atomicity
# ------------------------------------------------------------------------------------------------


def test_refuses_to_overwrite_unless_asked(tmp_path):
    out = tmp_path / "x.png"
    save_image(torch.zeros(3, 4, 4), out)
    with pytest.raises(FileExistsError):
        save_image(torch.ones(3, 4, 4), out)
    assert_close(load_image(out), torch.zeros(3, 4, 4))
    save_image(torch.ones(3, 4, 4), out, overwrite=True)
    assert_close(load_image(out), torch.ones(3, 4, 4))


def test_save_onto_folder(tmp_path):
    (tmp_path / "d.png").mkdir()
    with pytest.raises(ImageError, match="directory"):
        save_image(torch.zeros(3, 4, 4), tmp_path / "d.png", overwrite=True)


def test_protect_never_overwritten(tmp_path):
    src = tmp_path / "in.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(src)
    before = src.read_bytes()
    (tmp_path / "sub").mkdir()
    aliases = [src, str(src), tmp_path / "sub" / ".." / "in.png"]
    link = tmp_path / "link.png"
    link.symlink_to(src)
    aliases.append(link)
    hard = tmp_path / "hard.png"
    os.link(src, hard)
    aliases.append(hard)
    for alias in aliases:
        with pytest.raises(ImageError, match="input file") as info:
            save_image(torch.ones(3, 4, 4), alias, overwrite=True, protect=[src])
        assert info.value.path == Path(alias)
    # the protected file named through an alias (a hard link) protects it too
    with pytest.raises(ImageError):
        save_image(torch.ones(3, 4, 4), src, overwrite=True, protect=[str(hard)])
    assert src.read_bytes() == before
    # other targets are fine
    save_image(torch.ones(3, 4, 4), tmp_path / "out.png", protect=[src])


def _boom_save(self, fp, *args, **kwargs):
    Path(fp).write_bytes(b"partial")  # the encoder got some way, then failed
    raise OSError("encoder exploded")


def test_atomic_save_failure_leaves_previous_file(tmp_path, monkeypatch):
    out = tmp_path / "x.png"
    save_image(torch.zeros(3, 4, 4), out)
    before = out.read_bytes()
    monkeypatch.setattr(Image.Image, "save", _boom_save)
    with pytest.raises(ImageError, match="encoder exploded") as info:
        save_image(torch.ones(3, 4, 4), out, overwrite=True)
    assert info.value.path == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
    assert out.read_bytes() == before
    # a new file: nothing at all is left
    with pytest.raises(ImageError):
        save_image(torch.ones(3, 4, 4), tmp_path / "new.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]


def test_atomic_save_interrupt(tmp_path, monkeypatch):
    def interrupted(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Image.Image, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_image(torch.ones(3, 4, 4), tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------------
# bad inputs
# ------------------------------------------------------------------------------------------------


def _truncated_png(p: Path) -> None:
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)).save(p)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _truncated_jpeg(p: Path) -> None:
    Image.fromarray(_gradient_rgb(64, 64)).save(p, quality=95)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])


def _empty(p: Path) -> None:
    p.write_bytes(b"")


def _text(p: Path) -> None:
    p.write_text("this is not an image\n")


def _ppm(p: Path) -> None:
    Image.new("RGB", (4, 4)).save(p, format="PPM")


def _missing(p: Path) -> None:
    pass


def _folder(p: Path) -> None:
    p.mkdir()


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("trunc.png", _truncated_png, "truncated"),
        ("trunc.jpg", _truncated_jpeg, "truncated"),
        ("empty.png", _empty, "empty"),
        ("notes.png", _text, "not an image"),
        ("pic.ppm", _ppm, "unsupported image format PPM"),
        ("missing.png", _missing, "no such file"),
        ("folder.png", _folder, "directory"),
    ],
)
@pytest.mark.parametrize("loader", [load_image, load_array])
def test_bad_inputs(tmp_path, name, make, reason, loader):
    p = tmp_path / name
    make(p)
    with pytest.raises(ImageError) as info:
        loader(p)
    e = info.value
    assert e.path == p
    assert name in str(e) and str(e) == f"{p}: {e.reason}"
    assert reason in e.reason


def test_truncation_not_tolerated_globally():
    from PIL import ImageFile

    assert not ImageFile.LOAD_TRUNCATED_IMAGES


def test_image_error_pickles():
    e = pickle.loads(pickle.dumps(ImageError(Path("/x/y.png"), "broken")))
    assert isinstance(e, ImageError)
    assert (e.path, e.reason, str(e)) == (Path("/x/y.png"), "broken", "/x/y.png: broken")


# ------------------------------------------------------------------------------------------------
# pixel limit
# ------------------------------------------------------------------------------------------------


def test_pixel_limit(tmp_path):
    Image.new("RGB", (5, 4), "red").save(tmp_path / "x.png")
    assert load_image(tmp_path / "x.png", max_pixels=20).shape == (3, 4, 5)
    for loader in (load_image, load_array):
        with pytest.raises(ImageError) as info:
            loader(tmp_path / "x.png", max_pixels=19)
        assert "x.png" in str(info.value)
        assert "5x4" in info.value.reason and "19" in info.value.reason


def test_pixel_limit_checked_before_decoding(tmp_path):
    # A 1000x1000 PNG cut in half: the size check must fire first, proving nothing was decoded
    # (decoding would report the truncation instead).
    data = _png_bytes(1000, 1000, 8, 0, b"\x00" * 1001 * 1000)
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="1000x1000"):
        load_image(tmp_path / "cut.png", max_pixels=999_999)
    with pytest.raises(ImageError, match="truncated"):
        load_image(tmp_path / "cut.png", max_pixels=1_000_000)


def test_pillow_bomb_limit_becomes_image_error(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow errors above 200 pixels
    Image.new("L", (12, 12)).save(tmp_path / "warn.png")  # 144: only a Pillow warning
    Image.new("L", (15, 15)).save(tmp_path / "bomb.png")  # 225: a Pillow error
    # Pillow's warning is not an error here: our own limit governs
    assert load_image(tmp_path / "warn.png", max_pixels=1000).shape == (3, 12, 12)
    with pytest.raises(ImageError, match="12x12"):
        load_image(tmp_path / "warn.png", max_pixels=143)
    with pytest.raises(ImageError, match="decompression bomb") as info:
        load_image(tmp_path / "bomb.png", max_pixels=1000)
    assert "bomb.png" in str(info.value) and "225" in str(info.value)


# ------------------------------------------------------------------------------------------------
# conversions
# ------------------------------------------------------------------------------------------------


def test_tensor_pil_round_trip():
    a = _gradient_rgb(6, 7)
    t = _rgb_of(a)
    img = tensor_to_pil(t)
    assert img.mode == "RGB" and img.size == (7, 6)
    assert np.array_equal(np.asarray(img), a)
    assert_close(pil_to_tensor(img), t)
    assert tensor_to_pil(torch.zeros(1, 3, 2)).mode == "L"
    assert tensor_to_pil(torch.zeros(3, 2)).size == (2, 3)
    assert tensor_to_pil(torch.zeros(4, 3, 2)).mode == "RGBA"
    # clamped and rounded, any float dtype
    clamped = tensor_to_pil(torch.tensor([[[-1.0, 2.0, 0.5]]], dtype=torch.bfloat16))
    assert np.asarray(clamped).tolist() == [[0, 255, 128]]
    with pytest.raises(ValueError):
        tensor_to_pil(torch.zeros(5, 2, 2))


def test_pil_to_tensor_any_mode():
    assert_close(pil_to_tensor(Image.new("L", (2, 2), 255)), torch.ones(3, 2, 2))
    assert_close(pil_to_tensor(Image.new("RGBA", (2, 2), (0, 0, 0, 0))), torch.ones(3, 2, 2))
    cmyk = pil_to_tensor(Image.new("CMYK", (1, 1), (255, 0, 255, 0)))  # green
    assert_close(cmyk[:, 0, 0], torch.tensor([0.0, 1.0, 0.0]))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Image.new("RGBA", (3, 2), (255, 0, 0, 77)),
        lambda: Image.new("LA", (3, 2), (10, 200)),
        lambda: Image.new("L", (3, 2), 33),
        lambda: Image.fromarray(np.array([[0, 257, 40000]] * 2, dtype=np.uint16)),
    ],
)
def test_load_array_matches_load_image(tmp_path, make):
    make().save(tmp_path / "x.png")
    arr = load_array(tmp_path / "x.png")
    assert arr.dtype == np.uint8 and arr.shape == (2, 3, 3)
    expected = (load_image(tmp_path / "x.png") * 255).round().to(torch.uint8).permute(1, 2, 0)
    assert np.array_equal(arr, expected.numpy())


def test_save_grid(tmp_path):
    batch = torch.stack([torch.full((3, 8, 8), v) for v in (0.2, 0.4, 0.6, 0.8)])
    out = save_grid(batch, tmp_path / "grid.png", nrow=2, padding=2)
    grid = load_image(out)
    assert grid.shape == (3, 2 * 8 + 3 * 2, 2 * 8 + 3 * 2)
    quantise = lambda v: round(v * 255) / 255  # noqa: E731
    assert grid[0, 2 + 4, 2 + 4].item() == pytest.approx(quantise(0.2))
    assert grid[0, 2 + 4, 12 + 4].item() == pytest.approx(quantise(0.4))
    assert grid[0, 12 + 4, 2 + 4].item() == pytest.approx(quantise(0.6))
    assert grid[0, 12 + 4, 12 + 4].item() == pytest.approx(quantise(0.8))
    assert grid[:, 0, 0].tolist() == [0.0, 0.0, 0.0]  # padding
    # grids are rewritten each epoch: overwrite is the default; one grayscale image is itself
    save_grid(batch[:1].mean(1, keepdim=True), out)
    assert_close(load_image(out), torch.full((3, 8, 8), quantise(0.2)))
    with pytest.raises(ValueError, match="N, C, H, W"):
        save_grid(torch.zeros(3, 8, 8), tmp_path / "bad.png")


# ------------------------------------------------------------------------------------------------
# listing
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "photos"
    for rel in [
        "b.png",
        "a.JPG",
        "c.webp",
        "Z.tiff",
        "notes.txt",
        "no_suffix",
        ".hidden.png",
        "sub/d.png",
        "sub/deeper/e.bmp",
        "sub/.secret.jpg",
        ".cache/f.png",
        "a_dir/g.jpeg",
    ]:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")
    return root


def test_list_images_flat(tree):
    names = [p.relative_to(tree).as_posix() for p in list_images(tree)]
    assert names == ["Z.tiff", "a.JPG", "b.png", "c.webp"]


def test_list_images_recursive(tree):
    names = [p.relative_to(tree).as_posix() for p in list_images([tree], recursive=True)]
    assert names == [
        "Z.tiff",
        "a.JPG",
        "a_dir/g.jpeg",
        "b.png",
        "c.webp",
        "sub/d.png",
        "sub/deeper/e.bmp",
    ]
    assert list_images(str(tree), recursive=True) == list_images([tree], recursive=True)


def test_list_images_mixed_inputs_keep_order(tree, tmp_path):
    extra = tmp_path / "later.txt"  # named directly: kept whatever its suffix
    extra.write_bytes(b"x")
    hidden = tree / ".hidden.png"  # named directly: kept although hidden
    got = list_images([extra, tree / "sub", hidden, tree / "b.png", tree / "sub" / "d.png"])
    assert got == [extra, tree / "sub" / "d.png", hidden, tree / "b.png"]  # duplicate d.png once


def test_list_images_missing_input(tree):
    with pytest.raises(ImageError, match="no such file") as info:
        list_images([tree, tree / "nope.png"])
    assert info.value.path == tree / "nope.png"


def test_list_images_symlinked_folders(tree, tmp_path):
    (tree / "sub" / "loop").symlink_to(tree)  # a cycle: must not recurse forever
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "h.png").write_bytes(b"x")
    (tree / "linked").symlink_to(elsewhere)  # a linked data folder is followed
    got = [p.relative_to(tree).as_posix() for p in list_images(tree, recursive=True)]
    assert got == [
        "Z.tiff",
        "a.JPG",
        "a_dir/g.jpeg",
        "b.png",
        "c.webp",
        "linked/h.png",
        "sub/d.png",
        "sub/deeper/e.bmp",
    ]


def test_walk_images_relative_paths(tree):
    pairs = walk_images([tree, tree / "sub" / "deeper" / "e.bmp"], recursive=True)
    rels = [rel.as_posix() for _, rel in pairs]
    assert rels == [
        "Z.tiff",
        "a.JPG",
        "a_dir/g.jpeg",
        "b.png",
        "c.webp",
        "sub/d.png",
        "sub/deeper/e.bmp",
    ]
    # e.bmp named again directly is a duplicate: listed once, at its first place
    pairs = walk_images([tree / "sub" / "deeper" / "e.bmp", tree / "sub"], recursive=True)
    assert [(f.name, rel.as_posix()) for f, rel in pairs] == [
        ("e.bmp", "e.bmp"),
        ("d.png", "d.png"),
    ]
    for file, rel in walk_images(tree / "sub", recursive=True):
        assert file == tree / "sub" / rel


def test_walk_real_images_then_load(tmp_path):
    # the two halves together: what a batch job does
    for i, colour in enumerate(["red", "lime", "blue"]):
        Image.new("RGB", (4, 4), colour).save(tmp_path / f"{i}.png")
    loaded = [load_image(p) for p in list_images(tmp_path)]
    assert [t[:, 0, 0].argmax().item() for t in loaded] == [0, 1, 2]


def test_module_all_is_importable():
    for name in images.__all__:
        assert hasattr(images, name)
