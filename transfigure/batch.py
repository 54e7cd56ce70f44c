"""The files → files job shared by ``translate`` and ``stylize`` (and any later per-image command).

:func:`run_batch` takes ``(input, output)`` pairs and three pieces of model code — ``decode`` a
file, ``process`` a list of decoded inputs, and optionally a ``group`` key and ``batch_limit``
for batching inputs of one shape — and owns everything around them:

1. **plan**: an output that is an input (by file identity, any alias), or the output of two
   inputs, fails that input up front; existing outputs are skipped unless ``overwrite``.
2. **claim**: before an input is decoded its output is claimed with a lock file beside it
   (``.NAME.claim``), so that two processes writing into the same folder share the work: an
   output the other process is computing is deferred to the end, then waited for, and *skipped*
   once the other process has written it (or computed here if it gave up). A process waits
   only while it holds no claim itself, so two processes never wait for each other. Claims are
   advisory locks (``flock``): the kernel releases them when a process dies, so a claim left by
   a killed process is simply taken over.
3. **decode ahead** in a thread pool, in input order; **process** on the calling thread;
   **write** atomically on a writer thread (temp file, fsync, rename: a reader or a Ctrl-C
   never sees half a file), overlapped with the next batch.
4. **report**: a file that fails (cannot be read, the model fails on it, cannot be written) is
   named in a :class:`BatchEvent` and the :class:`BatchReport`, and the rest carry on. On
   Ctrl-C (``KeyboardInterrupt``) queued decoding is dropped, results already computed are
   written, claims are released and the exception propagates: only complete files remain.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from torch import Tensor

from transfigure.events import Event
from transfigure.images import ImageError, save_image

try:  # POSIX advisory locks; elsewhere claims fall back to O_EXCL files with a pid inside.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "BatchEvent",
    "BatchReport",
    "Claim",
    "Entry",
    "Job",
    "claim_path",
    "run_batch",
]

T = TypeVar("T")

#: Seconds between looks at a claim held by another process (only without ``fcntl``).
_POLL_S = 0.2


@dataclass
class BatchEvent(Event):
    """One input of a batch job finished: written, skipped (done by another process) or failed.

    Attributes:
        source: the input file.
        output: the file written (or found written by another process), or ``None``.
        error: why the input failed, or ``None``.
        status: ``"written"``, ``"skipped"`` or ``"failed"``; ``None`` for start/log events.
    """

    source: Path | None = None
    output: Path | None = None
    error: str | None = None
    status: str | None = None


@dataclass
class Entry:
    """One input of a batch job and what became of it.

    Attributes:
        source: the input file.
        output: its output file (``None`` when none could be planned).
        status: ``"written"``, ``"skipped"`` (the output existed, or another process wrote it)
            or ``"failed"``.
        error: why it failed.
    """

    source: Path
    output: Path | None
    status: str
    error: str | None = None


@dataclass
class BatchReport:
    """What :func:`run_batch` did.

    Attributes:
        written: output files written, in the order they were finished.
        skipped: ``(input, existing output)`` pairs left alone.
        failed: ``(input, reason)`` pairs.
        entries: one :class:`Entry` per input, in input order.
        seconds: wall time.
    """

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, Path]] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def images_per_second(self) -> float:
        return len(self.written) / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        """One line for the log: counts, time and throughput."""
        return (
            f"{len(self.written)} written, {len(self.skipped)} skipped, {len(self.failed)} "
            f"failed in {self.seconds:.1f} s ({self.images_per_second:.2f} img/s)"
        )


@dataclass
class Job:
    """One input on its way through the job (what ``process`` receives beside its data)."""

    index: int
    source: Path
    output: Path


# --------------------------------------------------------------------------------------------
# claims


def claim_path(output: Path) -> Path:
    """The lock file that claims ``output``: hidden, beside it (``.NAME.claim``)."""
    return output.with_name(f".{output.name}.claim")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but belongs to someone else
        return True
    return True


class Claim:
    """An exclusive claim on an output file, held by this process until :meth:`release`."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, output: Path, *, wait: bool = False) -> Claim | None:
        """Claim ``output``; ``None`` if another live process holds it (and not ``wait``).

        A claim file left behind by a dead process is taken over.
        """
        path = claim_path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover - Windows
            return cls._acquire_exclusive(path, wait)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                os.close(fd)
                return None
            except BaseException:
                os.close(fd)
                raise
            # The previous holder removes the file when it is done; if it did so after we opened
            # it, our lock is on a file no one else will see: open the path again.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
                return cls(path, fd)
            os.close(fd)

    @classmethod
    def _acquire_exclusive(cls, path: Path, wait: bool) -> Claim | None:  # pragma: no cover
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    pid = int(path.read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    pid = -1
                if pid > 0 and not _pid_alive(pid):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
                    continue
                if not wait:
                    return None
                time.sleep(_POLL_S)
                continue
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            return cls(path, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Remove the claim file and drop the lock (idempotent)."""
        if self._fd is None:
            return
        # Removed while still locked, so a waiting process re-checks and never locks a stale file.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._fd)
        self._fd = None


# --------------------------------------------------------------------------------------------
# the job


def _identity(path: Path) -> tuple[int, int] | str:
    try:
        st = os.stat(path)
    except OSError:
        return os.path.normcase(str(path.resolve()))
    return (st.st_dev, st.st_ino)


def _plan(
    items: Sequence[tuple[Path, Path]], protect: Iterable[Path]
) -> tuple[list[Job], list[tuple[Job, str]]]:
    inputs = {_identity(Path(p)) for p in protect} | {_identity(src) for src, _ in items}
    taken: dict[str, Path] = {}
    jobs: list[Job] = []
    bad: list[tuple[Job, str]] = []
    for index, (src, out) in enumerate(items):
        job = Job(index, Path(src), Path(out))
        key = os.path.normcase(str(job.output.resolve()))
        where = f"{job.source}: its output {job.output}"
        if _identity(job.output) in inputs:
            bad.append((job, f"{where} would overwrite an input file"))
        elif key in taken:
            bad.append((job, f"{where} is also the output of {taken[key]}"))
        else:
            taken[key] = job.source
            jobs.append(job)
    return jobs, bad


@dataclass
class _Pending(Generic[T]):
    job: Job
    claim: Claim
    data: T | None = None


def run_batch(
    items: Sequence[tuple[Path, Path]],
    *,
    decode: Callable[[Path], T],
    process: Callable[[list[Job], list[T]], Sequence[Tensor]],
    group: Callable[[T], Hashable] | None = None,
    batch_limit: Callable[[T], int] | None = None,
    overwrite: bool = False,
    workers: int = 2,
    quality: int = 95,
    protect: Iterable[Path] = (),
    task: str = "batch",
    callback: Callable[[Event], None] | None = None,
) -> BatchReport:
    """Turn input files into output files, one result image per input.

    Args:
        items: ``(input file, output file)`` pairs; outputs' folders are created.
        decode: input file → model input; runs on worker threads. Raise
            :class:`~transfigure.images.ImageError` for a file that cannot be used.
        process: ``(jobs, inputs)`` → one ``(C, H, W)`` image in [0, 1] per input, on the
            calling thread. An exception fails those inputs only (``KeyboardInterrupt`` stops
            the job).
        group: a key of a decoded input; inputs with the same key may share one ``process``
            call (e.g. their shape). ``None``: one input per call.
        batch_limit: how many inputs like this one go into one ``process`` call (default 1).
        overwrite: replace existing outputs (inputs and ``protect`` files never).
        workers: decoding threads; up to ``2 * workers + 2 * batch`` inputs are decoded ahead.
        quality: JPEG / WebP quality of the outputs.
        protect: more files that must never be written (e.g. a style image).
        task: the progress bar's label.
        callback: receives a :class:`BatchEvent` per input finished (``completed``/``total``
            over the inputs left to do, unit ``"img"``) and log events.

    Returns:
        A :class:`BatchReport`; failures are in it, not raised.

    Raises:
        KeyboardInterrupt: after the running writes finished and the claims were released.
    """
    start_wall = time.time()
    start = time.perf_counter()
    emit = callback or (lambda _event: None)
    report = BatchReport()
    status: dict[int, Entry] = {}
    jobs, bad = _plan(items, protect)
    protected = tuple(Path(p) for p in protect) + tuple(Path(src) for src, _ in items)

    def finish(job: Job, state: str, output: Path | None, error: str | None = None) -> None:
        nonlocal completed
        if state == "written":
            assert output is not None
            report.written.append(output)
        elif state == "skipped":
            assert output is not None
            report.skipped.append((job.source, output))
        else:
            report.failed.append((job.source, error or "failed"))
        status[job.index] = Entry(job.source, output, state, error)
        if job.index in counted:
            completed += 1
            event = BatchEvent(task=task, completed=completed, total=total, unit="img")
            event.done = completed == total
        else:
            event = BatchEvent(task=task, unit="img")
        event.source, event.output, event.error, event.status = job.source, output, error, state
        emit(event)

    completed = total = 0
    counted: set[int] = set()
    for job, reason in bad:
        finish(job, "failed", None, reason)

    todo: list[Job] = []
    existing = 0
    for job in jobs:
        if job.output.exists() and not overwrite:
            existing += 1
            report.skipped.append((job.source, job.output))
            status[job.index] = Entry(job.source, job.output, "skipped")
        else:
            todo.append(job)
    if existing:
        emit(
            Event(
                task=task,
                message=f"skipping {existing} image(s) whose output exists "
                "(--overwrite to replace them)",
            )
        )
    counted = {job.index for job in todo}
    total = len(todo)

    def written_elsewhere(job: Job) -> bool:
        """Another process wrote the output since this job looked (or since it started)."""
        try:
            mtime = job.output.stat().st_mtime
        except FileNotFoundError:
            return False
        return not overwrite or mtime >= start_wall

    if total:
        emit(BatchEvent(task=task, completed=0, total=total, unit="img"))
        _pipeline(
            todo,
            decode=decode,
            process=process,
            group=group,
            batch_limit=batch_limit,
            overwrite=overwrite,
            workers=workers,
            quality=quality,
            protected=protected,
            written_elsewhere=written_elsewhere,
            finish=finish,
            emit=emit,
            task=task,
        )
    report.entries = [status[i] for i in sorted(status)]
    report.seconds = time.perf_counter() - start
    return report


def _pipeline(
    todo: list[Job],
    *,
    decode: Callable[[Path], Any],
    process: Callable[[list[Job], list[Any]], Sequence[Tensor]],
    group: Callable[[Any], Hashable] | None,
    batch_limit: Callable[[Any], int] | None,
    overwrite: bool,
    workers: int,
    quality: int,
    protected: tuple[Path, ...],
    written_elsewhere: Callable[[Job], bool],
    finish: Callable[..., None],
    emit: Callable[[Event], None],
    task: str,
) -> None:
    """claim → decode (threads, reading ahead) → group → process → write (writer thread).

    ``finish`` is only ever called from this (the calling) thread.
    """
    workers = max(1, workers)
    ahead = 2 * workers + 2

    def limit(data: Any) -> int:
        return max(1, batch_limit(data)) if batch_limit is not None else 1

    held: dict[int, Claim] = {}
    writes: deque[tuple[Job, Future[Path]]] = deque()
    buckets: OrderedDict[Hashable, list[tuple[Job, Any]]] = OrderedDict()

    def release(job: Job) -> None:
        claim = held.pop(job.index, None)
        if claim is not None:
            claim.release()

    def fail(job: Job, reason: str) -> None:
        finish(job, "failed", None, reason)
        release(job)

    def reap(block: bool) -> None:
        while writes and (block or writes[0][1].done() or len(writes) > 2 * ahead):
            job, future = writes.popleft()
            try:
                path = future.result()
            except FileExistsError:  # a process that does not take claims wrote it
                finish(job, "skipped", job.output)
            except (ImageError, OSError, ValueError) as e:
                finish(job, "failed", None, str(e))
            else:
                finish(job, "written", path)
            finally:
                release(job)

    def write(job: Job, image: Tensor) -> Path:
        return save_image(
            image, job.output, overwrite=overwrite, protect=protected, quality=quality
        )

    def flush(key: Hashable) -> None:
        members = buckets.pop(key)
        batch_jobs = [job for job, _ in members]
        try:
            results = list(process(batch_jobs, [data for _, data in members]))
            if len(results) != len(members):
                raise RuntimeError(f"{len(results)} results for {len(members)} inputs")
        except Exception as e:  # a failing batch fails its inputs, not the job
            for job in batch_jobs:
                fail(job, f"{job.source}: {task} failed ({type(e).__name__}: {e})")
            return
        for job, image in zip(batch_jobs, results, strict=True):
            writes.append((job, writer.submit(write, job, image.detach().cpu())))
        reap(block=False)

    def add(job: Job, data: Any) -> None:
        key = group(data) if group is not None else job.index
        buckets.setdefault(key, []).append((job, data))
        if len(buckets[key]) >= limit(data):
            flush(key)
        elif sum(len(members) for members in buckets.values()) > ahead:
            flush(next(iter(buckets)))  # mixed shapes: do not hold inputs forever

    with (
        ThreadPoolExecutor(workers, thread_name_prefix="decode") as decoder,
        ThreadPoolExecutor(1, thread_name_prefix="write") as writer,
    ):
        queue: deque[tuple[Job, Future[Any]]] = deque()
        pending = deque(todo)
        deferred: list[Job] = []
        waiting = False  # second pass: wait for claims other processes hold

        def refill() -> None:
            while len(queue) < ahead and pending:
                job = pending.popleft()
                if written_elsewhere(job):
                    finish(job, "skipped", job.output)
                    continue
                claim = Claim.acquire(job.output)
                if claim is None and waiting:
                    if held:
                        # Never wait while holding claims: the other process may be waiting for
                        # one of ours. The main loop finishes what we hold first, then we wait.
                        pending.appendleft(job)
                        return
                    emit(Event(task=task, message=f"waiting for another process on {job.output}"))
                    claim = Claim.acquire(job.output, wait=True)
                if claim is None:
                    deferred.append(job)
                    continue
                held[job.index] = claim
                if written_elsewhere(job):  # finished by the process that held the claim
                    release(job)
                    finish(job, "skipped", job.output)
                    continue
                queue.append((job, decoder.submit(decode, job.source)))

        try:
            while True:
                refill()
                if not queue:
                    if pending:  # refill stopped at another process's claim: release ours
                        while buckets:
                            flush(next(iter(buckets)))
                        reap(block=True)
                        continue
                    if not deferred:
                        break
                    pending.extend(deferred)
                    deferred.clear()
                    waiting = True
                    continue
                job, future = queue.popleft()
                try:
                    data = future.result()
                except ImageError as e:
                    fail(job, str(e))
                    continue
                except Exception as e:  # noqa: BLE001 - any decoder failure is this file's
                    fail(job, f"{job.source}: cannot read ({type(e).__name__}: {e})")
                    continue
                add(job, data)
                reap(block=False)
            while buckets:
                flush(next(iter(buckets)))
            reap(block=True)
        except BaseException:
            for _, future in queue:
                future.cancel()
            raise
        finally:
            # Results already computed are written (whole files, atomically) before the
            # executors close; then every claim goes.
            writer.shutdown(wait=True)
            for claim in held.values():
                claim.release()
            held.clear()
