"""Device resolution, precision, seeding, random-state capture and the distributed helpers."""

from __future__ import annotations

import io
import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from tests.distributed import free_port
from transfigure import runtime


def test_resolve_cpu_and_auto():
    assert runtime.resolve_device("cpu") == torch.device("cpu")
    auto = runtime.resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available() and runtime._mps_available():
        expected = "mps"
    assert auto.type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_cuda_is_a_clear_error():
    with pytest.raises(runtime.DeviceUnavailableError, match="no CUDA device"):
        runtime.resolve_device("cuda")


def test_unknown_device_name():
    with pytest.raises(runtime.DeviceUnavailableError, match="unknown device 'tpu'"):
        runtime.resolve_device("tpu")


def test_precision_dtype_and_bad_name():
    assert runtime.precision_dtype("fp32") is None
    assert runtime.precision_dtype("bf16") is torch.bfloat16
    assert runtime.precision_dtype("fp16") is torch.float16
    with pytest.raises(ValueError, match="unknown precision"):
        runtime.precision_dtype("fp8")


def test_autocast_fp32_is_a_noop_and_bf16_casts_matmuls():
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    with runtime.autocast("cpu", "fp32"):
        assert (a @ b).dtype == torch.float32
    with runtime.autocast(torch.device("cpu"), "bf16"):
        assert (a @ b).dtype == torch.bfloat16
    assert (a @ b).dtype == torch.float32


def _draw() -> tuple[float, float, torch.Tensor]:
    return random.random(), float(np.random.rand()), torch.rand(3)


def test_seed_everything_is_deterministic():
    runtime.seed_everything(123)
    first = _draw()
    runtime.seed_everything(123)
    second = _draw()
    assert first[:2] == second[:2]
    torch.testing.assert_close(first[2], second[2])
    runtime.seed_everything(124)
    assert _draw()[0] != first[0]


def test_rng_state_round_trip_through_weights_only_load():
    runtime.seed_everything(7)
    _draw()
    state = runtime.get_rng_state()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = torch.load(buffer, weights_only=True)
    expected = _draw()
    _draw()  # move every generator on
    runtime.set_rng_state(restored)
    again = _draw()
    assert again[:2] == expected[:2]
    torch.testing.assert_close(again[2], expected[2])


def test_single_process_distributed_defaults(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = runtime.init_distributed()
    assert info == runtime.DistInfo(rank=0, local_rank=0, world_size=1, backend=None)
    assert not runtime.is_distributed()
    assert runtime.get_rank() == 0 and runtime.get_world_size() == 1
    assert runtime.is_main_process()
    runtime.barrier()  # no group: must not block or raise
    t = torch.tensor([3.0])
    assert runtime.all_reduce_mean(t) is t
    assert runtime.rank_zero_only(lambda: 5)() == 5


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(world_size),
    )
    info = runtime.init_distributed(torch.device("cpu"), timeout_s=60)
    try:
        assert info.backend == "gloo" and info.world_size == world_size and info.rank == rank
        assert runtime.is_distributed() and runtime.get_rank() == rank

        mean = runtime.all_reduce_mean(torch.tensor([float(rank)]))

        @runtime.rank_zero_only
        def write() -> str:
            path = Path(out_dir) / "written.txt"
            with open(path, "a") as handle:
                handle.write(f"rank {runtime.get_rank()} mean {mean.item():.2f}\n")
            return str(path)

        result = write()
        assert (result is not None) == (rank == 0)
        runtime.barrier()
        # After the barrier every rank sees rank 0's file.
        assert (Path(out_dir) / "written.txt").exists()
    finally:
        runtime.cleanup_distributed()


def test_two_process_gloo_run_writes_once(tmp_path):
    mp.spawn(_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    lines = (tmp_path / "written.txt").read_text().splitlines()
    assert lines == ["rank 0 mean 0.50"]


@pytest.mark.parametrize(
    ("flags", "training", "expected"),
    [
        ({"avx512f", "avx512_bf16"}, False, "bf16"),
        ({"amx_bf16", "amx_tile"}, False, "bf16"),
        ({"avx512f", "avx512_bf16", "amx_bf16"}, True, "fp32"),  # CPU training stays fp32
        ({"avx2", "avx512f"}, False, "fp32"),  # AVX-512 without BF16: emulated, slow
        (set(), False, "fp32"),  # not x86 Linux
    ],
)
def test_auto_precision_on_the_cpu(monkeypatch, flags, training, expected):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset(flags))
    assert runtime.resolve_precision("auto", "cpu", training=training) == expected


def test_explicit_precisions_pass_through_and_auto_is_never_fp16(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"amx_bf16"}))
    for name in ("fp32", "bf16", "fp16"):
        assert runtime.resolve_precision(name, "cpu", training=True) == name
    assert runtime.resolve_precision("auto", "mps", training=False) == "fp32"
    with pytest.raises(ValueError, match="unknown precision"):
        runtime.resolve_precision("fp8", "cpu", training=False)
    with pytest.raises(ValueError, match="resolved first"):
        runtime.precision_dtype("auto")


def test_auto_precision_on_cuda(monkeypatch):
    monkeypatch.setattr(runtime, "_cuda_bf16", lambda device: True)
    assert runtime.resolve_precision("auto", "cuda", training=True) == "bf16"
    monkeypatch.setattr(runtime, "_cuda_bf16", lambda device: False)
    assert runtime.resolve_precision("auto", "cuda", training=False) == "fp32"


def test_cpu_flags_reads_this_machine():
    flags = runtime.cpu_flags()
    assert isinstance(flags, frozenset)
    if Path("/proc/cpuinfo").exists() and "flags" in Path("/proc/cpuinfo").read_text():
        assert "fpu" in flags or "sse2" in flags


def test_keep_freed_memory_is_idempotent_and_harmless():
    import sys

    first = runtime.keep_freed_memory()
    assert runtime.keep_freed_memory() == first
    if sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION"):
        assert first is True
    x = torch.ones(4_000_000)  # above glibc's default mmap threshold: allocated, freed, reused
    del x
    assert torch.ones(4_000_000).sum().item() == 4_000_000
