"""Atomic file writes: a temp file in the same folder, fsync, then rename.

A reader never sees a half-written file, and an interrupted write (an exception or Ctrl-C) leaves
nothing behind at the target path; the previous file, if any, stays intact.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["append_jsonl", "atomic_path", "atomic_write", "write_json"]


def _umask_file_mode() -> int:
    # mkstemp creates 0600 files; finished files should get the usual permissions instead.
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _umask_file_mode()


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform lets a folder be opened.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it onto ``path`` when the block succeeds.

    For libraries that write by file name (PIL, ``torch.save``, safetensors). The temporary file
    keeps the target's suffix, so format detection by extension still works.

    Args:
        path: the final destination. Its parent folder is created if missing.

    Yields:
        A ``Path`` to write to. It is removed if the block raises (KeyboardInterrupt included).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, _FILE_MODE)
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; rename it onto ``path`` on success.

    Args:
        path: the final destination.
        mode: ``"wb"`` or ``"w"`` (text; ``encoding`` defaults to UTF-8).
        **kwargs: passed to ``open``.

    Yields:
        The open file object.
    """
    if "w" not in mode:
        raise ValueError(f"atomic_write needs a write mode, got {mode!r}")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle
        handle.flush()


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically. Returns the path written."""
    with atomic_write(path, "w") as handle:
        json.dump(obj, handle, indent=2, sort_keys=False, default=str)
        handle.write("\n")
    return Path(path)


def append_jsonl(path: str | os.PathLike[str], obj: Any) -> None:
    """Append one JSON line to ``path`` (created if missing) and flush it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(obj, default=str) + "\n")
        handle.flush()
