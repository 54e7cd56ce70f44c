"""pix2pix through the command line: train, resume bit-identically, translate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from safetensors.torch import load_file

from transfigure.cli import main
from transfigure.datasets.edges import write_edges2scenes

ARGS = ["--device", "cpu", "--quiet", "train", "pix2pix"]
SMALL = ["--load-size", "36", "--crop-size", "32", "--netG", "resnet_6blocks", "--ngf", "4"]
SMALL += ["--ndf", "4", "--workers", "0", "--n-samples", "1", "--epochs", "2"]


@pytest.fixture(scope="module")
def edges_root(tmp_path_factory) -> Path:
    return write_edges2scenes(tmp_path_factory.mktemp("e2s"), 3, 1, size=32, seed=1)


def test_cli_trains_resumes_exactly_and_translates(edges_root, tmp_path, runner):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    r = runner.invoke(main, [*ARGS, str(edges_root), "-o", str(whole), *SMALL])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [str(whole), str(whole / "generator_a2b.safetensors")]
    config = json.loads((whole / "config.json").read_text())
    assert config["trainer"] == "pix2pix"
    assert (config["config"]["lambda_l1"], config["config"]["dropout_at_test"]) == (100.0, True)

    r = runner.invoke(main, [*ARGS, str(edges_root), "-o", str(parts), *SMALL, "--max-steps", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, [*ARGS, "--resume", str(parts)])
    assert r.exit_code == 0, r.output
    a = load_file(whole / "generator_a2b.safetensors")
    b = load_file(parts / "generator_a2b.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)

    # translate a held-out edge map (the left half of a test pair), size kept
    with Image.open(edges_root / "test" / "00000.png") as pair:
        pair.crop((0, 0, 32, 32)).resize((40, 28)).save(tmp_path / "edges.png")
    out = tmp_path / "out"
    r = runner.invoke(
        main,
        [
            "--device",
            "cpu",
            "--quiet",
            "translate",
            str(whole),
            str(tmp_path / "edges.png"),
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    with Image.open(out / "edges.png") as im:
        assert im.size == (40, 28)


def test_cli_no_dropout_at_test_and_direction(edges_root, tmp_path, runner):
    run = tmp_path / "run"
    extra = ["--no-dropout-at-test", "--direction", "BtoA", "--max-steps", "1"]
    r = runner.invoke(main, [*ARGS, str(edges_root), "-o", str(run), *SMALL, *extra])
    assert r.exit_code == 0, r.output
    from transfigure.checkpoint import read_model_info

    info = read_model_info(run / "generator_b2a.safetensors")
    assert info.config["dropout_at_test"] is False and info.extra["direction"] == "b2a"
    r = runner.invoke(main, [*ARGS, str(tmp_path / "missing"), "-o", str(tmp_path / "x"), *SMALL])
    assert r.exit_code == 2 and "not found" in r.stderr
