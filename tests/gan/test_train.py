"""The GAN step on the engine: D steps lower D's loss, exact resume, the run folder."""

from __future__ import annotations

import json
import math

import pytest
import torch
from PIL import Image

from tests.gan.helpers import make_step, step_class, tiny
from transfigure.checkpoint import load_model, load_training_state
from transfigure.gan.config import PRESETS, preset
from transfigure.gan.step import sampling_copy
from transfigure.training import read_run_config, train


def assert_same_state(a, b, path: str = "") -> None:
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
    state.pop("config")
    return state


def _batch(n=8, channels=3, labels=None):
    return torch.rand(n, channels, 16, 16) * 2 - 1, labels if labels is not None else -torch.ones(
        n, dtype=torch.int64
    )


# -- the step ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dcgan", "wgan-gp"])
def test_a_few_discriminator_steps_lower_its_loss_on_a_fixed_batch(name):
    torch.manual_seed(0)
    step = make_step(name, lr_d=1e-3)
    real = torch.rand(16, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        fake = step.generator(torch.randn(16, 8))

    def d_loss():
        with torch.no_grad():
            return step._d_loss(step.discriminator(real), step.discriminator(fake)).item()

    before = d_loss()
    for _ in range(10):
        step.opt_d.zero_grad()
        step._d_loss(step.discriminator(real), step.discriminator(fake)).backward()
        step.opt_d.step()
    after = d_loss()
    assert after < before - 0.1 * abs(before) - 0.05


def test_train_step_reports_numbers_and_steps_g_every_n_critic():
    torch.manual_seed(0)
    step = make_step("wgan-gp", n_critic=3, channels=1)
    keys = [sorted(step.train_step(_batch(channels=1))) for _ in range(6)]
    with_g = sorted(["loss_d", "gp", "loss_g", "d_real", "d_fake", "wasserstein"])
    without_g = sorted(["loss_d", "gp", "d_real", "d_fake", "wasserstein"])
    assert keys == [without_g, without_g, with_g] * 2
    assert (step.d_steps, step.g_steps) == (6, 2)


def test_conditional_step_uses_labels():
    torch.manual_seed(0)
    step = make_step("cgan")
    stats = step.train_step(_batch(labels=torch.arange(8) % 4))
    assert all(math.isfinite(float(v)) for v in stats.values())


def test_skipping_the_discriminator_update_leaves_it_unchanged():
    torch.manual_seed(0)
    step = make_step("dcgan")
    before = [p.clone() for p in step.discriminator.parameters()]
    step.skip_d = True
    step.train_step(_batch())
    for a, b in zip(before, step.discriminator.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    step.skip_d = False
    step.train_step(_batch())
    assert not torch.equal(before[0], next(step.discriminator.parameters()))


def test_recalibrated_batch_norm_statistics_are_exact_and_seeded():
    torch.manual_seed(0)
    g = make_step("dcgan").generator
    a = sampling_copy(g, batch_size=4, seed=3)
    bn = a.net[1]
    # the first BN sees the projection of the latents: its running mean is their batch mean
    gen = torch.Generator().manual_seed(3)
    z = torch.cat([torch.randn(4, 8, generator=gen) for _ in range(8)])
    with torch.no_grad():
        feats = a.net[0](z[:, :, None, None])
    torch.testing.assert_close(bn.running_mean, feats.mean((0, 2, 3)))
    assert not a.training
    b = sampling_copy(g, batch_size=4, seed=3)
    torch.testing.assert_close(b.net[1].running_mean, bn.running_mean, rtol=0, atol=0)


def test_mismatch_shows_real_images_under_wrong_labels_as_fakes():
    torch.manual_seed(0)
    step = make_step("cgan")
    assert step.config.mismatch
    calls = []
    d = step.d

    def spy(x, labels):
        calls.append((x, labels))
        return d(x, labels)

    step.d = spy
    real, labels = torch.rand(64, 3, 16, 16) * 2 - 1, torch.arange(64) % 4
    step.train_step((real, labels))
    assert len(calls) == 3  # real, fake, real under wrong labels
    assert calls[2][0] is real
    wrong = calls[2][1]
    assert (wrong != labels).all()
    assert set(wrong.tolist()) == {0, 1, 2, 3}
    with pytest.raises(ValueError, match="conditional"):
        preset("dcgan", data="shapes", mismatch=True)


def test_auxiliary_classifier_trains_d_on_real_labels_and_rewards_g_for_its_labels():
    torch.manual_seed(0)
    step = make_step("cgan", d_conditioning="auxiliary", aux_weight=1.0, lr_d=1e-3)
    assert step.config.mismatch  # the preset's, ignored: this D does not see labels
    calls = []
    d = step.d

    def spy(x, *args, **kwargs):
        calls.append((args, kwargs))
        return d(x, *args, **kwargs)

    step.d = spy
    real, labels = torch.rand(16, 3, 16, 16) * 2 - 1, torch.arange(16) % 4
    stats = step.train_step((real, labels))
    assert {"loss_class_d", "loss_class_g", "class_acc_fake"} <= stats.keys()
    assert len(calls) == 2  # real (with its class head) and fake: no wrong-label pass
    assert calls[0][1] == {"classes": True}
    step.d = d
    # the class head learns the real labels: its loss on a fixed batch goes down
    first = float(stats["loss_class_d"])
    for _ in range(15):
        last = float(step.train_step((real, labels))["loss_class_d"])
    assert last < 0.7 * first
    # the class loss enters G's update: with weight 0 the same step moves G elsewhere
    moved = []
    for weight in (0.0, 1.0):
        torch.manual_seed(1)
        other = make_step("cgan", d_conditioning="auxiliary", aux_weight=weight)
        other.train_step((real, labels))
        moved.append(other.generator.net[0].weight.detach().clone())
    assert not torch.allclose(moved[0], moved[1])


def test_mode_seeking_ratio_known_values():
    from transfigure.gan.step import GANStep

    fake = torch.zeros(5, 1, 2, 2)
    fake[2] = 0.5  # pair (0, 2): images 0.5 apart everywhere
    fake[3] = torch.tensor([[1.0, -1.0], [0.0, 0.0]])  # pair (1, 3): mean |Δ| 0.5
    z = torch.zeros(5, 4)
    z[2] = 2.0  # latent distance 2
    z[3, :2] = 1.0  # latent distance 0.5
    ratio = GANStep._mode_seeking_ratio(fake, z, 2)
    torch.testing.assert_close(ratio, torch.tensor([0.25, 1.0]))


def test_mode_seeking_pairs_fakes_under_one_label_and_spreads_them():
    real, labels = torch.rand(16, 3, 16, 16) * 2 - 1, torch.arange(16) % 4
    torch.manual_seed(0)
    step = make_step("cgan", mode_seeking=1.0)
    seen = []
    g = step.g

    def spy(z, labels):
        seen.append(labels)
        return g(z, labels)

    step.g = spy
    stats = step.train_step((real, labels))
    assert "mode_seeking" in stats
    torch.testing.assert_close(seen[0][:8], seen[0][8:])  # pair i and i + 8 share a label
    assert set(seen[0].tolist()) == {0, 1, 2, 3}
    # the term enters G's update: the same seeded run without it ends with its fakes closer
    ratios = []
    for weight in (0.0, 10.0):
        torch.manual_seed(0)
        other = make_step("cgan", mode_seeking=weight, lr_g=1e-3)
        for _ in range(8):
            other.train_step((real, labels))
        z = torch.randn(16, other.config.latent_dim, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            fake = other.generator(z, torch.cat([labels[:8], labels[:8]]))
        ratios.append(other._mode_seeking_ratio(fake, z, 8).mean().item())
    assert ratios[1] > 1.2 * ratios[0]
    with pytest.raises(ValueError, match="batch-size"):
        preset("cgan", data="shapes", mode_seeking=1.0, batch_size=1)


def test_packing_groups_real_and_fake_samples_by_label():
    # 3 zeros, 4 ones, 1 two, 4 threes: packs of 2 keep 2 + 4 + 0 + 4 samples
    labels = torch.tensor([1, 0, 3, 1, 0, 2, 3, 3, 0, 1, 3, 1])
    real = torch.rand(12, 3, 16, 16) * 2 - 1
    torch.manual_seed(0)
    step = make_step("cgan", pack=2, mismatch=True)
    seen_d, seen_g = [], []
    d, g = step.d, step.g

    def spy_d(x, labels):
        seen_d.append((x.shape[0], labels.clone()))
        return d(x, labels)

    def spy_g(z, labels):
        seen_g.append(labels.clone())
        return g(z, labels)

    step.d, step.g = spy_d, spy_g
    stats = step.train_step((real, labels))
    assert all(math.isfinite(v.item()) for v in stats.values())
    real_labels = seen_d[0][1]
    assert seen_d[0][0] == 10 and sorted(real_labels.tolist()) == [0, 0] + [1] * 4 + [3] * 4
    assert (real_labels[::2] == real_labels[1::2]).all()  # every pack holds one label
    torch.testing.assert_close(seen_g[0], real_labels)  # the fakes are packed the same way
    wrong = seen_d[2][1]  # the matching-aware pass: one wrong label per pack
    assert (wrong[::2] == wrong[1::2]).all() and (wrong != real_labels).all()
    with pytest.raises(ValueError, match="one label to pack"):
        step.train_step((real[:4], torch.tensor([0, 1, 2, 3])))
    with pytest.raises(ValueError, match="mode-seeking"):
        preset("cgan", data="shapes", pack=2, mode_seeking=1.0)
    with pytest.raises(ValueError, match="batch-size"):
        preset("cgan", data="shapes", pack=4, batch_size=6)


@pytest.mark.parametrize("name", ["dcgan", "wgan-gp"])
def test_packing_an_unconditional_batch_drops_the_remainder(name):
    torch.manual_seed(0)
    step = make_step(name, pack=3)
    sizes = []
    d = step.d

    def spy_d(x, *cond):
        sizes.append(x.shape[0])
        return d(x, *cond)

    step.d = spy_d
    stats = step.train_step(_batch(8))
    assert sizes[0] == 6 and all(math.isfinite(v.item()) for v in stats.values())


@pytest.mark.parametrize(
    ("name", "precision"), [("dcgan", "bf16"), ("wgan-gp", "bf16"), ("wgan-gp", "fp16")]
)
def test_mixed_precision_steps_run_and_keep_fp32_weights(name, precision):
    torch.manual_seed(0)
    step = make_step(name, precision=precision)
    before = step.generator.net[0].weight.clone()
    for _ in range(step.config.n_critic):
        stats = step.train_step(_batch())
    assert all(math.isfinite(float(v)) for v in stats.values())
    assert step.generator.net[0].weight.dtype == torch.float32
    assert not torch.equal(before, step.generator.net[0].weight)  # G did step


# -- presets ------------------------------------------------------------------------------------


def test_presets_differ_only_by_values():
    dc, wg, cg = (preset(n, data="shapes") for n in ("dcgan", "wgan-gp", "cgan"))
    assert type(dc) is type(wg) is type(cg)
    assert (dc.loss, dc.n_critic, dc.gp_weight, dc.beta1, dc.beta2) == ("bce", 1, 0.0, 0.5, 0.999)
    assert (wg.loss, wg.n_critic, wg.gp_weight, wg.beta1, wg.beta2) == (
        "wasserstein",
        5,
        10.0,
        0.0,
        0.9,
    )
    assert wg.d_norm == "layer"
    assert cg.conditional and cg.mismatch and not dc.conditional and not dc.mismatch
    assert (dc.upsample, wg.upsample, cg.upsample) == ("transpose", "transpose", "nearest")
    assert set(PRESETS) == {"dcgan", "wgan-gp", "cgan"}
    with pytest.raises(ValueError, match="batch norm"):
        preset("wgan-gp", data="shapes", d_norm="batch")
    with pytest.raises(ValueError, match="unknown GAN preset"):
        preset("biggan")


# -- whole runs on the engine ----------------------------------------------------------------


def test_run_folder_contents(tmp_path):
    result = train(
        step_class("wgan-gp"), tiny("wgan-gp", n_critic=2, keep_every=1), tmp_path / "run"
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
        "index.html",
    ):
        assert (run / name).is_file(), name
    assert result.samples == [run / "samples/epoch_001.png", run / "samples/epoch_002.png"]
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [3, 4, 6, 8]  # log_every 3, and every epoch end
    assert [r.get("end_of_epoch", False) for r in rows] == [False, True, False, True]
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
    saved = read_run_config(run)
    assert saved["trainer"] == "wgan-gp" and saved["config"]["data"] == "shapes:32"
    assert saved["config"]["n_critic"] == 2


def test_cgan_grid_has_one_row_per_label(tmp_path):
    result = train(step_class("cgan"), tiny("cgan", epochs=1), tmp_path / "run")
    with Image.open(result.samples[0]) as grid:  # 4 labels × 4 columns
        assert grid.size == (4 * 18 + 2, 4 * 18 + 2)
    g, info = load_model(tmp_path / "run" / "generator.safetensors")
    assert g.config.n_classes == 4
    assert info.extra["classes"] == ["circle", "square", "triangle", "cross"]
    assert (tmp_path / "run" / "discriminator.safetensors").is_file()


# These configurations draw from every random source the step has: noise, label flips,
# dropout, horizontal flips, the penalty's interpolation, the data order.
RESUME_CONFIGS = {
    "cgan": {
        "label_noise": 0.1,
        "label_smoothing": 0.1,
        "flip": True,
        "dropout": 0.2,
        "d_norm": "spectral",  # its power-iteration vectors are state too
        "mode_seeking": 0.5,
    },
    "dcgan": {"label_noise": 0.05, "checkpoint_every": 2},
    "wgan-gp": {"n_critic": 3},
}


@pytest.mark.parametrize("name", list(RESUME_CONFIGS))
def test_resume_mid_epoch_is_bit_identical(tmp_path, name):
    cls = step_class(name)
    cfg = tiny(name, **RESUME_CONFIGS[name])
    train(cls, cfg, tmp_path / "full")
    result = train(cls, cfg, tmp_path / "cut", max_steps=3)  # 4 steps per epoch: mid epoch 1
    assert result.stopped == "max_steps"
    train(cls, cfg, tmp_path / "cut", resume=True)
    assert_same_state(_final_state(tmp_path / "full"), _final_state(tmp_path / "cut"))
    full_rows = (tmp_path / "full" / "metrics.jsonl").read_text()
    assert (tmp_path / "cut" / "metrics.jsonl").read_text() == full_rows
    # (compared as tensors: safetensors orders its metadata header differently run to run)
    g_full, _ = load_model(tmp_path / "full" / "generator.safetensors")
    g_cut, _ = load_model(tmp_path / "cut" / "generator.safetensors")
    assert_same_state(g_full.state_dict(), g_cut.state_dict())
