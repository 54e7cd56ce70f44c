"""``transfigure train``: options built from the config dataclasses, the reference's spellings."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from transfigure.cli import main
from transfigure.datasets.synthetic import write_seasons


@pytest.fixture(scope="module")
def seasons_root(tmp_path_factory):
    return write_seasons(tmp_path_factory.mktemp("seasons"), 2, 1, size=32, seed=0)


def test_reference_spellings_are_accepted_and_hidden(seasons_root, tmp_path):
    out = tmp_path / "run"
    args = ["--quiet", "train", "cyclegan", "--dataroot", str(seasons_root), "--out", str(out)]
    args += ["--netG", "resnet_6blocks", "--n_epochs", "1", "--n_epochs_decay", "0"]
    args += ["--lambda_A", "5", "--no_flip", "--load_size", "32", "--crop_size", "32"]
    args += ["--ngf", "4", "--ndf", "4", "--num_threads", "0", "--no_dropout", "--max-steps", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["net_g"] == "resnet_6blocks" and config["lambda_a"] == 5.0
    assert (config["n_epochs"], config["n_epochs_decay"], config["flip"]) == (1, 0, False)
    assert (config["load_size"], config["workers"], config["use_dropout"]) == (32, 0, False)
    page = CliRunner().invoke(main, ["train", "cyclegan", "--help"]).output
    assert "--net-g" in page and "--lambda-a" in page and "--no-flip" in page
    for hidden in ("--netG", "--n_epochs", "--lambda_A", "--no_flip", "--dataroot", "--out "):
        assert hidden not in page, hidden


def test_train_help_lists_every_trainer_without_building_them():
    result = CliRunner().invoke(main, ["train", "--help"])
    assert result.exit_code == 0
    for name in ("dcgan", "wgan-gp", "cgan", "cyclegan"):
        assert name in result.output


def test_a_bad_choice_is_a_usage_error(seasons_root, tmp_path):
    result = CliRunner().invoke(
        main, ["train", "cyclegan", str(seasons_root), "--net-g", "resnet_3blocks"]
    )
    assert result.exit_code == 2 and "resnet_9blocks" in result.output


def test_a_crop_too_small_for_the_networks_is_a_usage_error(seasons_root, tmp_path):
    result = CliRunner().invoke(
        main, ["train", "cyclegan", str(seasons_root), "--crop-size", "16", "--load-size", "16"]
    )
    assert result.exit_code == 2 and "at least 32" in result.output
    result = CliRunner().invoke(
        main, ["train", "cyclegan", str(seasons_root), "--net-g", "unet_256", "--crop-size", "128"]
    )
    assert result.exit_code == 2 and "multiple of 256" in result.output


def test_models_export_rebuilds_the_generators_from_any_checkpoint(seasons_root, tmp_path):
    from transfigure.checkpoint import load_model, load_training_state

    out = tmp_path / "run"
    args = ["--quiet", "train", "cyclegan", str(seasons_root), "-o", str(out), "--epochs", "2"]
    args += ["--crop-size", "32", "--load-size", "32", "--net-g", "resnet_6blocks"]
    args += ["--ngf", "4", "--ndf", "4", "--workers", "0", "--keep-every", "1"]
    assert CliRunner().invoke(main, args).exit_code == 0
    first = out / "checkpoints" / "epoch_001.pt"
    result = CliRunner().invoke(
        main, ["models", "export", str(out), "--checkpoint", str(first), "-o", str(tmp_path / "e1")]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        str(tmp_path / "e1" / "generator_a2b.safetensors"),
        str(tmp_path / "e1" / "generator_b2a.safetensors"),
    ]
    g, info = load_model(tmp_path / "e1" / "generator_a2b.safetensors")
    assert info.extra["epoch"] == 1 and info.extra["checkpoint"] == str(first)
    weights = load_training_state(first)["networks"]["G_A"]
    for key, value in g.state_dict().items():
        assert value.equal(weights[key]), key
    missing = CliRunner().invoke(main, ["models", "export", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "not a run folder" in missing.output
