"""``transfigure translate`` against the reference's ``test.py``, side by side, whole processes.

Both translate the same images (default: the first 60 of horse2zebra ``testA``, 256²) with the
same random ResnetGenerator: it is built and saved by the reference's own code (``--reference
DIR``, a checkout of junyanz/pytorch-CycleGAN-and-pix2pix, run unchanged) and converted with
``transfigure models import``. For each thread count (``OMP_NUM_THREADS`` on both sides) and
repeat the runs are interleaved — reference, transfigure fp32, transfigure bf16 — and each run
holds ``--lock`` (a ``flock``), so benchmarks of other people on a shared machine wait. Wall
time is the whole process (start-up, model loading, decoding, the network, writing); CPU time
and peak RSS come from ``wait4``.

    python benchmarks/reference.py --reference /path/to/pytorch-CycleGAN-and-pix2pix \\
        [--images DIR] [--n 60] [--threads 1 2] [--repeats 3] [--precisions fp32 bf16]
        [--reference-path DIR] [--json out.json]

The reference imports ``dominate``; install it beside it (``pip install --target DIR
dominate``) and pass ``--reference-path DIR``. Prints a table of medians and ratios (images/s
of transfigure over the reference's) with the thread count, CPU model and torch version, and
writes every run as JSON (default ``benchmarks/results/reference.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LOCK_HELP, ROOT, SHARED_DATA, cpu_name, locked  # noqa: E402 (benchmarks/ is the script folder)

DEFAULT_IMAGES = SHARED_DATA / "horse2zebra" / "testA"

# Run with the reference's own code: its ResnetGenerator, its initialisation, saved as the
# state dict its test.py loads (CHECKPOINTS/NAME/latest_net_G.pth).
MAKE_REFERENCE_MODEL = """
import sys, torch
sys.path.insert(0, sys.argv[1])
from models import networks
torch.manual_seed(0)
net = networks.define_G(3, 3, 64, "resnet_9blocks", "instance", False, "normal", 0.02, [])
torch.save(net.state_dict(), sys.argv[2])
"""


def _timed(cmd: list[str], env: dict[str, str], log: Path, lock: Path | None) -> dict[str, float]:
    """Run ``cmd`` to completion; wall seconds, CPU seconds and peak RSS (MiB) of the child."""
    with locked(lock), open(log, "w") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} … failed ({proc.returncode}); see {log}")
    return {
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "peak_rss_mib": usage.ru_maxrss / 1024,
    }


def _prepare(args: argparse.Namespace, work: Path, env: dict[str, str]) -> tuple[Path, Path]:
    """The input folder (``--n`` images) and the reference generator (``.pth`` + imported)."""
    images = work / "images"
    images.mkdir()
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    if len(files) < args.n:
        raise SystemExit(f"{args.images}: {len(files)} images, --n {args.n} asked for")
    for path in files[: args.n]:
        shutil.copy(path, images / path.name)
    pth = work / "checkpoints" / "bench" / "latest_net_G.pth"
    pth.parent.mkdir(parents=True)
    subprocess.run(
        [sys.executable, "-c", MAKE_REFERENCE_MODEL, str(args.reference), str(pth)],
        env=env,
        check=True,
        capture_output=True,
    )
    model = work / "bench.safetensors"
    subprocess.run(
        [sys.executable, "-m", "transfigure", "models", "import", str(pth), "-o", str(model)],
        check=True,
        capture_output=True,
    )
    return images, model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, required=True, help="reference checkout")
    parser.add_argument("--reference-path", default=None, help="extra PYTHONPATH (dominate)")
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--lock", type=Path, default=Path("/tmp/bench.lock"), help=LOCK_HELP)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/reference.json")
    args = parser.parse_args(argv)
    if not (args.reference / "test.py").is_file():
        parser.error(f"--reference {args.reference}: no test.py (a reference checkout?)")

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="transfigure-reference-") as tmp:
        work = Path(tmp)
        env = dict(os.environ)
        if args.reference_path:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [args.reference_path, env.get("PYTHONPATH")])
            )
        images, model = _prepare(args, work, env)
        for repeat in range(args.repeats):
            for threads in args.threads:
                env_t = {**env, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
                sides: list[tuple[str, list[str]]] = [
                    (
                        "reference",
                        [
                            sys.executable,
                            str(args.reference / "test.py"),
                            "--dataroot",
                            str(images),
                            "--name",
                            "bench",
                            "--model",
                            "test",
                            "--no_dropout",
                            "--gpu_ids",
                            "-1",
                            "--checkpoints_dir",
                            str(work / "checkpoints"),
                            "--results_dir",
                            str(work / "out-ref"),
                            "--num_test",
                            str(args.n),
                        ],
                    )  # fmt: skip
                ]
                for precision in args.precisions:
                    sides.append(
                        (
                            f"transfigure {precision}",
                            [
                                sys.executable,
                                "-m",
                                "transfigure",
                                "--device",
                                "cpu",
                                "--precision",
                                precision,
                                "translate",
                                str(model),
                                str(images),
                                "-o",
                                str(work / f"out-{precision}"),
                            ],
                        )  # fmt: skip
                    )
                for side, cmd in sides:
                    shutil.rmtree(work / "out-ref", ignore_errors=True)
                    for precision in args.precisions:
                        shutil.rmtree(work / f"out-{precision}", ignore_errors=True)
                    row = _timed(cmd, env_t, work / "run.log", args.lock)
                    row.update(side=side, threads=threads, repeat=repeat, images=args.n)
                    row["images_per_s"] = args.n / row["wall_s"]
                    runs.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)

    summary = _summarise(runs)
    print(_table(summary))
    payload = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": os.getloadavg(),
        "summary": summary,
        "runs": runs,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Medians per (side, threads), and each repeat's ratio to the reference run beside it."""
    rows = []
    for threads in sorted({r["threads"] for r in runs}):
        mine = [r for r in runs if r["threads"] == threads]
        reference = {r["repeat"]: r for r in mine if r["side"] == "reference"}
        for side in dict.fromkeys(r["side"] for r in mine):
            these = [r for r in mine if r["side"] == side]
            ratios = [reference[r["repeat"]]["wall_s"] / r["wall_s"] for r in these]
            rows.append(
                {
                    "side": side,
                    "threads": threads,
                    "runs": len(these),
                    "wall_s": statistics.median(r["wall_s"] for r in these),
                    "cpu_s": statistics.median(r["user_s"] + r["sys_s"] for r in these),
                    "sys_s": statistics.median(r["sys_s"] for r in these),
                    "images_per_s": statistics.median(r["images_per_s"] for r in these),
                    "peak_rss_mib": max(r["peak_rss_mib"] for r in these),
                    "ratio_median": statistics.median(ratios),
                    "ratio_min": min(ratios),
                    "ratio_max": max(ratios),
                }
            )
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"translate, whole process — {cpu_name()}, torch {torch.__version__}\n"
        f"{'side':<17} {'thr':>3} {'runs':>4} {'wall s':>7} {'img/s':>6} {'cpu s':>7} "
        f"{'sys s':>6} {'RSS MiB':>8} {'× reference (min–max)':>24}"
    )
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['side']:<17} {r['threads']:>3} {r['runs']:>4} {r['wall_s']:>7.1f} "
            f"{r['images_per_s']:>6.2f} {r['cpu_s']:>7.1f} {r['sys_s']:>6.1f} "
            f"{r['peak_rss_mib']:>8.0f} {r['ratio_median']:>10.2f} "
            f"({r['ratio_min']:.2f}–{r['ratio_max']:.2f})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
