"""CycleGAN benchmarks: training iterations per second and translation images per second.

Training: one full CycleGAN iteration (both generators, both discriminators, identity loss,
image pools) at 256×256, batch 1, resnet_9blocks + 70×70 PatchGAN — the reference's default
setting — on random tensors, so the number is the compute alone (data loading runs in workers
during real training). Translation: ``translate_files`` on a folder of 256×256 JPEGs (decode
threads, batched generator, writer thread), plus the generator alone for comparison. Peak
memory: CUDA's max allocated bytes, or the process's peak RSS on the CPU (process-wide, so run
``--only translate`` for a translation-only CPU figure).

    python benchmarks/cyclegan.py [--device auto|cpu|cuda] [--precision fp32|bf16|fp16]
                                  [--iters N] [--size 256] [--images N] [--batch-size 4]
                                  [--only train|translate] [--json out.json]

Prints a table and writes JSON (default ``benchmarks/results/cyclegan.json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import cpu_name, peak_rss_mib  # noqa: E402 (benchmarks/ is the script folder)

from transfigure import runtime  # noqa: E402
from transfigure.cyclegan.config import TrainConfig  # noqa: E402
from transfigure.cyclegan.networks import build_generator  # noqa: E402
from transfigure.cyclegan.step import CycleGANStep  # noqa: E402
from transfigure.cyclegan.translate import default_batch_size  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(
    device: str | torch.device = "auto",
    *,
    precision: str = "fp32",
    size: int = 256,
    batch_size: int = 1,
    netG: str = "resnet_9blocks",
    iters: int | None = None,
    warmup: int | None = None,
    gan_mode: str = "lsgan",
) -> dict[str, Any]:
    """Time full CycleGAN training iterations; returns a result row (dict)."""
    device = runtime.resolve_device(str(device)) if not isinstance(device, torch.device) else device
    cuda = device.type == "cuda"
    iters = iters if iters is not None else (50 if cuda else 3)
    warmup = warmup if warmup is not None else (10 if cuda else 1)
    cfg = TrainConfig(data_root="unused", net_g=netG, gan_mode=gan_mode, crop_size=size)
    torch.manual_seed(0)
    trainer = CycleGANStep(cfg, device=device, precision=precision)
    g = torch.Generator().manual_seed(0)
    real_A = torch.rand(batch_size, 3, size, size, generator=g).mul(2).sub(1).to(device)
    real_B = torch.rand(batch_size, 3, size, size, generator=g).mul(2).sub(1).to(device)

    def step() -> None:
        trainer.train_step({"A": real_A, "B": real_B})

    for _ in range(warmup):
        step()
    _sync(device)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(iters):
        step()
    _sync(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else peak_rss_mib()
    return {
        "benchmark": "cyclegan-train",
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({cpu_name()})",
        "threads": torch.get_num_threads(),
        "precision": precision,
        "netG": netG,
        "gan_mode": gan_mode,
        "size": size,
        "batch_size": batch_size,
        "iters": iters,
        "iters_per_s": iters / elapsed,
        "s_per_iter": elapsed / iters,
        "peak_memory_mib": peak,
        "peak_memory_kind": "cuda max allocated" if cuda else "process peak RSS",
    }


def bench_translate(
    device: str | torch.device = "auto",
    *,
    precision: str = "fp32",
    size: int = 256,
    n_images: int | None = None,
    batch_size: int = 4,
    netG: str = "resnet_9blocks",
    workers: int = 2,
) -> dict[str, Any]:
    """Time ``translate_files`` on a folder of size×size JPEGs; returns a result row (dict).

    The whole pipeline is timed — decoding in worker threads, batched generator passes, JPEG
    encoding in the writer thread — and, separately, the generator alone on the same batches,
    so the overhead of the file side shows. The images are smooth random pictures written to a
    temporary folder; the generator is freshly initialised (speed does not depend on weights).
    """
    import tempfile

    import numpy as np
    from PIL import Image

    from transfigure.cyclegan.networks import GeneratorConfig
    from transfigure.cyclegan.translate import Translator, translate_files, translate_tensor

    device = runtime.resolve_device(str(device)) if not isinstance(device, torch.device) else device
    cuda = device.type == "cuda"
    n_images = n_images if n_images is not None else (256 if cuda else 12)
    net = build_generator(GeneratorConfig(netG=netG), generator=torch.Generator().manual_seed(0))
    net = net.to(device).eval()
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(prefix="transfigure-bench-") as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        items = []
        for i in range(n_images):
            small = rng.integers(0, 256, (size // 16, size // 16, 3), dtype=np.uint8)
            path = folder / f"{i:05d}.jpg"
            Image.fromarray(small).resize((size, size), Image.BICUBIC).save(path, quality=90)
            items.append((path, Path(path.name)))
        translator = Translator(net, precision=precision, batch_size=batch_size)
        # Warm-up: cuDNN autotuning, allocator, thread pools.
        translate_files(translator, items[: 2 * batch_size], Path(tmp) / "warm", workers=workers)
        _sync(device)
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        report = translate_files(translator, items, Path(tmp) / "out", workers=workers)
        _sync(device)
        elapsed = time.perf_counter() - start
        if report.failed:
            raise RuntimeError(f"benchmark images failed: {report.failed[:3]}")
        peak = torch.cuda.max_memory_allocated(device) / 2**20 if cuda else peak_rss_mib()
        # The generator alone, on the same number of images in the same batches.
        x = torch.rand(batch_size, 3, size, size, device=device) * 2 - 1
        n_batches = max(1, n_images // batch_size)
        translate_tensor(net, x, tile=translator.tile, precision=precision)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(n_batches):
            translate_tensor(net, x, tile=translator.tile, precision=precision)
        _sync(device)
        network_rate = n_batches * batch_size / (time.perf_counter() - t0)
    return {
        "benchmark": "cyclegan-translate",
        "device": torch.cuda.get_device_name(device) if cuda else f"cpu ({cpu_name()})",
        "threads": torch.get_num_threads(),
        "precision": precision,
        "netG": netG,
        "size": size,
        "batch_size": batch_size,
        "workers": workers,
        "images": n_images,
        "images_per_s": n_images / elapsed,
        "network_images_per_s": network_rate,
        "peak_memory_mib": peak,
        "peak_memory_kind": "cuda max allocated" if cuda else "process peak RSS",
    }


# Benchmarks run by main(): name -> callable(device, precision, args) -> list of rows.
BENCHMARKS: dict[str, Any] = {
    "train": lambda device, precision, args: [
        bench_train(
            device,
            precision=runtime.resolve_precision(precision, device, training=True),
            size=args.size,
            iters=args.iters,
        )
    ],
    "translate": lambda device, precision, args: [
        bench_translate(
            device,
            precision=runtime.resolve_precision(precision, device, training=False),
            size=args.size,
            n_images=args.images,
            batch_size=args.batch_size or default_batch_size(device),
        )
    ],
}


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [
        f"{'benchmark':<18} {'device':<28} {'prec':<5} {'size':>5} {'rate':>12} {'peak MiB':>9}"
    ]
    for r in rows:
        rate = r.get("iters_per_s") or r.get("images_per_s") or 0.0
        unit = "it/s" if "iters_per_s" in r else "img/s"
        lines.append(
            f"{r['benchmark']:<18} {r['device'][:28]:<28} {r['precision']:<5} {r['size']:>5} "
            f"{rate:>7.2f} {unit:<4} {r['peak_memory_mib']:>9.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=runtime.PRECISIONS,
        help="auto: what the commands would use (training and translation resolve it apart)",
    )
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iters", type=int, default=None)
    parser.add_argument("--images", type=int, default=None, help="translate: folder size")
    parser.add_argument(
        "--batch-size", type=int, default=None, help="translate: batch (default: translate's)"
    )
    parser.add_argument("--only", choices=sorted(BENCHMARKS), action="append")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "cyclegan.json"
    )
    args = parser.parse_args(argv)
    device = runtime.resolve_device(args.device)
    rows: list[dict[str, Any]] = []
    for name in args.only or BENCHMARKS:
        rows += BENCHMARKS[name](device, args.precision, args)
    print(_table(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
