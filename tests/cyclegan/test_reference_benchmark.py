"""benchmarks/cyclegan_reference.py's statistics: the permutation test and the per-side summary.

The benchmark itself trains for an hour a run; what it concludes from the runs is tested here.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("cyclegan_reference")
    finally:
        sys.path.remove(str(BENCHMARKS))


def test_permutation_p_exact_values(bench):
    # four against four, every one of ours lower: 1 relabelling in C(8, 4) = 70 is as extreme
    assert bench._permutation_p([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(1 / 70)
    # every one of ours higher: every relabelling is at most as high
    assert bench._permutation_p([5, 6, 7, 8], [1, 2, 3, 4]) == 1.0
    # two against two, interleaved: means 2.5 and 2.5 -> the 4 of 6 splits at or below 0
    assert bench._permutation_p([1, 4], [2, 3]) == pytest.approx(4 / 6)
    # unequal sizes: 1 against 2, ours the lowest -> 1 of C(3, 1) = 3
    assert bench._permutation_p([0.1], [0.5, 0.9]) == pytest.approx(1 / 3)
    # large values with ties: swapping equal values is a tie, whatever the summation order
    big = [2035.2, 2039.3, 2035.2]
    assert bench._permutation_p(big[:2], big[2:] + [2100.7]) == pytest.approx(3 / 6)


def _row(side, seed, fid, kid, probe):
    return {
        "side": side,
        "seed": seed,
        "scores": {"fid": fid, "kid_mean": kid},
        "probe": {"fraction_target": probe},
    }


def test_summary_means_ranges_and_tests(bench, capsys):
    rows = [
        _row("transfigure", 0, 2000.0, 100.0, 0.7),
        _row("reference-matched", 0, 2100.0, 104.0, 0.9),
        _row("transfigure", 1, 2020.0, 101.0, 0.8),
        _row("reference-matched", 1, 2140.0, 106.0, 0.8),
    ]
    summary = bench._summary(rows)
    ours, theirs = summary["transfigure"], summary["reference-matched"]
    assert ours["fid"] == {"mean": 2010.0, "min": 2000.0, "max": 2020.0, "runs": 2}
    assert theirs["probe"]["mean"] == pytest.approx(0.85)
    tests = summary["transfigure lower than reference-matched, p"]
    assert tests["fid"] == pytest.approx(1 / 6)  # ours both lower: 1 split of 6
    assert tests["kid"] == pytest.approx(1 / 6)
    # 0.7 with either 0.8 gives 0.75 against 0.85: 2 of the 6 splits as low as the observed
    assert tests["probe"] == pytest.approx(2 / 6)
    out = capsys.readouterr().out
    assert "permutation p" in out and "reference-matched" in out


def test_summary_skips_the_test_with_one_run_a_side(bench):
    rows = [_row("transfigure", 0, 1.0, 1.0, 0.5), _row("reference", 0, 2.0, 2.0, 0.6)]
    summary = bench._summary(rows)
    assert set(summary) == {"transfigure", "reference"}
