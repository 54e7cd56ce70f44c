"""``transfigure train dcgan|wgan-gp|cgan`` and ``transfigure sample`` through Click."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from transfigure.cli import main

TINY = [
    "--image-size",
    "16",
    "--batch-size",
    "8",
    "--g-width",
    "4",
    "--d-width",
    "4",
    "--latent-dim",
    "8",
    "--sample-columns",
    "4",
]


def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:  # Click >= 8.2 keeps them apart anyway
        return CliRunner()


def _ok(result):
    assert result.exit_code == 0, (result.output, result.stderr, result.exception)
    return result


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("dcgan") / "run"
    result = _ok(
        _runner().invoke(
            main,
            [
                "--quiet",
                "--seed",
                "3",
                "train",
                "dcgan",
                "shapes:32",
                *TINY,
                "--epochs",
                "1",
                "-o",
                str(run),
            ],
        )
    )
    return run, result


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("cgan") / "run"
    _ok(
        _runner().invoke(
            main, ["--quiet", "train", "cgan", "shapes:32", *TINY, "--epochs", "1", "-o", str(run)]
        )
    )
    return run


def test_train_writes_the_run_folder_and_lists_it_on_stdout(dcgan_run):
    run, result = dcgan_run
    assert result.stdout.splitlines() == [
        str(run),
        str(run / "generator.safetensors"),
        str(run / "discriminator.safetensors"),
    ]
    for name in (
        "config.json",
        "checkpoints/latest.pt",
        "samples/epoch_001.png",
        "metrics.jsonl",
        "losses.png",
        "progress.gif",
        "generator.safetensors",
        "discriminator.safetensors",
        "index.html",
    ):
        assert (run / name).is_file(), name
    page = (run / "index.html").read_text()
    assert 'src="progress.gif"' in page and 'src="samples/epoch_001.png"' in page
    from transfigure.training import read_run_config

    info = read_run_config(run)
    config = info["config"]
    assert config["seed"] == 3 and config["g_width"] == 4 and info["trainer"] == "dcgan"
    assert (config["beta1"], config["beta2"]) == (0.5, 0.999)


def test_train_progress_goes_to_stderr(tmp_path):
    result = _ok(
        _runner().invoke(
            main,
            [
                "train",
                "wgan-gp",
                "shapes:16",
                *TINY,
                "--epochs",
                "1",
                "--n-critic",
                "2",
                "-o",
                str(tmp_path / "r"),
            ],
        )
    )
    assert "epoch 1/1" in result.stderr
    assert "epoch" not in result.stdout
    assert (tmp_path / "r" / "critic.safetensors").is_file()


def test_sample_grid_is_reproducible(dcgan_run, tmp_path):
    run, _ = dcgan_run
    r = _runner()
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    res = _ok(r.invoke(main, ["sample", str(run), "-n", "8", "--seed", "5", "-o", str(a)]))
    assert res.stdout.strip() == str(a)
    _ok(
        r.invoke(
            main,
            ["sample", str(run / "generator.safetensors"), "-n", "8", "--seed", "5", "-o", str(b)],
        )
    )
    _ok(r.invoke(main, ["sample", str(run), "-n", "8", "--seed", "6", "-o", str(c)]))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    with Image.open(a) as im:  # 8 images → 3 per row (ceil √8) → 3 rows of 16 px + padding
        assert im.size == (3 * 18 + 2, 3 * 18 + 2)
    again = r.invoke(main, ["sample", str(run), "-n", "8", "--seed", "5", "-o", str(a)])
    assert again.exit_code == 1 and "--overwrite" in again.stderr


def test_sample_to_a_folder_is_reproducible(dcgan_run, tmp_path):
    run, _ = dcgan_run
    r = _runner()
    res = _ok(r.invoke(main, ["sample", str(run), "-n", "8", "-o", str(tmp_path / "d1")]))
    assert res.stdout.strip() == str(tmp_path / "d1")
    _ok(r.invoke(main, ["sample", str(run), "-n", "8", "-o", str(tmp_path / "d2")]))
    files = sorted(p.name for p in (tmp_path / "d1").iterdir())
    assert files == [f"sample_{i:04d}.png" for i in range(8)]
    for name in files:
        assert (tmp_path / "d1" / name).read_bytes() == (tmp_path / "d2" / name).read_bytes()
        with Image.open(tmp_path / "d1" / name) as im:
            assert im.size == (16, 16)
    # the first 3 of a larger request are the same images
    _ok(r.invoke(main, ["sample", str(run), "-n", "3", "-o", str(tmp_path / "d3")]))
    assert (tmp_path / "d3" / "sample_0002.png").read_bytes() == (
        tmp_path / "d1" / "sample_0002.png"
    ).read_bytes()


def test_sample_interpolate(dcgan_run, tmp_path):
    run, _ = dcgan_run
    out = tmp_path / "walk.png"
    _ok(
        _runner().invoke(
            main,
            [
                "sample",
                str(run),
                "--interpolate",
                "--steps",
                "5",
                "--seed",
                "1",
                "--seed-b",
                "9",
                "-o",
                str(out),
            ],
        )
    )
    with Image.open(out) as im:
        assert im.size == (5 * 18 + 2, 18 + 2)
    _ok(
        _runner().invoke(
            main,
            ["sample", str(run), "--interpolate", "--steps", "5", "-o", str(tmp_path / "walk")],
        )
    )
    assert len(list((tmp_path / "walk").iterdir())) == 5


def test_sample_nearest(dcgan_run, tmp_path):
    run, _ = dcgan_run
    out = tmp_path / "nn.png"
    res = _ok(
        _runner().invoke(
            main,
            ["sample", str(run), "--nearest", "shapes:32", "-n", "4", "-k", "2", "-o", str(out)],
        )
    )
    assert "nearest training image" in res.stderr and "median" in res.stderr
    with Image.open(out) as im:  # 4 rows of sample + 2 neighbours
        assert im.size == (3 * 18 + 2, 4 * 18 + 2)


def test_cgan_sample_one_row_per_label_and_by_name(cgan_run, tmp_path):
    r = _runner()
    grid = tmp_path / "labels.png"
    _ok(r.invoke(main, ["sample", str(cgan_run), "-n", "12", "-o", str(grid)]))
    with Image.open(grid) as im:  # 4 labels × ceil(12 / 4) columns
        assert im.size == (3 * 18 + 2, 4 * 18 + 2)
    _ok(
        r.invoke(
            main,
            [
                "sample",
                str(cgan_run),
                "-n",
                "2",
                "--label",
                "triangle",
                "-o",
                str(tmp_path / "tri"),
            ],
        )
    )
    assert sorted(p.name for p in (tmp_path / "tri").iterdir()) == [
        "triangle_0000.png",
        "triangle_0001.png",
    ]
    _ok(
        r.invoke(
            main, ["sample", str(cgan_run), "-n", "2", "--label", "2", "-o", str(tmp_path / "tri2")]
        )
    )
    assert (tmp_path / "tri2" / "triangle_0001.png").read_bytes() == (
        tmp_path / "tri" / "triangle_0001.png"
    ).read_bytes()
    bad = r.invoke(
        main, ["sample", str(cgan_run), "--label", "hexagon", "-o", str(tmp_path / "x.png")]
    )
    assert bad.exit_code == 2 and "circle, square, triangle, cross" in bad.stderr


def test_sample_rejects_other_model_kinds(dcgan_run, tmp_path):
    run, _ = dcgan_run
    res = _runner().invoke(
        main, ["sample", str(run / "discriminator.safetensors"), "-o", str(tmp_path / "x.png")]
    )
    assert res.exit_code == 1
    assert "gan-discriminator" in res.stderr and "Traceback" not in res.stderr
    res = _runner().invoke(
        main, ["sample", str(run), "--label", "0", "-o", str(tmp_path / "x.png")]
    )
    assert res.exit_code == 2 and "unconditional" in res.stderr


def test_bad_data_is_a_clear_error(tmp_path):
    r = _runner()
    missing = r.invoke(
        main, ["train", "dcgan", str(tmp_path / "nope"), *TINY, "-o", str(tmp_path / "r1")]
    )
    assert missing.exit_code == 2
    assert "no such folder" in missing.stderr and "shapes" in missing.stderr
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    empty = r.invoke(
        main, ["train", "dcgan", str(tmp_path / "empty"), *TINY, "-o", str(tmp_path / "r2")]
    )
    assert empty.exit_code == 1 and "no images" in empty.stderr
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("RGB", (20, 20), "red").save(flat / "a.png")
    unlabelled = r.invoke(main, ["train", "cgan", str(flat), *TINY, "-o", str(tmp_path / "r3")])
    assert unlabelled.exit_code == 1 and "sub-folder" in unlabelled.stderr
    for res in (missing, empty, unlabelled):
        assert "Traceback" not in res.stderr and res.stdout == ""
    small = r.invoke(
        main, ["train", "dcgan", "shapes:4", *TINY, "--epochs", "1", "-o", str(tmp_path / "r4")]
    )
    assert small.exit_code == 0, small.stderr
    assert "fewer than one batch of 8" in small.stderr and "batches of 4" in small.stderr


def test_train_a_folder_of_images(tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (24 + i, 20), (30 * i, 0, 0)).save(folder / f"{i}.png")
    run = tmp_path / "run"
    _ok(
        _runner().invoke(
            main,
            [
                "--quiet",
                "train",
                "dcgan",
                str(folder),
                *TINY,
                "--epochs",
                "1",
                "--channels",
                "1",
                "-o",
                str(run),
            ],
        )
    )
    from transfigure.checkpoint import load_model

    g, _ = load_model(run / "generator.safetensors")
    assert (g.config.channels, g.config.image_size) == (1, 16)


def test_resume_rules(tmp_path):
    r = _runner()
    run = tmp_path / "run"
    _ok(
        r.invoke(
            main, ["--quiet", "train", "dcgan", "shapes:16", *TINY, "--epochs", "1", "-o", str(run)]
        )
    )
    again = r.invoke(main, ["train", "dcgan", "shapes:16", *TINY, "-o", str(run)])
    assert again.exit_code == 2 and "--resume" in again.stderr
    changed = r.invoke(main, ["train", "dcgan", "--resume", str(run), "--g-width", "8"])
    assert changed.exit_code == 2 and "--g-width" in changed.stderr and "--lr-g" in changed.stderr
    other = r.invoke(main, ["train", "wgan-gp", "--resume", str(run)])
    assert other.exit_code == 2 and "dcgan run" in other.stderr
    res = _ok(
        r.invoke(
            main,
            ["--quiet", "train", "dcgan", "--resume", str(run), "--epochs", "2", "--lr-g", "1e-4"],
        )
    )
    assert res.stdout.splitlines()[0] == str(run)
    assert (run / "samples" / "epoch_002.png").is_file()
    from transfigure.training import read_run_config

    assert read_run_config(run)["history"] == [
        {"step": 2, "changed": {"lr_g": [2e-4, 1e-4], "epochs": [1, 2]}}
    ]
    bad = r.invoke(main, ["train", "dcgan", "--resume", str(tmp_path / "none")])
    assert bad.exit_code == 2 and "not a run folder" in bad.stderr


def test_bad_option_combination_is_a_usage_error(tmp_path):
    res = _runner().invoke(
        main, ["train", "dcgan", "shapes:16", *TINY, "--gp-weight", "10", "-o", str(tmp_path / "r")]
    )
    assert res.exit_code == 2 and "batch norm" in res.stderr


def test_torchrun_two_processes_write_once(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this python")
    run = tmp_path / "run"
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
    }
    proc = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc-per-node",
            "2",
            "-m",
            "transfigure",
            "--quiet",
            "--device",
            "cpu",
            "train",
            "dcgan",
            "shapes:32",
            *TINY,
            "--epochs",
            "2",
            "-o",
            str(run),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == [
        str(run),
        str(run / "generator.safetensors"),
        str(run / "discriminator.safetensors"),
    ]
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2  # 32 images / 2 ranks / batch 8 = 2 steps per epoch: one line each
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]


def test_non_finite_loss_is_exit_1_with_the_message(tmp_path, monkeypatch):
    import transfigure.training
    from transfigure.training import NonFiniteError

    def explode(*args, **kwargs):
        raise NonFiniteError("non-finite loss loss_d=nan at step 3 (epoch 1): training stopped")

    monkeypatch.setattr(transfigure.training, "train", explode)
    res = _runner().invoke(main, ["train", "dcgan", "shapes:16", *TINY, "-o", str(tmp_path / "r")])
    assert res.exit_code == 1
    assert "non-finite loss loss_d=nan" in res.stderr and "Traceback" not in res.stderr
    assert res.stdout == ""


def test_resuming_a_finished_run_says_so(tmp_path):
    r = _runner()
    run = tmp_path / "run"
    _ok(r.invoke(main, ["--quiet", "train", "dcgan", "shapes:16", *TINY, "--epochs", "1", "-o",
                        str(run)]))  # fmt: skip
    res = _ok(r.invoke(main, ["train", "dcgan", "--resume", str(run)]))
    assert "nothing to do" in res.stderr


def test_sample_says_which_generator_drew_the_samples(dcgan_run, tmp_path):
    run, _ = dcgan_run
    res = _ok(
        _runner().invoke(
            main,
            [
                "sample",
                str(run / "generator.safetensors"),
                "-n",
                "4",
                "-o",
                str(tmp_path / "g.png"),
            ],
        )
    )
    assert "moving average (EMA)" in res.stderr and "epoch 1" in res.stderr
