"""Albumentations pipelines: shapes, ranges and known values for every preprocess mode."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from transfigure.datasets.transforms import (
    PREPROCESS_MODES,
    Pipeline,
    Resize,
    RoundToMultiple,
    ScaleWidth,
    ShortSide,
    array_to_tensor,
    denormalize,
    eval_transform,
    train_transform,
)


def _image(h: int, w: int, seed: int = 0, channels: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)


# (input H, W) -> expected (H, W) for load_size=32, crop_size=24, worked out by hand from the
# reference semantics (scale_width: width 32, height max(round(32 h / w), 24), then a multiple
# of 4; none: nearest multiple of 4).
EXPECTED = {
    (37, 53): {
        "resize_and_crop": (24, 24),
        "crop": (24, 24),
        "scale_width": (24, 32),  # 32 * 37 / 53 = 22.3 -> at least 24
        "scale_width_and_crop": (24, 24),
        "none": (36, 52),
    },
    (53, 37): {
        "resize_and_crop": (24, 24),
        "crop": (24, 24),
        "scale_width": (48, 32),  # 32 * 53 / 37 = 45.8 -> 46 -> multiple of 4: 48
        "scale_width_and_crop": (24, 24),
        "none": (52, 36),
    },
    (10, 14): {  # smaller than the crop: padded, not an error
        "resize_and_crop": (24, 24),
        "crop": (24, 24),
        "scale_width": (24, 32),
        "scale_width_and_crop": (24, 24),
        "none": (8, 16),  # round(2.5) = 2, round(3.5) = 4: half to even, as the reference
    },
}


def _checker(h: int, w: int, block: int = 8) -> np.ndarray:
    """Black and white blocks: every resize or crop keeps pure black and white somewhere."""
    yy, xx = np.mgrid[0:h, 0:w]
    on = ((yy // block + xx // block) % 2).astype(np.uint8) * 255
    return np.repeat(on[..., None], 3, axis=2)


@pytest.mark.parametrize("grayscale", [False, True])
@pytest.mark.parametrize("preprocess", PREPROCESS_MODES)
@pytest.mark.parametrize("size", list(EXPECTED))
def test_train_transform_shapes_and_range(size, preprocess, grayscale):
    t = train_transform(load_size=32, crop_size=24, preprocess=preprocess, grayscale=grayscale)
    out = t(_checker(*size))
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float32
    assert tuple(out.shape) == (1 if grayscale else 3, *EXPECTED[size][preprocess])
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert out.min() < -0.9 and out.max() > 0.9  # black and white survive


def test_default_train_transform_is_reference_286_to_256():
    out = train_transform()(_image(300, 400))
    assert tuple(out.shape) == (3, 256, 256)


@pytest.mark.parametrize("grayscale", [False, True])
@pytest.mark.parametrize("hw", [(37, 53), (17, 9), (64, 64), (2, 2)])
def test_eval_transform_keeps_size_rounded_to_multiple_of_4(hw, grayscale):
    out = eval_transform(grayscale=grayscale)(_image(*hw))
    expected = tuple(max(4, round(s / 4) * 4) for s in hw)
    assert tuple(out.shape) == (1 if grayscale else 3, *expected)


def test_eval_transform_explicit_sizes():
    img = _image(30, 50)
    assert tuple(eval_transform(size=28)(img).shape) == (3, 28, 28)
    assert tuple(eval_transform(size=(12, 20))(img).shape) == (3, 12, 20)
    assert tuple(eval_transform(size=16, keep_aspect=True)(img).shape) == (3, 16, 16)


def test_eval_transform_keep_aspect_takes_the_centre():
    # left third black, middle white, right third black: the centre square is white, but for
    # the bicubic kernel's reach into the black thirds at its two edge columns
    img = np.zeros((30, 90, 3), np.uint8)
    img[:, 30:60] = 255
    out = eval_transform(size=10, keep_aspect=True)(img)
    assert out.shape == (3, 10, 10)
    torch.testing.assert_close(out[:, :, 1:-1], torch.ones(3, 10, 8))
    assert 0.7 < out.min() < 1.0


def test_eval_transform_is_deterministic():
    t = eval_transform(size=24)
    img = _image(40, 30)
    torch.testing.assert_close(t(img), t(img), rtol=0, atol=0)


def test_normalisation_known_values():
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :, 0] = 0
    img[:, :, 1] = 51
    img[:, :, 2] = 255
    out = eval_transform()(img)
    torch.testing.assert_close(out[:, 0, 0], torch.tensor([-1.0, -0.6, 1.0]))
    torch.testing.assert_close(array_to_tensor(img), out)


def test_grayscale_uses_luma():
    img = np.zeros((8, 8, 3), np.uint8)
    img[..., 0] = 255  # pure red -> luma 0.299 * 255 = 76
    out = eval_transform(grayscale=True)(img)
    assert out.shape == (1, 8, 8)
    torch.testing.assert_close(out, torch.full((1, 8, 8), 76 / 127.5 - 1), atol=0.01, rtol=0)


def test_gray_input_is_accepted():
    gray = _image(8, 12, channels=1)
    out = eval_transform()(gray)
    assert out.shape == (3, 8, 12)
    torch.testing.assert_close(out[0], out[1])
    torch.testing.assert_close(eval_transform()(gray[..., 0]), out)


def test_flip_flips_sometimes_and_is_seeded():
    img = _image(8, 12)
    plain = array_to_tensor(img)
    t = train_transform(preprocess="none", flip=True)
    outcomes = []
    for seed in range(32):
        t.set_random_seed(seed)
        out = t(img)
        if torch.equal(out, plain):
            outcomes.append(False)
        else:
            torch.testing.assert_close(out, plain.flip(-1), rtol=0, atol=0)
            outcomes.append(True)
    assert 6 <= sum(outcomes) <= 26  # p = 0.5 over 32 draws
    t.set_random_seed(3)
    first = t(img)
    t.set_random_seed(3)
    torch.testing.assert_close(t(img), first, rtol=0, atol=0)


def test_no_flip_never_flips():
    img = _image(8, 12)
    t = train_transform(preprocess="none", flip=False)
    for seed in range(8):
        t.set_random_seed(seed)
        torch.testing.assert_close(t(img), array_to_tensor(img), rtol=0, atol=0)


def test_random_crop_moves_with_the_seed():
    img = _image(40, 40)
    t = train_transform(preprocess="crop", crop_size=16, flip=False)
    crops = set()
    for seed in range(10):
        t.set_random_seed(seed)
        crops.add(t(img).numpy().tobytes())
    assert len(crops) > 5
    # every crop is a window of the original image
    t.set_random_seed(0)
    out = t(img)
    full = array_to_tensor(img)
    windows = full.unfold(1, 16, 1).unfold(2, 16, 1)  # (3, 25, 25, 16, 16)
    match = (windows == out[:, None, None]).all(dim=(0, 3, 4))
    assert match.sum() == 1


def test_pipeline_pickles_for_dataloader_workers():
    t = train_transform(load_size=20, crop_size=16)
    clone = pickle.loads(pickle.dumps(t))
    img = _image(30, 30)
    t.set_random_seed(5)
    clone.set_random_seed(5)
    torch.testing.assert_close(clone(img), t(img), rtol=0, atol=0)
    assert isinstance(clone, Pipeline)


def test_round_to_multiple_transform():
    t = RoundToMultiple(4)
    assert t(image=_image(17, 9))["image"].shape == (16, 8, 3)
    assert t(image=_image(2, 2))["image"].shape == (4, 4, 3)
    img = _image(8, 12)
    np.testing.assert_array_equal(t(image=img)["image"], img)


def test_scale_width_transform_keeps_aspect():
    out = ScaleWidth(20)(image=_image(30, 40))["image"]
    assert out.shape == (15, 20, 3)
    img = _image(30, 20)
    np.testing.assert_array_equal(ScaleWidth(20, min_height=10)(image=img)["image"], img)


@pytest.mark.parametrize("channels", [1, 3])
def test_resizes_are_pils_antialiased_bicubic_as_in_the_reference(channels):
    from PIL import Image

    img = _image(40, 56, channels=channels)
    pil = Image.fromarray(img[..., 0] if channels == 1 else img)
    for out_hw in ((20, 28), (64, 80)):  # shrinking (antialiased) and enlarging
        want = np.asarray(pil.resize(out_hw[::-1], Image.Resampling.BICUBIC))
        got = Resize(*out_hw)(image=img)["image"]
        assert got.shape == (*out_hw, channels)
        np.testing.assert_array_equal(got.reshape(want.shape), want)
    # resize_and_crop with no room to crop is exactly the reference's transforms.Resize
    t = train_transform(load_size=24, crop_size=24, flip=False)
    rgb = _image(40, 56)
    want = np.asarray(Image.fromarray(rgb).resize((24, 24), Image.Resampling.BICUBIC))
    torch.testing.assert_close(t(rgb), array_to_tensor(want), rtol=0, atol=0)
    # a shrink low-passes: a one-pixel checkerboard becomes flat grey (OpenCV's plain bicubic
    # would alias it into a coarser pattern)
    board = (np.indices((64, 64)).sum(0) % 2 * 255).astype(np.uint8)[..., None].repeat(3, 2)
    assert np.ptp(Resize(16, 16)(image=board)["image"].astype(int)) <= 2
    short = ShortSide(20)(image=_image(40, 56))["image"]
    assert short.shape == (20, 28, 3)
    with pytest.raises(ValueError, match="uint8"):
        Resize(4, 4)(image=np.zeros((8, 8, 3), np.float32))


def test_denormalize():
    t = torch.tensor([-1.0, -0.5, 0.0, 1.0, 2.0, -3.0])
    torch.testing.assert_close(denormalize(t), torch.tensor([0.0, 0.25, 0.5, 1.0, 1.0, 0.0]))
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    torch.testing.assert_close(denormalize(x * 2 - 1), x)


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="preprocess must be one of"):
        train_transform(preprocess="resize")
    with pytest.raises(ValueError, match="load_size .* at least crop_size"):
        train_transform(load_size=128, crop_size=256)
    with pytest.raises(ValueError, match="uint8"):
        eval_transform()(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        eval_transform()(np.zeros((4, 4, 4), np.uint8))
    with pytest.raises(TypeError, match="numpy array"):
        eval_transform()(torch.zeros(3, 4, 4))
