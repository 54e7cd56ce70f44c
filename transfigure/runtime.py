"""Where and how computation runs: device, precision, seeding and torch.distributed.

Device and precision are chosen once, at the edge (the CLI); library code follows its inputs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

# The names live in choices.py (torch-free, so that `transfigure --help` stays fast): a new
# device or precision name is added there.
from transfigure.choices import DEVICES, PRECISIONS

__all__ = [
    "DEVICES",
    "PRECISIONS",
    "DeviceUnavailableError",
    "DistInfo",
    "all_reduce_mean",
    "autocast",
    "barrier",
    "cleanup_distributed",
    "get_rank",
    "get_rng_state",
    "get_world_size",
    "init_distributed",
    "is_distributed",
    "is_main_process",
    "keep_freed_memory",
    "precision_dtype",
    "resolve_precision",
    "rank_zero_only",
    "resolve_device",
    "seed_everything",
    "set_rng_state",
]


class DeviceUnavailableError(ValueError):
    """The requested device does not exist on this machine."""


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(name: str = "auto") -> torch.device:
    """Turn a device name into a ``torch.device``.

    Args:
        name: ``auto`` (CUDA, then MPS, then CPU), ``cuda``, ``cuda:N``, ``mps`` or ``cpu``.

    Raises:
        DeviceUnavailableError: the device is not available here.
    """
    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            # Under torchrun each process takes the GPU of its local rank.
            return torch.device("cuda", _local_rank() % torch.cuda.device_count())
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceUnavailableError(
                "CUDA was requested but no CUDA device is available "
                "(use --device cpu or --device auto)"
            )
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceUnavailableError(
                f"{name} was requested but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
        return device
    if name == "mps":
        if not _mps_available():
            raise DeviceUnavailableError(
                "MPS was requested but Apple's Metal backend is not available "
                "(use --device cpu or --device auto)"
            )
        return torch.device("mps")
    raise DeviceUnavailableError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")


def precision_dtype(precision: str) -> torch.dtype | None:
    """The autocast dtype of a precision name, or ``None`` for full fp32."""
    table = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
    if precision == "auto":
        raise ValueError(
            "precision 'auto' must be resolved first: runtime.resolve_precision(name, device, "
            "training=...)"
        )
    if precision not in table:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    return table[precision]


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo`` on Linux; empty elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith(("flags", "Features")):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


#: x86 features that run bf16 matrix products natively (AVX-512 BF16 dot products, AMX tiles).
NATIVE_BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def _cuda_bf16(device: torch.device) -> bool:
    if not torch.cuda.is_available():
        return False
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older PyTorch: no emulation argument
        return torch.cuda.get_device_capability(device)[0] >= 8


def resolve_precision(name: str, device: torch.device | str, *, training: bool) -> str:
    """Turn ``--precision`` into the precision a run uses: ``auto`` becomes a concrete name.

    ``auto`` means bf16 autocast where the hardware computes in bf16 natively and fp32
    elsewhere; never fp16 (it needs loss scaling and overflows where bf16 does not):

    - CUDA GPUs with native bf16 (compute capability 8.0 and later): ``bf16``, for training and
      inference;
    - x86 CPUs with AVX-512 BF16 or AMX (``avx512_bf16`` / ``amx_bf16`` in ``/proc/cpuinfo``):
      ``bf16`` for inference, ``fp32`` for training (bf16 training on the CPU has not been shown
      to match fp32 at equal steps);
    - everything else (older CPUs, Apple MPS): ``fp32``.

    Other names are checked and returned unchanged.

    Args:
        name: ``auto``, ``fp32``, ``bf16`` or ``fp16``.
        device: where the work runs.
        training: whether the precision is for training (else inference).
    """
    if name != "auto":
        precision_dtype(name)  # validates the name
        return name
    device = torch.device(device)
    if device.type == "cuda":
        return "bf16" if _cuda_bf16(device) else "fp32"
    if device.type == "cpu" and not training and cpu_flags() & NATIVE_BF16_CPU_FLAGS:
        return "bf16"
    return "fp32"


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """An autocast context for ``precision`` on ``device``; a no-op for fp32.

    fp16 on the CPU is accepted by recent PyTorch but slow; bf16 is the CPU's fast path.
    """
    dtype = precision_dtype(precision)
    if dtype is None:
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    return torch.autocast(device_type=device_type, dtype=dtype)


def inference_copy(net: torch.nn.Module, precision: str) -> torch.nn.Module:
    """The network to run inference with at ``precision``: for bf16 on the CPU, a copy whose
    weights are stored in bf16; otherwise ``net`` itself (run it under :func:`autocast`).

    Autocast on the CPU casts activations between bf16 and fp32 around every normalisation and
    residual addition, and those copies are memory-bound work that more threads barely speed
    up. With the weights in bf16 the activations stay bf16 from input to output. Normalisation
    layers keep their parameters and running statistics in fp32 (PyTorch's CPU kernels take a
    bf16 input with fp32 parameters and accumulate in fp32). Feed the copy inputs of its dtype
    (:func:`module_dtype`) and convert its output back. ``net`` is not changed.
    """
    device = next((p.device for p in net.parameters()), torch.device("cpu"))
    if precision != "bf16" or device.type != "cpu":
        return net
    import copy

    lowered = copy.deepcopy(net).to(torch.bfloat16)
    for module in lowered.modules():
        if isinstance(module, _NORM_LAYERS):
            module.float()
    return lowered


_NORM_LAYERS = (torch.nn.modules.batchnorm._NormBase, torch.nn.GroupNorm, torch.nn.LayerNorm)


def module_dtype(net: torch.nn.Module) -> torch.dtype:
    """The dtype of ``net``'s first floating-point weight of a non-normalisation layer
    (float32 when it has none): what its inputs should be."""
    for module in net.modules():
        if isinstance(module, _NORM_LAYERS):
            continue
        for param in module.parameters(recurse=False):
            if param.is_floating_point():
                return param.dtype
    return torch.float32


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def keep_freed_memory() -> bool:
    """Let this process reuse the memory of freed tensors instead of returning it to the OS.

    glibc serves allocations above its mmap threshold (activations of a few MB) with fresh
    ``mmap`` pages and unmaps them on free, so every forward pass of a network on the CPU
    page-faults its activations in again: measured on a ResNet-9 CycleGAN generator at 256²,
    35,000 minor faults and ~80 ms of system time per image (7 % of the pass). Raising the mmap
    threshold to its maximum (32 MiB) and the trim threshold to 1 GiB keeps freed blocks in the
    heap: 3,500 faults per pass, the same peak RSS. Inference commands call this once; it is a
    no-op (``False``) where the C library is not glibc.

    It also asks MKL (the matrix products of :mod:`transfigure.winograd`) to return its
    buffers to that heap instead of keeping its own pool (``MKL_DISABLE_FAST_MM``, read when
    MKL first allocates; a value already in the environment is kept): about 10 MB less peak
    memory for a translate run.
    """
    import ctypes
    import sys

    os.environ.setdefault("MKL_DISABLE_FAST_MM", "1")
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) random generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def get_rng_state() -> dict[str, Any]:
    """Capture every global random state, in a form ``torch.load(weights_only=True)`` accepts."""
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": py_version, "state": list(py_state), "gauss": py_gauss},
        "numpy": {
            "name": np_name,
            "keys": torch.from_numpy(np_keys.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "gauss": float(np_gauss),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the random states captured by :func:`get_rng_state`."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
    nps = state["numpy"]
    np.random.set_state(
        (
            nps["name"],
            nps["keys"].numpy().astype(np.uint32),
            nps["pos"],
            nps["has_gauss"],
            nps["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- torch.distributed --------------------------------------------------------------------------


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in a (possibly single-process) run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(device: torch.device | None = None, timeout_s: float = 1800.0) -> DistInfo:
    """Join the process group that ``torchrun`` describes in the environment.

    Without torchrun's variables (``RANK``, ``WORLD_SIZE``) this returns a single-process
    ``DistInfo`` and initialises nothing. NCCL is used for CUDA devices, gloo otherwise.
    Calling it again once the group exists returns the current info.
    """
    if dist.is_available() and dist.is_initialized():
        return DistInfo(get_rank(), _local_rank(), get_world_size(), dist.get_backend())
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or "RANK" not in os.environ:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("torch.distributed is not available in this PyTorch build")
    backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(_local_rank())
    dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    return DistInfo(dist.get_rank(), _local_rank(), dist.get_world_size(), backend)


def is_distributed() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def get_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def get_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """True on rank 0 — the only process that writes files."""
    return get_rank() == 0


def barrier() -> None:
    """Wait for every process; a no-op outside a process group."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup_distributed() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


F = TypeVar("F", bound=Callable[..., Any])


def rank_zero_only(fn: F) -> F:
    """Run ``fn`` on rank 0 only; other ranks get ``None``."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if is_main_process():
            return fn(*args, **kwargs)
        return None

    return wrapper  # type: ignore[return-value]


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over all processes (the tensor itself when not distributed)."""
    if not is_distributed():
        return tensor
    out = tensor.detach().clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out / get_world_size()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Let rank 0 run the block first (e.g. to download or generate data), then the others."""
    if not is_main_process():
        barrier()
    try:
        yield
    finally:
        if is_main_process():
            barrier()
