"""Shared fixtures: real development data (optional), a CLI runner, deterministic torch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(
    os.environ.get(
        "TRANSFIGURE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"
    )
)


@pytest.fixture(autouse=True)
def _deterministic_torch():
    """Tiny models run faster single-threaded, and results do not depend on thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's cache folder."""
    monkeypatch.setenv("TRANSFIGURE_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"development data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def runner():
    """A Click test runner that keeps stdout and stderr apart."""
    from click.testing import CliRunner

    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # Click >= 8.2 always separates them
        return CliRunner()
