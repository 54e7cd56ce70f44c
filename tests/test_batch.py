"""The files → files batch job: skipping, failures, inputs protected, Ctrl-C, shared folders."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from transfigure.batch import BatchEvent, Claim, claim_path, run_batch
from transfigure.images import load_image


def write_image(path: Path, value: int, size: tuple[int, int] = (12, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


@pytest.fixture
def inputs(tmp_path) -> list[Path]:
    return [write_image(tmp_path / "in" / f"{i}.png", 10 * i) for i in range(5)]


def invert(jobs, images):
    return [1 - image for image in images]


def pairs(inputs: list[Path], out: Path) -> list[tuple[Path, Path]]:
    return [(p, out / p.name) for p in inputs]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_writes_every_output_in_order_with_progress(tmp_path, inputs):
    out = tmp_path / "out"
    events: list = []
    report = run_batch(
        pairs(inputs, out), decode=load_image, process=invert, callback=events.append
    )
    assert report.written == [out / p.name for p in inputs]
    for i, p in enumerate(inputs):
        np.testing.assert_array_equal(np.asarray(Image.open(out / p.name)), 255 - 10 * i)
    done = [e for e in events if isinstance(e, BatchEvent) and e.status == "written"]
    assert [e.completed for e in done] == [1, 2, 3, 4, 5]
    assert all(e.total == 5 and e.unit == "img" for e in done) and done[-1].done
    assert [e.status for e in report.entries] == ["written"] * 5
    assert leftovers(out) == []  # no temp or claim files


def test_groups_share_a_call_up_to_the_limit(tmp_path):
    sizes = [(8, 8), (12, 8), (8, 8), (8, 8), (12, 8)]
    files = [write_image(tmp_path / f"{i}.png", i, size) for i, size in enumerate(sizes)]
    calls: list[int] = []

    def process(jobs, images):
        calls.append(len(images))
        assert len({tuple(x.shape) for x in images}) == 1
        return images

    report = run_batch(
        pairs(files, tmp_path / "out"),
        decode=load_image,
        process=process,
        group=lambda x: tuple(x.shape),
        batch_limit=lambda x: 2,
    )
    assert len(report.written) == 5
    assert sorted(calls) == [1, 2, 2]


def test_bad_files_are_named_and_the_rest_carry_on(tmp_path, inputs):
    (inputs[1]).write_bytes(b"not an image")

    def process(jobs, images):
        if jobs[0].source == inputs[3]:
            raise ValueError("too small for the network")
        return images

    report = run_batch(pairs(inputs, tmp_path / "out"), decode=load_image, process=process)
    failed = dict(report.failed)
    assert sorted(failed) == [inputs[1], inputs[3]]
    assert str(inputs[1]) in failed[inputs[1]]
    assert str(inputs[3]) in failed[inputs[3]] and "too small" in failed[inputs[3]]
    assert [p.name for p in report.written] == ["0.png", "2.png", "4.png"]
    assert leftovers(tmp_path / "out") == []


def test_existing_outputs_are_skipped_unless_overwrite(tmp_path, inputs):
    out = tmp_path / "out"
    out.mkdir()
    (out / "2.png").write_bytes(b"keep")
    report = run_batch(pairs(inputs, out), decode=load_image, process=invert)
    assert report.skipped == [(inputs[2], out / "2.png")]
    assert (out / "2.png").read_bytes() == b"keep"
    report = run_batch(pairs(inputs, out), decode=load_image, process=invert, overwrite=True)
    assert len(report.written) == 5 and not report.skipped
    assert load_image(out / "2.png").shape == (3, 8, 12)


def test_inputs_and_protected_files_are_never_written(tmp_path, inputs):
    alias = tmp_path / "alias"
    alias.symlink_to(inputs[0].parent)
    style = write_image(tmp_path / "style.png", 7)
    before = {p: p.read_bytes() for p in [*inputs, style]}
    items = [(inputs[0], alias / "0.png"), (inputs[1], style), (inputs[2], tmp_path / "x.png")]
    items.append((inputs[3], tmp_path / "x.png"))
    report = run_batch(items, decode=load_image, process=invert, overwrite=True, protect=[style])
    reasons = dict(report.failed)
    assert "would overwrite an input" in reasons[inputs[0]]
    assert "would overwrite an input" in reasons[inputs[1]]
    assert "also the output of" in reasons[inputs[3]]
    assert report.written == [tmp_path / "x.png"]
    assert {p: p.read_bytes() for p in before} == before


def test_ctrl_c_leaves_only_complete_files_and_no_claims(tmp_path, inputs):
    out = tmp_path / "out"

    def process(jobs, images):
        if jobs[0].source == inputs[3]:
            raise KeyboardInterrupt
        return images

    with pytest.raises(KeyboardInterrupt):
        run_batch(pairs(inputs, out), decode=load_image, process=process)
    written = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert written == ["0.png", "1.png", "2.png"]
    for name in written:
        assert load_image(out / name).shape == (3, 8, 12)  # complete, decodable
    assert leftovers(out) == []


def test_a_claim_left_by_a_dead_process_is_taken_over(tmp_path, inputs):
    out = tmp_path / "out"
    out.mkdir()
    stale = claim_path(out / "1.png")
    stale.write_text("4194000 some-host\n")  # what `kill -9` during a job leaves behind
    report = run_batch(pairs(inputs, out), decode=load_image, process=invert)
    assert len(report.written) == 5 and not report.failed
    assert not stale.exists()


HOLDER = """
import sys, time
from pathlib import Path
import numpy as np
from PIL import Image
from transfigure.batch import Claim
target, write = Path(sys.argv[1]), sys.argv[2] == "write"
claim = Claim.acquire(target)
assert claim is not None
print("held", flush=True)
time.sleep(1.0)
if write:
    Image.fromarray(np.full((8, 12, 3), 99, np.uint8)).save(target)
claim.release()
"""


def hold_claim(target: Path, write: bool) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(target), "write" if write else "exit"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


@pytest.mark.parametrize("other_writes", [True, False])
def test_an_output_another_process_claimed_is_waited_for(tmp_path, inputs, other_writes):
    out = tmp_path / "out"
    out.mkdir()
    holder = hold_claim(out / "2.png", write=other_writes)
    computed: list[str] = []

    def process(jobs, images):
        computed.extend(job.source.name for job in jobs)
        return images

    report = run_batch(pairs(inputs, out), decode=load_image, process=process)
    assert holder.wait(timeout=30) == 0
    assert not report.failed
    if other_writes:  # finished by the other process: skipped, not computed twice
        assert report.skipped == [(inputs[2], out / "2.png")]
        assert "2.png" not in computed
        assert load_image(out / "2.png")[0, 0, 0].item() == pytest.approx(99 / 255)
        assert len(computed) == 4
    else:  # the other process gave up: done here, after the others (it was deferred)
        assert out / "2.png" in report.written
        assert computed[-1] == "2.png" and len(computed) == 5
    assert leftovers(out) == []


WORKER = """
import sys, time
from pathlib import Path
from transfigure.batch import run_batch
from transfigure.images import load_image
src, out, log = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])

def process(jobs, images):
    with open(log, "a") as f:
        f.writelines(job.source.name + "\\n" for job in jobs)
    time.sleep(0.05)
    return images

files = sorted(src.glob("*.png"))
report = run_batch([(p, out / p.name) for p in files], decode=load_image, process=process)
assert not report.failed, report.failed
print(len(report.written), len(report.skipped))
"""


def test_two_processes_share_one_output_folder(tmp_path):
    files = [write_image(tmp_path / "in" / f"{i:02d}.png", i) for i in range(24)]
    out = tmp_path / "out"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(tmp_path / "in"), str(out), str(tmp_path / f"{k}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(2)
    ]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0], [err for _, err in results]
    computed = [
        line
        for k in range(2)
        if (tmp_path / f"{k}").exists()
        for line in (tmp_path / f"{k}").read_text().split()
    ]
    assert sorted(computed) == sorted(p.name for p in files)  # each image computed once
    written = sum(int(stdout.split()[0]) for stdout, _ in results)
    assert written == len(files)
    for p in files:
        torch.testing.assert_close(load_image(out / p.name), load_image(p))
    assert leftovers(out) == []


def test_a_job_never_waits_for_a_claim_while_holding_one(tmp_path):
    # The other "process" (this test) holds the claims on a and c, so the job's first pass
    # defers both and computes b; decoding b lets go of a. The second pass takes a and meets c,
    # still held, and says it waits. Then the test waits for a while keeping c, as a second
    # process on the same folder would: the job must have written a and released its claim
    # before waiting for c, or the two would wait for each other forever.
    a, b, c = (write_image(tmp_path / "in" / f"{n}.png", i) for i, n in enumerate("abc"))
    out = tmp_path / "out"
    other = {p.name: Claim.acquire(out / p.name) for p in (a, c)}
    waits_for_c = threading.Event()

    def decode(path: Path) -> torch.Tensor:
        if path == b:
            other.pop("a.png").release()
        return load_image(path)

    def callback(event) -> None:
        if "waiting for another process" in (event.message or "") and "c.png" in event.message:
            waits_for_c.set()

    reports: list = []
    job = threading.Thread(
        target=lambda: reports.append(
            run_batch(pairs([a, b, c], out), decode=decode, process=invert, callback=callback)
        )
    )
    job.start()
    assert waits_for_c.wait(timeout=30)
    waiter_got: list = []
    waiter = threading.Thread(
        target=lambda: waiter_got.append(Claim.acquire(out / "a.png", wait=True))
    )
    waiter.daemon = True
    waiter.start()
    waiter.join(timeout=20)
    released_a_first = not waiter.is_alive()
    # c is written by "the other process", which then lets go: the job skips c and ends.
    Image.open(c).save(out / "c.png")
    other.pop("c.png").release()
    job.join(timeout=20)
    waiter.join(timeout=20)
    assert released_a_first, "the job waited for c while holding its claim on a"
    assert not job.is_alive()
    (report,) = reports
    assert sorted(p.name for p in report.written) == ["a.png", "b.png"]
    assert [src.name for src, _ in report.skipped] == ["c.png"]
    waiter_got[0].release()
    assert leftovers(out) == []


def test_claims_are_exclusive_within_a_process_tree(tmp_path):
    target = tmp_path / "x.png"
    first = Claim.acquire(target)
    assert first is not None and claim_path(target).exists()
    holder_free = Claim.acquire(target)
    assert holder_free is None  # flock locks conflict between open file descriptions
    first.release()
    again = Claim.acquire(target)
    assert again is not None
    again.release()
    assert not claim_path(target).exists()
