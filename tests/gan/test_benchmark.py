"""benchmarks/gan.py runs and writes its JSON (a tiny configuration)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "gan.py"


def test_benchmark_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "gan.json"
    proc = subprocess.run(
        [sys.executable, str(BENCHMARK), "--steps", "2", "--warmup", "1", "--image-size", "16",
         "--batch-size", "4", "--threads", "1", "--json", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "dcgan-64" in proc.stdout and "wgan-gp-64" in proc.stdout and "it/s" in proc.stdout
    results = json.loads(out.read_text())["results"]
    assert [r["case"] for r in results] == ["dcgan-64", "wgan-gp-64"]
    for r in results:
        assert r["iterations_per_s"] > 0 and r["peak_rss_mb"] > 0
        assert r["steps"] == 2 and r["batch_size"] == 4
    assert results[1]["n_critic"] == 5
    assert results[1]["generator_steps_per_s"] * 5 == pytest.approx(results[1]["iterations_per_s"])
