"""How OpenMP's thread waiting policy decides CPU speed when another program is busy.

Times the demo's CycleGAN training step (64 px, batch 4, resnet_6blocks of width 16, PatchGAN
of width 16: both generators, both discriminators, cycle and identity losses) in a fresh
process per setting, on an idle machine and while a busy loop (``python -c "while True:
pass"``) keeps one core busy. Settings:

- ``default``: torch's defaults (as many threads as cores; libgomp spins before it sleeps);
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` (what the command line sets, transfigure/threads.py);
- ``spincount0``: ``GOMP_SPINCOUNT=0`` (libgomp's own knob, same effect);
- ``1 thread``: ``torch.set_num_threads(1)`` with the default policy.

Settings alternate within each repeat, so a change of background load hits all of them.

    python benchmarks/threads.py [--iters 15] [--repeats 3] [--only idle|busy]
                                 [--json benchmarks/results/threads.json]
    python benchmarks/threads.py --demo [--only idle|busy] [--keep DIR]   # the whole demo

``--demo`` times ``transfigure demo`` (default settings) through the command line, which sets
the passive policy itself, and writes ``benchmarks/results/demo.json``. Measured 2026-12-01 on
two cores (Intel Xeon), every other job on the machine stopped, with the demo's defaults
(CycleGAN: U-Net width 16 at 128 px, 300 steps, EMA of the generators; stylize 2 × 30
iterations at 160 px; CGAN 8 epochs), seconds:

    ====================  ======  ==================
    step                  idle    beside a busy loop
    ====================  ======  ==================
    scenes                   5.4         4.1
    CycleGAN training       71.1       104.2
    translating              0.4         0.4
    scoring                  4.8         6.8
    style transfer          14.3        24.0
    CGAN and its judge      22.6        29.0
    whole command          122         172
    ====================  ======  ==================

(The targets: 3 and 6 minutes. 400 CycleGAN steps took the idle demo to 165 s for an error
0.3 levels lower and no visible change, so the demo stays at 300.)

Run only one benchmark at a time on a shared machine (``flock /tmp/bench.lock python ...``).
Prints a table (median seconds per step) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import cpu_name  # noqa: E402 (benchmarks/ is the script folder)

SETTINGS: dict[str, dict[str, str]] = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "spincount0": {"GOMP_SPINCOUNT": "0"},
    "1 thread": {"BENCH_THREADS": "1"},
}
_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS")


def child(iters: int) -> None:
    """One measurement (run in a fresh process, so that libgomp reads the environment)."""
    import torch

    from transfigure.cyclegan.losses import cycle_loss, generator_adversarial_loss, identity_loss
    from transfigure.cyclegan.networks import (
        DiscriminatorConfig,
        GeneratorConfig,
        build_discriminator,
        build_generator,
    )

    if os.environ.get("BENCH_THREADS"):
        torch.set_num_threads(int(os.environ["BENCH_THREADS"]))
    gen = torch.Generator().manual_seed(0)
    g_cfg = GeneratorConfig(netG="resnet_6blocks", ngf=16, upsample="resize_conv")
    g_a, g_b = (build_generator(g_cfg, generator=gen) for _ in range(2))
    d_a, d_b = (build_discriminator(DiscriminatorConfig(ndf=16), generator=gen) for _ in range(2))
    opt_g = torch.optim.Adam([*g_a.parameters(), *g_b.parameters()], 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], 2e-4, betas=(0.5, 0.999))
    real_a = torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1
    real_b = torch.rand(4, 3, 64, 64, generator=gen) * 2 - 1

    def step() -> None:
        # (1) generators: adversarial + cycle + identity, as in a CycleGAN step
        fake_b, fake_a = g_a(real_a), g_b(real_b)
        loss_g = (
            generator_adversarial_loss(d_a(fake_b), "lsgan")
            + generator_adversarial_loss(d_b(fake_a), "lsgan")
            + 10 * cycle_loss(g_b(fake_b), real_a)
            + 10 * cycle_loss(g_a(fake_a), real_b)
            + 5 * identity_loss(g_a(real_b), real_b)
            + 5 * identity_loss(g_b(real_a), real_a)
        )
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # (2) discriminators: real against detached fakes
        loss_d = sum(
            ((d(real) - 1) ** 2).mean() + (d(fake.detach()) ** 2).mean()
            for d, real, fake in ((d_a, real_b, fake_b), (d_b, real_a, fake_a))
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

    step()  # warm-up: allocations, oneDNN primitive caches
    start = time.perf_counter()
    for _ in range(iters):
        step()
    seconds = (time.perf_counter() - start) / iters
    print(json.dumps({"s_per_step": seconds, "threads": torch.get_num_threads()}))


def measure(setting: str, iters: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in _POLICY_VARIABLES}
    env.update(SETTINGS[setting])
    out = subprocess.run(
        [sys.executable, __file__, "--child", "--iters", str(iters)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run(iters: int, repeats: int, conditions: list[str]) -> list[dict[str, Any]]:
    rows = []
    for condition in conditions:
        busy = None
        if condition == "busy":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        try:
            times: dict[str, list[float]] = {s: [] for s in SETTINGS}
            threads: dict[str, int] = {}
            for _ in range(repeats):
                for setting in SETTINGS:
                    result = measure(setting, iters)
                    times[setting].append(result["s_per_step"])
                    threads[setting] = result["threads"]
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        for setting, values in times.items():
            rows.append(
                {
                    "condition": condition,
                    "setting": setting,
                    "threads": threads[setting],
                    "s_per_step_median": statistics.median(values),
                    "s_per_step_all": values,
                }
            )
    return rows


def demo(conditions: list[str], out: Path, keep: Path | None = None) -> list[dict[str, Any]]:
    """Wall time of ``transfigure demo``, and of its steps as its page's timings table says.

    The demo folders are deleted afterwards, or kept as ``KEEP/idle`` and ``KEEP/busy``.
    """
    import shutil
    import tempfile

    rows = []
    for condition in conditions:
        busy = None
        if condition == "busy":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            time.sleep(1.0)
        folder = (keep / condition) if keep else Path(tempfile.mkdtemp()) / "demo"
        try:
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "transfigure", "--device", "cpu", "-q", "demo"]
                + ["--out", str(folder)],
                env={k: v for k, v in os.environ.items() if k not in _POLICY_VARIABLES},
                check=True,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - start
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        page = (folder / "index.html").read_text()
        steps = dict(
            (name, float(value))
            for name, value in re.findall(r'<td>([^<]+)</td><td class="num">([0-9.]+)</td>', page)
        )
        if keep is None:
            shutil.rmtree(folder.parent, ignore_errors=True)
        rows.append({"condition": condition, "wall_s": seconds, "steps_s": steps})
        print(f"demo {condition}: {seconds:.0f} s  {steps}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {"benchmark": "demo", "cpu": cpu_name(), "cores": os.cpu_count(), "rows": rows},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iters", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=("idle", "busy"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--demo", action="store_true", help="time transfigure demo instead")
    parser.add_argument("--keep", type=Path, help="with --demo: keep the demo folders here")
    parser.add_argument(
        "--json", type=Path, default=Path(__file__).parent / "results" / "threads.json"
    )
    args = parser.parse_args()
    if args.child:
        child(args.iters)
        return
    conditions = [args.only] if args.only else ["idle", "busy"]
    if args.demo:
        demo(conditions, Path(__file__).parent / "results" / "demo.json", args.keep)
        return
    rows = run(args.iters, args.repeats, conditions)
    idle = {r["setting"]: r["s_per_step_median"] for r in rows if r["condition"] == "idle"}
    print(f"{'condition':<10}{'setting':<12}{'threads':>8}{'s/step':>9}{'vs idle default':>17}")
    for r in rows:
        base = idle.get("default")
        ratio = f"{r['s_per_step_median'] / base:.2f}x" if base else "—"
        print(
            f"{r['condition']:<10}{r['setting']:<12}{r['threads']:>8}"
            f"{r['s_per_step_median']:>9.3f}{ratio:>17}"
        )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": "threads",
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "iters": args.iters,
        "repeats": args.repeats,
        "workload": "CycleGAN step, 64 px, batch 4, resnet_6blocks ngf 16, PatchGAN ndf 16",
        "rows": rows,
    }
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
