"""CycleGAN training: learning, exact resume, WGAN-GP, run folder and the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from transfigure.checkpoint import load_model, load_training_state
from transfigure.cli import main
from transfigure.cyclegan.config import TrainConfig
from transfigure.cyclegan.losses import cycle_loss
from transfigure.cyclegan.step import LOSS_TERMS, CycleGANStep
from transfigure.datasets.synthetic import write_seasons
from transfigure.training import TrainingError, load_config
from transfigure.training import train as engine_train


def train(config: TrainConfig, run_dir, **kwargs):
    return engine_train(CycleGANStep, config, run_dir, **kwargs)


def load_run_config(run_dir, **changes) -> TrainConfig:
    return dataclasses.replace(load_config(TrainConfig, run_dir, "cyclegan"), **changes)


@pytest.fixture(scope="module")
def seasons_root(tmp_path_factory) -> Path:
    """Summer (A) and winter (B) scenes, 32 px: 6 training and 2 test images per domain."""
    return write_seasons(tmp_path_factory.mktemp("seasons"), 6, 2, size=32, seed=0)


def tiny(root: Path, **changes) -> TrainConfig:
    base = dict(
        data_root=str(root),
        load_size=36,
        crop_size=32,
        net_g="resnet_6blocks",
        ngf=8,
        ndf=8,
        n_epochs=1,
        n_epochs_decay=1,
        workers=0,
        log_every=2,
        n_samples=2,
        pool_size=3,
    )
    base.update(changes)
    return TrainConfig(**base)


def _metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "event" not in r]  # resume events are checked in the engine's tests


def test_a_few_steps_lower_the_cycle_loss(seasons_root, tmp_path):
    cfg = tiny(seasons_root, lr=1e-3, n_epochs=4, n_epochs_decay=0, log_every=6, flip=False)
    train(cfg, tmp_path / "run", max_steps=24)
    rows = _metrics(tmp_path / "run")
    assert len(rows) == 4
    first = rows[0]["cycle_A"] + rows[0]["cycle_B"]
    last = rows[-1]["cycle_A"] + rows[-1]["cycle_B"]
    assert last < 0.8 * first, (first, last)


def test_run_folder_and_metrics(seasons_root, tmp_path):
    run = tmp_path / "run"
    events = []
    result = train(tiny(seasons_root), run, callback=events.append)
    assert result.epochs == 2 and result.steps == 12
    for name in ("config.json", "metrics.jsonl", "losses.png", "checkpoints/latest.pt"):
        assert (run / name).is_file(), name
    assert [p.name for p in result.samples] == ["epoch_001.png", "epoch_002.png"]
    assert result.models == [run / "generator_a2b.safetensors", run / "generator_b2a.safetensors"]
    rows = _metrics(run)
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10, 12]
    for row in rows:
        assert set(LOSS_TERMS) | {"lr", "epoch", "iter", "step", "d_fake_acc"} == set(row) - {
            "end_of_epoch"
        }
        assert all(row[k] >= 0 for k in LOSS_TERMS)
    # constant for n_epochs = 1, then the reference's linear decay: 1 - 1/(1 + 1)
    assert [r["lr"] for r in rows] == pytest.approx([2e-4] * 3 + [1e-4] * 3)
    # the exported generators rebuild from the file alone and describe their direction
    g_a2b, info = load_model(run / "generator_a2b.safetensors", kind="cyclegan-generator")
    assert info.extra["direction"] == "a2b" and info.extra["epoch"] == 2
    assert info.config["ngf"] == 8 and info.config["netG"] == "resnet_6blocks"
    _, info_b = load_model(run / "generator_b2a.safetensors")
    assert info_b.extra["direction"] == "b2a"
    state = load_training_state(run / "checkpoints" / "latest.pt")
    torch.testing.assert_close(g_a2b.state_dict(), state["networks"]["G_A"])
    # the sample strip: 2 fixed images × (real, fake, rec) × 2 directions, 6 to a row
    from PIL import Image

    with Image.open(result.samples[-1]) as im:
        assert im.size == (6 * 34 + 2, 2 * 34 + 2)
    config = json.loads((run / "config.json").read_text())
    assert config["trainer"] == "cyclegan"
    assert config["config"] == dataclasses.asdict(tiny(seasons_root))
    assert any(e.done and e.task == "epoch 2/2" for e in events)
    assert any(e.message and "epoch 1/2" in e.message for e in events)


def _weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_training_state(run / "checkpoints" / "latest.pt")
    out = {}
    for net, sd in state["networks"].items():
        out.update({f"{net}.{k}": v for k, v in sd.items()})
    for opt in ("opt_0", "opt_1"):  # opt_G, opt_D
        for i, s in state["step"][opt]["state"].items():
            out[f"{opt}.{i}.exp_avg"] = s["exp_avg"]
    out["pool"] = state["step"]["pool_fake_A"]["images"]
    return out


def test_resume_equals_an_uninterrupted_run(seasons_root, tmp_path):
    # dropout, a small pool and the gradient penalty exercise every random generator
    cfg = tiny(seasons_root, use_dropout=True, gan_mode="wgangp", log_every=3)
    whole = tmp_path / "whole"
    train(cfg, whole)

    parts = tmp_path / "parts"
    first = train(cfg, parts, max_steps=4)  # stops mid-epoch 1
    assert first.steps == 4 and first.epochs == 0
    resumed_cfg = load_run_config(parts)
    assert resumed_cfg == cfg
    second = train(resumed_cfg, parts, resume=True, max_steps=4)  # across the epoch boundary
    assert second.steps == 8 and second.epochs == 1
    third = train(resumed_cfg, parts, resume=True)
    assert third.steps == 12 and third.epochs == 2

    a, b = _weights(whole), _weights(parts)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    for name in ("generator_a2b.safetensors", "generator_b2a.safetensors"):
        fa, fb = load_file(whole / name), load_file(parts / name)
        assert all(torch.equal(fa[k], fb[k]) for k in fa)
    # and so does every logged line (windows straddling a resume included)
    assert _metrics(whole) == _metrics(parts)


def test_extending_a_finished_run(seasons_root, tmp_path):
    run = tmp_path / "run"
    train(tiny(seasons_root), run)
    longer = load_run_config(run, n_epochs_decay=2)
    assert longer.total_epochs == 3
    result = train(longer, run, resume=True)
    assert result.epochs == 3 and result.steps == 18
    rows = _metrics(run)
    # epoch 3 follows the 1 + 2 schedule: 1 - 2/3 of the base rate
    assert [r["lr"] for r in rows if r["epoch"] == 3] == pytest.approx([2e-4 / 3] * 3)
    # asking for no more epochs than are done trains nothing and says so
    events = []
    again = train(load_run_config(run, n_epochs_decay=0), run, resume=True, callback=events.append)
    assert again.steps == 18
    assert any(e.message and "nothing to do" in e.message for e in events)
    with pytest.raises(TrainingError, match="--ngf cannot change"):
        train(load_run_config(run, ngf=4), run, resume=True)


def test_resume_refuses_a_changed_architecture(seasons_root, tmp_path):
    run = tmp_path / "run"
    train(tiny(seasons_root), run, max_steps=1)
    with pytest.raises(TrainingError, match="ngf"):
        train(tiny(seasons_root, ngf=4), run, resume=True)
    with pytest.raises(TrainingError, match="already holds a run"):
        train(tiny(seasons_root), run)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(tiny(seasons_root), tmp_path / "empty", resume=True)


def test_wgangp_logs_and_applies_the_penalty(seasons_root, tmp_path):
    train(tiny(seasons_root, gan_mode="wgangp"), tmp_path / "run", max_steps=4)
    rows = _metrics(tmp_path / "run")
    assert all(r["gp_A"] > 0 and r["gp_B"] > 0 for r in rows)


def _one_step(lambda_gp: float) -> dict[str, torch.Tensor]:
    cfg = TrainConfig(
        data_root="unused", ngf=4, ndf=4, net_g="resnet_6blocks", gan_mode="wgangp",
        lambda_gp=lambda_gp, pool_size=0, lr=1e-3,
    )  # fmt: skip
    step = CycleGANStep(cfg, device="cpu", precision="fp32")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    y = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    terms = step.train_step({"A": x, "B": y})
    return {"terms": terms, "G": step.G_A.model[1].weight.clone(), "D": step.D_A.model[0].weight}


def test_gradient_penalty_changes_only_the_discriminator_update():
    with_gp, without = _one_step(10.0), _one_step(0.0)
    torch.testing.assert_close(with_gp["terms"]["gp_A"], without["terms"]["gp_A"])
    assert with_gp["terms"]["gp_A"] > 0
    torch.testing.assert_close(with_gp["G"], without["G"])  # G steps before D: unaffected
    assert not torch.allclose(with_gp["D"], without["D"])


def test_grayscale_a_to_color_b(seasons_root, tmp_path):
    cfg = tiny(seasons_root, input_nc=1, lambda_identity=0.0, n_epochs=1, n_epochs_decay=0)
    train(cfg, tmp_path / "run")
    model, info = load_model(tmp_path / "run" / "generator_a2b.safetensors")
    assert (info.config["input_nc"], info.config["output_nc"]) == (1, 3)
    with torch.no_grad():
        assert model(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    rows = _metrics(tmp_path / "run")
    assert all(r["idt_A"] == 0 and r["idt_B"] == 0 for r in rows)
    # the identity loss needs equal channel counts
    with pytest.raises(ValueError, match="identity"):
        tiny(seasons_root, input_nc=1).validate()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"gan_mode": "wgangp", "norm": "batch"}, "wgangp"),
        ({"input_nc": 2}, "input_nc"),
        ({"net_g": "resnet_3blocks"}, "net_g"),
        ({"data_root": None}, "data_root"),
        ({"n_epochs": 0, "n_epochs_decay": 0}, "at least 1"),
    ],
)
def test_config_validation(seasons_root, changes, message):
    with pytest.raises(ValueError, match=message):
        tiny(seasons_root, **changes).validate()


def test_missing_domain_folder(tmp_path):
    (tmp_path / "trainA").mkdir()
    with pytest.raises(FileNotFoundError, match="trainB"):
        train(tiny(tmp_path), tmp_path / "run")


def test_cycle_loss_on_fixed_images_drops_with_training(seasons_root, tmp_path):
    """The exported generators reconstruct held-out test images better than at initialisation."""
    from transfigure.datasets.transforms import eval_transform
    from transfigure.images import list_images, load_array

    t = eval_transform(size=32)
    test_a = torch.stack([t(load_array(p)) for p in list_images([seasons_root / "testA"])])
    cfg = tiny(seasons_root, lr=1e-3, n_epochs=2, n_epochs_decay=0, flip=False)
    early = train(dataclasses.replace(cfg, n_epochs=1), tmp_path / "early", max_steps=6)
    late = train(cfg, tmp_path / "late")

    def rec_error(run: Path) -> float:
        g_ab, _ = load_model(run / "generator_a2b.safetensors")
        g_ba, _ = load_model(run / "generator_b2a.safetensors")
        with torch.no_grad():
            return cycle_loss(g_ba(g_ab(test_a)), test_a).item()

    assert early.epochs == 1 and late.epochs == 2
    assert rec_error(tmp_path / "late") < rec_error(tmp_path / "early")


def test_cli_trains_resumes_and_lists_models(seasons_root, tmp_path, runner):
    out = tmp_path / "run"
    args = ["--device", "cpu", "--quiet", "train", "cyclegan"]
    small = ["--load-size", "32", "--crop-size", "32", "--netG", "resnet_6blocks"]
    small += ["--ngf", "4", "--ndf", "4", "--workers", "0", "--max-dataset-size", "3"]
    r = runner.invoke(main, [*args, str(seasons_root), "-o", str(out), "--epochs", "1", *small])
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        str(out),
        str(out / "generator_a2b.safetensors"),
        str(out / "generator_b2a.safetensors"),
    ]
    for name in ("config.json", "checkpoints/latest.pt", "samples/epoch_001.png", "losses.png"):
        assert (out / name).is_file(), name
    page = (out / "index.html").read_text()
    assert 'src="samples/epoch_001.png"' in page and 'src="losses.png"' in page
    config = json.loads((out / "config.json").read_text())["config"]
    assert (config["ngf"], config["n_epochs"], config["n_epochs_decay"]) == (4, 1, 0)
    assert config["max_dataset_size"] == 3

    # a second run into the same folder is refused; resume it instead, for one more epoch
    r = runner.invoke(main, [*args, str(seasons_root), "-o", str(out), *small])
    assert r.exit_code == 2 and "--resume" in r.stderr
    r = runner.invoke(main, [*args, "--resume", str(out), "--epochs", "2"])
    assert r.exit_code == 0, r.output
    assert len(r.stdout.splitlines()) == 3
    assert {row["epoch"] for row in _metrics(out)} == {1, 2}
    assert (out / "samples" / "epoch_002.png").is_file()

    r = runner.invoke(main, [*args, "--resume", str(out), "--ngf", "8"])
    assert r.exit_code == 2 and "--ngf" in r.stderr
    r = runner.invoke(main, [*args, "--resume", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "config.json" in r.stderr
    r = runner.invoke(main, [*args, str(seasons_root), "--domain-a", str(seasons_root)])
    assert r.exit_code == 2
    r = runner.invoke(main, [*args, str(tmp_path / "missing"), "-o", str(tmp_path / "x")])
    assert r.exit_code == 2 and "not found" in r.stderr


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision(seasons_root, tmp_path, precision):
    cfg = tiny(seasons_root, max_dataset_size=2, n_epochs=1, n_epochs_decay=0, log_every=1)
    train(cfg, tmp_path / "run", precision=precision)
    rows = _metrics(tmp_path / "run")
    assert len(rows) == 2
    assert all(torch.isfinite(torch.tensor([r[k] for k in LOSS_TERMS])).all() for r in rows)
    state = load_training_state(tmp_path / "run" / "checkpoints" / "latest.pt")
    # fp16 needs the gradient scaler, and its scale is part of the training state
    assert not state["scaler"]  # fp16 scaling is for CUDA; the CPU runs fp16 unscaled


@pytest.mark.slow
def test_torchrun_two_processes(seasons_root, tmp_path):
    """DistributedDataParallel on the CPU (gloo): data sharded, rank 0 alone writes."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "transfigure", "--device", "cpu", "--quiet", "train", "cyclegan"]
    cmd += [str(seasons_root), "-o", str(out), "--epochs", "2", "--load-size", "32"]
    cmd += ["--crop-size", "32", "--netG", "resnet_6blocks", "--ngf", "4", "--ndf", "4"]
    cmd += ["--workers", "0", "--log-every", "1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        str(out),
        str(out / "generator_a2b.safetensors"),
        str(out / "generator_b2a.safetensors"),
    ]
    rows = _metrics(out)
    # 6 images over 2 processes: 3 iterations per epoch, one line each
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert json.loads((out / "config.json").read_text())["runtime"]["world_size"] == 2
