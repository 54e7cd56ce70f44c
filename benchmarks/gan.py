"""Training speed and peak memory of the GAN core: DCGAN 64×64 and WGAN-GP (n_critic 5).

One *iteration* is one call of ``GANTrainer.train_step``: a discriminator (critic) update, plus
a generator update every ``n_critic`` iterations — the loop's unit of progress. Each case runs
in a fresh process so that its peak memory is its own:

- CPU: the peak resident set size (``resource.getrusage``, ``ru_maxrss``) and its growth over
  the process after the models were built (what the training steps themselves added);
- CUDA: ``torch.cuda.max_memory_allocated``.

Usage::

    python benchmarks/gan.py                       # CPU, short
    python benchmarks/gan.py --device cuda --steps 200 --precision bf16
    python benchmarks/gan.py --json results.json   # where the JSON goes

Prints a table on stdout and writes the results as JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path

CASES = {
    # name: (preset, overrides)
    "dcgan-64": ("dcgan", {}),
    "wgan-gp-64": ("wgan-gp", {"n_critic": 5}),
}


def _rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # ru_maxrss is in KiB on Linux and bytes on macOS
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def _run_case(name: str, args: argparse.Namespace, queue: mp.Queue) -> None:
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from transfigure.gan.config import preset
    from transfigure.registry import TRAINERS, load
    from transfigure.runtime import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    preset_name, overrides = CASES[name]
    config = preset(
        preset_name,
        data=f"shapes:{args.batch_size}",
        image_size=args.image_size,
        channels=3,
        batch_size=args.batch_size,
        **overrides,
    )
    torch.manual_seed(0)
    trainer = load(TRAINERS[preset_name].step)(config, device=device, precision=args.precision)
    labels = torch.zeros(args.batch_size, dtype=torch.int64, device=device)
    # synthetic batches already on the device: this measures the step, not the data loader
    real = torch.rand(args.batch_size, 3, args.image_size, args.image_size, device=device) * 2 - 1

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(args.warmup):
        trainer.train_step((real, labels))
    sync()
    rss_before = _rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step((real, labels))
    sync()
    elapsed = time.perf_counter() - start
    result = {
        "case": name,
        "preset": preset_name,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "precision": args.precision,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "n_critic": config.n_critic,
        "steps": args.steps,
        "seconds": elapsed,
        "iterations_per_s": args.steps / elapsed,
        "generator_steps_per_s": args.steps / elapsed / config.n_critic,
        "images_per_s": args.steps * args.batch_size / elapsed,
        "parameters_g": sum(p.numel() for p in trainer.generator.parameters()),
        "parameters_d": sum(p.numel() for p in trainer.discriminator.parameters()),
        "peak_rss_mb": _rss_mb(),
        "rss_growth_mb": _rss_mb() - rss_before,
    }
    if device.type == "cuda":
        result["peak_cuda_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    queue.put(result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument(
        "--steps",
        type=int,
        default=None,
        help="timed iterations [default: 10 on the CPU, 200 on a GPU]",
    )
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument(
        "--threads", type=int, default=0, help="torch CPU threads (0 = PyTorch's default)"
    )
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="output file [default: benchmarks/results/gan-DEVICE.json]",
    )
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = 10 if args.device == "cpu" else 200

    ctx = mp.get_context("spawn")
    results = []
    for name in args.cases:
        queue = ctx.Queue()
        proc = ctx.Process(target=_run_case, args=(name, args, queue))
        proc.start()
        result = queue.get()
        proc.join()
        results.append(result)

    header = (
        f"{'case':<12} {'device':<8} {'prec':<5} {'batch':>5} {'n_critic':>8} "
        f"{'it/s':>8} {'G steps/s':>9} {'img/s':>8} {'peak MB':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        peak = r.get("peak_cuda_allocated_mb", r["peak_rss_mb"])
        print(
            f"{r['case']:<12} {r['device']:<8} {r['precision']:<5} {r['batch_size']:>5} "
            f"{r['n_critic']:>8} {r['iterations_per_s']:>8.2f} "
            f"{r['generator_steps_per_s']:>9.2f} {r['images_per_s']:>8.1f} {peak:>9.1f}"
        )
    out = args.json or (
        Path(__file__).resolve().parent
        / "results"
        / f"gan-{results[0]['device'].split(':')[0]}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"benchmark": "gan", "python": platform.python_version(), "results": results}, indent=2
        )
        + "\n"
    )
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
