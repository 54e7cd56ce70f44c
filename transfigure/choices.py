"""The device and precision names a user can choose, without importing torch.

The command line builds its global options from these at start-up; keeping them here (not in
:mod:`transfigure.runtime`, which imports torch) lets ``transfigure --help`` and ``--version``
answer in a fraction of a second. :mod:`transfigure.runtime` re-exports both and gives them
meaning.
"""

from __future__ import annotations

__all__ = ["DEVICES", "PRECISIONS"]

#: ``--device``: ``auto`` picks CUDA, then Apple MPS, then the CPU.
DEVICES = ("auto", "cuda", "mps", "cpu")

#: ``--precision``: the autocast dtype of the heavy work (fp32 means no autocast); ``auto`` is
#: resolved by :func:`transfigure.runtime.resolve_precision` (bf16 where the hardware runs it
#: natively, fp32 elsewhere).
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
