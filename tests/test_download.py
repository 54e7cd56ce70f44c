"""download() against a local HTTP server on 127.0.0.1, and safe_extract() on hostile archives."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.http_server import LocalHTTPServer
from transfigure.download import (
    DownloadError,
    cache_dir,
    download,
    removing_empty_folders,
    safe_extract,
)
from transfigure.progress import Event


@pytest.fixture
def server(tmp_path: Path):
    with LocalHTTPServer(tmp_path / "served") as srv:
        yield srv


def _payload(n: int = 600_000) -> bytes:
    # Deterministic, incompressible-looking bytes, more than two read chunks long.
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(counter.to_bytes(8, "little")).digest()
        counter += 1
    return bytes(out[:n])


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- download ---------------------------------------------------------------------------------


def test_plain_download_with_events(server: LocalHTTPServer, tmp_path: Path) -> None:
    data = _payload()
    (server.root / "weights.bin").write_bytes(data)
    events: list[Event] = []
    dest = tmp_path / "out" / "weights.bin"

    result = download(server.url("weights.bin"), dest, sha256=_sha(data), callback=events.append)

    assert result == dest
    assert dest.read_bytes() == data
    assert not (tmp_path / "out" / "weights.bin.part").exists()
    assert [r.range for r in server.requests] == [None]
    assert {e.task for e in events} == {"weights.bin"}
    assert {e.unit for e in events} == {"B"}
    assert all(e.total == len(data) for e in events)
    completed = [e.completed for e in events]
    assert completed == sorted(completed) and completed[0] == 0
    assert len(events) >= 4  # several chunks reported, not just start and end
    assert events[-1].done and events[-1].completed == len(data)
    assert sum(e.done for e in events) == 1


def test_existing_file_is_not_downloaded_again(server: LocalHTTPServer, tmp_path: Path) -> None:
    data = _payload(1000)
    (server.root / "f.bin").write_bytes(data)
    dest = download(server.url("f.bin"), tmp_path / "f.bin", sha256=_sha(data))
    download(server.url("f.bin"), dest, sha256=_sha(data))
    download(server.url("f.bin"), dest)
    assert len(server.requests) == 1
    # A stale file (checksum differs) is fetched again.
    dest.write_bytes(b"stale")
    download(server.url("f.bin"), dest, sha256=_sha(data))
    assert dest.read_bytes() == data and len(server.requests) == 2
    # overwrite=True always fetches.
    download(server.url("f.bin"), dest, overwrite=True)
    assert len(server.requests) == 3


def test_checksum_mismatch(server: LocalHTTPServer, tmp_path: Path) -> None:
    (server.root / "f.bin").write_bytes(_payload(5000))
    dest = tmp_path / "f.bin"
    wrong = "0" * 64
    with pytest.raises(DownloadError, match="checksum mismatch") as info:
        download(server.url("f.bin"), dest, sha256=wrong)
    assert server.url("f.bin") in str(info.value)
    assert wrong in str(info.value)
    assert list(tmp_path.iterdir()) == [server.root]  # neither dest nor dest.part


def test_resume_partial_download(server: LocalHTTPServer, tmp_path: Path) -> None:
    data = _payload()
    (server.root / "big.bin").write_bytes(data)
    dest = tmp_path / "big.bin"
    (tmp_path / "big.bin.part").write_bytes(data[:1000])
    events: list[Event] = []

    download(server.url("big.bin"), dest, sha256=_sha(data), callback=events.append)

    assert [r.range for r in server.requests] == ["bytes=1000-"]
    assert dest.read_bytes() == data
    assert not (tmp_path / "big.bin.part").exists()
    assert events[0].completed == 1000 and events[0].total == len(data)


def test_server_ignoring_range_restarts(server: LocalHTTPServer, tmp_path: Path) -> None:
    data = _payload(50_000)
    (server.root / "f.bin").write_bytes(data)
    server.ignore_range = True
    # A wrong prefix: appending the full 200 body to it would give a corrupt file.
    (tmp_path / "f.bin.part").write_bytes(b"x" * 777)
    dest = download(server.url("f.bin"), tmp_path / "f.bin", sha256=_sha(data))
    assert [r.range for r in server.requests] == ["bytes=777-"]
    assert dest.read_bytes() == data


def test_dropped_connection_keeps_part_and_resumes(server: LocalHTTPServer, tmp_path: Path) -> None:
    data = _payload()
    (server.root / "f.bin").write_bytes(data)
    server.cut_after["f.bin"] = 300_000
    dest = tmp_path / "f.bin"
    with pytest.raises(DownloadError, match="run again to resume") as info:
        download(server.url("f.bin"), dest, sha256=_sha(data))
    assert server.url("f.bin") in str(info.value)
    assert not dest.exists()
    part = tmp_path / "f.bin.part"
    assert part.stat().st_size == 300_000

    download(server.url("f.bin"), dest, sha256=_sha(data))
    assert [r.range for r in server.requests] == [None, "bytes=300000-"]
    assert dest.read_bytes() == data


def test_complete_part_answered_416_is_finished(server: LocalHTTPServer, tmp_path: Path) -> None:
    data = _payload(4000)
    (server.root / "f.bin").write_bytes(data)
    (tmp_path / "f.bin.part").write_bytes(data)  # fully downloaded, but never renamed
    dest = download(server.url("f.bin"), tmp_path / "f.bin", sha256=_sha(data))
    assert [r.range for r in server.requests] == ["bytes=4000-"]
    assert dest.read_bytes() == data


def test_resume_false_starts_over(server: LocalHTTPServer, tmp_path: Path) -> None:
    data = _payload(4000)
    (server.root / "f.bin").write_bytes(data)
    (tmp_path / "f.bin.part").write_bytes(b"junk")
    dest = download(server.url("f.bin"), tmp_path / "f.bin", resume=False)
    assert [r.range for r in server.requests] == [None]
    assert dest.read_bytes() == data


def test_http_404(server: LocalHTTPServer, tmp_path: Path) -> None:
    url = server.url("missing.zip")
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        download(url, tmp_path / "sub" / "missing.zip")
    assert url in str(info.value)
    assert not (tmp_path / "sub").exists()  # no folder is made for a file that never came


def test_connection_refused(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port that was free a moment ago, and now has no listener
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/f.bin"
    with pytest.raises(DownloadError, match="refused") as info:
        download(url, tmp_path / "a" / "b" / "f.bin", timeout=5)
    assert url in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_removing_empty_folders_keeps_what_existed_or_holds_files(tmp_path: Path) -> None:
    (tmp_path / "old").mkdir()
    with pytest.raises(RuntimeError), removing_empty_folders(tmp_path / "old" / "x" / "y" / "z"):
        (tmp_path / "old" / "x" / "y" / "z").mkdir(parents=True)
        raise RuntimeError("failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]
    assert list((tmp_path / "old").iterdir()) == []  # it existed before: kept
    with removing_empty_folders(tmp_path / "old" / "x" / "y"):
        (tmp_path / "old" / "x" / "y").mkdir(parents=True)
        (tmp_path / "old" / "x" / "kept.txt").write_text("a file")
    assert [p.name for p in (tmp_path / "old" / "x").iterdir()] == ["kept.txt"]


def test_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TRANSFIGURE_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("TRANSFIGURE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "transfigure"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "transfigure"


# --- safe_extract -----------------------------------------------------------------------------


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries.items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    mode = "w:gz" if path.name.endswith(".gz") else "w"
    with tarfile.open(path, mode) as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_extract_zip(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "a.zip",
        {
            "horse2zebra/trainA/1.jpg": b"one",
            "horse2zebra/trainB/2.jpg": b"two",
            "horse2zebra/": b"",
        },
    )
    dest = tmp_path / "data"
    paths = safe_extract(archive, dest)
    assert paths == [dest / "horse2zebra/trainA/1.jpg", dest / "horse2zebra/trainB/2.jpg"]
    assert (dest / "horse2zebra/trainA/1.jpg").read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "data"]  # no temp folder

    # Into an existing folder: new top-level entries are added, existing ones never overwritten.
    other = _zip(tmp_path / "b.zip", {"apple2orange/x.txt": b"x"})
    safe_extract(other, dest)
    assert sorted(p.name for p in dest.iterdir()) == ["apple2orange", "horse2zebra"]
    with pytest.raises(DownloadError, match="would overwrite"):
        safe_extract(archive, dest)
    assert (dest / "horse2zebra/trainA/1.jpg").read_bytes() == b"one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.zip", "b.zip", "data"]


def test_extract_tar_gz_with_internal_links(tmp_path: Path) -> None:
    archive = _tar(
        tmp_path / "a.tar.gz",
        [
            (_member("d", tarfile.DIRTYPE), None),
            (_member("d/file.txt"), b"hello"),
            (_member("d/sub", tarfile.DIRTYPE), None),
            (_member("d/sub/rel", tarfile.SYMTYPE, "../file.txt"), None),
            (_member("d/hard.txt", tarfile.LNKTYPE, "d/file.txt"), None),
        ],
    )
    dest = tmp_path / "out"
    paths = safe_extract(archive, dest)
    assert paths == [dest / "d/file.txt", dest / "d/sub/rel", dest / "d/hard.txt"]
    assert (dest / "d/sub/rel").is_symlink()
    assert (dest / "d/sub/rel").read_bytes() == b"hello"
    assert (dest / "d/hard.txt").read_bytes() == b"hello"


def _assert_nothing_written(tmp_path: Path, before: set[str]) -> None:
    assert _listing(tmp_path) == before


def test_zip_with_dotdot_entry_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    archive = _zip(tmp_path / "evil.zip", {"good/ok.txt": b"fine", "../evil": b"pwned"})
    before = _listing(tmp_path)
    with pytest.raises(DownloadError, match=r"refusing entry '\.\./evil'.*'\.\.'") as info:
        safe_extract(archive, work / "dest")
    assert str(archive) in str(info.value)
    _assert_nothing_written(tmp_path, before)  # no evil, no dest, no temp folder
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("name", ["/abs.txt", "C:/windows.txt", "a/../../b.txt", "a\\..\\..\\c"])
def test_zip_with_unsafe_names_is_refused(tmp_path: Path, name: str) -> None:
    archive = _zip(tmp_path / "evil.zip", {"ok.txt": b"", name: b"x"})
    before = _listing(tmp_path)
    with pytest.raises(DownloadError, match="refusing entry"):
        safe_extract(archive, tmp_path / "dest")
    _assert_nothing_written(tmp_path, before)


@pytest.mark.parametrize(
    "members, reason",
    [
        ([(_member("/etc/evil.txt"), b"x")], "absolute path"),
        ([(_member("ok/../../evil.txt"), b"x")], r"'\.\.'"),
        ([(_member("ok/link", tarfile.SYMTYPE, "../../outside"), None)], "outside"),
        ([(_member("link", tarfile.SYMTYPE, "/etc/passwd"), None)], "outside"),
        ([(_member("hard", tarfile.LNKTYPE, "../outside.txt"), None)], "outside"),
        ([(_member("hard", tarfile.LNKTYPE, "never-extracted.txt"), None)], "not a file"),
        ([(_member("dev", tarfile.CHRTYPE), None)], "device file"),
        ([(_member("blk", tarfile.BLKTYPE), None)], "device file"),
        ([(_member("fifo", tarfile.FIFOTYPE), None)], "special file"),
        (
            # A link that stays inside, then a file written through it.
            [
                (_member("up", tarfile.SYMTYPE, "."), None),
                (_member("up/x.txt"), b"x"),
            ],
            "through a link",
        ),
    ],
    ids=[
        "abs",
        "dotdot",
        "symlink-up",
        "symlink-abs",
        "hardlink-up",
        "hardlink-missing",
        "chardev",
        "blockdev",
        "fifo",
        "through-link",
    ],
)
def test_tar_with_unsafe_members_is_refused(tmp_path: Path, members: list, reason: str) -> None:
    archive = _tar(tmp_path / "evil.tar", [(_member("fine.txt"), b"fine"), *members])
    assert len(tarfile.open(archive).getmembers()) == len(members) + 1
    before = _listing(tmp_path)
    with pytest.raises(DownloadError, match=reason) as info:
        safe_extract(archive, tmp_path / "dest")
    assert str(archive) in str(info.value)
    _assert_nothing_written(tmp_path, before)


def test_absolute_name_survives_in_the_tar(tmp_path: Path) -> None:
    # The premise of the "abs" case: tarfile keeps the leading slash when writing by hand.
    archive = _tar(tmp_path / "abs.tar", [(_member("/etc/evil.txt"), b"x")])
    assert tarfile.open(archive).getnames() == ["/etc/evil.txt"]


def test_damaged_and_unknown_archives(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an archive")
    with pytest.raises(DownloadError, match="not a zip or tar archive"):
        safe_extract(text, tmp_path / "dest")
    with pytest.raises(DownloadError, match="no such file"):
        safe_extract(tmp_path / "absent.zip", tmp_path / "dest")

    good = _zip(tmp_path / "good.zip", {f"f{i}.bin": os.urandom(2000) for i in range(5)})
    damaged = tmp_path / "damaged.zip"
    blob = bytearray(good.read_bytes())
    blob[100:3000] = bytes(2900)  # zero out file data, keep the central directory
    damaged.write_bytes(bytes(blob))
    before = _listing(tmp_path)
    with pytest.raises(DownloadError, match="damaged archive"):
        safe_extract(damaged, tmp_path / "dest")
    _assert_nothing_written(tmp_path, before)
