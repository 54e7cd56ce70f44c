"""transfigure against the reference implementations, side by side: one command, one table.

Runs the three comparisons, each interleaving the sides with the same thread count and holding
``--lock`` for every measurement, and prints one table of medians and ratios with the speed
targets, the thread count, CPU model and torch version:

- translate (``reference.py``): the reference CycleGAN/pix2pix ``test.py`` against
  ``transfigure translate`` on the same 60 horse2zebra photos (256²) with the same random
  ResnetGenerator; whole processes, images per second; fp32 and bf16.
- training step (``train_step.py``): the reference's ``optimize_parameters`` against
  transfigure's CycleGAN step at 256², batch 1; seconds per iteration and peak RSS.
- stylize (``stylize_reference.py``): crowsonkb/style-transfer-pytorch against ``Stylizer`` at
  512 px; seconds per iteration.

    python benchmarks/versus.py --reference /path/to/pytorch-CycleGAN-and-pix2pix \\
        --reference-path DIR_WITH_DOMINATE --style-reference /path/to/style-transfer-pytorch \\
        [--parts translate train stylize] [--threads 1 2] [--repeats 3] [--out DIR]
        [--train-size 256] [--train-iters 5] [--lock FILE|none]

Each part writes its JSON into ``--out`` (default ``benchmarks/results``); the table is built
from the JSON files found there, so ``--parts train`` re-measures one part and reprints the
whole table (each row says when it was measured). ``--table`` only prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LOCK_HELP, ROOT, cpu_name  # noqa: E402 (benchmarks/ is the script folder)

HERE = Path(__file__).resolve().parent
PARTS = ("translate", "train", "stylize")
# (part, precision) → the issue's goal, as "× the reference's speed" (higher is better).
TARGETS = {
    ("translate", "fp32"): 1.2,
    ("translate", "bf16"): 2.2,
    ("train", "fp32"): 1.1,
    ("train", "bf16"): 1.8,
    ("stylize", "bf16"): 2.0,  # ≤ 0.5× the reference's seconds per iteration
}


def _script(name: str, args: list[str]) -> None:
    cmd = [sys.executable, str(HERE / name), *args]
    print("$", " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True)


def measure(args: argparse.Namespace) -> None:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    common = ["--repeats", str(args.repeats), "--lock", str(args.lock)]
    ref_path = ["--reference-path", args.reference_path] if args.reference_path else []
    for part in args.parts:
        if part == "translate":
            _script(
                "reference.py",
                ["--reference", str(args.reference), *ref_path, *common, "--threads"]
                + [str(t) for t in args.threads]
                + ["--json", str(out / "versus-translate.json")],
            )
        elif part == "train":
            for threads in args.threads:
                _script(
                    "train_step.py",
                    ["--reference", str(args.reference), *ref_path, *common]
                    + ["--threads", str(threads), "--size", str(args.train_size)]
                    + ["--iters", str(args.train_iters)]
                    + ["--json", str(out / f"versus-train-{threads}.json")],
                )
        elif part == "stylize":
            _script(
                "stylize_reference.py",
                ["--style-reference", str(args.style_reference), *common, "--threads"]
                + [str(t) for t in args.threads]
                + ["--json", str(out / "versus-stylize.json")],
            )


def _when(path: Path) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))


def rows(out: Path) -> list[dict[str, Any]]:
    """One row per (part, threads, precision) from the stored JSON files: the reference's and
    transfigure's figure and the speed ratio (> 1: transfigure is faster)."""
    found: list[dict[str, Any]] = []
    path = out / "versus-translate.json"
    if path.is_file():
        data = json.loads(path.read_text())
        for r in data["summary"]:
            if r["side"] == "reference":
                continue
            ref = next(
                s
                for s in data["summary"]
                if s["side"] == "reference" and s["threads"] == r["threads"]
            )
            found.append(
                {
                    "part": "translate",
                    "what": "60 img 256², img/s",
                    "precision": r["side"].split()[1],
                    "threads": r["threads"],
                    "reference": ref["images_per_s"],
                    "transfigure": r["images_per_s"],
                    "ratio": r["ratio_median"],
                    "range": (r["ratio_min"], r["ratio_max"]),
                    "rss": (ref["peak_rss_mib"], r["peak_rss_mib"]),
                    "runs": r["runs"],
                    "when": _when(path),
                }
            )
    for path in sorted(out.glob("versus-train-*.json")):
        data = json.loads(path.read_text())
        meta = data["meta"]
        ref = next(t for t in data["table"] if t["side"] == "reference fp32")
        ref_runs = [r["s_per_iter"] for r in data["runs"]["reference fp32"]]
        for t in data["table"]:
            if t["side"] == "reference fp32":
                continue
            mine = [r["s_per_iter"] for r in data["runs"][t["side"]]]
            ratios = [a / b for a, b in zip(ref_runs, mine, strict=True)]
            found.append(
                {
                    "part": "train",
                    "what": f"CycleGAN step {meta['size']}², s/it",
                    "precision": t["side"].split()[1],
                    "threads": meta["threads"],
                    "reference": ref["s_per_iter"],
                    "transfigure": t["s_per_iter"],
                    "ratio": t["speed_vs_reference"],
                    "range": (min(ratios), max(ratios)),
                    "rss": (ref["rss"], t["rss"]),
                    "runs": len(mine),
                    "when": _when(path),
                }
            )
    path = out / "versus-stylize.json"
    if path.is_file():
        data = json.loads(path.read_text())
        for r in data["summary"]:
            if r["side"].startswith("reference"):
                continue
            ref = next(
                s
                for s in data["summary"]
                if s["side"].startswith("reference") and s["threads"] == r["threads"]
            )
            low, high = r["time_vs_reference_range"]
            found.append(
                {
                    "part": "stylize",
                    "what": f"Gatys {r['size']}, s/it",
                    "precision": r["side"].split()[1],
                    "threads": r["threads"],
                    "reference": ref["s_per_it"],
                    "transfigure": r["s_per_it"],
                    "ratio": 1 / r["time_vs_reference"],
                    "range": (1 / high, 1 / low),
                    "rss": (ref["peak_rss_mib"], r["peak_rss_mib"]),
                    "runs": r["runs"],
                    "when": _when(path),
                }
            )
    return found


def table(found: list[dict[str, Any]]) -> str:
    import torch

    head = [
        f"transfigure vs reference — {cpu_name()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}",
        "ratio: × the reference's speed (> 1: transfigure faster), median of interleaved "
        "pairs (min–max); target: the issue's goal",
        f"{'part':9} {'measure':24} {'prec':4} {'thr':>3} {'ref':>7} {'ours':>7} {'ratio':>6} "
        f"{'(min–max)':>12} {'target':>6} {'RSS ref/ours MiB':>17} {'runs':>4}  measured",
    ]
    lines = []
    for r in found:
        target = TARGETS.get((r["part"], r["precision"]))
        mark = "" if target is None else ("ok" if r["ratio"] >= target else "MISS")
        tgt = "" if target is None else f"≥{target:.1f} {mark}"
        low, high = r["range"]
        rss = f"{r['rss'][0]:.0f}/{r['rss'][1]:.0f}"
        lines.append(
            f"{r['part']:9} {r['what']:24} {r['precision']:4} {r['threads']:>3} "
            f"{r['reference']:7.2f} {r['transfigure']:7.2f} {r['ratio']:6.2f} "
            f"{f'({low:.2f}–{high:.2f})':>12} {tgt:>6} "
            f"{rss:>17} {r['runs']:>4}  {r['when']}"
        )
    return "\n".join(head + lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, help="pytorch-CycleGAN-and-pix2pix checkout")
    parser.add_argument("--reference-path", default="", help="extra PYTHONPATH (dominate)")
    parser.add_argument("--style-reference", type=Path, help="style-transfer-pytorch checkout")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train-size", type=int, default=256)
    parser.add_argument("--train-iters", type=int, default=5, help="timed steps per run")
    parser.add_argument("--lock", type=Path, default=Path("/tmp/bench.lock"), help=LOCK_HELP)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--table", action="store_true", help="only print the stored table")
    args = parser.parse_args(argv)
    if not args.table:
        needs_cyclegan = {"translate", "train"} & set(args.parts)
        if needs_cyclegan and args.reference is None:
            parser.error(f"--reference is needed for {', '.join(sorted(needs_cyclegan))}")
        if "stylize" in args.parts and args.style_reference is None:
            parser.error("--style-reference is needed for stylize")
        measure(args)
    found = rows(args.out)
    if not found:
        parser.error(f"no results in {args.out}: run without --table first")
    print(table(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
