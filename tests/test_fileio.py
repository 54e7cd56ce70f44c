"""Atomic writes leave either the new file or the old one, never a partial one."""

from __future__ import annotations

import json
import os
import stat

import pytest

from transfigure.fileio import append_jsonl, atomic_path, atomic_write, write_json


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "out.bin"
    with atomic_write(target) as handle:
        handle.write(b"abc")
    assert target.read_bytes() == b"abc"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.bin"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failed_write_keeps_previous_file(tmp_path, error):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(error), atomic_write(target, "w") as handle:
        handle.write("half of the new")
        raise error()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_written_files_follow_the_umask(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    with atomic_write(tmp_path / "f.txt", "w") as handle:
        handle.write("x")
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o666 & ~mask


def test_atomic_path_keeps_suffix_for_format_detection(tmp_path):
    with atomic_path(tmp_path / "image.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "image.png").read_bytes() == b"x"


def test_atomic_write_refuses_read_mode(tmp_path):
    with pytest.raises(ValueError, match="write mode"), atomic_write(tmp_path / "x", "rb"):
        pass


def test_json_helpers(tmp_path):
    write_json(tmp_path / "c.json", {"a": 1, "b": [1, 2]})
    assert json.loads((tmp_path / "c.json").read_text()) == {"a": 1, "b": [1, 2]}
    append_jsonl(tmp_path / "m.jsonl", {"step": 1})
    append_jsonl(tmp_path / "m.jsonl", {"step": 2})
    lines = (tmp_path / "m.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2]
