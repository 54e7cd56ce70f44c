"""CUT and FastCUT through the command line: train, resume bit-identically, translate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from safetensors.torch import load_file

from transfigure.cli import main
from transfigure.datasets.synthetic import write_seasons

ARGS = ["--device", "cpu", "--quiet", "train", "cut"]
SMALL = ["--load-size", "32", "--crop-size", "32", "--netG", "resnet_6blocks", "--ngf", "4"]
SMALL += ["--ndf", "4", "--workers", "0", "--n-samples", "1", "--max-dataset-size", "3"]
SMALL += ["--num-patches", "16", "--netF_nc", "8", "--epochs", "2"]


@pytest.fixture(scope="module")
def seasons_root(tmp_path_factory) -> Path:
    return write_seasons(tmp_path_factory.mktemp("seasons"), 3, 1, size=32, seed=2)


@pytest.mark.parametrize("mode", ["cut", "fastcut"])
def test_cli_trains_resumes_exactly_and_translates(seasons_root, tmp_path, runner, mode):
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    args = [*ARGS, str(seasons_root), *SMALL, "--mode", mode]
    r = runner.invoke(main, [*args, "-o", str(whole)])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [str(whole), str(whole / "generator_a2b.safetensors")]
    config = json.loads((whole / "config.json").read_text())["config"]
    assert (config["mode"], config["lambda_nce"], config["nce_idt"]) == (
        (mode, 1.0, True) if mode == "cut" else (mode, 10.0, False)
    )
    assert (config["n_epochs"], config["n_epochs_decay"]) == (1, 1)

    r = runner.invoke(main, [*args, "-o", str(parts), "--max-steps", "2"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, [*ARGS, "--resume", str(parts)])
    assert r.exit_code == 0, r.output
    a = load_file(whole / "generator_a2b.safetensors")
    b = load_file(parts / "generator_a2b.safetensors")
    assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a)

    image = tmp_path / "photo.png"
    with Image.open(seasons_root / "testA" / "00000.png") as im:
        im.resize((44, 30)).save(image)
    out = tmp_path / "out"
    r = runner.invoke(
        main, ["--device", "cpu", "--quiet", "translate", str(whole), str(image), "-o", str(out)]
    )
    assert r.exit_code == 0, r.output
    with Image.open(out / "photo.png") as im:
        assert im.size == (44, 30)


def test_cli_mode_is_structural_on_resume(seasons_root, tmp_path, runner):
    run = tmp_path / "run"
    r = runner.invoke(main, [*ARGS, str(seasons_root), *SMALL, "-o", str(run), "--max-steps", "1"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, [*ARGS, "--resume", str(run), "--mode", "fastcut"])
    assert r.exit_code == 2 and "--mode" in r.stderr
