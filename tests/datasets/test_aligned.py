"""Aligned pairs: identical crops and flips, both layouts, direction, skips, determinism."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from transfigure.datasets import train_transform
from transfigure.datasets.aligned import AlignedDataset, split_pair


def _texture(seed: int, h: int = 24, w: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


@pytest.fixture
def side_by_side(tmp_path: Path) -> Path:
    """train/ of A|B images where B is the negative of A (a pixel-wise function of it)."""
    root = tmp_path / "train"
    for i in range(4):
        a = _texture(i)
        _save(root / f"{i}.png", np.concatenate([a, 255 - a], axis=1))
    return root


def test_split_pair():
    a, b = split_pair(np.zeros((4, 10, 3), np.uint8))
    assert a.shape == b.shape == (4, 5, 3)
    for width in (9, 1):
        with pytest.raises(ValueError, match=f"width {width}"):
            split_pair(np.zeros((4, width, 3), np.uint8))


def test_identical_crops_and_flips(side_by_side):
    ds = AlignedDataset(
        side_by_side, transform=train_transform(preprocess="crop", crop_size=16), seed=3
    )
    seen = set()
    for epoch in range(6):
        ds.set_epoch(epoch)
        for i in range(len(ds)):
            item = ds[i]
            assert item["A"].shape == item["B"].shape == (3, 16, 16)
            # B is 255 - A pixel for pixel: only an identical crop and flip keeps that.
            torch.testing.assert_close(item["B"], -item["A"], atol=1e-6, rtol=0)
            seen.add(item["A"][:, 0, 0].numpy().tobytes())
    assert len(seen) > 12  # the crops and flips really vary


def test_identical_after_resize_and_crop(side_by_side):
    pipeline = train_transform(load_size=30, crop_size=16)
    ds = AlignedDataset(side_by_side, transform=pipeline, seed=0)
    for i in range(len(ds)):
        item = ds[i]
        torch.testing.assert_close(item["B"], -item["A"], atol=2.5 / 127.5, rtol=0)


def test_deterministic_per_seed_epoch_index(side_by_side):
    pipeline = train_transform(preprocess="crop", crop_size=16)
    one = AlignedDataset(side_by_side, transform=pipeline, seed=5)
    two = AlignedDataset(
        side_by_side, transform=train_transform(preprocess="crop", crop_size=16), seed=5
    )
    two.set_epoch(1)
    two.set_epoch(0)
    torch.testing.assert_close(one[2]["A"], two[2]["A"])
    one.set_epoch(1)
    assert not torch.equal(one[2]["A"], two[2]["A"])
    # the same in DataLoader workers
    loaded = next(iter(DataLoader(two, batch_size=4, num_workers=2)))
    torch.testing.assert_close(loaded["A"][2], two[2]["A"])


def test_direction_swaps_roles(side_by_side):
    a2b = AlignedDataset(side_by_side)[1]
    b2a = AlignedDataset(side_by_side, direction="BtoA")[1]
    torch.testing.assert_close(a2b["A"], b2a["B"])
    torch.testing.assert_close(a2b["B"], b2a["A"])
    assert a2b["A"].shape == (3, 24, 24)
    with pytest.raises(ValueError, match="direction"):
        AlignedDataset(side_by_side, direction="a2b")


def test_odd_width_and_unreadable_are_named_and_skipped(side_by_side, caplog):
    _save(side_by_side / "1.png", _texture(9, 24, 47))  # odd width
    (side_by_side / "2.png").write_text("not an image")
    ds = AlignedDataset(side_by_side)
    with caplog.at_level(logging.WARNING, logger="transfigure.datasets"):
        items = [ds[i] for i in range(len(ds))]
    assert [Path(it["A_path"]).name for it in items] == ["0.png", "3.png", "3.png", "3.png"]
    text = caplog.text
    assert "1.png" in text and "width 47" in text
    assert "2.png" in text and "unreadable" in text
    # reported once each
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="transfigure.datasets"):
        ds[1]
    assert caplog.text == ""


def test_two_folders_paired_by_name(tmp_path, caplog):
    for seed, name in enumerate(("x", "y", "sub/z")):
        a = _texture(seed, 16, 16)
        _save(tmp_path / "labels" / f"{name}.png", a)
        _save(tmp_path / "photos" / f"{name}.png", 255 - a)
    _save(tmp_path / "labels" / "lonely.png", _texture(1, 16, 16))
    _save(tmp_path / "photos" / "orphan.png", _texture(2, 16, 16))
    _save(tmp_path / "labels" / "big.png", _texture(3, 16, 16))
    _save(tmp_path / "photos" / "big.png", _texture(3, 20, 16))
    with caplog.at_level(logging.WARNING, logger="transfigure.datasets"):
        ds = AlignedDataset(
            dir_a=tmp_path / "labels",
            dir_b=tmp_path / "photos",
            transform=train_transform(preprocess="crop", crop_size=8),
        )
    assert "lonely.png" in caplog.text and "orphan.png" in caplog.text
    assert len(ds) == 4  # big, sub/z, x, y
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="transfigure.datasets"):
        items = [ds[i] for i in range(len(ds))]
    assert "big.png" in caplog.text and "same size" in caplog.text
    for item in items:
        assert Path(item["A_path"]).stem == Path(item["B_path"]).stem
        assert Path(item["A_path"]).parent.name != "photos"
        torch.testing.assert_close(item["B"], -item["A"], atol=1e-6, rtol=0)


def test_no_pairs_and_bad_arguments(tmp_path):
    _save(tmp_path / "a" / "one.png", _texture(0, 8, 8))
    _save(tmp_path / "b" / "two.png", _texture(0, 8, 8))
    with pytest.raises(ValueError, match="no pairs"):
        AlignedDataset(dir_a=tmp_path / "a", dir_b=tmp_path / "b")
    with pytest.raises(ValueError, match="either"):
        AlignedDataset(tmp_path / "a", dir_a=tmp_path / "a", dir_b=tmp_path / "b")
    with pytest.raises(ValueError, match="together"):
        AlignedDataset(dir_a=tmp_path / "a")
    with pytest.raises(FileNotFoundError):
        AlignedDataset(tmp_path / "missing")


def test_every_pair_unusable_is_an_error(tmp_path):
    _save(tmp_path / "t" / "odd.png", _texture(0, 8, 9))
    ds = AlignedDataset(tmp_path / "t")
    with pytest.raises(RuntimeError, match="no usable pair"):
        ds[0]
