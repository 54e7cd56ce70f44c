"""Style-transfer benchmarks: seconds per iteration, time to finish, peak memory, schedules.

1. Speed: seconds per L-BFGS iteration (VGG19 forward + backward to relu5_1 and the loss) at
   every long side that the default coarse-to-fine schedules of 256, 512 and 1024 px visit,
   for each precision; each size runs in its own process, so the CPU figure for peak memory
   (the process's peak RSS) belongs to that size alone (CUDA: max allocated bytes). The time
   to finish a default run (``StylizeConfig()`` iterations split across its scales) is then
   ``Σ iterations_k × s/it(size_k)`` (``--full-run-size N`` also times a whole run).
2. Schedules: coarse-to-fine against single-scale at the same total iterations and output
   size: wall time and the final losses of the result evaluated at full size.

    python benchmarks/stylize.py [--device cpu|cuda|auto] [--precision fp32,bf16]
                                 [--sizes 256,512,1024] [--compare-size 512]
                                 [--compare-iterations 30] [--full-run-size 0]
                                 [--only speed|compare] [--save-dir DIR] [--json out.json]

Prints tables and writes JSON (default ``benchmarks/results/stylize.json``). Content and style
default to tubingen.jpg / starry_night.jpg from ../shared/data/style when present, else to
generated images (speed does not depend on the picture, the losses do).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from _common import cpu_name, peak_rss_mib  # noqa: E402 (benchmarks/ is the script folder)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transfigure import runtime  # noqa: E402
from transfigure.styletransfer.stylize import (  # noqa: E402
    StylizeConfig,
    Stylizer,
    scale_sizes,
    split_iterations,
)

SHARED_STYLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "style"


def _images(content: str | None, style: str | None) -> tuple[torch.Tensor, torch.Tensor, str]:
    from transfigure.images import load_image

    content = content or (str(SHARED_STYLE / "tubingen.jpg") if SHARED_STYLE.is_dir() else None)
    style = style or (str(SHARED_STYLE / "starry_night.jpg") if SHARED_STYLE.is_dir() else None)
    if content and style:
        return load_image(content), load_image(style), f"{Path(content).name} / {Path(style).name}"
    gen = torch.Generator().manual_seed(0)
    # Smooth random fields (low-frequency noise upsampled) look more like photos than noise.
    c = torch.nn.functional.interpolate(torch.rand(1, 3, 12, 16, generator=gen), (768, 1024))
    s = torch.nn.functional.interpolate(torch.rand(1, 3, 64, 64, generator=gen), (512, 512))
    return c[0].clamp(0, 1), s[0].clamp(0, 1), "generated"


# --------------------------------------------------------------------------------------------
# Workers: one measurement per process


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    device = runtime.resolve_device(spec["device"])
    content, style, _ = _images(spec.get("content"), spec.get("style"))
    if spec["kind"] == "speed":
        # Single scale at this size, 1 warm-up + n timed iterations.
        n = spec["iterations"]
        cfg = StylizeConfig(size=spec["size"], scales=1, iterations=n + 1)
    else:
        cfg = StylizeConfig(size=spec["size"], scales=spec["scales"], iterations=spec["iterations"])
    stylizer = Stylizer([style], cfg, device=device, precision=spec["precision"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    base_rss = peak_rss_mib()
    cpu_marks: list[float] = []
    t0 = time.perf_counter()
    result = stylizer.stylize(
        content.to(device), callback=lambda e: cpu_marks.append(time.process_time())
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    out: dict[str, Any] = {
        "wall_s": wall,
        "rss_before_mib": base_rss,
        "peak_rss_mib": peak_rss_mib(),
        "height": result.image.shape[1],
        "width": result.image.shape[2],
    }
    if device.type == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    trace = result.trace
    if spec["kind"] == "speed":
        # Iteration 1 also pays for the content and style passes and allocator warm-up.
        out["s_per_it"] = (trace[-1]["elapsed"] - trace[0]["elapsed"]) / (len(trace) - 1)
        # CPU seconds (all threads) per iteration: less sensitive to other load on the machine.
        out["cpu_s_per_it"] = (cpu_marks[-1] - cpu_marks[0]) / (len(cpu_marks) - 1)
    else:
        # Judge both schedules by the same yardstick: the result's losses at full size.
        out["final"] = stylizer.evaluate(content.to(device), result.image)
        out["scales"] = sorted({(r["width"], r["height"]) for r in trace})
        if spec.get("save"):
            from transfigure.images import save_image

            save_image(result.image.cpu(), spec["save"], overwrite=True)
    return out


def _run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {spec} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_speed(
    report: dict[str, Any],
    common: dict[str, Any],
    precisions: list[str],
    sizes: list[int],
    speed_its: dict[int, int],
    full_run_size: int,
) -> None:
    """Seconds per iteration per scale size, and the time to finish default runs."""
    defaults = StylizeConfig()
    # 1. seconds per iteration at every scale the schedules visit
    schedule = {
        size: scale_sizes(size, min_size=defaults.min_size, factor=defaults.scale_factor)
        for size in sizes
    }
    all_sizes = sorted({s for sched in schedule.values() for s in sched})
    per_it: dict[tuple[str, int], float] = {}
    print("\n| precision | long side | s/it | CPU-s/it | peak memory MiB |")
    print("|---|---:|---:|---:|---:|")
    for precision in precisions:
        for size in all_sizes:
            spec = {
                **common,
                "kind": "speed",
                "size": size,
                "precision": precision,
                "iterations": speed_its.get(size, 3),
            }
            res = _run_worker(spec)
            per_it[(precision, size)] = res["s_per_it"]
            if "peak_cuda_mib" in res:
                mem = f"{res['peak_cuda_mib']:.0f}"
            else:  # process peak RSS (and its growth over the loaded model)
                grow = res["peak_rss_mib"] - res["rss_before_mib"]
                mem = f"{res['peak_rss_mib']:.0f} (+{grow:.0f})"
            report["speed"].append({"precision": precision, "size": size, **res})
            print(
                f"| {precision} | {size} | {res['s_per_it']:.3f} | {res['cpu_s_per_it']:.3f} "
                f"| {mem} |",
                flush=True,
            )

    # 2. time to finish the default schedule, estimated from the per-scale speeds
    print("\n| precision | output | scales | iterations | est. s to finish | peak MiB |")
    print("|---|---:|---|---|---:|---:|")
    for precision in precisions:
        for size in sizes:
            sched = schedule[size]
            its = split_iterations(defaults.iterations, len(sched))
            est = sum(n * per_it[(precision, s)] for s, n in zip(sched, its, strict=True))
            peak = max(
                r.get("peak_cuda_mib", r["peak_rss_mib"])
                for r in report["speed"]
                if r["precision"] == precision and r["size"] in sched
            )
            report["finish"].append(
                {
                    "precision": precision,
                    "size": size,
                    "scales": sched,
                    "iterations": its,
                    "estimated_s": est,
                    "peak_mib": peak,
                }
            )
            print(
                f"| {precision} | {size} | {','.join(map(str, sched))} | "
                f"{','.join(map(str, its))} | {est:.0f} | {peak:.0f} |",
                flush=True,
            )
    if full_run_size:
        precision = precisions[0]
        spec = {
            **common,
            "kind": "run",
            "size": full_run_size,
            "scales": 0,
            "iterations": defaults.iterations,
            "precision": precision,
        }
        res = _run_worker(spec)
        report["full_run"] = {"precision": precision, "size": full_run_size, **res}
        print(
            f"\nmeasured end to end: {full_run_size} px, {defaults.iterations} iterations, "
            f"{precision}: {res['wall_s']:.0f} s (estimate above)",
            flush=True,
        )


def bench_schedules(
    report: dict[str, Any],
    common: dict[str, Any],
    precision: str,
    size: int,
    iterations: int,
    save_dir: Path | None = None,
) -> None:
    """Coarse-to-fine against single scale: same iterations, then the same wall time."""
    print(
        f"\n| schedule ({size} px, {precision}) | iterations | s "
        "| content | style | tv | total (at full size) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    walls: dict[str, float] = {}
    for name, scales in (
        ("coarse-to-fine", 0),
        ("single-scale", 1),
        ("single-scale, same time", 1),
    ):
        n_its = iterations
        if name == "single-scale, same time":
            # As many full-size iterations as fit in the coarse-to-fine run's time.
            per_iteration = walls["single-scale"] / iterations
            n_its = max(1, round(walls["coarse-to-fine"] / per_iteration))
        spec = {
            **common,
            "kind": "run",
            "size": size,
            "scales": scales,
            "iterations": n_its,
            "precision": precision,
        }
        if save_dir is not None:
            slug = name.replace(", ", "-").replace(" ", "-")
            spec["save"] = str(save_dir / f"{slug}-{size}px-{n_its}it-{precision}.png")
        res = _run_worker(spec)
        walls[name] = res["wall_s"]
        f = res["final"]
        report["compare"].append({"schedule": name, **spec, **res})
        print(
            f"| {name} | {n_its} | {res['wall_s']:.1f} | {f['content']:.4f} | "
            f"{f['style']:.4f} | {f['tv']:.4f} | {f['total']:.4f} |",
            flush=True,
        )


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32,bf16", help="comma-separated")
    parser.add_argument("--sizes", default="256,512,1024", help="output long sides")
    parser.add_argument(
        "--speed-iterations",
        default="256:4,512:3,1024:2",
        help="timed iterations per size (SIZE:N,...; others: 3)",
    )
    parser.add_argument("--compare-size", type=int, default=512)
    parser.add_argument("--compare-iterations", type=int, default=30)
    parser.add_argument(
        "--full-run-size", type=int, default=0, help="also time a whole default run at this size"
    )
    parser.add_argument("--content")
    parser.add_argument("--style")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results/stylize.json")
    parser.add_argument("--only", choices=["speed", "compare"], help="run one part")
    parser.add_argument("--save-dir", type=Path, help="save the schedule comparison's images")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return 0

    device = runtime.resolve_device(args.device)
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    sizes = [int(s) for s in args.sizes.split(",")]
    speed_its = {
        int(k): int(v) for k, v in (p.split(":") for p in args.speed_iterations.split(","))
    }
    _, _, pictures = _images(args.content, args.style)
    defaults = StylizeConfig()
    common = {"device": str(device), "content": args.content, "style": args.style}
    report: dict[str, Any] = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "images": pictures,
        "defaults": {"iterations": defaults.iterations, "optimizer": defaults.optimizer},
        "speed": [],
        "finish": [],
        "compare": [],
    }
    print(f"# style transfer on {report['device_name']} ({device}, {report['threads']} threads)")

    if args.only != "compare":
        bench_speed(report, common, precisions, sizes, speed_its, args.full_run_size)
    if args.only != "speed":
        bench_schedules(
            report,
            common,
            precisions[0],
            args.compare_size,
            args.compare_iterations,
            args.save_dir,
        )

    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
