"""Does training under bf16 autocast learn as well as fp32 at the same number of steps?

A task with a known right answer: the synthetic summer/winter scenes exist in both seasons with
the same layout (:func:`transfigure.datasets.synthetic.write_seasons`), so a CycleGAN's
translations can be scored against the true other-season scene. For each seed the same
``transfigure train cyclegan`` run (the demo's small U-Net settings unless overridden) is made
with ``--precision fp32`` and ``--precision bf16``; both models then translate the held-out
scenes in fp32 (so only the training precision differs), and the mean error (0–255) and SSIM
to the truth are reported beside the untranslated input's, with the training time.

    python benchmarks/bf16_training.py [--seeds 0 1] [--size 128] [--epochs 2 --decay 1]
        [--threads 2] [--extra "--net-g resnet_6blocks"] [--out DIR]

Measured 2026-12-01 (2-core Xeon with AVX-512 BF16/AMX, torch 2.14.1, 1 thread, the demo's
U-Net width 16, 128 px, 100 scenes a season, 300 steps; error in levels of 255, the
untranslated input's is 59.5): fp32 seed 0: summer→winter 9.05, winter→summer 13.46; seed 1:
9.02, 14.62. bf16 seed 0: 9.04, 13.83; seed 1: 9.40, 13.70. Mean of both directions and seeds:
fp32 11.54, bf16 11.49; SSIM alike (0.72/0.58). At equal steps bf16 training did as well as
fp32 here; the training step itself is 2-3× faster in bf16 (benchmarks/versus.py). Training
still defaults to fp32 on the CPU (one small task is not enough evidence for six trainers, among
them WGAN-GP's double backward); a slow fp32 run on such a CPU is told about --precision bf16.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import ROOT, cpu_name  # noqa: E402 (benchmarks/ is the script folder)


def _run(cmd: list[str], env: dict[str, str], log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {shlex.join(cmd)}; see {log}")
    return time.perf_counter() - start


def _scores(data: Path, fakes: dict[str, Path]) -> dict[str, float]:
    import torch

    from transfigure.demo import season_scores
    from transfigure.images import list_images, load_image

    def batch(folder: Path) -> torch.Tensor:
        return torch.stack([load_image(p) for p in list_images(folder)])

    out = {}
    for direction, source, target in (("a2b", "testA", "testB"), ("b2a", "testB", "testA")):
        truth = batch(data / target)
        mae_in, ssim_in = season_scores(batch(data / source), truth)
        mae, ssim = season_scores(batch(fakes[direction]), truth)
        out.update(
            {
                f"{direction}_mae": float(mae.mean()),
                f"{direction}_ssim": float(ssim.mean()),
                f"{direction}_mae_input": float(mae_in.mean()),
                f"{direction}_ssim_input": float(ssim_in.mean()),
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", type=int, default=100, help="training scenes per season")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--decay", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--extra",
        default="--net-g unet_128 --ngf 16 --ndf 16 --lr 5e-4",
        help="more train options (default: the demo's small U-Net)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/bf16_training")
    args = parser.parse_args(argv)

    from transfigure.datasets.synthetic import write_seasons

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    data = out / "data"
    if not data.exists():
        write_seasons(data, args.images, 12, size=args.size, seed=0)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    tf = [sys.executable, "-m", "transfigure", "--device", "cpu"]
    load = args.size + 4 * max(1, round(args.size * 0.12 / 4))
    rows = []
    for seed in args.seeds:
        for precision in ("fp32", "bf16"):  # interleaved: the machine's load hits both
            name = f"{precision}-{seed}"
            run = out / name
            cmd = [*tf, "--precision", precision, "--seed", str(seed), "train", "cyclegan"]
            shutil.rmtree(run, ignore_errors=True)
            cmd += [str(data), "-o", str(run), "--workers", "0"]
            cmd += ["--load-size", str(load), "--crop-size", str(args.size)]
            cmd += ["--n-epochs", str(args.epochs), "--n-epochs-decay", str(args.decay)]
            cmd += ["--checkpoint-every", "0", *shlex.split(args.extra)]
            seconds = _run(cmd, env, out / f"{name}.log")
            fakes = {}
            for direction, source in (("a2b", "testA"), ("b2a", "testB")):
                fakes[direction] = out / f"{name}-{direction}"
                _run(
                    [*tf, "--precision", "fp32", "translate", str(run), str(data / source)]
                    + ["-o", str(fakes[direction]), "--direction", direction, "--overwrite"],
                    env,
                    out / f"{name}-{direction}.log",
                )
            row = {"precision": precision, "seed": seed, "train_s": seconds}
            row.update(_scores(data, fakes))
            rows.append(row)
            print(json.dumps(row), flush=True)

    import torch

    meta = {"cpu": cpu_name(), "torch": torch.__version__, "threads": args.threads}
    meta.update(size=args.size, images=args.images, epochs=args.epochs, decay=args.decay)
    meta["extra"] = args.extra
    (out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    print(f"\n{meta}")
    print(f"{'precision':9} {'seed':>4} {'train s':>8} {'S→W err':>8} {'W→S err':>8} "
          f"{'S→W SSIM':>9} {'W→S SSIM':>9}")  # fmt: skip
    for r in rows:
        print(
            f"{r['precision']:9} {r['seed']:>4} {r['train_s']:8.0f} {r['a2b_mae']:8.1f} "
            f"{r['b2a_mae']:8.1f} {r['a2b_ssim']:9.3f} {r['b2a_ssim']:9.3f}"
        )
    first = rows[0]
    print(
        f"{'input':9} {'':>4} {'':>8} {first['a2b_mae_input']:8.1f} {first['b2a_mae_input']:8.1f} "
        f"{first['a2b_ssim_input']:9.3f} {first['b2a_ssim_input']:9.3f}"
    )
    for precision in ("fp32", "bf16"):
        mine = [r for r in rows if r["precision"] == precision]
        err = statistics.mean((r["a2b_mae"] + r["b2a_mae"]) / 2 for r in mine)
        secs = statistics.median(r["train_s"] for r in mine)
        print(f"{precision}: mean error {err:.2f}, median train {secs:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
