"""Winograd F(4×4, 3×3) against PyTorch's convolution, layer by layer, in float32 on the CPU.

For each layer shape, forward (under ``torch.no_grad``) and forward + backward of one 3×3,
stride-1 convolution, the two methods interleaved, the median of ``--repeats`` rounds; the
ratio is PyTorch's time over Winograd's (above 1: Winograd is faster), and the error column is
the largest difference from a float64 reference relative to the output's largest magnitude.
The rule in ``transfigure.winograd.pays_off`` comes from this table.

    python benchmarks/winograd.py --threads 1

Measured 2026-12-02 (Intel Xeon with AVX-512 and AMX, 2 shared cores, one thread, torch
2.14.1; medians of 5, ms):

    batch  C_in C_out side   forward direct / Winograd    forward+backward     error
      1    256   256  128     192.4  104.0   1.85×       624.7  344.6  1.81×   1.2e-05
      1    256   256   64      45.9   30.5   1.51×       166.4   88.9  1.87×   9.8e-06
      1    256   256   32      12.4   10.1   1.22×        42.6   31.1  1.37×   9.7e-06
      1    256   256   16       3.7    4.1   0.91×        12.8   14.7  0.87×   7.9e-06
      4    256   256   16      10.4    7.9   1.31×        33.1   25.0  1.33×   1.2e-05
      1    512   512   64     134.1   70.8   1.89×       507.1  226.5  2.24×   7.7e-06
      1    512   512   32      40.6   30.7   1.32×       145.3   80.6  1.80×   7.8e-06
      1    512   512   16      13.1   12.5   1.05×        48.2   45.1  1.07×   9.3e-06
      1    128   128  128      45.7   37.3   1.23×       176.3   99.6  1.77×   7.2e-06
      1    128   128   64      10.6    9.1   1.17×        39.6   34.7  1.14×   6.6e-06
      1    128   128   32       3.8    3.7   1.01×        13.9   11.7  1.18×   7.0e-06
      1    128   256   64      18.4   15.0   1.22×        65.8   41.8  1.58×   7.2e-06
      1     64    64  256      42.0   47.7   0.88×       160.7  169.4  0.95×   5.4e-06
      1     64    64   64       2.8    2.8   1.01×         9.9    9.9  1.00×   4.7e-06
      1     32    32   64       0.9    1.7   0.55×         4.7    6.5  0.73×   3.0e-06

Single layers vary ±15 % between runs on this shared machine. In a whole ResNet-9 generator
at 256² (18 convolutions of 256 channels at 64×64) the pass takes 1.35-1.43× less time
forward and 1.53-1.64× less forward+backward; its output moves by at most 2e-5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import cpu_name  # noqa: E402 (benchmarks/ is the script folder)

from transfigure.runtime import keep_freed_memory  # noqa: E402
from transfigure.winograd import winograd_conv3x3  # noqa: E402

# (batch, in channels, out channels, output side): ResNet blocks at 256/128/64 px inputs, the
# CUT/ResNet upsampling stages, VGG19's stages at 512 px
SHAPES = (
    (1, 256, 256, 128),
    (1, 256, 256, 64),
    (1, 256, 256, 32),
    (1, 256, 256, 16),
    (1, 128, 128, 128),
    (1, 128, 128, 64),
    (1, 128, 128, 32),
    (1, 128, 256, 64),
    (1, 64, 64, 256),
    (1, 64, 64, 64),
    (1, 64, 64, 32),
    (1, 32, 32, 64),
    (1, 512, 512, 64),
    (1, 512, 512, 32),
    (1, 512, 512, 16),
    (4, 256, 256, 16),
)


def _time(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _measure(n: int, c: int, k: int, side: int, repeats: int, gen: torch.Generator) -> str:
    x = torch.randn(n, c, side + 2, side + 2, generator=gen)
    w = torch.randn(k, c, 3, 3, generator=gen) / (3 * c**0.5)
    b = torch.randn(k, generator=gen)
    exact = F.conv2d(x.double(), w.double(), b.double())
    err = (winograd_conv3x3(x, w, b).double() - exact).abs().max() / exact.abs().max()
    xg, wg, bg = (t.clone().requires_grad_() for t in (x, w, b))

    def forward(conv: Callable[..., torch.Tensor]) -> None:
        with torch.no_grad():
            conv(x, w, b)

    def train(conv: Callable[..., torch.Tensor]) -> None:
        conv(xg, wg, bg).square().mean().backward()

    runs: dict[str, list[float]] = {key: [] for key in ("fd", "fw", "bd", "bw")}
    for _ in range(repeats + 2):  # two rounds warm up (heap growth, kernels) and are dropped
        runs["fd"].append(_time(lambda: forward(F.conv2d)))
        runs["fw"].append(_time(lambda: forward(winograd_conv3x3)))
        runs["bd"].append(_time(lambda: train(F.conv2d)))
        runs["bw"].append(_time(lambda: train(winograd_conv3x3)))
    med = {key: statistics.median(v[2:]) * 1000 for key, v in runs.items()}
    return (
        f"{n:5d} {c:5d} {k:6d} {side:5d}   {med['fd']:8.1f} {med['fw']:8.1f}   "
        f"{med['fd'] / med['fw']:6.2f}   {med['bd']:8.1f} {med['bw']:8.1f}   "
        f"{med['bd'] / med['bw']:6.2f}   {err:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    keep_freed_memory()  # as the commands do: no page faults on every large allocation
    print(f"# {cpu_name()}, torch {torch.__version__}, {args.threads} thread(s)")
    print(
        "batch  C_in  C_out  side   fwd direct/wino ms   ratio   f+b direct/wino ms   ratio   error"
    )
    gen = torch.Generator().manual_seed(0)
    for shape in SHAPES:
        print(_measure(*shape, repeats=args.repeats, gen=gen), flush=True)


if __name__ == "__main__":
    main()
