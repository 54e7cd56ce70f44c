"""The pix2pix reference's aligned datasets in the catalog: URLs, tar.gz download, layout."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.http_server import LocalHTTPServer
from transfigure.datasets.aligned import AlignedDataset
from transfigure.datasets.catalog import (
    DEFAULT_PIX2PIX_DATASETS_URL,
    PIX2PIX_DATASETS,
    dataset_url,
    download_dataset,
)


def test_urls_follow_the_reference_script(monkeypatch):
    monkeypatch.delenv("TRANSFIGURE_PIX2PIX_DATASETS_URL", raising=False)
    assert DEFAULT_PIX2PIX_DATASETS_URL == "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets"
    assert sorted(PIX2PIX_DATASETS.values()) == sorted(
        ["facades", "cityscapes", "maps", "edges2shoes", "edges2handbags", "night2day"]
    )
    assert dataset_url("facades_pix2pix") == f"{DEFAULT_PIX2PIX_DATASETS_URL}/facades.tar.gz"
    assert dataset_url("night2day") == f"{DEFAULT_PIX2PIX_DATASETS_URL}/night2day.tar.gz"
    # the CycleGAN facades are still the CycleGAN archive
    assert dataset_url("facades").endswith("/cyclegan/datasets/facades.zip")
    monkeypatch.setenv("TRANSFIGURE_PIX2PIX_DATASETS_URL", "http://127.0.0.1:9/m/")
    assert dataset_url("edges2shoes") == "http://127.0.0.1:9/m/edges2shoes.tar.gz"


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with LocalHTTPServer(tmp_path / "served") as srv:
        monkeypatch.setenv("TRANSFIGURE_PIX2PIX_DATASETS_URL", srv.base_url + "/")
        yield srv


def test_download_tar_gz_and_read_it_as_pairs(server: LocalHTTPServer, tmp_path: Path):
    rng = np.random.default_rng(0)
    archive = server.root / "facades.tar.gz"
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tf:
        for split, n in (("train", 3), ("val", 1)):
            for i in range(n):
                data = _png(rng.integers(0, 256, (8, 16, 3), dtype=np.uint8))
                info = tarfile.TarInfo(f"facades/{split}/{i + 1}.jpg")
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
    folder = download_dataset("facades_pix2pix", tmp_path / "data")
    assert folder == tmp_path / "data" / "facades_pix2pix"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "train",
        "val",
    ]
    ds = AlignedDataset(folder / "train")
    assert len(ds) == 3 and ds[0]["A"].shape == (3, 8, 8)
