"""Fetching files from the internet and unpacking archives, safely.

- :func:`download` streams a URL to ``DEST.part`` (resuming an interrupted download with an HTTP
  Range request), verifies an optional SHA-256, then renames the file into place, so ``DEST``
  only ever exists complete. Progress is reported as :class:`transfigure.progress.Event`\\ s.
- :func:`safe_extract` unpacks a zip or tar archive after checking every entry: absolute paths,
  ``..`` components, links leading outside the target and device files are refused. It unpacks
  into a temporary folder beside the target and moves the result into place, so a refused or
  broken archive leaves nothing half-extracted.
- :func:`cache_dir` is where downloaded weights and archives are kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import posixpath
import re
import shutil
import socket
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import transfigure
from transfigure.events import Event

__all__ = ["DownloadError", "cache_dir", "download", "removing_empty_folders", "safe_extract"]

_CHUNK = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIABLE_RANGE = re.compile(r"bytes\s+\*/(\d+)")


class DownloadError(Exception):
    """A download or an extraction failed; the message names the URL or file and the reason."""


@contextlib.contextmanager
def removing_empty_folders(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Remove, when the block ends, the folders on the way to ``folder`` that it created and
    left empty (whether it succeeded or failed); folders that existed before are kept."""
    folder = Path(folder)
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        yield
    finally:
        for path in missing:  # deepest first
            try:
                path.rmdir()
            except FileNotFoundError:  # never made
                continue
            except OSError:  # not empty: neither are the folders above it
                break


def cache_dir() -> Path:
    """The folder for downloaded files (not created here).

    ``$TRANSFIGURE_CACHE``, else ``$XDG_CACHE_HOME/transfigure``, else ``~/.cache/transfigure``.
    """
    env = os.environ.get("TRANSFIGURE_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "transfigure"


# --------------------------------------------------------------------------------------------
# download


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _open(url: str, offset: int, timeout: float) -> http.client.HTTPResponse:
    headers = {"User-Agent": f"transfigure/{transfigure.__version__}"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    return urllib.request.urlopen(request, timeout=timeout)


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} {error.reason}"
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        return str(reason.strerror if isinstance(reason, OSError) and reason.strerror else reason)
    if isinstance(error, (socket.timeout, TimeoutError)):
        return "timed out"
    return str(error) or type(error).__name__


def _emit(callback: Callable[[Event], None] | None, event: Event) -> None:
    if callback is not None:
        callback(event)


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    callback: Callable[[Event], None] | None = None,
    resume: bool = True,
    timeout: float = 60,
    overwrite: bool = False,
) -> Path:
    """Download ``url`` to ``dest``, streamed, resumable and verified.

    Bytes go to ``dest.part``; a ``.part`` left by an interrupted run is continued with an HTTP
    Range request (a server that ignores Range and answers 200 makes us start over). When the
    transfer is complete the SHA-256 is checked, then the file is renamed onto ``dest``.

    Args:
        url: ``http(s)://`` (or ``file://``) URL.
        dest: the final file; parent folders are created.
        sha256: expected hex digest; a mismatch removes the ``.part`` and raises.
        callback: receives ``Event(task=dest.name, completed=bytes, total=bytes | None,
            unit="B")`` as data arrives, and a final one with ``done=True``.
        resume: continue an existing ``.part`` (otherwise start from scratch).
        timeout: seconds to wait for the connection and for each read.
        overwrite: download even if ``dest`` exists. By default an existing ``dest`` is
            returned as is when it matches ``sha256`` (or no checksum was given).

    Returns:
        ``dest``.

    Raises:
        DownloadError: HTTP error, unreachable server, interrupted transfer (the ``.part`` is
            kept for resuming), or checksum mismatch; the message names the URL and the reason.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    expected = sha256.strip().lower() if sha256 else None
    task = dest.name

    if dest.exists() and not overwrite:
        if expected is None or _sha256_of(dest) == expected:
            size = dest.stat().st_size
            _emit(callback, Event(task=task, completed=size, total=size, unit="B", done=True))
            return dest
    if not resume:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    offset = part.stat().st_size if part.exists() else 0

    try:
        response = _open(url, offset, timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            # Our .part is at least as long as the file: complete (verified below) or stale.
            match = _UNSATISFIABLE_RANGE.match(e.headers.get("Content-Range", "") or "")
            if match and int(match.group(1)) == offset:
                return _finish(url, dest, part, expected, offset, callback)
            part.unlink()
            return download(
                url,
                dest,
                sha256=sha256,
                callback=callback,
                resume=False,
                timeout=timeout,
                overwrite=overwrite,
            )
        raise DownloadError(f"{url}: {_reason(e)}") from e
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        raise DownloadError(f"{url}: {_reason(e)}") from e

    # Folders are made once the server answers: an unreachable one leaves no empty folders.
    dest.parent.mkdir(parents=True, exist_ok=True)
    with response:
        status = getattr(response, "status", None) or response.getcode() or 200
        total: int | None = None
        mode = "wb"
        if status == 206 and offset:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", "") or "")
            if match is None or int(match.group(1)) != offset:
                raise DownloadError(
                    f"{url}: server answered a range other than the one asked for "
                    f"({response.headers.get('Content-Range')!r}); delete {part} and try again"
                )
            total = int(match.group(3)) if match.group(3) != "*" else None
            mode = "ab"
        else:
            # 200: a fresh download, or a server that ignored our Range header: start over.
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None

        completed = offset
        _emit(callback, Event(task=task, completed=completed, total=total, unit="B"))
        try:
            with open(part, mode) as handle:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    handle.write(chunk)
                    completed += len(chunk)
                    _emit(callback, Event(task=task, completed=completed, total=total, unit="B"))
                handle.flush()
                os.fsync(handle.fileno())
        except (OSError, http.client.HTTPException) as e:
            raise DownloadError(
                f"{url}: transfer interrupted after {completed} bytes ({_reason(e)}); "
                f"run again to resume from {part}"
            ) from e
    if total is not None and completed != total:
        raise DownloadError(
            f"{url}: connection closed after {completed} of {total} bytes; "
            f"run again to resume from {part}"
        )
    return _finish(url, dest, part, expected, completed, callback)


def _finish(
    url: str,
    dest: Path,
    part: Path,
    expected: str | None,
    size: int,
    callback: Callable[[Event], None] | None,
) -> Path:
    if expected is not None:
        actual = _sha256_of(part)
        if actual != expected:
            part.unlink()
            raise DownloadError(
                f"{url}: checksum mismatch (expected sha256 {expected}, got {actual}); "
                f"the partial file was removed"
            )
    os.replace(part, dest)
    _emit(callback, Event(task=dest.name, completed=size, total=size, unit="B", done=True))
    return dest


# --------------------------------------------------------------------------------------------
# extraction


def _entry_parts(name: str) -> list[str]:
    """Split an archive entry name into components, refusing absolute paths and ``..``."""
    # Windows-made archives may use backslashes; treat them as separators for the checks.
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or re.match(r"^[A-Za-z]:", normalised):
        raise ValueError("absolute path")
    parts = [p for p in normalised.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ValueError("'..' in path")
    return parts


def _relative(name: str) -> str:
    # Where zipfile / tarfile put an (already checked) entry: on POSIX only "/" separates.
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def _inside(root: str, path: str) -> bool:
    root = os.path.normpath(root)
    path = os.path.normpath(path)
    return path == root or path.startswith(root + os.sep)


def _check_tar_members(archive: Path, members: Iterable[tarfile.TarInfo]) -> list[str]:
    """Validate tar members before anything is written; returns the top-level names."""
    links: set[str] = set()
    files: set[str] = set()
    tops: set[str] = set()
    for member in members:
        try:
            parts = _entry_parts(member.name)
        except ValueError as e:
            raise DownloadError(f"{archive}: refusing entry {member.name!r}: {e}") from None
        if not parts:
            continue
        name = "/".join(parts)
        # Writing through a link extracted earlier could land anywhere the link points.
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in links:
                raise DownloadError(
                    f"{archive}: refusing entry {member.name!r}: path goes through a link"
                )
        if member.issym():
            target = member.linkname.replace("\\", "/")
            resolved = posixpath.normpath(posixpath.join("/root", posixpath.dirname(name), target))
            if target.startswith("/") or not _inside("/root", resolved):
                raise DownloadError(
                    f"{archive}: refusing entry {member.name!r}: symlink to {member.linkname!r} "
                    f"points outside the target folder"
                )
            links.add(name)
        elif member.islnk():
            try:
                target_parts = _entry_parts(member.linkname)
            except ValueError:
                raise DownloadError(
                    f"{archive}: refusing entry {member.name!r}: hard link to "
                    f"{member.linkname!r} points outside the target folder"
                ) from None
            if "/".join(target_parts) not in files:
                raise DownloadError(
                    f"{archive}: refusing entry {member.name!r}: hard link to "
                    f"{member.linkname!r}, which is not a file extracted before it"
                )
            files.add(name)
        elif member.isreg():
            files.add(name)
        elif not member.isdir():
            kind = "device file" if (member.ischr() or member.isblk()) else "special file"
            raise DownloadError(f"{archive}: refusing entry {member.name!r}: {kind}")
        tops.add(parts[0])
    return sorted(tops)


def _check_zip_members(archive: Path, infos: Iterable[zipfile.ZipInfo]) -> list[str]:
    tops: set[str] = set()
    for info in infos:
        try:
            parts = _entry_parts(info.filename)
        except ValueError as e:
            raise DownloadError(f"{archive}: refusing entry {info.filename!r}: {e}") from None
        if parts:
            tops.add(parts[0])
    return sorted(tops)


def _extract_into(archive: Path, staging: Path) -> tuple[list[str], list[str]]:
    """Check and unpack ``archive`` into the empty folder ``staging``.

    Returns (top-level names, relative paths of the files and links written).
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            tops = _check_zip_members(archive, infos)
            zf.extractall(staging)
            written = [_relative(i.filename) for i in infos if not i.is_dir()]
        return tops, [w for w in written if w]
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tf:
            members = tf.getmembers()
            tops = _check_tar_members(archive, members)
            kwargs = {}
            # Python's own "data" filter (3.10.12+/3.11.4+) re-checks links against the real
            # filesystem and strips unsafe permission bits: defence in depth.
            if hasattr(tarfile, "data_filter"):
                kwargs["filter"] = "data"
            tf.extractall(staging, members=members, **kwargs)
            written = [_relative(m.name) for m in members if not m.isdir()]
        return tops, [w for w in written if w]
    raise DownloadError(f"{archive}: not a zip or tar archive")


def _verify_links(archive: Path, staging: Path) -> None:
    root = os.path.realpath(staging)
    for folder, dirnames, filenames in os.walk(staging):
        for name in dirnames + filenames:
            path = os.path.join(folder, name)
            if os.path.islink(path) and not _inside(root, os.path.realpath(path)):
                rel = os.path.relpath(path, staging)
                raise DownloadError(f"{archive}: refusing entry {rel!r}: link leads outside")


def safe_extract(archive: str | os.PathLike[str], dest: str | os.PathLike[str]) -> list[Path]:
    """Unpack a ``.zip`` or ``.tar`` / ``.tar.gz`` / ``.tgz`` archive into ``dest``, safely.

    Every entry is checked before anything is written: absolute paths, ``..`` components,
    symbolic or hard links leading outside ``dest`` (or entries written through a link), and
    device / special files are refused. The archive is unpacked into a temporary folder beside
    ``dest`` and then moved into place, so a refused or damaged archive leaves nothing behind.
    ``dest`` is created if missing; if it exists, the archive's top-level entries must not
    already be there (nothing is overwritten).

    Args:
        archive: the archive file.
        dest: the folder to unpack into.

    Returns:
        The paths (under ``dest``) of the files and links extracted, in archive order.

    Raises:
        DownloadError: an unsafe entry, an entry that would overwrite something in ``dest``,
            a damaged archive, or a file that is neither zip nor tar.
    """
    archive = Path(archive)
    dest = Path(dest)
    if not archive.is_file():
        raise DownloadError(f"{archive}: no such file")
    if dest.exists() and not dest.is_dir():
        raise DownloadError(f"{dest}: exists and is not a folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.extract-", dir=dest.parent))
    try:
        try:
            tops, written = _extract_into(archive, staging)
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
            if isinstance(e, getattr(tarfile, "FilterError", ())):  # Python's own checks
                raise DownloadError(f"{archive}: refusing an entry: {e}") from e
            raise DownloadError(f"{archive}: damaged archive: {e}") from e
        _verify_links(archive, staging)

        if not dest.exists():
            os.replace(staging, dest)
        else:
            clashes = [t for t in tops if os.path.lexists(dest / t)]
            if clashes:
                raise DownloadError(
                    f"{archive}: would overwrite {', '.join(str(dest / c) for c in clashes)}; "
                    f"remove it or extract elsewhere"
                )
            for top in tops:
                if os.path.lexists(staging / top):
                    os.replace(staging / top, dest / top)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return [dest / rel for rel in written]
