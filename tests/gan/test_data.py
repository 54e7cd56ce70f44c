"""Resolving a DATA argument: folders, class folders, synthetic shapes, torchvision by name."""

from __future__ import annotations

import http.server
import struct
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from transfigure.gan.data import (
    DataError,
    DataNotFoundError,
    ImageTensorDataset,
    resolve_dataset,
    to_uint8_images,
)


def test_shapes_by_name():
    data = resolve_dataset("shapes:12", image_size=16, channels=1, seed=3)
    assert len(data) == 12 and data.classes == ("circle", "square", "triangle", "cross")
    image, label = data.dataset[0]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert 0 <= int(label) < 4
    again = resolve_dataset("shapes:12", image_size=16, channels=1, seed=3)
    torch.testing.assert_close(again.dataset[5][0], data.dataset[5][0], rtol=0, atol=0)
    assert len(resolve_dataset("Shapes", image_size=16, channels=3)) == 4000
    with pytest.raises(DataError, match="shapes:N"):
        resolve_dataset("shapes:many", image_size=16, channels=3)


def test_unknown_name_and_files_are_rejected(tmp_path):
    with pytest.raises(DataNotFoundError, match="not a known dataset name"):
        resolve_dataset(tmp_path / "missing", image_size=16, channels=3)
    (tmp_path / "a.png").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file"):
        resolve_dataset(tmp_path / "a.png", image_size=16, channels=3)
    with pytest.raises(DataError, match="channels"):
        resolve_dataset("shapes", image_size=16, channels=2)


def _write(path, size, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def test_image_folder_any_size_resized_and_cropped(tmp_path):
    _write(tmp_path / "a.png", (40, 20), (255, 0, 0))
    _write(tmp_path / "sub" / "b.jpg", (10, 30), (0, 0, 255))
    (tmp_path / "notes.txt").write_text("skip me")
    data = resolve_dataset(tmp_path, image_size=16, channels=3)
    assert len(data) == 2 and data.classes == ()
    red, label = data.dataset[0]
    assert red.shape == (3, 16, 16) and int(label) == -1
    torch.testing.assert_close(red[:, 8, 8], torch.tensor([1.0, -1.0, -1.0]))
    gray = resolve_dataset(tmp_path, image_size=16, channels=1).dataset[0][0]
    assert gray.shape == (1, 16, 16)
    assert gray.mean().item() == pytest.approx(0.299 * 2 - 1, abs=0.01)  # luma of red


def test_class_folders_for_a_conditional_gan(tmp_path):
    for name, colour in (("cats", (200, 0, 0)), ("dogs", (0, 200, 0))):
        for i in range(3):
            _write(tmp_path / name / f"{i}.png", (20, 20), colour)
    data = resolve_dataset(tmp_path, image_size=16, channels=3, labelled=True)
    assert data.classes == ("cats", "dogs") and len(data) == 6
    assert [int(data.dataset[i][1]) for i in range(6)] == [0, 0, 0, 1, 1, 1]
    flat = tmp_path / "flat"
    _write(flat / "x.png", (8, 8), (0, 0, 0))
    with pytest.raises(DataError, match="sub-folder"):
        resolve_dataset(flat, image_size=16, channels=3, labelled=True)


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match="no images"):
        resolve_dataset(tmp_path, image_size=16, channels=3)


def test_limit_takes_a_seeded_subset_across_classes(tmp_path):
    for name in ("a", "b"):
        for i in range(10):
            _write(tmp_path / name / f"{i}.png", (8, 8), (10 * i, 0, 0))
    data = resolve_dataset(tmp_path, image_size=16, channels=3, labelled=True, limit=6, seed=1)
    assert len(data) == 6 and data.limit == 6 and "limited to 6" in data.description
    labels = {int(data.dataset[i][1]) for i in range(6)}
    assert labels == {0, 1}  # not just the first class folder
    same = resolve_dataset(tmp_path, image_size=16, channels=3, labelled=True, limit=6, seed=1)
    assert same.dataset.indices == data.dataset.indices


def test_to_uint8_images_converts_channels_and_size():
    rgb = np.zeros((2, 8, 8, 3), np.uint8)
    rgb[..., 1] = 200
    out = to_uint8_images(rgb, size=4, channels=1)
    assert out.shape == (2, 1, 4, 4) and out.dtype == torch.uint8
    assert int(out[0, 0, 0, 0]) == round(0.587 * 200)
    gray = np.full((3, 28, 28), 77, np.uint8)
    out = to_uint8_images(gray, size=32, channels=3)
    assert out.shape == (3, 3, 32, 32) and int(out.min()) == int(out.max()) == 77
    with pytest.raises(ValueError, match="uint8"):
        to_uint8_images(np.zeros((1, 4, 4), np.float32), size=4, channels=1)


def test_image_tensor_dataset_serves_minus_one_to_one():
    ds = ImageTensorDataset(torch.tensor([0, 255], dtype=torch.uint8).view(2, 1, 1, 1))
    assert ds[0][0].item() == -1.0 and ds[1][0].item() == 1.0 and int(ds[0][1]) == -1


def _fake_mnist(root, n=6):
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    images = (np.arange(n * 28 * 28) % 256).astype(np.uint8).reshape(n, 28, 28)
    labels = (np.arange(n) % 10).astype(np.uint8)
    for prefix in ("train", "t10k"):
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(
            struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes()
        )
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(
            struct.pack(">II", 2049, n) + labels.tobytes())  # fmt: skip
    return images, labels


def test_torchvision_dataset_read_from_its_folder(tmp_path):
    images, labels = _fake_mnist(tmp_path)
    data = resolve_dataset("MNIST", image_size=28, channels=1, root=tmp_path, download=False)
    assert len(data) == 6 and len(data.classes) == 10
    image, label = data.dataset[3]
    assert image.shape == (1, 28, 28) and int(label) == 3
    expected = torch.from_numpy(images[3]).float() / 127.5 - 1
    torch.testing.assert_close(image[0], expected)
    rgb = resolve_dataset("mnist", image_size=32, channels=3, root=tmp_path, download=False)
    assert rgb.dataset[0][0].shape == (3, 32, 32)


def test_missing_torchvision_dataset_without_download(tmp_path):
    with pytest.raises(DataError, match="not found under"):
        resolve_dataset("fashion-mnist", image_size=28, channels=1, root=tmp_path, download=False)


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        self.send_error(404)

    def log_message(self, *args):
        pass


def test_failed_download_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision.datasets as tvd

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setattr(tvd.MNIST, "mirrors", [f"http://127.0.0.1:{server.server_port}/"])
        with pytest.raises(DataError, match="could not download it") as info:
            resolve_dataset("mnist", image_size=28, channels=1, root=tmp_path)
        assert "offline" in str(info.value) and str(tmp_path) in str(info.value)
    finally:
        server.shutdown()
        server.server_close()
