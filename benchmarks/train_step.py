"""One CycleGAN training step, transfigure's against the reference implementation's.

Each measurement runs in its own process (so peak RSS is the step's own), on random images
already in memory (the step, not the data loader), with the same thread count; sides are
interleaved and the median seconds per iteration is reported with its ratio to the
reference's. The reference runs unchanged from a checkout (``--reference DIR``: its
``models.cycle_gan_model.CycleGANModel.optimize_parameters``), in fp32 (it has no
mixed precision); transfigure runs in fp32 and with bf16 autocast.

    python benchmarks/train_step.py --reference /path/to/pytorch-CycleGAN-and-pix2pix \\
        --reference-path DIR_WITH_DOMINATE --size 256 --iters 5 --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import LOCK_HELP, cpu_name, locked  # noqa: E402 (benchmarks/ is the script folder)

_OURS = """
import json, time, torch
from _common import peak_rss_mib
from transfigure.cyclegan.config import TrainConfig
from transfigure.cyclegan.step import CycleGANStep
from transfigure.runtime import keep_freed_memory
keep_freed_memory()  # as transfigure.training.train does on the CPU
torch.manual_seed(0)
cfg = TrainConfig(data_root="unused", crop_size={size})
step = CycleGANStep(cfg, device="cpu", precision="{precision}")
g = torch.Generator().manual_seed(0)
batch = {{k: torch.rand(1, 3, {size}, {size}, generator=g) * 2 - 1 for k in "AB"}}
for _ in range({warmup}):
    step.train_step(batch)
start = time.perf_counter()
for _ in range({iters}):
    step.train_step(batch)
elapsed = time.perf_counter() - start
print(json.dumps({{"s_per_iter": elapsed / {iters}, "peak_rss_mib": peak_rss_mib()}}))
"""

_REFERENCE = """
import json, sys, time, torch
sys.argv = ["train.py", "--dataroot", "unused", "--model", "cycle_gan", "--gpu_ids", "-1",
            "--checkpoints_dir", "{tmp}", "--name", "bench", "--crop_size", "{size}",
            "--load_size", "{size}", "--display_id", "-1"]
from options.train_options import TrainOptions
from models import create_model
from _common import peak_rss_mib
import io, contextlib
with contextlib.redirect_stdout(io.StringIO()):
    opt = TrainOptions().parse()
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup(opt)
g = torch.Generator().manual_seed(0)
data = {{k: torch.rand(1, 3, {size}, {size}, generator=g) * 2 - 1 for k in "AB"}}
data["A_paths"] = data["B_paths"] = ["x"]
model.set_input(data)
for _ in range({warmup}):
    model.optimize_parameters()
start = time.perf_counter()
for _ in range({iters}):
    model.optimize_parameters()
elapsed = time.perf_counter() - start
print(json.dumps({{"s_per_iter": elapsed / {iters}, "peak_rss_mib": peak_rss_mib()}}))
"""


def _measure(
    code: str, env: dict[str, str], cwd: Path | None, lock: Path | None
) -> dict[str, float]:
    with locked(lock):
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True
        )
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--reference-path", default="", help="extra PYTHONPATH (dominate)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lock", type=Path, default=Path("/tmp/bench.lock"), help=LOCK_HELP)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/train_step.json"))
    args = parser.parse_args(argv)

    here = Path(__file__).resolve().parent
    root = here.parent
    base = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    paths = {
        "reference": os.pathsep.join(p for p in (args.reference_path, str(here)) if p),
        "transfigure": os.pathsep.join((str(root), str(here))),
    }
    sides = {
        "reference fp32": ("reference", _REFERENCE, "fp32"),
        "transfigure fp32": ("transfigure", _OURS, "fp32"),
        "transfigure bf16": ("transfigure", _OURS, "bf16"),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):  # interleaved
            for name, (who, code, precision) in sides.items():
                text = code.format(
                    size=args.size,
                    iters=args.iters,
                    warmup=args.warmup,
                    precision=precision,
                    tmp=tmp,
                )
                env = {**base, "PYTHONPATH": paths[who]}
                cwd = args.reference if who == "reference" else root
                runs[name].append(_measure(text, env, cwd, args.lock))
                print(name, runs[name][-1], flush=True)
    import torch

    ref = statistics.median(r["s_per_iter"] for r in runs["reference fp32"])
    table = []
    for name, rows in runs.items():
        s = statistics.median(r["s_per_iter"] for r in rows)
        rss = statistics.median(r["peak_rss_mib"] for r in rows)
        table.append({"side": name, "s_per_iter": s, "speed_vs_reference": ref / s, "rss": rss})
    meta = {"cpu": cpu_name(), "threads": args.threads, "torch": torch.__version__}
    meta.update(size=args.size, iters=args.iters, repeats=args.repeats)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"meta": meta, "runs": runs, "table": table}, indent=2))
    print(f"\n{meta}")
    print(f"{'side':18} {'s/iter':>8} {'speed':>7} {'peak RSS MiB':>13}")
    for row in table:
        print(
            f"{row['side']:18} {row['s_per_iter']:8.2f} {row['speed_vs_reference']:6.2f}x "
            f"{row['rss']:13.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
