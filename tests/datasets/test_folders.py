"""Folder datasets: listing, bad files, unpaired pairing, labels, determinism, DataLoader."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, default_collate

from transfigure.datasets import (
    ImageFolderDataset,
    LabelledFolderDataset,
    UnpairedDataset,
    eval_transform,
    train_transform,
)


def _write(path: Path, value: int, size: tuple[int, int] = (8, 12)) -> Path:
    """A constant-colour PNG whose colour identifies it: (value, 255 - value, 7)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    array = np.zeros((*size, 3), np.uint8)
    array[...] = (value, 255 - value, 7)
    Image.fromarray(array).save(path)
    return path


def _value(t: torch.Tensor) -> int:
    """The identifying value back from a normalised (3, H, W) tensor."""
    return int(round((float(t[0].mean()) + 1) * 127.5))


def _truncated_png(path: Path) -> Path:
    _write(path, 99, size=(32, 32))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _text_png(path: Path) -> Path:
    path.write_text("this is not an image\n")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "domain"
    for i, value in enumerate([10, 20, 30]):
        _write(root / f"img{i}.png", value)
    _write(root / "sub" / "deep.png", 40)
    _write(root / ".hidden.png", 50)
    (root / "notes.txt").write_text("not an image")
    return root


# ------------------------------------------------------------------------ ImageFolderDataset


def test_image_folder_lists_recursively_in_order(folder):
    ds = ImageFolderDataset(folder)
    assert [p.name for p in ds.paths] == ["img0.png", "img1.png", "img2.png", "deep.png"]
    assert [_value(ds[i]) for i in range(len(ds))] == [10, 20, 30, 40]
    assert len(ImageFolderDataset(folder, recursive=False)) == 3


def test_image_folder_without_transform_gives_normalised_tensor(folder):
    item = ImageFolderDataset(folder)[0]
    assert item.dtype == torch.float32 and item.shape == (3, 8, 12)
    expected = torch.tensor([10, 245, 7]) / 127.5 - 1
    torch.testing.assert_close(item[:, 0, 0], expected)
    torch.testing.assert_close(item[:, -1, -1], expected)


def test_image_folder_with_transform_and_paths(folder):
    files = [folder / "img2.png", folder / "sub"]
    ds = ImageFolderDataset(files, eval_transform(size=16))
    assert [p.name for p in ds.paths] == ["img2.png", "deep.png"]
    assert ds[1].shape == (3, 16, 16)
    assert ds[-1].shape == (3, 16, 16)
    with pytest.raises(IndexError):
        ds[2]


def test_empty_and_missing_folders_are_clear_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=f"no images found in folder {empty}"):
        ImageFolderDataset(empty)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageFolderDataset(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="no images"):
        UnpairedDataset(empty, empty)


@pytest.mark.parametrize("make_bad", [_truncated_png, _text_png])
def test_bad_file_is_warned_once_and_skipped(tmp_path, caplog, make_bad):
    root = tmp_path / "d"
    _write(root / "a.png", 10)
    bad = make_bad(root / "b.png")
    _write(root / "c.png", 30)
    ds = ImageFolderDataset(root)
    assert len(ds) == 3
    with caplog.at_level(logging.WARNING, logger="transfigure.datasets"):
        for _ in range(3):  # three epochs
            values = [_value(ds[i]) for i in range(len(ds))]
            assert values == [10, 30, 30]  # the bad file's slot gets the next good image
    warnings = [r for r in caplog.records if r.name == "transfigure.datasets"]
    assert len(warnings) == 1
    assert warnings[0].levelno == logging.WARNING
    assert str(bad) in warnings[0].getMessage()


def test_bad_last_file_wraps_to_the_first(tmp_path, caplog):
    root = tmp_path / "d"
    _write(root / "a.png", 10)
    _text_png(root / "z.png")
    with caplog.at_level(logging.WARNING, logger="transfigure.datasets"):
        assert _value(ImageFolderDataset(root)[1]) == 10
    assert "z.png" in caplog.text and "not an image" in caplog.text


def test_all_files_bad_is_an_error(tmp_path, caplog):
    root = tmp_path / "d"
    root.mkdir()
    _text_png(root / "a.png")
    _truncated_png(root / "b.png")
    ds = ImageFolderDataset(root)
    with caplog.at_level(logging.WARNING, logger="transfigure.datasets"):
        with pytest.raises(RuntimeError, match="every image in .* is unreadable"):
            ds[0]
    assert caplog.text.count("skipping unreadable image") == 2


def test_seed_none_follows_torch_manual_seed(folder):
    ds = ImageFolderDataset(folder, train_transform(preprocess="crop", crop_size=4), seed=None)
    torch.manual_seed(0)
    first = [ds[0] for _ in range(6)]
    torch.manual_seed(0)
    again = [ds[0] for _ in range(6)]
    for a, b in zip(first, again, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


# ------------------------------------------------------------------------ UnpairedDataset


@pytest.fixture
def domains(tmp_path: Path) -> tuple[Path, Path]:
    a, b = tmp_path / "trainA", tmp_path / "trainB"
    for i in range(3):
        _write(a / f"a{i}.png", 10 + i)
    for i in range(7):
        _write(b / f"b{i}.png", 100 + i)
    return a, b


def test_unpaired_sizes_and_a_order(domains):
    ds = UnpairedDataset(*domains)
    assert len(ds) == 7
    names = [Path(ds[i]["A_path"]).name for i in range(7)]
    assert names == ["a0.png", "a1.png", "a2.png", "a0.png", "a1.png", "a2.png", "a0.png"]
    item = ds[4]
    assert set(item) == {"A", "B", "A_path", "B_path"}
    assert _value(item["A"]) == 11
    assert isinstance(item["A_path"], str) and isinstance(item["B_path"], str)
    assert _value(item["B"]) == 100 + int(Path(item["B_path"]).stem[1:])


def test_unpaired_serial_pairs_in_order(domains):
    a, b = domains
    ds = UnpairedDataset(b, a, serial=True)  # A is now the larger domain
    assert len(ds) == 7
    assert [Path(ds[i]["B_path"]).name for i in range(7)] == [f"a{i % 3}.png" for i in range(7)]
    ds.set_epoch(5)  # serial pairing does not depend on the epoch
    assert [ds.b_index(i) for i in range(7)] == [i % 3 for i in range(7)]


def test_unpaired_random_pairing_is_deterministic_per_epoch(domains):
    ds1, ds2 = UnpairedDataset(*domains, seed=1), UnpairedDataset(*domains, seed=1)
    epoch0 = [ds1.b_index(i) for i in range(7)]
    assert epoch0 == [ds2.b_index(i) for i in range(7)]  # same seed, same epoch
    assert [Path(ds1[i]["B_path"]).name for i in range(7)] == [f"b{j}.png" for j in epoch0]
    ds1.set_epoch(1)
    epoch1 = [ds1.b_index(i) for i in range(7)]
    assert epoch1 != epoch0
    ds2.set_epoch(1)
    assert [ds2.b_index(i) for i in range(7)] == epoch1  # a resumed run sees the same pairs
    ds1.set_epoch(0)
    assert [ds1.b_index(i) for i in range(7)] == epoch0
    other = UnpairedDataset(*domains, seed=2)
    assert [other.b_index(i) for i in range(7)] != epoch0
    # over many epochs the draws cover B and are not the serial order
    seen = set()
    for epoch in range(20):
        ds1.set_epoch(epoch)
        seen.update(ds1.b_index(i) for i in range(7))
    assert seen == set(range(7))


def test_unpaired_augmentation_is_deterministic_per_epoch(tmp_path):
    rng = np.random.default_rng(0)
    for d in ("A", "B"):
        for i in range(2):
            (tmp_path / d).mkdir(exist_ok=True)
            array = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
            Image.fromarray(array).save(tmp_path / d / f"{i}.png")
    t = train_transform(load_size=20, crop_size=12)

    def epoch_items(epoch, seed=0):
        ds = UnpairedDataset(tmp_path / "A", tmp_path / "B", t, seed=seed)
        ds.set_epoch(epoch)
        return [ds[i] for i in range(len(ds))]

    first, again, later = epoch_items(0), epoch_items(0), epoch_items(1)
    for x, y in zip(first, again, strict=True):
        torch.testing.assert_close(x["A"], y["A"], rtol=0, atol=0)
        torch.testing.assert_close(x["B"], y["B"], rtol=0, atol=0)
    assert any(not torch.equal(x["A"], y["A"]) for x, y in zip(first, later, strict=True))
    assert first[0]["A"].shape == (3, 12, 12)


def test_unpaired_separate_transforms(domains):
    ds = UnpairedDataset(*domains, eval_transform(size=8), eval_transform(size=4, grayscale=True))
    item = ds[0]
    assert item["A"].shape == (3, 8, 8) and item["B"].shape == (1, 4, 4)
    same = UnpairedDataset(*domains, eval_transform(size=8))
    assert same[0]["B"].shape == (3, 8, 8)


def test_unpaired_bad_file_in_b_is_skipped(domains, caplog):
    a, b = domains
    _text_png(b / "b3.png")
    ds = UnpairedDataset(a, b, serial=True)
    with caplog.at_level(logging.WARNING, logger="transfigure.datasets"):
        names = [Path(ds[i]["B_path"]).name for i in range(7)]
        names += [Path(ds[i]["B_path"]).name for i in range(7)]
    assert names[3] == "b4.png"
    assert caplog.text.count("b3.png") == 1


def test_unpaired_collates_and_loads_with_two_workers(domains):
    ds = UnpairedDataset(*domains, train_transform(load_size=12, crop_size=8), seed=3)
    ds.set_epoch(2)
    batch = default_collate([ds[0], ds[1]])
    assert batch["A"].shape == (2, 3, 8, 8) and len(batch["B_path"]) == 2
    loader = DataLoader(ds, batch_size=3, num_workers=2, shuffle=False)
    batches = list(loader)
    assert [b["A"].shape[0] for b in batches] == [3, 3, 1]
    # per-item seeding: workers produce exactly what the main process does
    a_all = torch.cat([b["A"] for b in batches])
    b_all = torch.cat([b["B"] for b in batches])
    torch.testing.assert_close(a_all, torch.stack([ds[i]["A"] for i in range(7)]), rtol=0, atol=0)
    torch.testing.assert_close(b_all, torch.stack([ds[i]["B"] for i in range(7)]), rtol=0, atol=0)
    assert sum((b["B_path"] for b in batches), []) == [ds[i]["B_path"] for i in range(7)]


# ------------------------------------------------------------------------ LabelledFolderDataset


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    root = tmp_path / "classes"
    _write(root / "zebra" / "z0.png", 200)
    _write(root / "cat" / "c0.png", 10)
    _write(root / "cat" / "c1.png", 11)
    _write(root / "dog" / "nested" / "d0.png", 100)
    (root / ".cache").mkdir()
    _write(root / ".cache" / "x.png", 1)
    (root / "readme.txt").write_text("classes are folders")
    return root


def test_labelled_classes_and_items(labelled):
    ds = LabelledFolderDataset(labelled, eval_transform(size=4))
    assert ds.classes == ["cat", "dog", "zebra"]
    assert ds.class_to_idx == {"cat": 0, "dog": 1, "zebra": 2}
    assert ds.targets == [0, 0, 1, 2]
    assert len(ds) == 4
    image, label = ds[3]
    assert image.shape == (3, 4, 4) and label == 2 and _value(image) == 200
    batch = default_collate([ds[i] for i in range(4)])
    assert batch[0].shape == (4, 3, 4, 4)
    assert batch[1].tolist() == [0, 0, 1, 2] and batch[1].dtype == torch.int64


def test_labelled_bad_file_takes_the_label_of_its_replacement(labelled, caplog):
    _text_png(labelled / "cat" / "c2.png")  # last cat file: replaced by the first dog
    ds = LabelledFolderDataset(labelled)
    with caplog.at_level(logging.WARNING, logger="transfigure.datasets"):
        image, label = ds[2]
    assert ds.targets[2] == 0
    assert label == 1 and _value(image) == 100
    assert "c2.png" in caplog.text


def test_labelled_errors(tmp_path, labelled):
    flat = tmp_path / "flat"
    _write(flat / "a.png", 1)
    with pytest.raises(ValueError, match="no class sub-folders"):
        LabelledFolderDataset(flat)
    (labelled / "empty").mkdir()
    with pytest.raises(ValueError, match="empty holds no images"):
        LabelledFolderDataset(labelled)
    with pytest.raises(FileNotFoundError):
        LabelledFolderDataset(tmp_path / "missing")


def test_bare_albumentations_transform_is_accepted(folder):
    import albumentations as A

    ds = ImageFolderDataset(folder, A.Compose([A.Resize(4, 6)]), seed=0)
    assert ds[0].shape == (4, 6, 3) and ds[0].dtype == np.uint8
