"""The reference dataset catalog and `transfigure datasets`, against a server on 127.0.0.1."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from tests.http_server import LocalHTTPServer
from transfigure.cli import main
from transfigure.datasets.catalog import (
    DEFAULT_DATASETS_URL,
    UnknownDatasetError,
    dataset_url,
    download_dataset,
    list_datasets,
)
from transfigure.download import DownloadError, cache_dir
from transfigure.progress import Event

REFERENCE_NAMES = [
    "apple2orange",
    "summer2winter_yosemite",
    "horse2zebra",
    "monet2photo",
    "cezanne2photo",
    "ukiyoe2photo",
    "vangogh2photo",
    "maps",
    "cityscapes",
    "facades",
    "iphone2dslr_flower",
    "ae_photos",
    "grumpifycat",
    "mini",
    "mini_pix2pix",
    # the pix2pix reference's aligned datasets
    "facades_pix2pix",
    "cityscapes_pix2pix",
    "maps_pix2pix",
    "edges2shoes",
    "edges2handbags",
    "night2day",
]

# What a reference archive looks like: one NAME/ folder with the four splits.
H2Z_FILES = {
    "horse2zebra/trainA/n02381460_2.jpg": b"horse 1",
    "horse2zebra/trainA/n02381460_3.jpg": b"horse 2",
    "horse2zebra/trainB/n02391049_2.jpg": b"zebra 1",
    "horse2zebra/testA/n02381460_20.jpg": b"horse test",
    "horse2zebra/testB/n02391049_80.jpg": b"zebra test",
}


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with LocalHTTPServer(tmp_path / "served") as srv:
        monkeypatch.setenv("TRANSFIGURE_DATASETS_URL", srv.base_url + "/")
        yield srv


def test_catalog_names_and_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    assert list_datasets() == REFERENCE_NAMES
    monkeypatch.delenv("TRANSFIGURE_DATASETS_URL", raising=False)
    assert DEFAULT_DATASETS_URL == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
    assert dataset_url("horse2zebra") == f"{DEFAULT_DATASETS_URL}/horse2zebra.zip"
    monkeypatch.setenv("TRANSFIGURE_DATASETS_URL", "http://127.0.0.1:9/mirror/")
    assert dataset_url("maps") == "http://127.0.0.1:9/mirror/maps.zip"


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(UnknownDatasetError, match="did you mean horse2zebra") as info:
        dataset_url("hors2zebra")
    assert "available: apple2orange" in str(info.value)
    with pytest.raises(UnknownDatasetError) as info:
        download_dataset("zzzz", "unused")
    assert "did you mean" not in str(info.value)
    assert "horse2zebra" in str(info.value)  # still lists what exists


def test_download_dataset(server: LocalHTTPServer, tmp_path: Path) -> None:
    _zip(server.root / "horse2zebra.zip", H2Z_FILES)
    root = tmp_path / "datasets"
    events: list[Event] = []

    folder = download_dataset("horse2zebra", root, callback=events.append)

    assert folder == root / "horse2zebra"
    for name, data in H2Z_FILES.items():
        assert (root / name).read_bytes() == data
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == [
        "testA",
        "testB",
        "trainA",
        "trainB",
    ]
    assert sorted(p.name for p in root.iterdir()) == ["horse2zebra"]  # no staging left
    marker = json.loads((folder / ".transfigure-dataset.json").read_text())
    assert marker == {"name": "horse2zebra", "url": server.url("horse2zebra.zip"), "files": 5}
    assert not (cache_dir() / "datasets" / "horse2zebra.zip").exists()  # archive removed
    byte_events = [e for e in events if e.unit == "B"]
    assert byte_events and byte_events[-1].done
    assert byte_events[-1].completed == (server.root / "horse2zebra.zip").stat().st_size
    assert any(e.message and "extracting" in e.message for e in events)

    # Already complete: returned at once, no request.
    assert download_dataset("horse2zebra", root) == folder
    assert len(server.requests) == 1


def test_flat_archive_and_keep_archive(server: LocalHTTPServer, tmp_path: Path) -> None:
    _zip(server.root / "mini.zip", {"trainA/a.png": b"a", "trainB/b.png": b"b"})
    folder = download_dataset("mini", tmp_path / "d", keep_archive=True)
    assert (folder / "trainA" / "a.png").read_bytes() == b"a"
    assert (folder / "trainB" / "b.png").read_bytes() == b"b"
    assert (cache_dir() / "datasets" / "mini.zip").is_file()


def test_existing_foreign_folder_is_never_overwritten(
    server: LocalHTTPServer, tmp_path: Path
) -> None:
    _zip(server.root / "horse2zebra.zip", H2Z_FILES)
    mine = tmp_path / "datasets" / "horse2zebra"
    mine.mkdir(parents=True)
    (mine / "my_notes.txt").write_text("keep me")
    with pytest.raises(DownloadError, match="already exists"):
        download_dataset("horse2zebra", tmp_path / "datasets")
    assert [p.name for p in mine.iterdir()] == ["my_notes.txt"]
    assert server.requests == []
    # An empty folder is fine to fill.
    (mine / "my_notes.txt").unlink()
    download_dataset("horse2zebra", tmp_path / "datasets")
    assert (mine / "trainA" / "n02381460_2.jpg").is_file()


def test_unsafe_archive_is_refused_and_dropped(server: LocalHTTPServer, tmp_path: Path) -> None:
    _zip(server.root / "facades.zip", {"facades/trainA/1.jpg": b"x", "../../evil.txt": b"x"})
    root = tmp_path / "work" / "datasets"
    with pytest.raises(DownloadError, match="refusing entry"):
        download_dataset("facades", root)
    assert not list(tmp_path.rglob("evil.txt"))
    assert list(root.iterdir()) == []  # nothing half-extracted, no staging folder
    assert not (cache_dir() / "datasets" / "facades.zip").exists()  # not reused next time


def test_interrupted_download_resumes(server: LocalHTTPServer, tmp_path: Path) -> None:
    big = {f"maps/trainA/{i}.jpg": bytes([i]) * 50_000 for i in range(8)}
    archive = server.root / "maps.zip"
    _zip(archive, big)
    server.cut_after["maps.zip"] = archive.stat().st_size // 2
    with pytest.raises(DownloadError, match="resume"):
        download_dataset("maps", tmp_path / "d")
    assert not (tmp_path / "d" / "maps").exists()
    folder = download_dataset("maps", tmp_path / "d")
    assert server.requests[-1].range == f"bytes={archive.stat().st_size // 2}-"
    assert len(list((folder / "trainA").iterdir())) == 8


def test_missing_archive_on_server(server: LocalHTTPServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        download_dataset("cityscapes", tmp_path / "d")
    assert server.url("cityscapes.zip") in str(info.value)
    assert not (tmp_path / "d" / "cityscapes").exists()


# --- CLI --------------------------------------------------------------------------------------


def test_cli_list(runner) -> None:
    result = runner.invoke(main, ["datasets", "list"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == REFERENCE_NAMES  # not a terminal: bare names


def test_cli_download(runner, server: LocalHTTPServer, tmp_path: Path) -> None:
    _zip(server.root / "horse2zebra.zip", H2Z_FILES)
    root = tmp_path / "data"
    result = runner.invoke(main, ["datasets", "download", "horse2zebra", "--root", str(root)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [str(root / "horse2zebra")]
    assert (root / "horse2zebra" / "trainB" / "n02391049_2.jpg").read_bytes() == b"zebra 1"

    again = runner.invoke(
        main, ["--quiet", "datasets", "download", "horse2zebra", "--root", str(root)]
    )
    assert again.exit_code == 0
    assert again.stdout.splitlines() == [str(root / "horse2zebra")]
    assert len(server.requests) == 1


def test_cli_unknown_name_is_a_usage_error(runner, tmp_path: Path) -> None:
    result = runner.invoke(main, ["datasets", "download", "monet2phot", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert "did you mean monet2photo" in result.stderr
    assert result.stdout == ""


def test_cli_download_failure_exit_1(runner, server: LocalHTTPServer, tmp_path: Path) -> None:
    result = runner.invoke(main, ["datasets", "download", "maps", "--root", str(tmp_path)])
    assert result.exit_code == 1
    assert "HTTP 404" in result.stderr and "maps.zip" in result.stderr
    assert "TRANSFIGURE_DATASETS_URL" in result.stderr
    assert result.stdout == ""
