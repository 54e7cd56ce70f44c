"""The training loop: D steps lower D's loss, exact resume, the run folder, the non-finite guard."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from tests.gan.helpers import shapes, tiny
from transfigure.checkpoint import load_model, load_training_state
from transfigure.gan.config import PRESETS, preset
from transfigure.gan.data import GANData, ImageTensorDataset
from transfigure.gan.train import (
    EMA,
    GANTrainer,
    NonFiniteLossError,
    TrainingError,
    epoch_batches,
    read_run,
    recalibrate_batch_norm,
    train,
)


def assert_same_state(a: dict, b: dict, path: str = "") -> None:
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same_state(a[k], b[k], f"{path}/{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=path)
    else:
        assert a == b, path


def _final_state(run_dir) -> dict:
    state = load_training_state(run_dir / "checkpoints" / "latest.pt")
    state.pop("rng")  # compared separately: the python RNG state is a long list
    return state


# -- the step ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dcgan", "wgan-gp"])
def test_a_few_discriminator_steps_lower_its_loss_on_a_fixed_batch(name):
    torch.manual_seed(0)
    cfg = tiny(name, lr_d=1e-3).for_data(image_size=16, channels=3, n_classes=0)
    trainer = GANTrainer(cfg)
    real = torch.rand(16, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        fake = trainer.generator(torch.randn(16, 8))

    def d_loss():
        with torch.no_grad():
            return trainer._d_loss(trainer.discriminator(real), trainer.discriminator(fake)).item()

    before = d_loss()
    for _ in range(10):
        trainer.opt_d.zero_grad()
        trainer._d_loss(trainer.discriminator(real), trainer.discriminator(fake)).backward()
        trainer.opt_d.step()
    after = d_loss()
    assert after < before - 0.1 * abs(before) - 0.05


def test_train_step_reports_numbers_and_steps_g_every_n_critic():
    torch.manual_seed(0)
    cfg = tiny("wgan-gp", n_critic=3).for_data(image_size=16, channels=1, n_classes=0)
    trainer = GANTrainer(cfg)
    real = torch.rand(8, 1, 16, 16) * 2 - 1
    keys = [sorted(trainer.train_step(real)) for _ in range(6)]
    with_g = sorted(["loss_d", "gp", "loss_g", "d_real", "d_fake"])
    without_g = sorted(["loss_d", "gp", "d_real", "d_fake"])
    assert keys == [without_g, without_g, with_g] * 2
    assert (trainer.global_step, trainer.g_steps) == (6, 2)
    assert trainer.ema.updates == 2


def test_conditional_step_uses_labels():
    torch.manual_seed(0)
    cfg = tiny("cgan").for_data(image_size=16, channels=3, n_classes=4)
    trainer = GANTrainer(cfg)
    stats = trainer.train_step(torch.rand(8, 3, 16, 16) * 2 - 1, torch.arange(8) % 4)
    assert all(math.isfinite(v) for v in stats.values())
    with pytest.raises(ValueError, match="labels"):
        trainer.train_step(torch.rand(8, 3, 16, 16) * 2 - 1, None)


def test_ema_warms_up_then_uses_its_decay():
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = EMA(net, decay=0.5)
    with torch.no_grad():
        net.weight.fill_(1.0)
    ema.update(net)  # d = min(0.5, 1/10) = 0.1 → 0.9
    assert ema.model.weight.item() == pytest.approx(0.9)
    for _ in range(20):
        ema.update(net)
    with torch.no_grad():
        net.weight.fill_(3.0)
    before = ema.model.weight.item()
    ema.update(net)  # long run: d = 0.5
    assert ema.model.weight.item() == pytest.approx(0.5 * before + 0.5 * 3.0)


def test_recalibrated_batch_norm_statistics_are_exact_and_seeded():
    cfg = tiny().for_data(image_size=16, channels=3, n_classes=0).generator
    from transfigure.gan.networks import Generator

    torch.manual_seed(0)
    g = Generator(cfg)
    a = recalibrate_batch_norm(g, batches=2, batch_size=4, seed=3)
    bn = g.net[1]
    # the first BN sees the projection of the 8 latents: its running mean is their batch mean
    gen = torch.Generator().manual_seed(3)
    z = torch.cat([torch.randn(4, 8, generator=gen) for _ in range(2)])
    with torch.no_grad():
        feats = g.net[0](z[:, :, None, None])
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)))
    assert not a.training
    means = bn.running_mean.clone()
    recalibrate_batch_norm(g, batches=2, batch_size=4, seed=3)
    torch.testing.assert_close(bn.running_mean, means, rtol=0, atol=0)


def test_epoch_batches_shuffle_per_epoch_and_split_across_ranks():
    a = epoch_batches(20, epoch=0, batch_size=4, seed=1)
    assert a == epoch_batches(20, epoch=0, batch_size=4, seed=1)
    assert a != epoch_batches(20, epoch=1, batch_size=4, seed=1)
    assert sorted(i for b in a for i in b) == list(range(20))
    r0 = epoch_batches(20, epoch=0, batch_size=4, seed=1, rank=0, world_size=2)
    r1 = epoch_batches(20, epoch=0, batch_size=4, seed=1, rank=1, world_size=2)
    assert len(r0) == len(r1) == 2  # 10 indices each, the incomplete batch dropped
    assert not set(sum(r0, [])) & set(sum(r1, []))


# -- presets ------------------------------------------------------------------------------------


def test_presets_differ_only_by_values():
    dc, wg, cg = preset("dcgan"), preset("wgan-gp"), preset("cgan")
    assert type(dc) is type(wg) is type(cg)
    assert (dc.loss, dc.n_critic, dc.gp_weight, dc.betas) == ("bce", 1, 0.0, (0.5, 0.999))
    assert (wg.loss, wg.n_critic, wg.gp_weight, wg.betas) == ("wasserstein", 5, 10.0, (0.0, 0.9))
    assert wg.discriminator.norm == "layer"
    assert cg.conditional and cg.mismatch and not dc.conditional and not dc.mismatch
    assert set(PRESETS) == {"dcgan", "wgan-gp", "cgan"}
    with pytest.raises(ValueError, match="batch norm"):
        preset("wgan-gp", discriminator={"norm": "batch"})
    with pytest.raises(ValueError, match="unknown GAN preset"):
        preset("biggan")


# -- whole runs ---------------------------------------------------------------------------------


def test_run_folder_contents(tmp_path):
    data = shapes(32)
    result = train(
        tiny("wgan-gp", n_critic=2, keep_every=1), data, tmp_path / "run", preset="wgan-gp"
    )
    run = tmp_path / "run"
    assert result.epochs == 2 and result.steps == 8
    for name in (
        "config.json",
        "checkpoints/latest.pt",
        "checkpoints/epoch_001.pt",
        "checkpoints/epoch_002.pt",
        "metrics.jsonl",
        "losses.png",
        "progress.gif",
        "generator.safetensors",
        "critic.safetensors",
        "samples/epoch_001.png",
        "samples/epoch_002.png",
    ):
        assert (run / name).is_file(), name
    assert result.samples == [run / "samples/epoch_001.png", run / "samples/epoch_002.png"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 4, 6, 8]  # log_every 3, and every epoch end
    assert [r["end_of_epoch"] for r in rows] == [False, True, False, True]
    assert all({"loss_d", "gp", "wasserstein", "d_real", "d_fake"} <= r.keys() for r in rows)
    assert rows[0]["wasserstein"] == pytest.approx(rows[0]["d_real"] - rows[0]["d_fake"])
    with Image.open(run / "progress.gif") as gif:
        assert gif.n_frames == 2
    with Image.open(run / "samples/epoch_002.png") as grid:  # 4×4 grid of 16 px, padding 2
        assert grid.size == (4 * 18 + 2, 4 * 18 + 2)
    g, info = load_model(run / "generator.safetensors", kind="gan-generator")
    assert (g.config.image_size, g.config.latent_dim, g.config.n_classes) == (16, 8, 0)
    assert info.extra["epoch"] == 2 and info.extra["ema"] is True
    d, info = load_model(run / "critic.safetensors")
    assert info.kind == "gan-critic" and d.config.norm == "layer"
    saved = read_run(run)
    assert saved.data == "shapes:32" and saved.preset == "wgan-gp"
    assert saved.config.generator.image_size == 16 and saved.config.n_critic == 2


def test_cgan_grid_has_one_row_per_label(tmp_path):
    result = train(tiny("cgan", epochs=1), shapes(32), tmp_path / "run", preset="cgan")
    with Image.open(result.samples[0]) as grid:  # 4 labels × 4 columns
        assert grid.size == (4 * 18 + 2, 4 * 18 + 2)
    g, info = load_model(result.generator)
    assert g.config.n_classes == 4
    assert info.extra["classes"] == ["circle", "square", "triangle", "cross"]
    assert (result.run_dir / "discriminator.safetensors").is_file()


def test_existing_run_needs_resume_and_resume_needs_a_run(tmp_path):
    data = shapes(16)
    train(tiny(epochs=1), data, tmp_path / "run")
    with pytest.raises(TrainingError, match="--resume"):
        train(tiny(epochs=1), data, tmp_path / "run")
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(tiny(epochs=1), data, tmp_path / "other", resume=True)
    with pytest.raises(TrainingError, match="fewer than one batch"):
        train(tiny(batch_size=64), data, tmp_path / "small")


# These configurations draw from every random source the loop has: noise, label flips,
# dropout, horizontal flips, the penalty's interpolation, the data order.
RESUME_CONFIGS = {
    "cgan": {
        "label_noise": 0.1,
        "label_smoothing": 0.1,
        "flip": True,
        "discriminator": {"dropout": 0.2},
    },
    "wgan-gp": {"n_critic": 3},
}


@pytest.mark.parametrize("name", list(RESUME_CONFIGS))
def test_resume_after_an_epoch_is_bit_identical(tmp_path, name):
    data = shapes(32)
    cfg = tiny(name, **RESUME_CONFIGS[name])
    train(cfg, data, tmp_path / "full", preset=name)

    train(tiny(name, **{**RESUME_CONFIGS[name], "epochs": 1}), data, tmp_path / "cut", preset=name)
    saved = read_run(tmp_path / "cut")
    assert saved.config.epochs == 1
    saved.config.epochs = 2
    train(saved.config, data, tmp_path / "cut", resume=True, preset=name)

    assert_same_state(_final_state(tmp_path / "full"), _final_state(tmp_path / "cut"))
    full_rows = (tmp_path / "full" / "metrics.jsonl").read_text()
    assert (tmp_path / "cut" / "metrics.jsonl").read_text() == full_rows
    # (compared as tensors: safetensors orders its metadata header differently run to run)
    g_full, _ = load_model(tmp_path / "full" / "generator.safetensors")
    g_cut, _ = load_model(tmp_path / "cut" / "generator.safetensors")
    assert_same_state(g_full.state_dict(), g_cut.state_dict())


def test_resume_mid_epoch_after_a_crash_is_bit_identical(tmp_path):
    data = shapes(48)  # 6 steps per epoch
    cfg = tiny("dcgan", checkpoint_every=4, label_noise=0.05)
    train(cfg, data, tmp_path / "full")

    class Crash(Exception):
        pass

    def crash_at_step_7(event):
        if event.completed == 1 and event.task == "epoch 2/2":
            raise Crash  # dies after step 7; the last checkpoint is step 4 (mid epoch 1)

    with pytest.raises(Crash):
        train(cfg, data, tmp_path / "cut", callback=crash_at_step_7)
    state = load_training_state(tmp_path / "cut" / "checkpoints" / "latest.pt")
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (1, 0, 6)
    # the end-of-epoch-1 checkpoint was the last; step 8 (mid epoch 2) was never reached
    cfg2 = tiny("dcgan", checkpoint_every=4, label_noise=0.05)
    train(cfg2, data, tmp_path / "cut", resume=True)
    assert_same_state(_final_state(tmp_path / "full"), _final_state(tmp_path / "cut"))
    assert (tmp_path / "cut" / "metrics.jsonl").read_text() == (
        tmp_path / "full" / "metrics.jsonl"
    ).read_text()


def test_mid_epoch_checkpoint_resumes_inside_the_epoch(tmp_path):
    data = shapes(48)
    cfg = tiny("dcgan", checkpoint_every=4, epochs=1)
    train(cfg, data, tmp_path / "full")

    class Crash(Exception):
        pass

    def crash_at_step_5(event):
        if event.completed == 5:
            raise Crash

    with pytest.raises(Crash):
        train(cfg, data, tmp_path / "cut", callback=crash_at_step_5)
    state = load_training_state(tmp_path / "cut" / "checkpoints" / "latest.pt")
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == (0, 4, 4)
    train(cfg, data, tmp_path / "cut", resume=True)
    assert_same_state(_final_state(tmp_path / "full"), _final_state(tmp_path / "cut"))
    assert (tmp_path / "cut" / "metrics.jsonl").read_text() == (
        tmp_path / "full" / "metrics.jsonl"
    ).read_text()


class Poisoned(ImageTensorDataset):
    """Shapes whose images turn to NaN: the loss must become non-finite."""

    def __getitem__(self, index):
        image, label = super().__getitem__(index)
        return torch.full_like(image, float("nan")), label


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    good = shapes(16)
    train(tiny(epochs=1), good, tmp_path / "run")
    ckpt = tmp_path / "run" / "checkpoints" / "latest.pt"
    before = ckpt.read_bytes()
    gen_before = (tmp_path / "run" / "generator.safetensors").stat().st_mtime_ns
    base = good.dataset
    bad = GANData(Poisoned(base.images, base.labels), good.classes, good.spec, "poisoned")
    saved = read_run(tmp_path / "run")
    saved.config.epochs = 2
    with pytest.raises(NonFiniteLossError, match=r"non-finite .*latest\.pt"):
        train(saved.config, bad, tmp_path / "run", resume=True)
    assert ckpt.read_bytes() == before
    assert (tmp_path / "run" / "generator.safetensors").stat().st_mtime_ns == gen_before


def test_mismatch_shows_real_images_under_wrong_labels_as_fakes():
    torch.manual_seed(0)
    cfg = tiny("cgan").for_data(image_size=16, channels=3, n_classes=4)
    assert cfg.mismatch
    trainer = GANTrainer(cfg)
    calls = []
    d = trainer.discriminator_ddp

    def spy(x, labels):
        calls.append((x, labels))
        return d(x, labels)

    trainer.discriminator_ddp = spy
    real, labels = torch.rand(64, 3, 16, 16) * 2 - 1, torch.arange(64) % 4
    trainer.train_step(real, labels)
    assert len(calls) == 3  # real, fake, real under wrong labels
    assert calls[2][0] is real
    wrong = calls[2][1]
    assert (wrong != labels).all()
    assert set(wrong.tolist()) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="conditional"):
        preset("dcgan", mismatch=True)


@pytest.mark.parametrize(
    ("name", "precision"), [("dcgan", "bf16"), ("wgan-gp", "bf16"), ("wgan-gp", "fp16")]
)
def test_mixed_precision_steps_run_and_keep_fp32_weights(name, precision):
    torch.manual_seed(0)
    cfg = tiny(name, precision=precision).for_data(image_size=16, channels=3, n_classes=0)
    trainer = GANTrainer(cfg)
    before = trainer.generator.net[0].weight.clone()
    for _ in range(cfg.n_critic):
        stats = trainer.train_step(torch.rand(8, 3, 16, 16) * 2 - 1)
    assert all(math.isfinite(v) for v in stats.values())
    assert trainer.generator.net[0].weight.dtype == torch.float32
    assert not torch.equal(before, trainer.generator.net[0].weight)  # G did step
